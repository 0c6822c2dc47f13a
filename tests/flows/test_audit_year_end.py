"""Audit (year end): the rebate engine and the monthly settlement across calendar boundaries,
computed by hand against docs/rebates.md — December → January (Q4 closes, Q1 opens), the
trailing payment-rate window across the year, a January return of a December order, an order
signed at 00:10 Shanghai on 1 January, versions ending 31 December / starting 1 January, the
preview's comparison with December, and a leap day."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from sqlmodel import select

from flows.hub import current_hub
from flows.rebate_preview import ItemIn, preview_items
from flows.settlement import SettlementError, settle_month
from models import Quote, RebateLine, set_clock
from models.base import SHANGHAI
from models.db import session_scope
from tests.rebate_support import (
    clock_from,
    customer_id,
    invoice,
    publish,
    return_goods,
    signed_order,
)

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"


def at_shanghai(day: dt.date, hour: int, minute: int = 0) -> None:
    """The business clock fixed at hour:minute in Shanghai on `day`, still running."""
    start = dt.datetime.now(dt.UTC)
    base = dt.datetime.combine(day, dt.time(hour, minute), SHANGHAI)
    set_clock(lambda: base + (dt.datetime.now(dt.UTC) - start))


def lines_of(db_url, run_id) -> dict:
    with session_scope(db_url) as s:
        rows = s.exec(select(RebateLine).where(RebateLine.run_id == run_id)).all()
    out: dict = defaultdict(Decimal)
    for ln in rows:
        out[(ln.order_id, ln.period, ln.kind)] += ln.amount
    return dict(out)


QUARTERLY = """
code: Q-YE
name: 季度阶梯（跨年）
effective_from: 2026-10-01
rules:
  - id: quarter
    name: 季度阶梯
    clause: 第二条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, to: 100000, rate: 2%}, {from: 100000, rate: 5%}]
    priority: 1
    stacking: stack
"""


def test_q4_closes_in_january_a_january_return_of_a_december_order_claws_back_into_q4(hub):
    clock_from(D(2026, 10, 1))
    publish(hub.db_url, QUARTERLY)
    kangda = customer_id(hub.db_url, KANGDA)
    # O1 2026-10-10: 3 × 12,800 = 38,400; O2 2026-12-20: 6 × 12,800 = 76,800
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 3)])
    o2 = signed_order(hub.db_url, kangda, D(2026, 12, 20), [("MON-M8", 6)])
    # a January order opens Q1: 1 × 12,800 at 2 % = 256.00
    o3 = signed_order(hub.db_url, kangda, D(2027, 1, 8), [("MON-M8", 1)])
    clock_from(D(2026, 11, 5))
    r = settle_month(current_hub(), "2026-10", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o1, "2026Q4", "rebate"): Decimal("768.00")}
    at_shanghai(D(2026, 12, 5), 2)
    settle_month(current_hub(), "2026-11", documents=False)
    # December settled on 5 January at 02:00 Shanghai (18:00 UTC on the 4th): Q4 = 115,200
    # → 5 %: O2 3,840.00; O1 1,920.00 − 768.00 = 1,152.00 tier difference; nothing of O3
    at_shanghai(D(2027, 1, 5), 2)
    r = settle_month(current_hub(), "2026-12", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {
        (o2, "2026Q4", "rebate"): Decimal("3840.00"),
        (o1, "2026Q4", "tier_difference"): Decimal("1152.00")}
    # 2027-01-15: 2 of O2's units come back: Q4 = 89,600 → 2 %: O2 4 × 12,800 × 2 % =
    # 1,024.00 (−2,816.00, claw-back), O1 768.00 (−1,152.00 tier falls back); Q1: O3 256.00
    return_goods(hub.db_url, o2, 1, 2, D(2027, 1, 15), number="TH-2027-0001")
    at_shanghai(D(2027, 2, 5), 2)
    r = settle_month(current_hub(), "2027-01", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {
        (o2, "2026Q4", "clawback"): Decimal("-2816.00"),
        (o1, "2026Q4", "tier_difference"): Decimal("-1152.00"),
        (o3, "2027Q1", "rebate"): Decimal("256.00")}


def test_an_order_signed_at_00_10_on_1_january_counts_in_january_in_its_own_q4(hub):
    clock_from(D(2026, 10, 1))
    publish(hub.db_url, QUARTERLY)
    kangda = customer_id(hub.db_url, KANGDA)
    o1 = signed_order(hub.db_url, kangda, D(2026, 12, 10), [("MON-M8", 5)])  # 64,000
    # dated 31 December, delivered that day, its quote signed at 00:10 Shanghai on 1 January
    # (16:10 UTC on 31 December): 4 × 12,800 = 51,200
    o2 = signed_order(hub.db_url, kangda, D(2026, 12, 31), [("MON-M8", 4)],
                      delivered_on=D(2026, 12, 31))
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == o2)).one()
        quote.signed_at = dt.datetime.combine(D(2027, 1, 1), dt.time(0, 10), SHANGHAI)
        s.add(quote)
    at_shanghai(D(2027, 1, 5), 2)
    r = settle_month(current_hub(), "2026-12", documents=False)
    # December knows only O1 (O2 was unsigned at the end of December): 64,000 × 2 %
    assert lines_of(hub.db_url, r.run_id) == {(o1, "2026Q4", "rebate"): Decimal("1280.00")}
    at_shanghai(D(2027, 2, 5), 2)
    r = settle_month(current_hub(), "2027-01", documents=False)
    # January: Q4 = 115,200 → 5 %: O2 2,560.00; O1 3,200.00 − 1,280.00 = 1,920.00
    assert lines_of(hub.db_url, r.run_id) == {
        (o2, "2026Q4", "rebate"): Decimal("2560.00"),
        (o1, "2026Q4", "tier_difference"): Decimal("1920.00")}


def test_december_is_over_at_00_10_on_1_january_shanghai_not_at_23_30(hub):
    clock_from(D(2026, 12, 1))
    publish(hub.db_url, QUARTERLY)
    kangda = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, kangda, D(2026, 12, 10), [("MON-M8", 1)])
    at_shanghai(D(2026, 12, 31), 23, 30)  # 15:30 UTC
    with pytest.raises(SettlementError) as exc:
        settle_month(current_hub(), "2026-12", documents=False)
    assert exc.value.code == "month_not_over"
    at_shanghai(D(2027, 1, 1), 0, 10)  # 16:10 UTC on the 31st: over in Shanghai
    r = settle_month(current_hub(), "2026-12", documents=False)
    assert r.run_id is not None


PAYMENT_RATE = """
code: PAY-YE
name: 回款达标返利
effective_from: 2026-10-01
rules:
  - id: paid
    applies_to: {product_lines: [监护], payment_rate: {min: 90%}}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 3%}]
    priority: 1
    stacking: stack
