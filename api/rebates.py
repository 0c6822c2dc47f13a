"""Rebate doors: the preview at order entry, the policies, the board and its drill-down
(JSON for programs; the rep's phone pages of 返利看板), finance's confirmation of a
settlement."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import partial

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import select

from api.auth import current_staff
from api.board_pages import (
    BOARD, ORDERS_PER_PAGE, STATUSES, Figure, address, back_to_board, board_page, link,
    order_rebate_page, orders_page,
)
from api.errors import MAX_ID, ApiError
from api.orders import may_open
from api.schemas import OrderLineIn, whole_number
from api.pages import (
    card, cross_site, esc, refused_cross_site, staff_for_page, staff_page, wants_html,
)
from flows.errors import Refusal
from flows.hub import current_hub
from flows.policies import policy_version, publish_policy, version_summary
from flows.rebate_board import (
    Scope, board, board_scope, figure_orders, order_detail, region_sellers,
)
from flows.rebate_data import policy_book
from flows.rebate_preview import ItemIn, preview_items
from flows.settlement import (
    CUSTOMERS_PER_PAGE, MAX_CUSTOMERS_PER_PAGE, SETTLEMENT_VIEWERS, confirm_settlement,
    deliver_revision, revision_status, settlement_revision,
)
from models import Customer, RebatePolicyVersion, Staff, business_date
from models.db import session_scope
from models.money import yuan
from models.rebates.policy import FIRST_DATE, LAST_DATE, PolicyDocumentError

router = APIRouter(tags=["rebates"])


class PreviewLineIn(OrderLineIn):
    """An order line as the webhook takes it, with the price when it is not the list price.
    Strict where the webhook's line is not: a misspelt field (`price`) is refused, not
    previewed at list price."""

    model_config = ConfigDict(extra="forbid")

    unit_price: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)


MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"  # ASCII digits only


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # `date` for `order_date` is not "today"

    customer_id: int = Field(gt=0, le=MAX_ID)
    lines: list[PreviewLineIn] = Field(min_length=1, max_length=200)
    order_date: dt.date | None = Field(None, ge=FIRST_DATE, le=LAST_DATE)

    _whole_id = field_validator("customer_id", mode="before")(whole_number)  # true is not 1


def _preview(db_url: str, body: PreviewIn, person: Staff) -> dict:
    result = preview_items(db_url, body.customer_id,
                           [ItemIn(ln.sku, ln.quantity, ln.unit_price) for ln in body.lines],
                           order_date=body.order_date, asked_by=person)
    return result.detail()


@router.post("/rebates/preview", summary="意向单返利预估（录入即显示）")
async def preview_rebate(body: PreviewIn, request: Request,
                         person: Staff = Depends(current_staff)):
    """The rate and amount the order would earn, per rule with the policy version and clause
    that produced it and the inputs used; the rules that do not apply and why; and per
    product line the change against last month's rate. Only for a customer the caller may
    see (the board's rule; a rep also for customers he has taken orders from)."""
    return await run_in_threadpool(_preview, request.app.state.settings.db_url, body, person)


def _policies(db_url: str) -> list[dict]:
    with session_scope(db_url) as s:
        book = policy_book(s)
        rows = s.exec(select(RebatePolicyVersion).order_by(RebatePolicyVersion.code,
                                                           RebatePolicyVersion.version)).all()
    return [version_summary(r, book) for r in rows]


@router.get("/rebates/policies", summary="已发布的返利政策版本")
async def list_policies(request: Request, _: Staff = Depends(current_staff)):
    return await run_in_threadpool(_policies, request.app.state.settings.db_url)


MAX_DOCUMENT = 200_000  # characters of a policy document (a real one has a few thousand)


async def _document(request: Request) -> tuple[str, bytes]:
    """The request body as the document text, whatever the Content-Type says: a JSON policy
    sent as application/json is the same document as one sent as text/plain; and the body's
    bytes."""
    too_long = _body_error(f"政策文档过长（最多 {MAX_DOCUMENT} 个字符）", "string_too_long")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > 4 * MAX_DOCUMENT:  # more than any document of MAX_DOCUMENT characters
            raise too_long  # (what was read may end inside a character: not decoded)
    try:
        text = bytes(raw).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _body_error("政策文档须为 UTF-8 文本", "invalid") from None
    if not text.strip():
        raise _body_error("请求正文为空：请发送政策文档原文（YAML 或 JSON）", "missing")
    if len(text) > MAX_DOCUMENT:
        raise too_long
    return text, bytes(raw)


def _body_error(message: str, problem: str) -> ApiError:
    return ApiError(422, "invalid_request", message,
                    [{"field": "body", "problem": problem, "message": message}])


@router.post("/rebates/policies", summary="发布返利政策（YAML 或 JSON 文档）", status_code=201,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/plain": {"schema": {"type": "string", "maxLength": MAX_DOCUMENT}},
                 "application/json": {"schema": {"type": "object"}}}}})
