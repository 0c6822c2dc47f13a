"""The rebate shown at order entry (POST /rebates/preview, the quote) is what the settlement
then pays, in scenarios where nothing changes after the order is entered (no later order, the
order signed and delivered in full on its date, invoices as the scenario's payment history):
rate, amount, policy version and clause, rule by rule. Found by an audit; two were wrong:
- the settlement paid a rule on lines it does not take: the rows it sums per order and item
  class (one class may hold products of several product lines) read as one line's SKU with
  another line's product line (test_order_of_several_product_lines,
  test_settlement_pays_a_product_line_rule_on_an_excluded_sku_and_consumables);
- the preview lays the order being entered after the day's other orders (on a marginal
  axis, for a cap's last fen), the settlement by order id: ids were random, so the order
  sorted first half the time. Ids now sort in the order orders come in (the same-day
  tests, and tests/unit/test_order_ids.py)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from flows.rebate_preview import ItemIn, preview_items
from flows.rebate_data import add_months
from flows.settlement import compute_month
from models.base import SHANGHAI
from models.codes import new_order_id
from tests.rebate_support import clock_from, customer_id, invoice, publish, signed_order

KANGDA = "江苏康达医疗设备有限公司"  # tier A, 华东
RENHE = "浙江仁和医疗器械有限公司"  # tier B, 华东


def preview_then_settle(hub, cid: int, day: dt.date, lines):
    """Preview `lines` [(sku, qty[, price])] for the customer on `day`, then record the
    order signed and delivered in full on `day`, and compute the settlement of its month
    after the month is over. Returns (preview, {(code, rule): (rate, amount, version,
    clause)} of the preview, the same of the settlement's lines of the order)."""
    clock_from(day)
    items = [ItemIn(ln[0], ln[1], Decimal(ln[2]) if len(ln) > 2 else None) for ln in lines]
    p = preview_items(hub.db_url, cid, items, order_date=day)
    oid = signed_order(hub.db_url, cid, day, lines)
    clock_from(add_months(day.replace(day=1), 1) + dt.timedelta(days=4))
    drafts = [d for d in compute_month(hub.db_url, f"{day:%Y-%m}").drafts if d.order_id == oid]
    shown = {(r.policy_code, r.rule_id): (r.rate, r.amount, r.policy_version, r.clause)
             for r in p.rules}
    paid = {}
    for d in drafts:
        key = (d.policy_code, d.rule_id)
        rate, amount, version, clause = paid.get(key, (d.rate, Decimal(0), d.policy_version,
                                                       d.clause))
        paid[key] = (rate, amount + d.amount, version, clause)
    return p, shown, paid


def at(day: dt.date, hour: int, minute: int, second: int = 0) -> dt.datetime:
    """A moment of `day` in Shanghai, as UTC (what the webhook's clock gives)."""
    return dt.datetime.combine(day, dt.time(hour, minute, second), SHANGHAI).astimezone(dt.UTC)


def policy(code: str, rules: str, effective_from: str = "2026-07-01", extra: str = "") -> str:
    return (f"code: {code}\nname: 审计政策{code}\neffective_from: {effective_from}\n{extra}"
            f"rules:\n{rules}")


QUARTER_RETRO = """
  - id: q
    clause: 第二条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, to: 50000, rate: 2%}, {from: 50000, rate: 5%}]
    priority: 10
    stacking: stack
"""


def test_quarterly_retroactive_with_earlier_orders(hub):
    """Earlier orders of Q4: 10-10 MON-M8×2 (25,600). The order 11-20 MON-M8×2 (25,600)
    takes the quarter to 51,200 ≥ 50,000: the order earns 5 % = 1,280.00."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("AQR", QUARTER_RETRO))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, dt.date(2026, 10, 10), [("MON-M8", 2)])
    p, shown, paid = preview_then_settle(hub, k, dt.date(2026, 11, 20), [("MON-M8", 2)])
    assert shown[("AQR", "q")][:2] == (Decimal("0.05"), Decimal("1280.00"))
    assert shown == paid


QUARTER_MARGINAL = """
  - id: m
    clause: 第三条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: quarter
    style: marginal
    tiers: [{from: 0, to: 30000, rate: 1%}, {from: 30000, rate: 4%}]
    priority: 10
    stacking: stack
"""


def test_quarterly_marginal_with_earlier_orders(hub):
    """10-10 MON-M8×2 (25,600) then the order 12-05 MON-M8×1 (12,800): the order lies at
    25,600 … 38,400: 4,400 × 1 % + 8,400 × 4 % = 44 + 336 = 380.00."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("AQM", QUARTER_MARGINAL))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, dt.date(2026, 10, 10), [("MON-M8", 2)])
    p, shown, paid = preview_then_settle(hub, k, dt.date(2026, 12, 5), [("MON-M8", 1)])
    assert shown[("AQM", "m")][1] == Decimal("380.00")
    assert shown == paid


MONTH_RETRO = """
  - id: mr
    clause: 第一条
    applies_to: {product_lines: [输注]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, to: 20000, rate: 1%}, {from: 20000, rate: 3%}]
    priority: 10
    stacking: stack
"""


def test_monthly_retroactive_with_earlier_orders(hub):
    """11-03 PUMP-SP3×3 (14,940); the order 11-25 PUMP-SP3×2 (9,960): month 24,900 ≥
    20,000: 3 % × 9,960 = 298.80."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("AMR", MONTH_RETRO))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, dt.date(2026, 11, 3), [("PUMP-SP3", 3)])
    p, shown, paid = preview_then_settle(hub, k, dt.date(2026, 11, 25), [("PUMP-SP3", 2)])
    assert shown[("AMR", "mr")][1] == Decimal("298.80")
    assert shown == paid


CAPPED = """
  - id: c
    clause: 第四条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, rate: 10%}]
    cap: {amount_per_period: 5000}
    priority: 10
    stacking: stack
