"""Suspected new customers (疑似新客户): names nobody recognises are collected, escalated to a
sales manager, and refused once the manager lets the deadline pass.

- Each order whose customer name is not recognised is a *sighting* of that name (by its
  key, `suspect_key`: spellings and the ways of writing its region — 江苏省康达医疗, 江苏康达
  医疗, 康达医疗（江苏） — are one name; one per order, so retries count once). The order
  waits on hold; its rep is told, with the matcher's suggestions, and may pick the customer
  for that order himself.
- When a name has been seen `suspect_threshold` times, the rep's sales manager gets a to-do with
  a deadline of `suspect_decision_hours` (mail and push): create the customer (enriched from the
  registry) or merge the name into an existing customer as an alias.
- Once the deadline passes undecided, the name is *overdue*: every new submission carrying it
  is refused at the door with a message naming who must decide, and orders waiting on it are
  blocked. The hourly `customer-suspects` flow escalates and enforces; the decision releases
  every order that waited, whenever it comes.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from sqlmodel import Session, select

from flows.batch import BusinessRefusal
from flows.errors import Refusal
from flows.customer_index import customer_index
from flows.customer_registry import (
    files_of, identifies, new_file_facts, open_legal_review,
)
from flows.hub import Hub, current_hub
from flows.notices import (
    close_todo, fallback_person, manager_of, notify_todo, open_todo, push, staff,
)
from models import (
    ORDER_STATUS_LABELS, Customer, InboxEvent, IntentOrder, Opportunity, OrderStatus, Staff,
    SuspectName, SuspectSighting, SuspectStatus, utcnow,
)
from models.base import SHANGHAI
from models.customer_files import (
    CustomerFileError, active, active_for_writing, add_alias, create_customer, exact_matches,
    is_overdue,
    overdue_refusal, suspect_key,
)
from models.db import session_scope
from models.locks import lock_customer_files
from models.matching import Candidate
from models.oplog import apply_changes, record_create
from models.uscc import clean_uscc, looks_like_uscc

ACTOR = "flow:customer-suspects"
#: who decided a name that got its file by other means (resolve_names_on_file), as people read it
DECIDED_BY_FILE = "系统（该名称已有客户档案）"
DECIDER_ROLES = ("admin", "sales_ops")  # besides the manager the to-do went to

log = logging.getLogger("salesops.flows")


class DecisionError(Refusal):
    """A decision that cannot be taken."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, status=status, code=code)


def _suspect_for(hub: Hub, key: str, typed: str) -> int:
    """The suspect record of a name key, created if new (safe against a concurrent creator)."""
    for _ in range(2):
        with session_scope(hub.db_url) as s:
            found = s.exec(select(SuspectName.id).where(SuspectName.key == key)).first()
            if found:
                return found
        try:
            with session_scope(hub.db_url) as s:
                suspect = SuspectName(key=key, display_name=typed.strip())
                s.add(suspect)
                record_create(s, suspect, ACTOR)
                return suspect.id
        except sa.exc.IntegrityError:
            continue  # another run created it a moment ago
    raise RuntimeError(f"suspect record for {key!r} could not be created")


def _as_now(query):
    """`query` reading its rows as they are now, each locked until the transaction ends
    (PostgreSQL): a writer of the same row at the same time — a manager's decision, the hourly
    sweep, a rep's choice for an order — waits, or is waited for and then read again (and
    checked against `query`'s conditions again), so nothing written here overwrites what the
    other wrote meanwhile. On SQLite the transaction's write lock, taken before reading
    (`lock_customer_files`), does the same."""
    return query.with_for_update().execution_options(populate_existing=True)


def _suggestion_text(candidates: Sequence[Candidate], limit: int = 3) -> str:
    return "；".join(f"{c.legal_name}（匹配“{c.matched_alias}”）" for c in candidates[:limit])


