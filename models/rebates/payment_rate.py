"""Trailing 3-month payment rate (近3个月回款率) of a customer, for an order month.

For an order dated in month M: the customer's invoices DUE in the three calendar months
before M; rate = amount paid on or before each invoice's due date (capped at the invoice
amount) ÷ amount due. An invoice reversed by red-letter invoices (红冲) is due what is left
of it, nothing when reversed in full; money allocated to such a red-letter invoice is a
refund of the blue one's (see `PaymentRates`). No invoice due in that window (or nothing due
in total) → None, and the rule's `no_history` decides.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Iterable
from decimal import Decimal
from typing import NamedTuple


class InvoiceFact(NamedTuple):
    """A receivable invoice as the rate needs it (from `receivable_invoice`).

    A red-letter invoice (红字发票) that names the blue one it reverses (`reverses`) is due
    nothing itself: its (negative) amount reduces the blue's due, whatever its own dates. A
    blue invoice marked reversed in full is due nothing. A negative one naming no blue invoice
    is a credit note due on its own date: imports refuse such a row (every 红字发票 names its
    blue invoice), but one stored before that is still counted so."""

    invoice_no: str
    customer_id: Hashable
    due_on: dt.date
    amount: Decimal  # tax included
    reverses: str | None = None
    reversed_in_full: bool = False


class PaymentFact(NamedTuple):
    """Money received against one invoice (from `payment`); against a red-letter invoice
    that names its blue one, money refunded on that blue invoice."""

    invoice_no: str
    paid_on: dt.date
    amount: Decimal


def month_key(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _month_index(month: str | dt.date) -> int:
    if isinstance(month, dt.date):
        return month.year * 12 + month.month - 1
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def trailing_months(month: str | dt.date) -> tuple[str, str, str]:
    """The three calendar months before `month` (oldest first): 2027-02 → 2026-11 … 2027-01."""
    i = _month_index(month)
    return tuple(f"{j // 12:04d}-{j % 12 + 1:02d}" for j in (i - 3, i - 2, i - 1))


def _fen(amount: Decimal) -> int:
    # invoices and payments are stored with two places; anything finer is not money
    return int(Decimal(amount).scaleb(2).to_integral_value())


class PaymentRates:
    """Rates for many customers and months at once, from all invoice and payment rows.

    `rates(customer_id, "2027-02")` (or `.rate(...)`) → Decimal fraction or None. Sums are kept
    per (customer, due month) in integer fen, so each answer is three lookups.
    """

    def __init__(self, invoices: Iterable[InvoiceFact | tuple],
                 payments: Iterable[PaymentFact | tuple]):
        invoices = [InvoiceFact(*i) for i in invoices]
        reversed_fen: dict[str, int] = {}
        for inv in invoices:
            if inv.reverses is not None:
                reversed_fen[inv.reverses] = reversed_fen.get(inv.reverses, 0) + _fen(inv.amount)
        # what is due on each invoice: a blue one less its red ones; a red one naming its blue
        # invoice is not due itself (money on it is a refund of the blue's, below)
        refunds_of = {inv.invoice_no: inv.reverses for inv in invoices if inv.reverses is not None}
        invoices = [inv for inv in invoices if inv.reverses is None]
        due_fen = {inv.invoice_no: 0 if inv.reversed_in_full
                   else _fen(inv.amount) + reversed_fen.get(inv.invoice_no, 0)
                   for inv in invoices}
        on_time: dict[str, int] = {}
        due_of = {inv.invoice_no: inv.due_on for inv in invoices}
        for p in payments:
            p = PaymentFact(*p)
            invoice_no, fen = p.invoice_no, _fen(p.amount)
            blue = refunds_of.get(invoice_no)
            if blue is not None:
                # A 收款单 核销 against a red-letter 应收单 (Kingdee's 收款退款单, U8's 红字
                # 收款单) is money given back to the customer for the reversed part of the
                # blue invoice; finance nets it against what the blue one collected. So it
                # takes that much off what was collected on the blue invoice, dated like any
                # payment: given back by the blue's due date, less was paid on time; given
                # back later, it does not undo money paid on time (the red invoice already
                # took the reversed part off what is due). Counted, not refused: with the red
                # invoice naming its blue one it has this one reading. Imports refuse more
                # money on a red invoice than its amount (a 核销 cannot exceed it).
                invoice_no, fen = blue, -fen
            due_on = due_of.get(invoice_no)
            if due_on is not None and p.paid_on <= due_on:
                on_time[invoice_no] = on_time.get(invoice_no, 0) + fen
        self._fold((inv.customer_id, inv.due_on, due_fen[inv.invoice_no],
                    on_time.get(inv.invoice_no, 0)) for inv in invoices)

    @classmethod
    def from_invoice_sums(cls, invoices: Iterable[tuple[Hashable, dt.date, int, int]]
                          ) -> PaymentRates:
        """Rates from each invoice's (customer, due date, amount in fen, fen paid against it
        on or before the due date), e.g. summed by the database: the same rates as from the
        invoice and payment rows."""
        rates = cls.__new__(cls)
        rates._fold(invoices)
        return rates

    def _fold(self, invoices: Iterable[tuple[Hashable, dt.date, int, int]]) -> None:
        # (customer, month index) → [due fen, paid on time fen]
        self._sums: dict[tuple[Hashable, int], list[int]] = {}
        months: dict[dt.date, int] = {}
        for customer_id, due_on, due, on_time in invoices:
            month = months.get(due_on)
            if month is None:
                month = months[due_on] = _month_index(due_on)
            acc = self._sums.setdefault((customer_id, month), [0, 0])
            acc[0] += due
            acc[1] += max(0, min(on_time, due))
        self._cache: dict[tuple[Hashable, str], Decimal | None] = {}

    def amounts(self, customer_id: Hashable, month: str | dt.date) -> tuple[int, int]:
        """(due fen, paid on time fen) of the window before `month`."""
        i = _month_index(month)
        due = paid = 0
        for j in (i - 3, i - 2, i - 1):
            acc = self._sums.get((customer_id, j))
            if acc is not None:
                due += acc[0]
                paid += acc[1]
        return due, paid

    def rate(self, customer_id: Hashable, month: str | dt.date) -> Decimal | None:
        key = (customer_id, month if isinstance(month, str) else month_key(month))
        if key in self._cache:
            return self._cache[key]
        due, paid = self.amounts(customer_id, month)
        # nothing due (or only credit notes) is no history, not a 0 % or 100 % rate; a credit
        # note can leave less due than was paid on time: that is paid in full, not 125 %
        result = Decimal(min(paid, due)) / Decimal(due) if due > 0 else None
        self._cache[key] = result
        return result

    __call__ = rate


def trailing_payment_rate(invoices: Iterable[InvoiceFact | tuple],
                          payments: Iterable[PaymentFact | tuple],
                          order_month: str | dt.date) -> Decimal | None:
    """The rate of ONE customer's invoices and payments for an order in `order_month`
    ("YYYY-MM" or any date in it)."""
    invoices = [InvoiceFact(*i) for i in invoices]
    if not invoices:
        return None
    # one customer by contract: fold them together whatever id they carry
    folded = [i._replace(customer_id=0) for i in invoices]
    return PaymentRates(folded, payments).rate(0, order_month)
