"""Column types and clocks shared by every table.

Times are stored as UTC and always come back timezone-aware; business dates are
computed in Asia/Shanghai. Money is Decimal with two places, never float.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

SHANGHAI = ZoneInfo("Asia/Shanghai")
CENT = Decimal("0.01")
MAX_ID = 2**31 - 1  # ids, revisions and offsets beyond a 32-bit integer column: none stored


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as naive UTC; returns aware UTC datetimes."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc)


def Money(**kw):  # noqa: N802 - reads like a column type
    return sa.Column(sa.Numeric(14, 2), **kw)


_clock: Callable[[], dt.datetime] | None = None


def utcnow() -> dt.datetime:
    """Now, in UTC. Every business clock reads this, so a test can move time (`set_clock`)."""
    return _clock() if _clock is not None else dt.datetime.now(dt.timezone.utc)


def set_clock(clock: Callable[[], dt.datetime] | None) -> None:
    """Install a clock (a callable returning an aware datetime); None restores the real one."""
    global _clock
    _clock = clock


def business_date(at: dt.datetime | None = None) -> dt.date:
    """The calendar date in Shanghai of an instant (default: now)."""
    return (at or utcnow()).astimezone(SHANGHAI).date()


def to_money(value) -> Decimal:
    """Round any numeric input to fen, half up, as invoices do."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
