"""Message-IDs of business mails: stable per mail, so a resend is recognisable, and the
sender's own, so two companies' hubs never give different mails one id."""
from __future__ import annotations

import smtplib

import pytest

from connectors.email import OutboxMailer, OutgoingMail, SmtpMailer, build_message
from tests.simulators.smtp_sim import SmtpSimulator, make_test_pki


def signed_quote_mail(to: str = "guxf@example.com") -> OutgoingMail:
    # both hubs number their quotes the same way: the same key, two different mails
    return OutgoingMail(idempotency_key="signed-quote:Q2611-0001", to=(to,),
                        subject="已签署报价单 Q2611-0001", text="附件为已签署的报价单。")


def test_two_companies_mailing_the_same_quote_code_give_different_message_ids(tmp_path):
    ours = OutboxMailer(tmp_path / "a", "华东精工销售部 <sales@hd-precision.example>")
    theirs = OutboxMailer(tmp_path / "b", "康达医疗 <quotes@kangda-med.example>")
    mine, other = ours.send(signed_quote_mail()), theirs.send(signed_quote_mail())
    assert mine != other
    assert mine.endswith("@hd-precision.example>") and other.endswith("@kangda-med.example>")
    # the SMTP mailer names the same sender's mails the same way
    smtp = SmtpMailer("localhost", mail_from="sales@hd-precision.example", security="none")
    assert build_message(signed_quote_mail(), smtp.mail_from,
                         message_id_domain=smtp.message_id_domain)["Message-ID"] == mine


def test_a_sender_without_a_usable_domain_falls_back():
    from connectors.email import sender_domain

    assert sender_domain("销售 <sales@HD-Precision.Example>") == "hd-precision.example"
    assert sender_domain("no-address") == "salesops.local"
    assert sender_domain("sales@localhost") == "salesops.local"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_test_pki(tmp_path_factory.mktemp("smtp-pki"))


def test_an_answer_lost_after_data_is_retried_under_the_same_message_id(pki, monkeypatch):
    """The server stored the mail but the connection died before its 250 arrived: the retry
    delivers a second copy (SMTP cannot know), with the first one's Message-ID so the
    receiving side can drop it."""
    with SmtpSimulator(pki, security="starttls") as sim:
        mailer = SmtpMailer(sim.host, sim.port, security="starttls", username=sim.username,
                            password=sim.password, mail_from="sales@hd-precision.example",
                            ca_file=pki.ca_file, attempts=3, local_hostname="hub.test",
                            backoff_initial=0.01, backoff_max=0.02)
        real = SmtpMailer._transaction
        lost = []

        def answer_lost_once(self, smtp, *transaction):
            refused = real(self, smtp, *transaction)
            if not lost:
                lost.append(1)
                raise smtplib.SMTPServerDisconnected("connection closed after DATA")
            return refused

        monkeypatch.setattr(SmtpMailer, "_transaction", answer_lost_once)
        message_id = mailer.send(signed_quote_mail())
        assert sim.by_message_id == {message_id: 2}
        assert message_id.endswith("@hd-precision.example>")
