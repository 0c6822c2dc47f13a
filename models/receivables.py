"""Receivables and payments (应收与回款): they feed the customer's payment rate."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class ReceivableInvoice(SQLModel, table=True):
    """An invoice the customer must pay by `due_on` (less what red-letter invoices reverse).

    `invoice_no` is the invoice's key (`connectors.finance.invoice_key`): the number of a
    数电票 (20 digits) or of any other document finance numbers uniquely, but for an old-style
    VAT invoice, whose 8-digit 发票号码 repeats under other 发票代码, `<发票代码>-<发票号码>`."""

    __tablename__ = "receivable_invoice"
    # red-letter invoices by the blue one they reverse: a partial index of those rows alone.
    # A plain one would hold mostly NULLs, and SQLite's statistics (ANALYZE) then say each
    # value matches every row: the payment rate's lookup of a blue invoice's red ones became
    # a scan of the whole table per invoice
    __table_args__ = (sa.Index("ix_receivable_customer_due", "customer_id", "due_on"),
                      sa.Index("ix_receivable_invoice_reverses", "reverses",
                               sqlite_where=sa.text("reverses IS NOT NULL"),
                               postgresql_where=sa.text("reverses IS NOT NULL")))

    id: int | None = Field(default=None, primary_key=True)
    invoice_no: str = Field(max_length=40, sa_column_kwargs={"unique": True})
    customer_id: int = Field(foreign_key="customer.id")
    issued_on: dt.date
    due_on: dt.date
    amount: Decimal = Field(sa_type=sa.Numeric(14, 2))  # tax included
    source: str = Field(default="import", max_length=20)
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # a red-letter invoice (红字发票, negative amount) that names its blue invoice: the blue's
    # key. It is due nothing itself; it reduces what is due on the blue.
    reverses: str | None = Field(default=None, max_length=40)
    # a blue invoice finance's export marks fully reversed (红冲状态 已红冲 / 全额红冲): due
    # nothing, whether or not its red invoice is on file
    reversed_in_full: bool = False


class Payment(SQLModel, table=True):
    """Money received against one invoice (a payment spread over invoices is one row each;
    `invoice_no` is the invoice's key). The rows of a payment number are what finance's latest
    export allocates it to: rows of invoices it no longer lists are deleted on import."""

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