"""


def test_january_orders_use_invoices_due_in_october_november_december(hub):
    clock_from(D(2026, 10, 1))
    publish(hub.db_url, PAYMENT_RATE)
    kangda = customer_id(hub.db_url, KANGDA)
    # due in the window (Oct, Nov, Dec): 10,000 each, the December one paid on 2 January
    # (late: after its due date 2026-12-31) → on time 20,000 / 30,000 = 66.66 % < 90 %
    invoice(hub.db_url, kangda, D(2026, 10, 31), "10000.00", [(D(2026, 10, 30), "10000.00")])
    invoice(hub.db_url, kangda, D(2026, 11, 30), "10000.00", [(D(2026, 11, 30), "10000.00")])
    invoice(hub.db_url, kangda, D(2026, 12, 31), "10000.00", [(D(2027, 1, 2), "10000.00")])
    # outside it: September (before) and January (the order's own month)
    invoice(hub.db_url, kangda, D(2026, 9, 30), "50000.00", [(D(2026, 9, 1), "50000.00")])
    invoice(hub.db_url, kangda, D(2027, 1, 20), "50000.00", [(D(2027, 1, 2), "50000.00")])
    o1 = signed_order(hub.db_url, kangda, D(2027, 1, 10), [("MON-M8", 1)])
    # a December order's window is Sep/Oct/Nov: 70,000 / 70,000 → 100 %: 12,800 × 3 % = 384
    o0 = signed_order(hub.db_url, kangda, D(2026, 12, 10), [("MON-M8", 1)])
    at_shanghai(D(2027, 1, 5), 2)
    r = settle_month(current_hub(), "2026-12", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o0, "2026-12", "rebate"): Decimal("384.00")}
    at_shanghai(D(2027, 2, 5), 2)
    r = settle_month(current_hub(), "2027-01", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {}
    # the payment was keyed wrong: it came on 31 December (on time) → 100 %: 384.00 for O1
    from models import Payment
    with session_scope(hub.db_url) as s:
        late = s.exec(select(Payment).where(Payment.paid_on == D(2027, 1, 2),
                                            Payment.amount == Decimal("10000.00"))).one()
        late.paid_on = D(2026, 12, 31)
        late.recorded_at = dt.datetime.now(dt.UTC)
        s.add(late)
    r = settle_month(current_hub(), "2027-01", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o1, "2027-01", "adjustment"): Decimal("384.00")}


V1_TO_DEC = """
code: BASE
name: 年度基础返利
effective_from: 2026-01-01
effective_to: 2026-12-31
rules:
  - id: base
    name: 基础返利
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 1
    stacking: stack
"""
V2_FROM_JAN = """
code: BASE
name: 年度基础返利（2027）
effective_from: 2027-01-01
rules:
  - id: base
    name: 基础返利
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 3%}]
    priority: 1
    stacking: stack
