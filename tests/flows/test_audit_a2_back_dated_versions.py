"""A version back-dated into an earlier quarter already settled (audit a2, the clerk's
supersession): the orders it now governs are settled again by the next settlement for every
customer alike. They were re-settled only for a customer whose quarter had other news (a
late return, a delivery): of two customers with the same June order, one was paid under the
new version, the other kept the old one, while publishing said neither would change."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flows.hub import current_hub
from flows.settlement import settle_month
from models import RebateLine
from models.db import session_scope
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

D = dt.date
V1 = """\
code: T-BACK-Q
name: 设备月度阶梯返利
effective_from: 2026-04-01
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


def test_a_version_back_dated_into_an_earlier_quarter_corrects_every_customer_alike(hub):
    clock_from(D(2026, 11, 20))
    publish(hub.db_url, V1)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    renhe = customer_id(hub.db_url, "浙江仁和医疗器械有限公司")
    k_june = signed_order(hub.db_url, kangda, D(2026, 6, 10), [("MON-M8", 5)])  # 64,000 × 3 %
    r_june = signed_order(hub.db_url, renhe, D(2026, 6, 12), [("MON-M8", 5)])  # 64,000 × 3 %
    for month in ("2026-06", "2026-07", "2026-08", "2026-09"):
        settle_month(current_hub(), month, documents=False)
    # a return of 康达's June order, dated in September but entered after it was settled
    return_goods(hub.db_url, k_june, 1, 1, D(2026, 9, 25))

    # from 1 June, 2 % instead of 3 %: a correction back-dated into the second quarter
    lower = V1.replace("effective_from: 2026-04-01", "effective_from: 2026-06-01").replace(
        "rate: 3%", "rate: 2%")
    said = "\n".join(w.message for w in publish(hub.db_url, lower).warnings
                     if w.field == "effective_from")
    assert "不会再结算" not in said
    assert "salesops settle --month 2026-09" in said and "2026-06-01 起的订单" in said

    settle_month(current_hub(), "2026-09", documents=False)
    with session_scope(hub.db_url) as s:
        corrected = {r.order_id: r.amount for r in s.query(RebateLine).filter(
            RebateLine.kind == "adjustment")}
    # 康达: 4 units kept, 51,200 × 2 % = 1,024 against 1,920 paid; 仁和: 64,000 × 2 % = 1,280
    assert corrected == {k_june: Decimal("-896.00"), r_june: Decimal("-640.00")}

    # published now, settled since: nothing more to correct
    settle_month(current_hub(), "2026-09", documents=False)
    with session_scope(hub.db_url) as s:
        assert s.query(RebateLine).filter(RebateLine.kind == "adjustment").count() == 2


def test_a_replay_of_a_back_dated_draft_pays_what_settling_after_publishing_pays(hub):
    """The what-if replay settles the months as the settlement after publishing would: the
    first month replayed reaches back to the draft's start, earlier quarters included."""
    from flows.rebate_replay import replay
    from models.rebates.policy import parse_policy_document

    clock_from(D(2026, 11, 20))
    publish(hub.db_url, V1)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    renhe = customer_id(hub.db_url, "浙江仁和医疗器械有限公司")
    signed_order(hub.db_url, kangda, D(2026, 6, 10), [("MON-M8", 5)])  # 64,000 × 3 %
    signed_order(hub.db_url, renhe, D(2026, 6, 12), [("MON-M8", 5)])
    signed_order(hub.db_url, renhe, D(2026, 10, 9), [("MON-M8", 4)])  # 51,200 × 3 %
    for month in ("2026-06", "2026-07", "2026-08", "2026-09"):
        settle_month(current_hub(), month, documents=False)
    lower = V1.replace("effective_from: 2026-04-01", "effective_from: 2026-06-01").replace(
        "rate: 3%", "rate: 2%")
    result = replay(hub.db_url, parse_policy_document(lower), "2026-10", "2026-10")
    # October's order 1,536 → 1,024; both June orders 1,920 → 1,280
    assert (result.total.published, result.total.draft) == (Decimal("1536.00"),
                                                            Decimal("-256.00"))

    publish(hub.db_url, lower)
    settle_month(current_hub(), "2026-10", documents=False)
    with session_scope(hub.db_url) as s:
        paid = sum(r.amount for r in s.query(RebateLine).filter(RebateLine.month == "2026-10"))
    assert paid == result.total.draft
