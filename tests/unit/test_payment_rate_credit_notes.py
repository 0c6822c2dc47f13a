"""The trailing payment rate with credit notes (round 13): never above 100 %."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from models.rebates.payment_rate import InvoiceFact, PaymentFact, PaymentRates

D = dt.date


def test_a_credit_note_never_makes_the_rate_exceed_one_hundred_percent():
    """Invoice of 100,000 paid in full on time, and a credit note of −20,000 (goods returned)
    due in the same window: 80,000 due, 100,000 paid on time. The customer paid in full:
    100 %, not the 125 % a rebate explanation would otherwise print."""
    invoices = [InvoiceFact("INV1", 1, D(2027, 1, 15), Decimal("100000.00")),
                InvoiceFact("CN1", 1, D(2027, 1, 20), Decimal("-20000.00"))]
    payments = [PaymentFact("INV1", D(2027, 1, 10), Decimal("100000.00"))]
    assert PaymentRates(invoices, payments).rate(1, "2027-02") == Decimal(1)
    # paid 70,000 of it on time: the credit note cancels part of the unpaid rest, 70 ÷ 80
    late = [PaymentFact("INV1", D(2027, 1, 10), Decimal("70000.00"))]
    assert PaymentRates(invoices, late).rate(1, "2027-02") == Decimal("0.875")
