"""The per-order business steps of the intent-order flow, each safe to run again.

Every function takes the hub and one order id, reads what it needs, and either finishes its
part or raises (TransientError: retry later; PermanentError/BusinessRefusal: a person acts).
Outside calls go through `once()` so a rerun never repeats a mail, an envelope or an alert.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from connectors.email import Attachment, OutgoingMail
from connectors.esign import SigningRequest
from connectors.settings import Settings
from flows.batch import BusinessRefusal
from flows.effects import effect_result, once
from flows.hub import Hub
from flows.notices import (
    assignee, mail_todo, manager_of, open_todo, order_todo_key, send_mail, staff,
)
from models import (
    Customer, IntentOrder, IntentOrderLine, Opportunity, OrderRebate, OrderStatus, Product, Quote,
    QuoteStatus, SigningToken, Stage, Todo, business_date, utcnow,
)
from models.base import SHANGHAI
from models.codes import new_quote_code
from models.db import session_scope
from models.locks import lock_customer_files
from models.oplog import apply_changes, record_create
from models.quoting import quote_totals
from models.signing import derive_signing_token, token_hash
from reports.quote_pdf import QuoteDocument, QuoteLine, render_quote_pdf

ACTOR = "flow:intent-order"


# --- shared helpers -----------------------------------------------------------------

def signing_link(settings: Settings, quote: Quote) -> str:
    issued = int(quote.created_at.timestamp())
    token = derive_signing_token(settings.secret("signing_secret"), quote.code, issued)
    return f"{settings.public_base_url.rstrip('/')}/sign/{token}"


def advance_stage(session: Session, order_id: str, stage: Stage, actor: str = ACTOR) -> None:
    opp = session.exec(select(Opportunity).where(Opportunity.order_id == order_id)).one()
    if list(Stage).index(Stage(opp.stage)) < list(Stage).index(stage):
        apply_changes(session, opp, actor, stage=stage.value)


# --- step 2: stock check ------------------------------------------------------------

def order_lines(session: Session, order_id: str) -> list[IntentOrderLine]:
    return list(session.exec(select(IntentOrderLine).where(IntentOrderLine.order_id == order_id)
                             .order_by(IntentOrderLine.line_no)))


def promised_stock(session: Session, skus: list[str]) -> dict[str, int]:
    """Units of each SKU the hub has promised that the inventory does not know of yet: the
    lines of the orders `quoted` (the quote went out, the customer may sign it) whose quote is
    still open to signing (status `sent`, valid until today or later). Not counted: an order
    signed or being invoiced (the ERP takes it from there: its own `reserved`/available
    figure), one blocked, on hold, failed, received or being processed (nothing promised yet;
    a rerun checks it again), a quote expired. Nothing is written to the inventory."""
    if not skus:
        return {}
    rows = session.exec(
        select(IntentOrderLine.sku, sa.func.sum(IntentOrderLine.quantity))
        .join(IntentOrder, IntentOrder.id == IntentOrderLine.order_id)
        .join(Quote, Quote.order_id == IntentOrder.id)
        .where(IntentOrder.status == OrderStatus.quoted.value,
               Quote.status == QuoteStatus.sent.value, Quote.valid_until >= business_date(),
               IntentOrderLine.sku.in_(skus))
        .group_by(IntentOrderLine.sku)).all()
    return {sku: int(qty) for sku, qty in rows}


def check_stock(hub: Hub, order_id: str, available: dict[str, int],
                promised: dict[str, int]) -> dict[str, int]:
    """Flag the order short when a SKU's demand (the sum of its lines) exceeds what is left
    of it: the inventory's `available` (negative when over-reserved: kept so, the shortfall
    counts it) minus what the hub has `promised` beyond it. A short order alerts purchasing
    (`_purchase_alert`); its quote says so. Returns the order's demand per SKU, which the
    batch promises before checking the next order."""
    alert = None
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
        # a SKU may sit on several lines: the stock must cover their sum
        wanted: dict[str, int] = {}
        for ln in order_lines(s, order_id):
            wanted[ln.sku] = wanted.get(ln.sku, 0) + ln.quantity
        short = [(sku, qty, available.get(sku, 0), promised.get(sku, 0))
                 for sku, qty in wanted.items()
                 if qty > available.get(sku, 0) - promised.get(sku, 0)]
        apply_changes(s, order, ACTOR, stock_short=bool(short))
        if short:
            alert = _purchase_alert(hub, s, order, short)
    if alert:
        mail_todo(hub, *alert)
    return wanted


# the SKUs a purchase alert names: its detail lines ("- SKU 型号：需求 …")
ALERT_SKU = re.compile(r"^- (\S+) ", re.MULTILINE)


def _purchase_alert(hub: Hub, s: Session, order: IntentOrder,
                    short: list[tuple[str, int, int, int]]) -> tuple[int, str | None] | None:
    """The purchase alert telling of the order's shortage, to mail (to-do id, the `news` to
    mail it under); None when purchasing has heard of every SKU short now. One alert per news:
    the first shortage opens the to-do (mailed); SKUs newly short update the open one's text
    and mail it again (a key of its own per set of short SKUs); after it was done they open a
    new one (mailed). A rerun that finds the same SKUs short tells nobody again."""
    alerts = s.exec(select(Todo).where(Todo.kind == "purchase_alert",
                                       Todo.order_id == order.id).order_by(Todo.id)).all()
    told = {sku for todo in alerts for sku in ALERT_SKU.findall(todo.body)}
    new = [sku for sku, *_ in short if sku not in told]
    if not new:
        return None
    products = {p.sku: p for p in s.exec(select(Product).where(
        Product.sku.in_([sku for sku, *_ in short])))}
    detail = "\n".join(
        f"- {sku} {products[sku].model}：需求 {qty}，"
        f"可用 {avail - held}{'（已超额占用）' if avail - held < 0 else ''}，"
        f"缺口 {qty - (avail - held)}"
        + (f"（库存系统可用 {avail}，其中 {held} 已许给其他未签署的意向单）" if held else "")
        for sku, qty, avail, held in short)
    want = order.wanted_delivery_date.isoformat() if order.wanted_delivery_date else "未填写"
    # the customer check has resolved the file: its legal name, not the name as typed
    customer = s.get(Customer, order.customer_id) if order.customer_id else None
    body = (f"客户“{customer.legal_name if customer else order.customer_name}”的意向单 "
            f"{order.id} 以下物料库存不足（期望交期 {want}）：\n{detail}"
            + (f"\n较此前的采购预警新增缺货：{'、'.join(new)}" if alerts else ""))
    key = order_todo_key(s, "purchase_alert", order.id)
    open_one = next((todo for todo in alerts if todo.business_key == key), None)
    if open_one is not None:  # not dealt with yet: it says what is short now, mailed again
        apply_changes(s, open_one, ACTOR, body=body)
        skus = ",".join(sorted(sku for sku, *_ in short))
        return open_one.id, hashlib.sha256(skus.encode()).hexdigest()[:12]
    mgr = manager_of(s, order.rep_id)
    todo = open_todo(
        s, kind="purchase_alert", key=key, title=f"采购预警：意向单 {order.id} 库存不足",
        body=body, assignee_id=assignee(s, hub.settings, "purchasing_assignee"),
        due_hours=hub.settings.todo_due_hours, cc=[mgr.id] if mgr else [], order_id=order.id)
    s.flush()
    return todo.id, None


# --- step 3: quote PDF --------------------------------------------------------------

def quote_of(session: Session, order_id: str) -> Quote | None:
    return session.exec(select(Quote).where(Quote.order_id == order_id)).first()


def render_quote(hub: Hub, order_id: str) -> None:
    """Render the order's quote PDF (the quote row, its code and signing token first, once).
    A PDF already rendered is kept, unless the quote has not gone out yet (draft) and the
    order's shortage changed since (a rerun's stock check found it short, or no longer):
    rendered again, same code, so the customer gets the note 部分物料库存不足… exactly when
    the order is short — but not once its signature request is done (the provider has that
    PDF: the customer must sign the document he is mailed)."""
    with session_scope(hub.db_url) as s:
        quote = quote_of(s, order_id)
        if quote is None:  # written with the order's file: a merge waits, or is seen
            lock_customer_files(s)
        order = s.get(IntentOrder, order_id)
        if (quote and quote.pdf_sha256 and quote.pdf_path and Path(quote.pdf_path).exists()
                and (quote.pdf_stock_note == order.stock_short
                     or quote.status != QuoteStatus.draft.value
                     or effect_result(hub.db_url, "signing_request", quote.code) is not None)):
            return
        lines = order_lines(s, order_id)
        if quote is None:
            total, tax = quote_totals(lines)
            today = business_date()
            quote = Quote(code=new_quote_code(today.strftime("%y%m")), order_id=order_id,
                          customer_id=order.customer_id, total_amount=total, tax_amount=tax,
                          valid_until=today + dt.timedelta(days=hub.settings.quote_validity_days),
                          created_at=utcnow().replace(microsecond=0))
            s.add(quote)
            record_create(s, quote, ACTOR)
        link = signing_link(hub.settings, quote)
        th = token_hash(link.rsplit("/", 1)[-1])
        if s.get(SigningToken, th) is None:
            s.add(SigningToken(token_hash=th, quote_id=quote.id, expires_at=quote_expiry(quote)))
        doc = quote_document(hub.settings, s, order, quote, lines, link)
    # rendering happens outside any transaction: no database lock is held meanwhile
    path = hub.settings.path("quotes") / f"{doc.code}.pdf"
    sha = render_quote_pdf(doc, path)
    with session_scope(hub.db_url) as s:
        apply_changes(s, quote_of(s, order_id), ACTOR, pdf_path=str(path), pdf_sha256=sha,
                      pdf_stock_note=doc.note is not None)


def quote_expiry(quote: Quote) -> dt.datetime:
    """A quote, and its signing link, is valid to the end of its last day in Shanghai: the
    first instant it is not (midnight after that day; its last second is still valid)."""
    return dt.datetime.combine(quote.valid_until + dt.timedelta(days=1), dt.time(0), SHANGHAI)


def quote_document(st: Settings, s: Session, order: IntentOrder, quote: Quote,
                   lines: list[IntentOrderLine], link: str) -> QuoteDocument:
    customer = s.get(Customer, order.customer_id)
    rep = staff(s, order.rep_id)
    rebate = s.get(OrderRebate, order.id)
    return QuoteDocument(
        code=quote.code, issued_on=business_date(quote.created_at),
        valid_until=quote.valid_until, seller_name=st.seller_name, seller_uscc=st.seller_uscc,
        seller_address=st.seller_address, seller_phone=st.seller_phone,
        seller_bank=st.seller_bank, customer_legal_name=customer.legal_name,
        customer_uscc=customer.uscc, contact_name=order.contact_name,
        contact_phone=order.contact_phone, rep_name=rep.name if rep else None,
        lines=tuple(QuoteLine(model=ln.model, name=ln.name,
                              quantity=ln.quantity, unit=ln.unit,
                              unit_price=ln.unit_price, tax_rate=ln.tax_rate)
                    for ln in lines),
        signing_url=link, wanted_delivery_date=order.wanted_delivery_date,
        note="部分物料库存不足，交期以采购确认为准。" if order.stock_short else None,
        rebate=rebate.sentence if rebate else None,
        rebate_basis=rebate_basis(rebate.detail) if rebate else ())


def rebate_basis(detail: str) -> tuple[str, ...]:
    """What the quote says the rebate rests on, from the order's stored preview: each
    applying rule's explanation (按《政策》（代码 第N版）条款：the period's volume, the tier,
    the base × rate …), then each rule in force that does not apply and why."""
    data = json.loads(detail)
    return (*(rule["explanation"] for rule in data["rules"]),
            *(f"未适用《{r['policy_name']}》（{r['policy_code']} 第{r['policy_version']}版）"
              f"{r['clause']}：{'；'.join(r['reasons'])}。" for r in data["skipped"]))


# --- step 4: signature request ------------------------------------------------------

def request_signature(hub: Hub, order_id: str) -> None:
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
        quote = quote_of(s, order_id)
        customer = s.get(Customer, quote.customer_id)
        req = SigningRequest(
            quote_code=quote.code, pdf_path=Path(quote.pdf_path),
            title=f"报价单 {quote.code}（{customer.legal_name}）",
            signer_name=order.contact_name or customer.legal_name,
            signer_company=customer.legal_name, signer_phone=order.contact_phone,
            signer_email=order.contact_email,
            expires_at=quote_expiry(quote),
            idempotency_key=f"signing:{quote.code}",
            notify_url=f"{hub.settings.public_base_url.rstrip('/')}/webhooks/esign/"
                       f"{hub.esign.provider}",
            page_url=signing_link(hub.settings, quote))
    result = once(hub.db_url, "signing_request", quote.code, lambda: _create_signing(hub, req))
    with session_scope(hub.db_url) as s:
        quote = quote_of(s, order_id)
        # customers always get our link (PDF, mail); for a remote provider the page forwards
        # to the provider's URL. Our own link is never stored: only its token's hash is.
        provider_url = None if result["provider"] == "builtin" else result["url"]
        apply_changes(s, quote, ACTOR, signing_provider=result["provider"],
                      signing_ref=result["ref"], signing_url=provider_url)


def _create_signing(hub: Hub, req: SigningRequest) -> dict:
    handle = hub.esign.create_signing(req)
    # the effect record keeps no bearer link of ours
    url = None if handle.provider == "builtin" else handle.url
    return {"provider": handle.provider, "ref": handle.ref, "url": url}


# --- step 5: quote mail -------------------------------------------------------------

def send_quote_mail(hub: Hub, order_id: str) -> None:
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
        quote = quote_of(s, order_id)
    # the customer may have signed meanwhile (e签宝 texts him as the flow starts, while this
    # step is still retried): no "please sign" mail then, and no step back to 已报价
    if (quote.status != QuoteStatus.signed.value
            and effect_result(hub.db_url, "quote_email", quote.code) is None):
        _mail_quote(hub, order, quote)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
        quote = quote_of(s, order_id)
        if quote.status != QuoteStatus.signed.value:
            apply_changes(s, quote, ACTOR, status=QuoteStatus.sent.value)
        signed = (OrderStatus.signed.value, OrderStatus.invoicing.value)
        apply_changes(s, order, ACTOR,
                      status=order.status if order.status in signed else OrderStatus.quoted.value,
                      error=None, claimed_by=None, claimed_until=None)
        opp = s.exec(select(Opportunity).where(Opportunity.order_id == order_id)).one()
        apply_changes(s, opp, ACTOR, amount=quote.total_amount)
        advance_stage(s, order_id, Stage.quoted)


def customer_mail(hub: Hub, s: Session, order: IntentOrder, customer: Customer, *, key: str,
                  subject: str, body: str, attachment: Attachment) -> OutgoingMail:
    """A mail about an order's quote to the customer's contact, the rep in copy (or the rep
    alone when the customer gave no address): greeting, `body`, the seller's signature."""
    rep = staff(s, order.rep_id)
    to = order.contact_email or customer.contact_email or (rep.email if rep else None)
    if not to:
        raise BusinessRefusal("客户与销售均无邮箱，无法发送报价单")
    seller = hub.settings.seller_name
    return OutgoingMail(
        idempotency_key=key, to=(to,),
        cc=tuple(e for e in [rep.email if rep else None] if e and e != to),
        subject=f"{subject} - {seller}",
        text=(f"{order.contact_name or customer.legal_name}，您好：\n\n{body}\n\n"
              f"{seller}\n{hub.settings.seller_phone}"),
        attachments=(attachment,))


def _mail_quote(hub: Hub, order: IntentOrder, quote: Quote) -> None:
    """The quote PDF and the signing link to the customer (the rep in copy), once."""
    with session_scope(hub.db_url) as s:
        customer = s.get(Customer, quote.customer_id)
        rep = staff(s, order.rep_id)
        mail = customer_mail(
            hub, s, order, customer, key=f"quote:{quote.code}", subject=f"报价单 {quote.code}",
            body=(f"感谢贵司的询价。附件为报价单 {quote.code}，含税合计人民币 "
                  f"{quote.total_amount:,.2f} 元，有效期至 {quote.valid_until:%Y年%m月%d日}。\n\n"
                  f"确认无误后，请点击以下链接在手机上在线签署：\n"
                  f"{signing_link(hub.settings, quote)}\n\n如有疑问请联系您的销售顾问"
                  f"{(rep.name + '（' + rep.email + '）') if rep else ''}。"),
            attachment=Attachment(f"报价单-{quote.code}.pdf", Path(quote.pdf_path).read_bytes()))
    send_mail(hub, "quote_email", quote.code, mail)

