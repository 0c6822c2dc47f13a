"""The `intent-order` flow: claim a batch of accepted orders and push each one to a sent quote.

One flow run handles a batch (a burst of 1,000 orders is a handful of runs, not 1,000).
Each step is one task over the batch; every order succeeds or fails on its own, is recorded
on its row (status, error, last run) and is listed in the run's table artifact. A failed
order is retried by the task's retries, later by the sweeper, or by running this deployment
with `order_ids=["IO…"]` from the UI.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging

import sqlalchemy as sa
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from sqlmodel import select

from flows import customer_check, notices, order_steps, rebate_preview
from flows.batch import Outcome, retry_unless_refused, run_each, run_steps
from flows.dispatch import claims_kept, order_lease_free, take
from flows.hub import Hub, current_hub
from models import (
    ORDER_STATUS_LABELS, STAGE_LABELS, TASK_LABELS, Customer, InboxEvent, IntentOrder,
    IntentOrderLine, Opportunity, OrderStatus, Quote, Todo, utcnow,
)
from models.db import session_scope
from models.oplog import apply_changes

log = logging.getLogger("salesops.flows")

RETRY_DELAYS = [2, 10, 30]
# a step refused for the whole batch (the ERP refuses the stock query) is not retried: its
# orders are blocked at once (`run_steps`)
STEP = dict(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS, cache_policy=NO_CACHE,
            persist_result=False, retry_condition_fn=retry_unless_refused)


def current_run_id() -> str:
    return str(flow_run.get_id() or "local")


def claim_orders(hub: Hub, order_ids: list[str] | None, limit: int, run_id: str) -> list[str]:
    """Claim orders for this run: new or failed ones, or ones whose lease ran out, that no
    other run holds (a signing completion holds its order's lease too).

    The conditional UPDATE is the lock: two runs never work on the same order at once.
    """
    now = utcnow()
    claimable = sa.and_(
        IntentOrder.status.in_([OrderStatus.received.value, OrderStatus.failed.value,
                                OrderStatus.processing.value]),
        order_lease_free(run_id, now))
    with session_scope(hub.db_url) as s:
        query = select(IntentOrder.id).where(claimable)
        if order_ids is not None:
            query = query.where(IntentOrder.id.in_(order_ids))
        else:
            query = query.where(IntentOrder.attempts < hub.settings.order_max_attempts)
        candidates = list(s.exec(query.order_by(IntentOrder.created_at).limit(limit)))
        if not candidates:
            return []
        won = take(s, IntentOrder, candidates, claimable, IntentOrder.claimed_by, run_id,
                   status=OrderStatus.processing.value, last_flow_run_id=run_id,
                   claimed_until=now + dt.timedelta(seconds=hub.settings.claim_lease_seconds),
                   attempts=IntentOrder.attempts + 1, updated_at=now)
        return [oid for oid in candidates if oid in won]


def ours(order_ids: list[str]) -> list[str]:
    """The orders of `order_ids` this run still holds. A step's task retried over its batch
    skips an order it put on hold meanwhile: its lease was given back, and a rep's or a
    manager's decision may have sent it to another run, which works on it now (two runs
    would both call out for it: `once()` cannot tell the other's call in progress from a
    crash)."""
    run_id = current_run_id()
    with session_scope(current_hub().db_url) as s:
        held = set(s.exec(select(IntentOrder.id).where(IntentOrder.id.in_(order_ids),
                                                       IntentOrder.claimed_by == run_id)))
    return [oid for oid in order_ids if oid in held]


@task(name="customer-check", **STEP)
def check_customers(order_ids: list[str]) -> Outcome:
    hub = current_hub()
    order_ids = ours(order_ids)
    return run_each("customer-check", order_ids,
                    lambda oid: customer_check.check_customer(hub, oid))


@task(name="stock-check", **STEP)
def check_stock(order_ids: list[str]) -> Outcome:
    """Check each order of the batch, in creation order (as claimed), against what is left of
    each SKU: the inventory's availability, asked once for the whole batch, minus what the
    hub has promised that the inventory does not know of yet (`order_steps.promised_stock`)
    and minus what the orders before it in this batch want. Two orders that each fit the
    stock but not together: the second is short. The inventory refusing the query (a
    PermanentError, e.g. 401) blocks every order of the batch with its message, at once."""
    hub = current_hub()
    order_ids = ours(order_ids)
    if not order_ids:  # nothing left to ask the inventory about
        return Outcome()
    with session_scope(hub.db_url) as s:
        skus = sorted(set(s.exec(select(IntentOrderLine.sku).where(
            IntentOrderLine.order_id.in_(order_ids)))))
        promised = order_steps.promised_stock(s, skus)
    available = hub.inventory.availability(skus)  # one call for the whole batch

    def check(oid: str) -> None:
        for sku, qty in order_steps.check_stock(hub, oid, available, promised).items():
            promised[sku] = promised.get(sku, 0) + qty

    return run_each("stock-check", order_ids, check)


@task(name="rebate-preview", **STEP)
def preview_rebates(order_ids: list[str]) -> Outcome:
    hub = current_hub()
    order_ids = ours(order_ids)
    return run_each("rebate-preview", order_ids,
                    lambda oid: rebate_preview.preview_for_order(hub, oid))


@task(name="quote-pdf", **STEP)
def render_quotes(order_ids: list[str]) -> Outcome:
    hub = current_hub()
    order_ids = ours(order_ids)
    return run_each("quote-pdf", order_ids, lambda oid: order_steps.render_quote(hub, oid))


@task(name="signature-request", **STEP)
def request_signatures(order_ids: list[str]) -> Outcome:
    hub = current_hub()
    order_ids = ours(order_ids)
    return run_each("signature-request", order_ids,
                    lambda oid: order_steps.request_signature(hub, oid))


@task(name="quote-email", **STEP)
def send_quote_emails(order_ids: list[str]) -> Outcome:
    hub = current_hub()
    order_ids = ours(order_ids)
    return run_each("quote-email", order_ids, lambda oid: order_steps.send_quote_mail(hub, oid))


STEPS = [check_customers, check_stock, preview_rebates, render_quotes, request_signatures,
         send_quote_emails]


def settle_outcome(hub: Hub, failed: dict[str, str], blocked: dict[str, str]) -> None:
    """Record on each order why it did not finish; release the claim. An order out of
    attempts moves from `failed` to `blocked` (both dicts are updated). The blocked orders'
    to-dos are mailed: nobody would know of them otherwise."""
    todo_ids, news = [], {}
    with session_scope(hub.db_url) as s:
        for oid, reason in list(failed.items()):
            order = s.get(IntentOrder, oid)
            if order.attempts >= hub.settings.order_max_attempts:  # give up: a person acts
                blocked[oid] = f"{order.attempts} 次尝试均失败：{reason}"
                del failed[oid]
                continue
            apply_changes(s, order, "flow:intent-order", status=OrderStatus.failed.value,
                          error=reason[:2000], claimed_by=None, claimed_until=None)
        for oid, reason in blocked.items():
            order = s.get(IntentOrder, oid)
            apply_changes(s, order, "flow:intent-order", status=OrderStatus.blocked.value,
                          error=reason[:2000], claimed_by=None, claimed_until=None)
            # the rep's manager, else the rep; an order without a rep (sent by a system) goes
            # to who decides for rep-less orders
            rep = notices.staff(s, order.rep_id)
            assignee = ((rep.manager_id or rep.id) if rep
                        else notices.fallback_person(s, hub.settings))
            if assignee is None:
                log.error("order %s blocked with nobody on file to give its to-do: %s",
                          oid, reason)
                continue
            body = f"意向单 {oid}（客户“{order.customer_name}”）无法自动处理：{reason}"
            todo = notices.open_todo(
                s, kind="order_blocked", key=notices.order_todo_key(s, "order_blocked", oid),
                title=f"意向单 {oid} 需人工处理", body=body, assignee_id=assignee,
                due_hours=hub.settings.todo_due_hours, order_id=oid)
            if todo.body != body:  # its to-do still open: it says why the order stopped now,
                apply_changes(s, todo, "flow:intent-order", body=body)  # mailed as news
                news[todo.id] = hashlib.sha256(reason.encode()).hexdigest()[:12]
            s.flush()
            todo_ids.append(todo.id)
    notices.mail_todos(hub, todo_ids, news)


def mark_inbox_done(hub: Hub, order_ids: list[str]) -> None:
    """The orders' inbox events are done — not one whose order is back in line (a decision on
    its customer released it meanwhile and set its event pending: the dispatcher starts it)."""
    if order_ids:
        with session_scope(hub.db_url) as s:
            back_in_line = select(IntentOrder.id).where(
                IntentOrder.id.in_(order_ids), IntentOrder.status == OrderStatus.received.value)
            s.exec(sa.update(InboxEvent).where(InboxEvent.source == "intent-order",
                                               InboxEvent.subject_id.in_(order_ids),
                                               InboxEvent.subject_id.not_in(back_in_line))
                   .values(status="done"))


def publish_artifacts(hub: Hub, order_ids: list[str], failed: dict, blocked: dict,
                      held: dict) -> None:
    if not order_ids:
        return
    with session_scope(hub.db_url) as s:
        rows = s.exec(select(IntentOrder, Quote, Customer, Opportunity)
                      .join(Quote, Quote.order_id == IntentOrder.id, isouter=True)
                      .join(Customer, Customer.id == IntentOrder.customer_id, isouter=True)
                      .join(Opportunity, Opportunity.order_id == IntentOrder.id, isouter=True)
                      .where(IntentOrder.id.in_(order_ids))).all()
        todo_orders: dict[str, list[str]] = {}
        for t in s.exec(select(Todo).where(Todo.order_id.in_(order_ids)).order_by(Todo.id)):
            todo_orders.setdefault(t.order_id, []).append(TASK_LABELS.get(t.kind, t.kind))
    table = []
    base = hub.settings.public_base_url.rstrip("/")
    for order, quote, customer, opp in rows:
        # the order's staff page (login required), never the customer's signing link: that
        # link signs the quote for whoever holds it, anyone reading the runs included
        link = f"{base}/orders/{order.id}"
        table.append({
            "意向单": order.id, "客户": customer.legal_name if customer else order.customer_name,
            "报价单": quote.code if quote else "",
            "金额": f"{quote.total_amount:,.2f}" if quote else "",
            "阶段": STAGE_LABELS.get(opp.stage, opp.stage) if opp else "",
            "状态": ORDER_STATUS_LABELS.get(order.status, order.status),
            "意向单页面": link, "待办": "；".join(todo_orders.get(order.id, [])),
            "说明": failed.get(order.id) or blocked.get(order.id) or held.get(order.id) or "",
        })
        if quote and len(order_ids) <= hub.settings.quote_link_artifacts_max_batch:
            row = table[-1]
            create_link_artifact(key=f"quote-{quote.code.lower()}", link=link,
                                 link_text=f"报价单 {quote.code}（意向单 {order.id}）",
                                 description=f"{order.id} · {row['客户']} · ¥{row['金额']}")
    done = len(order_ids) - len(failed) - len(blocked) - len(held)
    headline = (f"本批 {len(order_ids)} 张意向单：已报价 {done}，待重试 {len(failed)}，"
                f"需人工 {len(blocked)}，待确认客户 {len(held)}")
    create_table_artifact(key="intent-order-batch", table=table, description=headline)
    new_files = sum("法务资质初审" in r["待办"] for r in table)
    shortages = sum("采购预警" in r["待办"] for r in table)
    lines = [f"## {headline}", "", f"- 新客户建档（法务资质初审）：{new_files}",
             f"- 库存不足（已发采购预警）：{shortages}"]
    unfinished = {**failed, **blocked, **held}
    if unfinished:
        lines += ["", "### 未完成", *(f"- `{oid}`：{why}" for oid, why in unfinished.items())]
    create_markdown_artifact(key="intent-order-summary", description=headline,
                             markdown="\n".join(lines))


@flow(name="intent-order", log_prints=True)
def process_intent_orders(order_ids: list[str] | None = None, limit: int = 1000) -> dict:
    """Customer check → stock check → rebate preview → quote PDF → signature request →
    quote email."""
    logger = get_run_logger()
    hub = current_hub()
    run_id = current_run_id()
    claimed = claim_orders(hub, order_ids, limit, run_id)
    logger.info("claimed %d order(s)", len(claimed))
    # a long batch keeps its orders
    with claims_kept(hub.db_url, hub.settings.claim_lease_seconds, run_id):
        pending, failed, blocked, held = run_steps(STEPS, claimed, logger.exception)
    settle_outcome(hub, failed, blocked)
    mark_inbox_done(hub, [o for o in claimed if o not in failed])
    publish_artifacts(hub, claimed, failed, blocked, held)
    summary = {"claimed": len(claimed), "quoted": len(pending), "failed": sorted(failed),
               "blocked": sorted(blocked), "held": sorted(held)}
    logger.info("summary: %s", summary)
    if failed:
        # visible as a failed run in the UI; the orders themselves are safe and retried
        raise RuntimeError(f"{len(failed)} order(s) will be retried: {sorted(failed)[:10]}")
    return summary
