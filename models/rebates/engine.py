"""Rebate computation (返利计算): dues per (bucket, order), settlement lines, order preview.

Pure: callers load lines, customers, payment rates and published versions, and store what
comes back. docs/rebates.md is the contract; the numbered steps below follow it.

Inside, money is integer fen and rates are integer numerators over a power of ten per rule,
so every sum is exact and each (order, rule) is rounded once, half up.
"""
from __future__ import annotations

import bisect
import datetime as dt
import functools
import json
import operator
import threading
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any, NamedTuple

from models.gc_pause import without_gc
from models.names import normalize_name
from models.staff import normalize_region
from models.rebates.formatting import (
    Memo, exact_percent, fen_text, fen_to_yuan, money_fen, payment_rate_text, percent_value,
    plain_number,
)
from models.rebates.payment_rate import month_key
from models.rebates.policy import AppliedRule, PolicyBook, RuleSpec

RATE_PLACES = Decimal("0.000001")  # rate columns are Numeric(9, 6): 4 decimals of a percent

# no payment rate: nothing fell due in the three months (no invoice, or each reversed in full)
NO_DUE = "近3个月无到期应收（无到期发票，或均已红冲）"
KIND_LABELS = {"rebate": "返利", "tier_difference": "阶梯补差", "clawback": "退货冲回",
               "adjustment": "更正"}
_QUARTER_NAMES = "一二三四"


# --------------------------------------------------------------------------- inputs

class SaleLine(NamedTuple):
    """One order line as the engine counts it (a named tuple: a settlement makes hundreds of
    thousands of them, four times faster than frozen dataclasses).

    `net_quantity`: for settlement, delivered minus returned as of the evaluation date; for a
    preview, ordered minus returned. A negative value counts as 0.
    `unit_price`: tax included, yuan with at most two decimals.
    `amount_fen`: set for a row standing for several lines of one order that no rule can tell
    apart (see item_classes): their summed net amount in fen, each line's negative net already
    counted as 0, `net_quantity` their summed net units; `unit_price` is then None.
    """

    order_id: str
    line_no: int
    customer_id: Hashable
    order_date: dt.date
    sku: str
    product_line: str
    unit_price: Decimal
    net_quantity: int
    rep_id: str | None = None  # carried onto the rebate lines (totals per rep)
    amount_fen: int | None = None


@dataclass(frozen=True)
class ItemClasses:
    """Classes of products that every rule of a book takes or leaves alike: their lines in
    one order can be summed before evaluation (the database does it; see item_classes).
    A rule decides on a product by its SKU and its product line, so a product no rule names
    is classed by its product line alone, and the catalogue need not be read."""

    # class numbers; None: no class, the product is left out
    skus: Mapping[str, int | None]  # of a SKU some rule names
    lines: Mapping[str, int | None]  # of any other product of a product line
    other: int | None  # of any other product
    per_line: frozenset[int]  # classes a marginal rule by quantity takes: lines stay apart

    def number(self, sku: str, product_line: str) -> int | None:
        if sku in self.skus:
            return self.skus[sku]
        return self.lines.get(product_line, self.other)


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    customer_id: Hashable
    tier: str | None
    region: str | None
    uscc: str | None
    legal_name: str


class DatedProfiles(dict):
    """Profiles by customer as they are now, and `changes`: for the few customers whose tier
    or region changed since the first order date asked for, the profile each had from a
    business date on — [(first day, profile), …] by day, the first from dt.date.min. An
    order uses its customer's profile on its order date (profile_on); a plain mapping of
    profiles is the current profile for every date."""

    __slots__ = ("changes",)

    def __init__(self, profiles: Mapping[Hashable, CustomerProfile] = (),
                 changes: Mapping[Hashable, Sequence[tuple[dt.date, CustomerProfile]]]
                 | None = None):
        super().__init__(profiles)
        self.changes = dict(changes or {})


def profile_on(customers: Mapping[Hashable, CustomerProfile], customer_id: Hashable,
               day: dt.date) -> CustomerProfile | None:
    """The customer's profile on `day` (see DatedProfiles)."""
    changes = getattr(customers, "changes", None)
    history = changes.get(customer_id) if changes else None
    if not history:
        return customers.get(customer_id)
    found = history[0][1]
    for first, profile in history:
        if first > day:
            break
        found = profile
    return found


PaymentRateLookup = Callable[[Hashable, str], "Decimal | None"] | Mapping


@dataclass(frozen=True)
class BucketKey:
    """(policy code, rule id, customer, period): the lines whose volume counts together."""

    policy_code: str
    rule_id: str
    customer_id: Hashable
    period: str  # 2027-01 or 2027Q1
    key: str = field(init=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "key",
                           f"{self.policy_code}|{self.rule_id}|{self.customer_id}|{self.period}")

    @property
    def bucket_key(self) -> str:
        return self.key

    @classmethod
    def parse(cls, key: str) -> BucketKey:
        code, rule_id, customer, period = key.split("|")
        return cls(code, rule_id, int(customer) if customer.isdigit() else customer, period)


def _frozen(cls: type, **fields: Any) -> Any:
    """An instance of a frozen dataclass from ALL its fields, past its __init__ (one
    object.__setattr__ per field: 5x the time for the tens of thousands a settlement makes).
    No __post_init__ runs: derived fields are given too."""
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


def period_of(day: dt.date, period: str) -> str:
    if period == "quarter":
        return f"{day.year:04d}Q{(day.month - 1) // 3 + 1}"
    return f"{day.year:04d}-{day.month:02d}"


def period_first_month(period: str) -> str:
    """2027Q1 → 2027-01; 2027-02 → 2027-02."""
    if "Q" in period:
        year, q = period.split("Q")
        return f"{year}-{(int(q) - 1) * 3 + 1:02d}"
    return period


@functools.lru_cache(maxsize=1024)
def period_label(period: str) -> str:
    """2027Q1 → 2027年第一季度; 2027-02 → 2027年2月."""
    if "Q" in period:
        year, q = period.split("Q")
        return f"{year}年第{_QUARTER_NAMES[int(q) - 1]}季度"
    year, month = period.split("-")
    return f"{year}年{int(month)}月"


# --------------------------------------------------------------------------- compiled rules

class _Rule:
    """A (version, rule) prepared for fast evaluation: thresholds in fen or units, rates as
    integer numerators over `den`."""

    __slots__ = ("applied", "code", "version", "policy_name", "spec", "rule_id", "slot",
                 "is_amount", "quarter", "marginal", "exclusive", "rank", "lowers", "uppers",
                 "nums", "den", "cap_fen", "need_lines", "product_lines", "skus", "tiers",
                 "regions", "window", "pay", "ex_skus", "ex_lines", "ex_customers",
                 "rate_texts", "tier_descriptions", "range_texts", "clause", "cited")

    def __init__(self, applied: AppliedRule, slot: int):
        r = applied.rule
        self.applied = applied
        self.code, self.version = applied.code, applied.version
        self.policy_name = applied.policy_name
        self.spec: RuleSpec = r
        self.rule_id = r.id
        self.slot = slot
        self.is_amount = r.measure == "amount"
        self.quarter = r.period == "quarter"
        self.marginal = r.style == "marginal"
        self.exclusive = r.stacking == "exclusive"
        self.rank = (-r.priority, applied.code, r.id)
        scale = 2 if self.is_amount else 0
        self.lowers = tuple(int(t.lower.scaleb(scale)) for t in r.tiers)
        self.uppers = tuple(None if t.upper is None else int(t.upper.scaleb(scale))
                            for t in r.tiers)
        places = max(max(0, -t.rate.as_tuple().exponent) for t in r.tiers)
        self.den = 10 ** places
        self.nums = tuple(int(t.rate.scaleb(places)) for t in r.tiers)
        self.cap_fen = None if r.cap is None else int(r.cap.scaleb(2))
        # marginal by quantity needs each line's units and price at its place on the axis
        self.need_lines = self.marginal and not self.is_amount
        a, x = r.applies_to, r.exclude
        self.product_lines = None if a.product_lines is None else frozenset(a.product_lines)
        self.skus = None if a.skus is None else frozenset(a.skus)
        self.tiers = None if a.customer_tiers is None else frozenset(a.customer_tiers)
        # as customers' regions are stored: a policy's 华东大区 is the customers' 华东
        self.regions = None if a.regions is None else frozenset(map(normalize_region, a.regions))
        self.window = a.order_dates
        self.pay = a.payment_rate
        self.ex_skus = frozenset(x.skus)
        self.ex_lines = frozenset(x.product_lines)
        self.ex_customers = frozenset(normalize_name(c) for c in x.customers)
        # what explanations and inputs say of each tier, written once per rule
        self.rate_texts = tuple(exact_percent(t.rate) for t in r.tiers)
        self.tier_descriptions = tuple(self._describe(i) for i in range(len(r.tiers)))
        self.range_texts = tuple(self._range_text(i) for i in range(len(r.tiers)))
        self.clause = r.clause or f"规则 {r.id}"
        self.cited = f"按《{self.policy_name}》（{self.code} 第{self.version}版）{r.citation}："

    # -- conditions (each returns the Chinese reasons it does not apply; empty: applies)
    def customer_ok(self, profile: CustomerProfile, pay: Decimal | None) -> bool:
        """customer_reasons() is empty, less the order-date window (checked per day)."""
        if self.tiers is not None and profile.tier not in self.tiers:
            return False
        if self.regions is not None and profile.region not in self.regions:
            return False
        if self.ex_customers and (normalize_name(profile.uscc or "") in self.ex_customers
                                  or normalize_name(profile.legal_name) in self.ex_customers):
            return False
        c = self.pay
        if c is not None:
            if pay is None:
                return c.no_history == "pass"
            return pay >= c.min
        return True

    def customer_reasons(self, profile: CustomerProfile, day: dt.date,
                         pay: Decimal | None) -> list[str]:
        out = []
        w = self.window
        if w is not None and not w.contains(day):
            out.append(f"订单日期 {day} 不在条款适用期（{w.start or '不限'} 至 {w.end or '不限'}）")
        if self.tiers is not None and profile.tier not in self.tiers:
            out.append(f"客户等级 {profile.tier or '未定'} 不在适用范围（{'、'.join(sorted(self.tiers))}）")
        if self.regions is not None and profile.region not in self.regions:
            out.append(f"客户大区 {profile.region or '未定'} 不在适用范围"
                       f"（{'、'.join(sorted(self.regions))}）")
        if self.ex_customers and (normalize_name(profile.uscc or "") in self.ex_customers
                                  or normalize_name(profile.legal_name) in self.ex_customers):
            out.append("客户在本条款排除名单中")
        c = self.pay
        if c is not None:
            if pay is None:
                if c.no_history == "fail":
                    out.append(f"{NO_DUE}，无法计算回款率（条款要求不低于 "
                               f"{exact_percent(c.min)}）")
            elif pay < c.min:
                out.append(f"近3个月回款率 {payment_rate_text(pay, c.min)} 低于 "
                           f"{exact_percent(c.min)}")
        return out

    def item_reasons(self, sku: str, product_line: str) -> list[str]:
        out = []
        if self.product_lines is not None and product_line not in self.product_lines:
            out.append(f"产品线 {product_line} 不在适用范围（{'、'.join(sorted(self.product_lines))}）")
        if self.skus is not None and sku not in self.skus:
            out.append(f"SKU {sku} 不在适用范围")
        if product_line in self.ex_lines:
            out.append(f"产品线 {product_line} 被排除")
        if sku in self.ex_skus:
            out.append(f"SKU {sku} 被排除")
        return out

    # -- tiers
    def tier_at(self, volume: int) -> int:
        """Index of the tier the volume reached (-1: below the first). Above a closed last
        tier the last tier stays reached."""
        return bisect.bisect_right(self.lowers, volume) - 1

    def band_earn(self, start: int, end: int) -> int:
        """Σ over tiers of (part of [start, end) inside the tier) × rate numerator."""
        total = 0
        for lo, up, num in zip(self.lowers, self.uppers, self.nums):
            a = start if start > lo else lo
            b = end if up is None or end < up else up
            if b > a:
                total += (b - a) * num
        return total

    def band_parts(self, start: int, end: int) -> list[tuple[int, int]]:
        """[(tier index, part)] of [start, end) (for explanations)."""
        out = []
        for i, (lo, up) in enumerate(zip(self.lowers, self.uppers)):
            a = max(start, lo)
            b = end if up is None else min(end, up)
            if b > a:
                out.append((i, b - a))
        return out

    def describe_tier(self, i: int) -> dict:
        """The tier as inputs record it (a new dict: callers add to it)."""
        return dict(self.tier_descriptions[i])

    def _describe(self, i: int) -> dict:
        t = self.spec.tiers[i]
        return {"index": i + 1, "from": plain_number(t.lower),
                "to": None if t.upper is None else plain_number(t.upper),
                "rate": format(t.rate, "f")}

    def tier_range_text(self, i: int) -> str:
        return self.range_texts[i]

    def _range_text(self, i: int) -> str:
        t = self.spec.tiers[i]
        unit = " 元" if self.is_amount else " 件"
        lo = f"{t.lower:,}" if self.is_amount else plain_number(t.lower)
        if t.upper is None:
            return f"{lo}{unit}及以上"
        up = f"{t.upper:,}" if self.is_amount else plain_number(t.upper)
        return f"{lo}–{up}{unit}"

    def volume_text(self, volume: int) -> str:
        return money_fen(volume) if self.is_amount else f"{volume:,} 件"

    def volume_value(self, volume: int) -> str | int:
        return fen_text(volume) if self.is_amount else volume


