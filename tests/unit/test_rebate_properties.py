"""Monthly settlement over random policies, orders, deliveries and returns (hypothesis).

Each month end: evaluate what is known, settle against everything paid so far, book it.
Properties: the engine agrees with a naive reference computation; line sums equal the
change of the dues per customer, region and rep; a second settlement with no new facts is
empty; nothing is paid twice or clawed back beyond what was paid; paid = due at the end.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.names import normalize_name
from models.rebates.engine import (
    BucketKey, CustomerProfile, Paid, SaleLine, evaluate, item_classes, named_skus, preview,
    settle,
)
from models.rebates.policy import PolicyBook, PublishedVersion, parse_policy_document

D = Decimal
CUSTOMERS = {
    1: CustomerProfile(1, "A", "华东", "91320500MA1K2D3F5H", "江苏康达医疗设备有限公司"),
    2: CustomerProfile(2, "B", "华南", "91440100MA59QX1R3H", "广州华南医药贸易有限公司"),
    3: CustomerProfile(3, "C", "华东", None, "上海申康医疗科技有限公司"),
}
REPS = {1: "rep-zhangwei", 2: "rep-lina", 3: "rep-zhangwei"}
ITEMS = [("MON-M8", "监护", D("1280.00")), ("MON-M12", "监护", D("2599.90")),
         ("PUMP-SP3", "输注", D("498.50")), ("CONS-ECG10", "耗材", D("6.80"))]
RATES = ["0%", "0.5%", "1%", "1.5%", "2%", "2.5%", "3%", "5%", "7.7%", "10%", "12.25%"]
START = dt.date(2027, 1, 1)
MONTH_ENDS = [dt.date(2027, m + 1, 1) - dt.timedelta(days=1) for m in range(1, 6)] + [
    dt.date(2027, 6, 30)]


# --------------------------------------------------------------------------- strategies

@st.composite
def rule_skeletons(draw, index: int):
    measure = draw(st.sampled_from(["amount", "quantity"]))
    step = 2000 if measure == "amount" else 3
    cuts = sorted(draw(st.sets(st.integers(1, 20), min_size=0, max_size=2)))
    lowest = draw(st.sampled_from([0, 0, 0, 1]))
    bounds = [lowest] + [c for c in cuts if c > lowest]
    open_end = draw(st.booleans()) or len(bounds) == 1
    tiers = [(b * step, (bounds[i + 1] * step if i + 1 < len(bounds) else None))
             for i, b in enumerate(bounds)]
    if not open_end:
        last_lo = tiers[-1][0]
        tiers[-1] = (last_lo, last_lo + step * draw(st.integers(1, 5)))
    conditions = []
    if draw(st.integers(0, 2)) == 0:
        conditions.append(f"product_lines: [{draw(st.sampled_from(['监护', '输注', '耗材']))}]")
    if draw(st.integers(0, 3)) == 0:
        conditions.append(f"customer_tiers: [{draw(st.sampled_from(['A', 'B']))}]")
    if draw(st.integers(0, 4)) == 0:
        conditions.append(f"skus: [{draw(st.sampled_from(['MON-M8', 'MON-M12, PUMP-SP3']))}]")
    if draw(st.integers(0, 2)) == 0:
        conditions.append("payment_rate: {min: 90%, no_history: "
                          f"{draw(st.sampled_from(['pass', 'fail']))}}}")
    return {
        "id": f"r{index}", "measure": measure,
        "period": draw(st.sampled_from(["month", "quarter"])),
        "style": draw(st.sampled_from(["retroactive", "marginal"])),
        "tiers": tiers, "conditions": conditions,
        "exclude_customer": draw(st.integers(0, 5)) == 0,
        "cap": draw(st.one_of(st.none(), st.integers(20, 3000))),
        "priority": draw(st.integers(0, 3)),
        "stacking": draw(st.sampled_from(["stack", "stack", "exclusive"])),
    }


def render(code: str, start: dt.date, skeletons: list[dict], rates: list[list[str]]):
    out = [f"code: {code}", "name: 随机政策", f"effective_from: {start}", "rules:"]
    for sk, rs in zip(skeletons, rates):
        tiers = ", ".join(
            f"{{from: {lo}, {'' if up is None else f'to: {up}, '}rate: {r}}}"
            for (lo, up), r in zip(sk["tiers"], rs))
        out += [f"  - id: {sk['id']}", f"    measure: {sk['measure']}",
                f"    period: {sk['period']}", f"    style: {sk['style']}",
                f"    tiers: [{tiers}]", f"    priority: {sk['priority']}",
                f"    stacking: {sk['stacking']}"]
        if sk["conditions"]:
            out.append("    applies_to: {" + ", ".join(sk["conditions"]) + "}")
        if sk["exclude_customer"]:
            out.append("    exclude: {customers: [上海申康医疗科技有限公司]}")
        if sk["cap"] is not None:
            out.append(f"    cap: {{amount_per_period: {sk['cap']}}}")
    return parse_policy_document("\n".join(out) + "\n")


@st.composite
def books(draw):
    versions = []
    for code in draw(st.sampled_from([["PA"], ["PA", "PB"]])):
        n = draw(st.integers(1, 2))
        skeletons = [draw(rule_skeletons(i)) for i in range(n)]

        def rates_for(sks):
            return [[draw(st.sampled_from(RATES)) for _ in sk["tiers"]] for sk in sks]

        versions.append(PublishedVersion(code, 1, render(code, START, skeletons,
                                                         rates_for(skeletons))))
        if draw(st.booleans()):
            # a second version from a day inside the quarter: same rules and measures, new
            # rates, maybe another style and cap (a bucket can hold lines of both)
            start = START + dt.timedelta(days=draw(st.integers(10, 80)))
            again = [{**sk, "cap": draw(st.one_of(st.none(), st.integers(20, 3000))),
                      "style": draw(st.sampled_from([sk["style"], "retroactive", "marginal"]))}
                     for sk in skeletons]
            versions.append(PublishedVersion(code, 2, render(code, start, again,
                                                             rates_for(again))))
    return PolicyBook(versions)


@st.composite
def orders(draw):
    out = []
    for n in range(draw(st.integers(2, 10))):
        customer = draw(st.integers(1, 3))
        day = START + dt.timedelta(days=draw(st.integers(0, 89)))
        lines = []
        for line_no in range(1, draw(st.integers(1, 3)) + 1):
            sku, pl, price = draw(st.sampled_from(ITEMS))
            qty = draw(st.integers(1, 15))
            delivered = draw(st.integers(-2, 45))
            delivered = None if delivered < 0 else delivered  # now and then never delivered
            returns = []
            if delivered is not None:
                left = qty
                for _ in range(draw(st.integers(0, 2))):
                    if left == 0:
                        break
                    back = draw(st.integers(1, left))
                    left -= back
                    returns.append((back, day + dt.timedelta(days=delivered
                                                             + draw(st.integers(0, 60)))))
            lines.append({"line": SaleLine(f"O{n:02d}", line_no, customer, day, sku, pl, price,
                                           qty, REPS[customer]),
                          "delivered": None if delivered is None
                          else day + dt.timedelta(days=delivered),
                          "returns": returns})
        out.append(lines)
    return out


payment_rates = st.dictionaries(
    st.tuples(st.integers(1, 3), st.sampled_from([f"2027-{m:02d}" for m in (1, 2, 3)])),
    st.sampled_from([D("0.85"), D("0.8999"), D("0.9"), D("0.97")]), max_size=9)


def facts_as_of(all_orders, end: dt.date) -> list[SaleLine]:
    """Lines delivered by `end`, net of returns dated by `end` (settlement's view)."""
    out = []
    for lines in all_orders:
        for item in lines:
            if item["delivered"] is None or item["delivered"] > end:
                continue
            back = sum(q for q, on in item["returns"] if on <= end)
            ln = item["line"]
            out.append(SaleLine(ln.order_id, ln.line_no, ln.customer_id, ln.order_date, ln.sku,
                                ln.product_line, ln.unit_price, ln.net_quantity - back,
                                ln.rep_id))
    return out


def summed(lines: list[SaleLine], book: PolicyBook, apart=None) -> list[SaleLine]:
    """The lines as the settlement (a preview: product lines `apart`) reads them from the
    database: per order and item class one row (amount in fen, each negative net counted as
    0; the smallest line number, SKU and product line of its lines), lines of a per-line
    class and products without a class as the database leaves them (apart; left out)."""
    named = named_skus(book)
    classes = item_classes(book, [(sku, pl) for sku, pl, _ in ITEMS if sku in named],
                           apart=apart)
    rows: dict[tuple, list[SaleLine]] = defaultdict(list)
    out = []
    for ln in lines:
        n = classes.number(ln.sku, ln.product_line)
        if n is None:
            continue
        ln = ln._replace(net_quantity=max(ln.net_quantity, 0))
        if n in classes.per_line:
            out.append(ln)
        else:
            rows[(ln.order_id, n)].append(ln)
    out += [SaleLine(lns[0].order_id, min(ln.line_no for ln in lns), lns[0].customer_id,
                     lns[0].order_date, min(ln.sku for ln in lns),
                     min(ln.product_line for ln in lns), None,
                     sum(ln.net_quantity for ln in lns), lns[0].rep_id,
                     sum(int(ln.net_quantity * ln.unit_price * 100) for ln in lns))
            for lns in rows.values()]
    return out


def ordered_as_of(all_orders, end: dt.date) -> list[SaleLine]:
    """Lines of orders dated by `end`, ordered − returned by `end` (a preview's view)."""
    return [item["line"]._replace(net_quantity=item["line"].net_quantity - sum(
                q for q, on in item["returns"] if on <= end))
            for lines in all_orders for item in lines if item["line"].order_date <= end]


# --------------------------------------------------------------------------- reference

def _applies(rule, code, line, profile, pay) -> bool:
    a, x = rule.applies_to, rule.exclude
    if a.product_lines is not None and line.product_line not in a.product_lines:
        return False
    if a.skus is not None and line.sku not in a.skus:
        return False
    if a.customer_tiers is not None and profile.tier not in a.customer_tiers:
        return False
    if a.regions is not None and profile.region not in a.regions:
        return False
    if a.order_dates is not None and not a.order_dates.contains(line.order_date):
        return False
    if line.sku in x.skus or line.product_line in x.product_lines:
        return False
    names = {normalize_name(c) for c in x.customers}
    if normalize_name(profile.legal_name) in names or normalize_name(profile.uscc or "") in names:
        return False
    if a.payment_rate is not None:
        if pay is None:
            return a.payment_rate.no_history == "pass"
        return pay >= a.payment_rate.min
    return True


def reference(lines, book, customers, rates) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    """Straight from docs/rebates.md, slowly: {(bucket_key, order): (basis, due)}."""
    buckets: dict[str, list] = defaultdict(list)
    for ln in lines:
        profile = customers[ln.customer_id]
        pay = rates.get((ln.customer_id, f"{ln.order_date:%Y-%m}"))
        cands = [ar for ar in book.rules_on(ln.order_date)
                 if _applies(ar.rule, ar.code, ln, profile, pay)]
        exclusive = [ar for ar in cands if ar.rule.stacking == "exclusive"]
        if exclusive:
            cands = [min(exclusive, key=lambda ar: (-ar.rule.priority, ar.code, ar.rule.id))]
        for ar in cands:
            d = ln.order_date
            period = (f"{d.year}Q{(d.month - 1) // 3 + 1}" if ar.rule.period == "quarter"
                      else f"{d:%Y-%m}")
            buckets[f"{ar.code}|{ar.rule.id}|{ln.customer_id}|{period}"].append((ln, ar))
    out = {}
    for key, items in buckets.items():
        def size(ln, rule):
            q = max(ln.net_quantity, 0)
            return q * ln.unit_price if rule.measure == "amount" else D(q)

        volume = sum(size(ln, ar.rule) for ln, ar in items)
        items.sort(key=lambda it: (it[0].order_date, it[0].order_id, it[0].line_no))
        earned: dict[str, Fraction] = defaultdict(Fraction)
        basis: dict[str, Decimal] = defaultdict(D)
        dates, versions = {}, {}
        pos = D(0)
        for ln, ar in items:
            rule, s = ar.rule, size(ln, ar.rule)
            amount = max(ln.net_quantity, 0) * ln.unit_price
            if rule.style == "retroactive":
                reached = [t for t in rule.tiers if volume >= t.lower]
                earn = Fraction(amount * reached[-1].rate) if reached else Fraction(0)
            else:
                earn = Fraction(0)
                for t in rule.tiers:
                    lo = max(pos, t.lower)
                    hi = pos + s if t.upper is None else min(pos + s, t.upper)
                    if hi > lo:
                        per = t.rate if rule.measure == "amount" else t.rate * ln.unit_price
                        earn += Fraction(hi - lo) * Fraction(per)
            pos += s
            earned[ln.order_id] += earn
            basis[ln.order_id] += amount
            dates[ln.order_id] = ln.order_date
            versions[ln.order_id] = ar
        dues = {o: int((e * 100 + Fraction(1, 2)).__floor__()) for o, e in earned.items()}
        # a version's cap is shared by the orders that version governs, less what the orders
        # of the versions before earned (after their own caps)
        earlier = 0
        for version in sorted({ar.version for ar in versions.values()}):
            mine = {o: v for o, v in dues.items() if versions[o].version == version}
            rule = next(ar.rule for o, ar in versions.items() if ar.version == version)
            total = sum(mine.values())
            room = None if rule.cap is None else max(int(rule.cap * 100) - earlier, 0)
            if room is not None and total > room:
                shares = {o: room * v // total for o, v in mine.items()}
                order = sorted(mine, key=lambda o: (-(room * mine[o] % total), dates[o], o))
                for o in order[:room - sum(shares.values())]:
                    shares[o] += 1
                dues.update(shares)
            earlier += sum(dues[o] for o in mine)
        for o in dues:
            out[(key, o)] = (basis[o].quantize(D("0.01")), D(dues[o]) / 100)
    return out


# --------------------------------------------------------------------------- the property

@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(book=books(), all_orders=orders(), rates=payment_rates)
def test_monthly_settlement_properties(book, all_orders, rates):
    paid: dict[tuple[str, str], Paid] = {}
    for month_no, end in enumerate(MONTH_ENDS):
        lines = facts_as_of(all_orders, end)
        dues = evaluate(lines, book, CUSTOMERS, rates)

        # the engine computes what the contract says
        got = {k: (d.basis, d.due) for k, d in dues.items()}
        assert got == reference(lines, book, CUSTOMERS, rates)
        # … and so do the lines summed per order and item class
        again = evaluate(summed(lines, book), book, CUSTOMERS, rates)
        assert {k: (d.basis, d.due, d.explanation) for k, d in again.items()} == \
            {k: (d.basis, d.due, d.explanation) for k, d in dues.items()}
        assert all(d.due >= 0 for d in dues.values())

        drafts = settle(dues, paid, rerun=False)
        # line sums = change of the dues, per customer, per region, per rep
        for g in range(3):
            by_lines, by_dues = defaultdict(D), defaultdict(D)
            for d in drafts:
                by_lines[(d.customer_id, d.region, d.rep_id)[g]] += d.amount
            for d in dues.values():
                by_dues[(d.customer_id, d.region, d.rep_id)[g]] += d.due
            for key, p in paid.items():
                by_dues[(BucketKey.parse(key[0]).customer_id, p.region, p.rep_id)[g]] -= p.amount
            assert {k: v for k, v in by_lines.items() if v} == \
                   {k: v for k, v in by_dues.items() if v}
        for d in drafts:
            assert d.amount != 0
            assert d.amount == d.due - d.paid_before
            assert d.amount >= -d.paid_before  # never claws back more than was paid
            if d.kind == "clawback":
                assert d.amount < 0
            if d.kind == "rebate" and d.paid_before:
                assert d.amount > 0

        for d in drafts:
            key = (d.bucket_key, d.order_id)
            before = paid[key].amount if key in paid else D(0)
            paid[key] = Paid(before + d.amount, d.basis, d.policy_version, d.clause, d.rep_id,
                             d.region)
        assert all(p.amount >= 0 for p in paid.values())  # paid per order never negative
        # nothing new: nothing to settle, whether a fresh run or a re-run of the month
        assert settle(dues, paid, rerun=False) == []
        assert settle(dues, paid, rerun=True) == []
        # paid = due for every (bucket, order); gone ones are fully clawed back
        for key, p in paid.items():
            assert p.amount == (dues[key].due if key in dues else 0)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(book=books(), all_orders=orders(), rates=payment_rates,
       day=st.integers(31, 89), customer=st.integers(1, 3),
       items=st.lists(st.sampled_from(ITEMS), min_size=1, max_size=3, unique=True),
       quantities=st.lists(st.integers(0, 15), min_size=3, max_size=3))
def test_preview_of_summed_rows_is_the_preview_of_lines(book, all_orders, rates, day,
                                                        customer, items, quantities):
    """A preview reads the customer's orders summed per order and class of products (by
    product line): rate, amount, rules, inputs and every product line's comparison with last
    month are those of the lines, whatever the rules (a marginal rule by amount over two
    product lines shares an order's earnings by amount, not by the order of its lines)."""
    day = START + dt.timedelta(days=day)  # February or March: last month is in the quarter
    last_end = day.replace(day=1) - dt.timedelta(days=1)
    order = [SaleLine("NEW", n, customer, day, sku, pl, price, q, REPS[customer])
             for n, ((sku, pl, price), q) in enumerate(zip(items, quantities), start=1)]
    period = [ln for ln in ordered_as_of(all_orders, day) if ln.customer_id == customer]
    last = [ln for ln in ordered_as_of(all_orders, last_end) if ln.customer_id == customer]
    of_lines = preview(order, period, book, CUSTOMERS, rates, last)
    apart = {ln.product_line for ln in order}
    of_rows = preview(order, summed(period, book, apart), book, CUSTOMERS, rates,
                      summed(last, book, apart))
    assert of_rows.detail() == of_lines.detail()


def test_last_month_rate_of_a_marginal_rule_over_two_product_lines():
    """Last month's order laid 监护 ¥1,500, 输注 ¥1,000, 监护 ¥1,000 across a band boundary
    at ¥2,000 of a marginal rule by amount (1 %, then 5 %): it earned ¥95.00 on ¥3,500.00,
    2.7143 % for each of its product lines, whether its lines are read one by one or summed
    per product line (in line order 监护 would read 2.6 %, summed 1.8 %)."""
    book = PolicyBook([PublishedVersion("PM", 1, parse_policy_document(
        "code: PM\nname: 分段累进\neffective_from: 2027-01-01\nrules:\n"
        "  - id: all\n    measure: amount\n    period: quarter\n    style: marginal\n"
        "    tiers: [{from: 0, to: 2000, rate: 1%}, {from: 2000, rate: 5%}]\n"
        "    priority: 1\n    stacking: stack\n"))])
    day, last_day = dt.date(2027, 2, 10), dt.date(2027, 1, 20)
    last = [SaleLine("JAN", 1, 1, last_day, "MON-M8", "监护", D("1500.00"), 1),
            SaleLine("JAN", 2, 1, last_day, "PUMP-SP3", "输注", D("1000.00"), 1),
            SaleLine("JAN", 3, 1, last_day, "MON-M12", "监护", D("1000.00"), 1)]
    order = [SaleLine("NEW", 1, 1, day, "MON-M8", "监护", D("100.00"), 1),
             SaleLine("NEW", 2, 1, day, "PUMP-SP3", "输注", D("100.00"), 1)]
    of_lines = preview(order, last, book, CUSTOMERS, {}, last)
    rows = summed(last, book, {"监护", "输注"})
    assert len(rows) == 2  # one row per product line of last month's order
    of_rows = preview(order, rows, book, CUSTOMERS, {}, rows)
    assert of_rows.detail() == of_lines.detail()
    assert [p.last_month_rate for p in of_lines.product_lines] == [D("0.027143")] * 2
    assert [p.rate for p in of_lines.product_lines] == [D("0.05")] * 2
