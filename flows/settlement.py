"""Monthly rebate settlement (返利结算): `settle-month` (cron `0 2 5 * *`, Asia/Shanghai, settles
last month) and `salesops settle --month YYYY-MM`.

docs/rebates.md is the contract. In short: evaluate every touched bucket as of the month's
end, pay each (bucket, order) its due minus what settlements of months up to this one paid,
store those lines as a new revision (nothing new → no revision, no voucher), send one balanced
voucher per customer to finance once, and write the customers' statements and finance's
workbook. Finance confirms a revision; a confirmed revision never changes.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import multiprocessing
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_progress_artifact, create_table_artifact, update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.runtime import flow_run
from sqlmodel import Session, select

from connectors.base import ConnectorError, PermanentError, TransientError
from connectors.finance import VoucherBatch, VoucherDraft, VoucherEntry
from flows.batch import retry_unless
from flows.effects import EffectInProgress, effect_result, once
from flows.errors import Refusal, connector_reason, transient_cause
from flows.hub import Hub, current_hub
from flows.rebate_data import (
    Window, add_months, customer_profiles, id_chunks, lines_query, payment_rates,
    named_products, policy_book, quarter_end, quarter_start, shanghai_midnight_after,
    summed_sale_lines, window_filter,
)
from models import (
    Customer, CustomerAlias, Delivery, IntentOrder, IntentOrderLine, OperationLog, Payment,
    Product, Quote, ReceivableInvoice, RebateBucketInputs, RebateLine, RebatePolicyVersion,
    SalesReturn, SettlementRun, Staff, utcnow,
)
from models.base import MAX_ID, SHANGHAI, business_date
from models.db import database_busy, get_engine, roomy_page_cache, session_scope
from models.fulfilment import news_horizon
from models.gc_pause import without_gc
from models.locks import lock_settlements
from models.money import yuan
from models.oplog import apply_changes, record_create
from models.staff import role_label
from models.rebates.engine import (
    KIND_LABELS, BucketKey, LineDraft, Paid, ReturnFact, ReturnsLookup, evaluate, item_classes,
    not_applied, rule_items, settle,
)
from models.rebates.formatting import fen_to_yuan
from models.rebates.policy import PolicyBook, PublishedVersion
from models.rebates.tables import sum_fen
from models.vouchers import VoucherNumber, issue_voucher_numbers
from reports.settlement_workbook import SettlementDetailLine, SettlementReport, save_settlement_workbook
from reports.statement_pdf import (
    StatementDocument, StatementLine, StatementPolicy, policy_rate, render_statement_pdf,
)

ACTOR = "flow:settle-month"
log = logging.getLogger(__name__)


class SettlementError(Refusal):
    """A settlement that cannot be made or confirmed as asked."""

    code = "invalid_settlement"


# what finance's refusal of a voucher batch means, by the connector's code (REST: the HTTP
# status; embedded drafts: the check that failed)
_VOUCHER_REFUSALS = {
    "bad-request": "凭证草稿不符合入账要求",
    "conflict": "该批次号此前已按不同内容提交过，请与财务核对该批次",
    "bad-body": "财务系统的答复无法识别，凭证可能已入账，请先与财务核实再重新运行",
    "400": "凭证草稿不符合财务系统的接口要求",
    "401": "财务系统不认可中台的访问令牌，请检查 SALESOPS_FINANCE_TOKEN",
    "403": "中台的账号无权提交凭证，请联系财务系统管理员",
    "409": "该批次号此前已按不同内容提交过，请与财务核对该批次",
    "422": "凭证草稿未通过财务系统的校验",
}


class VouchersNotSent(PermanentError):
    """A revision's voucher batch did not go out, for a reason said in the words of the
    people who read it (Chinese)."""


class VouchersHeld(VouchersNotSent):
    """A voucher batch the hub keeps back: as it stands it would book a customer's rebate to
    another customer's account in finance's books."""

    def __init__(self, message: str) -> None:
        super().__init__(message, provider="hub", code="held")


class VouchersRefused(VouchersNotSent):
    """Finance refused a voucher batch. The message is what people read (Chinese); the
    connector's own words stay in `detail` (and at the end of the message), its
    machine-readable `code` and `provider` are kept as they were."""

    def __init__(self, batch_id: str, refusal: PermanentError) -> None:
        self.batch_id = batch_id
        self.detail = str(refusal)
        reason = _VOUCHER_REFUSALS.get(refusal.code or "")
        super().__init__(f"财务系统拒收凭证草稿（批次 {batch_id}）" + (f"：{reason}" if reason else "")
                         + f"。财务系统原始信息：{self.detail}",
                         provider=refusal.provider, code=refusal.code)


def parse_month(text: str) -> tuple[dt.date, dt.date]:
    """'2026-10' → (2026-10-01, 2026-10-31); a clear error otherwise (also for a month
    outside 2000-01 … 2099-12, where date arithmetic around it could leave the calendar)."""
    from models.rebates.policy import FIRST_DATE, LAST_DATE

    try:
        first = dt.datetime.strptime(text.strip(), "%Y-%m").date()
    except ValueError as exc:
        raise SettlementError(f"月份格式应为 YYYY-MM（例如 2026-10）：{text!r}") from exc
    if not FIRST_DATE <= first <= LAST_DATE:
        raise SettlementError(f"月份须在 {FIRST_DATE:%Y-%m} 至 {LAST_DATE:%Y-%m} 之间：{text!r}")
    return first, add_months(first, 1) - dt.timedelta(days=1)


def month_key(text: str) -> str:
    """The month as it is stored and looked up: ' 2026-9 ' → '2026-09'."""
    return f"{parse_month(text)[0]:%Y-%m}"


def previous_month(today: dt.date | None = None) -> str:
    day = (today or business_date()).replace(day=1) - dt.timedelta(days=1)
    return f"{day:%Y-%m}"


def month_due(run=None) -> str:
    """The month a settle-month run settles when none is given: last month as of when a
    deployment's run was due (`run`: the Prefect flow run; its expected start, Asia/Shanghai),
    so that a scheduled run that starts late — the worker was down on the 5th and caught up
    on the 2nd of the next month — settles the month it was scheduled for, not the one
    before its late start; as of today for a run with no deployment (called directly)."""
    if run is None or getattr(run, "deployment_id", None) is None:
        return previous_month()
    return previous_month(run.expected_start_time.astimezone(SHANGHAI).date())


# --- computing ------------------------------------------------------------------------------

@dataclass
class Computation:
    """What a settlement of `month` would store now."""

    month: str
    as_of: dt.datetime
    rerun: bool
    drafts: list[LineDraft]
    book: PolicyBook
    windows: list[Window]
    line_count: int  # order lines read
    stamp: int | None = None  # the latest settlement run when the paid amounts were read
    # the latest published policy version when the book was read: one published before the
    # lines are stored would govern orders of the month that the lines do not reflect
    policies: int | None = None
    # how many customer files were merged when the lines were read: a merge before the lines
    # are stored re-keys the paid lines, and these would be stored under the merged file
    merges: int | None = None


def _touched_windows(conn: sa.Connection, first: dt.date, last: dt.date,
                     since: dt.datetime | None, news_from: dt.date | None = None,
                     unpublished: dt.date | None = None) -> list[Window]:
    """Every customer's orders of the periods containing the month; and, whole quarters of
    the customers whose older orders had news: a delivery or return dated, or a signature,
    from `news_from` (default: the month's first day; the day after the last settled month
    when months in between were never settled) up to the month's end, or a delivery or
    return recorded (or deleted) since the last settlement run whatever its date (a late
    one, a date corrected past the month, a line its re-sent document no longer lists); and
    whole quarters of the customers with orders dated from the start of a policy version
    published since the last settlement run (a back-dated version governs them now: every
    customer's are settled again alike, not only those whose quarter had other news).
    `unpublished`: the start of a draft a what-if replay settles as if published since."""
    q0 = quarter_start(first)
    start = min(first, news_from) if news_from else first
    windows = [Window(q0, last)]
    pairs: dict[dt.date, set[int]] = defaultdict(set)
    # each kind of news looked up by its own index (the day, the recording time, the
    # signature time), then its orders by id: no scan of the older orders
    news = []
    for table, day in ((Delivery, Delivery.delivered_on), (SalesReturn, SalesReturn.returned_on)):
        news.append(sa.select(table.order_id).where(day >= start, day <= last))
        if since:
            news.append(sa.select(table.order_id).where(table.recorded_at > since))
    # an older order signed in the month (or since the last settled one): its deliveries
    # count from the signature
    news.append(sa.select(Quote.order_id).where(
        Quote.signed_at >= shanghai_midnight_after(start - dt.timedelta(days=1)),
        Quote.signed_at < shanghai_midnight_after(last)))
    touched = [IntentOrder.id.in_(n) for n in news]
    if since:
        # a delivery or return line deleted since (its document re-sent without it): its
        # row is gone, the operation log still names the order
        gone = _orders_of_deleted_movements(conn, since)
        touched += [IntentOrder.id.in_(gone[i:i + 500]) for i in range(0, len(gone), 500)]
        # an invoice or payment recorded, changed or deleted since (a payment keyed late with
        # its real date, a receipt voided): the payment rates of the customer's orders dated
        # in the three months after its due month, those of earlier quarters included
        for customer_id, due_months in _receivables_news(conn, since).items():
            for due_month in due_months:
                first_month = add_months(due_month, 1)
                q = quarter_start(first_month)
                while q < q0 and q <= add_months(first_month, 2):
                    pairs[q].add(customer_id)
                    q = add_months(q, 3)
    # a version published since, starting before this quarter: the orders it governs now,
    # and those it took from an earlier version (its start onwards), are news — a draft's
    # too, also for the first month ever settled (a replay's first month)
    back_dated = conn.execute(sa.select(sa.func.min(RebatePolicyVersion.effective_from))
                              .where(RebatePolicyVersion.published_at > since)
                              ).scalar() if since else None
    if unpublished is not None:
        back_dated = unpublished if back_dated is None else min(back_dated, unpublished)
    if back_dated is not None and back_dated < q0:
        touched.append(IntentOrder.order_date >= back_dated)
    query = (sa.select(IntentOrder.customer_id, IntentOrder.order_date).distinct()
             .where(IntentOrder.order_date < q0, sa.or_(*touched)))
    for customer_id, order_date in conn.execute(query):
        if customer_id is not None:
            pairs[quarter_start(order_date)].add(customer_id)
    windows += [Window(q, quarter_end(q), frozenset(ids)) for q, ids in sorted(pairs.items())]
    return windows


def _receivables_news(conn: sa.Connection, since: dt.datetime) -> dict[int, set[dt.date]]:
    """The customers whose invoices or payments were recorded (or changed: an import records
    a changed row anew) or deleted after `since`, each with every due month concerned (its
    first day; each one's payment rates are news, not only the earliest's): an invoice's (its
    old one too, when changed; its old customer's too, when moved to another), a red-letter
    invoice's blue one's, a payment's invoice's (a refund's on a red-letter invoice: the blue
    one's too)."""
    invoice, payment = ReceivableInvoice, Payment
    found: dict[int, set[dt.date]] = defaultdict(set)
    blue: set[str] = set()  # invoices whose due date is concerned: found by number

    def note(customer_id, due) -> None:
        if customer_id is None or due is None:
            return
        due = dt.date.fromisoformat(due) if isinstance(due, str) else due
        found[int(customer_id)].add(due.replace(day=1))

    for customer_id, due, reverses in conn.execute(sa.select(
            invoice.customer_id, invoice.due_on, invoice.reverses)
            .where(invoice.recorded_at > since)):
        note(customer_id, due)
        if reverses:
            blue.add(reverses)
    blue |= set(conn.execute(sa.select(payment.invoice_no).where(
        payment.recorded_at > since)).scalars())
    # what the log says of rows changed or deleted since: their old due dates, customers and
    # invoices
    moved: dict[int, list] = defaultdict(list)  # invoice id → its (customer, due) before
    for entity, entity_id, action, changes in conn.execute(sa.select(
            OperationLog.entity, OperationLog.entity_id, OperationLog.action,
            OperationLog.changes).where(
            OperationLog.at > since, OperationLog.action.in_(("update", "delete")),
            OperationLog.entity.in_((invoice.__tablename__, payment.__tablename__)))):
        values = json.loads(changes)  # field: [old, new] (new None: deleted)
        if entity == invoice.__tablename__:
            if action == "delete":  # every field is there
                note(values["customer_id"][0], values.get("due_on", [None])[0])
            elif entity_id.isdigit():  # changed: the old customer (moved to another one by
                # finance's export) with its due date, and its old due date
                moved[int(entity_id)] += [
                    (values.get("customer_id", [None])[0], values.get("due_on", [None])[0])]
            blue.update(n for name in ("reverses", "invoice_no") for n in values.get(name, ())
                        if n)
        else:  # a payment: the invoices it was, and is, allocated to
            blue.update(n for n in values.get("invoice_no", ()) if n)
    if moved:
        for row_id, customer_id, due in conn.execute(
                sa.select(invoice.id, invoice.customer_id, invoice.due_on)
                .where(invoice.id.in_(sorted(moved)))):
            for old_customer, old_due in moved[row_id]:
                for who in {customer_id, old_customer or customer_id}:
                    note(who, due)
                    note(who, old_due)
    # the invoices concerned by number; a red-letter one's blue invoice too: a refund paid
    # on the red one changes what was collected on the blue one, due on its own date
    numbers, seen = sorted(blue), set(blue)
    while numbers:
        reversed_ = set()
        for start in range(0, len(numbers), 500):
            for customer_id, due, reverses in conn.execute(
                    sa.select(invoice.customer_id, invoice.due_on, invoice.reverses)
                    .where(invoice.invoice_no.in_(numbers[start:start + 500]))):
                note(customer_id, due)
                if reverses and reverses not in seen:
                    reversed_.add(reverses)
        seen |= reversed_
        numbers = sorted(reversed_)
    return found


def _orders_of_deleted_movements(conn: sa.Connection, since: dt.datetime) -> list[str]:
    """The orders of delivery and return rows deleted after `since` (a few: corrections)."""
    rows = conn.execute(sa.select(OperationLog.changes).where(
        OperationLog.at > since, OperationLog.action == "delete",
        OperationLog.entity.in_((Delivery.__tablename__, SalesReturn.__tablename__))))
    return sorted({json.loads(changes)["order_id"][0] for (changes,) in rows})


def _yuan(fen: int) -> Decimal:
    """Integer fen as an exact Decimal of yuan (two places)."""
    return Decimal(fen).scaleb(-2)


def _paid(conn: sa.Connection, windows: list[Window], month: str) -> dict[tuple[str, str], Paid]:
    """What settlements of months up to `month` paid per (bucket, order) for the orders in the
    windows (the buckets being evaluated): sum, and the latest line's basis and particulars.

    Summed by the database in integer fen, per (bucket, order) and (rep, region) where it was
    booked: one row per place an order's rebate was booked (not one per earlier line), with
    the particulars of its latest line (the greatest id), the rows of a (bucket, order) in
    the order their places were last booked to (Paid.booked: least recently first). The
    windows do not overlap (an order is in one)."""
    out: dict[tuple[str, str], Paid] = {}
    for window in windows:
        for ids in id_chunks(window):
            where, params = window_filter(window, ids)
            query = lines_query(
                "SELECT g.bucket_key, g.order_id, g.rep_id, g.region, g.fen, "
                "CAST(ROUND(l.basis_amount * 100) AS BIGINT), l.policy_version, l.clause "
                "FROM (SELECT rl.bucket_key, rl.order_id, rl.rep_id, rl.region, "
                "SUM(CAST(ROUND(rl.amount * 100) AS BIGINT)) AS fen, MAX(rl.id) AS last_id "
                "FROM rebate_line rl JOIN intent_order o ON o.id = rl.order_id "
                f"WHERE rl.month <= :month AND {where} "
                "GROUP BY rl.bucket_key, rl.order_id, rl.rep_id, rl.region) g "
                "JOIN rebate_line l ON l.id = g.last_id "
                "ORDER BY g.bucket_key, g.order_id, g.last_id", dates=("start", "end"),
                datetimes=())
            rows = conn.execute(query, {**params, "month": month}).cursor.fetchall()
            i, n = 0, len(rows)
            while i < n:  # a (bucket, order)'s rows one after the other, its latest last
                key, oid, rep, region, fen, basis, version, clause = rows[i]
                j = i + 1
                while j < n and rows[j][1] == oid and rows[j][0] == key:
                    j += 1
                if j == i + 1:  # booked to one place (most are)
                    amount = _yuan(int(fen))
                    booked = ((rep, region, amount),)
                else:
                    key, oid, rep, region, fen, basis, version, clause = rows[j - 1]
                    amount = _yuan(sum(int(row[4]) for row in rows[i:j]))
                    booked = tuple((row[2], row[3], _yuan(int(row[4]))) for row in rows[i:j])
                out[(key, oid)] = Paid(amount, _yuan(int(basis)), version, clause, rep, region,
                                       booked=booked)
                i = j
    return out


@dataclass
class MonthInputs:
    """The facts a settlement of `month` reads: touched windows, their order lines as of the
    month's end, the customers' profiles and payment rates."""

    month: str
    first: dt.date
    last: dt.date
    windows: list[Window]
    lines: list  # SaleLine rows, lines summed per order and item class
    line_count: int  # order lines they stand for
    profiles: dict
    rates: object
    rerun: bool


def month_inputs(db_url: str, month: str, book: PolicyBook,
                 customer_ids: set[int] | None = None, *,
                 beside: Callable[[list[Window]], object] | None = None,
                 unpublished: dt.date | None = None, replayed: bool = False,
                 narrow_from: dt.date | None = None) -> MonthInputs:
    """What a settlement of `month` reads, in rows fit for evaluation under `book` (or any
    book with no other rules). `beside(windows)` is called once the lines are read: to start
    a read of the same windows that runs beside what follows. `unpublished`: a draft's start,
    news as a version published since the last run is (`_touched_windows`). `replayed`: the
    month is settled again as if now were its own settlement (a what-if replay of a past
    month): its news is what was recorded since the runs of the months before it, not since
    the latest run (which may be months later). `narrow_from`: `customer_ids` narrows only
    the windows of orders from that date on; an older quarter is read for every customer
    its news names (an old order delivered only now: a board's customers are those of the
    recent orders)."""
    first, last = parse_month(month)
    with session_scope(db_url) as s:
        runs = select(sa.func.max(SettlementRun.as_of))
        last_run = s.exec(runs.where(SettlementRun.month < month) if replayed else runs).one()
        # months nobody settled since the last settled one: their news is this month's
        settled = s.exec(select(sa.func.max(SettlementRun.month)).where(
            SettlementRun.month < month)).one()
        rerun = s.exec(select(SettlementRun.id).where(SettlementRun.month == month)
                       ).first() is not None
        classes = item_classes(book, named_products(s, book))
    with get_engine(db_url).connect() as conn:
        news_from = parse_month(settled)[1] + dt.timedelta(days=1) if settled else None
        windows = _touched_windows(conn, first, last, last_run, news_from, unpublished)
        if customer_ids is not None:
            windows = [w if narrow_from is not None and w.start < narrow_from
                       and w.customer_ids is not None else
                       Window(w.start, w.end, frozenset(customer_ids if w.customer_ids is None
                                                        else w.customer_ids & customer_ids))
                       for w in windows]
            windows = [w for w in windows if w.customer_ids]
        lines, count = summed_sale_lines(conn, windows, last, classes, side_by_side=2)
    if beside is not None:
        beside(windows)
    with session_scope(db_url) as s:
        ids = {ln.customer_id for ln in lines}
        days = [ln.order_date for ln in lines] or [first]
        # each order evaluated with its customer's tier and region on its order date
        profiles = customer_profiles(s, ids, since=min(days))
        rates = payment_rates(s, ids, min(days), max(days))
    return MonthInputs(month, first, last, windows, lines, count, profiles, rates, rerun)


def paid_in_db(db_url: str, windows: list[Window], month: str) -> dict[tuple[str, str], Paid]:
    with get_engine(db_url).connect() as conn:
        return _paid(conn, windows, month)


_RETURNS_CHUNK = 500  # orders per read of the returns behind claw-backs


def _counted_by_latest_lines(conn: sa.Connection, orders: list[str], month: str
                             ) -> dict[tuple[str, str], tuple[dt.date, dt.datetime]]:
    """Per (bucket, order) of `orders` paid up to `month`: what its latest line counted — the
    end of that line's month, and what its settlement knew (`as_of`)."""
    newest = (sa.select(sa.func.max(RebateLine.id))
              .where(RebateLine.order_id.in_(orders), RebateLine.month <= month)
              .group_by(RebateLine.bucket_key, RebateLine.order_id))
    return {(bucket_key, oid): (parse_month(line_month)[1], as_of)
            for bucket_key, oid, line_month, as_of in conn.execute(
                sa.select(RebateLine.bucket_key, RebateLine.order_id, RebateLine.month,
                          SettlementRun.as_of)
                .join(SettlementRun, SettlementRun.id == RebateLine.run_id)
                .where(RebateLine.id.in_(newest)))}


def _rule_takes(book: PolicyBook) -> Callable[[tuple[str, str], int | None],
                                              Callable[[str, str], bool]]:
    """Whether the rule of a (bucket, order) key, in a version, takes a product (sku, product
    line): rule_items, worked out once per rule."""
    takes_of: dict[tuple[str, int, str], Callable[[str, str], bool]] = {}

    def takes(key: tuple[str, str], version: int | None) -> Callable[[str, str], bool]:
        bucket = BucketKey.parse(key[0])
        rule = (bucket.policy_code, version or 0, bucket.rule_id)
        if rule not in takes_of:
            takes_of[rule] = rule_items(book, *rule)
        return takes_of[rule]

    return takes


def returns_behind(db_url: str, month: str, book: PolicyBook) -> ReturnsLookup:
    """settle()'s `returns` for a settlement of `month`: per (bucket, order) whose basis fell,
    the returns and exchanges of its order, of products the rule takes, dated up to the
    month's end and not counted by the (bucket, order)'s latest line: dated after that line's
    month, or recorded after its settlement was computed (a late return, or one corrected
    since). Read only for those orders (a month's claw-backs are few), a chunk of orders at
    a time: the latest lines, then the returns."""
    last = parse_month(month)[1]
    takes = _rule_takes(book)

    def lookup(keys: list[tuple[tuple[str, str], int | None]]
               ) -> dict[tuple[str, str], list[ReturnFact]]:
        orders = sorted({key[1] for key, _ in keys})
        seen: dict[tuple[str, str], tuple[dt.date, dt.datetime]] = {}
        returned: dict[str, list] = defaultdict(list)
        with get_engine(db_url).connect() as conn:
            for start in range(0, len(orders), _RETURNS_CHUNK):
                chunk = orders[start:start + _RETURNS_CHUNK]
                seen.update(_counted_by_latest_lines(conn, chunk, month))
                for oid, number, day, kind, recorded, sku, product_line in conn.execute(
                        sa.select(SalesReturn.order_id, SalesReturn.return_no,
                                  SalesReturn.returned_on, SalesReturn.kind,
                                  SalesReturn.recorded_at, IntentOrderLine.sku,
                                  Product.product_line)
                        .join(IntentOrderLine, sa.and_(
                            IntentOrderLine.order_id == SalesReturn.order_id,
                            IntentOrderLine.line_no == SalesReturn.line_no))
                        .join(Product, Product.sku == IntentOrderLine.sku)
                        .where(SalesReturn.order_id.in_(chunk), SalesReturn.returned_on <= last,
                               SalesReturn.quantity > 0)):
                    returned[oid].append((number, day, kind, recorded, sku, product_line))
        out: dict[tuple[str, str], list[ReturnFact]] = {}
        for key, version in keys:
            rows = returned.get(key[1])
            if not rows:
                continue
            rule_takes = takes(key, version)
            cut, as_of = seen.get(key, (None, None))
            facts = [ReturnFact(number, day, kind)
                     for number, day, kind, recorded, sku, product_line in rows
                     if rule_takes(sku, product_line)
                     and (cut is None or day > cut or recorded > as_of)]
            if facts:
                out[key] = facts
        return out

    return lookup


def _corrected_down(diff: dict) -> bool:
    """A return's logged update that gives back what it had counted: a lower quantity, or a
    later date."""
    quantity, day = diff.get("quantity"), diff.get("returned_on")
    return bool(quantity and (quantity[1] or 0) < (quantity[0] or 0)
                or day and day[0] and day[1] and day[1] > day[0])


def returns_corrected(db_url: str, month: str, book: PolicyBook) -> ReturnsLookup:
    """settle()'s `corrections` for a settlement of `month`: per (bucket, order) whose basis
    rose since its latest line, the returns and exchanges of its order, of products the rule
    takes, that the line counted (dated up to the end of its month) and that were corrected
    down since its settlement was computed — a lower quantity, a later date, or the return
    withdrawn from its re-sent document (the operation log's updates and deletions of
    sales_return: a few, read first; nothing else is read when none is of these orders)."""
    takes = _rule_takes(book)

    def lookup(keys: list[tuple[tuple[str, str], int | None]]
               ) -> dict[tuple[str, str], list[ReturnFact]]:
        asked = {key[1] for key, _ in keys}
        # per order: (number, date counted, kind, when corrected, order line)
        corrected: dict[str, list[tuple[str, dt.date, str, dt.datetime, int]]] = defaultdict(list)
        updated: list[tuple[int, dt.datetime, dict]] = []
        with get_engine(db_url).connect() as conn:
            for at, action, entity_id, changes in conn.execute(
                    sa.select(OperationLog.at, OperationLog.action, OperationLog.entity_id,
                              OperationLog.changes)
                    .where(OperationLog.entity == SalesReturn.__tablename__,
                           OperationLog.action.in_(("update", "delete")))):
                diff = json.loads(changes)
                if action == "delete":
                    old = {k: v[0] for k, v in diff.items()}
                    if old.get("order_id") in asked and old.get("quantity"):
                        corrected[old["order_id"]].append(
                            (old["return_no"], dt.date.fromisoformat(old["returned_on"]),
                             old.get("kind") or "return", at, int(old["line_no"])))
                elif _corrected_down(diff):
                    updated.append((int(entity_id), at, diff))
            for start in range(0, len(updated), _RETURNS_CHUNK):
                chunk = updated[start:start + _RETURNS_CHUNK]
                rows = {rid: (oid, number, day, kind, line_no) for rid, oid, number, day, kind,
                        line_no in conn.execute(
                            sa.select(SalesReturn.id, SalesReturn.order_id, SalesReturn.return_no,
                                      SalesReturn.returned_on, SalesReturn.kind,
                                      SalesReturn.line_no)
                            .where(SalesReturn.id.in_([rid for rid, _, _ in chunk])))}
                for rid, at, diff in chunk:
                    if rid in rows and rows[rid][0] in asked:
                        oid, number, day, kind, line_no = rows[rid]
                        if "returned_on" in diff:  # counted on the date it had then
                            day = dt.date.fromisoformat(diff["returned_on"][0])
                        corrected[oid].append((number, day, kind, at, line_no))
            if not corrected:
                return {}
            orders = sorted(corrected)
            seen: dict[tuple[str, str], tuple[dt.date, dt.datetime]] = {}
            items: dict[tuple[str, int], tuple[str, str]] = {}
            for start in range(0, len(orders), _RETURNS_CHUNK):
                chunk = orders[start:start + _RETURNS_CHUNK]
                seen.update(_counted_by_latest_lines(conn, chunk, month))
                items.update({(oid, line_no): (sku, product_line)
                              for oid, line_no, sku, product_line in conn.execute(
                                  sa.select(IntentOrderLine.order_id, IntentOrderLine.line_no,
                                            IntentOrderLine.sku, Product.product_line)
                                  .join(Product, Product.sku == IntentOrderLine.sku)
                                  .where(IntentOrderLine.order_id.in_(chunk)))})
        out: dict[tuple[str, str], list[ReturnFact]] = {}
        for key, version in keys:
            if key not in seen or key[1] not in corrected:
                continue
            rule_takes = takes(key, version)
            cut, as_of = seen[key]
            facts = [ReturnFact(number, day, kind)
                     for number, day, kind, at, line_no in corrected[key[1]]
                     if at > as_of and day <= cut and (key[1], line_no) in items
                     and rule_takes(*items[(key[1], line_no)])]
            if facts:
                out[key] = facts
        return out

    return lookup


@without_gc
def compute_month(db_url: str, month: str, *, book: PolicyBook | None = None,
                  customer_ids: set[int] | None = None,
                  narrow_from: dt.date | None = None) -> Computation:
    """The lines a settlement of `month` would add now (nothing is stored). `customer_ids`
    narrows it to some customers (a rep's board): from `narrow_from` on, when given
    (`month_inputs`)."""
    month = month_key(month)
    with session_scope(db_url) as s:
        # what it knows: the deliveries, returns, invoices and payments recorded before this
        # (before an import still open, whose rows it cannot see yet, started), read before
        # any fact
        as_of = news_horizon(s.connection(), utcnow())
        stamp, policies, merges = latest_run(s), _latest_policy(s), _merged_files(s)
        if book is None:
            book = policy_book(s)
        names = dict(s.exec(select(Staff.id, Staff.name)).all())  # the explanations name reps
    # what was paid is read on its own connection while the profiles, payment rates and
    # evaluation go on here (the database works without Python's lock, evaluation with it)
    with ThreadPoolExecutor(1) as pool:
        reading: list[Future] = []
        inputs = month_inputs(db_url, month, book, customer_ids, beside=lambda windows: (
            reading.append(pool.submit(paid_in_db, db_url, windows, month))),
            narrow_from=narrow_from)
        dues = evaluate(inputs.lines, book, inputs.profiles, inputs.rates)
        paid = reading[0].result()
    # paid orders the rules no longer take: returned, or a condition they no longer meet
    gone = not_applied({k: p for k, p in paid.items() if k not in dues}, inputs.lines, book,
                       inputs.profiles, inputs.rates)
    # the claw-backs' explanations name the returns behind them, read once the lines are known
    drafts = settle(dues, paid, rerun=inputs.rerun, gone=gone, rep_names=names,
                    returns=returns_behind(db_url, month, book),
                    corrections=returns_corrected(db_url, month, book))
    return Computation(month, as_of, inputs.rerun, drafts, book, inputs.windows,
                       inputs.line_count, stamp, policies, merges)


# --- storing --------------------------------------------------------------------------------

class SettlementConflict(SettlementError):
    """Another settlement was stored after this one read what had been paid, a policy
    version was published after it read the policies, or customer files were merged after
    it read the lines."""

    status, code = 409, "settlement_conflict"


def latest_run(s: Session) -> int | None:
    """The id of the latest settlement run stored (None: none yet)."""
    return s.exec(select(sa.func.max(SettlementRun.id))).one()


def _latest_policy(s: Session) -> int | None:
    return s.exec(select(sa.func.max(RebatePolicyVersion.id))).one()


def _merged_files(s: Session) -> int:
    """How many customer files are merged into another (a merge is never undone)."""
    return s.exec(select(sa.func.count()).select_from(Customer).where(
        Customer.merged_into_id.is_not(None))).one()


def refuse_unsettleable(s: Session, month: str) -> None:
    """A month is settled once it is over (Asia/Shanghai), and never after a later month:
    what changes afterwards, late returns included, goes into the latest month's re-run or
    the next month's settlement, so that nothing is paid or clawed back twice."""
    today = business_date()
    if parse_month(month)[1] >= today:
        raise SettlementError(f"{month} 尚未结束（今天是 {today}），月份结束后才能结算",
                              status=409, code="month_not_over")
    later = s.exec(select(sa.func.max(SettlementRun.month)).where(
        SettlementRun.month > month)).one()
    if later:
        raise SettlementError(f"{later} 已经结算，不能再结算更早的 {month}；此后的变动（含迟到的"
                              f"退货）计入 {later} 的重新结算或下月结算", status=409,
                              code="later_month_settled")


@without_gc
def store_settlement(db_url: str, comp: Computation, actor: str,
                     flow_run_id: str | None = None) -> int | None:
    """One transaction: a new revision with the computed lines. None when there is nothing
    new for a month that was already settled (the re-run changes nothing). Settlements are
    stored one at a time; SettlementConflict when another one was stored after `comp` read
    what had been paid, or a policy version was published after it read the book (compute
    again: the version may govern orders of the month, and its publisher was not warned that
    the month is settled), or a customer file was merged after it read the lines (they would
    be stored under the merged file while the merge moved what was paid to the survivor)."""
    with session_scope(db_url) as s:
        lock_settlements(s)
        refuse_unsettleable(s, comp.month)
        if latest_run(s) != comp.stamp:
            raise SettlementConflict(f"计算 {comp.month} 结算期间另有结算写入，请重新结算")
        if _latest_policy(s) != comp.policies:
            raise SettlementConflict(f"计算 {comp.month} 结算期间有新的返利政策版本发布，请重新结算")
        if _merged_files(s) != comp.merges:
            raise SettlementConflict(f"计算 {comp.month} 结算期间有客户档案合并，已付返利已转入合并后的"
                                     "客户档案，请重新结算")
        revisions = s.exec(select(SettlementRun.revision).where(
            SettlementRun.month == comp.month)).all()
        if revisions and not comp.drafts:
            return None
        run = SettlementRun(month=comp.month, revision=max(revisions, default=0) + 1,
                            kind="adjustment" if revisions else "initial", as_of=comp.as_of,
                            line_count=len(comp.drafts),
                            total_amount=sum((d.amount for d in comp.drafts), Decimal("0.00")),
                            created_by=actor, flow_run_id=flow_run_id)
        s.add(run)
        record_create(s, run, actor)
        _insert_lines(s.connection(), run.id, comp)
        return run.id


_LINE_COLUMNS = ("run_id", "month", "order_id", "customer_id", "booked_customer_id", "rep_id",
                 "region", "policy_code", "policy_version", "rule_id", "clause", "period",
                 "bucket_key", "basis_amount", "due_amount", "amount", "rate", "kind",
                 "explanation", "inputs")


def _insert_lines(conn: sa.Connection, run_id: int, comp: Computation) -> None:
    """The revision's lines, and their buckets' shared inputs once per (bucket, version), each
    in one executemany on the driver: tens of thousands of rows, where per-row parameter
    processing would cost more than the settlement itself. Money goes in as its exact decimal
    text (SQLite's NUMERIC affinity stores the number)."""
    if not comp.drafts:
        return
    # the new lines' entries go all over rebate_line's indexes: room for the pages they dirty
    roomy_page_cache(conn, 64 * 1024)
    qmark = conn.dialect.paramstyle == "qmark"
    money = str if qmark else (lambda d: d)  # sqlite3 has no Decimal adapter; psycopg has

    def insert(table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        marks = ", ".join(["?" if qmark else "%s"] * len(columns))
        conn.connection.driver_connection.cursor().executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    shared: dict[tuple[str, int], str] = {}
    for d in comp.drafts:
        key = (d.bucket_key, d.policy_version or 0)
        if key not in shared and d.bucket_inputs:
            shared[key] = d.shared_json()
    insert("rebate_bucket_inputs", ("run_id", "bucket_key", "policy_version", "inputs"),
           [(run_id, key, version, text) for (key, version), text in shared.items()])
    insert("rebate_line", _LINE_COLUMNS, [
        # booked to the customer it is computed for (booked_customer_id: no merge moves it)
        (run_id, comp.month, d.order_id, d.customer_id, d.customer_id, d.rep_id, d.region,
         d.policy_code, d.policy_version or 0, d.rule_id, d.clause[:120], d.period, d.bucket_key,
         money(d.basis), money(d.due), money(d.amount), money(d.rate), d.kind,
         d.explanation, d.own_json()) for d in comp.drafts])


def line_inputs(s: Session, lines: Sequence[RebateLine]) -> list[dict]:
    """Everything each stored line was computed from: its bucket's shared inputs with its own
    on top (a line stored before rebate_bucket_inputs existed carries both itself)."""
    runs = {ln.run_id for ln in lines}
    shared: dict[tuple[int, str, int], str] = {
        (r, key, version): text for r, key, version, text in s.exec(select(
            RebateBucketInputs.run_id, RebateBucketInputs.bucket_key,
            RebateBucketInputs.policy_version, RebateBucketInputs.inputs).where(
            RebateBucketInputs.run_id.in_(runs)))} if runs else {}
    decoded: dict[tuple[int, str, int], dict] = {}
    out = []
    for ln in lines:
        key = (ln.run_id, ln.bucket_key, ln.policy_version)
        bucket = decoded.get(key)
        if bucket is None:
            bucket = decoded[key] = json.loads(shared[key]) if key in shared else {}
        out.append({**bucket, **json.loads(ln.inputs)})
    return out


# --- vouchers, statements, workbook ---------------------------------------------------------

def _customer_code(customer_id: int, finance_code: str | None = None) -> str:
    """The customer's code in finance's books; the hub's own number until one is on file."""
    return finance_code or f"C{customer_id:06d}"


# a draft's statement number says it is one; the statement issued on confirmation has a number
# of its own (RSQ: 确认), so a customer holding both, or finance's archive, never has two
# different documents under one number
DRAFT_SUFFIX = "-草稿"


def statement_number(month: str, revision: int, customer_id: int, status: str) -> str:
    """The 对账单号 of a customer's statement of a revision, as draft or as confirmed: always
    the same for the same statement (a document written again keeps its number)."""
    base = f"{month.replace('-', '')}-r{revision}-{_customer_code(customer_id)}"
    return f"RSQ-{base}" if status == "confirmed" else f"RS-{base}{DRAFT_SUFFIX}"


def batch_id_of(run: SettlementRun) -> str:
    """The id of a revision's voucher batch (its idempotency key at finance)."""
    return run.voucher_batch_id or f"RB-{run.month}-r{run.revision}"


def _voucher_key(batch_id: str, customer_id: int) -> str:
    """A customer's voucher in a batch: RB-2026-10-r1-C000123 (the hub's number, which never
    changes, not the finance code)."""
    return f"{batch_id}-{_customer_code(customer_id)}"


def _customer_nets(s: Session, run_id: int, match: sa.ColumnElement | None = None,
                   offset: int = 0, limit: int | None = None) -> list[tuple[int, int]]:
    """(customer id, net in fen) of a revision's lines, by the customer they were booked to
    (a merge since moves none of them): one voucher each where the net is not zero. `match`
    (on Customer) narrows them, `offset` and `limit` page them in that order."""
    return s.exec(_revision_lines(select(RebateLine.booked_customer_id,
                                         sum_fen(RebateLine.amount)), run_id, match)
                  .group_by(RebateLine.booked_customer_id)
                  .order_by(RebateLine.booked_customer_id)
                  .offset(offset).limit(limit)).all()


def _revision_lines(query, run_id: int, match: sa.ColumnElement | None):
    """`query` over a revision's lines, of the customers `match` (on Customer, the file
    each line was booked to) picks."""
    query = query.select_from(RebateLine).where(RebateLine.run_id == run_id)
    if match is None:
        return query
    return query.join(Customer, Customer.id == RebateLine.booked_customer_id).where(match)


def voucher_batch(hub: Hub, run_id: int) -> VoucherBatch | None:
    """One balanced voucher per customer with a non-zero net: expense against payable
    (reversed for a net claw-back)."""
    st = hub.settings
    with session_scope(hub.db_url) as s:
        run = s.get(SettlementRun, run_id)
        nets = _customer_nets(s, run_id)
        customers = customer_profiles(s, (cid for cid, _ in nets))
        codes = dict(s.exec(select(Customer.id, Customer.finance_code).where(
            Customer.finance_code.is_not(None))).all())
        _refuse_borrowed_codes(s, run, nets, codes)
    first, last = parse_month(run.month)
    # a month's first settlement is booked at its end; a correction made once the month is
    # over, in the period it is made (the settled month's is normally closed by then)
    booked = last if run.kind == "initial" else max(last, business_date(run.created_at))
    batch_id = batch_id_of(run)
    vouchers = []
    for cid, fen in nets:
        net = fen_to_yuan(int(fen))
        if net == 0:
            continue
        name = customers[cid].legal_name
        what = "返利结算" if net > 0 else "返利冲回"
        if run.kind != "initial":
            what += f"更正（第{run.revision}版）"
        summary = f"{first.year}年{first.month}月{what} {name}"
        amount = abs(net)
        by_customer = dict(customer_code=_customer_code(cid, codes.get(cid)),
                           customer_name=name)
        expense = VoucherEntry(summary, st.rebate_expense_account, st.rebate_expense_account_name,
                               debit=amount if net > 0 else Decimal("0.00"),
                               credit=Decimal("0.00") if net > 0 else amount,
                               **(by_customer if st.rebate_expense_by_customer else {}))
        payable = VoucherEntry(summary, st.rebate_payable_account, st.rebate_payable_account_name,
                               debit=Decimal("0.00") if net > 0 else amount,
                               credit=amount if net > 0 else Decimal("0.00"), **by_customer)
        vouchers.append(VoucherDraft(voucher_key=_voucher_key(batch_id, cid),
                                     voucher_date=booked, period=f"{booked:%Y-%m}", word="记",
                                     # debit first; the statement is its attachment
                                     entries=(expense, payable) if net > 0 else (payable, expense),
                                     prepared_by="销售运营中台", attachments=1))
    if not vouchers:
        return None
    return VoucherBatch(batch_id=batch_id, period=f"{booked:%Y-%m}", vouchers=tuple(vouchers),
                        note=f"{run.month} 返利结算第 {run.revision} 版，{len(vouchers)} 张凭证草稿")


def _refuse_borrowed_codes(s: Session, run: SettlementRun, nets, codes: dict[int, str]) -> None:
    """VouchersHeld when a customer without a finance code would be booked under the hub's
    number (C000004) and that number is another customer's finance code: its rebate would
    land on that customer's account. Nothing is prepared; filling in the code lets the next
    run send the batch."""
    holders: dict[str, int] = {}
    for cid, code in sorted(codes.items()):
        holders.setdefault(code, cid)
    clashes = [(cid, holders[_customer_code(cid)]) for cid, fen in nets
               if fen and cid not in codes and _customer_code(cid) in holders]
    if not clashes:
        return
    said = "；".join(f"{s.get(Customer, cid).legal_name}未设财务客户编码，其系统编号 "
                     f"{_customer_code(cid)} 恰是{s.get(Customer, other).legal_name}的财务客户编码"
                     for cid, other in clashes)
    raise VouchersHeld(f"{run.month} 第 {run.revision} 版凭证草稿暂不提交财务：{said}，凭证会记入"
                       "后者的往来账户。请在客户档案中补齐前者的“财务客户编码”（客户导入的“财务客户编码”"
                       f"列）后执行 salesops settle --month {run.month}")


def number_vouchers(db_url: str, batch: VoucherBatch) -> VoucherBatch:
    """The batch with the 凭证号 of its vouchers (models.vouchers): continuing after the highest
    issued in their (凭证字, period), or those issued to it before. Issued one batch at a time,
    under the settlements' lock."""
    with session_scope(db_url) as s:
        lock_settlements(s)
        numbers = issue_voucher_numbers(s, batch.batch_id, [
            (v.voucher_key, v.word, v.period) for v in batch.vouchers], ACTOR)
    return dataclasses.replace(batch, vouchers=tuple(
        dataclasses.replace(v, number=numbers[v.voucher_key]) for v in batch.vouchers))


@without_gc
def send_vouchers(hub: Hub, run_id: int) -> str | None:
    """Voucher drafts to finance, once per (month, revision)."""
    with session_scope(hub.db_url) as s:
        batch_id = batch_id_of(s.get(SettlementRun, run_id))
    # the content under a batch id is fixed when it is first prepared: a retry after a lost
    # answer sends exactly that (finance refuses a batch id with other content), whatever
    # changed since (a customer's finance code filled in, the day of a correction's voucher);
    # a batch is made, and checked (VouchersHeld), only until then
    batch = None
    if effect_result(hub.db_url, "rebate_voucher_batch", batch_id) is None:
        batch = voucher_batch(hub, run_id)
        if batch is None:
            return None
    made_now: list[VoucherBatch] = []

    def prepare() -> dict:
        # the 凭证号 are issued with the content: fixed from here on, as the content is
        made_now.append(number_vouchers(hub.db_url, batch))
        return made_now[0].to_json_dict()

    # both under a claim on the batch: a second run (or press of 重新发送) coming while the
    # first prepares or sends is told EffectInProgress, and submits nothing
    prepared = once(hub.db_url, "rebate_voucher_batch", batch_id, prepare, exclusive=True)
    # prepared by an earlier attempt: that content, not today's batch
    batch = made_now[0] if made_now else VoucherBatch.from_json_dict(prepared)
    # the batch as sent is kept with the reference: documents written later show it as it was
    def submit() -> dict:
        try:
            reference = hub.finance.submit_vouchers(batch)
        except VouchersRefused:
            raise
        except PermanentError as exc:  # said in the words of the people who read it
            raise VouchersRefused(batch.batch_id, exc) from exc
        return {"reference": reference, "batch": prepared}

    result = once(hub.db_url, "rebate_vouchers", batch.batch_id, submit, exclusive=True)
    with session_scope(hub.db_url) as s:
        run = s.get(SettlementRun, run_id)
        apply_changes(s, run, ACTOR, voucher_batch_id=batch.batch_id,
                      voucher_ref=result["reference"])
    return result["reference"]


def _run_lines(s: Session, run_id: int):
    """A revision's (line, customer) rows: the customer the line was booked to (its
    statement's and voucher's), even if merged into another file since."""
    return s.exec(select(RebateLine, Customer)
                  .join(Customer, Customer.id == RebateLine.booked_customer_id)
                  .where(RebateLine.run_id == run_id)
                  .order_by(RebateLine.booked_customer_id, RebateLine.order_id,
                            RebateLine.id)).all()


def _policies(book: PolicyBook, lines) -> tuple[StatementPolicy, ...]:
    used = sorted({(ln.policy_code, ln.policy_version) for ln in lines})
    out = []
    for code, version in used:
        published: PublishedVersion | None = book.version(code, version)
        if published is None:
            continue
        window = next((w for w in book.windows(code) if w.version == version), None)
        # a version governing no date: a later one took its place from its first day
        replaced = (book.version_on(code, published.spec.effective_from)
                    if window is None else None)
        out.append(StatementPolicy(code=code, version=version, name=published.spec.name,
                                   effective_from=window.start if window else
                                   published.spec.effective_from,
                                   effective_to=window.end if window else
                                   published.spec.effective_to, clauses=(),
                                   replaced_by=replaced.version if replaced else None))
    return tuple(out)


def _plain(line: RebateLine, inputs: dict) -> bool:
    """A line whose row tells it all: a first payment of the order's whole due at the policy's
    one rate (basis × 返利比例). Without one (a marginal order across a tier bound, a cap
    share) the row shows the effective rate marked *, which does not give the amount by
    hand: the explanation's bands or cap share do. Not a first payment: one after all was
    taken back (an exchange's replacement delivered), whose inputs say what was paid on
    before (`basis_before`)."""
    return (line.kind == "rebate" and policy_rate(inputs) is not None
            and "basis_before" not in inputs
            and Decimal(str(line.amount)) == Decimal(str(line.due_amount)))


def _statement_rows(lines, inputs: dict) -> list[tuple[RebateLine, Decimal, str]]:
    """(line, amount, explanation) per row of the customer's statement. Money taken back is
    booked where it was paid, one line per rep and region (`part_of`): that split is
    finance's booking, not the customer's business, so its parts are one row for the order
    and rule, with the amount taken back and the explanation without the split."""
    rows: list[list] = []
    parts: dict[tuple, list] = {}
    for ln in lines:
        amount = Decimal(str(ln.amount))
        if "part_of" not in inputs[ln.id]:
            rows.append([ln, amount, ln.explanation])
            continue
        key = (ln.order_id, ln.policy_code, ln.policy_version, ln.rule_id, ln.period, ln.kind)
        if key in parts:
            parts[key][1] += amount
            continue
        head = ln.explanation.find(f"{KIND_LABELS[ln.kind]}：应返 ")
        parts[key] = row = [ln, amount, ln.explanation[head:] if head > 0 else ln.explanation]
        rows.append(row)
    return [tuple(row) for row in rows]


def write_documents(hub: Hub, run_id: int) -> dict:
    """The customers' statement PDFs (对账单) and finance's detail workbook of a revision."""
    st = hub.settings
    with session_scope(hub.db_url) as s:
        run = s.get(SettlementRun, run_id)
        rows = _run_lines(s, run_id)
        inputs = dict(zip((ln.id for ln, _ in rows), line_inputs(s, [ln for ln, _ in rows])))
        # the versions as they stood when the revision was stored (a version published since
        # may shorten the window of one the lines were settled under: not this revision's)
        book = PolicyBook([v for v in policy_book(s).versions if v.published_at <= run.created_at])
        staff_names = {p.id: p.name for p in s.exec(select(Staff))}
        # a correction states what the month's earlier revisions settled for each customer
        before = {cid: fen_to_yuan(int(fen)) for cid, fen in s.exec(
            select(RebateLine.booked_customer_id, sum_fen(RebateLine.amount))
            .join(SettlementRun, SettlementRun.id == RebateLine.run_id)
            .where(SettlementRun.month == run.month, SettlementRun.revision < run.revision)
            .group_by(RebateLine.booked_customer_id))} if run.revision > 1 else None
        orders = {ln.order_id for ln, _ in rows}
        order_dates = {o.id: o.order_date for o in s.exec(select(IntentOrder).where(
            IntentOrder.id.in_(orders)))} if rows else {}
        order_items: dict[str, set[tuple[str, str]]] = defaultdict(set)  # (sku, line)
        for oid, sku, pl in s.exec(select(IntentOrderLine.order_id, Product.sku,
                                          Product.product_line).join(
                Product, Product.sku == IntentOrderLine.sku).where(
                IntentOrderLine.order_id.in_(orders))) if rows else ():
            order_items[oid].add((sku, pl))
    takes: dict[tuple[str, int, str], Callable[[str, str], bool]] = {}

    def product_lines(ln: RebateLine) -> str | None:
        """The product lines of the order that the line's rule counted."""
        key = (ln.policy_code, ln.policy_version, ln.rule_id)
        if key not in takes:
            takes[key] = rule_items(book, *key)
        return "、".join(sorted({pl for sku, pl in order_items[ln.order_id]
                                if takes[key](sku, pl)})) or None
    status = run.status
    # confirmed: the same documents again, as confirmed, beside the drafts
    folder = st.path("settlements", run.month,
                     f"r{run.revision}" + ("-confirmed" if status == "confirmed" else ""))
    confirmed_on = business_date(run.confirmed_at) if run.confirmed_at else None
    # a draft is issued the day the settlement ran; the statements customers get once finance
    # confirmed are issued (出具日期, the seller's date) on the confirmation date
    issued_on = (confirmed_on if status == "confirmed" and confirmed_on
                 else business_date(run.created_at))
    by_customer: dict[int, list] = defaultdict(list)
    for line, customer in rows:
        by_customer[customer.id].append((line, customer))
    # each customer's code as the revision's voucher carried it (the batch is fixed when first
    # prepared: a merge or a code filled in since changes neither it nor these documents)
    vouchers = _vouchers_of(hub, run_id)
    sent = _codes_in(vouchers, batch_id_of(run))
    codes = {cid: sent.get(cid) or _customer_code(cid, items[0][1].finance_code)
             for cid, items in by_customer.items()}
    statements: list[tuple[StatementDocument, Path]] = []
    numbers: dict[int, str] = {}
    for cid, items in by_customer.items():
        customer = items[0][1]
        lines = [ln for ln, _ in items]
        doc = StatementDocument(
            statement_no=statement_number(run.month, run.revision, cid, status),
            month=run.month, revision=run.revision, status=status, confirmed_on=confirmed_on,
            settled_before=before.get(cid, Decimal("0.00")) if before is not None else None,
            issued_on=issued_on, seller_name=st.seller_name,
            seller_uscc=st.seller_uscc, seller_address=st.seller_address,
            seller_phone=st.seller_phone, customer_legal_name=customer.legal_name,
            customer_uscc=customer.uscc,
            customer_code=codes[cid],
            region=customer.region, rep_name=staff_names.get(customer.owner_rep_id),
            lines=tuple(StatementLine(
                order_id=ln.order_id, order_date=order_dates.get(ln.order_id),
                product_line=product_lines(ln),
                policy_code=ln.policy_code,
                policy_version=ln.policy_version, clause=ln.clause,
                basis_amount=Decimal(str(ln.basis_amount)), rate=Decimal(str(ln.rate)),
                amount=amount, kind=ln.kind,
                # a plain first payment reads from its row (basis × rate, clause); the others
                # (tier differences, claw-backs, corrections, and a rebate paying the rest of
                # an order delivered in parts: its row's basis × rate is more than it pays)
                # print why — it also keeps a month of thousands of lines to minutes of layout
                explanation="" if _plain(ln, inputs[ln.id]) else explanation,
                rule_name=inputs[ln.id].get("rule_name", ln.rule_id),
                period=ln.period, due_amount=Decimal(str(ln.due_amount)),
                policy_rate=policy_rate(inputs[ln.id]))
                for ln, amount, explanation in _statement_rows(lines, inputs)),
            policies=_policies(book, lines))
        statements.append((doc, folder / f"{doc.statement_no}.pdf"))
        numbers[cid] = doc.statement_no
    render_statements(statements)
    report = SettlementReport(
        month=run.month, revision=run.revision, status=status, as_of=run.as_of,
        batch_id=run.voucher_batch_id, vouchers=vouchers,
        confirmed_on=confirmed_on, confirmed_by=(
            f"{staff_names.get(run.confirmed_by, run.confirmed_by)}（{run.confirmed_by}）"
            if run.confirmed_by else None),
        lines=tuple(SettlementDetailLine(
            month=ln.month, revision=run.revision, order_id=ln.order_id,
            order_date=order_dates.get(ln.order_id), customer_name=c.legal_name,
            customer_code=codes[c.id], customer_id=c.id, customer_uscc=c.uscc,
            region=ln.region,
            rep_name=staff_names.get(ln.rep_id, ln.rep_id), rep_id=ln.rep_id,
            policy_code=ln.policy_code,
            policy_version=ln.policy_version, clause=ln.clause, period=ln.period,
            basis_amount=Decimal(str(ln.basis_amount)), rate=Decimal(str(ln.rate)),
            due_amount=Decimal(str(ln.due_amount)), amount=Decimal(str(ln.amount)),
            kind=ln.kind, explanation=ln.explanation,
            policy_rate=policy_rate(inputs[ln.id])) for ln, c in rows),
        statement_numbers=numbers)
    workbook = folder / f"返利结算明细-{run.month}-r{run.revision}.xlsx"
    save_settlement_workbook(report, workbook)
    return {"statements": [str(path) for _, path in statements], "workbook": str(workbook)}


def render_statements(jobs: list[tuple[StatementDocument, Path]]) -> None:
    """PDF layout is CPU work, a few milliseconds per line: a month of thousands of customers
    is spread over the machine's cores."""
    workers = min(os.cpu_count() or 1, 8)
    if len(jobs) < 20 or workers < 2:
        for doc, path in jobs:
            render_statement_pdf(doc, path)
        return
    # big customers first, so no core is left with the longest statement at the end; fresh
    # worker processes ("spawn"): forking a process that runs threads can inherit held locks
    jobs = sorted(jobs, key=lambda job: -len(job[0].lines))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(render_statement_pdf, [d for d, _ in jobs], [p for _, p in jobs],
                      chunksize=4))


def _vouchers_of(hub: Hub, run_id: int) -> tuple:
    """The revision's vouchers as they were sent to finance, with their 凭证号 (as they would
    be, before they are prepared: without 凭证号, none is issued yet)."""
    with session_scope(hub.db_url) as s:
        batch_id = batch_id_of(s.get(SettlementRun, run_id))
    prepared = _prepared_batch(hub.db_url, batch_id)
    if prepared:
        return VoucherBatch.from_json_dict(prepared).numbered()
    batch = voucher_batch(hub, run_id)
    return batch.vouchers if batch else ()


def _prepared_batch(db_url: str, batch_id: str) -> dict | None:
    """The revision's voucher batch as first prepared (and sent), fixed from then on; None
    before it is prepared."""
    sent = effect_result(db_url, "rebate_vouchers", batch_id)
    return (sent["batch"] if sent and "batch" in sent
            else effect_result(db_url, "rebate_voucher_batch", batch_id))


def _codes_in(vouchers, batch_id: str) -> dict[int, str]:
    """{customer id: the customer code its voucher carries} of a batch's vouchers."""
    out = {}
    for v in vouchers:
        hub_code = _HUB_CODE.fullmatch(v.voucher_key.removeprefix(f"{batch_id}-"))
        code = next((e.customer_code for e in v.entries if e.customer_code), None)
        if hub_code and code:
            out[int(hub_code[1])] = code
    return out


def carried_codes(db_url: str, run: SettlementRun) -> dict[int, str]:
    """Each customer's code as the revision's voucher batch carries it (empty before the
    batch is prepared): a merge or a code filled in since changes neither the batch nor what
    finance's status shows and finds of it."""
    batch_id = batch_id_of(run)
    prepared = _prepared_batch(db_url, batch_id)
    return _codes_in(VoucherBatch.from_json_dict(prepared).vouchers, batch_id) if prepared else {}


# --- the whole month --------------------------------------------------------------------------

@dataclass
class SettlementResult:
    month: str
    run_id: int | None
    revision: int | None
    kind: str | None
    lines: int
    total: Decimal
    by_kind: dict[str, str] = field(default_factory=dict)
    by_region: dict[str, str] = field(default_factory=dict)
    by_rep: dict[str, str] = field(default_factory=dict)
    by_customer: dict[str, str] = field(default_factory=dict)
    voucher_ref: str | None = None
    documents: dict = field(default_factory=dict)
    message: str = ""
    # the month's latest revision when nothing new was stored (`revision` is then None: no
    # revision is this run's, and lines and total are 0)
    latest_revision: int | None = None
    # names of the reps `by_rep` keys by staff id ("" for lines without a rep)
    rep_names: dict[str, str] = field(default_factory=dict)
    # legal names of the customers `by_customer` keys by customer id (the file a line was
    # booked to): a name changes with a rename, the id does not
    customer_names: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in self.__dict__.items()}


def breakdowns(result: dict) -> list[tuple[str, dict[str, str]]]:
    """A settlement result's totals (`SettlementResult.as_dict`) as people read them: by kind
    (its Chinese label), region, rep (his name) and customer (its legal name). The result
    keys kinds by code, reps by staff id and customers by id, as scripts reading `--json`
    need them."""
    reps, customers = result.get("rep_names", {}), result.get("customer_names", {})
    return [("类型", {KIND_LABELS.get(k, k): v for k, v in result["by_kind"].items()}),
            ("大区", result["by_region"]),
            ("销售", {reps.get(k, k or "（未分配）"): v for k, v in result["by_rep"].items()}),
            ("客户", {customers.get(k, k): v for k, v in result["by_customer"].items()})]


def summarize(db_url: str, month: str, run_id: int | None,
              finished_only: bool = False) -> SettlementResult:
    """Totals of a revision by kind, region, rep and customer: sums of its lines.
    `finished_only`: the revision was stored by an earlier run and only finished now."""
    if run_id is None:
        with session_scope(db_url) as s:
            run = s.exec(select(SettlementRun).where(SettlementRun.month == month)
                         .order_by(SettlementRun.revision.desc())).first()
        # the month settled (not "this month": the clerk runs last month's on the 5th)
        kept = f"（仍为第 {run.revision} 版）" if run else ""
        return SettlementResult(month, None, None, None, 0, Decimal("0.00"),
                                message=f"无新增变动：{month} 的结算结果不变{kept}，未生成新版本或凭证",
                                latest_revision=run.revision if run else None)
    with session_scope(db_url) as s:
        run = s.get(SettlementRun, run_id)
        rows = _run_lines(s, run_id)
        names = {p.id: p.name for p in s.exec(select(Staff))}
    # two reps of one name stay apart: 王芳（rep-wangfang2）
    shared = {n for n in names.values() if list(names.values()).count(n) > 1}
    names = {pid: f"{n}（{pid}）" if n in shared else n for pid, n in names.items()}

    def total(key, order=None) -> dict[str, str]:
        sums: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
        for line, customer in rows:
            sums[key(line, customer)] += Decimal(str(line.amount))
        return {k: str(sums[k]) for k in sorted(sums, key=order)}

    kinds = list(KIND_LABELS)  # rebate, tier_difference, clawback, adjustment: as finance reads them
    customer_names = {str(c.id): c.legal_name for _, c in rows}

    return SettlementResult(
        month, run.id, run.revision, run.kind, len(rows), Decimal(str(run.total_amount)),
        by_kind=total(lambda ln, c: ln.kind, order=kinds.index),
        by_region=total(lambda ln, c: ln.region or "（未分配）"),
        by_rep=total(lambda ln, c: ln.rep_id or ""),
        rep_names={ln.rep_id: names.get(ln.rep_id, ln.rep_id) for ln, _ in rows if ln.rep_id},
        by_customer=total(lambda ln, c: str(c.id), order=lambda k: customer_names[k]),
        customer_names=customer_names, voucher_ref=run.voucher_ref,
        message=f"{month} 返利结算第 {run.revision} 版"
        + ("（此前已保存，本次补齐凭证草稿与对账单）" if finished_only else "")
        + f"：{len(rows)} 行，合计 {yuan(run.total_amount)}" + _no_vouchers(rows)
        + _missing_codes(rows, carried_codes(db_url, run)))


def _no_vouchers(rows) -> str:
    """A revision whose every customer nets to zero sends finance nothing: say so, or finance
    waits for a voucher batch (the CLI names one when there is)."""
    nets: dict[int, int] = defaultdict(int)
    for line, customer in rows:
        nets[customer.id] += round(Decimal(str(line.amount)) * 100)
    if not rows or any(nets.values()):
        return ""
    return "；各客户本版净额均为零，不生成凭证草稿"


def _missing_codes(rows, carried: Mapping[int, str]) -> str:
    """What finance must do with the vouchers: customers of a voucher (a non-zero net in the
    revision's (line, customer) rows) whose voucher carries the hub's code — as the batch
    was first prepared (`carried`, see carried_codes; a code filled in later changes later
    batches), before that as the files stand."""
    nets: dict[int, int] = defaultdict(int)
    for line, customer in rows:
        nets[customer.id] += round(Decimal(str(line.amount)) * 100)
    missing = sorted({c.legal_name for _, c in rows if nets[c.id] and (
        carried.get(c.id) == _customer_code(c.id) if carried else not c.finance_code)})
    if not missing:
        return ""
    shown = "、".join(missing[:5]) + (f"等 {len(missing)} 位客户" if len(missing) > 5 else "")
    # the batch is fixed once prepared: a code filled in later changes the next batches only
    return (f"；{shown}未设财务客户编码，本批凭证的客户核算维度为系统编号（C 开头），请在财务系统中"
            "对应到客户（补齐档案不会改变已生成的凭证）；在客户档案中补齐“财务客户编码”（客户导入"
            "的“财务客户编码”列）后，以后的凭证使用该编码")


def unfinished_revisions(db_url: str, month: str | None) -> list[int]:
    """Revisions of the month (None: of every month, by month) with lines whose vouchers or
    documents are not out yet (a run stopped between storing and sending): the next run
    finishes them. The documents are written once the vouchers are sent (`finish_revision`),
    so they tell both; a revision whose customers all net to zero has no voucher to send and
    no reference, yet is done."""
    with session_scope(db_url) as s:
        query = select(SettlementRun).where(SettlementRun.line_count > 0)
        if month is not None:
            query = query.where(SettlementRun.month == month)
        runs = s.exec(query.order_by(SettlementRun.month, SettlementRun.revision)).all()
    return [r.id for r in runs
            if effect_result(db_url, "settlement_documents", _documents_key(r)) is None]


def finish_elsewhere(hub: Hub, month: str, documents: bool = True,
                     pending: list[int] | None = None) -> dict[int, str | None]:
    """The revisions of months other than `month` that a run stored and did not finish (it
    crashed, or failed and nobody ran it again), finished now, as their own month's run
    would (one batch per month and revision: nothing goes out twice), so that a crashed
    month's vouchers do not wait for someone to notice. {revision id: None when finished,
    else why not (as kept on the revision, `delivery_error`)}; one being finished by another
    run right now is left to it. `pending`: the unfinished revisions of every month, when the
    caller listed them already."""
    outcome: dict[int, str | None] = {}
    for rid in unfinished_revisions(hub.db_url, None) if pending is None else pending:
        with session_scope(hub.db_url) as s:
            if s.get(SettlementRun, rid).month == month:
                continue
        try:
            finish_revision(hub, rid, documents)
            outcome[rid] = None
        except EffectInProgress:
            pass  # another run is sending it: its outcome counts
        except TransientError:
            outcome[rid] = _delivery_error(hub.db_url, rid)
        except Exception:  # noqa: BLE001 - said in the result; this month's run is done
            log.exception("settlement run %s: not finished", rid)
            outcome[rid] = _delivery_error(hub.db_url, rid)
    return outcome


def _delivery_error(db_url: str, run_id: int) -> str:
    with session_scope(db_url) as s:
        return s.get(SettlementRun, run_id).delivery_error or "原因未知"


def delivered(db_url: str, run_id: int) -> tuple[str | None, bool]:
    """What of a revision is out: finance's reference of its vouchers, its documents written."""
    with session_scope(db_url) as s:
        run = s.get(SettlementRun, run_id)
        return run.voucher_ref, effect_result(db_url, "settlement_documents",
                                              _documents_key(run)) is not None


def also_finished(db_url: str, shown: int | None, before: dict[int, tuple[str | None, bool]],
                  errors: dict[int, str | None]) -> str:
    """What the result adds about revisions other than the one it shows (`before`: those
    not finished when the run began, with what of them was out): what this run sent or wrote
    of them (stored by an earlier run that stopped), and those it could not finish (`errors`:
    why), a sentence each."""
    done, left = [], []
    with session_scope(db_url) as s:
        for rid, (ref, written) in before.items():
            run = s.get(SettlementRun, rid)
            if rid == shown or run is None:
                continue
            what = (f"{run.month} 第 {run.revision} 版（{run.line_count} 行，合计 "
                    f"{yuan(run.total_amount)}）")
            if errors.get(rid):
                left.append(f"{what}：{errors[rid]}，排除故障后执行 salesops settle --month "
                            f"{run.month}")
                continue
            ref_now, written_now = delivered(db_url, rid)
            now = ([f"凭证草稿 {ref_now}"] if ref_now and not ref else []) + (
                ["对账单与明细"] if written_now and not written else [])
            if now:
                done.append(f"{what}：{'、'.join(now)}")
    return ((f"。此前已保存、本次补齐的版本：{'；'.join(done)}" if done else "")
            + (f"。此前已保存、仍未完成的版本：{'；'.join(left)}" if left else ""))


def _documents_key(run: SettlementRun) -> str:
    """Documents are written once as drafts and once more when finance confirms."""
    return f"{run.month}-r{run.revision}" + ("-confirmed" if run.status == "confirmed" else "")


def finish_revision(hub: Hub, run_id: int, documents: bool = True) -> dict:
    """Vouchers to finance and the documents of a stored revision, each once. Why an attempt
    failed is kept on the revision (`delivery_error`, cleared by the next attempt) for the
    finance person who confirmed it: `delivery_status`."""
    _set_delivery_error(hub.db_url, run_id, None)
    try:
        send_vouchers(hub, run_id)
        if not documents:
            return {}
        with session_scope(hub.db_url) as s:
            key = _documents_key(s.get(SettlementRun, run_id))
        return once(hub.db_url, "settlement_documents", key, lambda: write_documents(hub, run_id))
    except EffectInProgress:
        raise  # another run is sending it (发送中): its outcome counts
    except TransientError as exc:
        log.warning("settlement run %s: vouchers not sent: %s", run_id, exc)
        _set_delivery_error(hub.db_url, run_id, "财务系统暂时无法连接，凭证草稿未能提交"
                            f"（{transient_cause(exc)}），请稍后重新发送")
        raise
    except VouchersNotSent as exc:
        _set_delivery_error(hub.db_url, run_id, str(exc))
        raise
    except Exception as exc:
        _set_delivery_error(hub.db_url, run_id, "数据库正忙（另一项操作正在写入），对账单或明细表"
                            "未能生成，请稍后重新发送" if database_busy(exc) else
                            f"对账单或明细表生成失败（{type(exc).__name__}），"
                            "请联系系统管理员查看日志后重新发送")
        raise


def _set_delivery_error(db_url: str, run_id: int, error: str | None) -> None:
    with session_scope(db_url) as s:
        run = s.get(SettlementRun, run_id)
        if run is not None and run.delivery_error != error:
            apply_changes(s, run, ACTOR, delivery_error=error)


def deliver_revision(hub: Hub, run_id: int) -> None:
    """`finish_revision` after the API answered (a confirmation, a retry): the outcome is read
    from `delivery_status`, not from an exception nobody would see."""
    try:
        finish_revision(hub, run_id)
    except EffectInProgress:  # a second press while the first sends: the page says 发送中
        log.info("settlement run %s: being sent by another run", run_id)
    except Exception:  # noqa: BLE001 - kept on the revision for the person; logged for ops
        log.exception("settlement run %s: vouchers or documents not out", run_id)


# what the finance person reads of a revision's vouchers and documents
DELIVERY_LABELS = {"sent": "凭证已发送", "failed": "发送失败", "sending": "发送中",
                   "nothing": "无需发送"}


def delivery_status(db_url: str, run: SettlementRun) -> dict:
    """Whether a revision's vouchers reached finance and its documents are written (as they
    are now: draft, or confirmed): `state` sent | failed | sending | nothing (no lines), and
    `label`, what the finance person reads (`发送失败：<reason>`)."""
    documents = effect_result(db_url, "settlement_documents", _documents_key(run)) is not None
    if run.line_count == 0:
        state = "nothing"
    elif documents:
        state = "sent"
    elif run.delivery_error:
        state = "failed"
    else:
        state = "sending"
    label = DELIVERY_LABELS[state]
    if state == "failed":
        label += f"：{run.delivery_error}"
    elif state == "sending" and run.voucher_ref:
        label = "凭证已发送，对账单生成中"
    elif state == "sent" and not run.voucher_ref:
        label = "无需凭证（各客户净额为零），对账单已生成"
    return {"state": state, "label": label, "voucher_batch_id": run.voucher_batch_id,
            "voucher_ref": run.voucher_ref, "documents": documents,
            "error": run.delivery_error if state == "failed" else None}


@dataclass
class Stored:
    """What storing and sending a month's settlement leaves for writing its documents and
    saying its result (`settle_month` does both; the settle-month flow in two steps)."""

    month: str
    run_id: int | None  # stored by this call; None: nothing new (maybe finished one)
    shown: int | None  # the revision the result shows
    before: dict[int, tuple[str | None, bool]]  # unfinished revisions, what of them was out
    elsewhere: dict[int, str | None]  # other months' revisions finished (None) or why not
    made: dict  # the documents written of the shown month's revisions


def settle_month(hub: Hub, month: str, actor: str = ACTOR, flow_run_id: str | None = None,
                 progress=None, documents: bool = True) -> SettlementResult:
    """Compute and store the month's new lines, then send the vouchers and write the documents
    of every revision of the month that still lacks them. Safe to repeat at any point."""
    stored = store_and_send(hub, month, actor, flow_run_id, progress, documents)
    return settlement_result(hub, stored, progress)


def store_and_send(hub: Hub, month: str, actor: str = ACTOR, flow_run_id: str | None = None,
                   progress=None, documents: bool = True) -> Stored:
    """`settle_month` up to its result: the month's new lines computed and stored, the
    vouchers of every revision still without sent (of other months too), and their documents
    written unless `documents` is False (`write_documents_left` then)."""
    def step(pct: float) -> None:
        if progress:
            progress(pct)

    month = month_key(month)
    try:
        with session_scope(hub.db_url) as s:
            refuse_unsettleable(s, month)  # before minutes of work, not only when storing
    except SettlementError as exc:
        # a later month is settled: nothing is computed again, but what an earlier run of this
        # month stored and did not send or write (vouchers, confirmed statements) is finished,
        # as the failed run's message promised — unless a later run finished it already
        if exc.code != "later_month_settled":
            raise
        if not unfinished_revisions(hub.db_url, month):
            raise _all_out(hub.db_url, month, exc) from None
        run_id = None
    else:
        # a retry of a flow run that stored its revision already: that revision is the run's
        # own result (stored by this run, not only finished), sent and written now; the month
        # is not computed again (news since is the next run's, which the run's table would
        # otherwise not mention)
        run_id = stored_by(hub.db_url, month, flow_run_id)
        for attempt in range(3 if run_id is None else 0):
            comp = compute_month(hub.db_url, month)
            step(50)
            try:
                run_id = store_settlement(hub.db_url, comp, actor, flow_run_id)
                break
            except SettlementConflict:
                if attempt == 2:
                    raise
    step(70)
    pending = unfinished_revisions(hub.db_url, None)  # of every month, by month
    with session_scope(hub.db_url) as s:
        finished = [rid for rid in pending if s.get(SettlementRun, rid).month == month]
    before = {rid: delivered(hub.db_url, rid) for rid in pending}
    made = {}
    for rid in finished:
        made = finish_revision(hub, rid, documents)
    elsewhere = finish_elsewhere(hub, month, documents, pending)
    step(95)
    # nothing new stored, but a revision an earlier (failed) run stored got its vouchers now:
    # the result is that revision's, not "nothing changed"
    shown = run_id if run_id is not None else finished[-1] if finished else None
    return Stored(month, run_id, shown, before, elsewhere, made)


def write_documents_left(hub: Hub, stored: Stored) -> Stored:
    """The documents `store_and_send(documents=False)` left: of the month's revisions, and of
    other months' (whose vouchers it sent, or that an earlier run left)."""
    made = stored.made
    for rid in unfinished_revisions(hub.db_url, stored.month):
        made = finish_revision(hub, rid)
    if not made and stored.shown is not None:  # written by an earlier attempt of this step
        with session_scope(hub.db_url) as s:
            key = _documents_key(s.get(SettlementRun, stored.shown))
        made = effect_result(hub.db_url, "settlement_documents", key) or {}
    elsewhere = finish_elsewhere(hub, stored.month)
    return dataclasses.replace(stored, made=made, elsewhere={**stored.elsewhere, **elsewhere})


def settlement_result(hub: Hub, stored: Stored, progress=None) -> SettlementResult:
    """The result of a settlement: its shown revision's totals, and what the run finished
    (or could not) of other revisions, named: finance finds their batches too."""
    result = summarize(hub.db_url, stored.month, stored.shown,
                       finished_only=stored.run_id is None)
    result.message += also_finished(hub.db_url, stored.shown, stored.before, stored.elsewhere)
    result.run_id = stored.run_id
    if stored.shown is not None:
        result.documents = stored.made
    if progress:
        progress(100)
    return result


def _all_out(db_url: str, month: str, refused: SettlementError) -> SettlementError:
    """The refusal of a month a later one was settled after, saying that what its runs
    stored is out (sent and written, by its run or a later month's): nothing is left to do."""
    with session_scope(db_url) as s:
        stored = s.exec(select(sa.func.max(SettlementRun.revision)).where(
            SettlementRun.month == month)).one()
    done = (f"；{month} 已保存的结算（至第 {stored} 版）均已完成：凭证草稿已提交财务、对账单已生成，"
            "无需再运行") if stored else ""
    return SettlementError(refused.message + done, status=refused.status, code=refused.code)


def stored_by(db_url: str, month: str, flow_run_id: str | None) -> int | None:
    """The revision of `month` the flow run `flow_run_id` stored (on an earlier attempt)."""
    if not flow_run_id:
        return None
    with session_scope(db_url) as s:
        return s.exec(select(sa.func.max(SettlementRun.id)).where(
            SettlementRun.month == month, SettlementRun.flow_run_id == flow_run_id)).one()


def _no_revision(month: str, revision: int) -> SettlementError:
    return SettlementError(f"{month} 没有第 {revision} 版结算", status=404,
                           code="unknown_settlement")


def confirm_settlement(db_url: str, month: str, revision: int, person: Staff,
                       actor: str | None = None) -> SettlementRun:
    """Finance confirms a revision: from then on it never changes. `actor`: who the operation
    log names (`cli:<id>` from the terminal), by default `staff:<id>` (the API, a page)."""
    if person.role not in ("finance", "admin"):
        raise SettlementError(f"只有财务或管理员可以确认结算（{person.name} 的角色是"
                              f"{role_label(person.role)}）", status=403, code="forbidden")
    month = month_key(month)
    if not 0 < revision <= MAX_ID:  # none is stored (and the database cannot compare it)
        raise _no_revision(month, revision)
    with session_scope(db_url) as s:
        lock_settlements(s)  # two confirmations at once: one confirms, the other is told so
        run = s.exec(select(SettlementRun).where(SettlementRun.month == month,
                                                 SettlementRun.revision == revision)).first()
        if run is None:
            raise _no_revision(month, revision)
        if run.status == "confirmed":
            by = s.get(Staff, run.confirmed_by) if run.confirmed_by else None
            raise SettlementError(f"{month} 第 {revision} 版已于 "
                                  f"{run.confirmed_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M} 由 "
                                  f"{by.name if by else run.confirmed_by} 确认", status=409,
                                  code="already_confirmed")
        # a revision is a correction of those before it: confirmed after them, or 已确认
        # would show a difference on top of a month nobody confirmed
        open_before = s.exec(select(SettlementRun.revision).where(
            SettlementRun.month == month, SettlementRun.revision < revision,
            SettlementRun.status != "confirmed").order_by(SettlementRun.revision)).all()
        if open_before:
            raise SettlementError(
                f"{month} 第 {'、'.join(map(str, open_before))} 版尚未确认：各版按顺序确认，"
                f"请先确认第 {open_before[0]} 版，再确认第 {revision} 版", status=409,
                code="earlier_revision_unconfirmed")
        # its vouchers and documents go out now (`finish_revision`): an earlier attempt's
        # failure is not what the confirmation's answer should show
        apply_changes(s, run, actor or f"staff:{person.id}", status="confirmed",
                      confirmed_by=person.id, confirmed_at=utcnow(), delivery_error=None)
        return run


# who may look up a revision's vouchers and documents (its status page)
SETTLEMENT_VIEWERS = ("finance", "admin")


def settlement_revision(db_url: str, month: str, revision: int, person: Staff
                        ) -> SettlementRun:
    """A revision as finance (or an admin) looks it up; refused for anyone else, 404 when
    there is none."""
    if person.role not in SETTLEMENT_VIEWERS:
        raise SettlementError(f"只有财务或管理员可以查看结算的凭证发送情况（{person.name} 的角色是"
                              f"{role_label(person.role)}）", status=403, code="forbidden")
    month = month_key(month)
    with session_scope(db_url) as s:
        run = s.exec(select(SettlementRun).where(SettlementRun.month == month,
                                                 SettlementRun.revision == revision)).first()
    if run is None:
        raise _no_revision(month, revision)
    return run


# finance's status of a revision lists its customers a page at a time (1,700 and more a month)
CUSTOMERS_PER_PAGE, MAX_CUSTOMERS_PER_PAGE = 100, 500


def revision_status(db_url: str, run: SettlementRun, q: str = "", offset: int = 0,
                    limit: int | None = CUSTOMERS_PER_PAGE) -> dict:
    """What the status address answers: the revision, how its vouchers and documents are, and
    per customer what finance and the customer refer to (`revision_customers`): those `q`
    finds, `limit` of them from `offset`, and how many `q` finds (`customers_total`)."""
    customers, total = revision_customers(db_url, run, q, offset, limit)
    return {"month": run.month, "revision": run.revision, "status": run.status,
            "confirmed_by": run.confirmed_by, "lines": run.line_count,
            "total": str(run.total_amount), "delivery": delivery_status(db_url, run),
            "customers": customers, "customers_total": total, "limit": limit,
            "offset": offset,
            "status_url": f"/rebates/settlements/{run.month}/{run.revision}"}


def revision_customers(db_url: str, run: SettlementRun, q: str = "", offset: int = 0,
                       limit: int | None = None) -> tuple[list[dict], int]:
    """Each customer of a revision `q` finds (`customer_match`; all when empty), by customer
    id from `offset`, at most `limit`: its amount in the revision, the 对账单号 of its
    statement as the revision is now (draft, or confirmed), and the 凭证字 and 凭证号 of its
    voucher (None: no voucher, its lines net to zero, or none issued yet: the batch is not
    prepared); and how many customers `q` finds in all."""
    batch_id = batch_id_of(run)
    carried = carried_codes(db_url, run)
    with session_scope(db_url) as s:
        match = customer_match(s, run, q, carried)
        total = s.exec(_revision_lines(select(sa.func.count(
            RebateLine.booked_customer_id.distinct())), run.id, match)).one()
        nets = _customer_nets(s, run.id, match, offset, limit)
        customers = {c.id: c for c in s.exec(select(Customer).where(
            Customer.id.in_([cid for cid, _ in nets])))} if nets else {}
        numbers = {key: (word, number) for key, word, number in s.exec(select(
            VoucherNumber.voucher_key, VoucherNumber.word, VoucherNumber.number).where(
            VoucherNumber.batch_id == batch_id,
            VoucherNumber.voucher_key.in_([_voucher_key(batch_id, cid) for cid, _ in nets])))}
    out = []
    for cid, fen in nets:
        customer = customers[cid]
        word, number = numbers.get(_voucher_key(batch_id, cid), (None, None))
        out.append({"customer_id": cid, "customer": customer.legal_name,
                    "customer_code": carried.get(cid) or _customer_code(cid, customer.finance_code),
                    "amount": str(fen_to_yuan(int(fen))),
                    "statement_no": statement_number(run.month, run.revision, cid, run.status),
                    "voucher_word": word, "voucher_no": number})
    return out, total


_HUB_CODE = re.compile(r"C([0-9]{6,10})")
_STATEMENT_NO = re.compile(r"RSQ?-[0-9]{6}-r[0-9]+-C([0-9]{6,10})(?:-草稿)?")
_VOUCHER_NO = re.compile(r"(?:(\S{1,10}?)\s*-\s*)?([0-9]{1,9})")  # 3, or 记-3 as shown


def customer_match(s: Session, run: SettlementRun, q: str,
                   carried: Mapping[int, str]) -> sa.ColumnElement | None:
    """Which customers of `run` finance's search `q` means (None: all): the legal name or
    another name the customer is known by (`CustomerAlias`: its short or former names, and
    the legal name of a file merged into it) containing it, or the customer code (finance's:
    as a voucher of the revision carried it (`carried`), else as on file; or the hub's
    C000123), compared folded (`_folded`: any case, full- or half-width, alike
    on SQLite and PostgreSQL, whose lower() differ beyond ASCII); or exactly the 对账单号 of
    the customer's statement of this revision (draft or confirmed) or the 凭证号 of its
    voucher in this revision's batch (3, or 记-3)."""
    q = q.strip()
    if not q:
        return None
    ids: set[int] = set()
    code = q.upper()
    if (m := _HUB_CODE.fullmatch(code)) and _customer_code(int(m[1])) == code:
        ids.add(int(m[1]))
    if (m := _STATEMENT_NO.fullmatch(q)) and q in (
            statement_number(run.month, run.revision, int(m[1]), status)
            for status in ("draft", "confirmed")):
        ids.add(int(m[1]))
    if m := _VOUCHER_NO.fullmatch(q):
        batch_id = batch_id_of(run)
        found = select(VoucherNumber.voucher_key).where(VoucherNumber.batch_id == batch_id,
                                                        VoucherNumber.number == int(m[2]))
        if m[1]:
            found = found.where(VoucherNumber.word == m[1])
        for key in s.exec(found):  # RB-2026-10-r1-C000123 (`_voucher_key`)
            if hub := _HUB_CODE.fullmatch(key.removeprefix(f"{batch_id}-")):
                ids.add(int(hub[1]))
    # the names and codes of the revision's customers (a few thousand), folded in Python
    wanted = _folded(q)
    # a code a voucher of the revision carried finds those customers; any other, the
    # customers holding it now (a code filled in since the vouchers went out)
    by_carried = {cid for cid, code in carried.items() if _folded(code) == wanted}
    ids |= by_carried
    booked = select(RebateLine.booked_customer_id).where(RebateLine.run_id == run.id).distinct()
    for cid, name, finance_code in s.exec(select(
            Customer.id, Customer.legal_name, Customer.finance_code).where(
            Customer.id.in_(booked))):
        if wanted in _folded(name) or (not by_carried and finance_code
                                       and _folded(finance_code) == wanted):
            ids.add(cid)
    for cid, name in s.exec(select(CustomerAlias.customer_id, CustomerAlias.name).where(
            CustomerAlias.customer_id.in_(booked))):
        if wanted in _folded(name):
            ids.add(cid)
    return Customer.id.in_(sorted(ids))


def _folded(text: str) -> str:
    """Text as finance's search compares it: NFKC (full-width Ｋ３ as K3, （） as ()) and
    case-folded (Dräger as dräger)."""
    return unicodedata.normalize("NFKC", text).casefold()


# --- Prefect ------------------------------------------------------------------------------

# A refusal (month not over, a later month settled …), ours or an outside system's (finance
# rejecting the vouchers), fails the same way every time: the run ends at once with its
# message; anything else (finance unreachable, 5xx, timeouts) is retried.
_retry_unless_refused = retry_unless(Refusal, PermanentError)


STEP = dict(retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=_retry_unless_refused,
            cache_policy=NO_CACHE, persist_result=False)


@task(name="settle", **STEP)
def settle_task(month: str, progress_id) -> Stored:
    """Compute and store the month's new lines, send the vouchers (documents follow)."""
    hub = current_hub()
    run_id = flow_run.get_id()
    return store_and_send(hub, month, ACTOR, str(run_id) if run_id else None, documents=False,
                          progress=lambda pct: update_progress_artifact(progress_id, pct * 0.6))


@task(name="statements", **STEP)
def documents_task(stored: Stored, progress_id) -> dict:
    """The customers' statements and finance's workbook of each revision still without (this
    month's and others'), then the run's result: what it stored, sent and wrote."""
    hub = current_hub()
    stored = write_documents_left(hub, stored)
    return settlement_result(hub, stored, lambda pct: update_progress_artifact(progress_id, pct)
                             ).as_dict()


class SettlementUnfinished(Exception):
    """A settle-month run that stopped on a failure: its message says what is stored, what
    is not out yet and how to finish it."""


def unfinished_report(month: str, cause: str) -> str:
    """What the engineer (or the clerk at the CLI) reads on a failed run: the revisions
    stored but not finished (the next run of any month also tries them: finish_elsewhere),
    the cause, and that running again is safe."""
    try:
        db_url = current_hub().db_url
        with session_scope(db_url) as s:
            runs = [s.get(SettlementRun, rid) for rid in unfinished_revisions(db_url, month)]
            # a revision whose every customer nets to zero has no voucher to wait for
            owes = {r.id: any(net for _, net in _customer_nets(s, r.id)) for r in runs}
        stored = "；".join(
            f"第 {r.revision} 版（{r.line_count} 行，合计 {yuan(r.total_amount)}）已保存，"
            + ("凭证草稿尚未提交财务" if r.voucher_ref is None and owes[r.id]
               else "凭证草稿已提交，对账单与明细尚未生成" if r.voucher_ref is not None
               else "各客户净额均为零、无需凭证，对账单与明细尚未生成")
            for r in runs) or "本次未保存新的结算版本"
    except Exception:  # noqa: BLE001 - the database may be what failed
        stored = "无法读取结算状态"
    return (f"{month} 返利结算未完成：{stored}。原因：{cause}。排除故障后"
            f"重新运行 settle-month（参数 month={month}）或执行 salesops settle --month {month}："
            "已保存的版本不会重算，凭证草稿按批次号只提交一次，不会重复")


def being_sent_report(month: str) -> str:
    """What a run (or the clerk at the CLI) reads when another run is preparing or sending
    the revision's vouchers right now (EffectInProgress): nothing is wrong with finance."""
    return (f"{month} 返利结算：该版本凭证正由另一结算运行提交，请稍后用 salesops settle --month "
            f"{month} 查看")


@flow(name="settle-month", log_prints=True)
def settle_month_flow(month: str | None = None) -> dict:
    """Settle `month` (default: last month in Asia/Shanghai, as of when the run was due)."""
    context = FlowRunContext.get()
    month = (month_due(context.flow_run if context else None) if month is None
             else month_key(month))  # "" is a mistake
    logger = get_run_logger()
    progress_id = create_progress_artifact(0.0, key="settle-month-progress",
                                           description=f"{month} 返利结算进度")
    try:
        result = documents_task(settle_task(month, progress_id), progress_id)
    except Refusal:
        raise
    except EffectInProgress as exc:  # still so after the step's retries
        raise SettlementUnfinished(being_sent_report(month)) from exc
    except Exception as exc:
        # finance's refusal is said in Chinese already, an outside system's failure explained;
        # anything else names its kind for the engineer
        cause = (str(exc) if isinstance(exc, VouchersNotSent) else connector_reason(exc)
                 if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}")
        raise SettlementUnfinished(unfinished_report(month, cause)) from exc
    table = [{"维度": dimension, "名称": k, "金额": yuan(v)}
             for dimension, totals in breakdowns(result) for k, v in totals.items()]
    if table:
        table.append({"维度": "合计", "名称": f"{result['lines']} 行",
                      "金额": yuan(result["total"])})
    create_table_artifact(key="settle-month", table=table or [{"维度": "—", "名称": "无变动",
                                                               "金额": "¥0.00"}],
                          description=result["message"])
    logger.info("settlement: %s", result["message"])
    return result