_COMPILE_LOCK = threading.Lock()


def _compiled(book: PolicyBook, day: dt.date) -> tuple[_Rule, ...]:
    """The compiled rules in force on `day`, cached on the book. Compiled under a lock: the API
    may preview in several threads, and a rule's slot must be unique within the book."""
    memo = book.memo
    by_date = memo.get("engine.by_date")
    hit = by_date.get(day) if by_date is not None else None
    if hit is not None:
        return hit
    with _COMPILE_LOCK:
        return _compile_day(book, day)


def _compile_day(book: PolicyBook, day: dt.date) -> tuple[_Rule, ...]:
    memo = book.memo
    by_date = memo.setdefault("engine.by_date", {})
    hit = by_date.get(day)
    if hit is None:
        rules = memo.setdefault("engine.rules", {})
        out = []
        for applied in book.rules_on(day):
            key = (applied.code, applied.version, applied.rule.id)
            cr = rules.get(key)
            if cr is None:
                cr = rules[key] = _Rule(applied, len(rules))
            out.append(cr)
        # one object per distinct set of rules: callers key caches on its identity
        interned = memo.setdefault("engine.sets", {})
        hit = by_date[day] = interned.setdefault(tuple(out), tuple(out))
    return hit


def _stack(rules: list[_Rule]) -> list[_Rule]:
    """Stacking for one line: the highest-priority exclusive rule alone, else all."""
    exclusive = [r for r in rules if r.exclusive]
    if exclusive:
        return [min(exclusive, key=lambda r: r.rank)]
    return rules


def _round_div(num: int, den: int) -> int:
    """num / den rounded half up (num ≥ 0)."""
    return (2 * num + den) // (2 * den)


def _lookup(payment_rates: PaymentRateLookup) -> Callable[[Hashable, str], Decimal | None]:
    if isinstance(payment_rates, Mapping):
        return lambda customer_id, month: payment_rates.get((customer_id, month))
    return payment_rates


# --------------------------------------------------------------------------- evaluation

# order accumulator (a list for speed): basis fen, volume contribution, rule, order date,
# lines or None, payment rate, rep, customer profile on the order date
_BASIS, _SIZE, _RULE, _DATE, _LINES, _PAY, _REP, _PROFILE = range(8)


class _Bucket:
    __slots__ = ("key", "profile", "orders", "volume", "caps", "newest", "versions", "dues",
                 "shared")

    def __init__(self, key: BucketKey, profile: CustomerProfile):
        self.key = key
        self.profile = profile
        self.orders: dict[str, list] = {}
        self.volume = 0
        # per version with a cap: (room it left, uncapped total of its orders, whether it
        # bit, the cap, what the orders of the versions before earned)
        self.caps: dict[int, tuple[int, int, bool, int, int]] = {}
        self.newest: _Rule | None = None
        self.versions: tuple[int, ...] = ()
        self.dues: dict[str, OrderDue] = {}  # filled for previews only
        self.shared: dict[int, _Shared] = {}  # per version


class _InBucket:
    """What a due and a line know from their bucket."""

    __slots__ = ()
    bucket: BucketKey

    @property
    def bucket_key(self) -> str:
        return self.bucket.key

    @property
    def customer_id(self) -> Hashable:
        return self.bucket.customer_id

    @property
    def period(self) -> str:
        return self.bucket.period


class _Shared:
    """What the orders of a bucket under one version have in common: the bucket's inputs
    (and their JSON members) and the sentences every order's explanation starts from."""

    __slots__ = ("inputs", "json", "head", "rate_text", "tier_text", "cap_text")

    def __init__(self, r: _Rule, b: _Bucket):
        inputs: dict[str, Any] = {
            "policy_code": r.code, "policy_name": r.policy_name, "policy_version": r.version,
            "rule_id": r.rule_id, "rule_name": r.spec.name,
            "clause": r.clause, "style": r.spec.style,
            "measure": r.spec.measure, "period": b.key.period,
            "bucket_volume": r.volume_value(b.volume),
            "customer_tier": b.profile.tier, "region": b.profile.region,
            "versions_in_bucket": list(b.versions),
        }
        if r.pay is not None:
            inputs["payment_rate_min"] = format(r.pay.min, "f")
            inputs["no_history"] = r.pay.no_history
        ti = r.tier_at(b.volume)
        inputs["tier"] = r.describe_tier(ti) if ti >= 0 else None
        cap = b.caps.get(r.version)
        if cap is not None:
            inputs["cap"] = fen_text(cap[3])
            inputs["bucket_uncapped_total"] = fen_text(cap[1])
            inputs["capped"] = cap[2]
            if cap[4]:
                inputs["earned_under_earlier_versions"] = fen_text(cap[4])
                inputs["cap_room"] = fen_text(cap[0])
        self.inputs = inputs
        self.json = _json_members(inputs)
        measure = "销售额" if r.is_amount else "销量"
        head = (f"{r.cited}客户{period_label(b.key.period)}{measure}累计 "
                f"{r.volume_text(b.volume)}")
        if len(b.versions) > 1:
            head += (f"（本期由第{'、'.join(map(str, b.versions))}版共同累计，"
                     f"本单按第{r.version}版档位）")
        self.head = head
        self.rate_text = tier_text = None
        if ti < 0:
            tier_text = f"，未达到最低档（{r.tier_range_text(0)}），本单不返利。"
        else:
            self.rate_text = rate_text = r.rate_texts[ti]
            if len(r.lowers) == 1 and r.lowers[0] == 0 and r.uppers[0] is None:
                tier_text = f"，按 {rate_text} 计返；"
            else:
                beyond = (ti == len(r.lowers) - 1 and r.uppers[ti] is not None
                          and b.volume >= r.uppers[ti])
                tier_text = (f"，达到第{ti + 1}档（{r.tier_range_text(ti)}"
                             f"{'，超过最高档按最高档' if beyond else ''}，返利 {rate_text}），"
                             f"全额追溯适用该档比例；")
        self.tier_text = tier_text
        self.cap_text = None
        if cap is not None and cap[2]:
            room = (f"本期封顶 {money_fen(cap[3])}，此前版本的订单已返 {money_fen(cap[4])}，"
                    f"本版订单可返 {money_fen(cap[0])}" if cap[4] else
                    f"本期封顶 {money_fen(cap[0])}")
            self.cap_text = (f"{room}，未封顶合计 {money_fen(cap[1])}，按各订单应返金额比例分摊，"
                             "本单由 ")


