"""What-if replay (`salesops rebates replay`): settle past months again in memory, once with
the published policies and once with a draft published as well, and compare per customer and
rep — before anyone publishes the draft. Nothing is stored."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlmodel import select

from flows.policies import draft_version
from flows.rebate_data import add_months, policy_book
from flows.settlement import month_inputs, paid_in_db, parse_month
from models import Staff
from models.db import session_scope
from models.rebates.engine import Paid, evaluate, paid_after, settle
from models.rebates.policy import PolicySpec

ZERO = Decimal("0.00")


@dataclass
class ReplayRow:
    key: str  # customer legal name, rep name (id), or month
    published: Decimal = ZERO
    draft: Decimal = ZERO

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

    @property
    def total(self) -> ReplayRow:
        row = ReplayRow("合计")
        for r in self.by_month.values():
            row.published += r.published
            row.draft += r.draft
        return row

    def as_dict(self) -> dict:
        def rows(d):
            return [{"name": r.key, "published": str(r.published), "draft": str(r.draft),
                     "change": str(r.change)} for r in sorted(d.values(), key=lambda r: r.key)]
        total = self.total
        return {"policy": self.policy, "version": self.version, "months": self.months,
                "total": {"published": str(total.published), "draft": str(total.draft),
                          "change": str(total.change)},
                "by_month": rows(self.by_month), "customers": rows(self.customers),
                "reps": rows(self.reps)}


def _rep_key(names: dict[str, str], rep_id: str | None) -> str:
    """A rep's row: his name and id (two reps may share a name)."""
    if not rep_id:
        return "（未分配）"
    return f"{names[rep_id]}（{rep_id}）" if rep_id in names else rep_id


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
        for scenario, book in books.items():
            inputs = reads[scenario]
            orders = {ln.order_id for ln in inputs.lines}
            paid = paid_in_db(db_url, inputs.windows, before)
            paid.update({key: value for key, value in paid_now[scenario].items()
                         if key[1] in orders})
            drafts = settle(evaluate(inputs.lines, book, inputs.profiles, inputs.rates), paid,
                            rerun=False)
            for d in drafts:
                key = (d.bucket_key, d.order_id)
                paid_now[scenario][key] = paid_after(paid.get(key), d)
                name = inputs.profiles[d.customer_id].legal_name
                for table, row_key in ((result.customers, name),
                                       (result.reps, _rep_key(reps, d.rep_id)),
                                       (result.by_month, month)):
                    row = table.setdefault(row_key, ReplayRow(row_key))
                    setattr(row, scenario, getattr(row, scenario) + d.amount)
    for month in months:
        result.by_month.setdefault(month, ReplayRow(month))
    return result