def hold_for_suspect(hub: Hub, order_id: str, typed: str,
                     candidates: Sequence[Candidate]) -> int | None:
    """Record a sighting of an unrecognised name and put the order on hold (or block it when
    the name is already overdue); escalate when the name reached the threshold. Returns the
    customer id instead when the name was decided in the meantime."""
    st = hub.settings
    suspect_id = _suspect_for(hub, suspect_key(typed), typed)
    escalated_todo = None
    with session_scope(hub.db_url) as s:
        # the name as it is now, held until this transaction ends: a manager deciding it
        # meanwhile waits, or is seen (its decision taken, not escalated over)
        lock_customer_files(s)
        suspect = s.exec(_as_now(select(SuspectName).where(SuspectName.id == suspect_id))).one()
        order = s.get(IntentOrder, order_id)
        if s.exec(select(SuspectSighting.id).where(SuspectSighting.suspect_id == suspect_id,
                                                   SuspectSighting.order_id == order_id)
                  ).first() is None:
            s.add(SuspectSighting(suspect_id=suspect_id, order_id=order_id, typed_name=typed,
                                  rep_id=order.rep_id))
            s.flush()
        count = s.exec(select(sa.func.count()).select_from(SuspectSighting).where(
            SuspectSighting.suspect_id == suspect_id)).one()
        apply_changes(s, suspect, ACTOR, sightings=count, last_seen_at=utcnow(),
                      last_rep_id=order.rep_id)
        if suspect.status in (SuspectStatus.created, SuspectStatus.merged) and suspect.customer_id:
            return active(s, suspect.customer_id).id  # decided a moment ago: take it
        if candidates and not suspect.suggestions:
            suspect.suggestions = json.dumps(
                [{"customer_id": c.customer_id, "legal_name": c.legal_name,
                  "matched_alias": c.matched_alias, "score": round(c.score, 1)}
                 for c in candidates[:5]], ensure_ascii=False)
        if suspect.status == SuspectStatus.collecting and count >= st.suspect_threshold:
            escalated_todo = _escalate(hub, s, suspect, order.rep_id)
        overdue = is_overdue(suspect, utcnow())
        hint = f"候选客户：{_suggestion_text(candidates)}。" if candidates else "系统中无相近客户。"
        if suspect.status == SuspectStatus.collecting:
            # no manager has been asked yet (that happens at the threshold): say who can act
            who = "您的销售经理" if order.rep_id else "销售运营"
            then = f"如为新客户，请{who}在疑似新客户页面新建客户档案：{suspect_link(hub, suspect_id)}"
        else:
            then = "或等待销售经理确认。"
        reason = (f"客户名称“{typed}”未能识别（第 {count} 次出现）。{hint}"
                  f"请在意向单中选择正确的客户；{then}")
        apply_changes(s, order, ACTOR, suspect_id=suspect_id, error=reason[:2000],
                      status=OrderStatus.on_hold.value, claimed_by=None, claimed_until=None)
        rep_id = order.rep_id
        refusal = overdue_refusal(s, typed) if overdue else None
    if escalated_todo:
        notify_todo(hub, escalated_todo, link=suspect_link(hub, suspect_id))
    if refusal:
        raise BusinessRefusal(refusal)
    # an order without a rep (sent by a system) goes to who decides for rep-less names
    push(hub, key=f"order-held:{order_id}", title="意向单客户名称未识别",
         text=(f"您提交的意向单 {order_id}：" if rep_id else
               f"意向单 {order_id}（未指定销售）：") + reason,
         staff_ids=[rep_id or st.suspect_fallback_decider],
         link=f"{hub.settings.public_base_url.rstrip('/')}/orders/{order_id}")
    return None


def suspect_link(hub: Hub, suspect_id: int) -> str:
    return f"{hub.settings.public_base_url.rstrip('/')}/customers/suspects/{suspect_id}"


def _decider_for(hub: Hub, s: Session, rep_id: str | None) -> str:
    manager = manager_of(s, rep_id)
    return manager.id if manager else fallback_person(s, hub.settings)


