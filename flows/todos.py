"""People's to-dos (待办): the list of one's own, and doing one — with how it was done.

The hub opens to-dos (`flows.notices.open_todo`) and closes some by itself (a suspect name
decided). The others are done by the person: legal records the qualification review of a new
customer (通过 / 不通过, with the reason), purchasing a purchase alert, finance an invoice
request, a manager a blocked order. A to-do is done once; who, when, how and the note are
kept on it (and in the operation log), and the people in copy are told.

Who may do one: its assignee or an admin; the legal qualification review also anyone of the
legal role (the team shares it). A customer whose review was not passed gets no further
quotes (`flows.customer_registry.refuse_if_unfit`) until legal passes it.
"""
from __future__ import annotations

import logging

from sqlmodel import Session, select

from flows.errors import Refusal
from flows.hub import Hub
from flows.notices import push, staff, todos_link
from models import Customer, Staff, Todo, utcnow
from models.base import SHANGHAI
from models.customer_files import active, stricter_verdict
from models.db import session_scope
from models.locks import lock_customer_files
from models.oplog import apply_changes
from models.work import TASK_LABELS

OUTCOMES = {"done": "已办结", "approved": "通过", "rejected": "不通过"}
QUALIFICATION_LABELS = {"pending_review": "待初审", "approved": "初审通过", "rejected": "初审未通过"}
MAX_NOTE = 500
LISTED = 50  # done to-dos shown under the open ones
log = logging.getLogger("salesops.todos")


class TodoError(Refusal):
    code = "invalid_todo"


def _may_do(person: Staff, todo: Todo) -> bool:
    return (person.role == "admin" or person.id == todo.assignee_id
            or (todo.kind == "legal_review" and person.role == "legal"))


def _cc(todo: Todo) -> list[str]:
    return [i for i in (todo.cc or "").split(",") if i]


def todo_view(todo: Todo, names: dict[str, str], person: Staff) -> dict:
    due = todo.due_at
    return {
        "id": todo.id, "kind": todo.kind, "kind_label": TASK_LABELS.get(todo.kind, todo.kind),
        "title": todo.title, "body": todo.body, "status": todo.status,
        "assignee": todo.assignee_id, "assignee_name": names.get(todo.assignee_id),
        "cc": _cc(todo), "due_at": due.isoformat(), "overdue": todo.status == "open"
        and due < utcnow(), "order_id": todo.order_id, "customer_id": todo.customer_id,
        "done_by": todo.done_by, "done_by_name": names.get(todo.done_by or ""),
        "done_at": todo.done_at.isoformat() if todo.done_at else None,
        "outcome": todo.outcome, "outcome_label": OUTCOMES.get(todo.outcome or ""),
        "note": todo.note, "may_do": todo.status == "open" and _may_do(person, todo),
        "outcomes": (["approved", "rejected"] if todo.kind == "legal_review" else ["done"]),
    }


def my_todos(db_url: str, person: Staff) -> dict:
    """The person's open to-dos (assigned, or the legal team's reviews for legal), those he is
    in copy of, and the latest done, each newest due first."""
    with session_scope(db_url) as s:
        if person.role == "legal":
            mine = (Todo.assignee_id == person.id) | (Todo.kind == "legal_review")
        else:
            mine = Todo.assignee_id == person.id
        open_ = s.exec(select(Todo).where(mine, Todo.status == "open")
                       .order_by(Todo.due_at, Todo.id)).all()
        done = s.exec(select(Todo).where(mine, Todo.status == "done")
                      .order_by(Todo.id.desc()).limit(LISTED)).all()
        copied = [t for t in s.exec(select(Todo).where(
            Todo.status == "open", Todo.cc.is_not(None), Todo.cc.contains(person.id),
            Todo.assignee_id != person.id).order_by(Todo.due_at, Todo.id)).all()
            if person.id in _cc(t)]
        names = dict(s.exec(select(Staff.id, Staff.name)).all())
        return {"open": [todo_view(t, names, person) for t in open_],
                "copied": [todo_view(t, names, person) for t in copied],
                "done": [todo_view(t, names, person) for t in done]}


def complete_todo(hub: Hub, todo_id: int, person: Staff, outcome: str | None,
                  note: str | None) -> dict:
    """Do a to-do, once: `outcome` approved / rejected for a legal qualification review (the
    reason is required when not passed), done (or nothing) otherwise. One transaction; the
    people concerned are told afterwards."""
    with session_scope(hub.db_url) as s:
        view, customer, told = _complete_in(s, todo_id, person, outcome, note)
    _tell(hub, view, customer, told, person)
    return view