async def publish(request: Request, person: Staff = Depends(current_staff)):
    """The body is the policy document as the clerk wrote it (YAML or JSON as text/plain, or
    JSON as application/json). Problems are listed per field; nothing is published unless
    the whole document is valid."""
    document, source = await _document(request)
    try:
        done = await run_in_threadpool(publish_policy, request.app.state.settings.db_url,
                                       document, person, source)
    except PolicyDocumentError as exc:
        raise ApiError(422, "invalid_policy", "返利政策文档有误，未发布",
                       [{"field": p.field, "problem": "invalid", "message": p.message}
                        for p in exc.problems]) from exc
    return done.as_dict()


@router.get("/rebates/policies/{code}", summary="返利政策的最新版本（原文与条款）")
async def show_policy(code: str, request: Request, _: Staff = Depends(current_staff)):
    return await run_in_threadpool(policy_version, request.app.state.settings.db_url, code)


@router.get("/rebates/policies/{code}/{version}", summary="返利政策的某一版本（原文与条款）")
async def show_policy_version(code: str, version: int = Path(ge=1, le=MAX_ID), *,
                              request: Request, _: Staff = Depends(current_staff)):
    return await run_in_threadpool(policy_version, request.app.state.settings.db_url, code,
                                   version)


def _scope(request: Request, person: Staff, rep: str | None, region: str | None):
    return board_scope(request.app.state.settings.db_url, person, rep, region)


@router.get("/rebates/board/data", summary="返利看板数据")
async def board_data(request: Request, rep: str | None = None, region: str | None = None,
                     person: Staff = Depends(current_staff)):
    scope = await run_in_threadpool(_scope, request, person, rep, region)
    return await run_in_threadpool(board, request.app.state.settings.db_url, scope)


@router.get("/rebates/board/orders", summary="看板数字对应的订单")
async def board_orders(request: Request,
                       status: str = Query(pattern="^(confirmed|pending|expected)$"),
                       month: str | None = Query(None, pattern=MONTH_PATTERN),
                       offset: int = Query(0, ge=0, le=MAX_ID),
                       limit: int = Query(200, ge=1, le=1000),
                       rep: str | None = None, region: str | None = None,
                       person: Staff = Depends(current_staff)):
    """The figure's order count and total, and its orders newest first from `offset`."""
    if status == "expected" and month:
        raise ApiError(422, "invalid_request", "“本月预计”不按月份查询，请去掉 month 参数",
                       [{"field": "month", "problem": "not_applicable",
                         "message": "预计数字只有本月（月初几天含上月）一组，不能指定月份"}])
    scope = await run_in_threadpool(_scope, request, person, rep, region)
    return await run_in_threadpool(partial(figure_orders, offset=offset, limit=limit),
                                   request.app.state.settings.db_url, scope, status, None, month)


@router.get("/rebates/orders/{order_id}", summary="订单返利明细、客户与政策原文",
            responses={200: {"content": {"text/html": {}}}})
async def rebate_order(order_id: str, request: Request, response: Response,
                       rep: str | None = None, region: str | None = None) -> Response:
    """JSON; a browser (Accept: text/html) gets the order's page of the rebate board."""
    response.headers["Vary"] = "Accept"  # one address, two representations
    if wants_html(request):
        return await order_page_response(request, order_id, rep, region)
    person = await current_staff(request)
    scope = await run_in_threadpool(_scope, request, person, rep, region)
    detail = await run_in_threadpool(order_detail, request.app.state.settings.db_url, scope,
                                     order_id)
    if detail is None:
        raise ApiError(404, "unknown_order", f"意向单不存在：{order_id}")
    return detail


