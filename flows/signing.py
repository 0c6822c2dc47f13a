"""The `signing-completed` flow: archive the signed quote, advance the opportunity, and ask
finance to prepare the invoice — each quote on its own, by one run at a time (its order's
lease), each outside call once."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from sqlmodel import select

from connectors.email import Attachment
from connectors.finance import InvoiceLine, InvoiceRequest
from flows.batch import run_each, run_steps
from flows.dispatch import claims_kept, order_lease_free, take
from flows.effects import effect_result, once
from flows.hub import Hub, current_hub
from flows.intent_order import STEP, current_run_id
from flows.notices import (
    assignee, assignee_or_fallback, mail_todo, mail_todos, notify_todo, on_file_or_keeper,
    open_todo, send_mail,
    staff, untold_todos,
)
from flows.order_steps import advance_stage, customer_mail, order_lines
from models import (
    STAGE_LABELS, Customer, InboxEvent, IntentOrder, Opportunity, OrderStatus, Quote,
    QuoteStatus, Stage, Todo, utcnow,
)
from models.base import SHANGHAI
from models.db import session_scope
from models.locks import lock_customer_files
from models.money import yuan
from models.oplog import apply_changes
from models.quoting import line_amount, line_tax

ACTOR = "flow:signing-completed"
log = logging.getLogger("salesops.signing")


def archive_signed(hub: Hub, code: str) -> None:
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.code == code)).one()
        if quote.signed_pdf_sha256:
            return
        ref = quote.signing_ref or code
    # the connector keeps the signed file and its evidence JSON side by side, once
    signed = hub.esign.fetch_signed(ref, hub.settings.path("signed"))
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.code == code)).one()
        order = s.get(IntentOrder, quote.order_id)
        signed_at = signed.evidence.get("signed_at")
        apply_changes(s, quote, ACTOR, status=QuoteStatus.signed.value,
                      signed_pdf_path=str(signed.pdf_path), signed_pdf_sha256=signed.sha256,
                      evidence_path=str(signed.evidence_path))
        if quote.signed_at is None:
            apply_changes(s, quote, ACTOR, signed_at=(
                dt.datetime.fromisoformat(signed_at) if signed_at else utcnow()))
        # why it stopped before (a quote mail still retried when he signed) is over
        apply_changes(s, order, ACTOR, status=OrderStatus.signed.value, error=None)
        advance_stage(s, order.id, Stage.signed, ACTOR)


def mail_signed_quote(hub: Hub, code: str) -> None:
    """The signed quote to the customer (the rep in copy), once: the signing page promises it."""
    if effect_result(hub.db_url, "signed_quote_email", code) is not None:
        return
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.code == code)).one()
        order = s.get(IntentOrder, quote.order_id)
        customer = s.get(Customer, quote.customer_id)
        mail = customer_mail(
            hub, s, order, customer, key=f"signed-quote:{code}", subject=f"已签署报价单 {code}",
            body=(f"贵司已于 {quote.signed_at.astimezone(SHANGHAI):%Y年%m月%d日 %H:%M} 签署报价单 "
                  f"{code}，含税合计人民币 {quote.total_amount:,.2f} 元。附件为带电子签名的报价单，"
                  "请妥善保存。我们将尽快安排开票与发货。"),
            attachment=Attachment(f"报价单-{code}-已签署.pdf",
                                  Path(quote.signed_pdf_path).read_bytes()))
    send_mail(hub, "signed_quote_email", code, mail)


def request_invoice(hub: Hub, code: str) -> None:
    with session_scope(hub.db_url) as s:
        # finance's to-do must be storable before finance is asked (a BusinessRefusal naming
        # SALESOPS_FINANCE_ASSIGNEE when it names nobody on file)
        finance = assignee(s, hub.settings, "finance_assignee")
        quote = s.exec(select(Quote).where(Quote.code == code)).one()
        order = s.get(IntentOrder, quote.order_id)
        customer = s.get(Customer, quote.customer_id)
        rep = staff(s, order.rep_id)
        lines = order_lines(s, order.id)
        inv_lines = []
        for ln in lines:
            amount = line_amount(ln.unit_price, ln.quantity)
            inv_lines.append(InvoiceLine(sku=ln.sku, model=ln.model, name=ln.name, unit=ln.unit,
                                         quantity=ln.quantity,
                                         unit_price=Decimal(ln.unit_price),
                                         tax_rate=Decimal(ln.tax_rate), amount=amount,
                                         tax=line_tax(amount, ln.tax_rate)))
        req = InvoiceRequest(
            request_id=f"INV-{code}", order_id=order.id, quote_code=code,
            customer_legal_name=customer.legal_name, customer_uscc=customer.uscc,
            total_amount=Decimal(quote.total_amount), tax_amount=Decimal(quote.tax_amount),
            lines=tuple(inv_lines), signed_at=quote.signed_at,
            rep_name=rep.name if rep else None,
            signed_pdf_path=Path(quote.signed_pdf_path) if quote.signed_pdf_path else None)
    result = once(hub.db_url, "invoice_request", code,
                  lambda: {"reference": hub.finance.request_invoice(req)})
    with session_scope(hub.db_url) as s:
        lock_customer_files(s)  # the to-do is written with the quote's file: no merge meanwhile
        quote = s.exec(select(Quote).where(Quote.code == code)).one()
        order = s.get(IntentOrder, quote.order_id)
        customer = s.get(Customer, quote.customer_id)
        todo = open_todo(
            s, actor=ACTOR, kind="invoice_preparation", key=f"quote:{code}",
            title=f"开票准备：{customer.legal_name} 报价单 {code}",
            body=(f"客户“{customer.legal_name}”已签署报价单 {code}（意向单 {order.id}），"
                  f"含税金额 {yuan(quote.total_amount)}。开票申请已提交财务系统"
                  f"（编号 {result['reference']}），请准备开票。"),
            assignee_id=finance, due_hours=hub.settings.todo_due_hours,
            order_id=order.id, customer_id=customer.id)
        s.flush()
        todo_id = todo.id
        apply_changes(s, order, ACTOR, status=OrderStatus.invoicing.value, error=None)
        advance_stage(s, order.id, Stage.invoicing, ACTOR)
    mail_todo(hub, todo_id)


@task(name="archive-signed-quote", **STEP)
def archive_signed_quotes(codes: list[str]):
    hub = current_hub()
    return run_each("archive-signed-quote", codes, lambda c: archive_signed(hub, c))


@task(name="signed-quote-email", **STEP)
def mail_signed_quotes(codes: list[str]):
    hub = current_hub()
    return run_each("signed-quote-email", codes, lambda c: mail_signed_quote(hub, c))


@task(name="invoice-request", **STEP)
def request_invoices(codes: list[str]):
    hub = current_hub()
    return run_each("invoice-request", codes, lambda c: request_invoice(hub, c))


def claim_signings(hub: Hub, codes: list[str], run_id: str) -> list[str]:
    """The quotes of `codes` this run completes: their orders' lease is taken as the
    intent-order run takes it (`flows.dispatch.take`), so two runs never complete one quote
    at once — the callback's run and the sweeper's, or one started by hand — while `once()`
    alone would let both call finance and mail. A quote whose order another run holds (a
    signing run, or the intent-order run still sending its quote) is left to that run; its
    inbox event stays `dispatched`, so the sweeper starts it again should that run vanish.
    An unknown code is kept: its steps fail as before."""
    now = utcnow()
    with session_scope(hub.db_url) as s:
        orders = dict(s.exec(select(Quote.code, Quote.order_id).where(
            Quote.code.in_(codes))).all())
        won = take(s, IntentOrder, orders.values(),
                   sa.and_(IntentOrder.status != OrderStatus.processing.value,
                           order_lease_free(run_id, now)),
                   IntentOrder.claimed_by, run_id,
                   claimed_until=now + dt.timedelta(seconds=hub.settings.claim_lease_seconds))
    return [c for c in codes if c not in orders or orders[c] in won]


def release_signings(hub: Hub, codes: list[str], run_id: str) -> None:
    with session_scope(hub.db_url) as s:
        s.exec(sa.update(IntentOrder).where(
            IntentOrder.id.in_(select(Quote.order_id).where(Quote.code.in_(codes))),
            IntentOrder.claimed_by == run_id).values(claimed_by=None, claimed_until=None))


@flow(name="signing-completed", log_prints=True)
def complete_signings(quote_codes: list[str]) -> dict:
    logger = get_run_logger()
    hub = current_hub()
    run_id = current_run_id()
    mine = claim_signings(hub, quote_codes, run_id)
    busy = [c for c in quote_codes if c not in mine]
    if busy:
        logger.info("left to the run completing them already: %s", busy)
    try:
        steps = (archive_signed_quotes, request_invoices, mail_signed_quotes)  # finance first
        with claims_kept(hub.db_url, hub.settings.claim_lease_seconds, run_id):
            pending, failed, blocked, _ = run_steps(steps, mine, logger.exception)
        todo_ids = []
        with session_scope(hub.db_url) as s:
            for code, reason in blocked.items():  # e.g. finance refused the request
                quote = s.exec(select(Quote).where(Quote.code == code)).one()
                # the order says why it stays 已签约 (its page, GET /orders/{id})
                apply_changes(s, s.get(IntentOrder, quote.order_id), ACTOR, error=reason[:2000])
                person, note = assignee_or_fallback(s, hub.settings, "finance_assignee")
                if person is None:
                    log.error("signed quote %s blocked with nobody on file to give its to-do: "
                              "%s", code, reason)
                    continue
                todo = open_todo(s, actor=ACTOR, kind="signing_blocked", key=f"quote:{code}",
                                 title=f"已签署报价单 {code} 需人工处理",
                                 body=f"报价单 {code}（意向单 {quote.order_id}）已签署，"
                                      f"但后续处理失败：{reason}{note}",
                                 assignee_id=person,
                                 due_hours=hub.settings.todo_due_hours, order_id=quote.order_id)
                s.flush()
                todo_ids.append(todo.id)
        # told before the events are done: a run that dies between the two is started again
        # by the sweeper, and the mails it did send are not sent again
        mail_todos(hub, todo_ids)
        done = [c for c in mine if c not in failed]
        with session_scope(hub.db_url) as s:
            if done:
                s.exec(sa.update(InboxEvent).where(InboxEvent.source.like("esign:%"),
                                                   InboxEvent.subject_id.in_(done))
                       .values(status="done"))
            rows = s.exec(select(Quote, Opportunity).join(
                Opportunity, Opportunity.order_id == Quote.order_id).where(
                Quote.code.in_(quote_codes))).all()
    finally:  # given back however the run ends; a run that vanishes holds it to the lease
        release_signings(hub, mine, run_id)
    create_table_artifact(key="signing-completed", table=[
        {"报价单": q.code, "意向单": q.order_id, "阶段": STAGE_LABELS.get(o.stage, o.stage),
         "签署文件": q.signed_pdf_path or "",
         "说明": failed.get(q.code) or blocked.get(q.code)
         or ("另一次运行正在处理" if q.code in busy else "")}
        for q, o in rows], description=f"签署完成处理 {len(quote_codes)} 份报价单")
    summary = {"quotes": len(quote_codes), "invoicing": len(pending), "failed": sorted(failed),
               "blocked": sorted(blocked), "busy": sorted(busy)}
    logger.info("summary: %s", summary)
    if failed:
        raise RuntimeError(f"{len(failed)} signed quote(s) will be retried: {sorted(failed)}")
    return summary


# e签宝 ends a flow without a signature: signFlowStatus 3 (the sender revoked it), 5 (its
# deadline passed) or 7 (the signer refused), with statusDescription saying why
FLOW_ENDED = {"3": "签署流程已撤销", "5": "签署已过期", "7": "客户拒签"}


def signing_ended(db_url: str, flow_id: str, status: str, description: str | None,
                  fallback: str) -> int | None:
    """A to-do for the order's rep (his manager in copy) when e签宝 ends a quote's signing
    without a signature, once per (quote, status); the id of a to-do opened now, else None
    (an unknown flow, a quote already signed, a repeated notification). An order without a
    rep goes to `fallback` (sales-ops), or another sales-ops clerk when nobody on file has it."""
    what = FLOW_ENDED.get(status)
    if what is None:
        return None
    try:
        with session_scope(db_url) as s:
            quote = s.exec(select(Quote).where(Quote.signing_provider == "esign",
                                               Quote.signing_ref == flow_id)).first()
            if quote is None or quote.status == QuoteStatus.signed.value:
                return None
            key = f"{quote.code}:{status}"
            known = s.exec(select(Todo.id).where(Todo.kind == "signing_ended",
                                                 Todo.business_key == key)).first()
            if known is not None:
                return None
            order = s.get(IntentOrder, quote.order_id)
            customer = s.get(Customer, order.customer_id) if order.customer_id else None
            rep = staff(s, order.rep_id)
            manager = staff(s, rep.manager_id) if rep else None
            why = (description or "").strip()
            todo = open_todo(
                s, actor="callback:esign", kind="signing_ended", key=key,
                title=f"{what}：报价单 {quote.code}",
                body=(f"客户“{customer.legal_name if customer else order.customer_name}”的报价单 "
                      f"{quote.code}（意向单 {order.id}，含税金额 {yuan(quote.total_amount)}）在 e签宝"
                      f"{what}" + (f"，原因：{why}" if why and why != what else "") + "。"
                      "请与客户沟通后重新报价或关闭该意向单。"),
                assignee_id=rep.id if rep else on_file_or_keeper(s, fallback),
                cc=[manager.id] if manager else [],
                due_hours=24,
                order_id=order.id, customer_id=order.customer_id, new_only=True)
            if todo is None:  # the same news, delivered at once, opened it meanwhile
                return None
            s.flush()
            return todo.id
    except sa.exc.IntegrityError:
        # the same news delivered at the same instant opened it a moment ago
        with session_scope(db_url) as s:
            if s.exec(select(Todo.id).where(Todo.kind == "signing_ended",
                                            Todo.business_key == key)).first() is None:
                raise
        return None


# --- signing events into the inbox (the callback, the signing page, the reconciliation) ----

def add_signing_event(s, source: str, event_id: str, payload: bytes, quote_code: str,
                      answer: dict) -> bool:
    """Inbox row for a completed signing in the caller's transaction; False for a duplicate."""
    exists = s.exec(select(InboxEvent.id).where(
        InboxEvent.source == source, InboxEvent.event_id == event_id)).first()
    if exists:
        return False
    s.add(InboxEvent(source=source, sender_id=source.split(":", 1)[1], event_id=event_id,
                     payload=payload.decode("utf-8", "replace"),
                     payload_sha256=hashlib.sha256(payload).hexdigest(),
                     response_status=200, response_body=json.dumps(answer),
                     subject_id=quote_code))
    s.flush()
    return True


