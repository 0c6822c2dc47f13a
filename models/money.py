"""Amounts as people read them: with the yuan sign (¥1,234.50, a claw-back -¥1,200.00) and in
Chinese capital numerals (大写金额), as written on invoices and quotes."""
from __future__ import annotations

from decimal import Decimal

from models.base import to_money



def yuan(value: Decimal | int | str, *, plus: bool = False) -> str:
    """'3916.8' → '¥3,916.80'; negative '-¥1,200.00' (the sign before the symbol); `plus`: a
    change, '+¥12.00'. Exact: Decimal, rounded to the fen half up, never float."""
    amount = to_money(value)
    sign = "-" if amount < 0 else "+" if plus and amount > 0 else ""
    return f"{sign}¥{abs(amount):,.2f}"


_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ["", "拾", "佰", "仟"]
_BIG_UNITS = ["", "万", "亿", "万亿"]


def _four_digits(n: int) -> str:
    """0 < n < 10000 → e.g. 1005 → 壹仟零伍 (no trailing zero)."""
    out, zero = [], False
    for pos in range(3, -1, -1):
        d = n // 10**pos % 10
        if d == 0:
            zero = bool(out)
        else:
            if zero:
                out.append("零")
                zero = False
            out.append(_DIGITS[d] + _SMALL_UNITS[pos])
    return "".join(out)


def capital_amount(value: Decimal | int | str) -> str:
    """Render yuan in 大写: 1234.50 → 壹仟贰佰叁拾肆元伍角整; 0.05 → 伍分; 100 → 壹佰元整."""
    amount = to_money(value)
    if amount < 0:
        return "负" + capital_amount(-amount)
    fen_total = int(amount * 100)
    yuan, jiao, fen = fen_total // 100, fen_total // 10 % 10, fen_total % 10
    if fen_total == 0:
        return "零元整"
    parts = []
    if yuan:
        groups = []
        n = yuan
        while n:
            groups.append(n % 10000)
            n //= 10000
        text, pending_zero = "", False
        for idx in range(len(groups) - 1, -1, -1):
            g = groups[idx]
            if g == 0:
                pending_zero = bool(text)
                continue
            if text and (pending_zero or g < 1000):
                text += "零"
            text += _four_digits(g) + _BIG_UNITS[idx]
            pending_zero = False
        parts.append(text + "元")
    if jiao:
        parts.append(_DIGITS[jiao] + "角")
    elif yuan and fen:
        parts.append("零")
    if fen:
        parts.append(_DIGITS[fen] + "分")
    else:
        parts.append("整")
    return "".join(parts)
