"""The email connector against a real SMTP server on loopback (tests/simulators/smtp_sim.py)."""
from __future__ import annotations

import logging
from email import policy
from email.parser import BytesParser

import pytest

from connectors.base import PermanentError, TransientError
from connectors.email import (Attachment, OutboxMailer, OutgoingMail, RecipientsRefused,
                              SmtpMailer, build_message, message_id_for)
from tests.simulators.smtp_sim import (SmtpFaults, SmtpSimulator, TestPki, free_port,
                                       make_test_pki)

MAIL_FROM = "销售运营中心 <sales-ops@example.com>"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n"
PDF_NAME = "报价单-Q2611-XXXX.pdf"
SUBJECT = "报价单 Q2611-XXXX｜华东精工设备有限公司 致 上海浦江机械制造有限公司，请查收"
BODY = "王经理，您好：\n\n附件为本次意向单对应的报价单，有效期 15 天。\n.\n签署链接见二维码。\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("smtp-pki"))


def quote_mail(key: str = "quote-mail:Q2611-XXXX", **overrides) -> OutgoingMail:
    fields = dict(
        idempotency_key=key,
        to=("王经理 <wang@pujiang-machinery.example>",),
        cc=("销售经理 <manager@example.com>",),
        subject=SUBJECT,
        text=BODY,
        html="<p>王经理，您好：</p><p>附件为报价单。</p>",
        attachments=(Attachment(PDF_NAME, PDF),),
    )
    fields.update(overrides)
    return OutgoingMail(**fields)


def smtp_mailer(sim: SmtpSimulator, pki: TestPki, **overrides) -> SmtpMailer:
    kwargs = dict(
        security=sim.security, username=sim.username, password=sim.password,
        mail_from=MAIL_FROM, timeout=5.0, verify_tls=True, ca_file=pki.ca_file, attempts=4,
        local_hostname="hub.test", backoff_initial=0.01, backoff_max=0.05,
    )
    kwargs.update(overrides)
    return SmtpMailer(sim.host, sim.port, **kwargs)


def assert_is_the_quote(message, message_id: str) -> None:
    assert message["Message-ID"] == message_id
    assert str(message["Subject"]) == SUBJECT
    assert message["From"].addresses[0].display_name == "销售运营中心"
    assert message["To"].addresses[0].display_name == "王经理"
    assert message["Date"] is not None
    text = message.get_body(preferencelist=("plain",))
    # text is CRLF in MIME canonical form; compare the lines
    assert text.get_content().replace("\r\n", "\n") == BODY
    html = message.get_body(preferencelist=("html",))
    assert "附件为报价单" in html.get_content()
    attachments = list(message.iter_attachments())
    assert [a.get_filename() for a in attachments] == [PDF_NAME]
    assert attachments[0].get_content_type() == "application/pdf"
    assert attachments[0].get_content() == PDF


# --- the message itself ---------------------------------------------------------------------

def test_message_headers_are_ascii_encoded_and_id_follows_the_key():
    mail = quote_mail()
    raw = build_message(mail, MAIL_FROM).as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # Chinese only as RFC 2047 encoded words
    assert b"=?utf-8?b?" in head
    assert b"filename*=utf-8''" in raw  # RFC 2231 attachment name
    assert build_message(mail, MAIL_FROM)["Message-ID"] == message_id_for(mail.idempotency_key,
                                                                          "example.com")
    assert message_id_for("a") != message_id_for("b")


def test_a_long_chinese_attachment_name_reads_in_every_client():
    """RFC 2231 readers get one `filename*` (no `filename*0*` continuations); Outlook-like
    readers the RFC 2047 Content-Type `name` (as the legacy parser leaves it: encoded words);
    no header line beyond the 998 characters SMTP allows."""
    import email
    from email.header import decode_header, make_header

    name = "报价单-Q2611-218VV5-7-江苏康达医疗设备有限公司-已签署.pdf"
    raw = build_message(quote_mail(attachments=(Attachment(name, PDF),)), MAIL_FROM).as_bytes()
    assert b"filename*0" not in raw and b"filename*=utf-8''" in raw
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    [modern] = list(BytesParser(policy=policy.default).parsebytes(raw).iter_attachments())
    assert modern.get_filename() == name and modern.get_content() == PDF
    [legacy] = [p for p in email.message_from_bytes(raw).walk() if p.get_param("name")]
    assert str(make_header(decode_header(legacy.get_param("name")))) == name
    with pytest.raises(ValueError):
        OutgoingMail(idempotency_key="k", to=(), subject="s", text="t")


# --- real SMTP conversations ----------------------------------------------------------------

