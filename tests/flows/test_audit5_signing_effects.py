"""`once()` when two workers start the same effect at the same instant: one calls."""
from __future__ import annotations

import threading
import time

from sqlmodel import select

from connectors.base import TransientError
from flows import effects
from models import Effect
from models.db import session_scope
from tests.support import run_together


def both_looked_first(monkeypatch):
    """Both callers read "not done yet" before either records its attempt."""
    both_looked = threading.Barrier(2, timeout=10)
    looked = threading.local()
    real = effects._look

    def look(*args):
        answer = real(*args)
        if not getattr(looked, "once", False):
            looked.once = True
            both_looked.wait()
        return answer

    monkeypatch.setattr(effects, "_look", look)


def race(db_url, calls: list) -> list:
    def attempt():
        try:
            return effects.once(db_url, "todo_mail", "invoice_preparation:quote:Q1",
                                lambda: calls.append(1) or {"message_id": "<m@x>"})
        except TransientError as exc:
            return exc

    answers, errors = run_together(attempt, 2)
    assert errors == []
    return answers


def test_two_first_attempts_at_once_call_once(db_url, monkeypatch):
    both_looked_first(monkeypatch)
    calls: list = []
    answers = race(db_url, calls)
    assert len(calls) == 1
    assert {"message_id": "<m@x>"} in answers
    assert all(a == {"message_id": "<m@x>"} or isinstance(a, TransientError) for a in answers)
    with session_scope(db_url) as s:
        [row] = s.exec(select(Effect)).all()
    assert row.status == "done" and row.attempts == 1


def test_two_retries_of_a_crashed_attempt_at_once_call_once(db_url, monkeypatch):
    with session_scope(db_url) as s:  # a crash between the call and its record
        s.add(Effect(kind="todo_mail", business_key="invoice_preparation:quote:Q1", attempts=1))
    both_looked_first(monkeypatch)
    calls: list = []
    race(db_url, calls)
    assert len(calls) == 1
    with session_scope(db_url) as s:
        [row] = s.exec(select(Effect)).all()
    assert row.status == "done" and row.attempts == 2


def test_an_effect_done_meanwhile_is_answered_not_refused(db_url):
    effects.once(db_url, "push", "k", lambda: {"reference": "r1"})
    # a caller that read "started" just before it was done gets the stored answer
    assert not effects._start_attempt(db_url, "push", "k", 1)
    assert effects.once(db_url, "push", "k", lambda: {"reference": "r2"}) == {"reference": "r1"}


def test_the_caller_that_lost_the_start_gets_the_winners_answer(db_url, monkeypatch):
    """Three settlements at once send one voucher batch, and none of them fails for it."""
    both_looked_first(monkeypatch)
    calls: list = []

    def slow():
        time.sleep(0.5)  # the winner is still calling when the loser finds it started
        calls.append(1)
        return {"reference": "DRAFT-RB-2026-10-r1"}

    answers, errors = run_together(
        lambda: effects.once(db_url, "rebate_vouchers", "RB-2026-10-r1", slow), 2)
    assert errors == [] and len(calls) == 1
    assert answers == [{"reference": "DRAFT-RB-2026-10-r1"}] * 2


def test_a_winner_that_never_answers_leaves_the_loser_to_retry(db_url, monkeypatch):
    monkeypatch.setattr(effects, "WAIT_FOR_WINNER", 0.2)
    with session_scope(db_url) as s:  # another worker started the attempt and is gone
        s.add(Effect(kind="push", business_key="k", attempts=1))
    assert not effects._start_attempt(db_url, "push", "k", 0)
    started = time.monotonic()
    assert effects._winners_answer(db_url, "push", "k") is None
    assert time.monotonic() - started >= 0.2