"""


def test_cap_with_earlier_orders(hub):
    """10-10 MON-M8×3 (38,400, earns 3,840); the order 11-20 MON-M8×2 (25,600, uncapped
    2,560). Cap 5,000 for the quarter, shared in proportion to the uncapped dues:
    5,000 × 2,560 / 6,400 = 2,000.00 — but the October order was settled 3,840 already;
    the preview shows the order's share as the settlement computes its due."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("ACAP", CAPPED))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, dt.date(2026, 10, 10), [("MON-M8", 3)])
    p, shown, paid = preview_then_settle(hub, k, dt.date(2026, 11, 20), [("MON-M8", 2)])
    assert shown == paid


STACKING = """
  - id: base
    clause: 第一条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 1
    stacking: stack
  - id: extra
    clause: 第二条
    applies_to: {skus: [MON-M8]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 1%}]
    priority: 2
    stacking: stack
  - id: promo
    clause: 第三条
    applies_to: {skus: [MON-M12], customer_tiers: [A]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 6%}]
    priority: 5
    stacking: exclusive
  - id: promo-low
    clause: 第四条
    applies_to: {skus: [MON-M12]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 4%}]
    priority: 3
    stacking: exclusive
"""


def test_stacking_exclusive_priority_and_skus(hub):
    """Order 11-20: MON-M8×1 (12,800: base 2 % + extra 1 % = 384.00) and MON-M12×1
    (18,600: promo 6 % exclusive, priority 5 over promo-low: 1,116.00)."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("ASTK", STACKING))
    k = customer_id(hub.db_url, KANGDA)
    p, shown, paid = preview_then_settle(hub, k, dt.date(2026, 11, 20),
                                         [("MON-M8", 1), ("MON-M12", 1)])
    assert p.amount == Decimal("1500.00")
    assert shown == paid


TIER_REGION = """
  - id: east-a
    clause: 第一条
    applies_to: {product_lines: [监护], customer_tiers: [A], regions: [华东]}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, to: 30000, rate: 1%}, {from: 30000, rate: 3%}]
    priority: 10
    stacking: stack
