"""Side effects happen once (DESIGN.md): every outside call is recorded by (kind, business key).

`once()` returns the stored result when the effect is already done; otherwise it records the
attempt, makes the call and records the result. A crash between the call and the record
leaves the effect `started`: the next attempt calls again with the same idempotency key,
which providers that support one (finance REST, ERP, outbox file names, Message-ID) collapse.
"""
from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa
from sqlmodel import select

from models import Effect, utcnow
from models.db import session_scope


def effect_result(db_url: str, kind: str, key: str) -> dict | None:
    with session_scope(db_url) as s:
        row = s.exec(select(Effect).where(Effect.kind == kind, Effect.business_key == key)).first()
        if row and row.status == "done":
            return json.loads(row.result or "{}")
    return None


def once(db_url: str, kind: str, key: str, call: Callable[[], dict]) -> dict:
    done = effect_result(db_url, kind, key)
    if done is not None:
        return done
    with session_scope(db_url) as s:
        row = s.exec(select(Effect).where(Effect.kind == kind, Effect.business_key == key)).first()
        if row is None:
            row = Effect(kind=kind, business_key=key)
        row.attempts += 1
        s.add(row)
        try:
            s.flush()
        except sa.exc.IntegrityError:
            # another worker recorded it a moment ago: count on its attempt
            s.rollback()
    result = call()
    with session_scope(db_url) as s:
        row = s.exec(select(Effect).where(Effect.kind == kind, Effect.business_key == key)).one()
        row.status = "done"
        row.result = json.dumps(result, ensure_ascii=False, default=str)
        row.done_at = utcnow()
        s.add(row)
    return result
