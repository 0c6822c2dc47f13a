"""To-dos (待办): `GET /todos` (JSON; a browser gets the phone page 我的待办), doing one
(`POST /todos/{id}/complete`, and the page's form), and legal's review of a customer's
qualification (`POST /customers/{id}/qualification`). The rules are `flows/todos.py`."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import current_staff
from api.customers import form_id
from api.errors import MAX_ID
from api.pages import (
    STAFF_HEADERS, cross_site, esc, refused_cross_site, staff_for_page, staff_page, wants_html,
)
from api.staff_pages import NONE_ITEM, error_card, local_time
from flows.errors import Refusal
from flows.hub import current_hub
from flows.todos import MAX_NOTE, OUTCOMES, complete_todo, my_todos, review_qualification
from models import Staff, Todo
from models.db import session_scope

router = APIRouter(tags=["todos"])


class TodoDone(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    outcome: str | None = Field(default=None, max_length=20,
                                description="approved / rejected（资质初审）；其他待办为 done")
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class QualificationReview(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    outcome: str = Field(max_length=20, description="approved（通过）或 rejected（不通过）")
    note: str | None = Field(default=None, max_length=MAX_NOTE)


@router.get("/todos", summary="我的待办（浏览器打开为手机页面）",
            responses={200: {"content": {"text/html": {}}}})
async def todos(request: Request, response: Response) -> Response:
    response.headers["Vary"] = "Accept"
    db_url = request.app.state.settings.db_url
    if wants_html(request):
        person = await staff_for_page(request)
        if not isinstance(person, Staff):
            return person
        notice = await run_in_threadpool(_done_notice, db_url, request.query_params.get("done"),
                                         person)
        return await _page(request, person, notice=notice)
    person = await current_staff(request)
    return await run_in_threadpool(my_todos, db_url, person)


@router.post("/todos/{todo_id}/complete", summary="办结待办（资质初审须选择通过或不通过）")
async def complete(body: TodoDone, todo_id: int = Path(ge=1, le=MAX_ID),
                   person: Staff = Depends(current_staff)):
    return await run_in_threadpool(complete_todo, current_hub(), todo_id, person, body.outcome,
                                   body.note)


@router.post("/customers/{customer_id}/qualification", tags=["customers"],
             summary="法务审核客户资质（通过或不通过）")
async def qualify(body: QualificationReview, customer_id: int = Path(ge=1, le=MAX_ID),
                  person: Staff = Depends(current_staff)):
    return await run_in_threadpool(review_qualification, current_hub(), customer_id, person,
                                   body.outcome, body.note)


@router.post("/todos/{todo_id}/done", response_class=HTMLResponse,
             summary="我的待办：页面表单提交")
async def complete_form(request: Request, todo_id: int = Path(ge=1, le=MAX_ID),
                        outcome: str = Form(""), note: str = Form("")) -> Response:
    # a login run out while the note was typed: the 401 page shows the note to copy
    person = await staff_for_page(request, from_link=False, typed=note)
    if not isinstance(person, Staff):
        return person
    if cross_site(request):
        return refused_cross_site()
    # a browser sends a textarea's line breaks as CRLF; its maxlength counted each as one
    note = note.replace("\r\n", "\n")
    try:
        await run_in_threadpool(complete_todo, current_hub(), todo_id, person,
                                outcome or None, note)
    except Refusal as exc:
        repeated = exc.code == "already_done" and await run_in_threadpool(
            _done_as_posted, request.app.state.settings.db_url, todo_id, person, outcome)
        if not repeated:
            return await _page(request, person, error=exc.message, status=exc.status,
                               failed={"id": todo_id, "outcome": outcome, "note": note})
    # post/redirect/get: reloading the page (or going back to it) does not post again
    return RedirectResponse(f"/todos?done={todo_id}#notice", status_code=303,
                            headers=STAFF_HEADERS)


def _done_as_posted(db_url: str, todo_id: int, person: Staff, outcome: str) -> bool:
    """Whether the to-do is done by this person as the form says: its second post (a double
    tap, a retry) leads to the same page as the first, not to 「已办结」 as an error."""
    with session_scope(db_url) as s:
        todo = s.get(Todo, todo_id)
        return (todo is not None and todo.status == "done" and todo.done_by == person.id
                and todo.outcome == (outcome or "done"))


@router.get("/todos/{todo_id}/done", include_in_schema=False)
async def form_address(todo_id: str) -> Response:
    """The address a sent-back form's page stands at, opened again without its post (a phone
    restoring the tab, a copied address): the to-do on 我的待办, not a bare 405."""
    number = form_id(todo_id)
    return RedirectResponse("/todos" + (f"#todo-{number}" if number else ""), status_code=303,
                            headers=STAFF_HEADERS)


def _done_notice(db_url: str, todo_id: str | None, person: Staff) -> str:
    """'已办结：…（通过）' on the page a done to-do's form leads to (`?done=<id>`), when that
    person did it; nothing for an address that names another's or no to-do."""
    number = form_id(todo_id or "")
    if number is None:
        return ""
    with session_scope(db_url) as s:
        todo = s.get(Todo, number)
        if todo is None or todo.status != "done" or todo.done_by != person.id:
            return ""
        outcome = f"（{OUTCOMES[todo.outcome]}）" if todo.outcome in ("approved", "rejected") \
            else ""
        return f"已办结：{todo.title}{outcome}"


