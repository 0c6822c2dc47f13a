"""Audit: what the hub sends to people — mails over a REAL SMTP conversation (aiosmtpd on
loopback, tests/simulators/smtp_sim.py), parsed back with the stdlib email package, and the
texts the flows build for them.

Each failing test says what the user does, what he expects, what happens."""
from __future__ import annotations

import dataclasses
import datetime as dt
from email.header import decode_header, make_header

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from api.app import create_app
from connectors.email import Attachment, OutgoingMail, SmtpMailer
from connectors.registry import EmbeddedRegistry, TianyanchaRegistry
from flows.hub import SAMPLE_REGISTRY, use_hub
from models import Customer, IntentOrder, Quote, Todo, utcnow
from models.db import session_scope
from models.money import yuan
from models.oplog import apply_changes
from tests.simulators.registry_sim import TianyanchaSimulator
from tests.simulators.smtp_sim import SmtpFaults, SmtpSimulator, TestPki, make_test_pki
from tests.support import order_payload, post_order, run_pending

KANGDA = "江苏康达医疗设备有限公司"
CUSTOMER_MAIL = "guxf@example.com"      # order_payload's contact
REFUSED = "550 5.1.1 <{}>: Recipient address rejected: User unknown in virtual mailbox table"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("smtp-pki"))


def smtp_hub(hub, sim: SmtpSimulator, pki: TestPki):
    """The hub as configured with SALESOPS_EMAIL_BACKEND=smtp, talking to `sim`."""
    mailer = SmtpMailer(sim.host, sim.port, security="starttls", username=sim.username,
                        password=sim.password, mail_from=hub.settings.mail_from,
                        ca_file=pki.ca_file, timeout=5.0, attempts=2,
                        local_hostname="hub.test", backoff_initial=0.01, backoff_max=0.02)
    h = dataclasses.replace(hub, mailer=mailer)
    use_hub(h)
    return h


@pytest.fixture
def client(hub):
    app = create_app(hub.settings, launcher=None)  # the test dispatches explicitly
    with TestClient(app) as c:
        yield c


def received(sim: SmtpSimulator) -> list[tuple[tuple[str, ...], str]]:
    return [(rcpts, str(m["Subject"])) for m, (_, rcpts) in zip(sim.messages, sim.envelopes)]


# --- 1. one dead internal mailbox keeps the mail from everybody else ------------------------

@pytest.mark.usefixtures("prefect_harness")
def test_a_reps_closed_mailbox_keeps_the_quote_from_the_customer(hub, client, pki):
    """The rep's mailbox was closed (he left; the company's server answers 550 5.1.1 for it).
    A customer of his sends an intent order. Expected: the customer gets the quote with its
    signing link (the rep is only in copy). Happens: SmtpMailer sends to nobody when any
    RCPT is refused, even permanently; the order is blocked at 发送报价邮件 and the customer
    never hears from us."""
    with SmtpSimulator(pki, refuse={"zhangwei@example.com":
                                    REFUSED.format("zhangwei@example.com")}) as sim:
        h = smtp_hub(hub, sim, pki)
        oid = post_order(client, order_payload(name="康达医疗", lines=[("MON-M8", 2)])
                         ).json()["order_id"]
        run_pending(h)
        with session_scope(hub.db_url) as s:
            order = s.get(IntentOrder, oid)
            status, error = order.status, order.error
        got = received(sim)
    to_customer = [subject for rcpts, subject in got if CUSTOMER_MAIL in rcpts]
    assert to_customer and to_customer[0].startswith("报价单 "), (
        f"customer got no quote; order {status}: {error}; delivered: {got}")
    assert status == "quoted"
    # sales-ops is told which mailbox is dead, once
    ops = misconfigured(hub)
    assert [(t.title, t.assignee_id) for t in ops] == [
        ("邮箱拒收：zhangwei@example.com", "ops-01")] and "张伟" in ops[0].body
    assert [subject for rcpts, subject in got if "salesops@example.com" in rcpts] == [
        f"【待办】{ops[0].title}"]