@router.post("/rebates/settlements/{month}/{revision}/confirm", summary="财务确认结算版本")
async def confirm(month: str, request: Request, background: BackgroundTasks,
                  revision: int = Path(ge=1, le=MAX_ID)) -> Response:
    """The revision becomes final at once (200: it is confirmed); its vouchers (when an earlier
    run did not get them to finance) and its statements and workbook, as confirmed, go out
    after the answer (a month's PDFs take a minute or two): `status_url` (also `Location`)
    says how that went (凭证已发送 / 发送失败：… / 发送中). From finance's status page in a
    browser (its 确认 form, the box 已核对 ticked): taken back to that page."""
    db_url = request.app.state.settings.db_url
    if wants_html(request):
        return await _confirm_from_page(request, background, month, revision)
    person = await current_staff(request)
    run = await run_in_threadpool(confirm_settlement, db_url, month, revision, person)
    background.add_task(run_in_threadpool, deliver_revision, current_hub(), run.id)
    body = await run_in_threadpool(revision_status, db_url, run)
    return JSONResponse(body, headers={"Location": body["status_url"]})


async def _confirm_from_page(request: Request, background: BackgroundTasks, month: str,
                             revision: int) -> Response:
    person = await staff_for_page(request, from_link=False)
    if not isinstance(person, Staff):
        return person
    if cross_site(request):
        return refused_cross_site()
    db_url = request.app.state.settings.db_url
    board_query = _scope_query(request.query_params.get("rep"),
                               request.query_params.get("region"))
    back = address(request.url.path.removesuffix("/confirm"), **board_query)
    if (await request.form()).get("checked") != "yes":
        return staff_page(400, "未确认", card("未确认", "请先勾选“已核对”，再确认本版结算。")
                          + f'<p><a id="back" href="{esc(back)}">‹ 返回本版结算</a></p>')
    try:
        run = await run_in_threadpool(confirm_settlement, db_url, month, revision, person)
    except Refusal as exc:
        if exc.code != "already_confirmed":  # a double tap: the page shows it confirmed
            return staff_page(exc.status, "无法确认", card("无法确认", exc.message)
                              + f'<p><a id="back" href="{esc(back)}">‹ 返回本版结算</a></p>')
    else:
        background.add_task(run_in_threadpool, deliver_revision, current_hub(), run.id)
    # post/redirect/get: reloading the page does not post again
    return RedirectResponse(back, status_code=303)


@router.get("/rebates/settlements/{month}/{revision}", summary="结算版本的凭证与对账单发送情况")
async def settlement_status(
        month: str, request: Request, revision: int = Path(ge=1, le=MAX_ID),
        q: str = Query("", max_length=100,
                       description="客户名称、简称或曾用名（部分）、客户编码，或对账单号、凭证号（完整）"),
        limit: int = Query(CUSTOMERS_PER_PAGE, ge=1, le=MAX_CUSTOMERS_PER_PAGE),
        offset: int = Query(0, ge=0, le=MAX_ID)) -> Response:
    """JSON for programs; finance's page in a browser, with 重新发送 after a failure. Its
    customers `q` finds, `limit` of them from `offset` (`customers_total`: how many in all)."""
    db_url = request.app.state.settings.db_url
    status = partial(revision_status, q=q, offset=offset, limit=limit)
    if not wants_html(request):
        person = await current_staff(request)
        run = await run_in_threadpool(settlement_revision, db_url, month, revision, person)
        return JSONResponse(await run_in_threadpool(status, db_url, run))
    person = await staff_for_page(request)
    if not isinstance(person, Staff):
        return person
    try:
        run = await run_in_threadpool(settlement_revision, db_url, month, revision, person)
    except Refusal as exc:
        return staff_page(exc.status, "无法查看", card("无法查看", exc.message))
    body = await run_in_threadpool(status, db_url, run)
    # reached from the board's month row: the way back keeps the board's narrowing
    board_query = _scope_query(request.query_params.get("rep"),
                               request.query_params.get("region"))
    return staff_page(200, f"{run.month} 第 {run.revision} 版结算",
                      settlement_card(body, q, board_query))


