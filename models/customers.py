"""Customer master data: one customer, one file, whatever name a rep types.

A customer is known by its legal name (`name_key` is its normalised form, unique) and by
aliases: short names, former names, spellings reps typed, names of files merged into it.
A branch (分公司, 办事处 …) is a customer of its own, linked to its parent by `parent_id`.
A name nobody recognises becomes a suspected new customer until a manager decides.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow
from models.names import normalize_name


class Customer(SQLModel, table=True):
    __tablename__ = "customer"

    id: int | None = Field(default=None, primary_key=True)
    legal_name: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    # normalize_name(legal_name): full/half width and spaces folded, so that two spellings
    # of one legal name cannot become two files
    name_key: str = Field(default="", max_length=200, sa_column_kwargs={"unique": True})
    uscc: str | None = Field(default=None, max_length=18, index=True)
    # result of the GB 32100-2015 check of `uscc`: "ok", or the problem found (flagged, the
    # file is kept); None when there is no USCC
    uscc_check: str | None = Field(default=None, max_length=30)
    # registry status as the registry writes it: 存续 / 在业 / 注销 / 吊销, 存续（在营、开业、在册）
    # or a local bureau's longer wording; registry texts longer than their column are cut
    # (`models.customer_files.fit_registry_facts`)
    status: str | None = Field(default=None, max_length=100)
    registered_capital: str | None = Field(default=None, max_length=60)
    # a person, or a partnership's 执行事务合伙人: a company, often with its 委派代表
    legal_representative: str | None = Field(default=None, max_length=100)
    established_on: dt.date | None = None
    registry_checked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime,
                                                    index=True)
    tier: str = Field(default="C", max_length=4)
    region: str | None = Field(default=None, max_length=20)
    province: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=40)
    owner_rep_id: str | None = Field(default=None, foreign_key="staff.id", max_length=40)
    # the customer's code in finance's books (金蝶/用友 客户编码): the vouchers' 核算维度
    finance_code: str | None = Field(default=None, max_length=40, index=True)
    contact_email: str | None = Field(default=None, max_length=120)
    # a branch (分公司, 办事处 …) is its own file linked to its parent, never merged into it
    parent_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    # set when this file was merged into another one: it keeps existing for the audit trail,
    # its orders and names now belong to the surviving file
    merged_into_id: int | None = Field(default=None, foreign_key="customer.id")
    # "standard" for files opened by the hub from an order; "imported"/"manual"/"suspect"
    origin: str = Field(default="manual", max_length=20)
    qualification: str = Field(default="approved", max_length=20)  # pending_review | approved
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class CustomerAlias(SQLModel, table=True):
    """Every other name a customer is known by."""

    __tablename__ = "customer_alias"
    __table_args__ = (sa.UniqueConstraint("customer_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    name: str = Field(max_length=200, index=True)
    key: str = Field(default="", max_length=200, index=True)  # normalize_name(name)
    # short | former | typed (as a rep typed it, confirmed) | merged (legal name of a file
    # merged into this one)
    kind: str = Field(max_length=20)
    # seed | import | registry | order | manager | merge
    source: str = Field(default="manual", max_length=20)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class SuspectStatus:
    collecting = "collecting"   # seen fewer times than the threshold
    escalated = "escalated"     # a manager has a to-do and a deadline
    overdue = "overdue"         # the deadline passed undecided: submissions are refused
    created = "created"         # the manager opened a customer file for it
    merged = "merged"           # the manager made it an alias of an existing customer

    OPEN = ("collecting", "escalated", "overdue")


class SuspectName(SQLModel, table=True):
    """A customer name nobody recognises, collected under its key (疑似新客户): the normalised
    name with its region folded (`customer_files.suspect_key`)."""

    __tablename__ = "suspect_name"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, sa_column_kwargs={"unique": True})  # suspect_key(name)
    display_name: str = Field(max_length=200)  # the first spelling seen
    status: str = Field(default=SuspectStatus.collecting, max_length=12, index=True)
    sightings: int = 0
    first_seen_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_rep_id: str | None = Field(default=None, foreign_key="staff.id", max_length=40)
    # who must decide (the sales manager of the rep who made it reach the threshold)
    decider_id: str | None = Field(default=None, foreign_key="staff.id", max_length=40)
    escalated_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    deadline_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    todo_id: int | None = Field(default=None, foreign_key="todo.id")
    # the matcher's best guesses when it was escalated (JSON list), shown to the manager
    suggestions: str | None = Field(default=None, sa_type=sa.Text)
    decided_by: str | None = Field(default=None, max_length=40)
    decided_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    customer_id: int | None = Field(default=None, foreign_key="customer.id")


class SuspectSighting(SQLModel, table=True):
    """One submission that carried a suspect name; one per order, so retries count once."""

    __tablename__ = "suspect_sighting"
    __table_args__ = (sa.UniqueConstraint("suspect_id", "order_id"),)

    id: int | None = Field(default=None, primary_key=True)
    suspect_id: int = Field(foreign_key="suspect_name.id", index=True)
    order_id: str | None = Field(default=None, foreign_key="intent_order.id", max_length=24)
    typed_name: str = Field(max_length=200)
    rep_id: str | None = Field(default=None, max_length=40)
    seen_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RegistryChange(SQLModel, table=True):
    """A change the registry watch found in a customer's registry facts (工商变更)."""

    __tablename__ = "registry_change"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    field: str = Field(max_length=40)  # legal_name | legal_representative | status | registered_capital
    old_value: str | None = Field(default=None, max_length=200)
    new_value: str | None = Field(default=None, max_length=200)
    detected_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    todo_id: int | None = Field(default=None, foreign_key="todo.id")


@sa.event.listens_for(Customer, "before_insert")
@sa.event.listens_for(Customer, "before_update")
def _customer_name_key(_mapper, _conn, customer: Customer) -> None:
    # the key always follows the legal name (bulk imports through Core set it themselves)
    customer.name_key = normalize_name(customer.legal_name)


@sa.event.listens_for(CustomerAlias, "before_insert")
@sa.event.listens_for(CustomerAlias, "before_update")
def _alias_key(_mapper, _conn, alias: CustomerAlias) -> None:
    alias.key = normalize_name(alias.name)
