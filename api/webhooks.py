"""Webhook receivers: verify, validate, store in the inbox in one transaction, hand to Prefect."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlmodel import Session, select

from api.errors import ApiError, not_utf8, number_too_long, too_deep, validation_details
from api.schemas import IntentOrderIn
from flows.signing import store_signing_event
from models import (
    Customer, InboxEvent, IntentOrder, IntentOrderLine, OperationLog, Opportunity, OrderStatus, Product,
    Quote, Stage, Staff, business_date, utcnow,
)
from models.codes import new_order_id
from models.customer_files import overdue_refusal
from models.db import get_engine, session_scope
from models.name_input import check_customer_name

router = APIRouter()

SENDER_HEADER = "x-salesops-sender"
TIMESTAMP_HEADER = "x-salesops-timestamp"
SIGNATURE_HEADER = "x-salesops-signature"


def sign_body(secret: str, timestamp: str, body: bytes) -> str:
    """The signature a sender puts in X-Salesops-Signature (also used by our demo sender)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def request_line(method: str, path: str) -> bytes:
    """What a sender signs in place of a body when it asks for something (`GET /orders/<id>`):
    the method and the path, so that a signature opens that one address only. No JSON body
    reads like this, so a webhook's signature never passes for a request's, nor the reverse."""
    return f"{method.upper()} {path}".encode()


def signature_headers(sender: str, secret: str, signed: bytes,
                      timestamp: str | None = None) -> dict[str, str]:
    """The three headers of a signed call: `signed` is the raw body of a webhook, or the
    `request_line` of a status request (our demo sender and tests send them so)."""
    stamp = timestamp or str(int(time.time()))
    return {"X-Salesops-Sender": sender, "X-Salesops-Timestamp": stamp,
            "X-Salesops-Signature": sign_body(secret, stamp, signed)}


def sends_signature(request: Request) -> bool:
    """Whether the caller signs its request as a sender does (any of the three headers)."""
    return any(request.headers.get(h) for h in (SENDER_HEADER, TIMESTAMP_HEADER,
                                                SIGNATURE_HEADER))


async def read_limited_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"请求体超过 {limit} 字节上限")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"请求体超过 {limit} 字节上限")
        chunks.append(chunk)
    return b"".join(chunks)


def verify_signature(request: Request, body: bytes, settings) -> str:
    """The registered sender whose fresh signature over `body` the request carries (the raw
    body of a webhook, the `request_line` of a status request); 401 otherwise."""
    sender = request.headers.get(SENDER_HEADER)
    stamp = request.headers.get(TIMESTAMP_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    missing = [h for h, v in ((SENDER_HEADER, sender), (TIMESTAMP_HEADER, stamp),
                              (SIGNATURE_HEADER, signature)) if not v]
    if missing:
        raise ApiError(401, "missing_signature_headers", "缺少签名请求头",
                       [{"field": h, "problem": "missing"} for h in missing])
    secret = settings.webhook_senders.get(sender)
    if secret is None:
        raise ApiError(401, "unknown_sender", f"未登记的发送方：{sender}")
    # ASCII digits only ("²" is a digit to str.isdigit, not to int) and a sane length
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 15:
        raise ApiError(401, "bad_timestamp", "时间戳须为 Unix 秒")
    if abs(time.time() - int(stamp)) > settings.replay_window_seconds:
        raise ApiError(401, "stale_timestamp",
                       f"时间戳超出 {settings.replay_window_seconds // 60} 分钟有效窗口")
    expected = sign_body(secret.get_secret_value(), stamp, body)
    # as bytes: compare_digest refuses text with non-ASCII characters (a TypeError, a 500);
    # hex in capitals (Java's printHexBinary) is the same signature
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise ApiError(401, "bad_signature", "签名校验失败")
    return sender


def parse_order(body: bytes) -> IntentOrderIn:
    # UTF-8 only: json.loads would read UTF-16/32 bytes too, which the inbox cannot keep as
    # text (a 500 after the checks); a raw NUL means UTF-16 without its byte order mark
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8() from exc
    if "\x00" in text:
        raise not_utf8()
    try:
        data = json.loads(text.removeprefix("\ufeff"))  # a byte order mark is tolerated
    except json.JSONDecodeError as exc:  # the parser's own words are English: say where
        raise ApiError(400, "malformed_json",
                       f"请求体不是合法 JSON：第 {exc.lineno} 行第 {exc.colno} 列有误",
                       [{"field": "body", "problem": "json_syntax", "line": exc.lineno,
                         "column": exc.colno}]) from exc
    except RecursionError as exc:  # the parser recurses once per [ or {: it was a 500
        raise too_deep() from exc
    except ValueError as exc:  # after JSONDecodeError, a ValueError too: a huge integer
        raise number_too_long() from exc
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "请求体须为 JSON 对象")
    try:
        return IntentOrderIn.model_validate(data)
    except ValidationError as exc:
        details, codes = validation_details(exc.errors()), set()
        for err in details:
            if err["problem"] == "missing":
                codes.add("missing_field")
            elif err["field"].endswith("quantity"):
                codes.add("invalid_quantity")
            else:
                codes.add("invalid_field")
        code = ("missing_field" if "missing_field" in codes else
                "invalid_quantity" if "invalid_quantity" in codes else "invalid_field")
        message = {"missing_field": "缺少必填字段", "invalid_quantity": "数量须为正整数",
                   "invalid_field": "字段取值不合法"}[code]
        raise ApiError(422, code, message, details) from exc


