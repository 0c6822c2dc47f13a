"""The rebate board (返利看板): what a rep, a regional manager or finance may see of the
rebates — confirmed, pending finance's review, expected this month — and the drill-down from
a figure to its orders, an order's lines, the customer and the policy text.

Access: a rep sees his own orders' rebates, a sales manager those of his region, finance (and
admins) everything; anyone else, or anyone asking for more than that, is refused.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import select

from flows.errors import Refusal
from flows.rebate_data import (
    Window, customer_profiles, customers_of_region, policy_book, quarter_start,
)
from flows.settlement import (
    compute_month, delivery_status, latest_run, line_inputs, previous_month, statement_number,
)
from models import (
    Customer, Delivery, IntentOrder, OperationLog, OrderRebate, Quote, RebateLine,
    RebatePolicyVersion, SettlementRun, Staff, business_date,
)
from models.db import one_snapshot, session_scope
from models.rebates.engine import KIND_LABELS, CustomerProfile, LineDraft
from models.rebates.formatting import fen_to_yuan
from models.rebates.tables import sum_fen
from models.staff import normalize_region, region_label, role_label
from reports.statement_pdf import policy_rate

ZERO = Decimal("0.00")
EXPECTED_TTL = 300  # seconds an "expected this month" figure is reused
STATUS_LABELS = {"confirmed": "已确认", "pending": "待复核", "expected": "本月预计"}


class BoardAccessError(Refusal):
    """Not yours to see."""

    status, code = 403, "forbidden"


class UnknownRep(Refusal):
    """A rep asked for by someone who may see every rep's rebates, and no one has that id."""

    status, code = 404, "unknown_rep"


class UnknownRegion(Refusal):
    """A region asked for by someone who may see every region's rebates, and no customer,
    rep or rebate line names it."""

    status, code = 404, "unknown_region"


@dataclass(frozen=True)
class Scope:
    """Whose rebates: one rep, one region, or everyone (both None)."""

    rep_id: str | None
    region: str | None
    label: str

    @property
    def key(self) -> str:
        return f"{self.rep_id or '*'}|{self.region or '*'}"


BOARD_ROLES = ("rep", "sales_manager", "finance", "admin")


def region_scope(region: str) -> Scope:
    """A region's rebates (华东大区返利): the manager's own, or finance's narrowed."""
    return Scope(None, region, f"{region_label(region)}返利")


def board_scope(db_url: str, person: Staff, rep: str | None = None,
                region: str | None = None) -> Scope:
    """The scope `person` asks for (default: all he may see), or BoardAccessError. Whether
    an asked-for person or region exists is told only to those who may narrow to any (finance
    and admins: UnknownRep / UnknownRegion, a 404); a rep is refused anyone else's alike, a
    manager anyone not selling in his region alike."""
    if person.role not in BOARD_ROLES:
        raise BoardAccessError(f"当前角色（{role_label(person.role)}）无权查看返利看板")
    rep, region = _askable(rep), _askable(region)
    if region:  # as stored (华东), however asked (华东大区, as the board names it)
        region = normalize_region(region)
    if person.role == "rep":
        if (rep and rep != person.id) or region:
            raise BoardAccessError("销售只能查看本人的返利")
        return Scope(person.id, None, f"{person.name}的返利")
    if person.role == "sales_manager":
        if not person.region:
            raise BoardAccessError("您的账号未设置所辖大区，请联系管理员")
        if region and region != person.region:
            raise BoardAccessError(f"您只能查看{region_label(person.region)}的返利")
    if region and person.role != "sales_manager" and not _region_exists(db_url, region):
        raise UnknownRegion(f"没有名为“{region}”的大区")
    if not rep:
        if person.role == "sales_manager":
            return region_scope(person.region)
        return region_scope(region) if region else Scope(None, None, "全部返利")
    with session_scope(db_url) as s:
        asked = s.get(Staff, rep)
        # a rep of another region now (moved since, or selling to a customer of this one)
        # whose rebates are booked here, or whose orders here may yet be paid, is part of the
        # region's figures: the manager may see that part of them
        sells_here = person.role == "sales_manager" and asked is not None and (
            asked.region == person.region
            or bool(region_sellers(s, person.region, business_date(), asked.id)))
    if person.role == "sales_manager" and asked is not None and not sells_here:
        # or whose old order of the region, delivered only now, the region's figure expects
        sells_here = any(d.rep_id == asked.id
                         for _, d in expected_lines(db_url, region_scope(person.region)))
    if person.role == "sales_manager":
        if not sells_here:
            raise BoardAccessError(f"{asked.name if asked else rep}不在{region_label(person.region)}")
        # only the part of his rebates booked to the manager's region: named so, as the rep's
        # own board (张伟的返利) also counts his orders of customers of other regions
        return Scope(asked.id, person.region,
                     f"{asked.name}在{region_label(person.region)}的返利")
    if asked is None:  # a typo, not a permission: finance and admins may see every rep
        raise UnknownRep(f"没有编号为 {rep} 的销售")
    return Scope(asked.id, None, f"{asked.name}的返利")  # a rep asked for: all of his


