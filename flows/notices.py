"""Telling people: to-dos (idempotent by kind and key), their mail and their push, each once.

A notice never fails the business step that opened its to-do (a stock check, a customer
check, a registry refresh): a mail server or group robot failing is logged, the notice's
effect stays not done, and the inbox-sweeper tells the to-do later (`tell_untold`, with a
backoff). A failure retrying cannot fix (a closed mailbox, a robot removed from its group)
also opens one to-do for sales-ops saying what to fix (`report_misconfigured`).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, select

from connectors.base import ConnectorError, PermanentError
from connectors.email import OutgoingMail, RecipientsRefused, SentMail
from connectors.notify import PushMessage, mobile_number
from connectors.settings import Settings
from flows.batch import BusinessRefusal
from flows.errors import Refusal
from flows.effects import effect_attempts, once
from flows.hub import Hub
from models import Effect, Staff, Todo, utcnow
from models.base import SHANGHAI
from models.db import claimed, one_snapshot, session_scope
from models.oplog import apply_changes, record_create
from models.work import NEWS_MAIL, NOT_DONE

log = logging.getLogger("salesops.notices")

# the to-do for sales-ops about a mailbox or robot that refuses the hub's notices
MISCONFIGURED = "notice_failed"
# a to-do's opener tells it at once: the sweeper tells what is left after this long
TELL_AFTER = dt.timedelta(minutes=2)
# the sweeper tries a failed mail or push again after 2 min, then 4, 8 … at most hourly
RETRY_FIRST = dt.timedelta(minutes=2)
RETRY_MAX = dt.timedelta(hours=1)
# a copy recipient the mail server still defers (4xx: a full mailbox) when a mail has had
# this many attempts (an hour and more, by the sweeper's backoff) no longer keeps it from
# the others: he is reported as a refused mailbox
DEFERRED_COPY_ATTEMPTS = 5
ROBOTS = {"wecom": "企业微信", "dingtalk": "钉钉"}


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
    "ops_assignee": "邮箱与群机器人故障通知",
}


def unknown_assignee(setting: str, staff_id: str) -> str:
    """What people read when a setting names a staff id nobody on file has (a typo, or the
    person left): a to-do for nobody cannot be stored (todo.assignee_id is a staff id)."""
    return (f"{ASSIGNEE_SETTINGS[setting]}的接收人 SALESOPS_{setting.upper()}={staff_id} "
            "不在员工名单中：请在员工名单中添加该员工，或改正该设置")


class UnknownAssignee(BusinessRefusal, Refusal):
    """A to-do's assignee setting names nobody on file: a flow's record is blocked with this
    reason (BusinessRefusal); a person's request through the API or the CLI (a manager's
    decision, legal's re-review) is answered with it — the hub's configuration, not the
    request, is at fault (503) — never a 500 on the to-do's foreign key."""
    status = 503
    code = "assignee_not_on_file"


def assignee(session: Session, settings: Settings, setting: str) -> str:
    """The staff id `setting` names; UnknownAssignee naming it when nobody on file has it
    (the record is blocked with that reason instead of failing on the to-do's foreign key)."""
    staff_id = getattr(settings, setting)
    if staff(session, staff_id) is None:
        raise UnknownAssignee(unknown_assignee(setting, staff_id))
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


def send_mail(hub: Hub, kind: str, key: str, mail: OutgoingMail) -> dict:
    """Send `mail` once, as the effect (kind, key); its result {"message_id", "refused"?}.
    A copy recipient the mail server refused for good, or still defers after
    DEFERRED_COPY_ATTEMPTS attempts (`SentMail.refused`: the others got the mail), gets a
    to-do for sales-ops naming the address — from the call that sent the mail, not again
    from each later one finding the effect done."""
    if effect_attempts(hub.db_url, kind, key) >= DEFERRED_COPY_ATTEMPTS:
        mail = dataclasses.replace(mail, give_up_deferred_cc=True)
    sent: dict = {}

    def send() -> dict:
        sent.update(_sent(hub.mailer.send(mail)))
        return sent

    result = once(hub.db_url, kind, key, send)
    for address, reply in sent.get("refused", {}).items():
        _mailbox_refused(hub, address, reply,
                         f"邮件“{mail.subject}”已发给其他收件人，唯独未送达该地址")
    return result


def _sent(sent: str) -> dict:
    """The effect's result of a send: its Message-ID, and the addresses refused for good."""
    refused = sent.refused if isinstance(sent, SentMail) else {}
    return {"message_id": str(sent), **({"refused": refused} if refused else {})}