"""


def test_customer_tier_and_region(hub):
    """康达 (A, 华东): 10-10 MON-M8×2 (25,600) and the order 11-20 MON-M8×1 (12,800):
    38,400 ≥ 30,000 → 3 % × 12,800 = 384.00. 仁和 (B) gets nothing in both."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("ATR", TIER_REGION))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, dt.date(2026, 10, 10), [("MON-M8", 2)])
    p, shown, paid = preview_then_settle(hub, k, dt.date(2026, 11, 20), [("MON-M8", 1)])
    assert shown[("ATR", "east-a")][1] == Decimal("384.00")
    assert shown == paid
    r = customer_id(hub.db_url, RENHE)
    p, shown, paid = preview_then_settle(hub, r, dt.date(2026, 12, 20), [("MON-M8", 1)])
    assert shown == paid == {}


PAY_RATE = """
  - id: pay
    clause: 第五条
    applies_to: {product_lines: [监护], payment_rate: {min: 90%}}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 3%}]
    priority: 10
    stacking: stack
"""


@pytest.mark.parametrize("on_time, expected", [("8999.99", None), ("9000.00", "384.00")])
def test_payment_rate_near_the_threshold(hub, on_time, expected):
    """Invoices due Aug–Oct: 10,000 due 2026-09-15, paid `on_time` by its due date (rest
    late): 89.9999 % fails 90 %, 90 % passes. Order 11-20 MON-M8×1: 3 % = 384.00."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("APAY", PAY_RATE))
    k = customer_id(hub.db_url, KANGDA)
    rest = str(Decimal("10000.00") - Decimal(on_time))
    invoice(hub.db_url, k, dt.date(2026, 9, 15), "10000.00",
            paid=[(dt.date(2026, 9, 15), on_time)] + ([(dt.date(2026, 9, 20), rest)]
                                                      if Decimal(rest) else []))
    p, shown, paid = preview_then_settle(hub, k, dt.date(2026, 11, 20), [("MON-M8", 1)])
    assert shown == paid
    assert (shown[("APAY", "pay")][1] if shown else None) == (
        Decimal(expected) if expected else None)


V1 = """
  - id: vq
    clause: 第二条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, to: 40000, rate: 2%}, {from: 40000, rate: 4%}]
    cap: {amount_per_period: 3000}
    priority: 10
    stacking: stack
"""
V2 = V1.replace("第二条", "第三条").replace("rate: 4%", "rate: 6%")


@pytest.mark.parametrize("day", [dt.date(2026, 11, 10), dt.date(2026, 11, 20)])
def test_version_superseded_inside_the_month(hub, day):
    """v1 from 2026-07-01, v2 (第三条, 6 % above 40,000) from 2026-11-16. Earlier order
    10-10 MON-M8×3 (38,400, v1). Order on `day` MON-M8×1 (12,800): 51,200 ≥ 40,000.
    11-10 (v1): 4 % × 12,800 = 512; v1's cap 3,000 over 38,400×4 % + 512 = 2,048: 512.00.
    11-20 (v2): 6 % × 12,800 = 768; v2's cap room 3,000 − 1,536 (v1's orders) = 1,464:
    768.00."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("AVER", V1))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, dt.date(2026, 10, 10), [("MON-M8", 3)])
    clock_from(dt.date(2026, 11, 2))
    publish(hub.db_url, policy("AVER", V2, effective_from="2026-11-16"))
    p, shown, paid = preview_then_settle(hub, k, day, [("MON-M8", 1)])
    assert shown == paid
    version = 1 if day.day < 16 else 2
    assert shown[("AVER", "vq")][2] == version