def orders_window_start(today: dt.date) -> dt.date:
    """The earliest order date whose customer's settlements this month or last may still pay
    (a period's tier difference): the orders an expected figure looks at."""
    return quarter_start(today) - dt.timedelta(days=366)


def region_sellers(s, region: str, today: dt.date, rep_id: str | None = None) -> set[str]:
    """The people a region's rebates are booked to, or may yet be (the reps of its customers'
    recent orders), wherever they belong now; with `rep_id`, whether he is one of them."""
    lines = select(RebateLine.rep_id).distinct().where(RebateLine.region == region,
                                                       RebateLine.rep_id.is_not(None))

    def orders():
        # the region's customers as the orders' dates place them (a customer moved away since
        # ordered here)
        since = orders_window_start(today)
        query = select(IntentOrder.rep_id).distinct().join(
            Customer, Customer.id == IntentOrder.customer_id).where(
            customers_of_region(s.connection(), region, since),
            IntentOrder.order_date >= since, IntentOrder.rep_id.is_not(None))
        return query if rep_id is None else query.where(IntentOrder.rep_id == rep_id).limit(1)

    if rep_id is not None:
        found = set(s.exec(lines.where(RebateLine.rep_id == rep_id).limit(1)))
        return found or set(s.exec(orders()))
    return set(s.exec(lines)) | set(s.exec(orders()))


def _askable(value: str | None) -> str | None:
    """A rep or region as asked for, fit to be looked up: without the spaces around it (a
    pasted ` rep-zhangwei `; only spaces: not asked for); PostgreSQL refuses a text holding
    NUL (an error, not "nobody"), and no id or region can hold one, so such a value is
    looked up as a visibly unknown one (a NUL shown as "\\x00")."""
    value = value.strip() if value else value
    return value.replace("\x00", "\\x00") if value else None


def _region_exists(db_url: str, region: str) -> bool:
    """A region of a customer or a person now, or one rebates were booked to (its customers
    may all have moved since: its lines stay there)."""
    with session_scope(db_url) as s:
        return any(s.exec(select(table.id).where(table.region == region).limit(1)).first()
                   is not None for table in (Customer, Staff, RebateLine))


def in_scope(scope: Scope, rep_id: str | None, region: str | None) -> bool:
    """Whether a line or an order of `rep_id` in `region` lies in the scope."""
    return scope.rep_id in (None, rep_id) and scope.region in (None, region)


def sees_rebates_of(db_url: str, person: Staff | None, rep_id: str | None,
                    region: str | None) -> bool:
    """Whether `person` may see the rebates of an order of `rep_id` for a customer of
    `region` (the board's rule; no person: nobody)."""
    if person is None:
        return False
    try:
        return in_scope(board_scope(db_url, person), rep_id, region)
    except BoardAccessError:
        return False


def _filter(query, scope: Scope):
    if scope.rep_id:
        query = query.where(RebateLine.rep_id == scope.rep_id)
    if scope.region:
        query = query.where(RebateLine.region == scope.region)
    return query


_FEN = sum_fen(RebateLine.amount)
_RUN_STATUS = {"confirmed": "confirmed", "pending": "draft"}


def _settled(query, scope: Scope, status: str, since: str | None = None,
             month: str | None = None):
    """`query` narrowed to the lines of confirmed (or draft = pending) revisions in scope, of
    months from `since`, or of one `month`."""
    query = query.join(SettlementRun, SettlementRun.id == RebateLine.run_id).where(
        SettlementRun.status == _RUN_STATUS[status])
    if since:
        query = query.where(RebateLine.month >= since)
    if month:
        query = query.where(RebateLine.month == month)
    return _filter(query, scope)