def check_order_customer(order: IntentOrderIn) -> None:
    """A customer is an id (suggest-only field) or a name a person could have typed."""
    if order.customer.id is None and not order.customer.name:
        raise ApiError(422, "missing_field", "缺少客户：请提供 customer.id（从 /customers/suggest 选择）"
                       "或 customer.name", [{"field": "customer.name", "problem": "missing",
                                          "message": "或提供 customer.id"}])
    if order.customer.name:
        problem = check_customer_name(order.customer.name)
        if problem:  # the senders' contract: field errors are invalid_field, the detail says which
            raise ApiError(422, "invalid_field", problem.message,
                           [{"field": "customer.name", "problem": problem.code}])


def order_customer(conn, order: IntentOrderIn) -> tuple[int | None, str]:
    """(customer id, customer name) to store: the chosen file (its survivor if it was merged),
    or the typed name, refused while a manager is overdue deciding on it."""
    c = Customer.__table__.c
    if order.customer.id is not None:
        customer_id, seen = order.customer.id, set()
        while True:
            row = conn.execute(sa.select(c.id, c.legal_name, c.merged_into_id)
                               .where(c.id == customer_id)).first()
            if row is None:
                raise ApiError(422, "unknown_customer", f"客户档案不存在：{order.customer.id}",
                               [{"field": "customer.id", "problem": "unknown",
                                 "value": order.customer.id}])
            if row.merged_into_id is None or row.id in seen:
                return row.id, order.customer.name or row.legal_name
            seen.add(row.id)
            customer_id = row.merged_into_id
    with Session(bind=conn) as s:
        refusal = overdue_refusal(s, order.customer.name)
    if refusal:
        raise ApiError(422, "customer_decision_overdue", refusal,
                       [{"field": "customer.name", "problem": "overdue_decision",
                         "value": order.customer.name}])
    return None, order.customer.name