def test_customer_rerated_earlier_in_the_month(hub):
    """仁和 (B) orders MON-M8×2 on 11-05 (25,600); re-rated to A on 11-10 (recorded that
    day); the order 11-20 MON-M8×1 (12,800). The A-only rule counts only 11-20: 12,800 <
    30,000 → 1 % = 128.00."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("ATR", TIER_REGION))
    r = customer_id(hub.db_url, RENHE)
    signed_order(hub.db_url, r, dt.date(2026, 11, 5), [("MON-M8", 2)])
    clock_from(dt.date(2026, 11, 10))
    rerate(hub, r, "A")
    p, shown, paid = preview_then_settle(hub, r, dt.date(2026, 11, 20), [("MON-M8", 1)])
    assert shown[("ATR", "east-a")][1] == Decimal("128.00")
    assert shown == paid


def rerate(hub, cid: int, tier: str) -> None:
    """The tier changed as `salesops customers set` does (an operation-log row, now)."""
    from models import Customer
    from models.db import session_scope
    from models.oplog import apply_changes
    with session_scope(hub.db_url) as s:
        apply_changes(s, s.get(Customer, cid), "audit", tier=tier)


QTY = """
  - id: qty
    clause: 第六条
    applies_to: {product_lines: [输注]}
    measure: quantity
    period: quarter
    style: marginal
    tiers: [{from: 0, to: 5, rate: 1%}, {from: 5, rate: 5%}]
    priority: 10
    stacking: stack
  - id: qty-retro
    clause: 第七条
    applies_to: {skus: [PUMP-VP5]}
    measure: quantity
    period: month
    style: retroactive
    tiers: [{from: 0, to: 3, rate: 0.5%}, {from: 3, rate: 2%}]
    priority: 9
    stacking: stack
"""


def test_quantity_tiers_lines_of_different_prices(hub):
    """10-10 PUMP-SP3×3 (units 0–3). The order 11-20: PUMP-VP5×2 (6,580) and PUMP-SP3×2
    (4,980): line 1 at units 3–5 (1 %), line 2 at 5–7 (5 %): 2×6,580×1 % + 2×4,980×5 % =
    131.60 + 498.00 = 629.60. qty-retro: 2 VP5 in November < 3: 0.5 % × 13,160 = 65.80."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("AQTY", QTY))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, dt.date(2026, 10, 10), [("PUMP-SP3", 3)])
    p, shown, paid = preview_then_settle(hub, k, dt.date(2026, 11, 20),
                                         [("PUMP-VP5", 2), ("PUMP-SP3", 2)])
    assert shown[("AQTY", "qty")][1] == Decimal("629.60")
    assert shown == paid


MIXED = """
  - id: all
    clause: 第八条
    measure: amount
    period: quarter
    style: marginal
    tiers: [{from: 0, to: 40000, rate: 1%}, {from: 40000, rate: 5%}]
    priority: 10
    stacking: stack
  - id: mon
    clause: 第九条
    applies_to: {product_lines: [监护]}
    exclude: {skus: [MON-M12]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 9
    stacking: stack
"""


