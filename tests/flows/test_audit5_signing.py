"""Signing completion done once when runs overlap (the callback's run and the sweeper's, a run
started by hand): the order's lease lets one run at a time work on a signed quote, and a
callback delivered twice at once opens one to-do without failing the other delivery."""
from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from models import Effect, InboxEvent, IntentOrder, OperationLog, Opportunity, Quote, Todo
from models.db import session_scope
from tests.support import (
    order_payload, post_order, run_pending, run_together, sign_on_the_builtin_page,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")


class CountingMailer:
    def __init__(self, real):
        self.real, self.keys = real, []

    def send(self, mail):
        self.keys.append(mail.idempotency_key)
        return self.real.send(mail)


class SlowFinance:
    """The first invoice request waits until a second one arrives or every other run has
    ended: two runs that both get this far both call finance."""

    def __init__(self, real, runs: int):
        self.real, self.runs, self.calls = real, runs, 0
        self.ended = 0
        self.changed = threading.Condition()

    def request_invoice(self, request):
        with self.changed:
            self.calls += 1
            self.changed.notify_all()
            if self.calls == 1:
                self.changed.wait_for(lambda: self.calls > 1 or self.ended == self.runs - 1,
                                      timeout=20)
        return self.real.request_invoice(request)

    def run_ended(self):
        with self.changed:
            self.ended += 1
            self.changed.notify_all()


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None)) as c:
        yield c


def signed_quote(hub, client) -> tuple[str, str]:
    """An order quoted and signed on the built-in page, its completion not yet run."""
    oid, quote, answer = sign_on_the_builtin_page(hub, client)
    assert answer.status_code == 200
    return oid, quote.code


def stage_changes(db_url: str, oid: str) -> list:
    with session_scope(db_url) as s:
        opp = s.exec(select(Opportunity).where(Opportunity.order_id == oid)).one()
        rows = s.exec(select(OperationLog).where(OperationLog.entity == "opportunity",
                                                 OperationLog.entity_id == str(opp.id))).all()
    return [json.loads(r.changes)["stage"] for r in rows if "stage" in json.loads(r.changes)]


def test_two_completion_runs_at_once_ask_finance_and_mail_once(hub, client, monkeypatch):
    from flows import signing

    for name in ("archive_signed_quotes", "request_invoices", "mail_signed_quotes"):
        monkeypatch.setattr(signing, name, getattr(signing, name).with_options(retries=0))
    oid, code = signed_quote(hub, client)
    before = stage_changes(hub.db_url, oid)
    finance = hub.finance = SlowFinance(hub.finance, runs=2)
    mailer = hub.mailer = CountingMailer(hub.mailer)

    def one_run():
        try:
            return signing.complete_signings(quote_codes=[code])
        finally:
            finance.run_ended()

    answers, errors = run_together(one_run, 2)
    assert errors == []
    assert finance.calls == 1
    assert sorted(mailer.keys) == sorted([f"signed-quote:{code}",
                                          f"todo:invoice_preparation:quote:{code}"])
    assert stage_changes(hub.db_url, oid)[len(before):] == [["quoted", "signed"],
                                                             ["signed", "invoicing"]]
    # one run did the work, the other left the quote to it
    assert sorted(a["invoicing"] for a in answers) == [0, 1]
    assert sorted(len(a["busy"]) for a in answers) == [0, 1]
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        effects = s.exec(select(Effect).where(Effect.business_key.contains(code))).all()
        todos = s.exec(select(Todo).where(Todo.order_id == oid,
                                          Todo.kind == "invoice_preparation")).all()
        [event] = s.exec(select(InboxEvent).where(InboxEvent.subject_id == code)).all()
    assert order.status == "invoicing" and order.claimed_by is None  # the lease is given back
    assert len(todos) == 1 and event.status == "done"
    assert {e.kind: e.attempts for e in effects} == {
        "signing_request": 1, "quote_email": 1, "invoice_request": 1,
        "signed_quote_email": 1, "todo_mail": 1}


def refused_by_esign(hub, client) -> str:
    """An order quoted through e签宝 (flow `flow-refused`), its order id."""
    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
        quote.signing_provider, quote.signing_ref = "esign", "flow-refused"
        s.add(quote)
    return oid


