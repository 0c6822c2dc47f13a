"""How amounts and percentages are written in the Chinese texts people read."""
from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

_HUNDRED = Decimal(100)


class Memo(dict):
    """`make(key)` remembered per key, read as `memo[key]` (a hit is one dict lookup). A
    settlement writes the same amounts and rates on many lines. Bounded: emptied when full, so
    a long-lived process keeps at most `limit` values. Keys must be equal only when `make`
    gives them equal values (integer fen: yes; Decimals 0.5 and 0.50 as text: no)."""

    __slots__ = ("limit", "make")

    def __init__(self, make: Callable[[Any], Any], limit: int = 100_000):
        super().__init__()
        self.make = make
        self.limit = limit

    def __missing__(self, key: Any) -> Any:
        if len(self) >= self.limit:
            self.clear()
        value = self[key] = self.make(key)
        return value


def _amount(fen: int) -> tuple[Decimal, str, str]:
    """Integer fen as (Decimal yuan with two places, its text, as people read it): 123456 →
    (Decimal('1234.56'), '1234.56', '1,234.56 元'). Exact; made together, since a settlement
    writes most amounts in all three ways."""
    yuan = Decimal(fen).scaleb(-2)
    text = str(yuan)  # two decimal places: never in exponent notation
    if -100_000 < fen < 100_000:  # under 1,000 yuan: no thousands separator
        return yuan, text, text + " 元"
    whole, cents = divmod(-fen if fen < 0 else fen, 100)
    return yuan, text, f"{'-' if fen < 0 else ''}{whole:,}.{cents:02d} 元"


_AMOUNTS = Memo(_amount)


def fen_to_yuan(fen: int) -> Decimal:
    """Integer fen → Decimal yuan with two places (exact)."""
    return _AMOUNTS[fen][0]


def money(value: Decimal | int) -> str:
    """12345.6 → '12,345.60 元' (value in yuan)."""
    return f"{Decimal(value).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,} 元"


def money_fen(fen: int) -> str:
    """12345 → '123.45 元', with thousands separators (hot path: remembered per fen)."""
    return _AMOUNTS[fen][2]


def fen_text(fen: int) -> str:
    """12345 → '123.45' (for JSON inputs: exact, no float); the text of fen_to_yuan(fen)."""
    return _AMOUNTS[fen][1]


def _strip(d: Decimal) -> str:
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def plain_number(d: Decimal | int) -> str:
    """A threshold as written: 100000, 2.5 (no exponent, no trailing zeros)."""
    return _strip(Decimal(d))


def percent(fraction: Decimal | Fraction | int, places: int = 2,
            rounding: str = ROUND_HALF_UP) -> str:
    """0.125 → '12.5%', 0.08 → '8%', 0.12345 → '12.35%' (trailing zeros dropped)."""
    return percent_number(fraction, places, rounding) + "%"


def percent_number(fraction: Decimal | Fraction | int, places: int = 2,
                   rounding: str = ROUND_HALF_UP) -> str:
    return _strip(percent_value(fraction, places, rounding))


def percent_value(fraction: Decimal | Fraction | int, places: int = 2,
                  rounding: str = ROUND_HALF_UP) -> Decimal:
    """The percentage (not the fraction) rounded to `places` decimals."""
    if isinstance(fraction, Fraction):
        # exact: scale first, then one rounding, of the magnitude (as Decimal rounds: half
        # up and down both away from / towards zero, whatever the sign)
        if rounding not in (ROUND_HALF_UP, ROUND_DOWN):
            raise ValueError(f"unsupported rounding for a Fraction: {rounding}")
        scaled = abs(fraction) * 100 * 10**places
        q, r = divmod(scaled.numerator, scaled.denominator)
        if rounding == ROUND_HALF_UP and 2 * r >= scaled.denominator:
            q += 1
        return Decimal(-q if fraction < 0 else q).scaleb(-places)
    return (Decimal(fraction) * _HUNDRED).quantize(Decimal(1).scaleb(-places), rounding=rounding)


def exact_percent(fraction: Decimal) -> str:
    """A rate as the policy wrote it: 0.025 → '2.5%' (no rounding)."""
    return _strip(Decimal(fraction).scaleb(2)) + "%"


def payment_rate_text(rate: Decimal, threshold: Decimal | None = None) -> str:
    """A payment rate shown to two decimals of a percent, rounded DOWN so that a rate just
    under a threshold never reads as the threshold itself (89.999 % → 89.99 %)."""
    places = 2
    if threshold is not None:
        # a threshold written finer than 0.01 % needs as many places to be told apart
        places = max(places, -Decimal(threshold).scaleb(2).normalize().as_tuple().exponent)
    return percent(rate, places, ROUND_DOWN)
