"""The trailing payment rate with red-letter invoices (红字发票 / 红冲): an invoice reversed in
full is due nothing, a partial red-letter reduces what is due, wherever the red invoice's own
dates fall. Figures computed by hand."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from models.rebates.payment_rate import InvoiceFact, PaymentFact, PaymentRates

D = dt.date
Y = Decimal


def invoices(*extra: InvoiceFact) -> list[InvoiceFact]:
    """Customer 1, order month 2027-02, window 2026-11 … 2027-01:
    A 10,000.00 due 2026-11-15; B 5,000.00 due 2026-12-10; C 8,000.00 due 2027-01-10."""
    return [InvoiceFact("A", 1, D(2026, 11, 15), Y("10000.00")),
            InvoiceFact("B", 1, D(2026, 12, 10), Y("5000.00")),
            InvoiceFact("C", 1, D(2027, 1, 10), Y("8000.00")), *extra]


# A paid in full on time, C paid 5,000.00 on time, B unpaid (it was reversed, see below)
PAYMENTS = [PaymentFact("A", D(2026, 11, 10), Y("10000.00")),
            PaymentFact("C", D(2027, 1, 5), Y("5000.00"))]


def test_without_red_letter_invoices_b_drags_the_rate_down():
    # due 10,000 + 5,000 + 8,000 = 23,000; paid on time 10,000 + 5,000 = 15,000
    rates = PaymentRates(invoices(), PAYMENTS)
    assert rates.amounts(1, "2027-02") == (2_300_000, 1_500_000)
    assert rates.rate(1, "2027-02") == Y(15000) / Y(23000)


def test_a_red_letter_invoice_naming_its_blue_one_takes_it_off_and_reduces_another():
    """R-B reverses all of B, R-C 2,000.00 of C; both are issued (and "due") in March 2027,
    outside the window: they count against their blue invoices all the same.
    Due: 10,000 + (5,000 − 5,000) + (8,000 − 2,000) = 16,000; on time 10,000 + 5,000 = 15,000:
    93.75 % (was 65.2 %)."""
    reds = (InvoiceFact("R-B", 1, D(2027, 3, 1), Y("-5000.00"), reverses="B"),
            InvoiceFact("R-C", 1, D(2027, 3, 1), Y("-2000.00"), reverses="C"))
    rates = PaymentRates(invoices(*reds), PAYMENTS)
    assert rates.amounts(1, "2027-02") == (1_600_000, 1_500_000)
    assert rates.rate(1, "2027-02") == Y("0.9375")
    # in the window of April 2027 (2027-01 … 2027-03) the reds are not credit notes of March:
    # C alone, 6,000 due, 5,000 on time
    assert rates.amounts(1, "2027-04") == (600_000, 500_000)


def test_a_blue_invoice_marked_reversed_in_full_is_due_nothing():
    """B marked 已红冲 without its red invoice on file: 10,000 + 0 + 8,000 = 18,000 due,
    15,000 on time → 83.33…%."""
    flagged = invoices()
    flagged[1] = flagged[1]._replace(reversed_in_full=True)
    rates = PaymentRates(flagged, PAYMENTS)
    assert rates.amounts(1, "2027-02") == (1_800_000, 1_500_000)
    # and with its red invoice too, nothing is taken off twice
    rates = PaymentRates(flagged + [InvoiceFact("R-B", 1, D(2027, 3, 1), Y("-5000.00"),
                                                reverses="B")], PAYMENTS)
    assert rates.amounts(1, "2027-02") == (1_800_000, 1_500_000)


def test_money_paid_on_a_reversed_invoice_counts_up_to_what_is_left_of_it():
    """C reversed by 2,000.00 but paid 8,000.00 on time (finance has not moved the excess
    yet): it is paid in full, 6,000, not 8,000. Due 10,000 + 5,000 + 6,000 = 21,000, on time
    10,000 + 6,000 = 16,000."""
    paid = [PAYMENTS[0], PaymentFact("C", D(2027, 1, 5), Y("8000.00"))]
    rates = PaymentRates(invoices(InvoiceFact("R-C", 1, D(2027, 3, 1), Y("-2000.00"),
                                              reverses="C")), paid)
    assert rates.amounts(1, "2027-02") == (2_100_000, 1_600_000)


def test_money_on_a_red_letter_invoice_is_a_refund_of_its_blue_invoice_dated_by_the_refund():
    """C 8,000.00 due 2027-01-10, paid 5,000.00 on 2027-01-05; R-C reverses 2,000.00 of it and
    finance gives the customer 2,000.00 back on 2027-01-08 (a 收款单 核销 against R-C).
    Due 10,000 + 5,000 + (8,000 − 2,000) = 21,000 either way.
    Before (money on R-C counted nowhere): on time 10,000 + 5,000 = 15,000 → 71.43 %.
    After: C kept 5,000 − 2,000 = 3,000 by its due date: 10,000 + 3,000 = 13,000 → 61.90 %."""
    red = InvoiceFact("R-C", 1, D(2027, 1, 6), Y("-2000.00"), reverses="C")
    assert PaymentRates(invoices(red), PAYMENTS).amounts(1, "2027-02") == (2_100_000, 1_500_000)
    refund = PaymentFact("R-C", D(2027, 1, 8), Y("2000.00"))
    rates = PaymentRates(invoices(red), PAYMENTS + [refund])
    assert rates.amounts(1, "2027-02") == (2_100_000, 1_300_000)
    assert rates.rate(1, "2027-02") == Y(13000) / Y(21000)
    # given back after C's due date, it does not undo the 5,000 paid on time: 15,000 / 21,000
    late = refund._replace(paid_on=D(2027, 1, 20))
    assert PaymentRates(invoices(red), PAYMENTS + [late]).amounts(1, "2027-02") == (
        2_100_000, 1_500_000)
    # a refund of what was overpaid leaves the blue paid in full, never below nothing: C paid
    # 8,000 on time, 2,000 reversed and given back → 6,000 of 6,000; given back beyond what
    # was paid → 0 on C, not less
    paid_all = [PAYMENTS[0], PaymentFact("C", D(2027, 1, 5), Y("8000.00")), refund]
    assert PaymentRates(invoices(red), paid_all).amounts(1, "2027-02") == (2_100_000, 1_600_000)
    too_much = [PAYMENTS[0], refund._replace(amount=Y("9000.00"))]
    assert PaymentRates(invoices(red), too_much).amounts(1, "2027-02") == (2_100_000, 1_000_000)