def settlement_card(body: dict, q: str = "",
                    board_query: dict[str, str | None] | None = None) -> str:
    """The revision's state and how its vouchers went, with 重新发送 when they are not out;
    then the page of its customers `q` found, with the search box and the pages' links; and
    the way back to the board (narrowed as `board_query`, kept across the search and pages)."""
    board_query = board_query or {}
    delivery = body["delivery"]
    state = "已确认" if body["status"] == "confirmed" else "草稿（待财务确认）"
    title = f"{body['month']} 返利结算第 {body['revision']} 版"
    html = card(title, f"状态：{state}；{body['lines']} 行，合计 {yuan(body['total'])}")
    html += (f'<p id="delivery" class="delivery-{esc(delivery["state"])}">'
             f'凭证与对账单：{esc(delivery["label"])}</p>')
    if delivery["voucher_ref"]:
        html += (f'<p id="voucher">凭证批次 {esc(delivery["voucher_batch_id"])}，'
                 f'财务系统编号 {esc(delivery["voucher_ref"])}</p>')
    if delivery["state"] in ("failed", "sending"):
        html += (f'<form id="send-form" method="post" '
                 f'action="{link(body["status_url"] + "/send", **board_query)}">'
                 '<button type="submit">重新发送</button></form>'
                 '<p class="hint">重新发送按原批次号提交，财务系统不会重复入账。</p>')
    if body["status"] != "confirmed":
        html += (f'<form id="confirm-form" method="post" '
                 f'action="{link(body["status_url"] + "/confirm", **board_query)}">'
                 '<label class="consent"><input type="checkbox" id="checked" name="checked" '
                 'value="yes" required>已核对本版各客户金额、凭证草稿与对账单</label>'
                 f'<button type="submit">确认第 {body["revision"]} 版</button></form>'
                 '<p class="hint">确认后本版不再更改（此后的变动记入新版本），并重新出具“已确认”'
                 '对账单与明细表；各版按顺序确认。</p>')
    return html + _customers_table(body, q, board_query) + back_to_board(board_query)


def _customers_table(body: dict, q: str, board_query: dict[str, str | None]) -> str:
    """Per customer: the amount of the revision, its statement's 对账单号 and its voucher's
    凭证号 (记-3), what finance and the customer refer to; a search box over them and links
    to the pages before and after (the same parameters as the JSON)."""
    customers, total, offset = body["customers"], body["customers_total"], body["offset"]
    if not total and not q:
        return ""

    def voucher(c: dict) -> str:
        return f"{c['voucher_word']}-{c['voucher_no']}" if c["voucher_no"] else "—"
    rows = "".join(
        f'<tr id="customer-{c["customer_id"]}"><td>{esc(c["customer"])}'
        f'<div class="muted">{esc(c["customer_code"])}</div></td>'
        f'<td class="num">{yuan(c["amount"])}</td><td>{esc(c["statement_no"])}</td>'
        f'<td>{esc(voucher(c))}</td></tr>' for c in customers)
    per_page = body["limit"] or len(customers)
    kept = "" if per_page == CUSTOMERS_PER_PAGE else str(per_page)  # a page size asked for
    search = (f'<form id="customer-search" method="get" action="{esc(body["status_url"])}">'
              + (f'<input type="hidden" name="limit" value="{esc(kept)}">' if kept else '')
              + "".join(f'<input type="hidden" name="{name}" value="{esc(value)}">'
                        for name, value in board_query.items() if value)
              + '<label class="field" for="q">搜索客户名称/编码/对账单号/凭证号</label>'
              f'<div class="search"><input type="search" id="q" name="q" maxlength="100" '
              f'value="{esc(q)}" placeholder="如 康达、C000123、RS-…、记-3">'
              '<button type="submit" class="secondary">搜索</button></div></form>')
    found = (f"搜索“{q}”：" if q else "") + f"共 {total:,} 家客户"
    shown = f"，第 {offset + 1:,}–{offset + len(customers):,} 家" if customers else ""
    count = f'<p class="muted" id="customers-count">{esc(found + shown)}</p>'
    table = ('<table id="customers"><thead><tr><th>客户</th><th class="num">本版金额</th>'
             f'<th>对账单号</th><th>凭证号</th></tr></thead><tbody>{rows}</tbody></table>'
             if customers else '<p class="muted" id="no-customers">'
             f'{"本页没有客户，请返回上一页。" if total else "没有符合条件的客户。"}</p>')

    def at(start: int) -> str:
        return link(body["status_url"], q=q or None, offset=str(start) if start else None,
                    limit=kept or None, **board_query)
    # from past the end (a hand-made address) back to the last page
    before = (f'<a id="previous" href="{at(max(min(offset, total) - per_page, 0))}">‹ 上一页</a>'
              if offset else "")
    after = (f'<a id="next" href="{at(offset + len(customers))}">下一页 ›</a>'
             if offset + len(customers) < total else "")
    pages = f'<div class="row-head" id="pages">{before}{after}</div>' if before or after else ""
    return (f'<div class="card"><h2>客户对账单与凭证</h2>{search}{count}{table}{pages}</div>')


