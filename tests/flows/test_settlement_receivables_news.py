"""Invoices and payments recorded, changed or deleted since the last settlement run are news
for the orders whose payment rate they change, earlier quarters' included: a payment keyed
late with its real date pays the rebate it unlocks, a voided receipt claws back the one it
had unlocked — in the quarter's last month as in any other."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlmodel import select

from flows.hub import current_hub
from flows.settlement import _receivables_news, settle_month
from models import Payment, RebateLine, ReceivableInvoice
from models.db import get_engine, session_scope
from models.oplog import apply_changes, record_create, record_delete
from tests.rebate_support import clock_from, customer_id, invoice, publish, signed_order

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"
PAYRULE = """
code: PAY-M
name: 回款达标返利
effective_from: 2026-10-01
rules:
  - id: paid
    name: 回款达标月度返利
    clause: 第四条
    applies_to: {payment_rate: {min: 90%}}
    measure: amount
    period: month
    style: retroactive
    tiers:
      - {from: 0, rate: 3%}
    priority: 10
    stacking: stack
"""


def pay(db_url: str, invoice_no: str, customer: int, on: dt.date, amount: str, number: str):
    with session_scope(db_url) as s:
        row = Payment(payment_no=number, invoice_no=invoice_no, customer_id=customer,
                      paid_on=on, amount=Decimal(amount))
        s.add(row)
        record_create(s, row, "import")


def month_lines(db_url: str, month: str) -> list[tuple[str, str, str]]:
    with session_scope(db_url) as s:
        return [(ln.order_id, str(ln.amount), ln.kind) for ln in s.exec(
            select(RebateLine).where(RebateLine.month == month).order_by(RebateLine.id))]


def test_a_payment_keyed_after_the_quarter_pays_the_rebate_it_unlocks(hub):
    """康达 owes ¥10,000 due 20 October and ¥10,000 due 20 November; it orders ¥12,800 on 10
    November and on 10 December (3 % if the trailing three months' invoices were paid on
    time: ≥ 90 %). October's payment (made 18 October) is keyed on 8 December: December's
    run pays November's order ¥384. November's (made 18 November) is keyed on 8 January:
    January's run pays December's order ¥384 — an order of the quarter before, which only
    news of a delivery or return used to reopen."""
    clock_from(D(2026, 12, 5))
    publish(hub.db_url, PAYRULE)
    kangda = customer_id(hub.db_url, KANGDA)
    october = invoice(hub.db_url, kangda, D(2026, 10, 20), "10000.00")
    november = invoice(hub.db_url, kangda, D(2026, 11, 20), "10000.00")
    in_november = signed_order(hub.db_url, kangda, D(2026, 11, 10), [("MON-M8", 1)])
    in_december = signed_order(hub.db_url, kangda, D(2026, 12, 10), [("MON-M8", 1)])
    settle_month(current_hub(), "2026-11", documents=False)
    assert month_lines(hub.db_url, "2026-11") == []  # October's invoice unpaid: 0 %

    clock_from(D(2026, 12, 8))
    pay(hub.db_url, october, kangda, D(2026, 10, 18), "10000.00", "SK-10")
    clock_from(D(2027, 1, 5))
    settle_month(current_hub(), "2026-12", documents=False)
    assert month_lines(hub.db_url, "2026-12") == [(in_november, "384.00", "rebate")]

    clock_from(D(2027, 1, 8))
    pay(hub.db_url, november, kangda, D(2026, 11, 18), "10000.00", "SK-11")
    clock_from(D(2027, 2, 5))
    settle_month(current_hub(), "2027-01", documents=False)
    assert month_lines(hub.db_url, "2027-01") == [(in_december, "384.00", "rebate")]


def test_a_receipt_voided_after_the_quarter_claws_back_what_it_unlocked(hub):
    """November's invoice paid on time unlocked December's order (¥384, paid by December's
    run). Finance voids the receipt on 8 January (the import deletes it, logged): January's
    run claws the ¥384 back — the rate is 0 % now."""
    clock_from(D(2027, 1, 5))
    publish(hub.db_url, PAYRULE)
    kangda = customer_id(hub.db_url, KANGDA)
    invoice(hub.db_url, kangda, D(2026, 11, 20), "10000.00", [(D(2026, 11, 18), "10000.00")])
    in_december = signed_order(hub.db_url, kangda, D(2026, 12, 10), [("MON-M8", 1)])
    for month in ("2026-10", "2026-11", "2026-12"):
        settle_month(current_hub(), month, documents=False)
    assert month_lines(hub.db_url, "2026-12") == [(in_december, "384.00", "rebate")]

    clock_from(D(2027, 1, 8))
    with session_scope(hub.db_url) as s:
        for row in s.exec(select(Payment)).all():
            record_delete(s, row, "import")
            s.delete(row)
    clock_from(D(2027, 2, 5))
    settle_month(current_hub(), "2027-01", documents=False)
    [(order_id, amount, _)] = month_lines(hub.db_url, "2027-01")
    assert (order_id, amount) == (in_december, "-384.00")


def test_the_news_names_the_earliest_due_date_concerned(hub):
    """A changed invoice counts from its old due date too; a payment from its invoice's;
    a red-letter invoice from its blue one's; nothing recorded before `since` counts."""
    clock_from(D(2026, 12, 1))
    kangda = customer_id(hub.db_url, KANGDA)
    september = invoice(hub.db_url, kangda, D(2026, 9, 20), "5000.00")
    since = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    with get_engine(hub.db_url).connect() as conn:
        assert _receivables_news(conn, since) == {}
    clock_from(D(2026, 12, 3))
    with session_scope(hub.db_url) as s:
        row = s.exec(select(ReceivableInvoice).where(
            ReceivableInvoice.invoice_no == september)).one()
        apply_changes(s, row, "import", due_on=D(2026, 11, 20))  # the due date corrected
    with get_engine(hub.db_url).connect() as conn:
        # every due month concerned: the old one and the new one
        assert _receivables_news(conn, since) == {kangda: {D(2026, 9, 1), D(2026, 11, 1)}}
