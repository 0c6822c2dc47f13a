"""The rows the database sums per order and item class evaluate exactly like the order lines
they stand for: random policy books (several rules and versions), random catalogues and
random orders (duplicate SKUs, different prices, partial deliveries, returns beyond what was
delivered), on SQLite and on PostgreSQL (SALESOPS_TEST_DATABASE_URL): the evaluation, the
settlement's drafts and the previews. Found by an audit, wrong before the fixes: PostgreSQL
refused the summed read of a book whose product-line CASE was all NULL (a rule on one SKU of
a named product line), and a paid order a back-dated version no longer takes was drafted as
a return although the customer still held the goods."""
from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal
from functools import partial

from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from sqlmodel import select

from connectors.settings import Settings
from deployments.seed import seed_sample_data
from flows.hub import build_hub, use_hub
from flows.rebate_data import (
    Window, add_months, customer_profiles, payment_rates, policy_book,
    quarter_end, quarter_start, sale_lines,
)
from flows.rebate_preview import ItemIn, preview_items, settled_orders
from flows.settlement import (
    compute_month, month_inputs, paid_in_db, returns_behind, settle_month,
)
from models import Delivery, Product, Staff
from models.db import get_engine, session_scope
from models.rebates.engine import (
    SaleLine, evaluate, not_applied, preview, settle,
)
from tests.flows.test_settlement_properties import fresh_database
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

CUSTOMERS = ["江苏康达医疗设备有限公司", "浙江仁和医疗器械有限公司", "广州华南医药贸易有限公司"]
# the seeded catalogue and products of its lines no rule may name, and of a line none names
EXTRA = [("MON-X1", "监护", "9800.00"), ("PUMP-X2", "输注", "3300.00"),
         ("LAB-X3", "检验", "2100.00"), ("CONS-X4", "耗材", "45.50")]
SKUS = ["MON-M8", "MON-M12", "PUMP-SP3", "PUMP-VP5", "STER-AC60", "CONS-ECG10",
        "MON-X1", "PUMP-X2", "LAB-X3", "CONS-X4"]
LINES = ["监护", "输注", "消毒", "耗材"]  # 检验: named by no rule
MONTHS = ["2026-10", "2026-11", "2026-12"]
START = dt.date(2026, 10, 1)


def add_products(url: str) -> None:
    with session_scope(url) as s:
        for sku, line, price in EXTRA:
            if s.get(Product, sku) is None:
                s.add(Product(sku=sku, model=sku, name=f"审计{sku}", product_line=line,
                              unit="台", list_price=Decimal(price), tax_rate=Decimal("0.13")))


# --- random policy books -----------------------------------------------------------------

some = st.none() | st.lists(st.sampled_from(LINES), min_size=1, max_size=2, unique=True)
some_skus = st.none() | st.lists(st.sampled_from(SKUS), min_size=1, max_size=3, unique=True)
tiers_amount = st.sampled_from([
    [{"from": 0, "rate": "1.5%"}],
    [{"from": 0, "to": 20000, "rate": "1%"}, {"from": 20000, "rate": "3.25%"}],
    [{"from": 5000, "to": 60000, "rate": "2%"}, {"from": 60000, "rate": "4.5%"}],
])
tiers_quantity = st.sampled_from([
    [{"from": 0, "rate": "2%"}],
    [{"from": 0, "to": 5, "rate": "1%"}, {"from": 5, "rate": "3.3%"}],
    [{"from": 2, "to": 7, "rate": "2.5%"}, {"from": 7, "rate": "5%"}],
])


