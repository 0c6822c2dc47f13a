"""Audit: the intent-order pipeline when things happen at the same time — two API workers,
two runs (the dispatcher's and the sweeper's), a person deciding while a run works, task
retries. Each test makes the interleaving deterministic by hooking a function boundary
(monkeypatch) and meeting the other party there (threads + events), then compares the
outcome with what either sequential order of the same events would give."""
from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from models import Customer, Effect, IntentOrder, Quote, Staff
from models.db import session_scope
from tests.support import order_payload, post_order

pytestmark = pytest.mark.usefixtures("prefect_harness")

KANGDA = "江苏康达医疗设备有限公司"
RENHE = "浙江仁和医疗器械有限公司"
UNKNOWN = "渝康器械"  # a name nobody recognises: its order waits for a decision


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None)) as c:  # the test dispatches
        yield c


def customer_id(db_url: str, legal_name: str) -> int:
    with session_scope(db_url) as s:
        return s.exec(select(Customer.id).where(Customer.legal_name == legal_name)).one()


def staff(db_url: str, staff_id: str) -> Staff:
    with session_scope(db_url) as s:
        return s.get(Staff, staff_id)


class MeetingEsign:
    """The e-sign connector; the first signing request for `company` waits (up to 15 s) for
    a second one: two runs that both get that far both ask for an envelope."""

    def __init__(self, real, company: str):
        self.real, self.company = real, company
        self.calls: list[str] = []
        self.first_in, self.second_in = threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.real, name)

    def create_signing(self, request):
        if self.company in request.signer_company:
            self.calls.append(request.quote_code)
            if len(self.calls) == 1:
                self.first_in.set()
                self.second_in.wait(15)
            else:
                self.second_in.set()
        return self.real.create_signing(request)


# --- a held order released while its run retries the customer check ------------------------

def test_an_order_released_while_its_run_retries_the_customer_check_gets_one_envelope(
        hub, client, monkeypatch):
    """A batch holds 张伟's order for “渝康器械” (name not recognised: on hold, its lease
    given back) while another order of the batch hit a registry timeout, so Prefect retries
    the customer-check task (2 s, 10 s, 30 s) over the whole batch. 张伟 picks 浙江仁和 for his
    order from the push meanwhile; the API pokes the dispatcher and a new run claims the
    order (it is `received` and nobody holds it). The customer gets one envelope and one
    quote mail. But the retried task runs the held order again, finds its customer chosen
    and carries it on through the batch's later steps without taking its lease back: two
    runs work on the order at once, and `once()` cannot tell the other's signing request in
    progress from a crash — a second envelope is requested."""
    from connectors.base import TransientError
    from flows import customer_check
    from flows.intent_order import process_intent_orders
    from flows.suspects import choose_customer_for_order

    held = post_order(client, order_payload(name=UNKNOWN)).json()["order_id"]
    other = post_order(client, order_payload(name=KANGDA)).json()["order_id"]
    renhe = customer_id(hub.db_url, RENHE)
    rep = staff(hub.db_url, "rep-zhangwei")
    esign = hub.esign = MeetingEsign(hub.esign, RENHE)
    real_check = customer_check.check_customer
    checks: dict[str, int] = {}
    second_run: list[threading.Thread] = []

    def dispatched_run():  # the run the dispatcher starts for the released order
        try:
            process_intent_orders(order_ids=[held])
        except RuntimeError:
            pass

    def check(hub_, oid):
        checks[oid] = checks.get(oid, 0) + 1
        if oid == other and checks[oid] == 1:
            # the held order waits (its lease given back); 张伟 picks its customer now and the
            # dispatcher's run takes it, before this run's task is retried over the batch
            # (the envelope connector makes whichever asks first wait for a second request)
            choose_customer_for_order(hub_, held, rep, renhe)
            second_run.append(threading.Thread(target=dispatched_run))
            second_run[0].start()
            raise TransientError("工商信息查询超时", provider="registry")
        return real_check(hub_, oid)

    monkeypatch.setattr(customer_check, "check_customer", check)
    try:
        process_intent_orders(order_ids=[held, other])
    except RuntimeError:
        pass
    assert second_run, "the rep's choice was not made"
    second_run[0].join(60)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, held)
        quote = s.exec(select(Quote).where(Quote.order_id == held)).one()
        effect = s.exec(select(Effect).where(Effect.kind == "signing_request",
                                             Effect.business_key == quote.code)).one()
    assert (order.status, order.customer_id) == ("quoted", renhe)
    assert esign.calls == [quote.code], (
        f"{len(esign.calls)} signing requests for {quote.code} (effect attempts "
        f"{effect.attempts})")


