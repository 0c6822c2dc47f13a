"""What finance's REST API sends that no column keeps — a NUL character, an amount of a
trillion yuan or more — stops the sync with the field named before anything is written
(PostgreSQL used to refuse the statement with a raw DataError; SQLite stored it)."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from pydantic import SecretStr

from connectors.base import PermanentError
from connectors.finance import RestFinance
from flows.sales_facts import sync_receivables
from tests.flows.test_audit5_receivables import KANGDA
from tests.flows.test_rebate_cli_guards import count
from tests.rebate_support import clock_from
from tests.simulators.erp_sim import ErpSimulator


def invoice(number: str, amount: str = "1000.00") -> dict:
    return {"invoice_no": number, "customer_uscc": None, "customer_name": KANGDA,
            "issued_on": "2026-10-01", "due_on": "2026-11-01", "amount": amount}


def payment(number: str, invoice_no: str) -> dict:
    return {"payment_no": number, "invoice_no": invoice_no, "paid_on": "2026-10-20",
            "amount": "600.00"}


@pytest.mark.parametrize("invoices, payments, field", [
    ([invoice("FP-A")], [payment("SK-\x001", "FP-A")], "payments[0].payment_no"),
    ([invoice("FP-A", "1000000000000.00")], [], "invoices[0].amount"),
])
def test_the_sync_refuses_what_no_column_keeps_and_writes_nothing(hub, invoices, payments,
                                                                   field):
    clock_from(dt.date(2026, 12, 1))
    with ErpSimulator("token", page_size=10) as sim, RestFinance(
            sim.url, SecretStr("token"), 2.0, 2) as finance:
        sim.record_receivables(invoices=invoices, payments=payments)
        with pytest.raises(PermanentError) as refused:
            sync_receivables(dataclasses.replace(hub, finance=finance))
    assert field in str(refused.value)
    for table in ("receivable_invoice", "payment", "connector_cursor", "movement_import"):
        assert count(hub.db_url, table) == 0, table