def mail_todo(hub: Hub, todo_id: int, news: str | None = None) -> None:
    """Tell the assignee (and cc) about a to-do by mail, once; `news` names a change of an
    open to-do worth its own mail (its own key: the first mail is already done). Never
    raises a mail server's failure (`_notice`)."""
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
        effect_key = _mail_key(todo.kind, key)
    _notice(hub, f"待办“{todo.title}”的邮件",
            lambda: send_mail(hub, "todo_mail", effect_key, mail))


def mail_todos(hub: Hub, todo_ids: Iterable[int], news: Mapping[int, str] | None = None) -> None:
    """Mail to-dos opened while a run gives up on records (blocked orders, signings), each
    once — again under `news[id]` for an open one whose text changed (see `mail_todo`).
    Whatever fails now is logged and does not undo the outcome already stored: the to-do
    stays open on the order page (and the inbox-sweeper mails it later)."""
    for todo_id in todo_ids:
        try:
            mail_todo(hub, todo_id, (news or {}).get(todo_id))
        except Exception:
            log.exception("could not mail to-do %s", todo_id)


def push(hub: Hub, *, key: str, title: str, text: str, staff_ids: Iterable[str],
         link: str | None = None) -> None:
    """A push to the people's group chat, @-mentioning them, once per key; never raises the
    robot's failure (`_notice`). A mobile on file that is no mobile number is left out of
    the mentions, and sales-ops is told to correct it."""
    ids = tuple(dict.fromkeys(i for i in staff_ids if i))
    with session_scope(hub.db_url) as s:
        people = [(p.id, p.name, p.mobile) for p in (staff(s, i) for i in ids) if p and p.mobile]
    mobiles = []
    for staff_id, name, typed in people:
        if (mobile := mobile_number(typed)) is not None:
            mobiles.append(mobile)
        else:
            report_misconfigured(
                hub, f"mobile:{staff_id}", f"手机号有误：{name}",
                f"员工 {name}（编号 {staff_id}）档案中的手机号“{typed}”不是有效的手机号码："
                f"推送“{title}”未能 @ 提醒该员工。\n请在员工档案中改正其手机号。")
    # the texts are plain (no caller writes markdown), but carry what people typed: a name
    # such as "[点此登录](evil.example)" must not become a link the robot renders
    plain = str.maketrans({"[": "［", "]": "］"})
    message = PushMessage(key=key, title=title.translate(plain), text=text.translate(plain),
                          recipients=ids, mention_mobiles=tuple(mobiles), link=link)
    _notice(hub, f"推送“{title}”",
            lambda: once(hub.db_url, "push", key,
                         lambda: {"reference": hub.notifier.push(message)}))


def notify_todo(hub: Hub, todo_id: int, *, link: str | None = None) -> None:
    """Mail and push a to-do to its assignee (cc in copy), each once; a failure of either is
    logged, never raised (the inbox-sweeper tells it later)."""
    mail_todo(hub, todo_id)
    push_todo(hub, todo_id, link=link)


def push_todo(hub: Hub, todo_id: int, *, link: str | None = None) -> None:
    """Push a to-do to its assignee (cc @-mentioned too), once."""
    with session_scope(hub.db_url) as s:
        todo = s.get(Todo, todo_id)
        people = [todo.assignee_id, *(todo.cc or "").split(",")]
        due = todo.due_at.astimezone(SHANGHAI)
        key, title, body = _push_key(todo.kind, todo.business_key), todo.title, todo.body
    push(hub, key=key, title=f"【待办】{title}", text=f"{body}\n\n截止：{due:%Y-%m-%d %H:%M}",
         staff_ids=people, link=link or todos_link(hub))


def _mail_key(kind, business_key):
    """The effect key of a to-do's mail (of strings, or of columns in a query)."""
    return kind + ":" + business_key


def _push_key(kind, business_key):
    """The effect key of a to-do's push (of strings, or of columns in a query)."""
    return "todo:" + kind + ":" + business_key


# --- a notice that failed ---------------------------------------------------------------

def _notice(hub: Hub, what: str, call: Callable[[], object]) -> None:
    """Make a notice's call. A connector's failure is logged, not raised: the step that
    opened the to-do has done its work, and the effect left not done is tried again by the
    inbox-sweeper. A failure retrying cannot fix also tells sales-ops what to fix."""
    try:
        call()
    except PermanentError as exc:
        log.error("%s not sent, and will not be unless fixed: %s", what, exc)
        _misconfigured(hub, what, exc)
    except ConnectorError as exc:
        log.warning("%s not sent now, the inbox-sweeper tries again: %s", what, exc)


