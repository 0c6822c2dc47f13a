"""Telling people: to-dos (idempotent by kind and key), their mail and their push, each once."""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from sqlmodel import Session, select

from connectors.email import OutgoingMail
from connectors.notify import PushMessage
from connectors.settings import Settings
from flows.batch import BusinessRefusal
from flows.effects import once
from flows.hub import Hub
from models import Effect, Staff, Todo, utcnow
from models.base import SHANGHAI
from models.db import session_scope
from models.oplog import apply_changes, record_create

log = logging.getLogger("salesops.notices")


def staff(session: Session, staff_id: str | None) -> Staff | None:
    return session.get(Staff, staff_id) if staff_id else None


def manager_of(session: Session, rep_id: str | None) -> Staff | None:
    rep = staff(session, rep_id)
    return staff(session, rep.manager_id) if rep else None


# the settings naming who gets which to-dos, and what people read for each
ASSIGNEE_SETTINGS = {
    "purchasing_assignee": "采购预警",
    "legal_assignee": "法务资质初审",
    "finance_assignee": "开票准备",
    "risk_assignee": "客户工商信息变更",
    "suspect_fallback_decider": "销售无上级时的疑似新客户确认与签署未完成待办",
}


def unknown_assignee(setting: str, staff_id: str) -> str:
    """What people read when a setting names a staff id nobody on file has (a typo, or the
    person left): a to-do for nobody cannot be stored (todo.assignee_id is a staff id)."""
    return (f"{ASSIGNEE_SETTINGS[setting]}的接收人 SALESOPS_{setting.upper()}={staff_id} "
            "不在员工名单中：请在员工名单中添加该员工，或改正该设置")


def assignee(session: Session, settings: Settings, setting: str) -> str:
    """The staff id `setting` names; a BusinessRefusal naming it when nobody on file has it
    (the record is blocked with that reason instead of failing on the to-do's foreign key)."""
    staff_id = getattr(settings, setting)
    if staff(session, staff_id) is None:
        raise BusinessRefusal(unknown_assignee(setting, staff_id))
    return staff_id


def unknown_assignees(db_url: str, settings: Settings) -> list[str]:
    """The assignee settings naming nobody on file, as people read them (checked where the hub
    starts serving: better said then than at the first order it stops)."""
    with session_scope(db_url) as s:
        return [unknown_assignee(name, getattr(settings, name)) for name in ASSIGNEE_SETTINGS
                if staff(s, getattr(settings, name)) is None]


def order_todo_key(session: Session, kind: str, order_id: str) -> str:
    """The business key of the order's to-do of `kind` to write to: its open one, if a person
    has not dealt with it yet; else a new one (news after the last one was done is its own
    to-do, mailed: an order blocked again, a SKU newly short)."""
    todos = session.exec(select(Todo.business_key, Todo.status).where(
        Todo.kind == kind, Todo.order_id == order_id).order_by(Todo.id)).all()
    for key, status in todos:
        if status == "open":
            return key
    return f"order:{order_id}" + (f":{len(todos) + 1}" if todos else "")


def open_todo(session: Session, *, kind: str, key: str, title: str, body: str,
              assignee_id: str, due_hours: int | None = None, due_at: dt.datetime | None = None,
              cc: Iterable[str] = (), order_id=None, customer_id=None,
              actor: str = "flow:intent-order", new_only: bool = False) -> Todo | None:
    """Idempotent by (kind, key): a rerun finds the to-do it opened before (`new_only`: None
    instead, for a caller that acts only on a to-do it opened)."""
    todo = session.exec(select(Todo).where(Todo.kind == kind, Todo.business_key == key)).first()
    if todo is not None and new_only:
        return None
    if todo is None:
        due = due_at or utcnow() + dt.timedelta(hours=due_hours or 24)
        todo = Todo(kind=kind, business_key=key, title=title, body=body, assignee_id=assignee_id,
                    cc=",".join(cc) or None, due_at=due, order_id=order_id,
                    customer_id=customer_id)
        session.add(todo)
        record_create(session, todo, actor)
    return todo


def close_todo(session: Session, todo_id: int | None, actor: str) -> None:
    todo = session.get(Todo, todo_id) if todo_id else None
    if todo is not None and todo.status == "open":
        apply_changes(session, todo, actor, status="done")