@st.composite
def rule(draw, rid: str, measure: str, period: str):
    applies = {}
    lines, skus = draw(some), draw(some_skus)
    if lines:
        applies["product_lines"] = lines
    if skus:
        applies["skus"] = skus
    if draw(st.booleans()) and draw(st.booleans()):
        applies["customer_tiers"] = [draw(st.sampled_from(["A", "B"]))]
    if draw(st.booleans()) and draw(st.booleans()):
        applies["regions"] = [draw(st.sampled_from(["华东", "华南"]))]
    exclude = {}
    ex_lines = draw(st.lists(st.sampled_from(LINES), max_size=1))
    ex_skus = draw(st.lists(st.sampled_from(SKUS), max_size=2, unique=True))
    if ex_lines:
        exclude["product_lines"] = ex_lines
    if ex_skus:
        exclude["skus"] = ex_skus
    out = {"id": rid, "clause": f"第{rid}条", "measure": measure,
           "period": period,
           "style": draw(st.sampled_from(["retroactive", "marginal"])),
           "tiers": draw(tiers_amount if measure == "amount" else tiers_quantity),
           "priority": draw(st.integers(1, 5)),
           "stacking": draw(st.sampled_from(["stack", "stack", "exclusive"]))}
    if applies:
        out["applies_to"] = applies
    if exclude:
        out["exclude"] = exclude
    if draw(st.booleans()):
        out["cap"] = {"amount_per_period": draw(st.sampled_from([300, 1500, 8000]))}
    return out


@st.composite
def book(draw):
    """One or two policies, the first with a second version from a day inside the quarter
    (same rule ids, same measures)."""
    docs = []
    for code in draw(st.sampled_from([["AUD-A"], ["AUD-A", "AUD-B"]])):
        measures = draw(st.lists(st.tuples(st.sampled_from(["amount", "quantity"]),
                                           st.sampled_from(["month", "quarter"])),
                                 min_size=1, max_size=3))
        rules = [draw(rule(f"r{i}", *m)) for i, m in enumerate(measures)]
        docs.append({"code": code, "name": f"审计政策{code}",
                     "effective_from": "2026-10-01", "rules": rules})
        if code == "AUD-A" and draw(st.booleans()):
            day = START + dt.timedelta(days=draw(st.integers(10, 70)))
            again = [draw(rule(f"r{i}", *m)) for i, m in enumerate(measures)]
            docs.append({"code": code, "name": f"审计政策{code}",
                         "effective_from": day.isoformat(), "rules": again})
    return docs


order = st.fixed_dictionaries({
    "customer": st.integers(0, 2), "day": st.integers(0, 91),
    # (sku, quantity, price: list price or another) — the same SKU may come twice
    "lines": st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 9),
                                st.sampled_from([None, "100.05", "7777.77"])),
                      min_size=1, max_size=4),
    # per line: units delivered (at most ordered), days after the order date
    "delivered": st.lists(st.tuples(st.integers(0, 9), st.integers(0, 50)), max_size=4),
    # (line index, units, days after the order date, kind): may exceed what was delivered
    "returns": st.lists(st.tuples(st.integers(0, 3), st.integers(1, 5), st.integers(0, 60),
                                  st.sampled_from(["return", "exchange"])), max_size=2),
})


def draft_rows(drafts):
    return sorted((d.bucket.key, d.order_id, d.kind, d.amount, d.basis, d.due, d.rate,
                   d.rep_id, d.region, d.explanation, json.dumps(d.own_inputs, sort_keys=True,
                                                                 default=str))
                  for d in drafts)


def settle_from_lines(url: str, month: str, book):
    """What compute_month would draft if it evaluated the order lines one by one."""
    inputs = month_inputs(url, month, book)
    with get_engine(url).connect() as conn:
        lines = sale_lines(conn, inputs.windows, inputs.last)
    paid = paid_in_db(url, inputs.windows, month)
    with session_scope(url) as s:
        names = dict(s.exec(select(Staff.id, Staff.name)).all())
        # the customers of every line (the summed rows leave out products no rule takes)
        ids = {ln.customer_id for ln in lines}
        days = [ln.order_date for ln in lines] or [inputs.first]
        profiles = customer_profiles(s, ids, since=min(days))
        rates = payment_rates(s, ids, min(days), max(days))
    dues = evaluate(lines, book, profiles, rates)
    gone = not_applied({k: p for k, p in paid.items() if k not in dues}, lines, book,
                       profiles, rates)
    return inputs, lines, dues, settle(dues, paid, rerun=inputs.rerun, gone=gone,
                                       rep_names=names,
                                       returns=returns_behind(url, month, book))