def misconfigured(hub) -> list[Todo]:
    """The to-dos sales-ops got about mailboxes and robots refusing the hub's notices."""
    with session_scope(hub.db_url) as s:
        return list(s.exec(select(Todo).where(Todo.kind == "notice_failed").order_by(Todo.id)))


@pytest.mark.usefixtures("prefect_harness")
def test_a_managers_closed_mailbox_blocks_the_order_and_the_purchase_alert(hub, client, pki):
    """Stock is short, so purchasing gets a purchase alert with the rep's manager in copy;
    the manager's mailbox answers 550. Expected: purchasing is told (and the customer still
    gets his quote, the note on the PDF says delivery waits for purchasing). Happens: the
    alert goes to nobody, the stock check fails with a PermanentError and the customer's
    order is blocked ("库存检查：SMTP RCPT TO <chenjing@example.com> 550 refused …"); the
    to-do about the blocked order goes to that same dead mailbox, so nobody is told."""
    with SmtpSimulator(pki, refuse={"chenjing@example.com":
                                    REFUSED.format("chenjing@example.com")}) as sim:
        h = smtp_hub(hub, sim, pki)
        oid = post_order(client, order_payload(name="广州华南医药贸易有限公司",
                                               lines=[("MON-M12", 12)], rep_id="rep-lina")
                         ).json()["order_id"]
        run_pending(h)
        with session_scope(hub.db_url) as s:
            order = s.get(IntentOrder, oid)
            status, error = order.status, order.error
        got = received(sim)
    to_purchasing = [subject for rcpts, subject in got if "purchasing@example.com" in rcpts]
    assert to_purchasing and "采购预警" in to_purchasing[0], (
        f"purchasing got nothing; order {status}: {error}; delivered: {got}")
    assert status == "quoted", f"order {status}: {error}"
    assert [t.title for t in misconfigured(hub)] == ["邮箱拒收：chenjing@example.com"]


# --- 2. a to-do's mail and push lost for good after a transient failure ---------------------

def test_legal_review_is_never_mailed_when_the_mail_server_was_briefly_down(hub, client, pki):
    """An order names a company new to us; the hub opens its file and a 法务资质初审 to-do,
    then mails legal. The mail server answers 451 (greylisting, a restart) for that moment.
    Expected: once the server is back, legal is told (mail and push): the mail's failure
    does not fail the customer check (a notice never fails its step), the inbox-sweeper
    mails the to-do once its backoff is over. Happened: the step failed; its retry found the
    new file by name and took the short way (`_link`); the to-do's mail and push were never
    sent (the effect stayed `started`, no sweeper looked at legal reviews: `untold_todos` was
    used for e签宝 endings only)."""
    from flows.customer_check import check_customer
    from flows.notices import tell_untold

    with SmtpSimulator(pki, faults=SmtpFaults(rate_451=1.0, stages=("DATA",))) as sim:
        h = smtp_hub(hub, sim, pki)
        oid = post_order(client, order_payload(name="安徽济民医疗器械有限责任公司",
                                               lines=[("PUMP-VP5", 4)])).json()["order_id"]
        check_customer(h, oid)              # the mail fails; the step does not
        sim.faults = SmtpFaults()           # the server is back
        check_customer(h, oid)              # a rerun of the step sends nothing twice
        assert tell_untold(h) == 0          # too soon for the sweeper ...
        tell_untold(h, now=utcnow() + dt.timedelta(minutes=10))  # ... then tells legal
        tell_untold(h, now=utcnow() + dt.timedelta(minutes=20))  # once
        got = received(sim)
    with session_scope(hub.db_url) as s:
        review = s.exec(select(Todo).where(Todo.kind == "legal_review")).one()
    assert review.status == "open"
    assert [subject for rcpts, subject in got
            if "legal@example.com" in rcpts and "资质初审" in subject] == [
        f"【待办】{review.title}"], f"legal was not told once; delivered: {got}"


@pytest.fixture
def tianyancha(hub):
    sim = TianyanchaSimulator("tyc-audit-token").start()
    for record in EmbeddedRegistry(hub.settings.registry_dataset or SAMPLE_REGISTRY).records():
        sim.add(record)
    remote = TianyanchaRegistry(sim.url, SecretStr("tyc-audit-token"), timeout=2.0, attempts=2)
    yield dataclasses.replace(hub, registry=remote), sim
    remote.close()
    sim.stop()
    use_hub(hub)


