"""The rebate of an order the moment it is entered (`POST /rebates/preview`, the intent-order
flow's `rebate-preview` step): the engine's preview over the customer's signed orders of the
periods containing the order date, and last month's orders for the comparison."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

import sqlalchemy as sa
from sqlmodel import Session, select

from flows.errors import Refusal
from flows.hub import Hub
from flows.rebate_data import (
    Window, customer_profiles, named_products, payment_rates, policy_book,
    quarter_end, quarter_start, summed_ordered_twice, summed_sale_lines,
)
from flows.rebate_board import sees_rebates_of
from models import (
    Customer, IntentOrder, IntentOrderLine, OrderRebate, Product, RebateLine, Staff,
    business_date, utcnow,
)
from models.customer_files import active_id
from models.db import get_engine, session_scope
from models.oplog import record_create
from models.rebates.engine import Preview, SaleLine, item_classes, preview
from models.rebates.policy import PolicyBook

ACTOR = "flow:intent-order"
# the order's products, as a statement built once (building and keying one costs SQLAlchemy
# more than SQLite takes to answer it; a preview runs it on every call)
_PRODUCTS = select(Product.sku, Product.product_line, Product.list_price, Product.active).where(
    Product.sku.in_(sa.bindparam("skus", expanding=True)))
SENTENCE_MAX = 300  # order_rebate.sentence


class PreviewError(Refusal):
    """Input that cannot be previewed; `field` names what is wrong."""

    def __init__(self, code: str, message: str, field: str, status: int = 422,
                 details: list[dict] | None = None) -> None:
        super().__init__(message, code=code, field=field, status=status, details=details)


@dataclass(frozen=True)
class ItemIn:
    sku: str
    quantity: int
    unit_price: Decimal | None = None  # None: the list price


def may_preview(db_url: str, s: Session, person: Staff, customer: Customer) -> bool:
    """Who may see a customer's volumes and payment rate in a preview: those who see the
    rebates of its owner's orders on the board, the sales-ops clerk (who writes the policies,
    checks them on real orders and replays them over every customer anyway), and a rep for
    an unowned customer of his region or one he has taken an order from."""
    if person.role == "sales_ops" or sees_rebates_of(db_url, person, customer.owner_rep_id,
                                                     customer.region):
        return True
    if person.role != "rep":
        return False
    if customer.owner_rep_id is None and person.region and customer.region == person.region:
        return True  # (a rep without a region has no region's customers: None is no region)
    return s.exec(select(IntentOrder.id).where(IntentOrder.rep_id == person.id,
                                               IntentOrder.customer_id == customer.id)
                  .limit(1)).first() is not None


def preview_items(db_url: str, customer_id: int, items: Sequence[ItemIn], *,
                  order_date: dt.date | None = None, order_id: str = "预览",
                  book: PolicyBook | None = None, asked_by: Staff | None = None) -> Preview:
    """The rebate `items` would earn for the customer if signed on `order_date` (today),
    with the period's orders and returns as the hub knows them now.
    `asked_by`: a person previewing an order being entered, who must be allowed to see the
    customer (else 403) and may only order products on sale."""
    day = order_date or business_date()
    with session_scope(db_url) as s:
        cid = active_id(s, customer_id)
        if cid is None:
            raise PreviewError("unknown_customer", f"客户档案不存在：{customer_id}", "customer_id")
        if asked_by is not None:
            customer = s.get(Customer, cid)
            if not may_preview(db_url, s, asked_by, customer):
                raise PreviewError("forbidden", f"客户 {customer.legal_name} 不在您的负责范围内，"
                                   "无权预估其返利", "customer_id", status=403)
        products = {p.sku: p for p in s.exec(_PRODUCTS, params={
            "skus": sorted({i.sku for i in items})})}
        unknown = [i.sku for i in items if i.sku not in products]
        if unknown:
            raise PreviewError("unknown_sku", f"未知的物料编码：{_unknown_skus(s, unknown)}",
                               "lines.sku", details=[  # as the webhook says it
                                   {"field": "lines.sku", "problem": "unknown", "value": sku}
                                   for sku in dict.fromkeys(unknown)])
        stopped = [i.sku for i in items if asked_by is not None and not products[i.sku].active]
        if stopped:
            raise PreviewError("inactive_sku", f"物料已停售：{'、'.join(stopped)}", "lines.sku")
        book = book or policy_book(s)
        # the customer's orders are read summed per order and class of products (a large
        # customer's quarter is thousands of lines), this order's product lines apart
        classes = item_classes(book, named_products(s, book),
                               apart={p.product_line for p in products.values()})
    order_lines = [SaleLine(order_id, n, cid, day, i.sku, products[i.sku].product_line,
                            Decimal(i.unit_price if i.unit_price is not None
                                    else products[i.sku].list_price),
                            i.quantity, None)
                   for n, i in enumerate(items, start=1)]
    last_end = day.replace(day=1) - dt.timedelta(days=1)
    # the period as the hub knows it now: an order previewed days after its date (held for
    # its customer, retried) counts the orders signed and the goods returned since, as the
    # settlement will
    known = max(day, business_date())
    with get_engine(db_url).connect() as conn:
        ids = frozenset({cid})
        quarter = Window(quarter_start(day), quarter_end(day), ids)
        if quarter_start(last_end) == quarter.start:
            period, last_month = summed_ordered_twice(conn, quarter, known, last_end, classes,
                                                      exclude_order=order_id)
        else:
            period, _ = summed_sale_lines(conn, [quarter], known, classes, delivered=False,
                                          exclude_order=order_id)
            last_month, _ = summed_sale_lines(
                conn, [Window(quarter_start(last_end), last_end, ids)], last_end, classes,
                delivered=False, exclude_order=order_id)
    with session_scope(db_url) as s:
        # each order (this one included) evaluated with the customer's tier and region, and
        # its payment rate, on its order date, as the settlement will: the earliest order
        # read is of last month's quarter (a quarter's first order its own trailing months)
        first = quarter_start(last_end)
        profiles = customer_profiles(s, [cid], since=first)
        # up to the latest order read: one signed since this order's date is rated on its own
        # trailing months, as the settlement will
        rates = payment_rates(s, [cid], first, max([day, *(ln.order_date for ln in period)]))
    return preview(order_lines, period, book, profiles, rates, last_month,
                   partial(settled_orders, db_url, cid))


def settled_orders(db_url: str, customer_id: int, bucket_key: str, since: str) -> list[str]:
    """The orders the customer's settled lines paid in a bucket whose period starts in month
    `since` (a preview asks, to tell a 阶梯补差 to come from a first payment): the lines of
    the settlements from that month on, through the (customer, month) index."""
    with session_scope(db_url) as s:
        return s.exec(select(RebateLine.order_id).where(
            RebateLine.customer_id == customer_id, RebateLine.month >= since,
            RebateLine.bucket_key == bucket_key).distinct()).all()


def _unknown_skus(s: Session, unknown: list[str]) -> str:
    """`mon-m8（是否应为 MON-M8？）`: a code typed in another case, with a space for its
    hyphen, names the product meant (codes are matched exactly)."""
    def fold(sku: str) -> str:
        return "".join(c for c in sku if c.isalnum()).upper()

    folded = {fold(sku): sku for sku in s.exec(select(Product.sku))}
    out = []
    for sku in dict.fromkeys(unknown):
        meant = folded.get(fold(sku))
        out.append(f"{sku}（是否应为 {meant}？）" if meant else sku)
    return "、".join(out)


def preview_for_order(hub: Hub, order_id: str) -> None:
    """Step of the intent-order flow: compute and keep the order's expected rebate (the
    quote prints it, `GET /orders/{id}` shows it). Computed once: a retry of the order's
    steps keeps the rebate the quote was rendered with."""
    with session_scope(hub.db_url) as s:
        if s.get(OrderRebate, order_id) is not None:
            return
        order = s.get(IntentOrder, order_id)
        lines = s.exec(select(IntentOrderLine).where(IntentOrderLine.order_id == order_id)
                       .order_by(IntentOrderLine.line_no)).all()
        items = [ItemIn(ln.sku, ln.quantity, Decimal(ln.unit_price)) for ln in lines]
        customer_id, day = order.customer_id, order.order_date
    result = preview_items(hub.db_url, customer_id, items, order_date=day, order_id=order_id)
    sentence = rebate_sentence(result)
    with session_scope(hub.db_url) as s:
        row = OrderRebate(order_id=order_id, computed_at=utcnow(), rate=result.rate,
                          amount=result.amount, sentence=sentence, detail=result.detail_json())
        s.add(row)
        record_create(s, row, ACTOR)


def rebate_sentence(result: Preview) -> str:
    """What the quote and the order show, e.g. 本次订单返利比例：12.5%，较上月提升2.3个百分点
    （预计返利 ¥4,800.00）; with no applicable policy, 本订单暂无适用的返利政策."""
    if not result.rules:
        return result.sentence  # 本订单暂无适用的返利政策, with no amount
    amount = f"（预计返利 ¥{result.amount:,.2f}）"
    room = SENTENCE_MAX - len(amount)  # many product lines: shortened, the amount kept
    text = result.sentence
    if len(text) > room:  # whole product lines only: never a rate cut short (12.35% → 12.3…)
        cut = text.rfind("；", 0, room - 1)
        text = text[:cut if cut > 0 else room - 1] + "…"
    return text + amount
