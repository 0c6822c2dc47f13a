"""Audit: the intent-order flow's stock check ("short → purchase alert, the rep's manager in
copy"), as its users meet it: the rep (his order and quote), the purchasing clerk who gets the
alert, the sales manager in copy, and ops when the inventory system refuses or is down."""
from __future__ import annotations

import email
import email.policy

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from api.app import create_app
from connectors.inventory import RestErpInventory
from models import Effect, IntentOrder, Quote, Todo
from models.catalog import StockLevel
from models.db import session_scope
from tests.simulators.erp_sim import STOCK_PATH, ErpSimulator
from tests.support import order_payload, post_order, run_pending

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def client(hub):
    app = create_app(hub.settings, launcher=None)  # the test dispatches explicitly
    with TestClient(app) as c:
        yield c


def mails(hub, subject_part: str) -> list:
    out = []
    for path in sorted((hub.settings.data_dir / "outbox").rglob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if subject_part in msg["Subject"]:
            out.append(msg)
    return out


def set_stock(hub, sku: str, on_hand: int, reserved: int = 0) -> None:
    with session_scope(hub.db_url) as s:
        level = s.get(StockLevel, sku)
        level.on_hand, level.reserved = on_hand, reserved
        s.add(level)


def no_retry_waits(monkeypatch) -> None:
    """The steps' own Prefect retries, without their 2/10/30 s waits (what the retries do is
    the point, not how long they wait)."""
    from flows import intent_order

    monkeypatch.setattr(intent_order, "STEPS", [step.with_options(retry_delay_seconds=0)
                                                for step in intent_order.STEPS])


def pdf_text(path: str) -> str:
    import re
    import shutil
    import subprocess

    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return re.sub(r"\s+", "", subprocess.run(["pdftotext", path, "-"], capture_output=True,
                                              text=True, check=True).stdout)


def purchase_alerts(hub) -> list[Todo]:
    with session_scope(hub.db_url) as s:
        return list(s.exec(select(Todo).where(Todo.kind == "purchase_alert").order_by(Todo.id)))


# --- defects -----------------------------------------------------------------------------

def test_two_orders_in_one_batch_that_together_exceed_the_stock_raise_a_purchase_alert(
        hub, client):
    """Two reps' customers each ask for MON-M12 (5 in stock): 3 and 4, posted a moment apart,
    so one `intent-order` run takes both. Together they want 7 of 5; the purchasing clerk
    expects an alert (and the second quote the note 部分物料库存不足…). What happens: the stock
    check reads the availability once for the batch and checks each order against the same
    5 — both pass, both quotes promise delivery without a note, nobody is alerted; the
    seven monitors are sold twice out of five."""
    first = post_order(client, order_payload(lines=[("MON-M12", 3)])).json()["order_id"]
    second = post_order(client, order_payload(name="广州华南医药贸易有限公司",
                                              lines=[("MON-M12", 4)], rep_id="rep-lina")
                        ).json()["order_id"]
    launcher = run_pending(hub)
    assert len(launcher.launched) == 1  # one run, one batch
    with session_scope(hub.db_url) as s:
        shorts = {oid: s.get(IntentOrder, oid).stock_short for oid in (first, second)}
        statuses = {s.get(IntentOrder, oid).status for oid in (first, second)}
    assert statuses == {"quoted"}
    assert any(shorts.values()), (
        "3 + 4 of MON-M12 against 5 in stock: neither order is flagged short")
    assert purchase_alerts(hub), "no purchase alert for a batch that wants 7 of 5"


def test_purchase_alert_counts_over_reserved_stock_in_the_shortfall(hub, client):
    """MON-M12: 5 on hand, 7 reserved (available -2, which connectors/inventory.py keeps
    negative on purpose: "over-reserved stock is a real shortage the purchase alert must
    see"). An order for 3 arrives. The clerk expects the alert to say that 5 must come in for
    this order (3 wanted, 2 already missing). What happens: the stock step clamps the
    availability to 0 and the alert reads 可用 0，缺口 3 — the clerk buys 3 and the order is
    still 2 short."""
    set_stock(hub, "MON-M12", on_hand=5, reserved=7)
    post_order(client, order_payload(lines=[("MON-M12", 3)]))
    run_pending(hub)
    [alert] = purchase_alerts(hub)
    assert "缺口 5" in alert.body, alert.body


def test_inventory_that_refuses_the_stock_query_blocks_the_orders_at_once(hub, client,
                                                                          monkeypatch):
    """The ERP token has expired: the ERP answers 401 (a PermanentError, the connector does
    not retry it). docs/architecture.md: "A permanent error (a provider refused, bad data)
    blocks at once" with an `order_blocked` to-do for the rep's manager. What happens: the
    whole-batch call sits outside the per-order error handling, so Prefect retries the task
    (4 ERP calls, 42 s), the order is only `failed` (待重试) and the sweeper will ask the ERP
    again after 1, 2, 4, 8 minutes before a person hears of it."""
    no_retry_waits(monkeypatch)
    with ErpSimulator("erp-token", stock={"MON-M8": 50}) as erp:
        expired = RestErpInventory(erp.url, SecretStr("expired-token"), 2.0, 4)
        monkeypatch.setattr(hub, "inventory", expired)
        oid = post_order(client, order_payload(lines=[("MON-M8", 2)])).json()["order_id"]
        run_pending(hub)
        calls = erp.calls[f"POST {STOCK_PATH}"]
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        blocked_todos = s.exec(select(Todo).where(Todo.order_id == oid,
                                                  Todo.kind == "order_blocked")).all()
    assert order.status == "blocked", (order.status, order.error)
    assert blocked_todos and blocked_todos[0].assignee_id == "mgr-east"
    assert calls == 1, f"a refused stock query asked {calls} times"


def test_order_rerun_short_on_another_sku_tells_purchasing_about_it(hub, client, monkeypatch):
    """An order for MON-M12 ×3 and STER-AC60 ×2. First run: M12 is short (1 in stock), the
    clerk gets the alert for M12; AC60 is fine (2). The signing provider refuses, the order is
    blocked; meanwhile the two AC60 sterilisers are sold elsewhere. Ops fix the account and
    run the order again as the docs say (status failed, `order_ids=[…]`). The stock check now
    finds AC60 short too; the clerk expects to hear about AC60. What happens: the purchase
    alert is keyed by the order alone; the rerun finds the old to-do (body unchanged: M12
    only) and its mail already sent — AC60's shortage is told to nobody, while the order is
    flagged short and the quote goes out."""
    from connectors.base import PermanentError
    from flows.intent_order import process_intent_orders

    set_stock(hub, "MON-M12", on_hand=1)
    oid = post_order(client, order_payload(lines=[("MON-M12", 3), ("STER-AC60", 2)])
                     ).json()["order_id"]
    real_signing = hub.esign.create_signing

    def refused(request):
        raise PermanentError("e签宝 refused: app not authorised", provider="esign", code="401")

    monkeypatch.setattr(hub.esign, "create_signing", refused)
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, oid).status == "blocked"
    [alert] = purchase_alerts(hub)
    assert "MON-M12" in alert.body and "STER-AC60" not in alert.body
    assert len(mails(hub, "采购预警")) == 1

    monkeypatch.setattr(hub.esign, "create_signing", real_signing)
    set_stock(hub, "STER-AC60", on_hand=0)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        order.status = "failed"  # as docs/architecture.md says for a rerun by hand
        s.add(order)
    process_intent_orders(order_ids=[oid])
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
    assert order.status == "quoted" and order.stock_short
    told = [a.body for a in purchase_alerts(hub)] + [
        m.get_body(("plain",)).get_content() for m in mails(hub, "采购预警")]
    assert any("STER-AC60" in text for text in told), (
        "STER-AC60 is now short but no alert or mail mentions it")


