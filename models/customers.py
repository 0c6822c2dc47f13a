"""Customer master data: one customer, one file."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class Customer(SQLModel, table=True):
    __tablename__ = "customer"

    id: int | None = Field(default=None, primary_key=True)
    legal_name: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    uscc: str | None = Field(default=None, max_length=18, index=True)
    # registry status as the registry writes it: 存续 / 在业 / 注销 / 吊销 ...
    status: str | None = Field(default=None, max_length=20)
    registered_capital: str | None = Field(default=None, max_length=60)
    legal_representative: str | None = Field(default=None, max_length=60)
    established_on: dt.date | None = None
    tier: str = Field(default="C", max_length=4)
    region: str | None = Field(default=None, max_length=20)
    province: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=40)
    owner_rep_id: str | None = Field(default=None, foreign_key="staff.id", max_length=40)
    contact_email: str | None = Field(default=None, max_length=120)
    # "standard" for files opened by the hub from an order; "imported"/"manual" otherwise
    origin: str = Field(default="manual", max_length=20)
    qualification: str = Field(default="approved", max_length=20)  # pending_review | approved
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CustomerAlias(SQLModel, table=True):
    """Every other name a customer is known by: short, former, as typed by reps."""

    __tablename__ = "customer_alias"
    __table_args__ = (sa.UniqueConstraint("customer_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    name: str = Field(max_length=200, index=True)
    kind: str = Field(max_length=20)  # short | former | typed