def store_intent_order(db_url: str, sender: str, body: bytes, order: IntentOrderIn
                       ) -> tuple[int, dict, bool]:
    """One transaction: inbox row, order, lines, opportunity, operation log.
    Returns (status, body, duplicate). Plain SQL statements: this is the hot path."""
    digest = hashlib.sha256(body).hexdigest()
    inbox = InboxEvent.__table__
    same_event = sa.select(inbox.c.payload_sha256, inbox.c.response_status,
                           inbox.c.response_body, inbox.c.event_id).where(
        inbox.c.source == "intent-order", inbox.c.sender_id == sender,
        inbox.c.event_id == order.event_id)
    engine = get_engine(db_url)
    try:
        with engine.begin() as conn:
            first = conn.execute(same_event).first()
            if first is not None:
                return replay(first, digest)
            skus = sorted({ln.sku for ln in order.lines})
            products = {r.sku: r for r in conn.execute(
                sa.select(Product.sku, Product.model, Product.name, Product.unit,
                          Product.list_price, Product.tax_rate, Product.active)
                .where(Product.sku.in_(skus)))}
            unknown = [sku for sku in skus if sku not in products or not products[sku].active]
            if unknown:
                raise ApiError(422, "unknown_sku", "存在未知或已停售的物料编码",
                               [{"field": "lines.sku", "problem": "unknown", "value": sku}
                                for sku in unknown])
            if order.rep_id and conn.execute(sa.select(Staff.id).where(
                    Staff.id == order.rep_id)).first() is None:
                raise ApiError(422, "unknown_rep", f"未知的销售编号：{order.rep_id}",
                               [{"field": "rep_id", "problem": "unknown", "value": order.rep_id}])
            customer_id, customer_name = order_customer(conn, order)
            now = utcnow()
            order_id = new_order_id(now)
            answer = {"order_id": order_id, "event_id": order.event_id, "status": "accepted"}
            row = {"id": order_id, "event_id": order.event_id, "sender_id": sender,
                   "customer_name": customer_name, "customer_id": customer_id,
                   "rep_id": order.rep_id,
                   "contact_name": order.customer.contact_name,
                   "contact_phone": order.customer.contact_phone,
                   "contact_email": order.customer.contact_email,
                   "wanted_delivery_date": order.wanted_delivery_date, "note": order.note,
                   "order_date": business_date(now),
                   "status": OrderStatus.received.value, "stock_short": False, "attempts": 0,
                   "created_at": now, "updated_at": now}
            conn.execute(sa.insert(IntentOrder.__table__), row)
            conn.execute(sa.insert(IntentOrderLine.__table__), [
                {"order_id": order_id, "line_no": no, "sku": ln.sku,
                 "model": products[ln.sku].model, "name": products[ln.sku].name,
                 "quantity": ln.quantity, "unit": products[ln.sku].unit,
                 "unit_price": products[ln.sku].list_price, "tax_rate": products[ln.sku].tax_rate}
                for no, ln in enumerate(order.lines, start=1)])
            conn.execute(sa.insert(Opportunity.__table__), {
                "order_id": order_id, "rep_id": order.rep_id, "stage": Stage.intent.value,
                "customer_id": customer_id,
                "updated_at": now})
            conn.execute(sa.insert(OperationLog.__table__), {
                "at": now, "actor": f"webhook:{sender}", "entity": "intent_order",
                "entity_id": order_id, "action": "create",
                "changes": json.dumps({"order": [None, json.loads(body)]}, ensure_ascii=False)})
            conn.execute(sa.insert(inbox), {
                "source": "intent-order", "sender_id": sender, "event_id": order.event_id,
                "payload": body.decode(), "payload_sha256": digest, "status": "pending",
                "response_status": 202, "subject_id": order_id, "dispatch_attempts": 0,
                "response_body": json.dumps(answer, ensure_ascii=False), "received_at": now})
            return 202, answer, False
    except sa.exc.IntegrityError:
        # a concurrent delivery of the same event won the race: answer as it did
        with engine.connect() as conn:
            return replay(conn.execute(same_event).one(), digest)


def replay(first, digest: str) -> tuple[int, dict, bool]:
    if first.payload_sha256 != digest:
        raise ApiError(409, "event_id_reused", "同一事件编号已用于不同内容的请求",
                       [{"field": "event_id", "problem": "conflict", "value": first.event_id}])
    return first.response_status, json.loads(first.response_body), True


@router.post("/webhooks/intent-orders", status_code=202, tags=["webhooks"],
             summary="接收意向单（HMAC 签名）",
             responses={400: {}, 401: {}, 409: {}, 413: {}, 422: {}})