def test_registry_change_alert_is_never_mailed_after_a_transient_mail_failure(tianyancha, pki):
    """The daily registry-watch finds a new legal representative for a customer and alerts
    risk (the rep in copy). The mail server answers 451 at that moment. Expected: the alert
    is sent once the server is back: the refresh does not fail for the mail (a notice never
    fails its step), the inbox-sweeper mails the to-do after its backoff. Happened: the
    change and the to-do were committed before mailing, the refresh failed; the retry
    skipped the customer as "already read in this run" (`read_since`) and tomorrow's read
    found nothing new — the alert was never mailed nor pushed."""
    from flows.notices import tell_untold
    from flows.registry_watch import refresh_customer

    hub, registry = tianyancha
    registry.change(KANGDA, legalPersonName="顾晓东")
    with session_scope(hub.db_url) as s:
        kangda = s.exec(select(Customer).where(Customer.legal_name == KANGDA)).one().id
    started = utcnow()
    with SmtpSimulator(pki, faults=SmtpFaults(rate_451=1.0, stages=("DATA",))) as sim:
        h = smtp_hub(hub, sim, pki)
        refresh_customer(h, kangda, read_since=started)   # the mail fails; the refresh does not
        sim.faults = SmtpFaults()
        refresh_customer(h, kangda, read_since=started)   # a rerun reads nothing again
        refresh_customer(h, kangda)                       # tomorrow's run
        tell_untold(h, now=utcnow() + dt.timedelta(minutes=10))  # the inbox-sweeper
        got = received(sim)
    with session_scope(hub.db_url) as s:
        todo = s.exec(select(Todo).where(Todo.kind == "registry_change")).one()
    assert "法定代表人：顾建国 → 顾晓东" in todo.body
    assert any("risk@example.com" in rcpts for rcpts, _ in got), (
        f"risk was never told of the change; delivered: {got}")


# --- 3. the texts --------------------------------------------------------------------------

@pytest.mark.usefixtures("prefect_harness")
def test_refused_signing_todo_shows_the_amount_like_every_other_text(hub, client):
    """The customer refuses to sign on e签宝 (signFlowStatus 7); the rep gets a to-do (mail
    and push). Expected: the amount as every other text writes it, with thousands separators
    (cf. the quote mail "人民币 25,600.00 元"; a to-do as the invoice to-do and the hub's
    money helper `models.money.yuan` write it: "¥25,600.00"). Happened: `signing_ended`
    formatted it raw: "金额 25600.00 元" (or "25600" per database)."""
    from flows.signing import signing_ended

    oid = post_order(client, order_payload(name="康达医疗", lines=[("MON-M8", 2)])
                     ).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
        apply_changes(s, quote, "test", signing_provider="esign", signing_ref="flow-audit-1")
        amount = quote.total_amount
    assert amount >= 1000
    todo_id = signing_ended(hub.db_url, "flow-audit-1", "7", "价格过高", "ops-01")
    with session_scope(hub.db_url) as s:
        body = s.get(Todo, todo_id).body
    assert f"含税金额 {yuan(amount)}" in body and f"{amount}" not in body, body


def test_quote_attachment_name_is_readable_by_clients_without_rfc2231(hub, pki):
    """The signed quote goes to a customer on Outlook / Lotus Notes, which do not read
    RFC 2231 parameters (MimeKit FAQ "Untitled attachments"; MimeKit #186, #281) — the
    usual remedy, and what Foxmail and QQ Mail themselves send, is a Content-Type `name`
    parameter as an RFC 2047 encoded word beside the RFC 2231 `filename*`. Expected: the
    PDF shows as 报价单-…-已签署.pdf. Happens: only `filename*0*=utf-8''…; filename*1*=…`
    (split into continuations, the form those clients read least) and no `name`: the
    customer sees "ATT00001.bin" / "Untitled attachment"."""
    name = "报价单-Q2611-218VV5-7-已签署.pdf"
    mail = OutgoingMail(idempotency_key="signed-quote:Q2611-218VV5-7", to=(CUSTOMER_MAIL,),
                        subject="已签署报价单 Q2611-218VV5-7 - 华东精工设备有限公司",
                        text="顾晓峰，您好：\n\n附件为带电子签名的报价单。",
                        attachments=(Attachment(name, b"%PDF-1.4\n%%EOF\n"),))
    with SmtpSimulator(pki) as sim:
        smtp_hub(hub, sim, pki).mailer.send(mail)
        [message] = sim.messages
    [part] = list(message.iter_attachments())
    assert part.get_filename() == name  # RFC 2231 readers are fine ...
    fallback = part.get_param("name", header="content-type")
    assert fallback is not None, (
        f"no Content-Type name; Content-Disposition: {part['Content-Disposition']!r}")
    decoded = fallback if isinstance(fallback, str) else fallback[2]
    assert str(make_header(decode_header(decoded))) == name