def _escalate(hub: Hub, s: Session, suspect: SuspectName, rep_id: str | None) -> int:
    """Give the name to the rep's sales manager with a deadline. Returns the to-do id."""
    now = utcnow()
    decider = _decider_for(hub, s, rep_id)
    deadline = now + dt.timedelta(hours=hub.settings.suspect_decision_hours)
    sightings = s.exec(select(SuspectSighting).where(
        SuspectSighting.suspect_id == suspect.id).order_by(SuspectSighting.id)).all()
    reps = [p.name for p in (staff(s, i) for i in dict.fromkeys(x.rep_id for x in sightings)) if p]
    spellings = list(dict.fromkeys(x.typed_name for x in sightings))
    suggestions = json.loads(suspect.suggestions or "[]")
    listed = "\n".join(f"  {n}. {c['legal_name']}（客户编号 {c['customer_id']}，匹配“{c['matched_alias']}”）"
                       for n, c in enumerate(suggestions[:5], start=1)) or "  （无相近客户）"
    todo = open_todo(
        s, actor=ACTOR, kind="suspect_customer", key=f"suspect:{suspect.id}",
        title=f"疑似新客户待确认：{suspect.display_name}",
        body=(f"客户名称“{suspect.display_name}”已在 {len(sightings)} 张意向单中出现"
              f"（销售：{'、'.join(reps) or '未知'}；写法：{'、'.join(spellings)}），系统未能识别。\n"
              f"相近的已有客户：\n{listed}\n"
              f"请在截止前二选一：新建客户档案（系统将自动查询工商信息并发起法务资质初审），"
              f"或将该名称并入已有客户作为别名。相关意向单将随决定自动继续处理。\n"
              f"逾期未决定，含此名称的意向单将一律拒收。"),
        assignee_id=decider, due_at=deadline, cc=[rep_id] if rep_id else [])
    s.flush()
    apply_changes(s, suspect, ACTOR, status=SuspectStatus.escalated, decider_id=decider,
                  escalated_at=now, deadline_at=deadline, todo_id=todo.id)
    return todo.id


# --- the hourly flow ------------------------------------------------------------------

@dataclass
class SweepResult:
    escalated: list[int]
    overdue: list[int]
    blocked_orders: list[str]
    resolved: list[int] = field(default_factory=list)
    released_orders: list[str] = field(default_factory=list)


def resolve_names_on_file(hub: Hub) -> list[int]:
    """Open names that got a file by other means since (an import, a merge by hand, a file
    opened for another spelling — 深圳市… decided, 深圳… still waiting — that the matcher now
    links with confidence, as it would link a new order carrying the name): that file decides
    them, like a manager's merge, and the orders that waited go on."""
    with session_scope(hub.db_url) as s:
        open_names = [(x.id, x.display_name, bool(exact_matches(s, x.display_name)))
                      for x in s.exec(select(SuspectName).where(
                          SuspectName.status.in_(SuspectStatus.OPEN)).order_by(SuspectName.id))]
    linked = {}
    unknown = [(suspect_id, name) for suspect_id, name, on_file in open_names if not on_file]
    if unknown:  # (the index is built only when there is something to look up)
        index = customer_index(hub.db_url, hub.settings.customer_index_refresh_seconds)
        for suspect_id, name in unknown:
            result = index.search(name)
            if result.decision == "auto":
                linked[suspect_id] = result.candidates[0].customer_id
    decided = []
    with session_scope(hub.db_url) as s:
        lock_customer_files(s)  # the files found are written to: no merge meanwhile
        for suspect_id, name, _ in open_names:
            # the name as it is now: one a manager decided meanwhile is his (_open_suspect)
            suspect = s.exec(_as_now(select(SuspectName).where(
                SuspectName.id == suspect_id, SuspectName.status.in_(SuspectStatus.OPEN)))).first()
            if suspect is None:
                continue
            found = exact_matches(s, name)
            if not found and suspect_id in linked:
                customer = active(s, linked[suspect_id])
                if customer is None:
                    continue
                found = [customer]
                for spelling in _spellings(s, suspect):  # new orders find it exactly
                    add_alias(s, customer, spelling, "typed", "order", ACTOR)
            if len(found) != 1:
                continue
            released = _decide(s, suspect, found[0], SuspectStatus.merged, ACTOR)
            decided.append((suspect.id, released, found[0].legal_name))
    for suspect_id, released, legal_name in decided:
        _tell_reps(hub, suspect_id, released, f"已有客户档案“{legal_name}”")
    return [suspect_id for suspect_id, _, _ in decided]


