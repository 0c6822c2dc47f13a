"""Edges of the intent-order pipeline seen by its users: the purchasing clerk's shortage
alert, the customer's quote PDF, signing twice or late, finance's invoice request."""
from __future__ import annotations

import email
import email.policy

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from flows.dispatch import dispatch_pending
from flows.order_steps import signing_link
from models import Effect, IntentOrder, Quote, Todo
from connectors.base import TransientError
from models.db import session_scope
from tests.support import (
    InlineLauncher, order_payload, post_order, run_pending, sign_on_the_builtin_page,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def client(hub):
    app = create_app(hub.settings, launcher=None)
    with TestClient(app) as c:
        yield c



def test_shortage_counts_a_sku_ordered_on_two_lines_together(hub, client):
    # MON-M12: 5 in stock; 3 + 4 on two lines of the same order is 2 short
    oid = post_order(client, order_payload(name="广州华南医药贸易有限公司",
                                           lines=[("MON-M12", 3), ("MON-M12", 4)],
                                           rep_id="rep-lina")).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        alert = s.exec(select(Todo).where(Todo.kind == "purchase_alert")).one()
    assert order.stock_short
    assert "MON-M12 M12：需求 7，可用 5，缺口 2" in alert.body
    assert alert.body.count("MON-M12") == 1


class PrefectLikeLauncher(InlineLauncher):
    """Runs a flow once per idempotency key and, like the Prefect API, answers a key it has
    seen with the run it started then (whatever that run's outcome was)."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, str] = {}

    def launch(self, deployment, parameters, idempotency_key):
        if idempotency_key not in self.runs:
            self.runs[idempotency_key] = super().launch(deployment, parameters, idempotency_key)
        return self.runs[idempotency_key]


class FinanceDown:
    def __init__(self, real):
        self.real, self.down, self.calls = real, True, 0

    def request_invoice(self, request):
        self.calls += 1
        if self.down:
            raise TransientError("财务系统暂时不可用", provider="finance")
        return self.real.request_invoice(request)


def test_signed_quote_whose_invoice_request_failed_is_completed_by_the_sweeper(
        hub, client, monkeypatch):
    import base64
    import datetime as dt

    from deployments.demo import handwritten_signature
    from flows import signing
    from flows.sweeper import sweep
    from models import InboxEvent, Opportunity, utcnow

    monkeypatch.setattr(signing, "request_invoices",
                        signing.request_invoices.with_options(retries=0))
    launcher = PrefectLikeLauncher()
    oid = post_order(client, order_payload()).json()["order_id"]
    while dispatch_pending(hub.db_url, launcher, batch_size=50):
        pass
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
    link = signing_link(hub.settings, quote).removeprefix("http://testserver")
    form = {"signer_name": "顾晓峰", "consent": "yes", "signature": "data:image/png;base64,"
            + base64.b64encode(handwritten_signature()).decode()}
    assert client.post(link, data=form).status_code == 200
    finance = hub.finance = FinanceDown(hub.finance)
    assert dispatch_pending(hub.db_url, launcher) == 1  # the run fails: finance is down
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, oid).status == "signed"
        # the sweeper's lease has passed
        for row in s.exec(select(InboxEvent).where(InboxEvent.source == "esign:builtin")):
            row.dispatched_at = utcnow() - dt.timedelta(hours=1)
            s.add(row)
    finance.down = False
    sweep(hub, launcher, min_age_seconds=0)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        opp = s.exec(select(Opportunity).where(Opportunity.order_id == oid)).one()
        todos = [t.kind for t in s.exec(select(Todo).where(Todo.order_id == oid))]
        effects = s.exec(select(Effect).where(Effect.kind == "invoice_request")).all()
    assert order.status == "invoicing" and opp.stage == "invoicing"
    assert todos.count("invoice_preparation") == 1
    assert [e.status for e in effects] == ["done"]
    drop = hub.settings.data_dir / "finance-drop"
    assert [p.name for p in drop.glob("*.json")] == [f"INV-{quote.code}.json"]


def test_a_blocked_order_tells_the_reps_manager_by_mail(hub, client):
    # nobody to mail the quote to: the order is blocked at once, for the rep's manager
    payload = order_payload(name="广州华南医药贸易有限公司", rep_id="rep-lina")
    payload["customer"].pop("contact_email")
    with session_scope(hub.db_url) as s:
        from models import Customer, Staff
        for cust in s.exec(select(Customer)):
            cust.contact_email = None
            s.add(cust)
        rep = s.get(Staff, "rep-lina")
        rep.email = ""
        s.add(rep)
    oid = post_order(client, payload).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        todo = s.exec(select(Todo).where(Todo.kind == "order_blocked")).one()
    assert order.status == "blocked" and todo.assignee_id == "mgr-south"
    mails = [email.message_from_bytes(m.read_bytes(), policy=email.policy.default)
             for m in (hub.settings.data_dir / "outbox").rglob("*.eml")]
    blocked = [m for m in mails if oid in m["Subject"]]
    assert len(blocked) == 1
    assert "chenjing@example.com" in blocked[0]["To"]
    assert "客户与销售均无邮箱" in blocked[0].get_body(("plain",)).get_content()


def test_a_quote_signed_at_esign_cannot_be_signed_on_the_builtin_page(hub, client):
    import base64

    from deployments.demo import handwritten_signature
    from models import InboxEvent

    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
        quote.signing_provider, quote.signing_ref = "esign", "flow-123"
        quote.signing_url = "https://smlh5.esign.cn/sign/flow-123"
        s.add(quote)
    link = signing_link(hub.settings, quote).removeprefix("http://testserver")
    form = {"signer_name": "顾晓峰", "consent": "yes", "signature": "data:image/png;base64,"
            + base64.b64encode(handwritten_signature()).decode()}
    r = client.post(link, data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == quote.signing_url
    with session_scope(hub.db_url) as s:
        assert not s.exec(select(InboxEvent).where(InboxEvent.source.like("esign:%"))).all()
    assert client.get(link, follow_redirects=False).status_code == 302  # still unused


def test_the_customer_gets_the_signed_quote_by_mail_once(hub, client):
    import hashlib

    from flows.signing import complete_signings

    oid, quote, done = sign_on_the_builtin_page(hub, client)
    assert done.status_code == 200 and "通过邮件发送给您" in done.text  # the page's promise
    run_pending(hub)
    complete_signings(quote_codes=[quote.code])  # a rerun sends nothing again

    def signed_mails():
        mails = [email.message_from_bytes(m.read_bytes(), policy=email.policy.default)
                 for m in (hub.settings.data_dir / "outbox").rglob("*.eml")]
        return [m for m in mails if m["Subject"].startswith(f"已签署报价单 {quote.code}")]

    [mail] = signed_mails()
    assert mail["To"] == "guxf@example.com" and "zhangwei@example.com" in mail["Cc"]
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == f"报价单-{quote.code}-已签署.pdf"
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
    assert hashlib.sha256(attachment.get_content()).hexdigest() == quote.signed_pdf_sha256
    assert "含税合计人民币 25,600.00 元" in mail.get_body(("plain",)).get_content()


def test_purchase_alert_names_the_customer_by_its_legal_name(hub, client):
    oid = post_order(client, order_payload(name="康达医疗", lines=[("MON-M12", 9)])
                     ).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        alert = s.exec(select(Todo).where(Todo.kind == "purchase_alert")).one()
    assert alert.body.startswith(f"客户“江苏康达医疗设备有限公司”的意向单 {oid} 以下物料库存不足")
    assert "MON-M12 M12：需求 9，可用 5，缺口 4" in alert.body