def test_starttls_auth_delivers_a_chinese_quote_with_pdf(pki):
    with SmtpSimulator(pki, security="starttls") as sim:
        message_id = smtp_mailer(sim, pki).send(quote_mail())
        assert sim.auth_attempts == 1 and sim.auth_failures == 0
        assert len(sim.messages) == 1
        assert_is_the_quote(sim.messages[0], message_id)
        mail_from, rcpts = sim.envelopes[0]
        assert mail_from == "sales-ops@example.com"
        assert rcpts == ("wang@pujiang-machinery.example", "manager@example.com")


def test_auth_login_with_a_chinese_password(pki):
    # smtplib's own AUTH would choke on a non-ASCII password; only LOGIN is offered here
    with SmtpSimulator(pki, users={"销售@example.com": "密码-Ω"}, auth_exclude=("PLAIN",)) as sim:
        assert sim.username == "销售@example.com"
        smtp_mailer(sim, pki).send(quote_mail())
        assert sim.auth_attempts == 1 and sim.auth_failures == 0 and len(sim.messages) == 1


def test_implicit_ssl_delivers(pki):
    with SmtpSimulator(pki, security="ssl") as sim:
        message_id = smtp_mailer(sim, pki).send(quote_mail())
        assert len(sim.messages) == 1
        assert_is_the_quote(sim.messages[0], message_id)


def test_untrusted_certificate_is_permanent_and_nothing_is_sent(pki):
    with SmtpSimulator(pki, security="starttls") as sim:
        mailer = smtp_mailer(sim, pki, ca_file=None)  # system CAs do not know our test CA
        with pytest.raises(PermanentError) as err:
            mailer.send(quote_mail())
        assert err.value.code == "tls"
        assert sim.auth_attempts == 0 and sim.mail_commands == 0