_EXPECTED: dict[tuple, tuple[float, list]] = {}
_EXPECTED_LOCK = threading.Lock()


def expected_lines(db_url: str, scope: Scope, today: dt.date | None = None,
                   customer_ids: set[int] | None = None) -> list[tuple[str, LineDraft]]:
    """What the settlements not made yet would pay now for the scope, as (month it will be
    settled in, line): this month's, and last month's until it is settled (the first days of
    a month). A (bucket, order) both would pay the same (an order of last month: this month's
    computation sees it too, as nothing is paid for it yet) is last month's, whose run pays it
    first and leaves this month's nothing; one this month's facts changed is this month's,
    whose line holds all of it. Computed, not stored; reused for a few minutes.

    `customer_ids` (one order's page): at least these customers' lines, the scope's reused
    figure when there is one, otherwise computed for them alone (quick: not the whole
    scope's month) and not kept."""
    today = today or business_date()
    month, last = f"{today:%Y-%m}", previous_month(today)
    with session_scope(db_url) as s:
        months = [month] if s.exec(select(SettlementRun.id).where(
            SettlementRun.month == last)).first() else [last, month]
        # what the figure was computed from: the lines paid, the policies, and the customers'
        # files (a customer re-rated, moved to another region or owner, merged: by any
        # process, each change one more entry of the append-only log, in its transaction)
        stamp = (s.exec(select(sa.func.max(RebateLine.id))).one(),
                 s.exec(select(sa.func.max(RebatePolicyVersion.id))).one(),
                 s.exec(select(sa.func.count()).select_from(OperationLog).where(
                     OperationLog.entity == Customer.__tablename__)).one())
        # the customers whose settlements could pay the scope: those of its recent orders
        # (or of its region now or on a recent order's date: lines are booked to the region
        # on the order date), and those it was paid for, whatever their age or region now: a
        # return of an old order, or of a customer moved since, claws back from it
        customers = None
        if scope.rep_id:
            customers = set(s.exec(select(IntentOrder.customer_id).distinct().where(
                IntentOrder.rep_id == scope.rep_id,
                IntentOrder.order_date >= orders_window_start(today))))
            paid = RebateLine.rep_id == scope.rep_id
        elif scope.region:
            customers = set(s.exec(select(Customer.id).where(customers_of_region(
                s.connection(), scope.region, orders_window_start(today)))))
            paid = RebateLine.region == scope.region
        if customers is not None:
            customers |= set(s.exec(select(RebateLine.customer_id).distinct().where(paid)))
    key = (db_url, scope.key, tuple(months), stamp)
    with _EXPECTED_LOCK:
        hit = _EXPECTED.get(key)
        if hit and time.monotonic() - hit[0] < EXPECTED_TTL:
            return hit[1]
    if customer_ids is not None:
        customers = set(customer_ids) if customers is None else customers & set(customer_ids)
    customers = {c for c in customers if c is not None} if customers is not None else None
    # per month, its computation's lines by (bucket, order): all of them, whatever the scope
    # (a claw-back split over the reps and regions it was paid to is one line each)
    lines: dict[str, dict[tuple[str, str], list[LineDraft]]] = {}
    read: list[Window] = []  # the orders this month's computation read
    # (no customer of the scope: still the older orders read whole, below)
    for m in months if customers != set() or customer_ids is None else ():
        # an older order of any customer that this computation reads (delivered only now) may
        # be the scope's: its quarter is read whole, the scope's lines kept below
        comp = compute_month(db_url, m, customer_ids=customers, narrow_from=None
                             if customer_ids is not None else orders_window_start(today))
        if m == month:
            read = comp.windows
        lines[m] = defaultdict(list)
        for d in comp.drafts:
            lines[m][(d.bucket_key, d.order_id)].append(d)
    # this month's computation sees nothing of last month paid yet: a (bucket, order) it pays
    # holds what both runs pay together, booked to whom this month's facts say; it is last
    # month's alone when both computations give it the same lines (last month's run pays
    # them, this month's then nothing more), else this month's, in place of all of last
    # month's lines (a rep or region they were booked to may have none this month)
    paying = lines.get(month, {})
    found: list[tuple[str, LineDraft]] = []
    for m, by_key in lines.items():
        for bucket_order, ds in by_key.items():
            if m != month and bucket_order in paying and \
                    _booked(ds) != _booked(paying[bucket_order]):
                continue
            if m == month and len(lines) > 1 and _booked(ds) == _booked(
                    lines[months[0]].get(bucket_order, ())):
                continue
            found += [(m, d) for d in ds if in_scope(scope, d.rep_id, d.region)]
    drafts = _netted(db_url, found, month, set(paying), read)
    if customer_ids is not None:
        return drafts  # a part of the scope's figure: never read as the whole
    with _EXPECTED_LOCK:
        now = time.monotonic()
        # a figure past its time, or of this scope as the data stood before (a later stamp or
        # month), is never read again: forgotten, so a long-running server does not keep them
        for old in [k for k, (at, _) in _EXPECTED.items()
                    if now - at >= EXPECTED_TTL or k[:2] == key[:2]]:
            del _EXPECTED[old]
        _EXPECTED[key] = (now, drafts)
    return drafts