class OrderDue(_InBucket):
    """What one order has earned under one rule, cumulatively, as of the evaluation.

    Read-only. `inputs` and `explanation` are composed when read (settlement reads them only
    for the lines it writes).
    """

    __slots__ = ("bucket", "order_id", "due_fen", "uncapped_due_fen", "_acc", "_b", "_span")

    def __init__(self, b: _Bucket, order_id: str, acc: list, due_fen: int, uncapped: int,
                 span: tuple[int, int] | None):
        self.bucket: BucketKey = b.key
        self.order_id = order_id
        self.due_fen = due_fen  # after the cap
        self.uncapped_due_fen = uncapped
        self._acc = acc
        self._b = b
        self._span = span

    @property
    def order_date(self) -> dt.date:
        return self._acc[_DATE]

    @property
    def basis_fen(self) -> int:
        return self._acc[_BASIS]

    @property
    def rep_id(self) -> str | None:
        return self._acc[_REP]

    @property
    def _rule(self) -> _Rule:
        return self._acc[_RULE]

    @property
    def _pay(self) -> Decimal | None:
        return self._acc[_PAY]

    # identity
    @property
    def policy_code(self) -> str:
        return self._rule.code

    @property
    def policy_name(self) -> str:
        return self._rule.policy_name

    @property
    def policy_version(self) -> int:
        return self._rule.version

    @property
    def rule_id(self) -> str:
        return self._rule.rule_id

    @property
    def rule_name(self) -> str:
        return self._rule.spec.name

    @property
    def clause(self) -> str:
        return self._rule.clause

    @property
    def style(self) -> str:
        return self._rule.spec.style

    @property
    def measure(self) -> str:
        return self._rule.spec.measure

    @property
    def region(self) -> str | None:
        """The customer's region on the order date: where the line is booked."""
        return self._acc[_PROFILE].region

    @property
    def payment_rate(self) -> Decimal | None:
        return self._pay

    # money
    @property
    def basis(self) -> Decimal:
        return fen_to_yuan(self.basis_fen)

    @property
    def due(self) -> Decimal:
        return fen_to_yuan(self.due_fen)

    @property
    def rate(self) -> Decimal:
        """due ÷ basis, to 6 places of the fraction (4 of a percent)."""
        return _RATES[self._rate_millionths()]

    def _rate_millionths(self) -> int:
        basis = self._acc[_BASIS]
        return _round_div(self.due_fen * 1_000_000, basis) if basis else 0

    # why
    def _shared(self) -> _Shared:
        """What every order of the bucket under the same version has in common (inputs and
        sentences), composed once: settlement reads it for many lines."""
        acc, b = self._acc, self._b
        r = acc[_RULE]
        hit = b.shared.get(r.version)
        if hit is None:
            hit = b.shared[r.version] = _Shared(r, b)
        return hit

    @property
    def inputs(self) -> dict[str, Any]:
        return {**self._shared().inputs, **self.own_inputs()}

    def own_inputs(self) -> dict[str, Any]:
        """The inputs that are this order's own (the rest are the bucket's)."""
        acc = self._acc
        r = acc[_RULE]
        out: dict[str, Any] = {
            "order_date": _iso_date(acc[_DATE]), "basis": fen_text(acc[_BASIS]),
            "due": fen_text(self.due_fen), "rate": _RATE_TEXTS[self._rate_millionths()],
            "payment_rate": _payment_rate_input(acc[_PAY]),
        }
        if self._span is not None:
            start, end = self._span
            out["order_span"] = {"from": r.volume_value(start), "to": r.volume_value(end)}
            out["marginal_parts"] = [{**r.tier_descriptions[i], "part": r.volume_value(part)}
                                     for i, part in r.band_parts(start, end)]
        if r.version in self._b.caps:
            out["uncapped_due"] = fen_text(self.uncapped_due_fen)
        profile = acc[_PROFILE]
        if profile is not self._b.profile:  # its tier or region changed within the bucket
            out["customer_tier"], out["region"] = profile.tier, profile.region
        return out

    @property
    def explanation(self) -> str:
        acc = self._acc
        r = acc[_RULE]
        shared = self._shared()
        uncapped = money_fen(self.uncapped_due_fen)
        if self._span is None:
            text = shared.head + shared.tier_text
            if shared.rate_text is not None:
                text += (f"本单计返基数 {money_fen(acc[_BASIS])} × {shared.rate_text}"
                         f" = {uncapped}。")
        else:
            start, end = self._span
            bands = r.band_parts(start, end)
            where = f"本单位于累计 {r.volume_text(start)} 至 {r.volume_text(end)} 区间"
            if not bands:
                text = f"{shared.head}，分段累进：{where}，不在任何返利档内，本单不返利。"
            else:
                pieces = "、".join(f"{r.volume_text(part)} 按第{i + 1}档 "
                                  f"{r.rate_texts[i]}" for i, part in bands)
                text = f"{shared.head}，分段累进：{where}，其中 {pieces}，合计 {uncapped}。"
        if shared.cap_text is not None:
            text += f"{shared.cap_text}{uncapped} 调整为 {money_fen(self.due_fen)}。"
        if r.pay is not None:
            text += _pay_sentence(acc[_PAY], r.pay.min)
        return text

    def __repr__(self) -> str:
        return (f"OrderDue({self.bucket.key!r}, {self.order_id!r}, basis={self.basis}, "
                f"due={self.due})")


# rates in millionths as Decimal fractions and their text (a few thousand on 30k lines)
_RATES = Memo(lambda millionths: Decimal(millionths).scaleb(-6))
_RATE_TEXTS = Memo(lambda millionths: format(_RATES[millionths], "f"))


@functools.lru_cache(maxsize=4096)
def _iso_date(day: dt.date) -> str:
    return day.isoformat()


@functools.lru_cache(maxsize=65_536)
def _payment_rate_input(pay: Decimal | None) -> str | None:
    """A customer's payment rate as inputs record it (one per customer and month, on many
    lines): rounded down, as every rate shown against a threshold (never up past it). Equal
    rates written differently (0.9, 0.90) round to the same text."""
    return None if pay is None else format(pay.quantize(RATE_PLACES, rounding=ROUND_FLOOR), "f")


_PAY_SENTENCES: dict[tuple[Decimal | None, Decimal], str] = {}


def _pay_sentence(pay: Decimal | None, minimum: Decimal) -> str:
    hit = _PAY_SENTENCES.get((pay, minimum))
    if hit is None:
        if pay is None:
            hit = f"{NO_DUE}，按条款视为满足回款率条件。"
        else:
            hit = (f"近3个月回款率 {payment_rate_text(pay, minimum)}"
                   f"（要求不低于 {exact_percent(minimum)}）。")
        if len(_PAY_SENTENCES) < 100_000:
            _PAY_SENTENCES[(pay, minimum)] = hit
    return hit


class _Evaluation:
    def __init__(self) -> None:
        self.buckets: dict[str, _Bucket] = {}
        self.dues: dict[tuple[str, str], OrderDue] = {}