def release_orders_of_decided_names(hub: Hub) -> list[str]:
    """Orders still waiting on a name that is decided: a decision releases its orders at once,
    so these waited on another spelling of the name, collected apart before the spellings
    became one (migration 0015 merged them into the decided one). They go on with its
    customer, as they would have with the decision."""
    waiting = select(IntentOrder.suspect_id).where(
        IntentOrder.customer_id.is_(None),
        IntentOrder.status.in_([OrderStatus.on_hold.value, OrderStatus.blocked.value]))
    released = []
    with session_scope(hub.db_url) as s:
        lock_customer_files(s)  # the orders go on the files found: no merge meanwhile
        for suspect in s.exec(select(SuspectName).where(
                SuspectName.status.in_([SuspectStatus.created, SuspectStatus.merged]),
                SuspectName.id.in_(waiting)).order_by(SuspectName.id)).all():
            customer = active(s, suspect.customer_id)
            order_ids = release_orders(s, suspect.id, customer.id, ACTOR) if customer else []
            if order_ids:
                released.append((suspect.id, order_ids, customer.legal_name))
    for suspect_id, order_ids, legal_name in released:
        # (the decision's own push went out before: this one is about these orders)
        _tell_reps(hub, suspect_id, order_ids, f"已确认为客户“{legal_name}”",
                   key=f"suspect-released:{suspect_id}:{order_ids[0]}")
    return [order_id for _, order_ids, _ in released for order_id in order_ids]


def escalate_and_enforce(hub: Hub) -> SweepResult:
    """Decide names that have a file by now (and release orders still waiting on a decided
    name); escalate names that reached the threshold without a to-do (e.g. the threshold was
    lowered); mark names past their deadline overdue and block the orders waiting on them."""
    now = utcnow()
    result = SweepResult([], [], [], resolve_names_on_file(hub),
                         release_orders_of_decided_names(hub))
    todos: list[tuple[int, int]] = []
    with session_scope(hub.db_url) as s:
        # the names as they are now: one a manager decided meanwhile is not escalated over
        lock_customer_files(s)
        for suspect in s.exec(_as_now(select(SuspectName).where(
                SuspectName.status == SuspectStatus.collecting,
                SuspectName.sightings >= hub.settings.suspect_threshold)
                .order_by(SuspectName.id))).all():
            todos.append((_escalate(hub, s, suspect, suspect.last_rep_id), suspect.id))
            result.escalated.append(suspect.id)
    for todo_id, suspect_id in todos:
        notify_todo(hub, todo_id, link=suspect_link(hub, suspect_id))
    with session_scope(hub.db_url) as s:
        # the names and their orders as they are now: a name a manager decided meanwhile is
        # not made overdue again, an order its rep found the customer for is not blocked
        lock_customer_files(s)
        late = s.exec(_as_now(select(SuspectName).where(
            SuspectName.status == SuspectStatus.escalated, SuspectName.deadline_at < now)
            .order_by(SuspectName.id))).all()
        notices = []
        for suspect in late:
            apply_changes(s, suspect, ACTOR, status=SuspectStatus.overdue)
            refusal = overdue_refusal(s, suspect.display_name)
            orders = s.exec(_as_now(select(IntentOrder).where(
                IntentOrder.suspect_id == suspect.id,
                IntentOrder.status == OrderStatus.on_hold.value))).all()
            for order in orders:
                apply_changes(s, order, ACTOR, status=OrderStatus.blocked.value,
                              error=refusal[:2000])
                result.blocked_orders.append(order.id)
            decider = staff(s, suspect.decider_id)
            people = [suspect.decider_id, decider.manager_id if decider else None,
                      *(o.rep_id for o in orders)]
            notices.append((suspect.id, suspect.display_name, refusal, people))
            result.overdue.append(suspect.id)
    for suspect_id, name, refusal, people in notices:
        push(hub, key=f"suspect-overdue:{suspect_id}", title=f"疑似新客户逾期未确认：{name}",
             text=refusal, staff_ids=[p for p in people if p], link=suspect_link(hub, suspect_id))
    return result


@flow(name="customer-suspects")
def sweep_suspects() -> dict:
    """Hourly: escalate suspected new customers and enforce their deadlines."""
    hub = current_hub()
    result = escalate_and_enforce(hub)
    with session_scope(hub.db_url) as s:
        open_ones = s.exec(select(SuspectName).where(
            SuspectName.status.in_(SuspectStatus.OPEN)).order_by(SuspectName.id)).all()
        rows = [{"名称": x.display_name, "出现次数": x.sightings, "状态": STATUS_LABELS[x.status],
                 "决定人": x.decider_id or "", "截止": x.deadline_at.astimezone(SHANGHAI).strftime(
                     "%Y-%m-%d %H:%M") if x.deadline_at else ""} for x in open_ones]
    create_table_artifact(key="customer-suspects", table=rows or [{"名称": "（无）"}],
                          description=f"待确认疑似新客户 {len(rows)} 个；本次升级 "
                                      f"{len(result.escalated)}，逾期 {len(result.overdue)}，"
                                      f"已有档案自动确认 {len(result.resolved)}")
    summary = {"escalated": result.escalated, "overdue": result.overdue,
               "blocked_orders": result.blocked_orders, "resolved": result.resolved,
               "released_orders": result.released_orders,
               "open": len(rows)}
    get_run_logger().info("suspects: %s", summary)
    return summary


