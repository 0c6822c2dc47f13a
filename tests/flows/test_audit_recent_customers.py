"""Audit (customer master data, the last session's fixes): merges, suspects decisions and the
intake's customer step at the same time; registry former names; the matcher's new rules.

Concurrent tests meet the other party at a function boundary (monkeypatch, main thread only)
and let it run to its end in a thread of its own with its own session, then go on: the
outcome is compared with what either sequential order of the same two actions gives. Run
them on PostgreSQL too (SALESOPS_TEST_DATABASE_URL)."""
from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from flows.hub import current_hub
from models import Customer, IntentOrder, SuspectName
from models.customer_files import (
    add_alias,
    create_customer,
    exact_matches,
    merge_customers,
)
from models.db import session_scope
from tests.flows.test_audit_intake_concurrency import (
    KANGDA, RENHE, UNKNOWN, customer_id, staff,
)
from tests.support import order_payload, post_order, run_pending

SHENKANG = "上海申康医疗科技有限公司"


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None)) as c:  # the test dispatches
        yield c


class Beside(threading.Thread):
    """`fn` in a thread of its own (its own sessions), given a second to get through before
    the caller goes on (it may wait for the caller's locks instead); `out`: its result or
    error, once `finish` joined it."""

    def __init__(self, fn) -> None:
        super().__init__(daemon=True)
        self.fn, self.out = fn, []
        self.start()
        self.join(1)

    def run(self) -> None:
        try:
            self.out.append(self.fn())
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            self.out.append(exc)

    def finish(self):
        self.join(60)
        assert not self.is_alive(), "the other party is stuck (each waits for the other)"
        return self.out[0]


def on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


# --- 1. the hourly sweep and a manager deciding the same name --------------------------------

@pytest.mark.usefixtures("prefect_harness")
def test_the_hourly_sweep_does_not_overwrite_a_managers_decision_taken_meanwhile(
        hub, client, monkeypatch):
    """张伟's order for “渝康器械” waits. An import gave 浙江仁和 the alias “渝康器械”, so the
    hourly sweep (`resolve_names_on_file`) finds the name on file and decides it. At that
    moment 王强 merges the name into 江苏康达 on the suspects page. One after the other, the
    second finds the name decided (`_open_suspect`: "two decisions at once — two managers, or
    a manager and the hourly sweep — are taken one after the other, the second finding the
    name decided"): the manager's decision stands, or the manager is told 409.
    Actual: the sweep reads the name with a plain `s.get` (no row lock, no re-read), the
    manager's merge commits meanwhile (its order released to 江苏康达), then the sweep writes
    its own decision over it: the name says merged into 浙江仁和 by the system, the manager's
    answer and push said 江苏康达, and the name now answers to two files (ambiguous)."""
    from flows import suspects
    from flows.suspects import decide_merge, resolve_names_on_file

    oid = post_order(client, order_payload(name=UNKNOWN)).json()["order_id"]
    run_pending(hub)
    kangda, renhe = customer_id(hub.db_url, KANGDA), customer_id(hub.db_url, RENHE)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        assert order.status == "on_hold"
        suspect_id = order.suspect_id
        add_alias(s, s.get(Customer, renhe), UNKNOWN, "short", "import", "ops-01")
    manager = staff(hub.db_url, "mgr-east")
    real = suspects._decide
    meanwhile: list[Beside] = []

    def manager_decides_meanwhile(s, suspect, customer, status, actor):
        if on_main_thread() and not meanwhile:
            meanwhile.append(Beside(lambda: decide_merge(hub, suspect_id, manager, kangda)))
        return real(s, suspect, customer, status, actor)

    monkeypatch.setattr(suspects, "_decide", manager_decides_meanwhile)
    swept = resolve_names_on_file(current_hub())
    assert meanwhile, "the sweep did not decide the name"
    answer = meanwhile[0].finish()
    with session_scope(hub.db_url) as s:
        suspect = s.get(SuspectName, suspect_id)
        order = s.get(IntentOrder, oid)
        answering = sorted(c.id for c in exact_matches(s, UNKNOWN))
    if isinstance(answer, suspects.DecisionError):  # the sweep first: the manager is told
        assert answer.code == "already_decided" and swept == [suspect_id], answer
        assert (suspect.customer_id, order.customer_id) == (renhe, renhe)
        return
    assert isinstance(answer, dict), answer
    assert oid in answer["released_orders"] and order.customer_id == kangda
    assert (suspect.status, suspect.customer_id, suspect.decided_by) == (
        "merged", kangda, "mgr-east"), (
        f"the sweep ({swept}) overwrote the manager's decision: now merged into "
        f"{suspect.customer_id} by {suspect.decided_by} (康达 {kangda}, 仁和 {renhe}); "
        f"the name answers to files {answering}")


