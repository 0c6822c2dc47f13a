"""Operation log: every change to a business record writes who/when/what, old → new."""
from __future__ import annotations

import datetime as dt
import enum
import json
from decimal import Decimal

from sqlmodel import Session, SQLModel

from models.base import utcnow
from models.work import OperationLog


def _plain(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _entity_id(record: SQLModel) -> str:
    mapper = record.__mapper__
    keys = [getattr(record, col.key) for col in mapper.primary_key]
    return ":".join(str(k) for k in keys)


def record_create(session: Session, record: SQLModel, actor: str) -> None:
    session.flush()  # assigns generated keys
    data = {k: [None, _plain(v)] for k, v in record.model_dump().items() if v is not None}
    session.add(OperationLog(actor=actor, entity=record.__tablename__,
                             entity_id=_entity_id(record), action="create",
                             changes=json.dumps(data, ensure_ascii=False)))


def record_delete(session: Session, record: SQLModel, actor: str) -> None:
    """The log entry of a record about to be deleted: every field, old → none."""
    data = {k: [_plain(v), None] for k, v in record.model_dump().items() if v is not None}
    session.add(OperationLog(actor=actor, entity=record.__tablename__,
                             entity_id=_entity_id(record), action="delete",
                             changes=json.dumps(data, ensure_ascii=False)))


def apply_changes(session: Session, record: SQLModel, actor: str, **changes) -> dict:
    """Set fields on a record and log those that really changed. Returns the diff."""
    diff = {}
    for field, new in changes.items():
        old = getattr(record, field)
        if old != new:
            diff[field] = [_plain(old), _plain(new)]
            setattr(record, field, new)
    if diff:
        if hasattr(record, "updated_at"):
            record.updated_at = utcnow()
        session.add(record)
        session.add(OperationLog(actor=actor, entity=record.__tablename__,
                                 entity_id=_entity_id(record), action="update",
                                 changes=json.dumps(diff, ensure_ascii=False)))
    return diff
