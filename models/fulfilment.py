"""What happened to a signed order after signing: deliveries, returns and exchanges.

They come from the ERP (import or connector) and decide when a rebate is earned: an order
line counts for rebates once it is signed and delivered, and a return takes it back.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class Delivery(SQLModel, table=True):
    """Units of one order line shipped to the customer (发货)."""

    __tablename__ = "delivery"
    # the day's index carries the order: the settlement finds the orders with deliveries in a
    # month from the index alone (tens of thousands of deliveries, no row read)
    __table_args__ = (sa.UniqueConstraint("delivery_no", "order_id", "line_no"),
                      sa.Index("ix_delivery_order_line", "order_id", "line_no"),
                      sa.Index("ix_delivery_day_order", "delivered_on", "order_id"))

    id: int | None = Field(default=None, primary_key=True)
    delivery_no: str = Field(max_length=40)
    order_id: str = Field(foreign_key="intent_order.id", max_length=24)
    line_no: int
    quantity: int
    delivered_on: dt.date
    source: str = Field(default="import", max_length=20)
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class SalesReturn(SQLModel, table=True):
    """Units of one order line that came back (退货) or were exchanged (换货)."""

    __tablename__ = "sales_return"
    __table_args__ = (sa.UniqueConstraint("return_no", "order_id", "line_no"),
                      sa.Index("ix_sales_return_order_line", "order_id", "line_no"),
                      sa.Index("ix_sales_return_day_order", "returned_on", "order_id"))

    id: int | None = Field(default=None, primary_key=True)
    return_no: str = Field(max_length=40)
    order_id: str = Field(foreign_key="intent_order.id", max_length=24)
    line_no: int
    quantity: int
    returned_on: dt.date
    kind: str = Field(default="return", max_length=10)  # return | exchange
    reason: str | None = Field(default=None, max_length=200)
    source: str = Field(default="import", max_length=20)
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class MovementImport(SQLModel, table=True):
    """One import of deliveries or returns, or of invoices and payments (an export file, or
    one page of the finance sync, each in a transaction of its own): registered, in a
    transaction of its own, before any of its rows is written, and finished in the same
    transaction as its rows (or, refused or failed, right after). Its rows (and the
    operation log of those it changes or deletes) are stamped (`recorded_at`, `at`) from its
    start but appear only when it commits: a settlement that read the facts while it was
    still open did not see them, so the settlement takes as what it knew
    (`SettlementRun.as_of`) no later than the start of the oldest import still open
    (`news_horizon`), and the next settlement takes those rows as news."""

    __tablename__ = "movement_import"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # deliveries | returns | receivables
    # the file's name, or the finance sync's connector (receivables:RestFinance)
    source: str = Field(max_length=200)
    actor: str = Field(max_length=100)
    started_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    finished_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=20)  # stored | refused | failed


# an import open longer than this is taken as dead (its process gone, its transaction rolled
# back by the database): it no longer holds back what a settlement knew
OPEN_IMPORT_LIFETIME = dt.timedelta(hours=6)


def news_horizon(conn: sa.Connection, now: dt.datetime) -> dt.datetime:
    """What a settlement reading the facts from now on knows: every delivery, return,
    invoice and payment recorded (changed, deleted) before the time returned. `now`, or,
    while an import is open, a moment before it started (its rows, stamped from then, are
    not visible before it commits)."""
    oldest = conn.execute(sa.select(sa.func.min(MovementImport.started_at)).where(
        MovementImport.finished_at.is_(None),
        MovementImport.started_at > now - OPEN_IMPORT_LIFETIME)).scalar()
    if oldest is None:
        return now
    return min(now, oldest - dt.timedelta(microseconds=1))