def _booked(drafts) -> list[tuple]:
    """What a (bucket, order)'s lines book, to whom: (rep, region, amount) of each."""
    return sorted((d.rep_id or "", d.region or "", d.amount) for d in drafts)


def _netted(db_url: str, drafts: list[tuple[str, LineDraft]], month: str,
            paying: set[tuple[str, str]], read: list[Window]) -> list[tuple[str, LineDraft]]:
    """`drafts` less last month's lines of a (bucket, order) that this month's computation
    read (with nothing of last month paid yet, as it is now) and left at what was paid before:
    its facts since (goods returned, a delivery corrected to nothing) take back what last
    month's run pays, so the two runs pay nothing for it together."""
    gone = {d.order_id for m, d in drafts
            if m != month and (d.bucket_key, d.order_id) not in paying}
    if not gone:
        return drafts
    with session_scope(db_url) as s:
        orders = {oid: (cid, day) for oid, cid, day in s.exec(
            select(IntentOrder.id, IntentOrder.customer_id, IntentOrder.order_date)
            .where(IntentOrder.id.in_(sorted(gone))))}

    def read_now(order_id: str) -> bool:
        cid, day = orders[order_id]
        return any(w.start <= day <= w.end and (w.customer_ids is None or cid in w.customer_ids)
                   for w in read)

    return [(m, d) for m, d in drafts if m == month or (d.bucket_key, d.order_id) in paying
            or not read_now(d.order_id)]


def board(db_url: str, scope: Scope, today: dt.date | None = None) -> dict:
    """The three figures, with counts, and the confirmed and pending totals by month: summed
    by the database (a year of lines is hundreds of thousands of rows)."""
    today = today or business_date()
    # what is expected is computed first (minutes of reads in many transactions), then the
    # settled lines are read, in one snapshot; a settlement stored in between is in neither
    # figure, or (stored once `expected` chose its months) in both: then all is read again
    with session_scope(db_url) as s:
        before = latest_run(s)
    for _ in range(3):
        expected = expected_lines(db_url, scope, today)
        settled, latest = _settled_figures(db_url, scope, today)
        if latest == before:
            break
        before = latest
    by_month, figures, runs = settled
    settlements = defaultdict(list)
    for run in runs:
        settlements[run.month].append(_settlement_of(db_url, run))
    figures["expected"] = (sum((d.amount for _, d in expected), ZERO),
                           len({d.order_id for _, d in expected}))
    return {
        "scope": {"rep_id": scope.rep_id, "region": scope.region, "label": scope.label},
        "today": today.isoformat(),
        "figures": [{"status": status, "label": STATUS_LABELS[status], "amount": str(amount),
                     "orders": orders} for status, (amount, orders) in figures.items()],
        "months": [{"month": m, "confirmed": str(v["confirmed"]), "pending": str(v["pending"]),
                    "settlements": settlements[m]}
                   for m, v in sorted(by_month.items(), reverse=True)],
    }