"""


def test_a_version_ending_31_december_and_the_next_from_1_january(hub):
    clock_from(D(2026, 12, 1))
    publish(hub.db_url, V1_TO_DEC)
    publish(hub.db_url, V2_FROM_JAN)
    kangda = customer_id(hub.db_url, KANGDA)
    dec = signed_order(hub.db_url, kangda, D(2026, 12, 31), [("MON-M8", 1)])
    jan = signed_order(hub.db_url, kangda, D(2027, 1, 1), [("MON-M8", 1)])
    at_shanghai(D(2027, 1, 5), 2)
    r = settle_month(current_hub(), "2026-12", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(dec, "2026-12", "rebate"): Decimal("256.00")}
    at_shanghai(D(2027, 2, 5), 2)
    r = settle_month(current_hub(), "2027-01", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(jan, "2027-01", "rebate"): Decimal("384.00")}
    with session_scope(hub.db_url) as s:
        versions = dict(s.exec(select(RebateLine.order_id, RebateLine.policy_version)).all())
    assert versions == {dec: 1, jan: 2}


def test_the_preview_in_january_compares_with_december(hub):
    clock_from(D(2026, 10, 1))
    publish(hub.db_url, QUARTERLY)
    kangda = customer_id(hub.db_url, KANGDA)
    # Q4: 38,400 (Oct) + 76,800 (Dec) = 115,200 → 5 % on December's order
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 3)])
    signed_order(hub.db_url, kangda, D(2026, 12, 20), [("MON-M8", 6)])
    at_shanghai(D(2027, 1, 6), 10)
    p = preview_items(hub.db_url, kangda, [ItemIn("MON-M8", 1)], order_date=D(2027, 1, 6))
    # Q1 opens at 12,800 → 2 %: 2 % against December's 5 %: 下降3个百分点
    assert p.amount == Decimal("256.00")
    assert p.sentence == "本次订单返利比例：2%，较上月下降3个百分点"


LEAP = """
code: LEAP-2028
name: 闰日测试
effective_from: 2028-02-29
effective_to: 2028-02-29
rules:
  - id: day
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 10%}]
    priority: 1
    stacking: stack
"""


def test_a_leap_day_policy_and_order(hub):
    clock_from(D(2028, 2, 1))
    publish(hub.db_url, LEAP)
    kangda = customer_id(hub.db_url, KANGDA)
    o28 = signed_order(hub.db_url, kangda, D(2028, 2, 28), [("MON-M8", 1)])
    o29 = signed_order(hub.db_url, kangda, D(2028, 2, 29), [("MON-M8", 1)])
    signed_order(hub.db_url, kangda, D(2028, 3, 1), [("MON-M8", 1)])
    at_shanghai(D(2028, 2, 29), 23, 30)
    with pytest.raises(SettlementError):
        settle_month(current_hub(), "2028-02", documents=False)
    at_shanghai(D(2028, 3, 5), 2)
    r = settle_month(current_hub(), "2028-02", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o29, "2028-02", "rebate"): Decimal("1280.00")}
    assert o28


MONTHLY_TIERS = """
code: M-YE
name: 月度阶梯（跨年）
effective_from: 2026-10-01
rules:
  - id: month
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, to: 60000, rate: 2%}, {from: 60000, rate: 4%}]
    priority: 1
    stacking: stack
"""


def test_a_late_january_delivery_of_a_november_order_lifts_novembers_tier(hub):
    from models import Delivery
    clock_from(D(2026, 11, 1))
    publish(hub.db_url, MONTHLY_TIERS)
    kangda = customer_id(hub.db_url, KANGDA)
    # A: 5 × 12,800 ordered 2026-11-10, 3 delivered in November, 2 on 2027-01-08;
    # B: 1 × 12,800 delivered in November
    a = signed_order(hub.db_url, kangda, D(2026, 11, 10), [("MON-M8", 5)], delivered_on=False)
    b = signed_order(hub.db_url, kangda, D(2026, 11, 12), [("MON-M8", 1)])
    with session_scope(hub.db_url) as s:
        s.add(Delivery(delivery_no="FH-1", order_id=a, line_no=1, quantity=3,
                       delivered_on=D(2026, 11, 20)))
    at_shanghai(D(2026, 12, 5), 2)
    r = settle_month(current_hub(), "2026-11", documents=False)
    # November: 51,200 → 2 %: A 38,400 × 2 % = 768.00, B 256.00
    assert lines_of(hub.db_url, r.run_id) == {(a, "2026-11", "rebate"): Decimal("768.00"),
                                              (b, "2026-11", "rebate"): Decimal("256.00")}
    at_shanghai(D(2027, 1, 5), 2)
    r = settle_month(current_hub(), "2026-12", documents=False)
    assert r.run_id is None or lines_of(hub.db_url, r.run_id) == {}
    with session_scope(hub.db_url) as s:
        s.add(Delivery(delivery_no="FH-2", order_id=a, line_no=1, quantity=2,
                       delivered_on=D(2027, 1, 8)))
    at_shanghai(D(2027, 2, 5), 2)
    r = settle_month(current_hub(), "2027-01", documents=False)
    # November's bucket now 76,800 → 4 %: A 64,000 × 4 % = 2,560.00 (+1,792.00, more of it
    # delivered: rebate), B 512.00 (+256.00, tier difference)
    assert lines_of(hub.db_url, r.run_id) == {
        (a, "2026-11", "rebate"): Decimal("1792.00"),
        (b, "2026-11", "tier_difference"): Decimal("256.00")}