@router.post("/rebates/settlements/{month}/{revision}/send",
             summary="重新发送结算版本的凭证与对账单")
async def send_again(month: str, request: Request, background: BackgroundTasks,
                     revision: int = Path(ge=1, le=MAX_ID)) -> Response:
    """Send what is not out yet (after finance refused the batch or could not be reached):
    202 and the status address; 200 when everything is out already (nothing is sent again:
    the batch goes once under its batch id). From finance's status page in a browser (its
    重新发送 form): taken back to that page."""
    if wants_html(request):
        return await _send_from_page(request, background, month, revision)
    person = await current_staff(request)
    body, pending = await _send_pending(request, background, month, revision, person)
    return JSONResponse(body, status_code=202 if pending else 200,
                        headers={"Location": body["status_url"]})


async def _send_pending(request: Request, background: BackgroundTasks, month: str,
                        revision: int, person: Staff) -> tuple[dict, bool]:
    """The revision's status as it is once what is not out has been handed to the background
    (and whether there was anything to send)."""
    db_url = request.app.state.settings.db_url
    run = await run_in_threadpool(settlement_revision, db_url, month, revision, person)
    body = await run_in_threadpool(revision_status, db_url, run)
    pending = body["delivery"]["state"] in ("failed", "sending")
    if pending:
        background.add_task(run_in_threadpool, deliver_revision, current_hub(), run.id)
        body["delivery"] = {**body["delivery"], "state": "sending", "label": "发送中",
                            "error": None}
    return body, pending


async def _send_from_page(request: Request, background: BackgroundTasks, month: str,
                          revision: int) -> Response:
    """重新发送 as a form: a login run out, a refusal or a post from another site is a page
    (as for 确认), never the API's JSON error."""
    person = await staff_for_page(request, from_link=False)
    if not isinstance(person, Staff):
        return person
    if cross_site(request):
        return refused_cross_site()
    board_query = _scope_query(request.query_params.get("rep"),
                               request.query_params.get("region"))
    try:
        body, _ = await _send_pending(request, background, month, revision, person)
    except Refusal as exc:
        back = address(request.url.path.removesuffix("/send"), **board_query)
        return staff_page(exc.status, "无法发送", card("无法发送", exc.message)
                          + f'<p><a id="back" href="{esc(back)}">‹ 返回本版结算</a></p>')
    # back to the status page, its way to the board as it was (reloading does not post again)
    return RedirectResponse(address(body["status_url"], **board_query), status_code=303)


# --- the board on the phone (返利看板) ---------------------------------------------------------
# The same data functions and the same access rules (board_scope, order_detail) as the JSON;
# a refusal is a Chinese 403 page, no login the shell's 401 page.

def _scope_query(rep: str | None, region: str | None) -> dict[str, str | None]:
    """The narrowing a page was opened with, carried on to the pages it links to."""
    return {"rep": rep or None, "region": region or None}


