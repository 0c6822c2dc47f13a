"""The intent-order and signing-completed flows on embedded connectors, under Prefect."""
from __future__ import annotations

import datetime as dt
import email
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from connectors.pades import validate_signed_pdf
from flows.order_steps import signing_link
from models import (
    Customer, Effect, IntentOrder, IntentOrderLine, Opportunity, OperationLog, Product, Quote,
    SigningToken, Todo, utcnow,
)
from models.db import session_scope
from models.oplog import apply_changes
from tests.support import (
    order_payload, order_status, post_order, run_pending, sign_on_the_builtin_page,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def client(hub):
    app = create_app(hub.settings, launcher=None)  # the test dispatches explicitly
    with TestClient(app) as c:
        yield c



def test_known_customer_order_gets_quote_mail_and_pdf(hub, client):
    r = post_order(client, order_payload(name="康达医疗", lines=[("MON-M8", 3)]))
    assert r.status_code == 202
    oid = r.json()["order_id"]
    run_pending(hub)
    view = order_status(client, oid).json()
    assert view["status"] == "quoted" and view["stage_label"] == "已报价"
    assert view["customer"]["legal_name"] == "江苏康达医疗设备有限公司"
    assert view["quote"]["total_amount"] == "38400.00"
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
        assert Path(quote.pdf_path).exists()
        effects = {e.kind for e in s.exec(select(Effect))}
    assert effects == {"signing_request", "quote_email"}
    mails = list((hub.settings.data_dir / "outbox").rglob("*.eml"))
    assert len(mails) == 1
    msg = email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default)
    assert quote.code in msg["Subject"]
    body = msg.get_body(("plain",)).get_content()
    assert signing_link(hub.settings, quote) in body


def test_new_customer_gets_standard_file_and_legal_review(hub, client):
    r = post_order(client, order_payload(name="安徽济民医疗器械有限责任公司",
                                         lines=[("PUMP-VP5", 4)]))
    oid = r.json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        cust = s.get(Customer, order.customer_id)
        assert cust.origin == "standard" and cust.qualification == "pending_review"
        assert cust.uscc == "91340100MA2NRD6E7B" and cust.legal_representative == "程立新"
        todo = s.exec(select(Todo).where(Todo.kind == "legal_review")).one()
        assert todo.assignee_id == "legal-01" and "mgr-east" in (todo.cc or "")
        assert s.exec(select(OperationLog).where(OperationLog.entity == "customer",
                                                 OperationLog.action == "create")).first()
    assert order.status == "quoted"


def test_shortage_raises_purchase_alert_with_manager_in_copy(hub, client):
    r = post_order(client, order_payload(name="广州华南医药贸易有限公司",
                                         lines=[("MON-M12", 12)], rep_id="rep-lina"))
    oid = r.json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        alert = s.exec(select(Todo).where(Todo.kind == "purchase_alert")).one()
    assert order.stock_short and order.status == "quoted"
    assert alert.assignee_id == "purchasing-01" and alert.cc == "mgr-south"
    assert "缺口 7" in alert.body
    alert_mails = [m for m in (hub.settings.data_dir / "outbox").rglob("*.eml")
                   if "采购预警" in email.message_from_bytes(
                       m.read_bytes(), policy=email.policy.default)["Subject"]]
    assert len(alert_mails) == 1
    msg = email.message_from_bytes(alert_mails[0].read_bytes(), policy=email.policy.default)
    assert "purchasing@example.com" in msg["To"] and "chenjing@example.com" in msg["Cc"]


def test_signing_through_builtin_page_advances_to_invoicing(hub, client):
    from deployments.demo import handwritten_signature
    import base64

    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
    link = signing_link(hub.settings, quote).removeprefix("http://testserver")
    page = client.get(link)
    assert page.status_code == 200 and "江苏康达医疗设备有限公司" in page.text
    form = {"signer_name": "顾晓峰", "consent": "yes", "signature": "data:image/png;base64,"
            + base64.b64encode(handwritten_signature()).decode()}
    assert client.post(link, data=form).status_code == 200
    again = client.post(link, data=form)  # single use
    assert again.status_code == 409 and "已签署" in again.text
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
        opp = s.exec(select(Opportunity).where(Opportunity.order_id == oid)).one()
        kinds = sorted(t.kind for t in s.exec(select(Todo)))
        stages = [json.loads(l.changes)["stage"][1] for l in s.exec(
            select(OperationLog).where(OperationLog.entity == "opportunity")
            .order_by(OperationLog.id)) if "stage" in json.loads(l.changes)]
    assert opp.stage == "invoicing" and quote.status == "signed"
    assert stages == ["quoted", "signed", "invoicing"]
    assert "invoice_preparation" in kinds
    signed_pdf = Path(quote.signed_pdf_path)
    report = validate_signed_pdf(signed_pdf, hub.esign.identity())
    assert report.intact and report.valid and report.trusted, report.summary
    assert report.timestamped and report.timestamp_valid, report.summary
    data = bytearray(signed_pdf.read_bytes())
    pos = len(data) // 3  # inside the original revision: covered by the signature
    data[pos] = data[pos] ^ 0x01
    tampered = signed_pdf.with_name("tampered.pdf")
    tampered.write_bytes(bytes(data))
    assert not validate_signed_pdf(tampered, hub.esign.identity()).intact
    drop = hub.settings.data_dir / "finance-drop"
    assert [p.name for p in drop.glob("*.json")] == [f"INV-{quote.code}.json"]