# --- 2. legal's verdict and a merge at the same time ------------------------------------------

def test_a_rejection_recorded_while_the_file_is_merged_stays_on_the_survivor(hub, monkeypatch):
    """A standard file 苏州康达医疗器材有限公司 awaits legal's qualification review; it is the
    same company as 江苏康达 (approved) and the clerk merges it in. Legal rejects the review at
    that moment. One after the other, 江苏康达 ends rejected: rejection first, the merge keeps
    the stricter verdict (7b293f0: "a rejection is not lifted by a merge"); merge first, the
    review to-do has moved to 江苏康达 and the verdict is written there.
    Actual: `complete_todo` read the to-do before the merge committed and writes the verdict
    to the customer id it read: the file merged away is rejected, the survivor stays
    approved and its orders go on being quoted."""
    from flows import todos
    from flows.customer_registry import open_legal_review
    from flows.todos import complete_todo

    kangda = customer_id(hub.db_url, KANGDA)
    with session_scope(hub.db_url) as s:
        dup = create_customer(s, legal_name="苏州康达医疗器材有限公司", actor="test",
                              origin="standard", qualification="pending_review")
        s.flush()
        review = open_legal_review(hub, s, dup, order=None, typed=dup.legal_name)
        s.flush()
        dup_id, review_id = dup.id, review.id
    legal = staff(hub.db_url, hub.settings.legal_assignee)
    real = todos.checked_outcome
    meanwhile: list[Beside] = []

    def merge():
        with session_scope(hub.db_url) as s:
            return merge_customers(s, kangda, dup_id, "ops-01")

    def merge_meanwhile(kind, outcome, note):
        if on_main_thread() and not meanwhile:
            meanwhile.append(Beside(merge))
        return real(kind, outcome, note)

    monkeypatch.setattr(todos, "checked_outcome", merge_meanwhile)
    complete_todo(current_hub(), review_id, legal, "rejected", "营业执照经营范围不含医疗器械")
    assert meanwhile, "legal's verdict was not recorded"
    assert isinstance(meanwhile[0].finish(), dict), meanwhile[0].out
    with session_scope(hub.db_url) as s:
        survivor, gone = s.get(Customer, kangda), s.get(Customer, dup_id)
    assert survivor.qualification == "rejected", (
        f"the survivor stays {survivor.qualification!r}; the rejection went to the merged "
        f"file {dup_id} ({gone.qualification!r}, merged into {gone.merged_into_id})")


# --- 3. a former name that another company holds now ------------------------------------------

JIMIN = "安徽济民医疗器械有限责任公司"  # in the sample registry, USCC 91340100MA2NRD6E7B
JIMIN_FORMER = "合肥济民医疗设备有限公司"  # its 曾用名 there


def valid_uscc(division: str, body: str) -> str:
    from models.uscc import check_uscc, make_uscc

    code = make_uscc("9", "1", division, body)
    assert check_uscc(code).ok, code
    return code


