"""Read side of intent orders: what happened to an order, for the sender and for ops (JSON),
and for the rep on his phone (the order page, where he also picks the customer of an order
that waits on an unrecognised name)."""
from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlmodel import select

from api.auth import optional_staff
from api.customers import form_id, page_candidates, run_decision
from api.errors import ApiError
from api.pages import (
    cross_site,
    refused_cross_site,
    staff_for_page,
    staff_message,
    staff_page,
    wants_html,
)
from api.staff_pages import ORDER_WITHHELD, QUOTE_WITHHELD, order_page
from api.webhooks import request_line, sends_signature, verify_signature
from flows.rebate_board import sees_rebates_of
from flows.suspects import choose_customer_for_order, may_choose_for_order, waiting_for_customer
from models import (
    STAGE_LABELS,
    Customer,
    IntentOrder,
    Opportunity,
    OrderRebate,
    Quote,
    Staff,
    Stage,
    SuspectName,
    Todo,
)
from models.db import session_scope

router = APIRouter()

STATUS_LOGIN = ("查询意向单进度需要身份验证：员工请携带访问令牌（Authorization: Bearer），"
                "发送意向单的系统请按推送意向单的方式签名（X-Salesops-Sender、X-Salesops-Timestamp、"
                "X-Salesops-Signature，签名内容为 时间戳 + \".\" + \"GET /orders/<意向单号>\"）")


def _order_records(s, order_id: str):
    """(order, quote, opportunity, customer, to-dos) of an order; None when there is none."""
    order = s.get(IntentOrder, order_id)
    if order is None:
        return None
    quote = s.exec(select(Quote).where(Quote.order_id == order_id)).first()
    opp = s.exec(select(Opportunity).where(Opportunity.order_id == order_id)).first()
    customer = s.get(Customer, order.customer_id) if order.customer_id else None
    todos = s.exec(select(Todo).where(Todo.order_id == order_id).order_by(Todo.id)).all()
    return order, quote, opp, customer, todos


# roles whose work takes them to any order: sales-ops, the legal qualification review,
# purchasing's shortage alerts, finance's invoices, risk, admins
_ORDER_WIDE_ROLES = frozenset({"sales_ops", "legal", "purchasing", "finance", "risk", "admin"})


def may_open_order(s, person: Staff, order: IntentOrder, customer: Customer | None,
                   todos) -> bool:
    """Whether `person` may open the order's page and quote: a rep his own orders, a sales
    manager those of his reps and of his region's customers (or, without a customer yet, of
    his region's reps), anyone an order's to-do was given or copied to, the roles that work
    on every order. An order is a rep's customer and prices: other reps do not browse it."""
    if person.role in _ORDER_WIDE_ROLES or person.id == order.rep_id:
        return True
    if any(t.assignee_id == person.id or person.id in (t.cc or "").split(",") for t in todos):
        return True
    if person.role != "sales_manager":
        return False
    if customer is not None and customer.region and customer.region == person.region:
        return True
    rep = s.get(Staff, order.rep_id) if order.rep_id else None
    return rep is not None and (rep.manager_id == person.id or bool(
        customer is None and rep.region and rep.region == person.region))


def may_open(db_url: str, person: Staff, order_id: str) -> bool:
    """Whether `person` may open the order's page (`may_open_order`); no such order: no."""
    with session_scope(db_url) as s:
        records = _order_records(s, order_id)
        if records is None:
            return False
        order, _, _, customer, todos = records
        return may_open_order(s, person, order, customer, todos)


def _visible_rebate(db_url: str, s, person: Staff | None, order: IntentOrder,
                    customer: Customer | None) -> OrderRebate | None:
    """The order's expected rebate if `person` may see it (the rebate board's rule)."""
    if not sees_rebates_of(db_url, person, order.rep_id, customer.region if customer else None):
        return None
    return s.get(OrderRebate, order.id)


def _quote_readable(s, order: IntentOrder, visible: OrderRebate | None) -> bool:
    """The quote PDF prints the order's expected rebate: with one it follows the rebate's
    rule (`visible`: the rebate as `_visible_rebate` gave it), without one any staff member
    may read it."""
    return visible is not None or s.get(OrderRebate, order.id) is None