def world(url: str, docs, orders, ids) -> None:
    clock_from(dt.date(2026, 9, 20))
    for doc in docs:
        publish(url, json.dumps(doc, ensure_ascii=False))
    for o in orders:
        day = START + dt.timedelta(days=o["day"])
        lines = [(sku, qty, price) if price else (sku, qty) for sku, qty, price in o["lines"]]
        oid = signed_order(url, ids[o["customer"]], day, lines, delivered_on=False)
        with session_scope(url) as s:
            for no, (qty, after) in enumerate(o["delivered"][:len(lines)], start=1):
                if min(qty, lines[no - 1][1]):
                    s.add(Delivery(delivery_no=f"D-{oid}-{no}", order_id=oid, line_no=no,
                                   quantity=min(qty, lines[no - 1][1]),
                                   delivered_on=day + dt.timedelta(days=after)))
        for n, (index, qty, after, kind) in enumerate(o["returns"]):
            return_goods(url, oid, index % len(lines) + 1, qty, day + dt.timedelta(days=after),
                         kind=kind, number=f"R-{oid}-{n}")


@settings(max_examples=int(os.environ.get("ITEM_CLASS_EXAMPLES", "10")),
          deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(docs=book(), orders=st.lists(order, min_size=1, max_size=8))
def test_summed_rows_evaluate_like_lines(docs, orders, _template_db, tmp_path_factory):
    url = fresh_database(_template_db, tmp_path_factory)
    seed_sample_data(url)
    add_products(url)
    hub = build_hub(Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("data"),
                             database_url=url))
    use_hub(hub)
    try:
        ids = [customer_id(url, name) for name in CUSTOMERS]
        world(url, docs, orders, ids)
        clock_from(dt.date(2027, 1, 5))
        with session_scope(url) as s:
            pb = policy_book(s)
            products = {p.sku: p for p in s.exec(select(Product))}
            profiles = customer_profiles(s, ids)
        for month in MONTHS:
            inputs, lines, dues, drafts = settle_from_lines(url, month, pb)
            summed = evaluate(inputs.lines, pb, inputs.profiles, inputs.rates)
            assert {k: (d.basis, d.due, d.rate) for k, d in summed.items()} == \
                {k: (d.basis, d.due, d.rate) for k, d in dues.items()}
            assert draft_rows(compute_month(url, month).drafts) == draft_rows(drafts)
            settle_month(hub, month, documents=False)
        # previews: the summed reads against preview() over the lines themselves
        items = [ItemIn(sku, 2) for sku in ("MON-M8", "LAB-X3", "PUMP-X2")]
        with get_engine(url).connect() as conn:
            for cid in ids:
                for day in (dt.date(2026, 11, 20), dt.date(2026, 12, 31), dt.date(2027, 1, 5)):
                    clock_from(day)
                    last_end = day.replace(day=1) - dt.timedelta(days=1)
                    quarter = Window(quarter_start(day), quarter_end(day), frozenset({cid}))
                    last_window = Window(quarter_start(last_end), last_end, frozenset({cid}))
                    lines = [SaleLine("预览", n, cid, day, i.sku, products[i.sku].product_line,
                                      Decimal(products[i.sku].list_price), i.quantity)
                             for n, i in enumerate(items, start=1)]
                    with session_scope(url) as s:
                        rates = payment_rates(s, [cid], add_months(day, -1), day)
                    assert preview_items(url, cid, items, order_date=day).detail() == preview(
                        lines, sale_lines(conn, [quarter], day, delivered=False), pb,
                        profiles, rates, sale_lines(conn, [last_window], last_end,
                                                    delivered=False),
                        partial(settled_orders, url, cid)).detail()
    finally:
        use_hub(None)