def _misconfigured(hub: Hub, what: str, exc: PermanentError) -> None:
    """The to-do for sales-ops about a notice refused for good: the dead mailbox, the
    removed robot, the refused mail server account."""
    if isinstance(exc, RecipientsRefused):
        for address, reply in exc.refused.items():
            _mailbox_refused(hub, address, reply, f"{what}未能发出")
    elif exc.provider == "smtp":
        report_misconfigured(
            hub, f"smtp:{exc.code}", f"邮件服务器拒绝发送（{exc.code}）",
            f"{what}未能发出：邮件服务器拒绝发送（{exc}）。\n请检查邮件服务器配置"
            f"（SALESOPS_SMTP_HOST、SALESOPS_SMTP_USERNAME、SALESOPS_SMTP_PASSWORD 等）"
            f"或该邮件的收件人。待办邮件修复后自动补发。")
    else:
        robot = ROBOTS.get(exc.provider, exc.provider or "推送渠道")
        report_misconfigured(
            hub, f"push:{exc.provider}:{exc.code}", f"{robot}群机器人拒绝推送（错误码 {exc.code}）",
            f"{what}未能推送：{robot}群机器人拒绝（{exc}）。\n请检查群机器人是否仍在群内、"
            f"是否被停用，以及配置（SALESOPS_NOTIFY_BACKEND、SALESOPS_WECOM_ROBOT_KEY 或 "
            f"SALESOPS_DINGTALK_ACCESS_TOKEN）。待办推送修复后自动补发。")


def _mailbox_refused(hub: Hub, address: str, reply: str, what: str) -> None:
    with session_scope(hub.db_url) as s:
        owner = s.exec(select(Staff).where(
            sa.func.lower(Staff.email) == address.lower())).first()
        whose = f"（员工 {owner.name}，编号 {owner.id}）" if owner else ""
    report_misconfigured(
        hub, f"mailbox:{address.lower()}", f"邮箱拒收：{address}",
        f"邮件服务器拒收发往 {address}{whose} 的邮件（{reply}）：{what}。\n"
        f"请核实该邮箱：邮箱已满时请其清理；员工离职或邮箱停用时，请在员工档案中更换邮箱，"
        f"或将其待办改派他人。")


def report_misconfigured(hub: Hub, cause: str, title: str, body: str) -> None:
    """One open to-do for sales-ops (`ops_assignee`, else `fallback_person`) per `cause` (a
    mailbox, a robot's error code), mailed and pushed: while it is open a repeated failure
    adds nothing; once done, the next failure opens the next one. Never raises: it reports a
    notice's failure."""
    try:
        with session_scope(hub.db_url) as s:
            prefix = cause[:90] + "#"
            keys = s.exec(select(Todo.business_key, Todo.status).where(
                Todo.kind == MISCONFIGURED,
                Todo.business_key.startswith(prefix, autoescape=True))).all()
            if any(status == "open" for _, status in keys):
                return
            assignee_id, note = assignee_or_fallback(s, hub.settings, "ops_assignee")
            if assignee_id is None:
                log.error("nobody on file to tell about %s: %s", cause, note)
                return
            todo = open_todo(s, kind=MISCONFIGURED, key=f"{prefix}{len(keys) + 1}",
                             title=title, body=body + note, assignee_id=assignee_id,
                             due_hours=hub.settings.todo_due_hours, actor="flow:notices")
            s.flush()
            todo_id = todo.id
    except Exception:  # noqa: BLE001 - the failure it reports is logged already
        log.exception("could not open the to-do about %s", cause)
        return
    notify_todo(hub, todo_id)


def fallback_person(s: Session, settings: Settings) -> str | None:
    """Who gets a to-do that has nobody else to go to (an order without a rep, a setting
    naming nobody on file): `suspect_fallback_decider` when on file, else a sales-ops (then an
    admin) staff member; None when there is nobody."""
    return on_file_or_keeper(s, settings.suspect_fallback_decider)


def on_file_or_keeper(s: Session, staff_id: str | None) -> str | None:
    """`staff_id` when someone on file has it, else a sales-ops (then an admin) staff member;
    None when there is nobody."""
    if staff(s, staff_id) is not None:
        return staff_id
    return s.exec(select(Staff.id).where(Staff.role.in_(("sales_ops", "admin")))
                  .order_by(Staff.role.desc(), Staff.id)).first()  # sales_ops first