def refused_page(request: Request, person: Staff, exc: Refusal) -> HTMLResponse:
    """The Chinese 403 page (404: what was asked for does not exist, e.g. a mistyped rep id),
    with the way back to the person's own board when he has one, else to his to-dos."""
    message = exc.message.rstrip("。") + "。"
    title = "未找到" if exc.status == 404 else "无权查看"
    if exc.status == 404:
        message += "请检查链接或编号是否有误。"
    elif "管理员" not in message:  # unless the refusal says whom to ask itself
        message += "如需调整查看权限，请联系系统管理员。"
    try:
        _scope(request, person, None, None)
        back = f'<p><a id="back" href="{BOARD}">‹ 返回我的返利看板</a></p>'
    except Refusal:  # no board of one's own (legal, purchasing): one's to-dos are a way on
        back = '<p><a id="back" href="/todos">‹ 前往我的待办</a></p>'
    return staff_page(exc.status, title, card(title, message) + back)


async def _page_scope(request: Request, person: Staff, query: dict
                      ) -> Scope | HTMLResponse:
    try:
        return await run_in_threadpool(_scope, request, person, query["rep"], query["region"])
    except Refusal as exc:
        return await run_in_threadpool(refused_page, request, person, exc)


def board_choices(db_url: str, person: Staff) -> dict:
    """The regions and reps offered to narrow the board: everyone's for finance and admins,
    the reps of his region for a manager (and those of another region now whose rebates are
    booked to his), nothing for anyone else. Only a menu:
    whatever is asked for is checked by board_scope."""
    if person.role not in ("finance", "admin", "sales_manager"):
        return {}
    with session_scope(db_url) as s:
        query = select(Staff).where(Staff.role == "rep").order_by(Staff.region, Staff.id)
        if person.role == "sales_manager":
            if not person.region:
                return {"reps": [], "own_region": None}
            reps = s.exec(query.where(Staff.region == person.region)).all()
            # and those whose rebates are (or may yet be) booked here from another region now
            # (or another role: a manager who took an order): the region's figures hold their
            # part, which board_scope lets him see
            others = region_sellers(s, person.region, business_date()) - {r.id for r in reps}
            elsewhere = s.exec(select(Staff).where(Staff.id.in_(others)).order_by(
                Staff.region, Staff.id)).all() if others else []
            return {"reps": [{"id": r.id, "name": r.name, "region": None} for r in reps]
                    + [{"id": r.id, "name": r.name, "region": None} if r.region == person.region
                       else {"id": r.id, "name": r.name, "region": r.region, "elsewhere": True}
                       for r in elsewhere],
                    "own_region": person.region}
        reps = s.exec(query).all()
        # with the regions only rebates are booked to now (all their customers moved away)
        regions = {r for r in s.exec(select(Customer.region).distinct()) if r}
        regions |= _booked_regions(s)
    regions |= {r.region for r in reps if r.region}
    return {"regions": sorted(regions),
            "reps": [{"id": r.id, "name": r.name, "region": r.region} for r in reps]}


# the distinct regions of the rebate lines, one index probe per region (region, month is
# indexed): a plain DISTINCT reads every line's index entry, hundreds of thousands a year
_BOOKED_REGIONS = sa.text("""
WITH RECURSIVE r(region) AS (
  SELECT MIN(region) FROM rebate_line
  UNION ALL
  SELECT (SELECT MIN(l.region) FROM rebate_line l WHERE l.region > r.region)
  FROM r WHERE r.region IS NOT NULL)
SELECT region FROM r WHERE region IS NOT NULL""")


def _booked_regions(s) -> set[str]:
    return {r for r, in s.connection().execute(_BOOKED_REGIONS) if r}


async def _page_context(request: Request, rep: str | None, region: str | None):
    """(person, scope, query) of a board page, or the login or refusal page to answer."""
    person = await staff_for_page(request)
    if not isinstance(person, Staff):
        return person
    query = _scope_query(rep, region)
    scope = await _page_scope(request, person, query)
    if not isinstance(scope, Scope):
        return scope
    return person, scope, query


