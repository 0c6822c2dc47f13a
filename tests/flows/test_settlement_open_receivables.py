"""A receivables import (an export file, or a page of the finance sync) still open while a
settlement reads: its invoices and payments are stamped (`recorded_at`) from the import's
start but the settlement cannot see them before it commits. Registered like a deliveries or
returns import (`movement_import`, kind `receivables`), it holds back what the settlement
knew, so the next settlement takes them as news instead of missing them for good."""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
from pydantic import SecretStr
from sqlmodel import select

from connectors.finance import RestFinance
from flows import sales_facts
from flows.hub import current_hub
from flows.sales_facts import ImportRefused, import_receivables_file, sync_receivables
from flows.settlement import compute_month, settle_month, store_settlement
from models import MovementImport, SettlementRun, utcnow
from models.db import session_scope
from tests.flows.test_audit5_receivables import PAYMENTS, write
from tests.flows.test_settlement_open_import import horizon, tickets
from tests.flows.test_settlement_receivables_news import KANGDA, PAYRULE, month_lines
from tests.rebate_support import clock_from, customer_id, invoice, publish, signed_order
from tests.simulators.erp_sim import ErpSimulator

D = dt.date


@pytest.fixture(params=["file", "sync"])
def receive(request, hub, tmp_path):
    """Stores one payment the way finance sends it: an export imported from the CLI, or a
    page of the REST sync. Returns (store(invoice_no, payment_no, paid_on, amount), the
    ticket's source)."""
    if request.param == "file":
        def store(invoice_no: str, payment_no: str, on: dt.date, amount: str):
            path = write(tmp_path / "回款.csv", PAYMENTS + f"{payment_no},{invoice_no},{on},{amount}\n")
            return import_receivables_file(hub.db_url, path, "cli:finance")

        yield store, "回款.csv"
        return
    with ErpSimulator("token", page_size=10) as sim, RestFinance(
            sim.url, SecretStr("token"), 2.0, 2) as finance:
        rest_hub = dataclasses.replace(hub, finance=finance)

        def store(invoice_no: str, payment_no: str, on: dt.date, amount: str):
            sim.record_receivables(payments=[{"payment_no": payment_no, "invoice_no": invoice_no,
                                              "paid_on": on.isoformat(), "amount": amount}])
            return sync_receivables(rest_hub)

        yield store, "receivables:RestFinance"


def hold_open(monkeypatch):
    """Holds every receivables import at its last check, its rows written, its transaction
    open, until `go_on` is set; `written` is set when one gets there."""
    written, go_on = threading.Event(), threading.Event()
    checks = sales_facts._over_allocated

    def held(*args, **kwargs):
        problems = checks(*args, **kwargs)
        written.set()
        assert go_on.wait(60)
        return problems

    monkeypatch.setattr(sales_facts, "_over_allocated", held)
    return written, go_on


def test_a_payment_imported_while_the_settlement_reads_pays_its_rebate_next_month(
        hub, receive, monkeypatch):
    """康达 owes ¥10,000 due 20 November and orders ¥12,800 on 10 December (3 % if the
    trailing three months' invoices were paid on time). The payment (made 18 November) is
    being imported on 5 January, written but not committed, while December's settlement
    reads: December cannot see it and pays nothing. January's run pays the ¥384 — an order
    of the quarter before, which only the payment's news reopens. Before, December's run
    counted as knowing everything recorded up to its own start, after the payment's stamp,
    and the rebate was never paid."""
    store, source = receive
    db = hub.db_url
    clock_from(D(2027, 1, 5))
    publish(db, PAYRULE)
    kangda = customer_id(db, KANGDA)
    november = invoice(db, kangda, D(2026, 11, 20), "10000.00")
    in_december = signed_order(db, kangda, D(2026, 12, 10), [("MON-M8", 1)])
    for month in ("2026-10", "2026-11"):
        settle_month(current_hub(), month, documents=False)

    written, go_on = hold_open(monkeypatch)
    done: dict = {}
    worker = threading.Thread(target=lambda: done.update(
        summary=store(november, "SK-11", D(2026, 11, 18), "10000.00")))
    worker.start()
    try:
        assert written.wait(60)
        assert tickets(db)[-1] == ("receivables", source, None, False)
        december = compute_month(db, "2026-12")
    finally:
        go_on.set()
        worker.join(60)
    assert done["summary"].created == 1
    assert tickets(db)[-1] == ("receivables", source, "stored", True)
    assert december.drafts == []  # the payment was not visible to it: 0 % paid on time
    store_settlement(db, december, "test")

    clock_from(D(2027, 2, 5))
    settle_month(current_hub(), "2027-01", documents=False)
    assert month_lines(db, "2027-01") == [(in_december, "384.00", "rebate")]
    with session_scope(db) as s:
        run = s.exec(select(SettlementRun).where(SettlementRun.month == "2026-12")).one()
        held_back = s.exec(select(MovementImport).order_by(MovementImport.id.desc())).first()
    assert run.as_of < held_back.started_at  # it knew what was recorded before the import


def test_a_receivables_import_closes_its_registration_stored_or_refused(hub, receive):
    """Stored, the registration closes with the rows; refused (a payment of an invoice known
    nowhere, a date after today), right after, and nothing is held back any more."""
    store, source = receive
    db = hub.db_url
    clock_from(D(2026, 12, 5))
    kangda = customer_id(db, KANGDA)
    november = invoice(db, kangda, D(2026, 11, 20), "10000.00")
    store(november, "SK-1", D(2026, 11, 18), "4000.00")
    with pytest.raises(ImportRefused, match="晚于今天"):
        store(november, "SK-2", D(2027, 11, 18), "1000.00")
    assert [t for t in tickets(db) if t[0] == "receivables"][-2:] == [
        ("receivables", source, "stored", True), ("receivables", source, "refused", True)]
    now = utcnow()
    assert horizon(db, now) == now


def test_a_sync_registers_only_the_pages_that_carry_records(hub):
    """Every sync ends on a page without records (nothing after the cursor): it writes no
    invoice or payment, so a settlement has nothing to wait for and it is not registered;
    nor is a sync that finds nothing new. Two pages of one payment each: two tickets."""
    db = hub.db_url
    clock_from(D(2026, 12, 5))
    november = invoice(db, customer_id(db, KANGDA), D(2026, 11, 20), "10000.00")
    with ErpSimulator("token", page_size=1) as sim, RestFinance(
            sim.url, SecretStr("token"), 2.0, 2) as finance:
        rest_hub = dataclasses.replace(hub, finance=finance)
        sim.record_receivables(payments=[
            {"payment_no": f"SK-{n}", "invoice_no": november, "paid_on": "2026-11-18",
             "amount": "1000.00"} for n in (1, 2)])
        assert sync_receivables(rest_hub).created == 2
        assert sync_receivables(rest_hub).created == 0
        assert sim.receivables_pages == [None, "rcv-00000001", "rcv-00000002", "rcv-00000002"]
    assert tickets(db) == [("receivables", "receivables:RestFinance", "stored", True)] * 2