def test_invoice_request_carries_the_unit_ordered_not_the_catalogues_current_one(hub, client):
    # MON-M8 is ordered and signed in 台; the catalogue moves it to 套 before finance is asked:
    # the invoice must say 台, as the signed quote does
    from openpyxl import load_workbook

    oid, quote, answer = sign_on_the_builtin_page(hub, client)
    assert answer.status_code == 200
    with session_scope(hub.db_url) as s:
        [line] = s.exec(select(IntentOrderLine).where(IntentOrderLine.order_id == oid)).all()
        assert (line.sku, line.unit) == ("MON-M8", "台")
        apply_changes(s, s.get(Product, "MON-M8"), "test", unit="套")
    run_pending(hub)
    drop = hub.settings.data_dir / "finance-drop"
    sent = json.loads((drop / f"INV-{quote.code}.json").read_text(encoding="utf-8"))["request"]
    assert [(ln["sku"], ln["unit"], ln["quantity"]) for ln in sent["lines"]] == [
        ("MON-M8", "台", 2)]
    rows = list(load_workbook(drop / f"INV-{quote.code}.xlsx")["开票申请"].iter_rows(
        values_only=True))
    assert rows[1][4:8] == ("M8", "多参数监护仪", "台", 2)  # 型号, 品名, 单位, 数量


def test_rerunning_a_finished_batch_repeats_nothing(hub, client):
    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    from flows.intent_order import process_intent_orders

    summary = process_intent_orders(order_ids=[oid])
    assert summary["claimed"] == 0
    with session_scope(hub.db_url) as s:
        # force the order back as if the run had crashed after the mail
        order = s.get(IntentOrder, oid)
        order.status = "failed"
        s.add(order)
    process_intent_orders(order_ids=[oid])
    assert len(list((hub.settings.data_dir / "outbox").rglob("*.eml"))) == 1
    with session_scope(hub.db_url) as s:
        assert len(s.exec(select(Quote)).all()) == 1
        assert all(e.attempts == 1 for e in s.exec(select(Effect)))


def test_signing_link_expires_with_the_quote(hub, client):
    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
        token = s.exec(select(SigningToken).where(SigningToken.quote_id == quote.id)).one()
        token.expires_at = utcnow() - dt.timedelta(minutes=1)
        s.add(token)
    link = signing_link(hub.settings, quote).removeprefix("http://testserver")
    page = client.get(link)
    assert page.status_code == 410 and "链接已过期" in page.text
    assert client.post(link, data={"signer_name": "顾晓峰", "consent": "yes"}).status_code == 410
    assert client.get("/sign/" + "x" * 43).status_code == 404


def test_a_credit_code_sent_as_the_name_opens_the_file_without_becoming_a_name(hub, client):
    """The ERP sends the USCC of a company the registry knows: the file opens under its legal
    name, its former name is kept as a former name, and the code is not filed as a name."""
    r = post_order(client, order_payload(name="91340100MA2NRD6E7B", lines=[("PUMP-VP5", 1)]))
    oid = r.json()["order_id"]
    run_pending(hub)
    from models import CustomerAlias
    with session_scope(hub.db_url) as s:
        cust = s.get(Customer, s.get(IntentOrder, oid).customer_id)
        names = {a.name: a.kind for a in s.exec(select(CustomerAlias).where(
            CustomerAlias.customer_id == cust.id))}
    assert cust.legal_name == "安徽济民医疗器械有限责任公司"
    assert names == {"合肥济民医疗设备有限公司": "former"}
    # the next order with the code finds the file by its USCC
    r = post_order(client, order_payload(name="91340100MA2NRD6E7B", lines=[("PUMP-VP5", 1)]))
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, r.json()["order_id"]).customer_id == cust.id
        assert len(s.exec(select(CustomerAlias).where(
            CustomerAlias.customer_id == cust.id)).all()) == 1
