"""Side effects happen once (DESIGN.md): every outside call is recorded by (kind, business key).

`once()` returns the stored result when the effect is already done; otherwise it records the
attempt, makes the call and records the result. A crash between the call and the record
leaves the effect `started`: the next attempt calls again with the same idempotency key,
which providers that support one (finance REST, ERP, outbox file names, Message-ID) collapse.

`once()` alone is not a lock. Of two callers that start an attempt at the same instant only
one calls (the other waits for its answer; EffectInProgress, for its step to retry, when none
comes within WAIT_FOR_WINNER seconds), but a caller that comes while another is in the middle
of the call cannot tell it from a crash and calls again. Work that two runs may do at once
therefore holds a claim on its subject first (an order's lease: the intent-order run, signing
completion) and calls `once()` inside it, or asks `once(..., exclusive=True)` to make the call
under a claim on the effect (`models.db.claimed`, let go when its holder dies): a caller that
finds it held waits for the holder's answer and never calls (EffectInProgress when none comes
within WAIT_FOR_WINNER: the vouchers of a revision, sent by two runs or two presses of 重新发送
at once).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlmodel import select

from connectors.base import TransientError
from models import Effect, utcnow
from models.db import claimed, session_scope

# how long a caller that lost the start of an attempt waits for the winner's answer before its
# step is told to retry (the winner may have crashed): an outside call normally answers well
# within it (the connectors' own timeouts are of this order)
WAIT_FOR_WINNER = 30.0


class EffectInProgress(TransientError):
    """Another worker is making the effect's call right now: its outcome counts, nothing is
    wrong with the outside system (a later attempt finds it done, or finds it crashed and
    calls again)."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"effect {kind} {key} is being done by another worker",
                         code="in_progress")
        self.kind, self.key = kind, key

    def __reduce__(self):  # pickled (a Prefect state) with what it is made from
        return type(self), (self.kind, self.key)


def _look(db_url: str, kind: str, key: str) -> tuple[str, int, str | None] | None:
    """(status, attempts, result) of the effect's row, None before its first attempt."""
    with session_scope(db_url) as s:
        row = s.exec(select(Effect).where(Effect.kind == kind, Effect.business_key == key)).first()
        return (row.status, row.attempts, row.result) if row else None


def effect_attempts(db_url: str, kind: str, key: str) -> int:
    """How many attempts the effect has had (0 before its first)."""
    seen = _look(db_url, kind, key)
    return seen[1] if seen else 0


def effect_result(db_url: str, kind: str, key: str) -> dict | None:
    seen = _look(db_url, kind, key)
    if seen and seen[0] == "done":
        return json.loads(seen[2] or "{}")
    return None


def once(db_url: str, kind: str, key: str, call: Callable[[], dict], *,
         exclusive: bool = False) -> dict:
    """The effect's stored result, or `call()`'s, recorded. `exclusive`: the call is made
    under a claim on the effect; a caller finding it held waits for the holder's answer as
    for a winner's (EffectInProgress when none comes), and never calls."""
    seen = _look(db_url, kind, key)
    if seen and seen[0] == "done":
        return json.loads(seen[2] or "{}")
    if not exclusive:
        return _attempt(db_url, kind, key, seen, call)
    with claimed(db_url, f"effect:{kind}:{key}") as mine:
        if mine:
            return _attempt(db_url, kind, key, seen, call)
    return _answer_of_another(db_url, kind, key)


def _attempt(db_url: str, kind: str, key: str, seen: tuple | None,
             call: Callable[[], dict]) -> dict:
    if not _start_attempt(db_url, kind, key, seen[1] if seen else None):
        return _answer_of_another(db_url, kind, key)  # it started the attempt first
    result = call()
    with session_scope(db_url) as s:
        row = s.exec(select(Effect).where(Effect.kind == kind, Effect.business_key == key)).one()
        row.status = "done"
        row.result = json.dumps(result, ensure_ascii=False, default=str)
        row.done_at = utcnow()
        s.add(row)
    return result


def _answer_of_another(db_url: str, kind: str, key: str) -> dict:
    """The result of the attempt another worker is making (`_winners_answer`), or
    EffectInProgress."""
    done = _winners_answer(db_url, kind, key)
    if done is None:
        raise EffectInProgress(kind, key)
    return done


def _winners_answer(db_url: str, kind: str, key: str) -> dict | None:
    """The result of the attempt another worker is making, once it is stored (polled for up
    to WAIT_FOR_WINNER seconds); None if it is not by then."""
    deadline = time.monotonic() + WAIT_FOR_WINNER
    while (done := effect_result(db_url, kind, key)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return done


def _start_attempt(db_url: str, kind: str, key: str, seen_attempts: int | None) -> bool:
    """Record an attempt: the first inserts the row, a later one counts up from the number
    this caller saw when it found the effect not done. False when another worker did either
    since: this caller must not call."""
    with session_scope(db_url) as s:
        if seen_attempts is None:
            s.add(Effect(kind=kind, business_key=key, attempts=1))
            try:
                s.flush()
            except sa.exc.IntegrityError:
                s.rollback()
                return False
            return True
        taken = s.exec(sa.update(Effect).where(
            Effect.kind == kind, Effect.business_key == key, Effect.status == "started",
            Effect.attempts == seen_attempts).values(attempts=Effect.attempts + 1))
        return taken.rowcount == 1