def test_order_of_several_product_lines(hub):
    """10-10 MON-M8×2 (25,600). Order 11-20: MON-M8×1 12,800, PUMP-SP3×2 9,960,
    CONS-ECG10×10 680, MON-M12×1 18,600 = 42,040, at 25,600 … 67,640: 14,400 × 1 % +
    27,640 × 5 % = 144 + 1,382 = 1,526.00; mon (监护 but MON-M12): 2 % × 12,800 = 256.00.
    Before the fix: the preview said 256.00 for 第九条; November's settlement paid 840.80 =
    2 % of the whole 42,040 (the summed row of MON-M12, PUMP-SP3 and CONS-ECG10 read as SKU
    CONS-ECG10 of product line 监护: MIN(x.sku) and MIN(x.product_line) taken apart)."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("AMIX", MIXED))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, dt.date(2026, 10, 10), [("MON-M8", 2)])
    p, shown, paid = preview_then_settle(
        hub, k, dt.date(2026, 11, 20),
        [("MON-M8", 1), ("PUMP-SP3", 2), ("CONS-ECG10", 10), ("MON-M12", 1)])
    assert shown[("AMIX", "all")][1] == Decimal("1526.00")
    assert shown[("AMIX", "mon")][1] == Decimal("256.00")
    assert shown == paid


def test_same_day_marginal_order_preview_placed_as_the_settlement_places_it(hub):
    """An order of 11-20 came in at 09:12 (MON-M8×2, 25,600); the rep enters another at 15:40
    (MON-M8×1, 12,800), marginal 1 % below 30,000, 4 % above. The preview lays it after the
    day's other order: 4,400 × 1 % + 8,400 × 4 % = 380.00. Its id sorts after the other's
    (they came in in that order), so November's settlement lays it there too: 380.00, and
    the other order 256.00. (With random ids it sorted first half the time: 128.00.)"""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("AQM", QUARTER_MARGINAL))
    k = customer_id(hub.db_url, KANGDA)
    day = dt.date(2026, 11, 20)
    other = signed_order(hub.db_url, k, day, [("MON-M8", 2)],
                         order_id=new_order_id(at(day, 9, 12)))
    clock_from(day)
    p = preview_items(hub.db_url, k, [ItemIn("MON-M8", 1)], order_date=day)
    assert p.amount == Decimal("380.00")
    oid = signed_order(hub.db_url, k, day, [("MON-M8", 1)],
                       order_id=new_order_id(at(day, 15, 40)))
    clock_from(dt.date(2026, 12, 5))
    drafts = compute_month(hub.db_url, "2026-11").drafts
    assert sorted((d.order_id, d.amount) for d in drafts) == [
        (other, Decimal("256.00")), (oid, Decimal("380.00"))]


def test_order_entered_late_on_the_last_day_of_a_quarter(hub):
    """An order entered and signed 2026-12-31 23:30 Shanghai (15:30 UTC: still 12-31 in
    UTC, but the point is the Shanghai business date), a Q4 order; an earlier order of
    10-01 00:30 Shanghai (09-30 16:30 UTC) is Q4 too: MON-M8×2 (25,600) + MON-M8×2
    (25,600) = 51,200 ≥ 50,000: 5 % × 25,600 = 1,280.00, paid by December's settlement."""
    from models import Quote, set_clock
    from models.base import SHANGHAI
    from models.db import session_scope
    from sqlmodel import select
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("AQR", QUARTER_RETRO))
    k = customer_id(hub.db_url, KANGDA)

    def sign_at(oid, at):
        with session_scope(hub.db_url) as s:
            q = s.exec(select(Quote).where(Quote.order_id == oid)).one()
            q.signed_at = at
            s.add(q)

    early = signed_order(hub.db_url, k, dt.date(2026, 10, 1), [("MON-M8", 2)])
    sign_at(early, dt.datetime(2026, 10, 1, 0, 30, tzinfo=SHANGHAI))
    late = dt.datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI)
    set_clock(lambda: late)
    p = preview_items(hub.db_url, k, [ItemIn("MON-M8", 2)])
    assert p.order_date == dt.date(2026, 12, 31)
    oid = signed_order(hub.db_url, k, dt.date(2026, 12, 31), [("MON-M8", 2)])
    sign_at(oid, late)
    clock_from(dt.date(2027, 1, 5))
    drafts = [d for d in compute_month(hub.db_url, "2026-12").drafts if d.order_id == oid]
    assert p.amount == Decimal("1280.00")
    assert [(d.amount, d.rate, d.policy_version, d.clause) for d in drafts] == [
        (r.amount, r.rate, r.policy_version, r.clause) for r in p.rules]


