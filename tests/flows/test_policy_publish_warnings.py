"""What publishing warns a clerk of (round 13): a version back-dated into months already
settled (the settlements are not recomputed by themselves: the re-run it names corrects them,
orders of earlier quarters included), a version left with no order dates, a capped rule
changed inside its period (two caps), and an exclusive rule whose first tier starts above 0."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flows.hub import current_hub
from flows.settlement import settle_month
from models import RebateLine
from models.db import session_scope
from tests.rebate_support import clock_from, customer_id, publish, signed_order

D = dt.date
V1 = """\
code: T-BACK
name: 设备月度阶梯返利
effective_from: 2026-07-01
rules:
  - id: month-tier
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, to: 50000, rate: 1%}, {from: 50000, rate: 3%}]
    priority: 1
    stacking: stack
"""


def warnings_of(done) -> str:
    return "\n".join(w.message for w in done.warnings if w.field == "effective_from")


def test_a_version_back_dated_into_settled_months_says_what_to_re_run(hub):
    clock_from(D(2026, 11, 20))
    assert warnings_of(publish(hub.db_url, V1)) == ""  # nothing settled yet
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    june_order = signed_order(hub.db_url, kangda, D(2026, 6, 10), [("MON-M8", 5)])  # 64,000
    august = signed_order(hub.db_url, kangda, D(2026, 8, 20), [("MON-M8", 5)])  # 64,000 × 3 %
    for month in ("2026-06", "2026-07", "2026-08", "2026-09"):
        settle_month(current_hub(), month, documents=False)

    # from 1 August, 2 % instead of 3 %: August is inside the quarter of the latest settled
    # month (September), so re-running September corrects it
    lower = V1.replace("effective_from: 2026-07-01", "effective_from: 2026-08-01").replace(
        "rate: 3%", "rate: 2%")
    said = warnings_of(publish(hub.db_url, lower))
    assert "已结算至 2026-09" in said and "salesops settle --month 2026-09" in said
    assert "不会再结算" not in said
    settle_month(current_hub(), "2026-09", documents=False)
    with session_scope(hub.db_url) as s:
        corrected = s.query(RebateLine).filter(RebateLine.kind == "adjustment").all()
    assert [(r.order_id, r.amount) for r in corrected] == [(august, Decimal("-640.00"))]

    # from 1 June: June is in an earlier quarter, which the re-run reaches all the same (the
    # version is news for the orders it governs now: audit a2, every customer's alike)
    june = lower.replace("effective_from: 2026-08-01", "effective_from: 2026-06-01").replace(
        "rate: 2%", "rate: 2.5%")
    said = warnings_of(publish(hub.db_url, june))
    assert "不会再结算" not in said
    assert "2026-06-01 起的订单" in said and "salesops settle --month 2026-09" in said
    settle_month(current_hub(), "2026-09", documents=False)
    with session_scope(hub.db_url) as s:
        corrected = s.query(RebateLine).filter(RebateLine.kind == "adjustment").all()
    assert sorted((r.order_id, r.amount) for r in corrected) == sorted([
        (august, Decimal("-640.00")), (august, Decimal("320.00")),  # 2 %, then 2.5 %
        (june_order, Decimal("1600.00"))])  # no policy governed June before: 64,000 × 2.5 %

    # after the latest settled month: nothing to say
    later = june.replace("effective_from: 2026-06-01", "effective_from: 2026-10-01")
    assert warnings_of(publish(hub.db_url, later)) == ""


def test_a_version_that_leaves_an_earlier_one_no_dates_is_warned(hub):
    publish(hub.db_url, V1)
    raised = V1.replace("effective_from: 2026-07-01", "effective_from: 2026-08-16").replace(
        "rate: 3%", "rate: 4%")
    assert warnings_of(publish(hub.db_url, raised)) == ""
    # a correction copied from version 1, dated the 1st: version 2 would never apply
    copied = V1.replace("effective_from: 2026-07-01", "effective_from: 2026-08-01").replace(
        "rate: 1%", "rate: 1.5%")
    said = warnings_of(publish(hub.db_url, copied))
    assert "T-BACK 第 2 版（目前适用于 2026-08-16 起的订单）将不再适用于任何订单" in said
    assert "第 1 版" not in said  # July is still version 1's


CAPPED = """\
code: T-CAP
name: 新品季度返利
effective_from: 2027-01-01
rules:
  - id: q-amount
    applies_to: {skus: [MON-M12]}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 100000, to: 300000, rate: 3%}, {from: 300000, rate: 5%}]
    cap: {amount_per_period: 50000}
    priority: 10
    stacking: stack
"""


def test_a_capped_rule_changed_inside_its_period_keeps_one_cap_for_the_period(hub):
    """“单客户每季度封顶5万元” in a version 2 from 16 February: the quarter still pays at most
    50,000 (the engine counts version 1's orders against version 2's cap), so publishing has
    nothing to warn about."""
    publish(hub.db_url, CAPPED)
    raised = CAPPED.replace("effective_from: 2027-01-01", "effective_from: 2027-02-16").replace(
        "rate: 5%", "rate: 6%")
    done = publish(hub.db_url, raised)
    assert done.version == 2
    assert not [w for w in done.warnings if w.field == "rules[0].cap"]


def test_an_exclusive_rule_with_a_threshold_warns_that_it_takes_lines_below_it(hub):
    """“满10万返5%，不与其他政策叠加” written as an exclusive rule whose first tier starts at
    100,000: below it the lines it takes earn nothing, not the base rebate."""
    exclusive = CAPPED.replace("stacking: stack", "stacking: exclusive")
    said = [w.message for w in publish(hub.db_url, exclusive).warnings
            if w.field == "rules[0].tiers[0].from"]
    assert len(said) == 1 and "互斥条款的首档起于 100000 元" in said[0]
    assert "不再享受其他可叠加的条款" in said[0]
    from_zero = exclusive.replace("code: T-CAP", "code: T-CAP0").replace(
        "[{from: 100000, to: 300000, rate: 3%}", "[{from: 0, to: 100000, rate: 1%}, "
                                                 "{from: 100000, to: 300000, rate: 3%}")
    assert not [w for w in publish(hub.db_url, from_zero).warnings
                if w.field.startswith("rules[0].tiers")]
