"""Test helpers for rebates: signed, delivered orders and invoices (the sample history
functions of deployments/seed.py), returns, policies."""
from __future__ import annotations

import datetime as dt
import itertools

from deployments.seed import customer_id  # noqa: F401 - tests import these from here
from deployments.seed import record_invoice as invoice  # noqa: F401
from deployments.seed import record_signed_order as signed_order  # noqa: F401
from flows.policies import publish_policy
from models import SalesReturn, Staff, set_clock
from models.base import SHANGHAI
from models.db import session_scope

_SEQ = itertools.count(1)


def return_goods(db_url: str, order_id: str, line_no: int, quantity: int, on: dt.date,
                 kind: str = "return", number: str | None = None) -> None:
    """A return (or exchange) of `quantity` units of an order line; numbered R1, R2, … unless
    `number` is given."""
    with session_scope(db_url) as s:
        s.add(SalesReturn(return_no=number or f"R{next(_SEQ)}", order_id=order_id, line_no=line_no,
                          quantity=quantity, returned_on=on, kind=kind))


def clock_from(day: dt.date) -> None:
    """The business clock as if it were 10:00 in Shanghai on `day`, still running (what is
    recorded later is later): months before `day` are over and may be settled."""
    start = dt.datetime.now(dt.UTC)
    base = dt.datetime.combine(day, dt.time(10), SHANGHAI)
    set_clock(lambda: base + (dt.datetime.now(dt.UTC) - start))


def publish(db_url: str, text: str, by: str = "ops-01"):
    with session_scope(db_url) as s:
        person = s.get(Staff, by)
    return publish_policy(db_url, text, person)