async def receive_intent_order(request: Request):
    """Headers: `X-Salesops-Sender`, `X-Salesops-Timestamp` (Unix seconds),
    `X-Salesops-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>`."""
    started = time.perf_counter()
    settings = request.app.state.settings
    body = await read_limited_body(request, settings.max_body_bytes)
    sender = verify_signature(request, body, settings)
    order = parse_order(body)
    check_order_customer(order)
    stored_in = []

    def store():
        t = time.perf_counter()
        try:
            return store_intent_order(settings.db_url, sender, body, order)
        finally:
            stored_in.append(time.perf_counter() - t)

    status, answer, duplicate = await run_in_threadpool(store)
    if not duplicate:
        request.app.state.dispatcher.poke()
    # Server-Timing lets ops (and the bench) tell database time from queueing
    headers = {"Server-Timing": f"db;dur={stored_in[0] * 1000:.1f}, "
                                f"total;dur={(time.perf_counter() - started) * 1000:.1f}"}
    if duplicate:
        headers["X-Salesops-Duplicate"] = "1"
    return JSONResponse(answer, status_code=status, headers=headers)


# --- e-signature provider callbacks --------------------------------------------------

def _tell_todo(todo_id: int) -> None:
    """Mail and push a to-do opened by a callback, once; a failure is logged (the to-do stays
    on the order page and in 我的待办)."""
    from flows.hub import current_hub
    from flows.notices import notify_todo

    try:
        notify_todo(current_hub(), todo_id)
    except Exception:  # noqa: BLE001 - answered already; nothing to hand the error to
        logging.getLogger("salesops.webhooks").exception("could not tell to-do %s", todo_id)


@router.post("/webhooks/esign/{provider}", tags=["webhooks"], summary="电子签回调",
             responses={401: {}, 404: {}, 422: {}})
async def receive_esign_callback(provider: str, request: Request, background: BackgroundTasks):
    settings = request.app.state.settings
    body = await read_limited_body(request, settings.max_body_bytes)
    if provider != "esign":
        raise ApiError(404, "unknown_provider", f"不支持的电子签服务商：{provider}")
    from connectors.esign import CallbackSignatureError
    from connectors.esign_tsign import verify_tsign_callback

    secret = settings.esign_app_secret.get_secret_value()
    if not secret:  # anybody can compute an HMAC under the empty key
        raise ApiError(401, "not_configured", "未配置 e签宝 应用密钥，无法校验电子签回调签名")
    try:
        event = verify_tsign_callback(dict(request.headers), request.url.query, body, secret)
    except CallbackSignatureError as exc:
        raise ApiError(401, exc.reason_code, "电子签回调签名校验失败") from exc
    flow_id = event.get("signFlowId")
    action = event.get("action", "")
    answer = {"code": "200", "msg": "success"}
    if action != "SIGN_FLOW_COMPLETE" or not flow_id:
        return JSONResponse(answer)  # other notifications are acknowledged, not acted upon
    if not isinstance(flow_id, str):  # a list or object cannot be looked up (it was a 500)
        raise ApiError(400, "bad_body", "电子签回调内容不正确：signFlowId 应为文本",
                       [{"field": "signFlowId", "problem": "string_type"}])
    status = str(event.get("signFlowStatus", "2"))
    if status != "2":  # 2 = all signed; 3/5/7 = revoked/expired/refused: the rep must know
        from flows.signing import signing_ended

        description = event.get("statusDescription")
        todo_id = await run_in_threadpool(
            signing_ended, settings.db_url, flow_id, status,
            description if isinstance(description, str) else None,
            settings.suspect_fallback_decider)
        if todo_id is not None:  # mail and push after answering (e签宝 waits 5 s at most)
            background.add_task(run_in_threadpool, _tell_todo, todo_id)
        return JSONResponse(answer)

    def lookup():
        with session_scope(settings.db_url) as s:
            return s.exec(select(Quote.code).where(Quote.signing_provider == "esign",
                                                   Quote.signing_ref == flow_id)).first()

    code = await run_in_threadpool(lookup)
    if code is None:
        raise ApiError(422, "unknown_sign_flow", f"未知的签署流程：{flow_id}")
    fresh = await run_in_threadpool(store_signing_event, settings.db_url, "esign:esign",
                                    f"{flow_id}:{action}", body, code, answer)
    if fresh:
        request.app.state.dispatcher.poke()
    return JSONResponse(answer)