# --- checked and fine (kept: cheap) ---------------------------------------------------------

@pytest.mark.usefixtures("prefect_harness")
def test_quote_mail_over_smtp_reads_right_in_a_mail_client(hub, client, pki):
    """The quote mail as it arrives: Chinese subject and sender name decode, no header line
    longer than 78 characters and only ASCII in the head, Date in +0800, Message-ID at the
    sender's domain, UTF-8 base64 body with the amount "人民币 25,600.00 元", an absolute
    signing link from the configured base URL, the PDF attached."""
    from flows.order_steps import signing_link

    with SmtpSimulator(pki) as sim:
        h = smtp_hub(hub, sim, pki)
        oid = post_order(client, order_payload(name="康达医疗", lines=[("MON-M8", 2)])
                         ).json()["order_id"]
        run_pending(h)
        [message] = sim.messages
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
    assert str(message["Subject"]) == f"报价单 {quote.code} - 华东精工设备有限公司"
    assert message["From"].addresses[0].display_name == "销售运营中心"
    assert str(message["Date"]).endswith("+0800")
    assert str(message["Message-ID"]).endswith("@example.com>")
    text = message.get_body(("plain",))
    assert text.get_content_charset() == "utf-8" and text["Content-Transfer-Encoding"] == "base64"
    body = text.get_content()
    assert f"人民币 {quote.total_amount:,.2f} 元" in body
    link = signing_link(hub.settings, quote)
    assert link.startswith("http://testserver/sign/") and link in body
    assert [a.get_content() for a in message.iter_attachments()][0].startswith(b"%PDF")


# --- 4. a group robot's refusal stops the customer's order ---------------------------------

@pytest.mark.usefixtures("prefect_harness")
def test_a_removed_group_robot_blocks_new_customers_orders(hub, client):
    """The 企业微信 robot was removed from the group (errcode 93000 in a 200 answer: rightly a
    PermanentError). An order names a company new to us: its file and the legal review are
    opened, legal is mailed. Expected: the order goes on to its quote (the push is a notice;
    the to-do is in 我的待办 and the mail went out). Happens: notify_todo's push error leaves
    the customer-check step as the step's own failure and the customer's order is blocked
    ("客户核验：wecom error 93000 …")."""
    from connectors.notify import WeComRobotNotifier
    from tests.simulators.wecom_sim import WeComRobotSimulator

    with WeComRobotSimulator("the-configured-key") as robot_sim:
        robot = WeComRobotNotifier(SecretStr("a-key-of-a-removed-robot"),
                                   base_url=robot_sim.send_url, timeout=2.0, attempts=2,
                                   backoff_initial=0.01, backoff_max=0.02)
        h = dataclasses.replace(hub, notifier=robot)
        use_hub(h)
        oid = post_order(client, order_payload(name="安徽济民医疗器械有限责任公司",
                                               lines=[("PUMP-VP5", 4)])).json()["order_id"]
        run_pending(h)
        robot.close()
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        status, error = order.status, order.error
    assert status == "quoted", f"order {status}: {error}"
    # sales-ops is told the robot refuses, once (its own push is refused alike)
    ops = misconfigured(hub)
    assert [(t.business_key, t.title) for t in ops] == [
        ("push:wecom:93000#1", "企业微信群机器人拒绝推送（错误码 93000）")], ops