def mail_todo(hub: Hub, todo_id: int, news: str | None = None) -> None:
    """Tell the assignee (and cc) about a to-do, once; `news` names a change of an open to-do
    worth its own mail (its own key: the first mail is already done)."""
    with session_scope(hub.db_url) as s:
        todo = s.get(Todo, todo_id)
        key = todo.business_key + (f"#{news}" if news else "")
        assignee = staff(s, todo.assignee_id)
        cc = [p.email for p in (staff(s, i) for i in (todo.cc or "").split(",") if i) if p]
        mail = OutgoingMail(
            idempotency_key=f"todo:{todo.kind}:{key}",
            to=(assignee.email,), cc=tuple(cc),
            subject=f"【待办】{todo.title}",
            text=(f"{assignee.name}，您好：\n\n{todo.body}\n\n"
                  f"截止时间：{todo.due_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}\n"
                  f"办理（我的待办）：{todos_link(hub)}\n"
                  f"—— 销售运营中台（自动发送）"))
    once(hub.db_url, "todo_mail", _mail_key(todo.kind, key),
         lambda: {"message_id": hub.mailer.send(mail)})


def mail_todos(hub: Hub, todo_ids: Iterable[int]) -> None:
    """Mail to-dos opened while a run gives up on records (blocked orders, signings), each
    once. A mail server failing now is logged and does not undo the outcome already stored:
    the to-do stays open on the order page."""
    for todo_id in todo_ids:
        try:
            mail_todo(hub, todo_id)
        except Exception:
            log.exception("could not mail to-do %s", todo_id)


def push(hub: Hub, *, key: str, title: str, text: str, staff_ids: Iterable[str],
         link: str | None = None) -> None:
    """A push to the people's group chat, @-mentioning them, once per key."""
    ids = tuple(dict.fromkeys(i for i in staff_ids if i))
    with session_scope(hub.db_url) as s:
        mobiles = tuple(p.mobile for p in (staff(s, i) for i in ids) if p and p.mobile)
    # the texts are plain (no caller writes markdown), but carry what people typed: a name
    # such as "[点此登录](evil.example)" must not become a link the robot renders
    plain = str.maketrans({"[": "［", "]": "］"})
    message = PushMessage(key=key, title=title.translate(plain), text=text.translate(plain),
                          recipients=ids, mention_mobiles=mobiles, link=link)
    once(hub.db_url, "push", key, lambda: {"reference": hub.notifier.push(message)})


def notify_todo(hub: Hub, todo_id: int, *, link: str | None = None) -> None:
    """Mail and push a to-do to its assignee (cc in copy), each once."""
    mail_todo(hub, todo_id)
    with session_scope(hub.db_url) as s:
        todo = s.get(Todo, todo_id)
        people = [todo.assignee_id, *(todo.cc or "").split(",")]
        due = todo.due_at.astimezone(SHANGHAI)
        key, title, body = _push_key(todo.kind, todo.business_key), todo.title, todo.body
    push(hub, key=key, title=f"【待办】{title}", text=f"{body}\n\n截止：{due:%Y-%m-%d %H:%M}",
         staff_ids=people, link=link or todos_link(hub))


def _mail_key(kind: str, business_key: str) -> str:
    return f"{kind}:{business_key}"


def _push_key(kind: str, business_key: str) -> str:
    return f"todo:{kind}:{business_key}"


def untold_todos(db_url: str, kind: str, opened_before: dt.datetime) -> list[int]:
    """Open to-dos of `kind` opened before `opened_before` whose mail or push (`notify_todo`)
    is not done: the mail server failed, or the process died, right after they were opened."""
    with session_scope(db_url) as s:
        todos = s.exec(select(Todo.id, Todo.business_key).where(
            Todo.kind == kind, Todo.status == "open", Todo.created_at < opened_before)).all()
        done = set(s.exec(select(Effect.kind, Effect.business_key).where(
            Effect.status == "done", Effect.kind.in_(["todo_mail", "push"]),
            Effect.business_key.in_([_mail_key(kind, k) for _, k in todos]
                                    + [_push_key(kind, k) for _, k in todos]))).all())
    return [tid for tid, key in todos
            if ("todo_mail", _mail_key(kind, key)) not in done
            or ("push", _push_key(kind, key)) not in done]


def todos_link(hub: Hub) -> str:
    """Where people do their to-dos (the phone page 我的待办)."""
    return f"{hub.settings.public_base_url.rstrip('/')}/todos"
