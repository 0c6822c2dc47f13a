"""Properties of settling random months in the database (hypothesis): the lines add up to
every total, every voucher balances, a second run changes nothing, and returns never pay a
rebate twice nor claw back more than was paid — whatever the orders, deliveries and returns."""
from __future__ import annotations

import datetime as dt
import shutil
from collections import defaultdict
from decimal import Decimal
from functools import partial

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlmodel import select

from connectors.settings import Settings
from deployments.seed import seed_sample_data
from flows.hub import build_hub, use_hub
from flows.rebate_board import Scope, board, figure_orders
from flows.rebate_data import (
    Window, add_months, customer_profiles, named_products, payment_rates, policy_book,
    quarter_end, quarter_start, sale_lines, summed_ordered_twice, summed_sale_lines,
)
from flows.rebate_preview import ItemIn, preview_items, settled_orders
from flows.settlement import compute_month, month_inputs, settle_month, voucher_batch
from models import Product, RebateLine, SettlementRun
from models.db import get_engine, session_scope
from models.rebates.engine import SaleLine, evaluate, item_classes, preview
from tests.conftest import PG_URL
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

POLICY = """
code: P-PROP
name: 属性测试政策
effective_from: 2026-10-01
rules:
  - id: month-flat
    name: 月度基础
    clause: 第一条
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 1.5%}]
    exclude: {skus: [MON-M12]}
    priority: 1
    stacking: stack
  - id: quarter-retro
    name: 季度追溯阶梯
    clause: 第二条
    applies_to: {product_lines: [监护, 输注]}
    measure: amount
    period: quarter
    style: retroactive
    tiers:
      - {from: 0, to: 60000, rate: 0%}
      - {from: 60000, to: 150000, rate: 2%}
      - {from: 150000, rate: 3.5%}
    cap: {amount_per_period: 4000}
    priority: 2
    stacking: stack
  - id: quarter-marginal
    name: 季度分段累进
    clause: 第三条
    applies_to: {product_lines: [输注]}
    measure: quantity
    period: quarter
    style: marginal
    tiers:
      - {from: 0, to: 10, rate: 1%}
      - {from: 10, rate: 4%}
    priority: 3
    stacking: stack
"""
CUSTOMERS = ["江苏康达医疗设备有限公司", "浙江仁和医疗器械有限公司", "广州华南医药贸易有限公司"]
SKUS = ["MON-M8", "MON-M12", "PUMP-SP3", "PUMP-VP5", "CONS-ECG10"]
MONTHS = ["2026-10", "2026-11", "2026-12"]
DAY = st.integers(min_value=0, max_value=90)  # days after 1 October

order = st.fixed_dictionaries({
    "customer": st.integers(0, 2), "day": DAY,
    "lines": st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 9)), min_size=1,
                      max_size=3, unique_by=lambda x: x[0]),
    "delivery_delay": st.integers(0, 40),
    "returns": st.lists(st.tuples(st.integers(0, 2), st.integers(1, 9), st.integers(1, 60)),
                        max_size=2),
})


def fresh_database(template, tmp_path_factory) -> str:
    if PG_URL:
        with get_engine(PG_URL).begin() as conn:
            tables = [r[0] for r in conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname='public' "
                "AND tablename <> 'alembic_version'"))]
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        return PG_URL
    path = tmp_path_factory.mktemp("prop") / "salesops.db"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(orders=st.lists(order, min_size=1, max_size=8))