STATUS_LABELS = {SuspectStatus.collecting: "收集中", SuspectStatus.escalated: "待经理确认",
                 SuspectStatus.overdue: "已逾期（拒收中）", SuspectStatus.created: "已新建客户",
                 SuspectStatus.merged: "已并入已有客户"}


# --- decisions --------------------------------------------------------------------------

def may_decide(person: Staff, suspect: SuspectName, session: Session) -> bool:
    """The manager the name was given to, his own managers, sales-ops and admins; before it
    is given to anyone (fewer sightings than the threshold), the managers of the reps whose
    orders carried it — a new customer who ordered once must not wait for two more orders."""
    if person.role in DECIDER_ROLES or person.id == suspect.decider_id:
        return True
    if suspect.decider_id is not None:
        return _manages(session, person.id, suspect.decider_id)
    reps = session.exec(select(SuspectSighting.rep_id).where(
        SuspectSighting.suspect_id == suspect.id).distinct()).all()
    return any(_manages(session, person.id, rep) for rep in {*reps, suspect.last_rep_id} if rep)


def _manages(session: Session, manager_id: str, staff_id: str) -> bool:
    """Whether `manager_id` is above `staff_id` in the reporting line."""
    boss, seen = staff(session, staff_id), set()
    while boss is not None and boss.manager_id and boss.id not in seen:
        if boss.manager_id == manager_id:
            return True
        seen.add(boss.id)
        boss = staff(session, boss.manager_id)
    return False


def _open_suspect(s: Session, suspect_id: int, person: Staff) -> SuspectName:
    # locked as read (PostgreSQL): two decisions at once — two managers, or a manager and the
    # hourly sweep — are taken one after the other, the second finding the name decided
    suspect = s.exec(_as_now(select(SuspectName).where(SuspectName.id == suspect_id))).first()
    if suspect is None:
        raise DecisionError(404, "unknown_suspect", f"疑似新客户记录不存在：{suspect_id}")
    if suspect.status not in SuspectStatus.OPEN:
        raise DecisionError(409, "already_decided",
                            f"“{suspect.display_name}”已由 {_who(s, suspect.decided_by)} 于 "
                            f"{suspect.decided_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M} 处理")
    if not may_decide(person, suspect, s):
        raise DecisionError(403, "forbidden", f"“{suspect.display_name}”应由 "
                            f"{_who(s, suspect.decider_id) if suspect.decider_id else '销售经理'}"
                            " 确认，您无权处理")
    return suspect


def _who(s: Session, staff_id: str | None) -> str:
    """A person as people read it: 王强（mgr-east）; this flow as the system; an unknown id
    as it is."""
    if staff_id == ACTOR:
        return DECIDED_BY_FILE
    person = staff(s, staff_id) if staff_id else None
    return f"{person.name}（{person.id}）" if person else (staff_id or "—")


def _spellings(s: Session, suspect: SuspectName) -> list[str]:
    typed = s.exec(select(SuspectSighting.typed_name).where(
        SuspectSighting.suspect_id == suspect.id)).all()
    return list(dict.fromkeys([suspect.display_name, *typed]))


