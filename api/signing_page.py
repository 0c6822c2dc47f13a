"""The built-in signing page: a customer opens the link from the quote (QR or mail) on a
phone, reads the quote, ticks consent and signs with a finger."""
from __future__ import annotations

import base64
import binascii
import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from api.pages import card, render, script
from flows.order_steps import order_lines
from flows.signing import add_signing_event
from models import Customer, IntentOrder, IntentOrderLine, Quote, SigningToken, utcnow
from models.base import SHANGHAI
from models.db import database_busy, session_scope
from models.signing import token_hash

router = APIRouter()
log = logging.getLogger("salesops.signing_page")


@dataclass
class TokenState:
    ok: bool
    status: int = 200
    title: str = ""
    message: str = ""
    quote: Quote | None = None
    customer: Customer | None = None
    order: IntentOrder | None = None
    lines: list[IntentOrderLine] | None = None


def load_token(db_url: str, token: str) -> TokenState:
    with session_scope(db_url) as s:
        row = s.get(SigningToken, token_hash(token)) if len(token) < 100 else None
        if row is None:
            return TokenState(False, 404, "链接无效",
                              "该签署链接不存在，请核对链接或联系您的销售顾问。")
        quote = s.get(Quote, row.quote_id)
        if row.used_at is not None or quote.status == "signed":
            when = (row.used_at or quote.signed_at or utcnow()).astimezone(SHANGHAI)
            return TokenState(False, 409, "报价单已签署",
                              f"报价单 {quote.code} 已于 {when:%Y-%m-%d %H:%M} 签署，无需重复操作。")
        if row.expires_at <= utcnow():
            return TokenState(False, 410, "链接已过期",
                              f"报价单 {quote.code} 的签署链接已过期，请联系销售顾问重新报价。")
        order = s.get(IntentOrder, quote.order_id)
        return TokenState(True, quote=quote, customer=s.get(Customer, quote.customer_id),
                          order=order, lines=order_lines(s, order.id))


SCRIPT = script("signing_pad.js")


def message_page(status: int, title: str, message: str) -> HTMLResponse:
    return HTMLResponse(render(title, card(title, message)), status_code=status)


def under_signing(path: str) -> bool:
    """Whether an address is the customer's (the signing page's), not a staff member's."""
    return path == "/sign" or path.startswith("/sign/")


def broken_link(status: int) -> HTMLResponse:
    """An address under /sign/ the router does not take (the mail program wrapped the link
    and cut off its token) or could not read: told in the customer's words (the staff
    pages' advice, to reopen the push, means nothing to him)."""
    return message_page(status, "链接无效",
                        "签署链接不完整或有误，请核对链接是否完整，或联系您的销售顾问重新发送。")


def quote_page(state: TokenState, token: str, error: str = "",
               signer_name: str | None = None) -> str:
    """The quote and the signing form; after a refused submit, the name as the signer typed
    it (not the order's contact again)."""
    q, cust, order = state.quote, state.customer, state.order
    name = (order.contact_name or "") if signer_name is None else signer_name
    rows = "".join(
        f"<tr><td>{html.escape(ln.model)}<div class='muted'>{html.escape(ln.name)}</div></td>"
        f"<td class='num'>{ln.quantity}{html.escape(ln.unit)}</td>"
        f"<td class='num'>¥{ln.unit_price * ln.quantity:,.2f}</td></tr>"
        for ln in state.lines)
    safe_token = html.escape(token)
    content = f"""
<div class="card"><div class="muted">报价单 {html.escape(q.code)}</div>
<h1>{html.escape(cust.legal_name)}</h1>
<div class="total">¥{q.total_amount:,.2f}</div>
<div class="muted">含税（其中税额 ¥{q.tax_amount:,.2f}），有效期至 {q.valid_until:%Y年%m月%d日}</div></div>
<div class="card"><h2>报价明细</h2><table><tr><th>型号</th><th class="num">数量</th><th class="num">金额</th></tr>{rows}</table>
<p><a href="/sign/{safe_token}/pdf">查看完整报价单（PDF）</a></p></div>
<div class="card"><h2>在线签署</h2>
<form id="sign-form" method="post" action="/sign/{safe_token}">
<label for="signer_name" class="muted">签署人姓名</label>
<input type="text" id="signer_name" name="signer_name" maxlength="40" value="{html.escape(name)}" autocomplete="name">
<label class="consent"><input type="checkbox" id="consent" name="consent" value="yes">
<span>我已阅读并同意上述报价单的全部内容，确认以电子签名方式签署，与手写签名具有同等法律效力。</span></label>
<div class="muted">请在下方框内手写签名</div>
<canvas id="pad"></canvas>
<button id="clear" class="secondary">重写</button>
<input type="hidden" id="signature" name="signature">
<p class="error" id="err">{html.escape(error)}</p>
<button id="submit-btn" type="submit" disabled>确认签署</button>
</form></div>
<p class="muted">{html.escape(state.order.id)} · 签署链接仅限本人使用，签署后即失效</p>"""
    return render(f"签署报价单 {q.code}", content, SCRIPT)