def _settled_figures(db_url: str, scope: Scope, today: dt.date) -> tuple[tuple, int | None]:
    """(confirmed and pending totals by month, the figures with their order counts, the
    revisions) of the scope, read in one snapshot (a confirmation meanwhile moves lines from
    pending to confirmed, never out of both), and the latest settlement run in it."""
    year = f"{today.year}-01"
    by_month: dict[str, dict[str, Decimal]] = defaultdict(lambda: {"confirmed": ZERO,
                                                                   "pending": ZERO})
    figures = {}
    run_ids: set[int] = set()
    with session_scope(db_url) as s:
        one_snapshot(s)
        latest = latest_run(s)
        for status in ("confirmed", "pending"):
            for month, run_id, fen in s.exec(
                    _settled(select(RebateLine.month, RebateLine.run_id, _FEN), scope, status)
                    .group_by(RebateLine.month, RebateLine.run_id)):
                by_month[month][status] += fen_to_yuan(int(fen))
                run_ids.add(run_id)
            since = year if status == "confirmed" else ""  # confirmed: this year's
            orders = s.exec(_settled(select(sa.func.count(RebateLine.order_id.distinct())),
                                     scope, status, since)).one()
            figures[status] = (sum((v[status] for m, v in by_month.items() if m >= since),
                                   ZERO), orders)
        runs = s.exec(select(SettlementRun).where(SettlementRun.id.in_(run_ids))
                      .order_by(SettlementRun.revision)).all() if run_ids else []
    return (by_month, figures, runs), latest


def _settlement_of(db_url: str, run: SettlementRun) -> dict:
    """A revision of a settled month as its row on the board tells it: confirmed or pending,
    and how its vouchers and documents went (凭证已发送 / 发送中 / 发送失败：<reason>), with
    the address of its status page (finance's)."""
    delivery = delivery_status(db_url, run)
    status = "confirmed" if run.status == "confirmed" else "pending"
    return {"revision": run.revision, "status": status, "status_label": STATUS_LABELS[status],
            "delivery": {"state": delivery["state"], "label": delivery["label"]},
            "status_url": f"/rebates/settlements/{run.month}/{run.revision}"}


def figure_orders(db_url: str, scope: Scope, status: str, today: dt.date | None = None,
                  month: str | None = None, *, offset: int = 0,
                  limit: int | None = None) -> dict:
    """The orders behind a figure, newest first: one row per order, amounts summed over its
    lines, named by the customer they were booked to (their statement's: no merge since moves
    it); `count` and `amount` are the whole figure's, `orders` the rows from `offset` (at most
    `limit`)."""
    today = today or business_date()
    if status == "expected":
        return _expected_orders(db_url, scope, today, offset, limit)
    if status not in _RUN_STATUS:
        raise ValueError(status)
    since = f"{today.year}-01" if status == "confirmed" and not month else None
    with session_scope(db_url) as s:
        count, fen = s.exec(_settled(select(sa.func.count(RebateLine.order_id.distinct()),
                                            _FEN), scope, status, since, month)).one()
        page = s.exec(_settled(
            select(RebateLine.order_id, sa.func.min(RebateLine.booked_customer_id), _FEN,
                   IntentOrder.order_date)
            .join(IntentOrder, IntentOrder.id == RebateLine.order_id), scope, status, since,
            month).group_by(RebateLine.order_id, IntentOrder.order_date)
            .order_by(IntentOrder.order_date.desc(), RebateLine.order_id.desc())
            .offset(offset).limit(limit)).all()
        ids = [oid for oid, *_ in page]
        about: dict[str, tuple[set, set]] = {oid: (set(), set()) for oid in ids}
        for oid, kind, line_month in s.exec(_settled(
                select(RebateLine.order_id, RebateLine.kind, RebateLine.month).distinct()
                .where(RebateLine.order_id.in_(ids)), scope, status, since, month)) if ids else ():
            about[oid][0].add(KIND_LABELS[kind])
            about[oid][1].add(line_month)
        customers = customer_profiles(s, (cid for _, cid, _, _ in page))
    orders = [_order_row(oid, day, cid, customers, fen_to_yuan(int(order_fen)), *about[oid])
              for oid, cid, order_fen, day in page]
    return {"count": count, "amount": str(fen_to_yuan(int(fen or 0))), "offset": offset,
            "limit": limit, "orders": orders}


