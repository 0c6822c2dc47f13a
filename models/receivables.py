"""Receivables and payments (应收与回款): they feed the customer's payment rate."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class ReceivableInvoice(SQLModel, table=True):
    """An invoice the customer must pay by `due_on`."""

    __tablename__ = "receivable_invoice"
    __table_args__ = (sa.Index("ix_receivable_customer_due", "customer_id", "due_on"),)

    id: int | None = Field(default=None, primary_key=True)
    invoice_no: str = Field(max_length=40, sa_column_kwargs={"unique": True})
    customer_id: int = Field(foreign_key="customer.id")
    issued_on: dt.date
    due_on: dt.date
    amount: Decimal = Field(sa_type=sa.Numeric(14, 2))  # tax included
    source: str = Field(default="import", max_length=20)
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Payment(SQLModel, table=True):
    """Money received against one invoice (a payment spread over invoices is one row each)."""

    __tablename__ = "payment"
    __table_args__ = (sa.UniqueConstraint("payment_no", "invoice_no"),)

    id: int | None = Field(default=None, primary_key=True)
    payment_no: str = Field(max_length=40)
    invoice_no: str = Field(foreign_key="receivable_invoice.invoice_no", max_length=40,
                            index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    paid_on: dt.date
    amount: Decimal = Field(sa_type=sa.Numeric(14, 2))
    source: str = Field(default="import", max_length=20)
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