def provider_url(state: TokenState) -> str | None:
    """The e-sign provider's page when the quote is signed there, not on ours."""
    quote = state.quote
    if quote.signing_provider and quote.signing_provider != "builtin" and quote.signing_url:
        return quote.signing_url
    return None


def current_provider_url(settings, state: TokenState) -> str | None:
    """The provider's page, asked for now: e签宝's login-free signing links last about 30
    minutes, while the customer opens our link from the mail hours or days later. The link
    stored when the flow started when e签宝 cannot answer now."""
    stored = provider_url(state)
    quote = state.quote
    if not (stored and quote.signing_provider == "esign" and quote.signing_ref
            and settings.esign_url and settings.esign_app_id
            and settings.esign_app_secret.get_secret_value()):
        return stored
    from connectors.esign_tsign import TsignSigning, signer_account

    # the account and company the flow was started with (flows.order_steps.request_signature)
    account = signer_account(state.order.contact_phone, state.order.contact_email)
    if not account or state.customer is None:
        return stored
    client = TsignSigning(settings.esign_url, settings.esign_app_id, settings.esign_app_secret,
                          timeout=min(settings.connector_timeout_seconds, 5.0), attempts=1)
    try:
        return client.signing_url(quote.signing_ref, account, state.customer.legal_name)
    except Exception as exc:  # noqa: BLE001 - the stored link is still worth a try
        log.warning("e签宝 sign-url for %s failed, forwarding to the stored link: %s",
                    quote.code, type(exc).__name__)
        return stored
    finally:
        client.close()


@router.get("/sign/{token}", response_class=HTMLResponse, tags=["signing"], summary="签署页")
async def show_signing_page(token: str, request: Request):
    settings = request.app.state.settings
    state = await run_in_threadpool(load_token, settings.db_url, token)
    if not state.ok:
        return message_page(state.status, state.title, state.message)
    if provider_url(state):
        url = await run_in_threadpool(current_provider_url, settings, state)
        return RedirectResponse(url, status_code=302)
    return HTMLResponse(quote_page(state, token))


@router.get("/sign/{token}/pdf", tags=["signing"], summary="报价单 PDF")
async def quote_pdf(token: str, request: Request):
    state = await run_in_threadpool(load_token, request.app.state.settings.db_url, token)
    if not state.ok:
        return message_page(state.status, state.title, state.message)
    if not (state.quote.pdf_path and Path(state.quote.pdf_path).is_file()):
        return message_page(404, "报价单文件暂不可用",
                            f"报价单 {state.quote.code} 的 PDF 文件暂时无法打开，"
                            "请稍后再试或联系您的销售顾问。")
    return FileResponse(state.quote.pdf_path, media_type="application/pdf",
                        filename=f"{state.quote.code}.pdf")