# --- a rep's choice and a manager's decision on the same held order -------------------------

def held_orders(hub, client, n: int) -> list[str]:
    """`n` orders of 张伟 for “渝康器械”, run: each waits on hold for a decision."""
    from tests.support import run_pending

    ids = [post_order(client, order_payload(name=UNKNOWN)).json()["order_id"]
           for _ in range(n)]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        assert {s.get(IntentOrder, oid).status for oid in ids} == {"on_hold"}
    return ids


def suspect_of(db_url: str, oid: str):
    from models import SuspectName

    with session_scope(db_url) as s:
        return s.get(SuspectName, s.get(IntentOrder, oid).suspect_id)


def test_a_reps_choice_and_the_managers_decision_at_once_are_not_both_accepted(
        hub, client, monkeypatch):
    """张伟's order for “渝康器械” waits on hold. He picks 浙江仁和 for it on the order page
    at the moment his manager 王强 merges the name into 江苏康达 on the suspects page. One
    after the other, the second is told the order is decided already (409 order_not_waiting
    — or the merge leaves the order the rep decided): the order is on one customer and
    nobody was told otherwise. At once, the choice reads the order as waiting before the
    merge commits and writes over it: both are answered with success — the manager's
    answer and the push to 张伟 list the order as released to 江苏康达, the rep's answer
    says 浙江仁和, and the order (quote, rebate, invoice) goes to 浙江仁和."""
    from flows import suspects
    from flows.suspects import DecisionError, choose_customer_for_order, decide_merge

    [oid] = held_orders(hub, client, 1)
    suspect_id = suspect_of(hub.db_url, oid).id
    kangda, renhe = customer_id(hub.db_url, KANGDA), customer_id(hub.db_url, RENHE)
    rep, manager = staff(hub.db_url, "rep-zhangwei"), staff(hub.db_url, "mgr-east")
    real = suspects.active_for_writing
    merged: list = []
    meanwhile: list[threading.Thread] = []

    def merge_commits_meanwhile(s, cid):
        # the rep's request has read the order (waiting); the manager's merge goes now: it
        # commits before the choice goes on (a second), unless it waits for the choice
        if not meanwhile and threading.current_thread() is threading.main_thread():
            meanwhile.append(threading.Thread(target=lambda: merged.append(
                decide_merge(hub, suspect_id, manager, kangda))))
            meanwhile[0].start()
            meanwhile[0].join(1)
        return real(s, cid)

    monkeypatch.setattr(suspects, "active_for_writing", merge_commits_meanwhile)
    try:
        chosen = choose_customer_for_order(hub, oid, rep, renhe)
    except DecisionError as exc:
        chosen = exc
    meanwhile[0].join(60)
    assert merged, "the manager's merge did not run"
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
    rep_told = not isinstance(chosen, DecisionError)
    manager_told = oid in merged[0]["released_orders"]
    assert not (rep_told and manager_told), (
        f"both succeeded: rep told {chosen}, manager told {merged[0]}, the order is on "
        f"customer {order.customer_id} (康达 {kangda}, 仁和 {renhe})")