@router.get("/rebates/board", response_class=HTMLResponse, summary="返利看板（手机页面）")
async def board_page_route(request: Request, rep: str | None = None,
                           region: str | None = None) -> Response:
    """The rep's board: whose rebates, the three figures (已确认 / 待复核 / 本月预计) as cards
    that open their orders, and each settled month. Finance and managers narrow it with
    `rep=` / `region=`. Always a page; the data is at /rebates/board/data."""
    context = await _page_context(request, rep, region)
    if isinstance(context, Response):
        return context
    person, scope, query = context
    db_url = request.app.state.settings.db_url
    data = await run_in_threadpool(board, db_url, scope)
    choices = await run_in_threadpool(board_choices, db_url, person)
    title, content = board_page(data, choices, query,
                                status_links=person.role in SETTLEMENT_VIEWERS)
    return staff_page(200, title, content)


def _figure_asked(status: str, month: str | None, year: str | None,
                  today: dt.date) -> Figure | None:
    """The figure a page's address names (`status`, `month`; `year` of the confirmed card),
    or None when it is not one a board link makes (a hand-made or cut-off address). A month
    goes with confirmed or pending only (expected is this month's), a year with confirmed
    alone; none: this year."""
    if ((status and status not in STATUSES) or (month and not re.fullmatch(MONTH_PATTERN, month))
            or (year and not re.fullmatch(r"[0-9]{4}", year))):
        return None
    month = month if month and status in ("confirmed", "pending") else None
    year = year if year and status == "confirmed" and not month else None
    return Figure(status or None, month, int(year) if year else today.year)


def _wrong_link(query: dict) -> HTMLResponse:
    return staff_page(400, "链接有误", card("链接有误", "页面地址不正确，请从返利看板重新进入。")
                      + back_to_board(query))


@router.get("/rebates/board/orders/page", response_class=HTMLResponse,
            summary="返利看板：数字对应的订单（手机页面）")
async def board_orders_page(request: Request, status: str = "", month: str | None = None,
                            offset: str = "", rep: str | None = None,
                            region: str | None = None) -> Response:
    context = await _page_context(request, rep, region)
    if isinstance(context, Response):
        return context
    _, scope, query = context
    today = business_date()
    figure = _figure_asked(status, month, None, today)
    if figure is None or figure.status is None or not re.fullmatch(r"[0-9]{0,7}", offset):
        return _wrong_link(query)
    month = figure.month  # expected: this month only
    figure = await run_in_threadpool(partial(figure_orders, offset=int(offset or 0),
                                             limit=ORDERS_PER_PAGE),
                                     request.app.state.settings.db_url, scope, status, today,
                                     month)
    title, content = orders_page(status, month, figure, scope.label, today.year, query)
    return staff_page(200, title, content)


def _rep_name(db_url: str, rep_id: str | None) -> str | None:
    if not rep_id:
        return None
    with session_scope(db_url) as s:
        rep = s.get(Staff, rep_id)
        return rep.name if rep else None


async def order_page_response(request: Request, order_id: str, rep: str | None,
                              region: str | None) -> Response:
    context = await _page_context(request, rep, region)
    if isinstance(context, Response):
        return context
    person, scope, query = context
    # the figure whose row opened the page (?status=…&month=… or &year=…): its subtotal
    asked = request.query_params
    figure = _figure_asked(asked.get("status", ""), asked.get("month"), asked.get("year"),
                           business_date())
    if figure is None:
        return _wrong_link(query)
    db_url = request.app.state.settings.db_url
    try:
        detail = await run_in_threadpool(order_detail, db_url, scope, order_id)
    except Refusal as exc:
        return await run_in_threadpool(refused_page, request, person, exc)
    if detail is None:
        return staff_page(404, "意向单不存在",
                          card("意向单不存在", f"意向单不存在：{order_id}，可能链接有误。")
                          + back_to_board(query))
    rep_name = await run_in_threadpool(_rep_name, db_url, detail["rep_id"])
    # the order's page is the order's people's (a rep's rebate stays his when the order is
    # handed over, its page goes with it): offered only to those it opens for
    progress = await run_in_threadpool(may_open, db_url, person, detail["order_id"])
    title, content = order_rebate_page(detail, rep_name, query, figure, progress=progress)
    return staff_page(200, title, content)
