"""The hub's own bookkeeping: inbox, effects, to-dos and the operation log."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class InboxEvent(SQLModel, table=True):
    """Every accepted webhook delivery, stored before anything else happens."""

    __tablename__ = "inbox_event"
    __table_args__ = (sa.UniqueConstraint("source", "sender_id", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=40)          # intent-order | esign:<provider>
    sender_id: str = Field(max_length=40)
    event_id: str = Field(max_length=80)
    payload: str = Field(sa_type=sa.Text)
    payload_sha256: str = Field(max_length=64)
    # pending: waiting for a flow run; dispatched: a run was created; done: processed
    status: str = Field(default="pending", max_length=12, index=True)
    response_status: int = 202
    response_body: str = Field(sa_type=sa.Text)  # the first answer, replayed to duplicates
    subject_id: str | None = Field(default=None, max_length=40)  # order id / quote code
    flow_run_id: str | None = Field(default=None, max_length=64)
    dispatch_attempts: int = 0
    received_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    dispatched_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


# the conditions of the effects' partial indexes, as queries must say them to use them
NOT_DONE = "status <> 'done'"
NEWS_MAIL = "kind = 'todo_mail' AND business_key LIKE '%#%'"


class Effect(SQLModel, table=True):
    """One outside side effect, keyed by what it is about (DESIGN: side effects happen once)."""

    __tablename__ = "effect"
    __table_args__ = (
        sa.UniqueConstraint("kind", "business_key"),
        # the few effects not done (failed, pending) among the many done: what the
        # inbox-sweeper looks for every minute (flows.notices); a query uses it when it says
        # NOT_DONE literally
        sa.Index("ix_effect_not_done", "kind", sqlite_where=sa.text(NOT_DONE),
                 postgresql_where=sa.text(NOT_DONE)),
        # the to-dos' news mails (`todo_mail` keyed `<to-do mail key>#<news>`) by key prefix,
        # compared byte by byte (PostgreSQL's pattern operators: the unique index above is in
        # the database's collation, where a range of keys is no prefix; SQLite's is binary)
        sa.Index("ix_effect_news_mail", "business_key",
                 postgresql_ops={"business_key": "text_pattern_ops"},
                 sqlite_where=sa.text(NEWS_MAIL), postgresql_where=sa.text(NEWS_MAIL)),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)
    business_key: str = Field(max_length=120)
    status: str = Field(default="started", max_length=10)  # started | done
    attempts: int = 0
    result: str | None = Field(default=None, sa_type=sa.Text)  # JSON
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    done_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


# Chinese names of the to-do kinds
TASK_LABELS = {
    "legal_review": "法务资质初审",
    "purchase_alert": "采购预警",
    "invoice_preparation": "开票准备",
    "order_blocked": "意向单需人工处理",
    "signing_blocked": "签署后续需人工处理",
    "signing_ended": "客户未完成签署",
    "suspect_customer": "疑似新客户待确认",
    "registry_change": "客户工商信息变更",
    "settlement_review": "返利结算待复核",
    "notice_failed": "通知发送失败",
}


class Todo(SQLModel, table=True):
    __tablename__ = "todo"
    __table_args__ = (sa.UniqueConstraint("kind", "business_key"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30, index=True)
    business_key: str = Field(max_length=120)
    title: str = Field(max_length=200)
    body: str = Field(default="", sa_type=sa.Text)
    assignee_id: str = Field(foreign_key="staff.id", max_length=40, index=True)
    cc: str | None = Field(default=None, max_length=200)  # comma-separated staff ids
    due_at: dt.datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="open", max_length=10, index=True)
    order_id: str | None = Field(default=None, max_length=24)
    customer_id: int | None = Field(default=None)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # how it was done, by a person (`flows.todos.complete_todo`); a to-do the hub closes by
    # itself (a suspect name decided) leaves them empty
    done_by: str | None = Field(default=None, max_length=40)
    done_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=20)  # done | approved | rejected
    note: str | None = Field(default=None, max_length=500)


class OperationLog(SQLModel, table=True):
    """Who changed which business record, when, from what to what."""

    __tablename__ = "operation_log"
    # the changes of an entity's records (or of some records) recorded since a time: the
    # dated customer profiles read the log so (flows.rebate_data._profile_log)
    __table_args__ = (sa.Index("ix_operation_log_entity_at", "entity", "at"),
                      sa.Index("ix_operation_log_entity_record_at", "entity", "entity_id", "at"))

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=80)
    entity: str = Field(max_length=40)
    entity_id: str = Field(max_length=40)
    action: str = Field(max_length=20)  # create | update | delete | merge
    changes: str = Field(sa_type=sa.Text)  # JSON {field: [old, new]}


class ConnectorCursor(SQLModel, table=True):
    """Where a pull from an outside system stopped (e.g. the receivables export cursor)."""

    __tablename__ = "connector_cursor"

    name: str = Field(primary_key=True, max_length=60)
    # text of any length: the drop folder's cursor lists every export read, with a
    # fingerprint of each (connectors.finance.files_read)
    cursor: str | None = Field(default=None, sa_type=sa.Text)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