def store_signing_event(db_url: str, *args) -> bool:
    try:
        with session_scope(db_url) as s:
            return add_signing_event(s, *args)
    except sa.exc.IntegrityError:
        return False  # a concurrent duplicate delivery won the race


# --- e签宝 callbacks that never came ----------------------------------------------------------

RECONCILE_AFTER = dt.timedelta(hours=1)  # a callback is this late at least before we ask
RECONCILE_WITHIN = dt.timedelta(days=60)  # quotes older than this are not asked about


def reconcile_esign(hub: Hub) -> dict:
    """Ask e签宝 about the quotes still waiting for a signature after RECONCILE_AFTER (their
    callback may have been lost: our API down longer than e签宝 retries): a flow signed goes
    to the inbox as its callback would have (the sweeper starts `signing-completed`); one
    revoked, expired or refused opens the rep's to-do. A quote whose callback is in the inbox
    already, or whose flow ended unsigned, is not asked about; a question e签宝 does not
    answer waits for the next run. The to-dos of ended flows not yet mailed and pushed an hour
    after they were opened (the mail server failed, the callback's process died) are told now
    (a younger one is left to the callback that opened it); a failure waits for the next run."""
    out = {"checked": 0, "signed": 0, "ended": 0, "unanswered": 0}
    if hub.settings.esign_backend != "esign":
        return out
    now = utcnow()
    with session_scope(hub.db_url) as s:
        waiting = s.exec(select(Quote.code, Quote.signing_ref).where(
            Quote.signing_provider == "esign", Quote.status == QuoteStatus.sent.value,
            Quote.signing_ref.is_not(None), Quote.created_at < now - RECONCILE_AFTER,
            Quote.created_at > now - RECONCILE_WITHIN).order_by(Quote.created_at)).all()
        known = set(s.exec(select(InboxEvent.subject_id).where(
            InboxEvent.source == "esign:esign")))
        # a flow that ended unsigned is over: asked once
        known |= {key.split(":", 1)[0] for key in s.exec(select(Todo.business_key).where(
            Todo.kind == "signing_ended"))}
    opened = []
    for code, ref in waiting:
        if code in known:
            continue
        out["checked"] += 1
        try:
            status, description = hub.esign.flow_status(ref)
        except Exception as exc:  # noqa: BLE001 - one flow's trouble does not stop the others
            log.warning("e签宝 flow %s of %s not answered: %s", ref, code, exc)
            out["unanswered"] += 1
            continue
        if status == 2:
            body = json.dumps({"action": "SIGN_FLOW_COMPLETE", "signFlowId": ref,
                               "signFlowStatus": "2", "statusDescription": description,
                               "reconciled": True}, ensure_ascii=False).encode()
            out["signed"] += store_signing_event(hub.db_url, "esign:esign",
                                                 f"{ref}:SIGN_FLOW_COMPLETE", body, code,
                                                 {"code": "200", "msg": "success"})
        elif str(status) in FLOW_ENDED:
            todo_id = signing_ended(hub.db_url, ref, str(status), description,
                                    hub.settings.suspect_fallback_decider)
            if todo_id is not None:
                opened.append(todo_id)
                out["ended"] += 1
    for todo_id in opened + untold_todos(hub.db_url, "signing_ended", now - RECONCILE_AFTER):
        try:
            notify_todo(hub, todo_id)
        except Exception:  # noqa: BLE001 - told by the next run
            log.exception("could not tell to-do %s", todo_id)
    return out


@flow(name="esign-reconcile")
def reconcile_esign_flow() -> dict:
    """Hourly: e签宝 flows whose callback never arrived."""
    result = reconcile_esign(current_hub())
    get_run_logger().info("e签宝 reconciliation: %s", result)
    return result