def test_random_months_settle_consistently(orders, _template_db, tmp_path_factory):
    url = fresh_database(_template_db, tmp_path_factory)
    seed_sample_data(url)
    hub = build_hub(Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("data"),
                             database_url=url))
    use_hub(hub)
    clock_from(dt.date(2027, 1, 5))  # the three months are over
    try:
        publish(url, POLICY)
        ids = [customer_id(url, name) for name in CUSTOMERS]
        start = dt.date(2026, 10, 1)
        for o in orders:
            day = start + dt.timedelta(days=o["day"])
            oid = signed_order(url, ids[o["customer"]], day, o["lines"],
                               delivered_on=day + dt.timedelta(days=o["delivery_delay"]))
            delivered = day + dt.timedelta(days=o["delivery_delay"])
            back = defaultdict(int)
            for line_index, qty, after in o["returns"]:
                line_no = line_index % len(o["lines"]) + 1
                room = o["lines"][line_no - 1][1] - back[line_no]
                if room > 0:
                    back[line_no] += min(qty, room)
                    return_goods(url, oid, line_no, min(qty, room),
                                 delivered + dt.timedelta(days=after))
        with session_scope(url) as s:
            book = policy_book(s)
        # a preview reads its period and last month summed per order and class of products,
        # in one query when both lie in one quarter (what two reads give), and previews like
        # the lines themselves, last month in the quarter or in the one before (5 January)
        with session_scope(url) as s:
            products = {p.sku: p for p in s.exec(select(Product))}
            classes = item_classes(book, named_products(s, book),
                                   apart={products[sku].product_line for sku in SKUS[:3]})
            profiles = customer_profiles(s, ids)
        items = [ItemIn(sku, 3) for sku in SKUS[:3]]
        with get_engine(url).connect() as conn:
            for cid in ids:
                for day in (dt.date(2026, 11, 20), dt.date(2026, 12, 31), dt.date(2027, 1, 5)):
                    last_end = day.replace(day=1) - dt.timedelta(days=1)
                    quarter = Window(quarter_start(day), quarter_end(day), frozenset({cid}))
                    last_window = Window(quarter_start(last_end), last_end, frozenset({cid}))
                    if quarter.start == last_window.start:
                        now, before = summed_ordered_twice(conn, quarter, day, last_end, classes)
                        assert sorted(now) == sorted(summed_sale_lines(
                            conn, [quarter], day, classes, delivered=False)[0])
                        assert sorted(before) == sorted(summed_sale_lines(
                            conn, [last_window], last_end, classes, delivered=False)[0])
                    order = [SaleLine("预览", n, cid, day, i.sku, products[i.sku].product_line,
                                      Decimal(products[i.sku].list_price), i.quantity)
                             for n, i in enumerate(items, start=1)]
                    with session_scope(url) as s:
                        rates = payment_rates(s, [cid], add_months(day, -1), day)
                    # the period as known today (5 January): returns since the order date
                    known = max(day, dt.date(2027, 1, 5))
                    assert preview_items(url, cid, items, order_date=day).detail() == preview(
                        order, sale_lines(conn, [quarter], known, delivered=False), book,
                        profiles, rates, sale_lines(conn, [last_window], last_end,
                                                    delivered=False),
                        partial(settled_orders, url, cid)).detail()
            # the settlement reads a quarter in slices of order dates side by side, each on
            # its own connection: the same rows as one read
            whole = Window(dt.date(2026, 10, 1), dt.date(2026, 12, 31))
            alone = summed_sale_lines(conn, [whole], dt.date(2026, 12, 31), classes)
            for parts in (2, 3):
                apart = summed_sale_lines(conn, [whole], dt.date(2026, 12, 31), classes,
                                          side_by_side=parts)
                assert (sorted(apart[0]), apart[1]) == (sorted(alone[0]), alone[1])
        for month in MONTHS:
            # the rows the database sums per order and item class evaluate like the lines
            inputs = month_inputs(url, month, book)
            with get_engine(url).connect() as conn:
                lines = sale_lines(conn, inputs.windows, inputs.last)
            assert inputs.line_count == len(lines)
            assert {k: (d.basis, d.due) for k, d in evaluate(
                inputs.lines, book, inputs.profiles, inputs.rates).items()} == \
                {k: (d.basis, d.due) for k, d in evaluate(
                    lines, book, inputs.profiles, inputs.rates).items()}
            settles_consistently(hub, url, month)
        # at the end, everything due is paid exactly once: nothing left to pay or claw back
        assert compute_month(url, MONTHS[-1]).drafts == []
        board_adds_up(url)
    finally:
        use_hub(None)


def settles_consistently(hub, url: str, month: str) -> None:
    """Settle `month`: a second run changes nothing; the revision's lines sum to its total and
    to each breakdown; every voucher balances; what was paid per (rule bucket, order) is
    never negative."""
    result = settle_month(hub, month)
    assert settle_month(hub, month).run_id is None  # a second run changes nothing
    if result.run_id is None:
        return
    with session_scope(url) as s:
        run = s.get(SettlementRun, result.run_id)
        lines = s.exec(select(RebateLine).where(RebateLine.run_id == run.id)).all()
    total = sum((Decimal(str(ln.amount)) for ln in lines), Decimal("0.00"))
    assert total == Decimal(str(run.total_amount)) == result.total
    for breakdown in (result.by_customer, result.by_rep, result.by_region, result.by_kind):
        assert sum(Decimal(v) for v in breakdown.values()) == total
    batch = voucher_batch(hub, run.id)
    for voucher in batch.vouchers if batch else ():
        assert sum(e.debit for e in voucher.entries) == \
            sum(e.credit for e in voucher.entries) > 0
    with session_scope(url) as s:
        paid = defaultdict(Decimal)
        for ln in s.exec(select(RebateLine)):
            paid[(ln.bucket_key, ln.order_id)] += Decimal(str(ln.amount))
    assert all(v >= 0 for v in paid.values()), paid


def board_adds_up(url: str) -> None:
    """The board's figures and its pages of orders, summed by the database, are the sums of
    the lines in scope: for everyone, each region and each rep."""
    today = dt.date(2027, 1, 15)
    with session_scope(url) as s:
        lines = s.exec(select(RebateLine)).all()  # all drafts (pending): nobody confirmed
    scopes = [Scope(None, None, "all")]
    scopes += [Scope(None, region, region) for region in {ln.region for ln in lines}]
    scopes += [Scope(rep, None, rep) for rep in {ln.rep_id for ln in lines}]
    for scope in scopes:
        mine = [ln for ln in lines if scope.rep_id in (None, ln.rep_id)
                and scope.region in (None, ln.region)]
        per_order = defaultdict(Decimal)
        per_month = defaultdict(Decimal)
        for ln in mine:
            per_order[ln.order_id] += Decimal(str(ln.amount))
            per_month[ln.month] += Decimal(str(ln.amount))
        figures = {f["status"]: f for f in board(url, scope, today)["figures"]}
        assert Decimal(figures["pending"]["amount"]) == sum(per_order.values(), Decimal(0))
        assert figures["pending"]["orders"] == len(per_order)
        assert {m["month"]: Decimal(m["pending"]) for m in board(url, scope, today)["months"]} \
            == dict(per_month)
        pages, offset = [], 0
        while True:
            page = figure_orders(url, scope, "pending", today, offset=offset, limit=2)
            assert page["count"] == len(per_order)
            pages += page["orders"]
            offset += 2
            if offset >= page["count"]:
                break
        assert {o["order_id"]: Decimal(o["amount"]) for o in pages} == dict(per_order)
        assert [o["order_date"] for o in pages] == sorted((o["order_date"] for o in pages),
                                                          reverse=True)
