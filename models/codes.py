"""Human-safe unique codes with a check character (quote codes, order ids)."""
from __future__ import annotations

import datetime as dt
import secrets

from models.base import SHANGHAI

# Crockford base32: no I, L, O, U, so a code read over the phone is unambiguous.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_N = len(ALPHABET)


def check_char(body: str) -> str:
    """Luhn mod-32 check symbol over `body` (dashes ignored): catches every single wrong
    symbol and nearly every swap of two adjacent symbols; stays inside the alphabet."""
    factor, total = 2, 0
    for ch in reversed(body.replace("-", "").upper()):
        addend = factor * ALPHABET.index(ch)
        total += addend // _N + addend % _N
        factor = 1 if factor == 2 else 2
    return ALPHABET[(_N - total % _N) % _N]


def random_body(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def new_quote_code(yymm: str) -> str:
    """e.g. Q2611-7K3M9P-X: Q, year-month, 6 random symbols, check symbol."""
    body = random_body(6)
    return f"Q{yymm}-{body}-{check_char(yymm + body)}"


def quote_code_is_valid(code: str) -> bool:
    try:
        prefix, body, check = code.upper().split("-")
        return (prefix.startswith("Q") and len(prefix) == 5 and len(body) == 6
                and check_char(prefix[1:] + body) == check)
    except (ValueError, IndexError):
        return False


def _base32(n: int, width: int) -> str:
    return "".join(ALPHABET[n >> 5 * i & 31] for i in reversed(range(width)))


def new_order_id(now: dt.datetime) -> str:
    """e.g. IO261126-0F3Y5K-7QMD: I(ntent) O(rder), the business date (Asia/Shanghai), the
    millisecond of that day, 4 random symbols (20 bits: two orders would have to come in
    the same millisecond to risk sharing an id). The ids of a day sort in the order the
    orders came in: the rebate engine lays a day's orders out by id (a marginal band, a
    cap's last fen), and an order previewed before it exists is laid after the day's other
    orders, where it will be."""
    local = now.astimezone(SHANGHAI)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    ms = (local - midnight) // dt.timedelta(milliseconds=1)
    return f"IO{local:%y%m%d}-{_base32(ms, 6)}-{random_body(4)}"
