"""Rebate tables: published policy versions, settlements, rebate lines, order previews."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class RebatePolicyVersion(SQLModel, table=True):
    """One published version of a policy. Never edited: a new version supersedes it from its
    own `effective_from`."""

    __tablename__ = "rebate_policy_version"
    __table_args__ = (sa.UniqueConstraint("code", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, index=True)
    version: int
    name: str = Field(max_length=120)
    effective_from: dt.date
    effective_to: dt.date | None = None  # as written in the document (None: open-ended)
    document: str = Field(sa_type=sa.Text)  # the document as the clerk wrote it
    spec: str = Field(sa_type=sa.Text)  # the validated document, normalised JSON
    sha256: str = Field(max_length=64)
    published_by: str = Field(max_length=40)
    published_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SettlementRun(SQLModel, table=True):
    """One settlement of a month. A re-run that finds nothing new adds nothing; one that finds
    late returns or corrections adds a revision with adjustment lines."""

    __tablename__ = "settlement_run"
    __table_args__ = (sa.UniqueConstraint("month", "revision"),)

    id: int | None = Field(default=None, primary_key=True)
    month: str = Field(max_length=7, index=True)  # YYYY-MM
    revision: int
    kind: str = Field(max_length=12)  # initial | adjustment
    status: str = Field(default="draft", max_length=12)  # draft | confirmed
    as_of: dt.datetime = Field(sa_type=UTCDateTime)  # what was known when it was computed
    line_count: int = 0
    total_amount: Decimal = Field(default=Decimal("0.00"), sa_type=sa.Numeric(14, 2))
    created_by: str = Field(max_length=80)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    flow_run_id: str | None = Field(default=None, max_length=64)
    voucher_batch_id: str | None = Field(default=None, max_length=60)
    voucher_ref: str | None = Field(default=None, max_length=120)
    confirmed_by: str | None = Field(default=None, max_length=40)
    confirmed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # why the last attempt to send the vouchers / write the documents failed (Chinese, as the
    # finance person reads it); None while they are out or being sent
    delivery_error: str | None = Field(default=None, sa_type=sa.Text)


class RebateLine(SQLModel, table=True):
    """What one order earns (or gives back) under one rule in one settlement, and why.

    `basis_amount` and `due_amount` are the order's qualifying amount and its total rebate
    under the rule as of this settlement; `amount` is what this settlement pays (or claws
    back): due now minus what earlier settlements already paid for the same order and rule.
    """

    __tablename__ = "rebate_line"
    # (order_id and run_id have their own): what earlier settlements paid is found by order
    __table_args__ = (sa.Index("ix_rebate_line_customer_month", "customer_id", "month"),
                      sa.Index("ix_rebate_line_rep_month", "rep_id", "month"),
                      sa.Index("ix_rebate_line_region_month", "region", "month"))

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="settlement_run.id", index=True)
    month: str = Field(max_length=7)
    order_id: str = Field(foreign_key="intent_order.id", max_length=24, index=True)
    customer_id: int = Field(foreign_key="customer.id")
    # the customer whose statement and voucher of the revision the line is on: customer_id
    # when it is stored, and never moved by a merge (customer_id is, with the order, so that
    # later settlements find what was paid): a settled revision stays as it was sent
    booked_customer_id: int = Field(foreign_key="customer.id")
    rep_id: str | None = Field(default=None, max_length=40)
    region: str | None = Field(default=None, max_length=20)
    policy_code: str = Field(max_length=40)
    policy_version: int
    rule_id: str = Field(max_length=40)
    clause: str = Field(max_length=120)
    period: str = Field(max_length=8)  # 2026-10 or 2026Q4: the period whose volume counts
    bucket_key: str = Field(max_length=120)  # policy|rule|customer|period
    basis_amount: Decimal = Field(sa_type=sa.Numeric(14, 2))
    due_amount: Decimal = Field(sa_type=sa.Numeric(14, 2))
    amount: Decimal = Field(sa_type=sa.Numeric(14, 2))
    rate: Decimal = Field(sa_type=sa.Numeric(9, 6))
    kind: str = Field(max_length=16)  # rebate | tier_difference | clawback | adjustment
    explanation: str = Field(sa_type=sa.Text)  # Chinese, for the rep, the customer, finance
    # JSON: what this line was computed from (its basis, marginal parts, payment rate, paid
    # before …); what all its bucket's lines share (volume, tier, names …) is stored once in
    # rebate_bucket_inputs. settlement.line_inputs() puts the two together.
    inputs: str = Field(sa_type=sa.Text)


class RebateBucketInputs(SQLModel, table=True):
    """The inputs a bucket's lines of one settlement share under one policy version (bucket
    volume, tier reached, policy and rule names, …): once per bucket instead of on each of its
    lines, which made `rebate_line` 1.6 times as large."""

    __tablename__ = "rebate_bucket_inputs"
    __table_args__ = (sa.UniqueConstraint("run_id", "bucket_key", "policy_version"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="settlement_run.id")
    bucket_key: str = Field(max_length=120)
    policy_version: int
    inputs: str = Field(sa_type=sa.Text)  # JSON object


class OrderRebate(SQLModel, table=True):
    """The rebate an order is expected to earn, computed when it was entered."""

    __tablename__ = "order_rebate"

    order_id: str = Field(primary_key=True, foreign_key="intent_order.id", max_length=24)
    computed_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    rate: Decimal = Field(sa_type=sa.Numeric(9, 6))
    amount: Decimal = Field(sa_type=sa.Numeric(14, 2))
    sentence: str = Field(max_length=300)  # 本次订单返利比例：12.5%，较上月提升2.3个百分点
    detail: str = Field(sa_type=sa.Text)  # JSON: per rule, inputs, policy versions


def sum_fen(column) -> sa.ColumnElement:
    """SUM of a money column in integer fen, in the database: exact on PostgreSQL and on
    SQLite, which hands NUMERIC values back as floats that a long sum must not be left to."""
    return sa.func.sum(sa.cast(sa.func.round(column * 100), sa.BigInteger))