@pytest.mark.usefixtures("prefect_harness")
def test_an_order_under_a_new_name_is_not_put_on_another_company_now_holding_the_old_name(
        hub, client):
    """济民 renamed itself 安徽济民医疗器械有限责任公司 years ago; its old name 合肥济民医疗设备
    有限公司 was later registered by another company, a customer of ours whose file (opened
    from the registry, its own USCC) carries that name. A rep's order for 安徽济民 (the new
    legal name) is looked up in the registry: USCC 91340100MA2NRD6E7B, 曾用名 合肥济民医疗设备
    有限公司. No file has that name or USCC: expected a new file for 安徽济民 (a legal review),
    never the other company's file — its USCC says it is another legal entity.
    Actual: `files_of` (89a6f88) takes any file answering to a former name, whatever its USCC:
    the order goes on the other company's file and 安徽济民's name becomes its alias, so every
    later order for 安徽济民 lands there too."""
    other_uscc = valid_uscc("340100", "MA8PXQ2L")
    with session_scope(hub.db_url) as s:
        other = create_customer(s, legal_name=JIMIN_FORMER, actor="test", origin="standard",
                                uscc=other_uscc, registry_checked=True, status="存续",
                                owner_rep_id="rep-zhangwei")
        s.flush()
        other_id = other.id
    r = post_order(client, order_payload(name=JIMIN, lines=[("PUMP-VP5", 1)]))
    assert r.status_code == 202, r.text
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, r.json()["order_id"])
        put_on = s.get(Customer, order.customer_id) if order.customer_id else None
        answering = [(c.id, c.legal_name, c.uscc) for c in exact_matches(s, JIMIN)]
        # (nor does the other company's name answer to 安徽济民's new file too)
        former_holders = [c.id for c in exact_matches(s, JIMIN_FORMER)]
    assert former_holders == [other_id], former_holders
    assert put_on is None or put_on.id != other_id, (
        f"the order for {JIMIN} (USCC 91340100MA2NRD6E7B) went on file {other_id} "
        f"{put_on.legal_name} (USCC {put_on.uscc}); {JIMIN} now answers to {answering}")
    assert all(i != other_id for i, _, _ in answering), answering


# --- 4. the matcher: a branch of a head office whose short name ends in 集团 ------------------

def listed_group(hub, legal: str, short: str, branch: str) -> tuple[int, int]:
    """A listed company's file (its short name an alias) and its Shanghai branch's file."""
    with session_scope(hub.db_url) as s:
        head = create_customer(s, legal_name=legal, actor="test", origin="imported",
                               short_names=(short,))
        s.flush()
        office = create_customer(s, legal_name=branch, actor="test", origin="imported")
        s.flush()
        assert office.parent_id == head.id
        return head.id, office.id


def typed_order(hub, client, typed: str) -> IntentOrder:
    from flows import customer_check
    from flows.batch import OrderHeld

    answer = post_order(client, order_payload(name=typed))
    assert answer.status_code == 202, answer.text
    oid = answer.json()["order_id"]
    try:
        customer_check.check_customer(current_hub(), oid)
    except OrderHeld:
        pass
    with session_scope(hub.db_url) as s:
        return s.get(IntentOrder, oid)


@pytest.mark.parametrize("typed", ["杭叉集团上海分公司", "杭叉集团（上海）分公司"])
def test_a_branch_typed_with_its_head_offices_short_name_ending_in_jituan_links(
        hub, client, typed):
    """杭叉集团股份有限公司 (listed, short name 杭叉集团) and its file 杭叉集团股份有限公司上海分公司.
    A rep types the branch as people write it, the head office by its short name. Before
    7bd5832 this linked to the branch's file; the matcher's own rule says "a head office typed
    as a short name (康达医疗苏州分公司) links by the short-name rules", and 康达医疗苏州分公司
    does. Actual: 集团 in the short name is read as an organisation form, so the head office
    counts as "typed with a form" and `_same_head_office` (杭叉集团 ≠ 杭叉集团股份有限公司, nor its
    core 杭叉) refuses: the order is held as a suspected new customer. The same for 浙农集团,
    长春欧亚集团, 杭叉集团 … (25 of 402 listed 集团 names typed without 股份有限公司)."""
    _, office = listed_group(hub, "杭叉集团股份有限公司", "杭叉集团", "杭叉集团股份有限公司上海分公司")
    order = typed_order(hub, client, typed)
    assert order.customer_id == office, (order.status, order.error)


def test_a_branch_typed_with_its_head_offices_legal_name_without_the_form_links(hub, client):
    """浙农集团股份有限公司 and its file 浙农集团股份有限公司上海分公司. The rep types 浙农集团上海
    分公司: the head office's legal name without its form, the case `_same_head_office` names
    (中信证券上海分公司 ↔ 中信证券股份有限公司上海分公司), which links. Actual: held (集团 taken
    for the form; 浙农集团 is neither the stored head office's flat name nor its core 浙农)."""
    _, office = listed_group(hub, "浙农集团股份有限公司", "浙农股份", "浙农集团股份有限公司上海分公司")
    order = typed_order(hub, client, "浙农集团上海分公司")
    assert order.customer_id == office, (order.status, order.error)