def test_wrong_password_is_permanent_and_not_retried(pki, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "wrong-密码-4711"
    with SmtpSimulator(pki, security="starttls") as sim:
        mailer = smtp_mailer(sim, pki, password=secret, attempts=5)
        with pytest.raises(PermanentError) as err:
            mailer.send(quote_mail())
        assert err.value.code == "535"
        assert sim.auth_attempts == 1  # one try, one mechanism, no retry
        assert sim.mail_commands == 0 and sim.messages == []
    # the password never shows up in errors, reprs or logs
    assert secret not in str(err.value) and secret not in repr(mailer)
    assert secret not in caplog.text


def test_server_without_starttls_is_refused_before_anything_is_sent():
    with SmtpSimulator(None, security="none") as sim:
        mailer = SmtpMailer(sim.host, sim.port, security="starttls", username=sim.username,
                            password=sim.password, mail_from=MAIL_FROM, attempts=3,
                            local_hostname="hub.test", backoff_initial=0.01)
        with pytest.raises(PermanentError) as err:
            mailer.send(quote_mail())
        assert err.value.code == "starttls"
        assert sim.auth_attempts == 0 and sim.mail_commands == 0 and sim.messages == []


def test_451_faults_fifty_mails_each_delivered_exactly_once(pki):
    faults = SmtpFaults(rate_451=0.2, seed=11)
    with SmtpSimulator(pki, security="starttls", faults=faults) as sim:
        mailer = smtp_mailer(sim, pki, attempts=8)
        ids = [mailer.send(quote_mail(f"quote-mail:Q2611-{n:04d}")) for n in range(50)]
        assert len(set(ids)) == 50
        assert sum(sim.injected.values()) > 0  # the faults really happened ...
        assert sim.injected["451:RCPT"] > 0 and sim.injected["451:DATA"] > 0
        assert len(sim.messages) == 50  # ... and every mail still arrived
        assert set(sim.by_message_id) == set(ids)
        assert sim.duplicates() == {}


def test_dropped_connections_are_retried_without_duplicates(pki):
    faults = SmtpFaults(drop_rate=0.3, seed=3)
    with SmtpSimulator(pki, security="ssl", faults=faults) as sim:
        mailer = smtp_mailer(sim, pki, attempts=8)
        ids = [mailer.send(quote_mail(f"quote-mail:D-{n}")) for n in range(10)]
        assert sim.injected["drop"] > 0
        assert sorted(sim.by_message_id) == sorted(ids)
        assert sim.duplicates() == {}


def test_transient_failure_gives_up_as_transient_after_the_attempts(pki):
    with SmtpSimulator(pki, faults=SmtpFaults(rate_451=1.0, stages=("DATA",))) as sim:
        with pytest.raises(TransientError) as err:
            smtp_mailer(sim, pki, attempts=3).send(quote_mail())
        assert err.value.code == "451"
        assert sim.injected["451:DATA"] == 3 and sim.messages == []


def test_unreachable_server_is_transient():
    mailer = SmtpMailer("127.0.0.1", free_port(), security="starttls", mail_from=MAIL_FROM,
                        attempts=2, timeout=2.0, local_hostname="hub.test",
                        backoff_initial=0.01)
    with pytest.raises(TransientError) as err:
        mailer.send(quote_mail())
    assert err.value.code == "network"


def test_550_mailbox_unavailable_is_permanent(pki):
    refuse = {"wang@pujiang-machinery.example": "550 5.1.1 Mailbox unavailable"}
    with SmtpSimulator(pki, refuse=refuse) as sim:
        with pytest.raises(PermanentError) as err:
            smtp_mailer(sim, pki, attempts=5).send(quote_mail())
        assert err.value.code == "550"
        assert sim.mail_commands == 1  # not retried
        assert sim.messages == []


def test_a_copy_recipient_refused_for_good_does_not_keep_the_mail_from_the_others(pki):
    # the manager's cc is refused for good: retrying cannot reach him, so the customer gets
    # the mail now, once, and the refused address is named for a person to fix
    refuse = {"manager@example.com": "553 5.1.3 Bad recipient address syntax"}
    with SmtpSimulator(pki, refuse=refuse) as sim:
        sent = smtp_mailer(sim, pki).send(quote_mail())
        assert sim.mail_commands == 1
        [message] = sim.messages
        [(_, rcpts)] = sim.envelopes
    assert_is_the_quote(message, sent)
    assert rcpts == ("wang@pujiang-machinery.example",)
    assert sent.refused == {"manager@example.com": "553 5.1.3 Bad recipient address syntax"}


def test_the_main_recipient_refused_for_good_sends_to_nobody(pki):
    refuse = {"wang@pujiang-machinery.example": "550 5.1.1 Mailbox unavailable",
              "manager@example.com": "550 5.1.1 Mailbox unavailable"}
    with SmtpSimulator(pki, refuse=refuse) as sim:
        with pytest.raises(RecipientsRefused) as err:
            smtp_mailer(sim, pki).send(quote_mail())
        assert sim.messages == []
    assert err.value.code == "550" and sorted(err.value.refused) == [
        "manager@example.com", "wang@pujiang-machinery.example"]


def test_a_refusal_that_may_pass_sends_to_nobody_beside_one_for_good(pki):
    # the customer's mailbox is full (452): the whole mail is retried later, so the manager
    # (refused for good) does not make the customer's copy go out now and again on retry
    refuse = {"wang@pujiang-machinery.example": "452 4.2.2 Mailbox full",
              "manager@example.com": "550 5.1.1 Mailbox unavailable"}
    with SmtpSimulator(pki, refuse=refuse) as sim:
        with pytest.raises(TransientError) as err:
            smtp_mailer(sim, pki, attempts=2).send(quote_mail())
        assert err.value.code == "452"
        assert sim.mail_commands == 2 and sim.messages == []


def test_partially_refused_with_4xx_is_transient(pki):
    refuse = {"manager@example.com": "452 4.2.2 Mailbox full"}
    with SmtpSimulator(pki, refuse=refuse) as sim:
        with pytest.raises(TransientError) as err:
            smtp_mailer(sim, pki, attempts=2).send(quote_mail())
        assert err.value.code == "452"
        assert sim.mail_commands == 2 and sim.messages == []


# --- the embedded outbox --------------------------------------------------------------------

def test_outbox_same_key_twice_writes_one_file(tmp_path):
    outbox = OutboxMailer(tmp_path / "outbox", MAIL_FROM)
    first = outbox.send(quote_mail())
    second = outbox.send(quote_mail(subject="changed subject, same business mail"))
    assert first == second == message_id_for("quote-mail:Q2611-XXXX", "example.com")
    files = list((tmp_path / "outbox").rglob("*"))
    emls = [f for f in files if f.is_file()]
    assert len(emls) == 1 and emls[0].suffix == ".eml"  # no stray .tmp either
    assert emls[0].parent.name.count("-") == 2  # <yyyy-mm-dd>/
    outbox.send(quote_mail("quote-mail:Q2611-YYYY"))
    assert len(outbox.list_messages()) == 2


def test_outbox_eml_parses_back_with_chinese_subject_and_attachment(tmp_path):
    outbox = OutboxMailer(tmp_path / "outbox", MAIL_FROM)
    message_id = outbox.send(quote_mail())
    path = outbox.find("quote-mail:Q2611-XXXX")
    assert path is not None
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert_is_the_quote(message, message_id)
    [stored] = outbox.list_messages()
    assert stored.message_id == message_id and stored.subject == SUBJECT