def test_a_decision_taken_while_the_run_holds_the_third_order_is_not_undone(
        hub, client, monkeypatch):
    """Two orders for “渝康器械” wait (2 sightings, no manager asked yet). A third arrives;
    while its run records the sighting (hold_for_suspect has read the name: not decided),
    王强 merges the name into 江苏康达 from the order page of the first two. One after the
    other, the third order goes on with 江苏康达 (the decision first: the run finds it; the
    run first: the decision releases it) and the name stays decided. At once the run acts on
    what it read: the third sighting reaches the threshold, so the name is escalated again
    — status back to 待经理确认 over the manager's merge, a new decision to-do with a 24 h
    deadline mailed to 王强 for a name he just decided — and the order stays on hold."""
    from flows import suspects
    from flows.intent_order import process_intent_orders
    from flows.suspects import decide_merge
    from models import SuspectSighting, Todo

    first, _ = held_orders(hub, client, 2)
    suspect_id = suspect_of(hub.db_url, first).id
    kangda = customer_id(hub.db_url, KANGDA)
    manager = staff(hub.db_url, "mgr-east")
    third = post_order(client, order_payload(name=UNKNOWN)).json()["order_id"]
    real_select = suspects.select
    decided: list = []
    meanwhile: list[threading.Thread] = []

    def decided_meanwhile(*what):
        # the run has read the name's record; the manager's merge goes now: it commits
        # before the run goes on (a second), unless it waits for the run's sighting
        if (what and what[0] is SuspectSighting.id and not meanwhile
                and threading.current_thread() is threading.main_thread()):
            meanwhile.append(threading.Thread(target=lambda: decided.append(
                decide_merge(hub, suspect_id, manager, kangda))))
            meanwhile[0].start()
            meanwhile[0].join(1)
        return real_select(*what)

    monkeypatch.setattr(suspects, "select", decided_meanwhile)
    try:
        process_intent_orders(order_ids=[third])
    except RuntimeError:
        pass
    meanwhile[0].join(60)
    assert decided, "the manager's merge did not run"
    suspect = suspect_of(hub.db_url, first)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, third)
        todos = s.exec(select(Todo.status).where(Todo.kind == "suspect_customer")).all()
    assert (suspect.status, suspect.customer_id) == ("merged", kangda), (
        suspect.status, suspect.deadline_at, todos)
    assert order.customer_id == kangda and order.status != "on_hold", (order.status,
                                                                        order.error)


# --- checked and found right: deliveries and taps at the same instant -----------------------

def meet_in(monkeypatch, module, name: str, parties: int = 2) -> None:
    """Each caller of `module.name` waits there until the others are there too (5 s at
    most: a database that lets one writer in makes the other wait for the commit)."""
    real = getattr(module, name)
    meet = threading.Barrier(parties, timeout=5)

    def met(*args, **kwargs):
        try:
            meet.wait()
        except threading.BrokenBarrierError:
            pass
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, met)


def test_one_event_delivered_to_two_workers_at_once_is_one_order_answered_twice(
        hub, client, monkeypatch):
    """The portal's retry reaches a second API worker while the first still stores the
    event: both looked for the event id and found nothing. One order; both answered 202
    with its id, the second marked as a duplicate; no 500."""
    import json

    from api import webhooks
    from tests.support import run_together, signed_headers

    meet_in(monkeypatch, webhooks, "order_customer")
    body = json.dumps(order_payload(), ensure_ascii=False).encode()
    headers = signed_headers(body)
    answers, errors = run_together(lambda: client.post(
        "/webhooks/intent-orders", content=body, headers=headers), 2)
    assert errors == []
    assert sorted(a.status_code for a in answers) == [202, 202], [a.text for a in answers]
    assert len({a.json()["order_id"] for a in answers}) == 1
    assert sorted(a.headers.get("X-Salesops-Duplicate", "") for a in answers) == ["", "1"]
    with session_scope(hub.db_url) as s:
        assert len(s.exec(select(IntentOrder.id)).all()) == 1


def test_a_double_tap_on_the_signing_page_signs_once(hub, client, monkeypatch):
    """The customer taps 确认签署 twice; both submits found the link unused. One is
    answered 签署成功, the other 已签署; one signing event, so one completion: one invoice
    request."""
    from api import signing_page
    from flows.signing import complete_signings
    from models import InboxEvent
    from tests.support import run_pending, run_together, sign_the_quote_of

    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    meet_in(monkeypatch, signing_page, "complete_builtin_signing")
    answers, errors = run_together(lambda: sign_the_quote_of(hub, client, oid)[1], 2)
    assert errors == []
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    with session_scope(hub.db_url) as s:
        events = s.exec(select(InboxEvent).where(InboxEvent.source == "esign:builtin")).all()
        code = s.exec(select(Quote.code).where(Quote.order_id == oid)).one()
    assert [e.subject_id for e in events] == [code]
    complete_signings(quote_codes=[code])
    with session_scope(hub.db_url) as s:
        effect = s.exec(select(Effect).where(Effect.kind == "invoice_request")).one()
        assert (effect.attempts, s.get(IntentOrder, oid).status) == (1, "invoicing")