def _evaluate(lines: Iterable[SaleLine], book: PolicyBook,
              customers: Mapping[Hashable, CustomerProfile], payment_rates: PaymentRateLookup,
              keep_lines: bool | Collection[str] = False,
              keep_dues: bool = False) -> _Evaluation:
    """`keep_lines`: keep the lines of every order (True) or of the orders given, on their
    dues (for earnings per line); `keep_dues`: keep each bucket's dues by order (implied by
    keeping lines)."""
    keep_all = keep_lines is True
    keep_some = keep_lines if keep_lines and not keep_all else None
    keep_dues = keep_dues or bool(keep_lines)
    rate_of = _lookup(payment_rates)
    ev = _Evaluation()
    buckets = ev.buckets
    pay_cache: dict[tuple[Hashable, str], Decimal | None] = {}
    # per book, shared by every evaluation (and thread) with it: the distinct sets of
    # candidate rules, and which of them take an item
    memo = book.memo
    sig_ids: dict[tuple[int, ...], int] = memo.setdefault("engine.sig_ids", {})
    sig_rules: list[tuple[_Rule, ...]] = memo.setdefault("engine.sig_rules", [])
    ctxs: dict[tuple[Hashable, dt.date], tuple | None] = {}
    items: dict[tuple[int, str, str], tuple[tuple[int, ...], bool]] = memo.setdefault(
        "engine.items", {})
    answers: dict[tuple[tuple[int, ...], bool], tuple[tuple[int, ...], bool]] = \
        memo.setdefault("engine.answers", {})
    prices: dict[Decimal, int] = {}
    none = object()

    days: dict[dt.date, tuple] = {}
    months: dict[tuple, tuple | None] = {}
    changed = getattr(customers, "changes", None) or None

    def make_ctx(customer_id: Hashable, day: dt.date):
        """Rules whose customer/date/payment conditions hold, with their buckets. Built once
        per (customer, month, set of rules in force, date windows met); most days of a month
        share it."""
        info = days.get(day)
        if info is None:
            rules = _compiled(book, day)
            mask = tuple(r.window.contains(day) for r in rules if r.window is not None)
            info = days[day] = (rules, id(rules), mask, month_key(day),
                                (period_of(day, "month"), period_of(day, "quarter")))
        rules, rules_id, mask, month, periods = info
        if not rules:
            return None
        mkey = (customer_id, rules_id, mask, month)
        if changed is not None and customer_id in changed:
            # a customer whose tier or region changed: its profile on the order date
            profile = profile_on(customers, customer_id, day)
            mkey += (profile,)
        else:
            profile = customers.get(customer_id)
        hit = months.get(mkey, none)
        if hit is not none:
            return hit
        if profile is None:
            raise KeyError(f"no CustomerProfile for customer {customer_id!r}")
        pkey = (customer_id, month)
        if pkey not in pay_cache:
            pay_cache[pkey] = rate_of(customer_id, month)
        pay = pay_cache[pkey]
        cands = tuple(r for r in rules if (r.window is None or r.window.contains(day))
                      and r.customer_ok(profile, pay))
        if not cands:
            months[mkey] = None
            return None
        sig = tuple(r.slot for r in cands)
        sig_id = sig_ids.get(sig)
        if sig_id is None:
            with _COMPILE_LOCK:
                sig_id = sig_ids.get(sig)
                if sig_id is None:
                    sig_rules.append(cands)
                    sig_id = sig_ids[sig] = len(sig_rules) - 1
        pairs = []
        for r in cands:
            # the month decides both periods (month and quarter) of the bucket
            period = periods[r.quarter]
            key = f"{r.code}|{r.rule_id}|{customer_id}|{period}"
            b = buckets.get(key)
            if b is None:
                b = buckets[key] = _Bucket(_frozen(
                    BucketKey, policy_code=r.code, rule_id=r.rule_id, customer_id=customer_id,
                    period=period, key=key), profile)
            pairs.append((b.orders, r, r.is_amount, r.need_lines or keep_all))
        hit = months[mkey] = (sig_id, tuple(pairs), pay, profile)
        return hit

    def match_item(sig_id: int, sku: str, product_line: str) -> tuple[tuple[int, ...], bool]:
        """Which candidate rules take the item (after stacking), and whether any of them
        needs each line by itself (marginal by quantity)."""
        cands = sig_rules[sig_id]
        ok = [r for r in cands if not r.item_reasons(sku, product_line)]
        chosen = set(id(r) for r in _stack(ok))
        idxs = tuple(i for i, r in enumerate(cands) if id(r) in chosen)
        return idxs, any(cands[i].need_lines for i in idxs)

    def add(ctx, idxs, oid, day, rep, amt, q, line):
        for i in idxs:
            orders, r, is_amount, need_lines = ctx[1][i]
            acc = orders.get(oid)
            if acc is None:
                acc = orders[oid] = [amt, amt if is_amount else q, r, day,
                                     [] if need_lines else None, ctx[2], rep, ctx[3]]
            else:
                acc[0] += amt
                acc[1] += amt if is_amount else q
            if line is not None:
                kept = acc[4]
                if kept is None:
                    kept = acc[4] = []
                kept.append(line)

    # 1. every line into the buckets of the rules that apply to it. Consecutive lines of one
    # order under the same rules are summed first and added once (most orders).
    last_c = last_d = last_ctx = None
    g_oid = g_idxs = g_ctx = g_day = g_rep = None
    g_amt = g_q = 0
    for ln in lines:
        cid = ln.customer_id
        day = ln.order_date
        if day == last_d and cid == last_c:
            ctx = last_ctx
        else:
            k = (cid, day)
            ctx = ctxs.get(k, none)
            if ctx is none:
                ctx = ctxs[k] = make_ctx(cid, day)
            last_c, last_d, last_ctx = cid, day, ctx
        if ctx is None:
            continue
        ik = (ctx[0], ln.sku, ln.product_line)
        hit = items.get(ik)
        if hit is None:
            # equal answers share one object: lines of an order with different SKUs under
            # the same rules are then summed before they are added
            hit = match_item(*ik)
            hit = items[ik] = answers.setdefault(hit, hit)
        idxs, need = hit
        if not idxs:
            continue
        q = ln.net_quantity
        if q < 0:
            q = 0
        amt = ln.amount_fen
        if amt is None:
            pf = prices.get(ln.unit_price)
            if pf is None:
                pf = prices[ln.unit_price] = _price_fen(ln.unit_price)
            amt = q * pf
        elif need:
            raise ValueError(f"order {ln.order_id}: summed lines given where each line counts")
        else:
            pf = None  # a summed row kept below stands for its lines by its amount
        if keep_all or (keep_some is not None and not need and ln.order_id in keep_some):
            need = True
        oid = ln.order_id
        if idxs is g_idxs and ctx is g_ctx and oid == g_oid:
            g_amt += amt
            g_q += q
            continue
        if g_oid is not None:
            add(g_ctx, g_idxs, g_oid, g_day, g_rep, g_amt, g_q, None)
            g_oid = None
        if need:
            add(ctx, idxs, oid, day, ln.rep_id, amt, q,
                (ln.line_no, q, pf, amt, ln.product_line, ln.sku))
        else:
            g_oid, g_idxs, g_ctx, g_day, g_rep, g_amt, g_q = (oid, idxs, ctx, day, ln.rep_id,
                                                              amt, q)
    if g_oid is not None:
        add(g_ctx, g_idxs, g_oid, g_day, g_rep, g_amt, g_q, None)

    # 2. per bucket: volume, each order's due (rounded once), then the cap
    dues = ev.dues
    for bkey, b in buckets.items():
        orders = b.orders
        if not orders:
            continue
        accs = list(orders.values())
        if changed is not None and b.key.customer_id in changed:
            # orders under several profiles: the bucket's inputs are its latest order's (the
            # others state their own), whatever the order the lines came in
            b.profile = max(accs, key=operator.itemgetter(_DATE))[_PROFILE]
        volume = 0
        first = accs[0][2]
        mixed = False
        for acc in accs:
            volume += acc[1]
            if acc[2] is not first:
                mixed = True
        rules = {first.version: first}
        if mixed:
            for acc in accs:
                rules[acc[2].version] = acc[2]
        b.volume = volume
        b.versions = tuple(sorted(rules))
        b.newest = rules[b.versions[-1]]
        spans = None
        if not mixed and not first.marginal:
            # the common case: one version, retroactive: one rate for every order
            ti = first.tier_at(volume)
            num = first.nums[ti] if ti >= 0 else 0
            den, den2 = first.den, 2 * first.den
            raw = [(2 * acc[0] * num + den) // den2 for acc in accs]
        else:
            raw, spans = _mixed_dues(accs, list(orders), volume)
        final = raw if first.cap_fen is None and not mixed else _capped(
            b, rules, raw, accs, list(orders))  # the common case: one version, no cap
        if spans is None:
            for (oid, acc), due, unc in zip(orders.items(), final, raw):
                dues[(bkey, oid)] = OrderDue(b, oid, acc, due, unc, None)
        else:
            for (oid, acc), due, unc, span in zip(orders.items(), final, raw, spans):
                dues[(bkey, oid)] = OrderDue(b, oid, acc, due, unc, span)
        if keep_dues:
            b.dues = {oid: dues[(bkey, oid)] for oid in orders}
    return ev


def _capped(b: _Bucket, rules: dict[int, _Rule], raw: list[int], accs: list[list],
            oids: list[str]) -> list[int]:
    """A rule's cap bounds what a customer earns under it in the period, whichever versions
    govern the period's orders. The orders of each version, oldest version first, share what
    the cap leaves after the orders of the versions before (a new version's cap never reaches
    back into those: they may be settled and confirmed). Records each version's cap, the room
    it left and the uncapped total of its orders on the bucket."""
    final = raw
    earlier = 0  # what the orders of the versions before earn, after their caps
    for version in sorted(rules):
        rule = rules[version]
        if rule.cap_fen is None and len(rules) == 1:
            break  # the common case: one version, no cap
        mine = [j for j, acc in enumerate(accs) if acc[_RULE] is rule]
        if rule.cap_fen is not None:
            total = sum(raw[j] for j in mine)
            room = max(rule.cap_fen - earlier, 0)
            b.caps[version] = (room, total, total > room, rule.cap_fen, earlier)
            if total > room:
                final = list(final) if final is raw else final
                shares = _share(room, total, [raw[j] for j in mine],
                                [accs[j] for j in mine], [oids[j] for j in mine])
                for j, share in zip(mine, shares):
                    final[j] = share
        if len(rules) > 1:
            earlier += sum(final[j] for j in mine)
    return final


def _mixed_dues(accs: list[list], oids: list[str], volume: int):
    """Dues when the bucket has a marginal version or several versions: orders laid end to
    end (order date, order id); each uses its own version's tiers."""
    raw = [0] * len(accs)
    spans: list[tuple[int, int] | None] = [None] * len(accs)
    pos = 0
    for j in sorted(range(len(accs)), key=lambda j: (accs[j][_DATE], oids[j])):
        acc = accs[j]
        r = acc[_RULE]
        size = acc[_SIZE]
        if r.marginal:
            if r.is_amount:
                earn = r.band_earn(pos, pos + size)
            else:
                earn, p = 0, pos
                for _, q, pf, _, _, _ in sorted(acc[_LINES]):
                    earn += r.band_earn(p, p + q) * pf
                    p += q
            raw[j] = _round_div(earn, r.den)
            spans[j] = (pos, pos + size)
        else:
            ti = r.tier_at(volume)
            raw[j] = _round_div(acc[_BASIS] * r.nums[ti], r.den) if ti >= 0 else 0
        pos += size
    return raw, spans


def _share(cap: int, total: int, raw: list[int], accs: list[list], oids: list[str]) -> list[int]:
    """The cap shared in proportion to the uncapped dues, largest remainder first (ties:
    earlier order date, then order id), so that the parts add up to the cap exactly."""
    shares, rems = [], []
    for j, due in enumerate(raw):
        q, rem = divmod(cap * due, total)
        shares.append(q)
        rems.append((-rem, accs[j][_DATE], oids[j], j))
    left = cap - sum(shares)
    for _, _, _, j in sorted(rems)[:left]:
        shares[j] += 1
    return shares


def _price_fen(price: Decimal) -> int:
    fen = Decimal(price).scaleb(2)
    if fen != fen.to_integral_value():
        raise ValueError(f"unit price {price} has more than two decimals")
    if fen < 0:
        raise ValueError(f"negative unit price {price}")
    return int(fen)


def _fen_of(ln: SaleLine) -> int:
    """A line's (or summed row's) net amount in fen, a negative net counted as 0."""
    if ln.amount_fen is not None:
        return ln.amount_fen
    return max(ln.net_quantity, 0) * _price_fen(ln.unit_price)


def named_skus(book: PolicyBook) -> frozenset[str]:
    """The SKUs some rule of the book names (applies to or excludes), in any version."""
    return frozenset(sku for v in book.versions for r in v.spec.rules
                     for sku in (*(r.applies_to.skus or ()), *r.exclude.skus))


def item_classes(book: PolicyBook, named_products: Iterable[tuple[str, str]], *,
                 apart: Iterable[str] | None = None) -> ItemClasses:
    """The item classes of the book's rules, in any version. `named_products`: (sku, product
    line) of the named_skus() in the catalogue. Lines of one order in one class evaluate
    exactly as their sum (amounts are summed in fen before a (order, rule) is rounded),
    except under a marginal rule by quantity, where each line's price counts at its own
    place on the axis (`per_line`).

    The settlement (`apart` None) merges product lines with the same verdicts and leaves
    out products no rule takes. A preview, which compares product lines with last month,
    gives every product line a rule names, and those in `apart`, classes of their own, and
    leaves nothing out."""
    named_products = tuple(sorted(named_products))
    apart = None if apart is None else frozenset(apart)
    memo_key = ("engine.item_classes", named_products, apart)
    known = book.memo.get(memo_key)
    if known is not None:
        return known
    rules = [_Rule(AppliedRule(v.code, v.version, v.spec.name, r), -1)
             for v in book.versions for r in v.spec.rules]
    named_lines = {pl for r in rules for pl in (*(r.product_lines or ()), *r.ex_lines)}
    if apart is not None:
        named_lines |= apart
    numbers: dict[tuple, int] = {}
    per_line: set[int] = set()

    def number(sku: str, product_line: str) -> int | None:
        takes = tuple(not r.item_reasons(sku, product_line) for r in rules)
        if not any(takes) and apart is None:
            return None
        needs = any(t and r.need_lines for t, r in zip(takes, rules))
        key = (takes, needs, product_line if apart is not None else None)
        n = numbers.get(key)
        if n is None:
            n = numbers[key] = len(numbers) + 1
            if needs:
                per_line.add(n)
        return n

    # "": a SKU (and a product line) no rule names
    out = ItemClasses({sku: number(sku, pl) for sku, pl in named_products},
                      {pl: number("", pl) for pl in sorted(named_lines)}, number("", ""),
                      frozenset(per_line))
    book.memo[memo_key] = out
    return out


def _rule_spec(book: PolicyBook, code: str, version: int, rule_id: str):
    """(the published version, its rule `rule_id`), each None when the book has none."""
    published = book.version(code, version)
    rule = next((r for r in published.spec.rules if r.id == rule_id), None) \
        if published else None
    return published, rule


def rule_items(book: PolicyBook, code: str, version: int, rule_id: str
               ) -> Callable[[str, str], bool]:
    """Whether the rule (code, version, rule id) takes a product (sku, product line), by its
    SKU and product line conditions; a rule the book no longer has takes everything."""
    published, rule = _rule_spec(book, code, version, rule_id)
    if rule is None:
        return lambda sku, product_line: True
    check = _Rule(AppliedRule(code, version, published.spec.name, rule), -1)
    return lambda sku, product_line: not check.item_reasons(sku, product_line)


def evaluate(lines: Iterable[SaleLine], book: PolicyBook,
             customers: Mapping[Hashable, CustomerProfile],
             payment_rates: PaymentRateLookup) -> dict[tuple[str, str], OrderDue]:
    """Each order's cumulative due per rule bucket: {(bucket_key, order_id): OrderDue}.

    Pass every line of every bucket to be settled (all lines of those customers in those
    periods); a bucket's volume is the sum of the lines given. `payment_rates` is a callable
    (customer_id, "YYYY-MM") → Decimal | None (e.g. PaymentRates) or a mapping with those keys.
    """
    return _evaluate(lines, book, customers, payment_rates).dues


# evaluation allocates a few hundred thousand small objects and frees none until it returns
_evaluate = without_gc(_evaluate)


# --------------------------------------------------------------------------- settlement

class Paid(NamedTuple):
    """What earlier settlements paid for one (bucket, order): the sum of its rebate lines and
    the basis of its latest line. Version, clause, rep and region are needed only when the
    (bucket, order) has disappeared from the evaluation (its claw-back line carries them)."""

    amount: Decimal
    basis: Decimal
    policy_version: int | None = None
    clause: str | None = None
    rep_id: str | None = None
    region: str | None = None
    # what is booked to each (rep, region) so far, least recently booked first: money taken
    # back is booked where it was paid, newest payments first (empty: all to rep_id/region)
    booked: tuple[tuple[str | None, str | None, Decimal], ...] = ()


def paid_after(p: Paid | None, line: LineDraft) -> Paid:
    """What is paid for a (bucket, order) once `line` is added to `p` (None: nothing yet), as
    the settlement reads it back (flows.settlement._paid): the sum, the line's basis and
    particulars, and the line's place (rep, region) booked last."""
    places: dict[tuple[str | None, str | None], Decimal] = {}
    if p is not None:
        for rep, region, amount in p.booked or ((p.rep_id, p.region, p.amount),):
            places[(rep, region)] = places.pop((rep, region), Decimal("0.00")) + amount
    place = (line.rep_id, line.region)
    places[place] = places.pop(place, Decimal("0.00")) + line.amount
    return Paid((p.amount if p is not None else Decimal("0.00")) + line.amount, line.basis,
                line.policy_version, line.clause, line.rep_id, line.region,
                booked=tuple((rep, region, amount) for (rep, region), amount in places.items()))


def _takeback(diff: int, p: Paid) -> list[tuple[str | None, str | None, int]]:
    """A negative line `diff` (fen) split over the (rep, region) that were paid, newest
    first, each giving back at most what it holds; one part when one holds it all."""
    parts: list[tuple[str | None, str | None, int]] = []
    left = -diff
    for rep, region, amount in reversed(p.booked):
        held = _to_fen(amount)
        if left and held > 0:
            take = min(held, left)
            parts.append((rep, region, -take))
            left -= take
    if not parts:
        return [(p.rep_id, p.region, diff)]
    if left:  # more than the books hold (claw-backs once booked all to one place): newest
        rep, region, amount = parts[0]
        parts[0] = (rep, region, amount - left)
    return parts


class ReturnFact(NamedTuple):
    """A return or exchange (the goods going back) that lowered an order's basis under a rule
    since its latest settlement line: what a claw-back's explanation names."""

    return_no: str
    returned_on: dt.date
    kind: str = "return"  # return | exchange


# the returns a settlement's explanations name: called once with the (bucket key, order id)
# and policy version of every line whose basis fell, it answers the returns behind each fall
ReturnsLookup = Callable[[list[tuple[tuple[str, str], int | None]]],
                         Mapping[tuple[str, str], Iterable[ReturnFact]]]

_RETURN_WORDS = {"return": ("退货", "退货单号"), "exchange": ("换货", "换货单号")}
RETURNS_NAMED = 3  # the returns an explanation names; more are counted (等 N 笔)


def _returns_text(facts: Iterable[ReturnFact]) -> str:
    """「2026-10-12 退货（退货单号 TH-1、TH-2）、2026-10-20 换货（换货单号 HH-3）」: the first
    RETURNS_NAMED returns by date and number, those of one day and kind together, and how
    many there are when there are more (「…（退货单号 TH-3）等 5 笔退货」); "" for none."""
    unique = sorted(set(facts), key=lambda f: (f.returned_on, f.return_no, f.kind))
    if not unique:
        return ""
    groups: list[tuple[dt.date, str, list[str]]] = []
    for f in unique[:RETURNS_NAMED]:
        if groups and groups[-1][0] == f.returned_on and groups[-1][1] == f.kind:
            groups[-1][2].append(f.return_no)
        else:
            groups.append((f.returned_on, f.kind, [f.return_no]))
    text = "、".join(f"{day.isoformat()} {_RETURN_WORDS.get(kind, _RETURN_WORDS['return'])[0]}"
                    f"（{_RETURN_WORDS.get(kind, _RETURN_WORDS['return'])[1]} {'、'.join(nos)}）"
                    for day, kind, nos in groups)
    if len(unique) > RETURNS_NAMED:
        kinds = {f.kind if f.kind in _RETURN_WORDS else "return" for f in unique}
        word = _RETURN_WORDS[kinds.pop()][0] if len(kinds) == 1 else "退货/换货"
        text += f"等 {len(unique)} 笔{word}"
    return text


def _returns_input(facts: Iterable[ReturnFact]) -> list[dict[str, str]]:
    """The returns as the line's inputs keep them (all of them, by date and number)."""
    return [{"return_no": f.return_no, "returned_on": f.returned_on.isoformat(), "kind": f.kind}
            for f in sorted(set(facts), key=lambda f: (f.returned_on, f.return_no, f.kind))]


@dataclass(frozen=True)
class LineDraft(_InBucket):
    """One line of a settlement (maps onto RebateLine; the caller adds run_id and month)."""

    bucket: BucketKey
    order_id: str
    kind: str  # rebate | tier_difference | clawback | adjustment
    basis: Decimal  # basis_amount
    due: Decimal  # due_amount: cumulative due now
    paid_before: Decimal
    amount: Decimal  # due − paid_before (≠ 0), or its part booked to one rep and region
    rate: Decimal
    policy_version: int | None
    clause: str
    rep_id: str | None
    region: str | None
    own_inputs: dict[str, Any]  # this line's inputs …
    bucket_inputs: Mapping[str, Any]  # … and its bucket's, shared by its lines
    explanation: str
    bucket_json: str = field(default="", compare=False, repr=False)  # bucket_inputs encoded

    @property
    def policy_code(self) -> str:
        return self.bucket.policy_code

    @property
    def rule_id(self) -> str:
        return self.bucket.rule_id

    @property
    def inputs(self) -> dict[str, Any]:
        """Everything the line was computed from (volume, tier, payment rate, …)."""
        return {**self.bucket_inputs, **self.own_inputs}

    def own_json(self) -> str:
        """`own_inputs` as a JSON object (stored on the line)."""
        return "{" + _json_members(self.own_inputs) + "}"

    def shared_json(self) -> str:
        """`bucket_inputs` as a JSON object, encoded once for all the bucket's lines (stored
        once per bucket); "" when the line has none (a claw-back of a vanished order)."""
        if not self.bucket_inputs:
            return ""
        return "{" + (self.bucket_json or _json_members(self.bucket_inputs)) + "}"


# json.dumps(…, ensure_ascii=False, sort_keys=True) without making an encoder per call
_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def _json_members(values: Mapping[str, Any]) -> str:
    """The members of a JSON object, without its braces."""
    return _JSON.encode(values)[1:-1]


def _to_fen(amount: Decimal | int) -> int:
    """Yuan → integer fen, half up past two places."""
    n, d = amount.as_integer_ratio()
    if 100 % d == 0:  # whole fen (amounts read from the database): exact in integers
        return n * (100 // d)
    return int(Decimal(amount).scaleb(2).to_integral_value(rounding=ROUND_HALF_UP))


def _cited(book: PolicyBook, bucket: BucketKey, version: int | None) -> str:
    """How the customer's statement names a rule of an earlier version: 第1版第二条「季度阶梯」
    (its id only when the book no longer has that version)."""
    _, spec = _rule_spec(book, bucket.policy_code, version or 0, bucket.rule_id)
    return f"第{version}版{spec.citation}" if spec else f"规则 {bucket.rule_id}"


def not_applied(paid: Mapping[tuple[str, str], Paid | tuple], lines: Iterable[SaleLine],
                book: PolicyBook, customers: Mapping[Hashable, CustomerProfile],
                payment_rates: PaymentRateLookup
                ) -> dict[tuple[str, str], tuple[int, tuple[str, ...]]]:
    """For (bucket, order) keys that were paid and no longer come out of the evaluation: the
    net amount (fen) the order still holds in the products the rule takes, and why the rule
    does not apply to it now (Chinese reasons). An order whose goods are still held left the
    bucket through a condition (payment rate, tier, region, an exclusive rule, a version
    without the rule), not through a return. `lines`: the lines evaluated (those of orders
    not in `paid` are ignored)."""
    wanted: dict[str, list[tuple[tuple[str, str], BucketKey, Paid]]] = {}
    for key, p in paid.items():
        wanted.setdefault(key[1], []).append((key, BucketKey.parse(key[0]), Paid(*p)))
    if not wanted:
        return {}
    orders: dict[str, list[SaleLine]] = {}
    for ln in lines:
        if ln.order_id in wanted:
            orders.setdefault(ln.order_id, []).append(ln)
    rate_of = _lookup(payment_rates)
    out: dict[tuple[str, str], tuple[int, tuple[str, ...]]] = {}
    for oid, keys in wanted.items():
        lns = orders.get(oid)
        if not lns:
            continue  # not read: nothing known about it
        day, cid = lns[0].order_date, lns[0].customer_id
        profile = profile_on(customers, cid, day)
        pay = rate_of(cid, month_key(day)) if profile is not None else None
        rules = _compiled(book, day)
        for key, bucket, p in keys:
            rule = next((r for r in rules if r.code == bucket.policy_code
                         and r.rule_id == bucket.rule_id), None)
            reasons: list[str] = []
            if rule is None:
                version = book.version_on(bucket.policy_code, day)
                reasons.append(f"订单日期 {day} 适用的 {bucket.policy_code} 第{version.version}版"
                               f"已无该条款（{_cited(book, bucket, p.policy_version)}）"
                               if version is not None else
                               f"订单日期 {day} 已无 {bucket.policy_code} 的有效版本")
                takes = rule_items(book, bucket.policy_code, p.policy_version or 0,
                                   bucket.rule_id)
            else:
                takes = lambda sku, pl, r=rule: not r.item_reasons(sku, pl)  # noqa: E731
                if profile is not None:
                    reasons.extend(rule.customer_reasons(profile, day, pay))
            # what it still holds of the goods it was paid for: the products the paid
            # version's rule took (a version back-dated since may take none of them)
            paid_for = takes if rule is None else rule_items(
                book, bucket.policy_code, p.policy_version or 0, bucket.rule_id)
            held = sum(_fen_of(ln) for ln in lns if paid_for(ln.sku, ln.product_line))
            if bucket.customer_id != cid:  # its own customer's reasons would not be the why
                reasons = ["订单已改属其他客户"]
            elif rule is not None and not reasons:
                taken = [ln for ln in lns if takes(ln.sku, ln.product_line)]
                if not taken:
                    reasons.extend(dict.fromkeys(
                        x for ln in lns for x in rule.item_reasons(ln.sku, ln.product_line)))
                elif profile is not None:
                    ok = [x for x in rules if not x.customer_reasons(profile, day, pay)
                          and not x.item_reasons(taken[0].sku, taken[0].product_line)]
                    winner = _stack(ok)[0] if ok else rule
                    if winner is not rule:
                        reasons.append(f"与互斥条款《{winner.policy_name}》{winner.spec.citation}"
                                       f"不叠加，按该条款执行")
            out[key] = (held, tuple(reasons))
    return out


def settle(dues: Mapping[tuple[str, str], OrderDue],
           paid: Mapping[tuple[str, str], Paid | tuple],
           *, rerun: bool,
           gone: Mapping[tuple[str, str], tuple[int, tuple[str, ...]]] | None = None,
           rep_names: Mapping[str, str] | None = None,
           returns: ReturnsLookup | None = None,
           corrections: ReturnsLookup | None = None) -> list[LineDraft]:
    """`due − paid` per (bucket, order) where it is not zero, as line drafts.

    `dues` from evaluate() over the buckets being settled; `paid` for those buckets (keys
    absent from `dues` are claw-backs of everything paid: the rule no longer takes the
    order). `rerun`: this month was settled before (lines are `adjustment`). `gone`: what
    not_applied() says of those absent keys — an order still holding its goods is a
    `tier_difference` stating the condition it no longer meets, not a return. `rep_names`:
    how the explanations name reps (staff id → name; the customer reads them on his statement).
    `returns`: asked once, after the lines are decided, for the returns behind the lines whose
    basis fell (only those: a month has few), which their explanations then name by date and
    number (and their inputs list as `returns`). `corrections`: asked likewise for the lines
    whose basis rose since the order's latest line, for the returns counted then and
    corrected down since, which their explanations name (inputs: `returns_corrected`).
    """
    names = rep_names or {}
    # first the keys whose due moved (most keys of a re-run have not), then the lines
    # (key, fen paid, due, paid)
    changed: list[tuple[tuple[str, str], int, OrderDue | None, Paid | tuple | None]] = []
    for key, d in dues.items():
        p = paid.get(key)
        if p is None:
            if d.due_fen:
                changed.append((key, 0, d, None))
        elif p[0] * 100 != d.due_fen:  # exact; a paid amount finer than a fen rounds below
            paid_fen = _to_fen(p[0])
            if paid_fen != d.due_fen:
                changed.append((key, paid_fen, d, p))
    for key, p in paid.items():
        if key not in dues:
            paid_fen = _to_fen(p[0])
            if paid_fen:
                changed.append((key, paid_fen, None, p))
    changed.sort(key=operator.itemgetter(0))  # by key

    facts: Mapping[tuple[str, str], Iterable[ReturnFact]] = {}
    if returns is not None:
        # the (bucket, order)s whose basis fell below what was paid on: by the basis now, or,
        # gone from the rule with goods still held (a condition no longer met), by what the
        # order still holds of them (less than paid on: some came back too)
        fell = [(key, d._acc[_RULE].version if d is not None else p[2])
                for key, paid_fen, d, p in changed
                if p is not None and (d.basis_fen if d is not None else (
                    (gone.get(key) or (0,))[0] if gone is not None else 0)) < _to_fen(p[1])]
        if fell:
            facts = returns(fell)
    fixed: Mapping[tuple[str, str], Iterable[ReturnFact]] = {}
    if corrections is not None:
        rose = [(key, d._acc[_RULE].version) for key, paid_fen, d, p in changed
                if p is not None and d is not None and d.basis_fen > _to_fen(p[1])]
        if rose:
            fixed = corrections(rose)

    out: list[LineDraft] = []
    for key, paid_fen, d, p in changed:
        if p is not None and type(p) is not Paid:
            p = Paid(*p)
        due_fen = d.due_fen if d is not None else 0
        diff = due_fen - paid_fen
        basis_now = d.basis_fen if d is not None else 0
        basis_before = _to_fen(p.basis) if p is not None else None
        why = gone.get(key) if gone is not None and d is None else None
        if rerun:
            kind = "adjustment"
        elif p is None:
            kind = "rebate"
        elif why is not None and why[0] > 0:
            kind = "tier_difference"  # its goods are still held: a condition, not a return
        elif diff < 0 and basis_now < basis_before:
            kind = "clawback"
        elif diff > 0 and basis_now > basis_before:
            kind = "rebate"
        else:
            kind = "tier_difference"
        rule = d._acc[_RULE] if d is not None else None
        back = facts.get(key, ()) if facts else ()
        undone = fixed.get(key, ()) if fixed else ()
        cause = _cause(kind, diff, basis_before, basis_now, d is None, rerun, why,
                       versions=(p.policy_version, rule.version)
                       if p is not None and rule is not None else None,
                       capped=rule is not None and rule.cap_fen is not None,
                       returned=_returns_text(back) if back else (
                           None if returns is None else ""),
                       corrected=_returns_text(undone))
        head = (f"{KIND_LABELS[kind]}：应返 {money_fen(due_fen)}，已返 {money_fen(paid_fen)}，"
                f"本次 {money_fen(diff)}。{cause}")
        if d is not None:
            shared = d._shared()
            bucket_inputs, bucket_json = shared.inputs, shared.json
            inputs = d.own_inputs()
            explanation = head + d.explanation
            bucket, version, clause = d.bucket, rule.version, rule.clause
            rate, rep, region = d.rate, d._acc[_REP], d.region
        else:
            bucket = BucketKey.parse(key[0])
            bucket_inputs, bucket_json = {}, ""
            inputs = {"policy_code": bucket.policy_code, "rule_id": bucket.rule_id,
                      "period": bucket.period, "policy_version": p.policy_version,
                      "basis": "0.00", "due": "0.00"}
            if why is not None and why[1]:
                inputs["not_applied"] = list(why[1])
            explanation = head
            version, clause = p.policy_version, p.clause or f"规则 {bucket.rule_id}"
            rate, rep, region = Decimal("0.000000"), p.rep_id, p.region
        inputs["paid_before"] = fen_text(paid_fen)
        if basis_before is not None:
            inputs["basis_before"] = fen_text(basis_before)
        if back:
            inputs["returns"] = _returns_input(back)
        if undone:
            inputs["returns_corrected"] = _returns_input(undone)
        parts = _takeback(diff, p) if diff < 0 else [(rep, region, diff)]
        for part_rep, part_region, part in parts:
            own, text = inputs, explanation
            if len(parts) > 1:  # booked where it was paid: one line per rep and region
                split = "、".join(f"{g or '未分配大区'}（{names.get(r, r) if r else '未分配销售'}）"
                                 f"{money_fen(a)}" for r, g, a in parts)
                own = {**inputs, "part_of": fen_text(diff)}
                text = (f"本次共 {money_fen(diff)}，按原入账销售与大区冲回（{split}），"
                        f"本行 {money_fen(part)}。" + explanation)
            out.append(_frozen(
                LineDraft, bucket=bucket, order_id=key[1], kind=kind, basis=fen_to_yuan(basis_now),
                due=fen_to_yuan(due_fen), paid_before=fen_to_yuan(paid_fen),
                amount=fen_to_yuan(part), rate=rate, policy_version=version, clause=clause,
                rep_id=part_rep, region=part_region, own_inputs=own,
                bucket_inputs=bucket_inputs, explanation=text, bucket_json=bucket_json))
    return out


settle = without_gc(settle)


def _cause(kind: str, diff: int, basis_before: int | None, basis_now: int, gone: bool,
           rerun: bool, why: tuple[int, tuple[str, ...]] | None = None,
           versions: tuple[int | None, int] | None = None, capped: bool = True,
           returned: str | None = None, corrected: str = "") -> str:
    """Why the line: `versions` (the version of the order's latest line, its version now)
    tell a version published since, which governs the order date now, from a tier change;
    `capped`: the rule has a cap, whose share may be what changed (else only the volume);
    `returned`: the returns that lowered the basis since the order's latest line, named
    (_returns_text); "" when none did (a delivery or the order corrected down), None when
    nobody looked (the basis fell by a return or exchange, as far as the caller knows);
    `corrected`: the returns corrected down (or withdrawn) since that line, named, "" for none
    or nobody looked."""
    text = ""
    since = f"因 {returned}，" if returned else ""
    moved = versions is not None and bool(versions[0]) and versions[0] != versions[1]
    if gone and why is not None and why[0] > 0:
        reasons = f"（{'；'.join(why[1])}）" if why[1] else ""
        if returned and basis_before is not None:  # some came back, the rest still held
            text = (f"{since}本单计返基数由 {money_fen(basis_before)} 降至 "
                    f"{money_fen(why[0])}，且本单已不再适用该条款{reasons}，冲回已返金额。")
        else:
            text = f"本单未退货，但已不再适用该条款{reasons}，冲回已返金额。"
    elif gone and why is not None:
        text = since + "本单在该条款下已无计返数量（货物已全部退回或尚未发货），冲回已返金额。"
    elif gone:
        text = since + "本单在该条款下已无计返数量（已全部退货，或不再符合条款条件），冲回已返金额。"
    elif basis_before is not None and basis_now < basis_before and returned:
        text = (f"{since}本单计返基数由 {money_fen(basis_before)} 降至 "
                f"{money_fen(basis_now)}。")
    elif basis_before is not None and basis_now < basis_before and returned is None:
        text = (f"本单退货/换货后计返基数由 {money_fen(basis_before)} 降至 "
                f"{money_fen(basis_now)}。")
    elif basis_before is not None and basis_now < basis_before:
        text = (f"本单计返基数由 {money_fen(basis_before)} 降至 {money_fen(basis_now)}"
                "（其间无新的退货或换货：发货或订单数据有更正）。")
    elif basis_before is not None and basis_now > basis_before:
        text = (f"{f'因 {corrected}已更正（退货数量调减或撤销），' if corrected else ''}"
                f"本单计返基数由 {money_fen(basis_before)} 增至 {money_fen(basis_now)}。")
    elif basis_before is not None and not moved:
        if diff > 0:
            text = ("本期累计或封顶分摊变化，按现档位重算（阶梯补差）。" if capped else
                    "本期累计变化，按现档位重算（阶梯补差）。")
        else:
            text = ("本期累计回落或封顶分摊变化，按现档位重算。" if capped else
                    "本期累计回落，按现档位重算。")
    if moved:
        text += (f"本单订单日期现适用政策第{versions[1]}版（此前按第{versions[0]}版结算），"
                 f"按第{versions[1]}版重算。")
    if rerun:
        text = "重算已结算月份发现变化（更正）。" + text
    return text


# --------------------------------------------------------------------------- preview

@dataclass(frozen=True)
class PreviewRule:
    """A rule that applies to the order, with what it would pay."""

    policy_code: str
    policy_name: str
    policy_version: int
    rule_id: str
    rule_name: str
    clause: str
    style: str
    measure: str
    period: str
    bucket_key: str
    basis: Decimal
    rate: Decimal
    amount: Decimal
    inputs: dict[str, Any]
    explanation: str


@dataclass(frozen=True)
class SkippedRule:
    """A rule in force on the order date that does not apply to this order, and why."""

    policy_code: str
    policy_name: str
    policy_version: int
    rule_id: str
    rule_name: str
    clause: str
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "；".join(self.reasons)


@dataclass(frozen=True)
class ProductLineRate:
    product_line: str
    amount: Decimal  # the order's amount in this product line
    rate: Decimal  # this order's rate in the product line (fraction, 6 places)
    last_month_rate: Decimal | None  # None: no order of this product line last month
    change_points: Decimal | None  # percentage points, from the two figures as shown
    sentence: str


@dataclass(frozen=True)
class Preview:
    order_id: str
    customer_id: Hashable
    order_date: dt.date
    order_amount: Decimal
    amount: Decimal  # total rebate of the order (sum of its rules' amounts)
    rate: Decimal  # amount ÷ order amount (fraction, 6 places)
    rules: tuple[PreviewRule, ...]
    skipped: tuple[SkippedRule, ...]
    product_lines: tuple[ProductLineRate, ...]
    sentence: str

    def detail(self) -> dict[str, Any]:
        """JSON-ready detail for `order_rebate.detail`."""
        return {
            "order_id": self.order_id, "order_date": self.order_date.isoformat(),
            "order_amount": format(self.order_amount, "f"), "amount": format(self.amount, "f"),
            "rate": format(self.rate, "f"),
            "rules": [{k: (format(v, "f") if isinstance(v, Decimal) else v)
                       for k, v in vars_of(r).items()} for r in self.rules],
            "skipped": [{**{k: v for k, v in vars_of(s).items() if k != "reasons"},
                         "reasons": list(s.reasons)} for s in self.skipped],
            "product_lines": [{k: (format(v, "f") if isinstance(v, Decimal) else v)
                               for k, v in vars_of(p).items()} for p in self.product_lines],
            "sentence": self.sentence,
        }

    def detail_json(self) -> str:
        return json.dumps(self.detail(), ensure_ascii=False, sort_keys=True)


def vars_of(obj) -> dict[str, Any]:
    return {f: getattr(obj, f) for f in obj.__dataclass_fields__}


def _product_line_earnings(ev: _Evaluation, order_ids: set[str]) -> dict[str, Fraction]:
    """Exact (unrounded) fen the lines of the given orders earn, over all their rules, after
    each bucket's cap share, per product line. Needs an evaluation made with keep_lines.
    Summed in integers per (bucket, product line, rate denominator), one fraction each.

    Under a marginal rule by amount an order's earnings are shared among its product lines
    in proportion to their amounts (where the lines of an order lie on the axis is no
    business fact), so that rows summed per order and product line earn what their lines
    earn; by quantity each line earns its units' bands at its own price."""
    out: dict[str, Fraction] = {}
    for b in ev.buckets.values():
        sums: dict[tuple[str, int, int], int] = {}
        for oid, d in b.dues.items():
            if oid not in order_ids:
                continue
            acc = b.orders[oid]
            r = acc[_RULE]
            if d._span is None:
                ti = r.tier_at(b.volume)
                if ti < 0:
                    continue
                num = r.nums[ti]
                for _, _, _, amt, pl, _ in acc[_LINES]:
                    key = (pl, r.den, r.version)
                    sums[key] = sums.get(key, 0) + amt * num
            elif r.is_amount:
                p, size = d._span[0], acc[_SIZE]
                if not size:
                    continue
                earn = r.band_earn(p, p + size)
                kept = acc[_LINES]
                if all(ln[4] == kept[0][4] for ln in kept):  # one product line (most orders)
                    key = (kept[0][4], r.den, r.version)
                    sums[key] = sums.get(key, 0) + earn
                    continue
                for _, _, _, amt, pl, _ in kept:
                    key = (pl, r.den * size, r.version)
                    sums[key] = sums.get(key, 0) + earn * amt
            else:
                p = d._span[0]
                for _, q, pf, _, pl, _ in sorted(acc[_LINES]):
                    key = (pl, r.den, r.version)
                    sums[key] = sums.get(key, 0) + r.band_earn(p, p + q) * pf
                    p += q
        if not sums:
            continue
        for (pl, den, version), total in sums.items():
            cap = b.caps.get(version)  # each version's cap share
            factor = Fraction(cap[0], cap[1]) if cap and cap[2] else Fraction(1)
            out[pl] = out.get(pl, Fraction(0)) + Fraction(total, den) * factor
    return out


NO_POLICY_SENTENCE = "本订单暂无适用的返利政策"


def _uplift_sentence(change: int, on_settled: int) -> str:
    """What an order changes in the rest of its bucket (fen), and how it will be paid: on
    orders a settlement already paid, as 阶梯补差; on the others, with their first payment."""
    head = f"本单使本期此前订单的应返{'增加' if change > 0 else '减少'} {money_fen(abs(change))}"
    if on_settled == change:
        return f"{head}（该等订单已结算，下次结算时作阶梯补差）。"
    if not on_settled:
        return f"{head}（该等订单尚未结算，结算时按本期累计所达档位计返）。"
    return (f"{head}（其中已结算订单 {money_fen(on_settled)}，下次结算时作阶梯补差；其余订单尚未"
            "结算，结算时按本期累计所达档位计返）。")


def _rate_sentence(this_pct: Decimal, last_pct: Decimal | None) -> str:
    head = f"本次订单返利比例：{plain_number(this_pct)}%"
    if last_pct is None:
        return f"{head}，上月无该产品线订单"
    change = this_pct - last_pct
    if change > 0:
        return f"{head}，较上月提升{plain_number(change)}个百分点"
    if change < 0:
        return f"{head}，较上月下降{plain_number(-change)}个百分点"
    return f"{head}，与上月持平"


def preview(order_lines: Iterable[SaleLine], period_lines: Iterable[SaleLine],
            book: PolicyBook, customers: Mapping[Hashable, CustomerProfile],
            payment_rates: PaymentRateLookup,
            last_month_lines: Iterable[SaleLine],
            settled: Callable[[str, str], Collection[str]] | None = None) -> Preview:
    """The rebate of one order as if it were signed today (docs/rebates.md, Preview).

    `settled(bucket key, its period's first month)`: asked only for a bucket whose other
    orders this order changes, the orders settlements already paid in it: their change is
    a 阶梯补差 to come, the others' is paid with their first settlement.

    `order_lines`: the order (net_quantity = ordered − returned). `period_lines`: the
    customer's signed orders in the periods containing the order date (net of returns,
    delivered or not); lines of this order in it are ignored. `last_month_lines`: the
    customer's lines as known at the end of last month, for the periods containing last
    month (so quarter volumes are right); only orders dated last month are compared.
    """
    order_lines = list(order_lines)
    if not order_lines:
        raise ValueError("preview needs the order's lines")
    first = order_lines[0]
    oid, cid, day = first.order_id, first.customer_id, first.order_date
    if any((ln.order_id, ln.customer_id, ln.order_date) != (oid, cid, day)
           for ln in order_lines):
        raise ValueError("order_lines must be the lines of one order")
    others = [ln for ln in period_lines if ln.order_id != oid]
    before = _evaluate(others, book, customers, payment_rates, keep_dues=True)
    after = _evaluate(others + order_lines, book, customers, payment_rates,
                      keep_lines=frozenset({oid}))

    order_amount = sum(_fen_of(ln) for ln in order_lines)
    rules: list[PreviewRule] = []
    applied_keys = set()
    total_fen = 0
    mine = sorted((d for (bk, o), d in after.dues.items() if o == oid),
                  key=lambda d: (d._rule.rank, d.bucket.key))
    for d in mine:
        r, b = d._rule, d._b
        applied_keys.add((r.code, r.rule_id))
        total_fen += d.due_fen
        prev_b = before.buckets.get(b.key.key)
        vol_before = prev_b.volume if prev_b is not None else 0
        inputs = d.inputs
        inputs["volume_before"] = r.volume_value(vol_before)
        inputs["volume_after"] = r.volume_value(b.volume)
        ti = r.tier_at(b.volume)
        extra = ""
        if ti + 1 < len(r.lowers):
            gap = r.lowers[ti + 1] - b.volume
            inputs["next_tier"] = {**r.describe_tier(ti + 1), "gap": r.volume_value(gap)}
            extra += (f"距第{ti + 2}档（返利 {r.rate_texts[ti + 1]}）"
                      f"还差 {r.volume_text(gap)}。")
        # what this order adds to the other orders of the bucket: a 阶梯补差 to come for
        # those already settled, their first payment for the others
        changes = {o: od.due_fen - (prev_b.dues[o].due_fen if prev_b and o in prev_b.dues else 0)
                   for o, od in b.dues.items() if o != oid}
        uplift = sum(changes.values())
        if uplift:
            paid = (frozenset(settled(b.key.key, period_first_month(b.key.period)))
                    if settled is not None else frozenset())
            on_paid = sum(v for o, v in changes.items() if o in paid)
            inputs["other_orders_change"] = format(fen_to_yuan(uplift), "f")
            extra += _uplift_sentence(uplift, on_paid)
        rules.append(PreviewRule(
            policy_code=r.code, policy_name=r.policy_name, policy_version=r.version,
            rule_id=r.rule_id, rule_name=r.spec.name, clause=d.clause, style=r.spec.style,
            measure=r.spec.measure, period=b.key.period, bucket_key=b.key.key, basis=d.basis,
            rate=d.rate, amount=d.due, inputs=inputs,
            explanation=f"本期累计由 {r.volume_text(vol_before)} 增至 "
                        f"{r.volume_text(b.volume)}。" + d.explanation + extra))

    skipped = _skipped(order_lines, book, customers, payment_rates, applied_keys, day, cid)

    # per product line: this order's rate against last month's, as of the end of last month
    earned = _product_line_earnings(after, {oid})
    last_end = day.replace(day=1) - dt.timedelta(days=1)
    last_month_lines = list(last_month_lines)  # read twice below
    last_orders = set()
    last_amounts: dict[str, int] = {}  # last month's amount per product line, in fen
    for ln in last_month_lines:
        if ln.customer_id == cid and ln.order_date.month == last_end.month \
                and ln.order_date.year == last_end.year:
            last_orders.add(ln.order_id)
            last_amounts[ln.product_line] = last_amounts.get(ln.product_line, 0) + _fen_of(ln)
    last_ev = _evaluate(last_month_lines, book, customers, payment_rates,
                        keep_lines=last_orders or False, keep_dues=True)
    last_earned = _product_line_earnings(last_ev, last_orders)
    pls: list[ProductLineRate] = []
    for pl in dict.fromkeys(ln.product_line for ln in order_lines):
        amount = sum(_fen_of(ln) for ln in order_lines if ln.product_line == pl)
        earn = earned.get(pl, Fraction(0))
        this = Fraction(earn) / amount if amount else Fraction(0)
        this_pct = percent_value(this)
        l_amount = last_amounts.get(pl, 0)
        if l_amount:
            l_earn = last_earned.get(pl, Fraction(0))
            last = Fraction(l_earn) / l_amount
            last_pct = percent_value(last)
        else:
            last = last_pct = None
        pls.append(ProductLineRate(
            product_line=pl, amount=fen_to_yuan(amount), rate=_fraction_rate(this),
            last_month_rate=None if last is None else _fraction_rate(last),
            change_points=None if last_pct is None else this_pct - last_pct,
            sentence=_rate_sentence(this_pct, last_pct)))
    if not rules:  # what the quote says too (flows.rebate_preview.rebate_sentence)
        sentence = NO_POLICY_SENTENCE
    elif len(pls) == 1:
        sentence = pls[0].sentence
    else:
        sentence = "；".join(f"【{p.product_line}】{p.sentence}" for p in pls)
    rate = Fraction(total_fen, order_amount) if order_amount else Fraction(0)
    return Preview(order_id=oid, customer_id=cid, order_date=day,
                   order_amount=fen_to_yuan(order_amount), amount=fen_to_yuan(total_fen),
                   rate=_fraction_rate(rate), rules=tuple(rules), skipped=tuple(skipped),
                   product_lines=tuple(pls), sentence=sentence)


def _fraction_rate(f: Fraction) -> Decimal:
    return (Decimal(f.numerator) / Decimal(f.denominator)).quantize(
        RATE_PLACES, rounding=ROUND_HALF_UP)


def _skipped(order_lines: list[SaleLine], book: PolicyBook,
             customers: Mapping[Hashable, CustomerProfile], payment_rates: PaymentRateLookup,
             applied: set, day: dt.date, cid: Hashable) -> list[SkippedRule]:
    profile = profile_on(customers, cid, day)
    if profile is None:
        raise KeyError(f"no CustomerProfile for customer {cid!r}")
    pay = _lookup(payment_rates)(cid, month_key(day))
    rules = _compiled(book, day)
    out = []
    for r in sorted(rules, key=lambda r: r.rank):
        if (r.code, r.rule_id) in applied:
            continue
        customer = r.customer_reasons(profile, day, pay)
        items = [r.item_reasons(ln.sku, ln.product_line) for ln in order_lines]
        reasons = list(customer)
        if customer:
            if all(items):
                # the rule takes none of the products either: a pump order must not read as
                # if paying invoices would earn the monitor rule
                reasons.extend(x for item in items for x in item)
        else:
            for ln, item in zip(order_lines, items):
                if item:
                    reasons.extend(item)
                    continue
                # the conditions hold: another rule took the line (stacking)
                ok = [x for x in rules if not x.customer_reasons(profile, day, pay)
                      and not x.item_reasons(ln.sku, ln.product_line)]
                winner = _stack(ok)[0]
                if winner is not r:
                    reasons.append(f"与互斥条款《{winner.policy_name}》{winner.spec.citation}"
                                   f"不叠加，按该条款执行")
                elif ln.net_quantity <= 0:
                    reasons.append("订单数量为 0")
        out.append(SkippedRule(
            policy_code=r.code, policy_name=r.policy_name, policy_version=r.version,
            rule_id=r.rule_id, rule_name=r.spec.name,
            clause=r.clause,
            reasons=tuple(dict.fromkeys(reasons))))
    return out


__all__ = [
    "SaleLine", "CustomerProfile", "DatedProfiles", "profile_on", "BucketKey", "OrderDue", "Paid", "ReturnFact", "LineDraft",
    "PreviewRule",
    "SkippedRule", "ProductLineRate", "Preview", "evaluate", "settle", "not_applied", "preview",
    "period_of",
    "period_label", "KIND_LABELS",
]