def decide_create(hub: Hub, suspect_id: int, person: Staff, legal_name: str | None = None
                  ) -> dict:
    """The manager opens a customer file for the name, enriched from the registry (a legal
    qualification review follows); every order that waited continues."""
    with session_scope(hub.db_url) as s:
        suspect = _open_suspect(s, suspect_id, person)
        wanted = (legal_name or suspect.display_name).strip()
    record = hub.registry.lookup(wanted)  # may raise TransientError: the caller answers 503
    if not identifies(record, wanted):
        record = None
    if record is None and looks_like_uscc(wanted):
        # a USCC sent as the name, unknown to the registry: a code is not a legal name
        raise DecisionError(422, "legal_name_required",
                            f"“{wanted}”是统一社会信用代码，工商信息中未查到该企业，"
                            "请填写工商全称后再新建客户档案")
    actor = f"staff:{person.id}"
    with session_scope(hub.db_url) as s:
        lock_customer_files(s)  # SQLite: the write lock first, what is read below is current
        suspect = _open_suspect(s, suspect_id, person)
        name = record.legal_name if record else wanted
        existing = files_of(s, record) if record else exact_matches(s, name)
        if existing:
            raise DecisionError(409, "customer_exists",
                                f"“{name}”已有客户档案（客户编号 {existing[0].id}），请选择并入该客户")
        facts = new_file_facts(s, record) if record else {}
        facts.pop("legal_name", None)
        if record is None and looks_like_uscc(suspect.display_name):
            # the name came as its code: the file keeps it (checked and flagged as usual)
            coded = exact_matches(s, suspect.display_name)
            if coded:
                raise DecisionError(409, "customer_exists",
                                    f"统一社会信用代码 {suspect.display_name} 已有客户档案"
                                    f"（客户编号 {coded[0].id}），请选择并入该客户")
            facts["uscc"] = clean_uscc(suspect.display_name)
        rep = staff(s, suspect.last_rep_id)
        try:
            customer = create_customer(
                s, legal_name=name, actor=actor, origin="standard",
                registry_checked=record is not None, region=rep.region if rep else None,
                owner_rep_id=suspect.last_rep_id, tier="C", qualification="pending_review",
                **facts)
        except CustomerFileError as exc:
            raise DecisionError(409, "customer_exists", str(exc)) from exc
        for spelling in _spellings(s, suspect):
            add_alias(s, customer, spelling, "typed", "manager", actor)
        review = open_legal_review(hub, s, customer, order=None, typed=suspect.display_name,
                                   actor=actor)
        released = _decide(s, suspect, customer, SuspectStatus.created, actor)
        review_id, customer_id = review.id, customer.id
    _after_decision(lambda: notify_todo(hub, review_id))
    _after_decision(lambda: _tell_reps(hub, suspect_id, released,
                                       f"已新建客户档案（客户编号 {customer_id}）"))
    return {"suspect_id": suspect_id, "decision": "created", "customer_id": customer_id,
            "registry_found": record is not None, "released_orders": released}


def decide_merge(hub: Hub, suspect_id: int, person: Staff, customer_id: int) -> dict:
    """The manager makes the name an alias of an existing customer; waiting orders continue."""
    actor = f"staff:{person.id}"
    with session_scope(hub.db_url) as s:
        customer = active_for_writing(s, customer_id)
        suspect = _open_suspect(s, suspect_id, person)
        if customer is None:
            raise DecisionError(422, "unknown_customer", f"客户档案不存在：{customer_id}")
        for spelling in _spellings(s, suspect):
            add_alias(s, customer, spelling, "typed", "manager", actor)
        released = _decide(s, suspect, customer, SuspectStatus.merged, actor)
        customer_id, legal_name = customer.id, customer.legal_name
    _after_decision(lambda: _tell_reps(hub, suspect_id, released, f"已确认为客户“{legal_name}”"))
    return {"suspect_id": suspect_id, "decision": "merged", "customer_id": customer_id,
            "released_orders": released}


def _decide(s: Session, suspect: SuspectName, customer: Customer, status: str,
            actor: str) -> list[str]:
    apply_changes(s, suspect, actor, status=status, customer_id=customer.id,
                  decided_by=actor.removeprefix("staff:"), decided_at=utcnow())
    close_todo(s, suspect.todo_id, actor)
    return release_orders(s, suspect.id, customer.id, actor)


def release_orders(s: Session, suspect_id: int, customer_id: int, actor: str) -> list[str]:
    """Orders that waited on (or were blocked by) a suspect name go on with the customer —
    not one whose customer was chosen for it meanwhile (by its rep): that one is decided,
    and if it stopped later it stopped for another reason."""
    # locked as read: a rep's choice for one of them at the same time waits, then the order is
    # no longer waiting (PostgreSQL reads the row again after the wait) and is left to it
    orders = s.exec(_as_now(select(IntentOrder).where(
        IntentOrder.suspect_id == suspect_id, IntentOrder.customer_id.is_(None),
        IntentOrder.status.in_([OrderStatus.on_hold.value, OrderStatus.blocked.value])))).all()
    return continue_orders(s, orders, customer_id, actor)