def order_view(db_url: str, order_id: str, person: Staff | None = None,
               sender: str | None = None) -> dict | None:
    """The order's progress, for staff who may open the order (`person`) or for the system
    that sent it (`sender`, nobody else's orders); 403 otherwise. Its expected rebate only
    for staff who may see it. None when there is no such order."""
    with session_scope(db_url) as s:
        records = _order_records(s, order_id)
        if records is None:
            return None
        order, quote, opp, customer, todos = records
        if person is not None:
            if not may_open_order(s, person, order, customer, todos):
                raise ApiError(403, "forbidden", ORDER_WITHHELD)
        elif order.sender_id != sender:  # no person and no sender: nobody
            raise ApiError(403, "forbidden", f"此意向单不是发送方 {sender} 提交的，无权查询其进度")
        rebate = _visible_rebate(db_url, s, person, order, customer)
        return {
            "order_id": order.id, "status": order.status, "error": order.error,
            "customer": {"id": customer.id, "legal_name": customer.legal_name,
                         "qualification": customer.qualification} if customer else None,
            "stock_short": order.stock_short,
            "stage": opp.stage if opp else None,
            "stage_label": STAGE_LABELS.get(Stage(opp.stage)) if opp else None,
            "quote": {"code": quote.code, "status": quote.status,
                      "total_amount": str(quote.total_amount),
                      "valid_until": quote.valid_until.isoformat(),
                      "pdf_sha256": quote.pdf_sha256,
                      "signed_pdf_sha256": quote.signed_pdf_sha256} if quote else None,
            "todos": [{"kind": t.kind, "title": t.title, "assignee": t.assignee_id,
                       "status": t.status, "due_at": t.due_at.isoformat()} for t in todos],
            "rebate": {"rate": str(rebate.rate), "amount": str(rebate.amount),
                       "sentence": rebate.sentence, "detail": json.loads(rebate.detail)}
            if rebate else None,
            "last_flow_run_id": order.last_flow_run_id,
        }


def quote_file(quote: Quote) -> tuple[Path, bool] | None:
    """The quote's PDF to show (the signed one once there is one) and whether it is signed."""
    for path, signed in ((quote.signed_pdf_path, True), (quote.pdf_path, False)):
        if path and Path(path).is_file():
            return Path(path), signed
    return None


def order_page_data(db_url: str, order_id: str, person: Staff) -> dict | None:
    """What the order page shows `person`; None when there is no such order."""
    with session_scope(db_url) as s:
        records = _order_records(s, order_id)
        if records is None:
            return None
        order, quote, opp, customer, todos = records
        if not may_open_order(s, person, order, customer, todos):
            return {"forbidden": True}
        suspect = s.get(SuspectName, order.suspect_id) if order.suspect_id else None
        people = {order.rep_id, *(t.assignee_id for t in todos)}
        names = {p.id: p.name for p in s.exec(select(Staff).where(Staff.id.in_(
            [i for i in people if i]))).all()}
        pdf = quote_file(quote) if quote else None
        rebate = _visible_rebate(db_url, s, person, order, customer)
        readable = _quote_readable(s, order, rebate)
        return {
            "order": {"id": order.id, "status": order.status, "error": order.error,
                      "customer_name": order.customer_name, "rep_id": order.rep_id,
                      "order_date": order.order_date.isoformat()},
            "names": names,
            "customer": {"customer_id": customer.id, "legal_name": customer.legal_name}
            if customer else None,
            "stage_label": STAGE_LABELS.get(Stage(opp.stage)) if opp else None,
            "quote": {"code": quote.code, "status": quote.status,
                      "total_amount": quote.total_amount,
                      "valid_until": quote.valid_until.isoformat(),
                      "has_pdf": pdf is not None and readable,
                      "pdf_withheld": pdf is not None and not readable,
                      "signed_pdf": bool(pdf and pdf[1])}
            if quote else None,
            "todos": [{"title": t.title, "assignee": t.assignee_id, "status": t.status,
                       "due_at": t.due_at} for t in todos],
            # the same condition choose_customer_for_order checks
            "waiting": waiting_for_customer(order),
            "may_choose": may_choose_for_order(person, order, s),
            "suggestions": json.loads(suspect.suggestions or "[]") if suspect else [],
            "rebate": rebate.sentence if rebate else None,
        }


