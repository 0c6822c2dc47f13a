"""Test helpers for rebates: signed, delivered orders written straight into the database (the
order pipeline itself is tested elsewhere), returns, invoices and payments, policies."""
from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from sqlmodel import select

from flows.policies import publish_policy
from models import (
    Customer, Delivery, IntentOrder, IntentOrderLine, Opportunity, Payment, Product, Quote,
    ReceivableInvoice, SalesReturn, Staff,
)
from models.base import SHANGHAI
from models.db import session_scope

_SEQ = itertools.count(1)


def customer_id(db_url: str, legal_name: str) -> int:
    with session_scope(db_url) as s:
        return s.exec(select(Customer.id).where(Customer.legal_name == legal_name)).one()


def signed_order(db_url: str, customer: int, order_date: dt.date, lines, *,
                 rep_id: str = "rep-zhangwei", signed_on: dt.date | None = None,
                 delivered_on: dt.date | None = None) -> str:
    """An intent order of `lines` [(sku, quantity[, unit price])] dated `order_date`, its quote
    signed on `signed_on` (default: the order date) and, unless `delivered_on` is False,
    delivered in full on `delivered_on` (default: the signing date)."""
    n = next(_SEQ)
    order_id = f"IOT{order_date:%y%m%d}-{n:05d}"
    signed_on = signed_on or order_date
    signed_at = dt.datetime.combine(signed_on, dt.time(10), SHANGHAI)
    with session_scope(db_url) as s:
        prices = {p.sku: p.list_price for p in s.exec(select(Product))}
        order = IntentOrder(id=order_id, event_id=f"t-{n}", sender_id="test",
                            customer_name="test", customer_id=customer, rep_id=rep_id,
                            order_date=order_date, status="invoicing",
                            created_at=dt.datetime.combine(order_date, dt.time(9), SHANGHAI))
        s.add(order)
        s.flush()
        total = Decimal("0.00")
        for no, line in enumerate(lines, start=1):
            sku, qty = line[0], line[1]
            price = Decimal(line[2]) if len(line) > 2 else prices[sku]
            total += price * qty
            s.add(IntentOrderLine(order_id=order_id, line_no=no, sku=sku, quantity=qty,
                                  unit_price=price, tax_rate=Decimal("0.13")))
            if delivered_on is not False:
                s.add(Delivery(delivery_no=f"D{n}", order_id=order_id, line_no=no, quantity=qty,
                               delivered_on=delivered_on or signed_on))
        s.add(Quote(code=f"QT-{n:06d}", order_id=order_id, customer_id=customer,
                    total_amount=total, tax_amount=Decimal("0.00"),
                    valid_until=order_date + dt.timedelta(days=15), status="signed",
                    signed_at=signed_at))
        s.add(Opportunity(order_id=order_id, customer_id=customer, rep_id=rep_id,
                          stage="invoicing", amount=total))
    return order_id


def return_goods(db_url: str, order_id: str, line_no: int, quantity: int, on: dt.date,
                 kind: str = "return") -> None:
    with session_scope(db_url) as s:
        s.add(SalesReturn(return_no=f"R{next(_SEQ)}", order_id=order_id, line_no=line_no,
                          quantity=quantity, returned_on=on, kind=kind))


def invoice(db_url: str, customer: int, due_on: dt.date, amount: str,
            paid: list[tuple[dt.date, str]] = ()) -> str:
    number = f"INV{next(_SEQ):06d}"
    with session_scope(db_url) as s:
        s.add(ReceivableInvoice(invoice_no=number, customer_id=customer,
                                issued_on=due_on - dt.timedelta(days=30), due_on=due_on,
                                amount=Decimal(amount)))
        s.flush()
        for day, value in paid:
            s.add(Payment(payment_no=f"P{next(_SEQ)}", invoice_no=number, customer_id=customer,
                          paid_on=day, amount=Decimal(value)))
    return number


def publish(db_url: str, text: str, by: str = "ops-01"):
    with session_scope(db_url) as s:
        person = s.get(Staff, by)
    return publish_policy(db_url, text, person)