def _expected_orders(db_url: str, scope: Scope, today: dt.date, offset: int,
                     limit: int | None) -> dict:
    rows: dict[str, dict] = {}
    for month, d in expected_lines(db_url, scope, today):
        row = rows.setdefault(d.order_id, {"customer_id": d.customer_id, "amount": ZERO,
                                           "kinds": set(), "months": set()})
        row["amount"] += d.amount
        row["kinds"].add(KIND_LABELS[d.kind])
        row["months"].add(month)
    with session_scope(db_url) as s:
        dates = dict(s.exec(select(IntentOrder.id, IntentOrder.order_date).where(
            IntentOrder.id.in_(list(rows)))).all()) if rows else {}
        ordered = sorted(rows, key=lambda oid: (dates[oid], oid), reverse=True)
        page = ordered[offset:None if limit is None else offset + limit]
        customers = customer_profiles(s, (rows[oid]["customer_id"] for oid in page))
    return {"count": len(rows), "amount": str(sum((r["amount"] for r in rows.values()), ZERO)),
            "offset": offset, "limit": limit,
            "orders": [_order_row(oid, dates[oid], rows[oid]["customer_id"], customers,
                                  rows[oid]["amount"], rows[oid]["kinds"], rows[oid]["months"])
                       for oid in page]}


def _order_row(order_id: str, order_date: dt.date, customer_id: int,
               customers: dict[int, CustomerProfile], amount: Decimal, kinds: set[str],
               months: set[str]) -> dict:
    customer = customers.get(customer_id)
    return {"order_id": order_id, "order_date": order_date.isoformat(),
            "customer_id": customer_id, "customer": customer.legal_name if customer else "",
            "amount": str(amount), "kinds": sorted(kinds), "months": sorted(months)}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def order_detail(db_url: str, scope: Scope, order_id: str, today: dt.date | None = None
                 ) -> dict | None:
    """Every rebate line of an order (settled and expected), its customer, and the text and
    effective dates of the policies involved. None when there is no such order."""
    if "\x00" in order_id:  # no order id holds one, and PostgreSQL refuses to look it up
        return None
    with session_scope(db_url) as s:
        order = s.get(IntentOrder, order_id)
        if order is None:
            return None
        customer = s.get(Customer, order.customer_id) if order.customer_id else None
        # the lines as the figures count them: by the rep and region each line was settled
        # under, which a customer moved to another region since does not change
        settled = s.exec(_filter(select(RebateLine, SettlementRun).join(
            SettlementRun, SettlementRun.id == RebateLine.run_id).where(
            RebateLine.order_id == order_id), scope).order_by(RebateLine.id)).all()
        settled_inputs = line_inputs(s, [ln for ln, _ in settled])
        book = policy_book(s)
        entered = s.get(OrderRebate, order_id)
        # why an order may show no line: booked under another rep or region (a customer moved
        # since), or not yet signed and delivered (nothing counts before)
        booked_anywhere = s.exec(select(RebateLine.id).where(
            RebateLine.order_id == order_id).limit(1)).first() is not None
        signed = s.exec(select(Quote.id).where(Quote.order_id == order_id,
                                               Quote.signed_at.is_not(None)).limit(1)).first()
        # its latest delivery (day, when recorded): a settlement of that month (or a later
        # one) that knew of it has read the order
        delivered = s.exec(select(sa.func.max(Delivery.delivered_on),
                                  sa.func.max(Delivery.recorded_at))
                           .where(Delivery.order_id == order_id)).one()
        delivered = delivered if delivered[0] is not None else None
        settled_since = delivered is not None and s.exec(select(SettlementRun.id).where(
            SettlementRun.month >= f"{max(order.order_date, delivered[0]):%Y-%m}",
            SettlementRun.as_of >= delivered[1]).limit(1)).first() is not None
        # the customers whose buckets can hold the order's lines: its customer now, and
        # those it was paid under (a customer file merged since)
        customer_ids = {order.customer_id} | set(s.exec(select(RebateLine.customer_id)
                                                          .distinct().where(
            RebateLine.order_id == order_id)))
    expected = [(m, d) for m, d in expected_lines(db_url, scope, today, customer_ids)
                if d.order_id == order_id]
    own = in_scope(scope, order.rep_id, customer.region if customer else None)
    if not (settled or expected or own):
        raise BoardAccessError(f"意向单 {order_id} 不在您的查看范围内")
    # the rebate computed at entry, under the order page's rule (the order's rep and the
    # customer's region now): an order not delivered yet has nothing else to show
    preview = _entered_preview(entered) if entered is not None and own else None
    lines = [{"month": ln.month, "revision": run.revision,
              "status": "confirmed" if run.status == "confirmed" else "pending",
              # the customer's statement of the revision the line is on, as it is now
              # (the customer it was booked to: a file merged since keeps its statement)
              "statement_no": statement_number(ln.month, run.revision, ln.booked_customer_id,
                                               run.status),
              "policy_code": ln.policy_code, "policy_version": ln.policy_version,
              "clause": ln.clause, "period": ln.period, "kind": KIND_LABELS[ln.kind],
              "kind_code": ln.kind,
              "basis": str(ln.basis_amount), "rate": str(ln.rate),
              "policy_rate": _text(policy_rate(inputs)), "amount": str(ln.amount),
              **_paid_and_due(Decimal(str(ln.due_amount)), Decimal(str(ln.amount)), inputs),
              "explanation": ln.explanation} for (ln, run), inputs in zip(settled, settled_inputs)]
    lines += [{"month": m, "revision": None,
               "status": "expected", "statement_no": None, "policy_code": d.policy_code,
               "policy_version": d.policy_version, "clause": d.clause, "period": d.period,
               "kind": KIND_LABELS[d.kind], "kind_code": d.kind,
               "basis": str(d.basis), "rate": str(d.rate),
               "policy_rate": _text(policy_rate(d.inputs)), "amount": str(d.amount),
               **_paid_and_due(d.due, d.amount, d.own_inputs),
               "explanation": d.explanation} for m, d in expected]
    none_because = None
    if not lines:
        # signed and delivered, settled since and expected to pay nothing: no rule in force
        # pays it (None: its month is not settled yet and this month's figure has nothing)
        none_because = ("booked_elsewhere" if booked_anywhere else "not_signed" if not signed
                        else "not_delivered" if not delivered
                        else "no_rule" if settled_since else None)
    policies = []
    cited = {(x["policy_code"], x["policy_version"]) for x in lines}
    cited |= {(r["policy_code"], r["policy_version"]) for r in (preview or {}).get("rules", ())}
    for code, version in sorted(cited):
        published = book.version(code, version)
        if published is None:
            continue
        # the order dates the version governs now; none (superseded) when a later version
        # took over before it began: its lines were settled while it was in force
        window = next((w for w in book.windows(code) if w.version == version), None)
        start, end = (window.start, window.end) if window else (
            published.spec.effective_from, published.spec.effective_to)
        policies.append({"code": code, "version": version, "name": published.spec.name,
                         "text": published.spec.text or "",
                         "effective_from": start.isoformat(),
                         "effective_to": end.isoformat() if end else None,
                         "superseded": window is None})
    return {"order_id": order.id, "order_date": order.order_date.isoformat(),
            "rep_id": order.rep_id,
            "customer": {"customer_id": customer.id, "legal_name": customer.legal_name,
                         "uscc": customer.uscc, "tier": customer.tier, "region": customer.region}
            if customer else None,
            "lines": lines, "none_because": none_because, "preview": preview,
            "policies": policies}