async def order_page_response(request: Request, order_id: str, person: Staff, *,
                              error: str = "", status: int = 200,
                              chosen: dict | None = None) -> HTMLResponse:
    data = await run_in_threadpool(order_page_data, request.app.state.settings.db_url,
                                   order_id, person)
    if data is None:
        return staff_message(404, "意向单不存在", f"意向单不存在：{order_id}，可能链接有误。")
    if data.get("forbidden"):
        return staff_message(403, "无权查看此意向单", ORDER_WITHHELD)
    candidates = []
    if data["waiting"]:
        candidates = await run_in_threadpool(page_candidates, request, data["suggestions"],
                                             data["order"]["customer_name"])
    title, content, script_html = order_page(data, candidates, error=error, chosen=chosen)
    return staff_page(status, title, content, script_html)


@router.get("/orders/{order_id}", tags=["orders"], summary="意向单处理进度（员工或发送方签名）",
            responses={200: {"content": {"text/html": {}}}, 401: {}, 403: {}, 404: {}})
async def get_order(order_id: str, request: Request, response: Response) -> Response:
    """JSON for staff who may open the order (`Authorization: Bearer <token>`) and for the
    system that sent it, signed as its webhook is, over `request_line("GET",
    "/orders/<id>")` instead of a body; a browser (Accept: text/html) gets the rep's page of
    the order (staff only)."""
    response.headers["Vary"] = "Accept"  # one address, two representations
    if wants_html(request):
        person = await staff_for_page(request)
        if not isinstance(person, Staff):
            return person
        return await order_page_response(request, order_id, person)
    settings = request.app.state.settings
    person, sender = await optional_staff(request), None
    if person is None:
        if not sends_signature(request):
            raise ApiError(401, "unauthenticated", STATUS_LOGIN)
        sender = verify_signature(request, request_line(request.method, f"/orders/{order_id}"),
                                  settings)
    view = await run_in_threadpool(order_view, settings.db_url, order_id, person, sender)
    if view is None:
        raise ApiError(404, "unknown_order", f"意向单不存在：{order_id}")
    return view


@router.post("/orders/{order_id}/customer-choice", response_class=HTMLResponse, tags=["orders"],
             summary="意向单页面：为待确认客户的意向单选择客户（表单）")
async def choose_order_customer_form(order_id: str, request: Request,
                                     customer_id: str = Form("")) -> Response:
    person = await staff_for_page(request, from_link=False)
    if not isinstance(person, Staff):
        return person
    if cross_site(request):
        return refused_cross_site()
    chosen = form_id(customer_id)
    if chosen is None:
        return await order_page_response(request, order_id, person,
                                         error="请先选择客户", status=422)
    try:
        result = await run_decision(request, choose_customer_for_order, order_id, person, chosen)
    except ApiError as exc:
        return await order_page_response(request, order_id, person, error=exc.message,
                                         status=exc.status)
    return await order_page_response(request, order_id, person, chosen=result)


def order_quote(db_url: str, order_id: str, person: Staff
                ) -> tuple[str, Path, bool, str | None] | None:
    """(code, file, signed, why `person` may not read it or None) of the order's quote PDF."""
    with session_scope(db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == order_id)).first()
        found = quote_file(quote) if quote else None
        if found is None:
            return None
        order, _, _, customer, todos = _order_records(s, order_id)
        if not may_open_order(s, person, order, customer, todos):
            return quote.code, *found, ORDER_WITHHELD
        visible = _visible_rebate(db_url, s, person, order, customer)
        return quote.code, *found, None if _quote_readable(s, order, visible) else QUOTE_WITHHELD


@router.get("/orders/{order_id}/quote.pdf", tags=["orders"], summary="意向单的报价单 PDF（员工）")
async def order_quote_pdf(order_id: str, request: Request) -> Response:
    person = await staff_for_page(request)
    if not isinstance(person, Staff):
        return person
    found = await run_in_threadpool(order_quote, request.app.state.settings.db_url, order_id,
                                    person)
    if found is None:
        return staff_message(404, "报价单不存在", f"意向单 {order_id} 还没有报价单文件。")
    code, path, signed, withheld = found
    if withheld:
        return staff_message(403, "无权查看报价单", withheld)
    return FileResponse(path, media_type="application/pdf",
                        filename=f"{code}{'-已签署' if signed else ''}.pdf",
                        headers={"Cache-Control": "no-store"})