def test_unknown_purchasing_assignee_does_not_stall_short_orders_with_an_internal_error(
        hub, client, monkeypatch):
    """SALESOPS_PURCHASING_ASSIGNEE names a staff id that is not on file (a typo, or the clerk
    left; nothing checks it at start). A short order arrives. The rep expects his quote (the
    shortage is the purchasing side's matter), or at least a message that says what is wrong.
    What happens: the purchase alert to-do cannot be stored (todo.assignee_id is a foreign key
    to staff: IntegrityError), the stock step treats it as an unforeseen failure, the order
    fails with 库存检查：系统内部错误（详情已记入运行日志）, is retried by the task and the sweeper
    until it is blocked — no quote, and nobody is told why."""
    no_retry_waits(monkeypatch)
    monkeypatch.setattr(hub.settings, "purchasing_assignee", "purchasing-99")
    oid = post_order(client, order_payload(lines=[("MON-M12", 9)])).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
    assert "系统内部错误" not in (order.error or ""), order.error
    assert order.status == "quoted" or "purchasing-99" in (order.error or ""), (
        order.status, order.error)


def test_quote_mailed_after_a_rerun_that_found_a_shortage_carries_the_shortage_note(
        hub, client, monkeypatch):
    """First run: MON-M12 ×3 is in stock (5), the quote PDF is rendered without a note, then
    the signing provider refuses and the order is blocked. Meanwhile four M12 are sold
    elsewhere (1 left). Ops rerun the order as the docs say: the stock check now flags it
    short and alerts purchasing — and the quote goes to the customer. The rep expects the
    quote to say 部分物料库存不足，交期以采购确认为准 as every short order's quote does. What
    happens: the PDF rendered in the first run is reused as it is; the customer gets a quote
    that promises the monitors without the note while the order and the alert say short."""
    from flows.intent_order import process_intent_orders
    from tests.flows.test_audit_ops_recovery import blocked_by_esign

    oid = blocked_by_esign(hub, client, monkeypatch, order_payload(lines=[("MON-M12", 3)]))
    set_stock(hub, "MON-M12", on_hand=1)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        assert order.status == "blocked" and not order.stock_short
        order.status = "failed"
        s.add(order)
    process_intent_orders(order_ids=[oid])
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
    assert order.status == "quoted" and order.stock_short and purchase_alerts(hub)
    assert mails(hub, quote.code), "the quote mail went out"
    assert "部分物料库存不足" in pdf_text(quote.pdf_path), (
        "the order is short, the quote the customer got says nothing about it")