# --- PostgreSQL: the class number's CASE ------------------------------------------------

SKU_ONLY = """
code: AUD-SKU
name: 审计政策单品
effective_from: 2026-10-01
rules:
  - id: m12
    clause: 第一条
    applies_to: {product_lines: [监护], skus: [MON-M12]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 1
    stacking: stack
"""


def test_settlement_of_a_sku_rule_within_a_named_product_line(hub):
    """A rule on MON-M12 of 监护: MON-M12 has a class (1), the other products of 监护 and every
    other product none. The class number is `CASE l.sku WHEN 'MON-M12' THEN 1 ELSE CASE
    p.product_line WHEN '监护' THEN NULL ELSE NULL END END`: PostgreSQL typed the inner CASE
    (all a bare NULL) as text and refused the outer one (`CASE types text and integer cannot
    be matched`). One order 10-12, MON-M12 × 1 at 18,600.00 delivered: 2 % = 372.00."""
    url = hub.db_url
    clock_from(dt.date(2026, 9, 20))
    publish(url, SKU_ONLY)
    cid = customer_id(url, CUSTOMERS[0])
    oid = signed_order(url, cid, dt.date(2026, 10, 12), [("MON-M12", 1), ("MON-M8", 1)])
    clock_from(dt.date(2026, 11, 5))
    drafts = compute_month(url, "2026-10").drafts
    assert [(d.order_id, d.rule_id, d.basis, d.amount) for d in drafts] == \
        [(oid, "m12", Decimal("18600.00"), Decimal("372.00"))]


# --- a paid order the new version no longer takes: why, product by product ----------------

NARROWED = """
code: AUD-N
name: 审计政策收窄
effective_from: 2026-10-01
rules:
  - id: mon
    clause: 第一条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 1
    stacking: stack
"""


def test_paid_order_a_back_dated_version_no_longer_takes_is_not_a_return(hub):
    """October: MON-M8 × 1 (12,800.00) and MON-X1 × 1 (9,800.00), both 监护, delivered and
    kept, paid 2 % = 452.00. Version 2, from 10-01 as well (published in November), takes
    MON-M12 only. November's run takes the 452.00 back; the order still holds its goods, so
    docs/rebates.md (Settlement, kinds) wants a `tier_difference` naming the condition
    (本单未退货，但已不再适用该条款…), "never as a return". not_applied() measured what the order
    holds with the *new* version's products (none), and the line was a `clawback` saying the
    goods were all returned or never shipped; it measures with the paid version's now."""
    url = hub.db_url
    add_products(url)
    clock_from(dt.date(2026, 9, 20))
    publish(url, NARROWED)
    cid = customer_id(url, CUSTOMERS[0])
    signed_order(url, cid, dt.date(2026, 10, 12), [("MON-M8", 1), ("MON-X1", 1)])
    clock_from(dt.date(2026, 11, 3))
    assert settle_month(hub, "2026-10", documents=False).total == Decimal("452.00")
    publish(url, NARROWED.replace("{product_lines: [监护]}",
                                  "{product_lines: [监护], skus: [MON-M12]}"))
    clock_from(dt.date(2026, 12, 3))
    with session_scope(url) as s:
        pb = policy_book(s)
    _, _, _, from_lines = settle_from_lines(url, "2026-11", pb)
    drafts = compute_month(url, "2026-11").drafts
    # (the lines name each SKU the version no longer takes; the summed row, one of them)
    assert [(d.kind, d.amount) for d in drafts] == [(d.kind, d.amount) for d in from_lines] \
        == [("tier_difference", Decimal("-452.00"))]
    assert "本单未退货，但已不再适用该条款（SKU MON-M8 不在适用范围" in drafts[0].explanation
    assert "货物已全部退回" not in drafts[0].explanation
