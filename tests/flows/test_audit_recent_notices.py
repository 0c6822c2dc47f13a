"""Audit of the last session's fixes around notices (to-do mails and pushes, `_notice`,
`report_misconfigured`, the inbox-sweeper's `tell_untold`), SMTP refusals (`SentMail`,
`RecipientsRefused`) and the stock check's purchase alert — over a REAL SMTP conversation
(tests/simulators/smtp_sim.py) and the 企业微信 robot simulator, no mocks of the connectors.

Each failing test says what the user does, what he expects, and what happens."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from api.app import create_app
from models import Staff, Todo, utcnow
from models.db import session_scope
from tests.connectors.test_audit_mail_push import (  # noqa: F401 - pki is a fixture
    REFUSED, misconfigured, pki, smtp_hub,
)
from tests.simulators.smtp_sim import SmtpFaults, SmtpSimulator
from tests.support import order_payload, post_order

PURCHASING = "purchasing@example.com"
MANAGER = "wangqiang@example.com"   # mgr-east, rep-zhangwei's manager


@pytest.fixture
def client(hub):
    app = create_app(hub.settings, launcher=None)  # nothing is dispatched: steps run by hand
    with TestClient(app) as c:
        yield c


def mails_to(sim: SmtpSimulator, address: str) -> list:
    """The messages the SMTP server stored for `address` (parsed by the email package)."""
    return [m for m, (_, rcpts) in zip(sim.messages, sim.envelopes) if address in rcpts]


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def sweep_for(hub, hours: float) -> None:
    """The inbox-sweeper's `tell_untold`, run every few minutes for `hours` (its backoff
    decides what it tries)."""
    from flows.notices import tell_untold

    start = utcnow()
    for minute in range(3, int(hours * 60) + 1, 7):
        tell_untold(hub, now=start + dt.timedelta(minutes=minute))


# --- 1. a purchase alert's news, its mail failing once, is never told -----------------------

def test_purchase_alert_news_is_mailed_once_the_mail_server_is_back(hub, client, pki):
    """An order wants MON-M12 ×3 and STER-AC60 ×2. First stock check: M12 short, purchasing
    gets the alert (manager in copy). A rerun finds AC60 short too: the open alert's text now
    lists AC60 and it is mailed again under its news key — but the mail server answers 451 at
    that moment (a notice never fails its step). Expected: once the server is back, the
    inbox-sweeper (or the next rerun) mails purchasing the news about AC60. Happens: the
    alert's body was already rewritten before the mail, so every rerun finds "AC60 told"
    (`_purchase_alert` reads `told` from the bodies) and mails nothing; the sweeper's
    `_untold` looks only at the to-do's first mail (`todo_mail` <kind>:<key>, done) and never
    at the `#news` effect left `started`. Purchasing never hears of AC60."""
    from flows.order_steps import check_stock

    oid = post_order(client, order_payload(lines=[("MON-M12", 3), ("STER-AC60", 2)])
                     ).json()["order_id"]
    with SmtpSimulator(pki) as sim:
        h = smtp_hub(hub, sim, pki)
        check_stock(h, oid, {"MON-M12": 1, "STER-AC60": 5}, {})      # M12 short: alerted
        assert len(mails_to(sim, PURCHASING)) == 1
        sim.faults = SmtpFaults(rate_451=1.0, stages=("DATA",))      # the server hiccups
        check_stock(h, oid, {"MON-M12": 1, "STER-AC60": 0}, {})      # AC60 newly short
        sim.faults = SmtpFaults()                                    # the server is back
        check_stock(h, oid, {"MON-M12": 1, "STER-AC60": 0}, {})      # a rerun of the step
        sweep_for(h, hours=3)
        got = [text_of(m) for m in mails_to(sim, PURCHASING)]
        duplicates = sim.duplicates()
    with session_scope(hub.db_url) as s:
        [alert] = s.exec(select(Todo).where(Todo.kind == "purchase_alert")).all()
    assert "STER-AC60" in alert.body  # the to-do says so; nobody was told
    assert any("STER-AC60" in text for text in got), (
        f"purchasing was never mailed that STER-AC60 is short; got {len(got)} mail(s)")
    assert not duplicates


# --- 2. a stored refusal reported again each time the to-do is told --------------------------

def test_a_copy_refused_for_good_is_reported_to_sales_ops_once(hub, pki, monkeypatch):
    """The customer refuses to sign: a to-do for the rep, his manager in copy (as
    `signing_ended` opens it), mailed and pushed. The manager's mailbox answers 550: the rep
    gets the mail, sales-ops gets one 邮箱拒收 to-do. The group robot is busy (-1), so the push
    is left for later. Sales-ops puts the manager's new address in the staff file and marks
    the to-do done. Expected: nothing more about that old refusal (no new mail was refused).
    Happens: the hourly e签宝 reconciliation tells the to-do again (its push is not done:
    `untold_todos`), `notify_todo` → `mail_todo` → `send_mail` reads the mail's stored result
    and reports its `refused` address again: a second 邮箱拒收 to-do (and mail, push) for a
    mail sent hours ago — and one more each hour, every time sales-ops closes it."""
    from connectors.notify import WeComRobotNotifier
    from flows.notices import notify_todo, open_todo
    from flows.signing import reconcile_esign
    from tests.simulators.wecom_sim import WeComRobotSimulator

    with session_scope(hub.db_url) as s:
        todo = open_todo(s, actor="callback:esign", kind="signing_ended", key="Q2611-AUDIT1:7",
                         title="客户拒签：报价单 Q2611-AUDIT1",
                         body="客户“江苏康达医疗设备有限公司”的报价单 Q2611-AUDIT1 在 e签宝客户拒签。",
                         assignee_id="rep-zhangwei", cc=["mgr-east"], due_hours=24)
        s.flush()
        todo_id = todo.id
    with SmtpSimulator(pki, refuse={MANAGER: REFUSED.format(MANAGER)}) as sim, \
            WeComRobotSimulator("robot-key") as robot_sim:
        robot = WeComRobotNotifier(SecretStr("robot-key"), base_url=robot_sim.send_url,
                                   timeout=2.0, attempts=1, backoff_initial=0.01,
                                   backoff_max=0.02)
        h = dataclasses.replace(smtp_hub(hub, sim, pki), notifier=robot)
        robot_sim.busy_next(1000)                 # the robot answers -1 系统繁忙 for now
        notify_todo(h, todo_id)                   # the callback tells the to-do
        assert len(mails_to(sim, "zhangwei@example.com")) == 1
        [report] = misconfigured(hub)
        assert report.title == f"邮箱拒收：{MANAGER}"
        with session_scope(hub.db_url) as s:      # sales-ops fixes the address, marks it done
            manager = s.get(Staff, "mgr-east")
            manager.email = "wangqiang.new@example.com"
            s.add(manager)
            done = s.get(Todo, report.id)
            done.status = "done"
            s.add(done)
            signing = s.get(Todo, todo_id)        # an hour and more later
            signing.created_at = utcnow() - dt.timedelta(hours=2)
            s.add(signing)
        monkeypatch.setattr(h.settings, "esign_backend", "esign")
        reconcile_esign(h)                        # the hourly e签宝 reconciliation
        reconcile_esign(h)                        # and the next hour's
        robot.close()
    reports = [t.title for t in misconfigured(hub)]
    assert reports == [f"邮箱拒收：{MANAGER}"], (
        f"one refusal, reported {len(reports)} times: {reports}")


# --- 3. a copy recipient's lasting 4xx keeps the alert from purchasing, silently ------------

def test_a_full_copy_mailbox_does_not_keep_the_purchase_alert_from_purchasing_for_ever(
        hub, client, pki):
    """The sales manager's mailbox is over quota: the server answers 452 4.2.2 at RCPT (as
    Gmail/Exchange do for a full mailbox; it lasts until he empties it, days). A short order
    opens a purchase alert for purchasing, the manager in copy. Expected: purchasing — the
    one who must act — gets the alert within the day, or at least sales-ops is told which
    mailbox keeps it back. Happens: `SmtpMailer._transaction` sends to nobody while any RCPT
    has a 4xx, the sweeper tries again every hour (`tell_untold`) and each try meets the
    same 452: purchasing never gets the alert and nobody is told (a TransientError is only
    logged; `report_misconfigured` is for PermanentErrors)."""
    from flows.order_steps import check_stock

    full = "452 4.2.2 <wangqiang@example.com>: Recipient address rejected: Mailbox full"
    oid = post_order(client, order_payload(lines=[("MON-M12", 9)])).json()["order_id"]
    with SmtpSimulator(pki, refuse={MANAGER: full}) as sim:
        h = smtp_hub(hub, sim, pki)
        check_stock(h, oid, {"MON-M12": 5}, {})
        sweep_for(h, hours=24)
        to_purchasing = mails_to(sim, PURCHASING)
    told_ops = [t.title for t in misconfigured(hub)]
    assert to_purchasing or any(MANAGER in title for title in told_ops), (
        "a day later purchasing still has no purchase alert and nobody was told why")


# --- 4. sales-ops naming nobody on file -----------------------------------------------------

def test_serve_warns_of_an_ops_assignee_that_names_nobody_on_file(hub, monkeypatch):
    """SALESOPS_OPS_ASSIGNEE (added in the last session: who hears of dead mailboxes and
    removed robots) names a staff id not on file (a typo; the person left). Expected: as for
    every other assignee setting, `unknown_assignees` (what `salesops serve` warns of) names
    it. Happens: `ops_assignee` is missing from `notices.ASSIGNEE_SETTINGS`: no warning."""
    from flows.notices import unknown_assignees

    assert unknown_assignees(hub.db_url, hub.settings) == []
    monkeypatch.setattr(hub.settings, "ops_assignee", "ops-99")
    texts = unknown_assignees(hub.db_url, hub.settings)
    assert any("SALESOPS_OPS_ASSIGNEE=ops-99" in t for t in texts), texts


def test_a_dead_mailbox_is_not_reported_to_nobody_when_the_ops_assignee_is_unknown(
        hub, client, pki, monkeypatch):
    """Same setting naming nobody on file; the rep's manager's mailbox is closed (550), a
    short order's purchase alert has him in copy. Expected: the refusal reaches a person
    (a to-do to someone on file, e.g. the fallback decider or admin, naming the mailbox and
    the setting to fix). Happens: `report_misconfigured` cannot store the to-do (foreign key
    to staff), swallows the IntegrityError in a log line and returns: the dead mailbox is
    told to nobody, and stays dead for every later mail."""
    from flows.order_steps import check_stock

    monkeypatch.setattr(hub.settings, "ops_assignee", "ops-99")
    oid = post_order(client, order_payload(lines=[("MON-M12", 9)])).json()["order_id"]
    with SmtpSimulator(pki, refuse={MANAGER: REFUSED.format(MANAGER)}) as sim:
        h = smtp_hub(hub, sim, pki)
        check_stock(h, oid, {"MON-M12": 5}, {})
        assert len(mails_to(sim, PURCHASING)) == 1   # purchasing got the alert
    with session_scope(hub.db_url) as s:
        staff_ids = set(s.exec(select(Staff.id)))
    reports = misconfigured(hub)
    assert reports and all(t.assignee_id in staff_ids for t in reports), (
        "the manager's dead mailbox was reported to nobody")
    assert MANAGER in reports[0].body


# --- checked and fine (kept: cheap) ---------------------------------------------------------

def test_refused_copy_alert_reads_right_and_is_told_once_across_sweeps(hub, client, pki):
    """A short order's purchase alert: purchasing gets it (Chinese subject decoded by the
    email package), the dead manager's mailbox is reported to sales-ops once; the sweeper run
    many times and a rerun of the stock check send nothing twice."""
    from flows.order_steps import check_stock

    oid = post_order(client, order_payload(lines=[("MON-M12", 9)])).json()["order_id"]
    with SmtpSimulator(pki, refuse={MANAGER: REFUSED.format(MANAGER)}) as sim:
        h = smtp_hub(hub, sim, pki)
        check_stock(h, oid, {"MON-M12": 5}, {})
        check_stock(h, oid, {"MON-M12": 5}, {})
        sweep_for(h, hours=5)
        [alert_mail] = mails_to(sim, PURCHASING)
        assert not mails_to(sim, MANAGER)
        assert not sim.duplicates()
    assert str(alert_mail["Subject"]) == f"【待办】采购预警：意向单 {oid} 库存不足"
    assert "MON-M12 M12：需求 9，可用 5，缺口 4" in text_of(alert_mail)
    assert [t.title for t in misconfigured(hub)] == [f"邮箱拒收：{MANAGER}"]


def pdf_text(data: bytes, path) -> str:
    import re
    import shutil
    import subprocess

    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path.write_bytes(data)
    return re.sub(r"\s+", "", subprocess.run(["pdftotext", str(path), "-"], capture_output=True,
                                              text=True, check=True).stdout)


# --- 5. the quote PDF rendered again after e签宝 got the first one ----------------------------

def test_quote_rendered_again_after_the_signing_request_is_the_pdf_the_customer_signs(
        hub, client, pki, tmp_path):
    """An order's first run renders its quote (MON-M12 ×3, 5 in stock: no shortage note),
    creates the e签宝 signing flow with that PDF, then the quote mail fails (the mail server
    answers 451 for minutes: the step gives up, the order waits for the sweeper). Meanwhile
    three M12 are sold elsewhere. The rerun's stock check finds the order short; `render_quote`
    renders the still-`draft` quote again with 部分物料库存不足… (last session's fix) — but the
    signature request is an effect already done: e签宝 keeps the FIRST PDF. Expected: the
    customer signs the document he was mailed (and `quote.pdf_sha256` is the hash of the
    document under signature). Happened: the mail carried the new PDF (with the note), e签宝
    showed and signed the old one (without it), and the hub's `pdf_sha256` named a file that
    was not the one signed. Once the signature is requested the quote's PDF stays as sent."""
    import hashlib

    from connectors.base import TransientError
    from connectors.esign_tsign import TsignSigning
    from flows.customer_check import check_customer
    from flows.order_steps import (
        check_stock, render_quote, request_signature, send_quote_mail,
    )
    from flows.rebate_preview import preview_for_order
    from models import Quote
    from tests.simulators.esign_sim import TsignSimulator

    oid = post_order(client, order_payload(name="康达医疗", lines=[("MON-M12", 3)],
                                           contact_phone="13800000000")).json()["order_id"]
    esign_sim = TsignSimulator("7438000001", "sim-app-secret-0123456789").start()
    try:
        esign = TsignSigning(esign_sim.url, "7438000001", SecretStr("sim-app-secret-0123456789"),
                             timeout=2.0, attempts=2, backoff_initial=0.01, backoff_max=0.05,
                             poll_interval=0.01)
        with SmtpSimulator(pki, faults=SmtpFaults(rate_451=1.0, stages=("DATA",))) as sim:
            h = dataclasses.replace(smtp_hub(hub, sim, pki), esign=esign)
            check_customer(h, oid)
            check_stock(h, oid, {"MON-M12": 5}, {})
            preview_for_order(h, oid)
            render_quote(h, oid)
            request_signature(h, oid)
            with pytest.raises(TransientError):
                send_quote_mail(h, oid)                 # the quote mail fails for now
            sim.faults = SmtpFaults()
            # the rerun (the sweeper's): M12 now short
            check_stock(h, oid, {"MON-M12": 2}, {})
            preview_for_order(h, oid)
            render_quote(h, oid)
            request_signature(h, oid)
            send_quote_mail(h, oid)
            [mail] = mails_to(sim, "guxf@example.com")
        with session_scope(hub.db_url) as s:
            quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
            code, pdf_sha = quote.code, quote.pdf_sha256
        flow = esign_sim.flow_for(code)
        under_signature = esign_sim.files[flow.file_ids[0]].data
    finally:
        esign_sim.stop()
    [attachment] = list(mail.iter_attachments())
    mailed = attachment.get_content()
    # the document under signature is the quote: kept as first requested (e签宝 has no flow
    # replaced here), so the mail carries it too — the shortage is purchasing's (its alert)
    assert mailed == under_signature
    assert "部分物料库存不足" not in pdf_text(mailed, tmp_path / "mailed.pdf")
    assert hashlib.sha256(under_signature).hexdigest() == pdf_sha


# --- 6. a push that cannot be built fails the step that opened the to-do ---------------------

def test_a_mobile_written_with_spaces_does_not_fail_the_customer_check(hub, client):
    """The rep's manager's mobile is on file as "139 0000 0001" (as people write it; the
    staff table takes any text up to 20 characters). An order names a company new to us:
    the customer check opens its file and the legal review (the manager in copy), mails and
    pushes it. Expected: a notice never fails the step that opened its to-do (notices.py):
    the order goes on, legal is told (the mention left out, or sales-ops told of the
    number). Happens: `notices.push` builds the PushMessage outside `_notice`; PushMessage
    refuses the mobile with a ValueError, which leaves `notify_todo` and fails the
    customer check (系统内部错误 in the log, the task retried). The retry finds the new file
    by name and links it without telling anyone: the legal review's push is never made (no
    `push` effect at all, so `tell_untold`, which pushes only what was tried, never does)."""
    from flows.customer_check import check_customer

    with session_scope(hub.db_url) as s:
        manager = s.get(Staff, "mgr-east")
        manager.mobile = "139 0000 0001"
        s.add(manager)
    oid = post_order(client, order_payload(name="安徽济民医疗器械有限责任公司",
                                           lines=[("PUMP-VP5", 4)])).json()["order_id"]
    check_customer(hub, oid)   # raises ValueError: not a mobile number: '139 0000 0001'
    with session_scope(hub.db_url) as s:
        review = s.exec(select(Todo).where(Todo.kind == "legal_review")).one()
    assert review.status == "open"
