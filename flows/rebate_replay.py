"""What-if replay (`salesops rebates replay`): settle past months again in memory, once with
the published policies and once with a draft published as well, and compare per customer and
rep — before anyone publishes the draft. Nothing is stored."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import select

from flows.policies import draft_version
from flows.rebate_data import add_months, policy_book, quarter_start
from flows.settlement import month_inputs, paid_in_db, parse_month
from models import Customer, IntentOrder, SettlementRun, Staff
from models.customer_files import active_id
from models.db import session_scope
from models.rebates.engine import Paid, evaluate, paid_after, settle
from models.rebates.policy import PolicySpec

ZERO = Decimal("0.00")


@dataclass
class ReplayRow:
    key: str  # customer legal name, rep name (id), or month
    published: Decimal = ZERO
    draft: Decimal = ZERO
    # the customer's id or the rep's staff id ("" for no rep), as `settle --json` keys them;
    # None for a month
    id: int | str | None = None

    @property
    def change(self) -> Decimal:
        return self.draft - self.published


@dataclass
class ReplayResult:
    policy: str
    version: int
    months: list[str]
    customers: dict[str, ReplayRow] = field(default_factory=dict)
    reps: dict[str, ReplayRow] = field(default_factory=dict)
    by_month: dict[str, ReplayRow] = field(default_factory=dict)
    # a customer's row → the legal names of the files merged into it, counted in that row
    merged: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> ReplayRow:
        row = ReplayRow("合计")
        for r in self.by_month.values():
            row.published += r.published
            row.draft += r.draft
        return row

    def as_dict(self) -> dict:
        def rows(d):
            return [{"name": r.key, **({"id": r.id} if r.id is not None else {}),
                     "published": str(r.published), "draft": str(r.draft),
                     "change": str(r.change)} for r in sorted(d.values(), key=lambda r: r.key)]
        total = self.total
        return {"policy": self.policy, "version": self.version, "months": self.months,
                "total": {"published": str(total.published), "draft": str(total.draft),
                          "change": str(total.change)},
                "by_month": rows(self.by_month), "customers": rows(self.customers),
                "reps": rows(self.reps), "merged": self.merged}


def _rep_key(names: dict[str, str], rep_id: str | None) -> str:
    """A rep's row: his name and id (two reps may share a name)."""
    if not rep_id:
        return "（未分配）"
    return f"{names[rep_id]}（{rep_id}）" if rep_id in names else rep_id


def _files_merged_into(s) -> dict[int, list[str]]:
    """The legal names of the files merged into each customer (a file merged into one merged
    since counts for the survivor). Their orders are its orders now: their rebates settled
    before the merge count in its row, and what publishing pays for them is booked to it."""
    out: dict[int, list[str]] = defaultdict(list)
    for cid, name in s.exec(select(Customer.id, Customer.legal_name).where(
            Customer.merged_into_id.is_not(None))):
        out[active_id(s, cid)].append(name)
    return {cid: sorted(names) for cid, names in out.items()}


def months_between(start: str, end: str) -> list[str]:
    first, _ = parse_month(start)
    last, _ = parse_month(end)
    if last < first:
        raise ValueError(f"结束月份 {end} 早于开始月份 {start}")
    out, day = [], first
    while day <= last:
        out.append(f"{day:%Y-%m}")
        day = add_months(day, 1)
    return out


def replay(db_url: str, draft: PolicySpec, start: str, end: str) -> ReplayResult:
    """Settle `start` … `end` month by month, as finance would have, under both sets of
    policies; both start from what was really paid before `start`."""
    months = months_between(start, end)
    version = draft_version(db_url, draft)
    with session_scope(db_url) as s:
        books = {"published": policy_book(s), "draft": policy_book(s, extra=[version])}
        reps = {p.id: p.name for p in s.exec(select(Staff))}
        # months before the first one settled were settled before the hub (or never): no run
        # paid them and none can now (a later month is settled), unless a back-dated version
        # reaches them — the customers' quarters with orders dated from its start
        first_settled = s.exec(select(sa.func.min(SettlementRun.month))).one()
        reached = {(customer, quarter_start(day)) for customer, day in s.exec(
            select(IntentOrder.customer_id, IntentOrder.order_date).distinct().where(
                IntentOrder.order_date >= draft.effective_from))}
        merged = _files_merged_into(s)
    before = f"{add_months(parse_month(start)[0], -1):%Y-%m}"
    # per scenario, what is paid per (bucket, order) after the months replayed so far (what
    # was really paid before `start` included, from the first month touching it)
    paid_now: dict[str, dict[tuple[str, str], Paid]] = {k: {} for k in books}
    result = ReplayResult(draft.code, version.version, months)
    for month in months:
        # the first month settled after publishing reaches back to the draft's start, as the
        # next real settlement would (earlier quarters included: flows.settlement); what is
        # published alone reads what its own settlement read (no draft: no such news)
        reads = {"published": month_inputs(db_url, month, books["draft"], replayed=True)}
        reads["draft"] = month_inputs(db_url, month, books["draft"], replayed=True,
                                      unpublished=draft.effective_from
                                      ) if month == months[0] else reads["published"]
        before_hub = first_settled is not None and month < first_settled
        for scenario, book in books.items():
            inputs = reads[scenario]
            lines = inputs.lines
            if before_hub:
                if scenario == "published":
                    continue  # nothing was paid, nothing will be
                # what the first settlement after publishing reaches, and pays from nothing
                lines = [ln for ln in lines
                         if (ln.customer_id, quarter_start(ln.order_date)) in reached]
            orders = {ln.order_id for ln in lines}
            paid = paid_in_db(db_url, inputs.windows, before)
            paid.update({key: value for key, value in paid_now[scenario].items()
                         if key[1] in orders})
            drafts = settle(evaluate(lines, book, inputs.profiles, inputs.rates), paid,
                            rerun=False)
            for d in drafts:
                key = (d.bucket_key, d.order_id)
                paid_now[scenario][key] = paid_after(paid.get(key), d)
                name = inputs.profiles[d.customer_id].legal_name
                if d.customer_id in merged:
                    result.merged[name] = merged[d.customer_id]
                for table, row_key, row_id in (
                        (result.customers, name, d.customer_id),
                        (result.reps, _rep_key(reps, d.rep_id), d.rep_id or ""),
                        (result.by_month, month, None)):
                    row = table.setdefault(row_key, ReplayRow(row_key, id=row_id))
                    setattr(row, scenario, getattr(row, scenario) + d.amount)
    for month in months:
        result.by_month.setdefault(month, ReplayRow(month))
    return result