def _paid_and_due(due: Decimal, amount: Decimal, inputs: dict) -> dict:
    """What the order's rule had paid before the line, what it is due now, and the change
    between them (`change`: the whole of it; a claw-back booked to two reps or regions is a
    line each, whose `amount` is its part)."""
    change = Decimal(inputs["part_of"]) if "part_of" in inputs else amount
    paid = Decimal(inputs["paid_before"]) if "paid_before" in inputs else due - change
    return {"paid_before": str(paid), "due": str(due), "change": str(change)}


def _entered_preview(row: OrderRebate) -> dict:
    """The order's rebate as previewed when it was entered: the sentence the order page and
    the quote show, and per rule the policy version, clause, amount and explanation."""
    try:
        detail = json.loads(row.detail or "{}")
    except ValueError:
        detail = {}
    rules = [{"policy_code": r["policy_code"], "policy_version": int(r["policy_version"]),
              "clause": r.get("clause") or "", "rule_name": r.get("rule_name") or "",
              "amount": str(r.get("amount") or "0.00"),
              "explanation": r.get("explanation") or ""}
             for r in (detail.get("rules") or []) if isinstance(r, dict)
             and r.get("policy_code") and r.get("policy_version") is not None]
    return {"sentence": row.sentence, "rate": str(row.rate), "amount": str(row.amount),
            "computed_on": business_date(row.computed_at).isoformat(), "rules": rules}