def decode_signature(data_url: str) -> bytes:
    prefix = "data:image/png;base64,"
    if not data_url.startswith(prefix):
        raise ValueError("签名图片格式不正确，请重新手写签名")
    try:
        return base64.b64decode(data_url[len(prefix):], validate=True)
    except binascii.Error as exc:
        raise ValueError("签名图片无法解析，请重新手写签名") from exc


def complete_builtin_signing(settings, state: TokenState, token: str, signer_name: str,
                             png: bytes, ip: str, user_agent: str) -> TokenState:
    """Use the token, keep the drawing and queue the completion, as one transaction: the
    conditional UPDATE lets one submit win, and a refused drawing leaves the token unused."""
    from connectors.esign_builtin import save_signature_capture

    now = utcnow()
    with session_scope(settings.db_url) as s:
        won = s.execute(sa.update(SigningToken).where(
            SigningToken.token_hash == token_hash(token), SigningToken.used_at.is_(None),
            SigningToken.expires_at > now).values(used_at=now)).rowcount == 1
        if won:
            # raises ValueError for a blank or broken drawing: the transaction rolls back.
            # Winning the token means nobody signed yet: a capture on disk is left from a
            # submit whose transaction did not commit, and this drawing replaces it.
            save_signature_capture(settings.data_dir.resolve(), state.quote.code, png,
                                   signer_name, ip, user_agent, now, replace=True)
            add_signing_event(s, "esign:builtin", state.quote.code,
                              json.dumps({"quote": state.quote.code, "signer": signer_name,
                                          "signed_at": now.isoformat()},
                                         ensure_ascii=False).encode(),
                              state.quote.code, {"status": "signed"})
    return state if won else load_token(settings.db_url, token)


@router.post("/sign/{token}", response_class=HTMLResponse, tags=["signing"], summary="提交签署")
async def submit_signature(token: str, request: Request, signer_name: str = Form(""),
                           consent: str = Form(""), signature: str = Form("")):
    settings = request.app.state.settings
    state = await run_in_threadpool(load_token, settings.db_url, token)
    if not state.ok:
        return message_page(state.status, state.title, state.message)
    if provider_url(state):  # signed at the provider: a signature here would not count
        url = await run_in_threadpool(current_provider_url, settings, state)
        return RedirectResponse(url, status_code=303)
    name = signer_name.strip()
    problem = ""
    if consent != "yes":
        problem = "请先勾选同意报价单内容"
    elif not (2 <= len(name) <= 40) or any(ord(ch) < 32 for ch in name):
        problem = "请填写签署人真实姓名（2–40 个字）"
    else:
        try:
            png = decode_signature(signature)
        except ValueError as exc:
            problem = str(exc)
    if problem:
        return HTMLResponse(quote_page(state, token, problem, signer_name), status_code=422)
    try:
        done = await run_in_threadpool(
            complete_builtin_signing, settings, state, token, name, png,
            request.client.host if request.client else "", request.headers.get("user-agent", ""))
    except ValueError as exc:  # the capture was refused (blank, too large, not a PNG)
        return HTMLResponse(quote_page(state, token, str(exc), signer_name), status_code=422)
    except sa.exc.DBAPIError as exc:  # the customer reads a page, not the API's JSON
        if not database_busy(exc):
            raise
        response = message_page(503, "系统繁忙，尚未签署",
                                f"系统繁忙，报价单 {state.quote.code} 本次未能签署成功。"
                                "请稍候片刻，重新打开签署链接后重新签署。")
        response.headers["Retry-After"] = "5"
        return response
    if not done.ok:
        return message_page(done.status, done.title, done.message)
    request.app.state.dispatcher.poke()
    return message_page(200, "签署成功", f"感谢您！报价单 {state.quote.code} 已签署，"
                        "签署文件生成后将通过邮件发送给您，我们将尽快安排开票与发货。")