def assignee_or_fallback(s: Session, settings: Settings, setting: str) -> tuple[str | None, str]:
    """Who gets a to-do for `setting` (`ops_assignee`, `risk_assignee` …), and what his to-do
    adds to its text: the staff id it names; when nobody on file has it, `fallback_person`,
    told which setting to correct (None: nobody)."""
    staff_id = getattr(settings, setting)
    if staff(s, staff_id) is not None:
        return staff_id, ""
    who = fallback_person(s, settings)
    log.warning("SALESOPS_%s=%s names nobody on file: its to-do goes to %s", setting.upper(),
                staff_id, who or "nobody")
    return who, f"\n\n此待办转交给您，因为{unknown_assignee(setting, staff_id)}。"


# --- the sweeper tells what is left --------------------------------------------------------

def _untold(s: Session, *where, push_expected: bool) -> list[tuple]:
    """(to-do id, mail effect, push effect) of the open to-dos matching `where` whose mail is
    not done, or whose push is not done — tried and failed, or never tried when
    `push_expected` (for to-dos told by `notify_todo`); an effect is None when never tried.

    Not one join of every open to-do to its two effects (a heap read each, thousands a
    minute): the few effects not done (`ix_effect_not_done`), and which open to-dos have a
    mail (a push) at all, from the effects' unique index alone."""
    todos = [(todo_id, _mail_key(kind, key), _push_key(kind, key))
             for todo_id, kind, key in s.exec(select(Todo.id, Todo.kind, Todo.business_key)
                                               .where(Todo.status == "open", *where)
                                               .order_by(Todo.id))]
    if not todos:
        return []
    not_done = set(s.exec(select(Effect.kind, Effect.business_key).where(
        Effect.kind.in_(("todo_mail", "push")), sa.text(NOT_DONE))).all())
    mailed = _tried(s, "todo_mail", [mail for _, mail, _ in todos])
    pushed = _tried(s, "push", [push for _, _, push in todos]) if push_expected else set()
    untold = [(todo_id, mail, push) for todo_id, mail, push in todos
              if mail not in mailed or ("todo_mail", mail) in not_done
              or ("push", push) in not_done or (push_expected and push not in pushed)]
    if not untold:
        return []
    effects = {}
    for part in _parts(untold):
        effects.update(((e.kind, e.business_key), e) for e in s.exec(select(Effect).where(
            sa.or_(sa.and_(Effect.kind == "todo_mail",
                           Effect.business_key.in_([mail for _, mail, _ in part])),
                   sa.and_(Effect.kind == "push",
                           Effect.business_key.in_([push for _, _, push in part]))))))
    return [(todo_id, effects.get(("todo_mail", mail)), effects.get(("push", push)))
            for todo_id, mail, push in untold]


def _tried(s: Session, kind: str, keys: list[str]) -> set[str]:
    """Which of `keys` have an effect of `kind` (any status). PostgreSQL: the keys as one
    array (thousands of bound values, each cast, cost more than the index probes)."""
    if s.get_bind().dialect.name == "postgresql":
        return set(s.exec(select(Effect.business_key).where(
            Effect.kind == kind, Effect.business_key == sa.any_(
                sa.bindparam("keys", keys, type_=postgresql.ARRAY(sa.Text))))))
    return {key for part in _parts(keys) for key in s.exec(select(Effect.business_key).where(
        Effect.kind == kind, Effect.business_key.in_(part)))}