def test_last_month_comparison_as_documented(hub):
    """October: MON-M8×2 (25,600) at 2 % (quarter below 50,000) — as of 10-31. The order of
    11-20 MON-M8×2 lifts the quarter to 51,200: 5 %. Sentence: 本次订单返利比例：5%，较上月
    提升3个百分点. Settled: October's order earns its 2 % in October (512.00)."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("AQR", QUARTER_RETRO))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, dt.date(2026, 10, 10), [("MON-M8", 2)])
    clock_from(dt.date(2026, 11, 5))
    october = compute_month(hub.db_url, "2026-10").drafts
    assert [d.rate for d in october] == [Decimal("0.02")]
    p, shown, paid = preview_then_settle(hub, k, dt.date(2026, 11, 20), [("MON-M8", 2)])
    assert p.sentence == "本次订单返利比例：5%，较上月提升3个百分点"
    assert shown == paid


def test_last_month_comparison_across_a_rerating_and_a_quarter(hub):
    """仁和 (B) in September (Q3): MON-M8×1 (12,800) earns nothing under the A-only rule;
    re-rated A on 10-01; the order 10-15 MON-M8×1 earns 1 % (12,800 < 30,000). Last
    month's rate (tier B on its date, as the settlement evaluated it): 0 % → 较上月提升1个百分点."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("ATR", TIER_REGION))
    r = customer_id(hub.db_url, RENHE)
    signed_order(hub.db_url, r, dt.date(2026, 9, 10), [("MON-M8", 1)])
    clock_from(dt.date(2026, 10, 1))
    rerate(hub, r, "A")
    p, shown, paid = preview_then_settle(hub, r, dt.date(2026, 10, 15), [("MON-M8", 1)])
    assert shown == paid
    assert p.sentence == "本次订单返利比例：1%，较上月提升1个百分点"


EXCLUDED_SKU = """
  - id: all
    clause: 第一条
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 1%}]
    priority: 1
    stacking: stack
  - id: mon
    clause: 第二条
    applies_to: {product_lines: [监护]}
    exclude: {skus: [MON-M12]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 2
    stacking: stack
"""


def test_settlement_pays_a_product_line_rule_on_an_excluded_sku_and_consumables(hub):
    """The smallest case of the several-product-lines defect. 第二条 pays 2 % on 监护 except
    MON-M12; 第一条 1 % on everything. Order 11-20: MON-M12×1 (18,600) and CONS-ECG10×10
    (680) = 19,280. 第一条: 192.80. 第二条 takes neither line: nothing. The preview says
    192.80 in all; November's settlement pays 192.80 + 2 % × 19,280 = 385.60 more (its row
    for the two lines reads as SKU CONS-ECG10 of product line 监护).
    Before the fix: the settlement paid 578.40 (第二条 385.60 on lines it excludes)."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("AEXC", EXCLUDED_SKU))
    k = customer_id(hub.db_url, KANGDA)
    p, shown, paid = preview_then_settle(hub, k, dt.date(2026, 11, 20),
                                         [("MON-M12", 1), ("CONS-ECG10", 10)])
    assert p.amount == Decimal("192.80")
    assert set(shown) == {("AEXC", "all")}
    assert shown == paid


MARGINAL_ALL = """
  - id: band
    clause: 第一条
    measure: amount
    period: month
    style: marginal
    tiers: [{from: 0, to: 2000, rate: 1%}, {from: 2000, rate: 5%}]
    priority: 1
    stacking: stack
"""


def test_marginal_shared_among_product_lines_as_documented(hub):
    """docs/rebates.md: 监护 ¥1,500 + 输注 ¥1,000 + 监护 ¥1,000 across a band boundary at
    ¥2,000, 1 % then 5 %: ¥95 on ¥3,500, 2.7143 % for both product lines (shown 2.71%)."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("AMB", MARGINAL_ALL))
    k = customer_id(hub.db_url, KANGDA)
    p, shown, paid = preview_then_settle(
        hub, k, dt.date(2026, 11, 20),
        [("MON-M8", 1, "1500.00"), ("PUMP-SP3", 1, "1000.00"), ("MON-M12", 1, "1000.00")])
    assert p.amount == Decimal("95.00")
    assert p.sentence == ("【监护】本次订单返利比例：2.71%，上月无该产品线订单；"
                          "【输注】本次订单返利比例：2.71%，上月无该产品线订单")
    assert shown == paid