async def _page(request: Request, person: Staff, *, error: str = "", notice: str = "",
                status: int = 200, failed: Mapping | None = None) -> HTMLResponse:
    data = await run_in_threadpool(my_todos, request.app.state.settings.db_url, person)
    return staff_page(status, "我的待办", todos_page(person, data, error, notice, failed))


# --- rendering ---------------------------------------------------------------------------------

def _item(t: Mapping, form: bool, failed: Mapping | None) -> str:
    due = local_time_text(t["due_at"])
    head = (f'<div class="row-head"><b>{esc(t["title"])}</b>'
            f'<span class="badge{" bad" if t["overdue"] else ""}">{esc(t["kind_label"])}</span>'
            f'</div>')
    meta = f'截止 {esc(due)}' + ('<span class="overdue">（已逾期）</span>' if t["overdue"] else "")
    if t["status"] == "done":
        by = t["done_by_name"] or t["done_by"] or "系统"
        meta = (f'{esc(t["outcome_label"] or "已办结")} · {esc(by)} · '
                f'{esc(local_time_text(t["done_at"]))}')
    links = ""
    if t["order_id"]:
        links += f'<a class="todo-link" href="/orders/{esc(t["order_id"])}">查看意向单</a>'
    body = f'<p class="explain todo-body">{esc(t["body"])}</p>' if t["body"] else ""
    note = f'<p class="muted">备注：{esc(t["note"])}</p>' if t["note"] else ""
    again = failed if failed and failed.get("id") == t["id"] else {}
    action = ""
    if form and t["may_do"]:
        typed = esc(again.get("note", ""))
        if t["kind"] == "legal_review":
            choices = "".join(
                f'<label class="choice"><input type="radio" name="outcome" value="{o}"'
                f'{" checked" if again.get("outcome") == o else ""}><span>{OUTCOMES[o]}</span>'
                f'</label>' for o in ("approved", "rejected"))
            # a named group: a screen reader says what the two choices are about
            action = (f'<fieldset class="choices"><legend class="muted">初审结果</legend>'
                      f'{choices}</fieldset>'
                      f'<label class="field" for="note-{t["id"]}">备注（不通过时必填，将告知销售代表）'
                      f'</label>')
            button = "提交初审结果"
        else:
            action = f'<label class="field" for="note-{t["id"]}">备注（选填）</label>'
            button = "标记为已办结"
        # a refused form's reason stands by its fields, and the page the form leads to opens
        # at this to-do (#todo-<id>), not at the top, a few screens above it
        said = (f'<p class="error" id="err" role="alert">{esc(again["error"])}</p>'
                if again.get("error") else "")
        action = (f'<form method="post" action="/todos/{t["id"]}/done#todo-{t["id"]}" '
                  f'id="form-{t["id"]}">{action}<textarea id="note-{t["id"]}" name="note" '
                  f'maxlength="{MAX_NOTE}" rows="3">{typed}</textarea>{said}'
                  f'<button type="submit" class="gap">{button}</button></form>')
    elif t["status"] == "open":  # one's own not to do, or one in copy: who does it
        action = f'<p class="muted">由 {esc(t["assignee_name"] or t["assignee"])} 处理</p>'
    return (f'<li id="todo-{t["id"]}">{head}<div class="muted">{meta}</div>{body}{note}'
            f'{links}{action}</li>')


def local_time_text(iso: str | None) -> str:
    return local_time(dt.datetime.fromisoformat(iso)) if iso else "—"


def todos_page(person: Staff, data: Mapping, error: str = "", notice: str = "",
               failed: Mapping | None = None) -> str:
    if error and failed and any(t["id"] == failed.get("id") and t["may_do"]
                                for t in data["open"]):
        failed, error = {**failed, "error": error}, ""  # said in its form, not at the top

    def items(rows, form: bool, ident: str) -> str:
        inner = "".join(_item(t, form, failed) for t in rows) or NONE_ITEM
        return f'<ul class="items" id="{ident}">{inner}</ul>'

    done_note = (f'<div class="card done"><p id="notice">{esc(notice)}</p></div>'
                 if notice else "")
    parts = [f'<div class="card"><h1>我的待办</h1><p class="muted">{esc(person.name)} · '
             f'待处理 {len(data["open"])} 项</p></div>', done_note, error_card(error),
             f'<div class="card"><h2>待处理</h2>{items(data["open"], True, "open")}</div>']
    if data["copied"]:
        parts.append(f'<div class="card"><h2>抄送我的</h2>'
                     f'{items(data["copied"], False, "copied")}</div>')
    parts.append(f'<div class="card"><h2>最近已办结</h2>{items(data["done"], False, "done")}'
                 f'</div>')
    return "".join(parts)