def _parts(items: list, size: int = 2000) -> list[list]:
    """`items` in parts of `size`: a statement's bound values stay well within what the
    databases take (SQLite 32,766, PostgreSQL 65,535)."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def _untold_news(s: Session, *where) -> list[tuple[int, str, Effect]]:
    """(to-do id, news, its mail effect) of the open to-dos matching `where` whose latest
    news (`mail_todo`'s: a change worth its own mail) was not mailed — tried while the mail
    server failed. Not the news a later mail carries: the to-do's first mail done after it
    (each mail says the to-do as it is then), or a later news.

    Read from the few effects not done (`ix_effect_not_done`), not by joining every open
    to-do to the effects on a key prefix: that read all mails ever sent, every minute."""
    failed = [e for e in s.exec(select(Effect).where(
        Effect.kind == "todo_mail", sa.text(NOT_DONE))) if "#" in e.business_key]
    if not failed:
        return []
    # a news mail's key is its to-do's mail key, "#", the news: which mail keys it may have
    prefixes = sorted({e.business_key[:i] for e in failed
                       for i, char in enumerate(e.business_key) if char == "#"})
    todos = {}
    for part in _parts(prefixes):
        todos.update((_mail_key(kind, key), todo_id) for todo_id, kind, key in s.exec(
            select(Todo.id, Todo.kind, Todo.business_key).where(
                Todo.status == "open", *where,
                _mail_key(Todo.kind, Todo.business_key).in_(part))))
    if not todos:
        return []
    first = {e.business_key: e for part in _parts(sorted(todos)) for e in s.exec(
        select(Effect).where(Effect.kind == "todo_mail", Effect.business_key.in_(part)))}
    latest = _latest_news(s, sorted(todos))
    by_id = {e.id: e for e in failed}
    rows = []
    for key, todo_id in todos.items():
        sent, news = first.get(key), by_id.get(latest.get(key))  # None: the latest is done
        if news is not None and sent is not None and sent.status == "done" \
                and sent.done_at is not None and sent.done_at < news.created_at:
            rows.append((todo_id, news.business_key[len(key) + 1:], news))
    return sorted(rows, key=lambda row: row[0])


def _latest_news(s: Session, mail_keys: list[str]) -> dict[str, int]:
    """The id of the latest news mail (keyed `<mail key>#…`) of each to-do mail key of
    `mail_keys` that has one, by the key's prefix: a range of keys byte by byte
    (`ix_effect_news_mail`: PostgreSQL's pattern operators, SQLite's binary order), each key
    checked again. One range per arm of a UNION ALL: SQLite plans an OR of ranges bound as
    parameters as a scan of every mail."""
    postgres = s.get_bind().dialect.name == "postgresql"

    def news_of(key: str):
        low, high = key + "#", key + "$"  # "$" follows "#"
        in_range = ((Effect.business_key.op("~>=~")(low), Effect.business_key.op("~<~")(high))
                    if postgres else (Effect.business_key >= low, Effect.business_key < high))
        return select(Effect.id, Effect.business_key).where(sa.text(NEWS_MAIL), *in_range)

    wanted, latest = set(mail_keys), {}
    for part in _parts(mail_keys, 200):  # SQLite: at most 500 arms
        for effect_id, news in s.exec(sa.union_all(*map(news_of, part))):
            for i, char in enumerate(news):  # the to-dos whose news it is
                if char == "#" and news[:i] in wanted:
                    latest[news[:i]] = max(latest.get(news[:i], effect_id), effect_id)
    return latest


def untold_todos(db_url: str, kind: str, opened_before: dt.datetime) -> list[int]:
    """Open to-dos of `kind` opened before `opened_before` whose mail or push (`notify_todo`)
    is not done: the mail server failed, or the process died, right after they were opened."""
    with session_scope(db_url) as s:
        one_snapshot(s)  # _untold's statements add up
        return [todo_id for todo_id, _, _ in _untold(
            s, Todo.kind == kind, Todo.created_at < opened_before, push_expected=True)]


def tell_untold(hub: Hub, now: dt.datetime | None = None) -> int:
    """The inbox-sweeper's part: every open to-do whose mail or push failed (or whose opener
    died before telling it) is told, each channel again only after a backoff from its first
    try (`_due`), so a dead mail server is not asked every minute: the mail of every to-do
    (each is mailed), the push of those whose push was tried, the mail of its news
    (`_untold_news`). One sweeper at a time. Returns how many mails and pushes were tried."""
    now = now or utcnow()
    with claimed(hub.db_url, "notices:tell-untold") as mine:
        if not mine:
            return 0
        with session_scope(hub.db_url) as s:
            one_snapshot(s)  # the statements of _untold and _untold_news add up
            rows = _untold(s, Todo.created_at < now - TELL_AFTER, push_expected=False)
            due = [(todo_id, _due(mail, now, missing=True), _due(pushed, now, missing=False))
                   for todo_id, mail, pushed in rows]
            news = [(todo_id, what) for todo_id, what, mail in _untold_news(
                s, Todo.created_at < now - TELL_AFTER) if _due(mail, now, missing=False)]
        tried = 0
        for todo_id, mail, pushed in due:
            if mail:
                mail_todo(hub, todo_id)
            if pushed:
                push_todo(hub, todo_id)
            tried += mail + pushed
        for todo_id, what in news:
            mail_todo(hub, todo_id, what)
    return tried + len(news)


def _due(effect: Effect | None, now: dt.datetime, *, missing: bool) -> bool:
    """Whether a to-do's mail or push is to be tried now: never tried (`missing`), or not
    done and its backoff since the first try is over (2 min, 4, 8 … at most an hour apart)."""
    if effect is None:
        return missing
    if effect.status == "done":
        return False
    wait = sum((min(RETRY_FIRST * 2 ** i, RETRY_MAX) for i in range(effect.attempts)),
               dt.timedelta())
    return now >= effect.created_at + wait


def todos_link(hub: Hub) -> str:
    """Where people do their to-dos (the phone page 我的待办)."""
    return f"{hub.settings.public_base_url.rstrip('/')}/todos"