V1M = """
  - id: vm
    clause: 第二条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: marginal
    tiers: [{from: 0, to: 30000, rate: 1%}, {from: 30000, rate: 4%}]
    priority: 10
    stacking: stack
"""
V2M = V1M.replace("第二条", "第三条").replace("rate: 4%", "rate: 6%")


def test_marginal_version_change_inside_the_month_sentence_and_amount(hub):
    """v1 (4 % above 30,000) to 11-15, v2 (6 %) from 11-16. 11-05 MON-M8×2 (25,600, v1);
    the order 11-20 MON-M8×1 (v2) at 25,600 … 38,400: 4,400 × 1 % + 8,400 × 6 % = 44 +
    504 = 548.00, 4.28125 % → shown 4.28%; last month none."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("AVM", V1M))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, dt.date(2026, 11, 5), [("MON-M8", 2)])
    clock_from(dt.date(2026, 11, 6))
    publish(hub.db_url, policy("AVM", V2M, effective_from="2026-11-16"))
    p, shown, paid = preview_then_settle(hub, k, dt.date(2026, 11, 20), [("MON-M8", 1)])
    assert p.amount == Decimal("548.00")
    assert p.sentence == "本次订单返利比例：4.28%，上月无该产品线订单"
    assert shown == paid


def test_customer_moved_region_earlier_in_the_month(hub):
    """康达 (A, 华东) orders MON-M8×2 on 12-03 (25,600); moved to 华南 on 12-08; the order
    12-18 MON-M8×1 is 华南's: the 华东-only rule takes only 12-03, not this order: nothing
    shown, nothing paid for it."""
    from models import Customer
    from models.db import session_scope
    from models.oplog import apply_changes
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("ATR", TIER_REGION))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, dt.date(2026, 12, 3), [("MON-M8", 2)])
    clock_from(dt.date(2026, 12, 8))
    with session_scope(hub.db_url) as s:
        apply_changes(s, s.get(Customer, k), "audit", region="华南")
    p, shown, paid = preview_then_settle(hub, k, dt.date(2026, 12, 18), [("MON-M8", 1)])
    assert shown == paid == {}
    assert any("华南" in sk.reason for sk in p.skipped)


CAP_TIE = """
  - id: ct
    clause: 第十条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 10%}]
    cap: {amount_per_period: 1280.01}
    priority: 10
    stacking: stack
"""


def test_same_day_cap_share_remainder_goes_by_the_real_order_id(hub):
    """Two orders of 11-20, MON-M8×1 each (uncapped 1,280.00 each), cap 1,280.01: 640.00
    each and the fen left to the order that came in first (its id sorts first). The preview
    of the second, entered after the first came in, says 640.00; so does the settlement."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, policy("ACT", CAP_TIE))
    k = customer_id(hub.db_url, KANGDA)
    day = dt.date(2026, 11, 20)
    first = signed_order(hub.db_url, k, day, [("MON-M8", 1)],
                         order_id=new_order_id(at(day, 23, 59, 58)))
    clock_from(day)
    p = preview_items(hub.db_url, k, [ItemIn("MON-M8", 1)], order_date=day)
    oid = signed_order(hub.db_url, k, day, [("MON-M8", 1)],
                       order_id=new_order_id(at(day, 23, 59, 59)))
    clock_from(dt.date(2026, 12, 5))
    paid = {d.order_id: d.amount for d in compute_month(hub.db_url, "2026-11").drafts}
    assert paid == {first: Decimal("640.01"), oid: Decimal("640.00")}
    assert p.amount == paid[oid]