def test_a_legal_name_with_a_bracketed_word_typed_with_gufen_gongsi_links(hub, client):
    """中化国际(控股)股份有限公司 (listed, on file). The rep types 中化国际(控股)股份公司 — 有限
    dropped from the form, the slip the matcher's `_form_key` is there for (股份公司 =
    股份有限公司). Before 7bd5832 it linked. Actual: the query's industry reads 国际控股 and
    the stored one 国际 (the bracketed 控股 is parsed differently with the shorter form), the
    new "industry only related → never alone" rule applies and the order is held."""
    with session_scope(hub.db_url) as s:
        sinochem = create_customer(s, legal_name="中化国际(控股)股份有限公司", actor="test",
                                   origin="imported", short_names=("中化国际",))
        s.flush()
        sinochem_id = sinochem.id
    order = typed_order(hub, client, "中化国际(控股)股份公司")
    assert order.customer_id == sinochem_id, (order.status, order.error)


# --- 5. the registry watch and a merge at the same time ---------------------------------------

@pytest.mark.parametrize("merged_at", ["registry_lookup", "refresh"])
def test_a_registry_change_found_while_the_file_is_merged_goes_to_the_survivor(
        hub, monkeypatch, merged_at):
    """济民 has two files: 合肥济民医疗设备有限公司 (imported under its 曾用名, no USCC) and 济民
    医疗 (its USCC 91340100MA2NRD6E7B). The daily registry watch re-reads the first; the clerk
    merges it into the second at that moment — while the registry is asked, or while the
    answer is being recorded. One after the other, the changes found and their risk to-do
    are the survivor's: refresh first, the merge moves them there; merge first, the refresh
    is about the surviving file.
    Actual (before the fix): `refresh_from_registry` wrote to the file id it was given,
    without the customer-files lock: the RegistryChange rows and the to-do land on the file
    merged away, off the survivor's page."""
    from flows import customer_registry
    from flows.registry_watch import refresh_customer
    from models import RegistryChange, Todo

    with session_scope(hub.db_url) as s:
        old = create_customer(s, legal_name=JIMIN_FORMER, actor="test", origin="imported",
                              owner_rep_id="rep-zhangwei")
        kept = create_customer(s, legal_name="济民医疗", actor="test", origin="imported",
                               uscc="91340100MA2NRD6E7B", owner_rep_id="rep-zhangwei")
        s.flush()
        old_id, kept_id = old.id, kept.id
    meanwhile: list[Beside] = []

    def merge():
        with session_scope(hub.db_url) as s:
            return merge_customers(s, kept_id, old_id, "ops-01")

    def merging_meanwhile(real):
        def at_boundary(*args, **kwargs):
            if on_main_thread() and not meanwhile:
                meanwhile.append(Beside(merge))
            return real(*args, **kwargs)
        return at_boundary

    registry = current_hub().registry
    if merged_at == "registry_lookup":
        monkeypatch.setattr(registry, "lookup", merging_meanwhile(registry.lookup))
    else:
        monkeypatch.setattr(customer_registry, "same_company",
                            merging_meanwhile(customer_registry.same_company))
    refresh_customer(current_hub(), old_id)
    assert meanwhile, "the registry was not read"
    assert isinstance(meanwhile[0].finish(), dict), meanwhile[0].out
    with session_scope(hub.db_url) as s:
        changes = {c: sorted(x.field for x in s.exec(select(RegistryChange).where(
            RegistryChange.customer_id == c))) for c in (old_id, kept_id)}
        todos = {c: [t.title for t in s.exec(select(Todo).where(Todo.customer_id == c))]
                 for c in (old_id, kept_id)}
    assert not changes[old_id] and not todos[old_id], (
        f"written on the file merged away ({old_id}): changes {changes[old_id]}, to-dos "
        f"{todos[old_id]}; on the survivor {kept_id}: {changes[kept_id]}, {todos[kept_id]}")
    assert "legal_name" in changes[kept_id] and todos[kept_id], (changes, todos)
