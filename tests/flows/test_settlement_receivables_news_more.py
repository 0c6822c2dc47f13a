"""Late receivables news for orders of earlier quarters (docs/rebates.md, *Monthly
settlement*, 2.: "an invoice or payment recorded, changed or deleted since … for the
customer's orders dated in the three months after the due month of the invoice concerned,
whose payment rate it changes, earlier quarters' included"). Found by an audit; before the
fix, a refund keyed late on a red-letter invoice reopened the red invoice's due month, not
the blue one's, and an invoice finance's export moved to another customer reopened only the
new customer's orders.

The rule of these scenarios pays 3 % of an order's amount when the customer's rate for the
order's month is at least 80 %. MON-M8 sells at ¥12,800.00: 3 % is ¥384.00."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlmodel import select

from flows.hub import current_hub
from flows.rebate_data import payment_rates
from flows.sales_facts import import_receivables_file
from flows.settlement import _receivables_news, settle_month
from models import RebateLine, ReceivableInvoice
from models.base import utcnow
from models.db import get_engine, session_scope
from models.oplog import record_create
from tests.flows.test_audit5_receivables import write
from tests.flows.test_settlement_receivables_news import KANGDA, PAYRULE, pay
from tests.rebate_support import clock_from, customer_id, invoice, publish, signed_order

D = dt.date
RENHE = "浙江仁和医疗器械有限公司"
RULE = PAYRULE.replace("{min: 90%}", "{min: 80%}")


def red_invoice(db_url: str, number: str, blue: str, customer: int, issued: dt.date,
                due: dt.date, amount: str) -> str:
    with session_scope(db_url) as s:
        row = ReceivableInvoice(invoice_no=number, customer_id=customer, issued_on=issued,
                                due_on=due, amount=Decimal(amount), reverses=blue)
        s.add(row)
        record_create(s, row, "import")
    return number


def rate(db_url: str, customer: int, month: str) -> tuple[tuple[int, int], Decimal | None]:
    day = dt.date.fromisoformat(month + "-01")
    with session_scope(db_url) as s:
        rates = payment_rates(s, [customer], day, day)
        return rates.amounts(customer, month), rates.rate(customer, month)


def month_lines(db_url: str, month: str) -> list[tuple[str, str, str]]:
    with session_scope(db_url) as s:
        return [(ln.order_id, str(ln.amount), ln.kind) for ln in s.exec(
            select(RebateLine).where(RebateLine.month == month).order_by(RebateLine.id))]


# --------------------------------------------------------------- 1. a refund keyed late

def test_a_refund_keyed_late_reopens_the_orders_of_its_blue_invoices_due_month(hub):
    """docs/finance.md's own example, a month later: blue FP ¥8,000.00 due 2027-02-28,
    ¥5,000.00 paid 2027-02-05; red −¥2,000.00 issued 2027-02-06, due (its own date, as the
    ERP writes it) 2027-03-08; ¥2,000.00 given back through it on 2027-02-08.
    By hand, for an order dated in March 2027 (window Dec–Feb):
      without the refund: due 6,000.00, on time 5,000.00 → 83.33 % ≥ 80 %: ¥384.00;
      with the refund:    due 6,000.00, on time 3,000.00 → 50 %   < 80 %: nothing.
    The refund is keyed on 2027-07-08 (with its real date). The March order (2027-03-20,
    first quarter) was paid ¥384.00 by March's run; July's run must take it back. The news
    names the red invoice's own due date (March: orders April–June, the second quarter
    only) instead of the blue invoice's (February: orders March–May), so the first
    quarter is never read again and the ¥384.00 stays paid."""
    clock_from(D(2027, 3, 1))
    publish(hub.db_url, RULE)
    kangda = customer_id(hub.db_url, KANGDA)
    blue = invoice(hub.db_url, kangda, D(2027, 2, 28), "8000.00", [(D(2027, 2, 5), "5000.00")])
    red = red_invoice(hub.db_url, "HP-1", blue, kangda, D(2027, 2, 6), D(2027, 3, 8), "-2000.00")
    order = signed_order(hub.db_url, kangda, D(2027, 3, 20), [("MON-M8", 1)])
    assert rate(hub.db_url, kangda, "2027-03") == ((600_000, 500_000), Decimal(5) / 6)
    clock_from(D(2027, 4, 5))
    settle_month(current_hub(), "2027-03", documents=False)
    assert month_lines(hub.db_url, "2027-03") == [(order, "384.00", "rebate")]

    clock_from(D(2027, 7, 8))
    since = utcnow()
    pay(hub.db_url, red, kangda, D(2027, 2, 8), "2000.00", "TK-1")
    assert rate(hub.db_url, kangda, "2027-03") == ((600_000, 300_000), Decimal("0.5"))
    clock_from(D(2027, 8, 5))
    settle_month(current_hub(), "2027-07", documents=False)
    assert [ln[:2] for ln in month_lines(hub.db_url, "2027-07")] == [(order, "-384.00")]
    with get_engine(hub.db_url).connect() as conn:
        # the invoice concerned is the blue one: its due month decides whose rate changed
        # (the red one's own due month is read too)
        assert D(2027, 2, 1) in _receivables_news(conn, since)[kangda]


# ------------------------------------------- 2. an invoice moved to another customer

def test_an_invoice_finance_moves_to_another_customer_reopens_the_first_customers_orders(
        hub, tmp_path):
    """Finance booked FP ¥10,000.00 due 2027-02-20 to 康达 by mistake (it is 仁和's, unpaid);
    康达's other invoice, ¥10,000.00 due 2027-02-10, was paid on time.
    By hand, 康达's rate for March 2027: 10,000 of 20,000 → 50 % < 80 %: its order of
    2027-03-20 earns nothing. Corrected (the next export names 仁和; the import changes the
    row's customer, logged; the import refuses nothing): 10,000 of 10,000 → 100 %: ¥384.00.
    The correction comes on 2027-07-08; July's run must pay the March order. The operation
    log's row of the change carries `customer_id` and is taken for a deleted row, whose
    due date it then lacks: 康达 is not news, its first quarter is never read again."""
    clock_from(D(2027, 3, 1))
    publish(hub.db_url, RULE)
    kangda, renhe = customer_id(hub.db_url, KANGDA), customer_id(hub.db_url, RENHE)
    invoice(hub.db_url, kangda, D(2027, 2, 10), "10000.00", [(D(2027, 2, 8), "10000.00")])
    wrong = invoice(hub.db_url, kangda, D(2027, 2, 20), "10000.00")
    order = signed_order(hub.db_url, kangda, D(2027, 3, 20), [("MON-M8", 1)])
    assert rate(hub.db_url, kangda, "2027-03")[1] == Decimal("0.5")
    clock_from(D(2027, 4, 5))
    settle_month(current_hub(), "2027-03", documents=False)
    assert month_lines(hub.db_url, "2027-03") == []

    clock_from(D(2027, 7, 8))
    since = utcnow()
    summary = import_receivables_file(hub.db_url, write(
        tmp_path / "应收.csv", f"发票号,客户名称,开票日期,到期日,金额\n"
                              f"{wrong},{RENHE},2027-01-21,2027-02-20,10000.00\n"), "t")
    assert summary.updated == 1  # the invoice is 仁和's now: not refused, and logged
    assert rate(hub.db_url, kangda, "2027-03")[1] == Decimal(1)
    clock_from(D(2027, 8, 5))
    settle_month(current_hub(), "2027-07", documents=False)
    assert [ln[:2] for ln in month_lines(hub.db_url, "2027-07")] == [(order, "384.00")]
    with get_engine(hub.db_url).connect() as conn:
        assert _receivables_news(conn, since) == {kangda: {D(2027, 2, 1)},
                                                  renhe: {D(2027, 2, 1)}}


# ------------------------------------------------------- 3. a customer file merged in