def _complete_in(s: Session, todo_id: int, person: Staff, outcome: str | None,
                 note: str | None) -> tuple[dict, Customer | None, list[str]]:
    """`complete_todo`'s work in the caller's transaction: (the to-do's view, its customer
    file, who is to be told once it commits)."""
    note = (note or "").strip() or None
    # the to-do as it is now, held until done: a merge moving it (and its file's verdict)
    # waits, one committed before is seen; a second person doing it waits, then finds it done
    lock_customer_files(s)
    todo = s.exec(select(Todo).where(Todo.id == todo_id).with_for_update()
                  .execution_options(populate_existing=True)).first()
    if todo is None:
        raise TodoError(f"待办不存在：{todo_id}", status=404, code="unknown_todo")
    if not _may_do(person, todo):
        raise TodoError(f"该待办由 {_name(s, todo.assignee_id)} 处理，您无权办结",
                        status=403, code="forbidden")
    if todo.status != "open":
        when = todo.done_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") \
            if todo.done_at else "此前"
        by = f"由 {_name(s, todo.done_by)} " if todo.done_by else "由系统"
        raise TodoError(f"该待办已于 {when} {by}办结", status=409, code="already_done")
    outcome = checked_outcome(todo.kind, outcome, note)
    actor = f"staff:{person.id}"
    apply_changes(s, todo, actor, status="done", done_by=person.id, done_at=utcnow(),
                  outcome=outcome, note=note)
    customer = active(s, todo.customer_id)  # the survivor of a file merged away
    if todo.kind == "legal_review" and customer is not None:
        # on the survivor, the merged file's verdict counts as a merge counts it
        apply_changes(s, customer, actor, qualification=outcome
                      if customer.id == todo.customer_id
                      else stricter_verdict(customer.qualification, outcome))
    told = _told(s, todo, customer)
    names = dict(s.exec(select(Staff.id, Staff.name)).all())
    return todo_view(todo, names, person), customer, told


def checked_outcome(kind: str, outcome: str | None, note: str | None) -> str:
    """How a to-do of `kind` may be done: approved / rejected (with its reason) for a
    qualification review, done otherwise; TodoError naming the field if not."""
    allowed = ("approved", "rejected") if kind == "legal_review" else ("done",)
    outcome = outcome or ("done" if allowed == ("done",) else None)
    if outcome not in allowed:
        raise TodoError("请选择初审结果：通过或不通过" if kind == "legal_review"
                        else f"处理结果只能是 done，实为 {outcome!r}",
                        code="invalid_outcome", field="outcome")
    if outcome == "rejected" and not note:
        raise TodoError("初审不通过时请填写原因（将告知销售代表）", code="note_required",
                        field="note")
    if note and len(note) > MAX_NOTE:
        raise TodoError(f"备注不能超过 {MAX_NOTE} 个字符（此处 {len(note)} 个）",
                        code="note_too_long", field="note")
    return outcome


def _name(s: Session, staff_id: str | None) -> str:
    p = staff(s, staff_id)
    return p.name if p else (staff_id or "—")


def _told(s: Session, todo: Todo, customer: Customer | None) -> list[str]:
    """Who hears that a to-do was done: the people in copy, and for a qualification review
    the customer's rep too (his orders wait on it)."""
    people = _cc(todo)
    if todo.kind == "legal_review" and customer is not None and customer.owner_rep_id:
        people.insert(0, customer.owner_rep_id)
    return list(dict.fromkeys(people))


def _tell(hub: Hub, view: dict, customer: Customer | None, people: list[str],
          person: Staff) -> None:
    if not people:
        return
    note = f"\n备注：{view['note']}" if view["note"] else ""
    if view["kind"] == "legal_review" and customer is not None:
        passed = view["outcome"] == "approved"
        title = f"【资质初审{'通过' if passed else '未通过'}】{customer.legal_name}"
        text = (f"法务 {person.name} 已完成客户“{customer.legal_name}”的资质初审："
                f"{OUTCOMES[view['outcome']]}。"
                + ("" if passed else "该客户的意向单暂停报价，资质补齐后请联系法务重新审核。")
                + note)
    else:
        title = f"【待办已办结】{view['title']}"
        text = f"{person.name} 已办结待办“{view['title']}”。{note}"
    base = hub.settings.public_base_url.rstrip("/")
    link = f"{base}/orders/{view['order_id']}" if view["order_id"] else todos_link(hub)
    try:
        push(hub, key=f"todo-done:{view['id']}", title=title, text=text, staff_ids=people,
             link=link)
    except Exception:  # noqa: BLE001 - the to-do is done and stays so; the push is lost
        log.exception("could not push that to-do %s was done", view["id"])


def review_qualification(hub: Hub, customer_id: int, person: Staff, outcome: str,
                         note: str | None) -> dict:
    """Legal reviews a customer again (资质复审): the file's open review is done with this
    outcome; with none open (passed or not passed before), a new one is opened and done."""
    from flows.customer_registry import open_legal_review

    # checked before a review is opened: a refused answer leaves no review behind
    checked_outcome("legal_review", outcome, (note or "").strip() or None)
    with session_scope(hub.db_url) as s:
        lock_customer_files(s)  # the file as it is now: no merge until the verdict is written
        customer = s.get(Customer, customer_id)
        if customer is None or customer.merged_into_id is not None:
            raise TodoError(f"客户档案不存在：{customer_id}", status=404, code="unknown_customer")
        if person.role not in ("legal", "admin"):
            raise TodoError("只有法务或管理员可以审核客户资质", status=403, code="forbidden")
        review = s.exec(select(Todo).where(Todo.kind == "legal_review",
                                           Todo.customer_id == customer_id,
                                           Todo.status == "open")).first()
        if review is None:
            done = s.exec(select(Todo).where(Todo.kind == "legal_review",
                                             Todo.customer_id == customer_id)).all()
            review = open_legal_review(hub, s, customer, order=None, typed=customer.legal_name,
                                       actor=f"staff:{person.id}", round_no=len(done) + 1)
            s.flush()
        # opened and done in one transaction: a failure leaves no review behind
        view, customer, told = _complete_in(s, review.id, person, outcome, note)
    _tell(hub, view, customer, told, person)
    return view
