"""Quote arithmetic: tax-included prices, per-line tax, totals. Decimal only."""
from __future__ import annotations

from decimal import Decimal

from models.base import to_money


def line_amount(unit_price: Decimal, quantity: int) -> Decimal:
    return to_money(Decimal(unit_price) * quantity)


def line_tax(amount: Decimal, tax_rate: Decimal) -> Decimal:
    """Tax contained in a tax-included amount: amount − amount ÷ (1 + rate)."""
    rate = Decimal(tax_rate)
    return to_money(amount - amount / (1 + rate))


def quote_totals(lines) -> tuple[Decimal, Decimal]:
    """(total, tax) of lines having unit_price, quantity, tax_rate."""
    total = tax = Decimal("0.00")
    for ln in lines:
        amount = line_amount(ln.unit_price, ln.quantity)
        total += amount
        tax += line_tax(amount, ln.tax_rate)
    return total, tax
