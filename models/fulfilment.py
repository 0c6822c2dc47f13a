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