def continue_orders(s: Session, orders: Sequence[IntentOrder], customer_id: int,
                    actor: str) -> list[str]:
    """Put waiting orders on a customer and back in line: their inbox events are pending
    again, so the dispatcher or the sweeper starts them."""
    for order in orders:
        apply_changes(s, order, actor, customer_id=customer_id, status=OrderStatus.received.value,
                      error=None, attempts=0)
        opp = s.exec(select(Opportunity).where(Opportunity.order_id == order.id)).first()
        if opp is not None:
            apply_changes(s, opp, actor, customer_id=customer_id)
    ids = [o.id for o in orders]
    if ids:
        s.exec(sa.update(InboxEvent).where(InboxEvent.source == "intent-order",
                                           InboxEvent.subject_id.in_(ids))
               .values(status="pending"))
    return ids


def waiting_for_customer(order: IntentOrder) -> bool:
    """The order waits for someone to pick its customer: held (or blocked) on a name nobody
    recognised, with no customer yet. Once one is picked the order goes on under it (its
    rebate, its quote): an order blocked later for another reason is not asked again."""
    return (order.status in (OrderStatus.on_hold.value, OrderStatus.blocked.value)
            and order.suspect_id is not None and order.customer_id is None)


def may_choose_for_order(person: Staff, order: IntentOrder, session: Session) -> bool:
    """The order's rep, his sales manager, sales-ops and admins."""
    rep = staff(session, order.rep_id)
    return (person.role in DECIDER_ROLES or person.id == order.rep_id
            or (rep is not None and rep.manager_id == person.id))


def choose_customer_for_order(hub: Hub, order_id: str, person: Staff, customer_id: int
                              ) -> dict:
    """The rep (or his manager, sales-ops, an admin) picks the customer of one waiting order
    from the suggestions; the name itself stays a suspect until a manager decides."""
    actor = f"staff:{person.id}"
    with session_scope(hub.db_url) as s:
        # the order as it is now, held until the choice commits: a manager's decision (or the
        # hourly sweep) releasing it at the same time waits, then finds it no longer waiting
        lock_customer_files(s)
        order = s.exec(_as_now(select(IntentOrder).where(IntentOrder.id == order_id))).first()
        if order is None:
            raise DecisionError(404, "unknown_order", f"意向单不存在：{order_id}")
        if not may_choose_for_order(person, order, s):
            raise DecisionError(403, "forbidden", f"意向单 {order_id} 不属于您，无权选择客户")
        if not waiting_for_customer(order):
            status = ORDER_STATUS_LABELS.get(order.status, order.status)
            chosen = active(s, order.customer_id) if order.customer_id else None
            raise DecisionError(409, "order_not_waiting", (
                f"意向单 {order_id} 已选定客户“{chosen.legal_name}”（当前状态为“{status}”），"
                "不在等待确认客户，不能再更换客户（报价与返利已按该客户生成）；如客户选错，"
                "请在下单系统中作废该意向单，以正确的客户重新提交") if chosen else
                f"意向单 {order_id} 当前状态为“{status}”，不在等待确认客户")
        customer = active_for_writing(s, customer_id)
        if customer is None:
            raise DecisionError(422, "unknown_customer", f"客户档案不存在：{customer_id}")
        continue_orders(s, [order], customer.id, actor)
        return {"order_id": order_id, "customer_id": customer.id,
                "legal_name": customer.legal_name, "status": OrderStatus.received.value}


def _after_decision(tell: Callable[[], None]) -> None:
    """Tell people of a decision that has committed: whatever stops the telling (a busy
    database recording the notice), the decision stands and is answered as made — a manager
    told "not saved" would decide again and be refused as already decided. A to-do's mail
    left untold is the sweeper's (`tell_untold`)."""
    try:
        tell()
    except Exception:  # noqa: BLE001 - logged with its traceback; the decision is stored
        log.exception("a suspect decision was stored, but telling people of it failed")


def _tell_reps(hub: Hub, suspect_id: int, order_ids: list[str], what: str,
               key: str | None = None) -> None:
    if not order_ids:
        return
    with session_scope(hub.db_url) as s:
        suspect = s.get(SuspectName, suspect_id)
        reps = s.exec(select(IntentOrder.rep_id).where(IntentOrder.id.in_(order_ids))).all()
    push(hub, key=key or f"suspect-decided:{suspect_id}", title=f"客户名称已确认：{suspect.display_name}",
         text=f"“{suspect.display_name}”{what}，以下意向单已继续处理：{'、'.join(order_ids)}",
         staff_ids=reps)