# --- checked and fine --------------------------------------------------------------------

def test_alert_for_rep_without_manager_goes_to_purchasing_alone_once_across_reruns(
        hub, client):
    """A rep without a manager (ops-01 has none): the alert goes to purchasing with no copy;
    a rerun of the order (stock still short) sends no second alert mail."""
    from flows.intent_order import process_intent_orders

    oid = post_order(client, order_payload(lines=[("STER-AC60", 5)], rep_id="ops-01",
                                           wanted_delivery_date="2026-12-20")
                     ).json()["order_id"]
    run_pending(hub)
    [alert] = purchase_alerts(hub)
    assert alert.assignee_id == "purchasing-01" and not alert.cc
    assert "STER-AC60 AC60：需求 5，可用 2，缺口 3" in alert.body
    assert "期望交期 2026-12-20" in alert.body and oid in alert.body
    [mail] = mails(hub, "采购预警")
    assert mail["To"] == "purchasing@example.com" and not mail["Cc"]
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
    assert "部分物料库存不足，交期以采购确认为准" in pdf_text(quote.pdf_path)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        order.status = "failed"
        s.add(order)
    process_intent_orders(order_ids=[oid])
    assert len(purchase_alerts(hub)) == 1 and len(mails(hub, "采购预警")) == 1
    with session_scope(hub.db_url) as s:
        done = s.exec(select(Effect).where(Effect.kind == "todo_mail")).all()
    assert len(done) == 1


def test_stock_exactly_enough_is_no_shortage(hub, client):
    oid = post_order(client, order_payload(lines=[("MON-M12", 5)])).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        assert not s.get(IntentOrder, oid).stock_short
    assert purchase_alerts(hub) == []


def test_serve_names_an_assignee_setting_that_names_nobody_on_file(hub, monkeypatch, capsys):
    """`salesops serve` says, before the first short order is blocked for it, which assignee
    setting names a staff id nobody on file has (a warning: a new hub serves before its staff
    is imported)."""
    from deployments import cli

    cli._warn_unknown_assignees(hub.settings)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(hub.settings, "purchasing_assignee", "purchasing-99")
    cli._warn_unknown_assignees(hub.settings)
    err = capsys.readouterr().err
    assert "SALESOPS_PURCHASING_ASSIGNEE=purchasing-99" in err and "不在员工名单中" in err