def test_an_ended_signing_told_twice_at_once_opens_one_to_do(hub, client, monkeypatch):
    # e签宝 delivers "refused" twice at the same instant (or the callback meets the hourly
    # reconciliation): both find no to-do yet; the second must not fail on the first's row
    from flows import signing

    refused_by_esign(hub, client)
    both_looked = threading.Barrier(2, timeout=10)
    waited = threading.local()
    real_staff = signing.staff

    def staff_after_both_looked(session, staff_id):
        if not getattr(waited, "done", False):
            waited.done = True
            both_looked.wait()
        return real_staff(session, staff_id)

    monkeypatch.setattr(signing, "staff", staff_after_both_looked)
    answers, errors = run_together(lambda: signing.signing_ended(
        hub.db_url, "flow-refused", "7", "不同意报价", "sales-ops"), 2)
    assert errors == []
    assert sorted(answers, key=bool)[0] is None and answers.count(None) == 1
    with session_scope(hub.db_url) as s:
        [todo] = s.exec(select(Todo).where(Todo.kind == "signing_ended")).all()
    assert todo.id in answers and "客户拒签" in todo.title


def test_the_second_of_two_at_once_that_finds_the_first_done_opens_nothing(hub, client,
                                                                          monkeypatch):
    # both looked before either opened it, and one finished before the other went on: the
    # other finds its to-do and says so (None), so that it is not told twice
    from flows import signing

    refused_by_esign(hub, client)
    first_done, paused, pick = threading.Event(), [], threading.Lock()
    real_staff = signing.staff

    def staff_paused_until_the_other_is_done(session, staff_id):
        with pick:  # the first to get here waits for the other's whole run
            first = not paused
            if first:
                paused.append(threading.get_ident())
        if first:
            assert first_done.wait(timeout=20)
        return real_staff(session, staff_id)

    def tell():
        try:
            return signing.signing_ended(hub.db_url, "flow-refused", "7", "不同意报价",
                                         "sales-ops")
        finally:
            if threading.get_ident() not in paused:
                first_done.set()

    monkeypatch.setattr(signing, "staff", staff_paused_until_the_other_is_done)
    answers, errors = run_together(tell, 2)
    assert errors == []
    assert answers.count(None) == 1
    with session_scope(hub.db_url) as s:
        [todo] = s.exec(select(Todo).where(Todo.kind == "signing_ended")).all()
    assert todo.id in answers


class Crash(BaseException):
    """The worker dies (killed, machine restarted) at this point."""


class FinanceRefuses:
    def request_invoice(self, request):
        from connectors.base import PermanentError

        raise PermanentError("客户税号与开票信息不符", provider="finance")


def test_a_run_that_dies_before_mailing_the_blocked_to_do_is_completed_by_the_next(
        hub, client, monkeypatch):
    from flows import signing

    oid, code = signed_quote(hub, client)
    hub.finance = FinanceRefuses()
    mailer = hub.mailer = CountingMailer(hub.mailer)
    real_mail_todos = signing.mail_todos

    def die(*args):
        raise Crash()

    monkeypatch.setattr(signing, "mail_todos", die)
    with pytest.raises(Crash):
        signing.complete_signings(quote_codes=[code])
    with session_scope(hub.db_url) as s:
        [event] = s.exec(select(InboxEvent).where(InboxEvent.subject_id == code)).all()
        assert s.get(IntentOrder, oid).claimed_by is None
    assert event.status != "done"  # so the sweeper starts the completion again
    monkeypatch.setattr(signing, "mail_todos", real_mail_todos)
    assert signing.complete_signings(quote_codes=[code])["blocked"] == [code]
    signing.complete_signings(quote_codes=[code])  # a third run mails nothing again
    assert mailer.keys == [f"todo:signing_blocked:quote:{code}"]
    with session_scope(hub.db_url) as s:
        [event] = s.exec(select(InboxEvent).where(InboxEvent.subject_id == code)).all()
    assert event.status == "done"


def test_an_intent_order_run_does_not_take_an_order_another_run_holds(hub, client):
    # a failed order whose lease another run (a signing completion) holds is left to it
    import datetime as dt

    from flows.intent_order import claim_orders
    from models import utcnow

    oid = post_order(client, order_payload()).json()["order_id"]
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        order.status, order.claimed_by = "failed", "completion-run"
        order.claimed_until = utcnow() + dt.timedelta(minutes=10)
        s.add(order)
    assert claim_orders(hub, [oid], 10, "order-run") == []
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        order.claimed_until = utcnow() - dt.timedelta(seconds=1)  # its lease ran out
        s.add(order)
    assert claim_orders(hub, [oid], 10, "order-run") == [oid]
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
    assert (order.status, order.claimed_by) == ("processing", "order-run")
