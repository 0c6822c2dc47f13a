"""News about older quarters that the settlement must pick up even when it did not happen in
the month being settled: an older order signed in a month nobody settled (its run failed and
the next month went ahead), and a delivery whose date was corrected past the month."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlmodel import select

from flows.hub import current_hub
from flows.settlement import settle_month
from models import Delivery, RebateLine, utcnow
from models.db import session_scope
from tests.rebate_support import clock_from, customer_id, publish, signed_order

D = dt.date
POLICY = """
code: P-LATE
name: 迟到消息测试
effective_from: 2026-07-01
rules:
  - {id: flat, measure: amount, period: month, style: retroactive,
     tiers: [{from: 0, rate: 2%}], priority: 1, stacking: stack}
"""


def paid(db_url: str, order_id: str) -> Decimal:
    with session_scope(db_url) as s:
        return sum((Decimal(str(ln.amount)) for ln in s.exec(
            select(RebateLine).where(RebateLine.order_id == order_id))), Decimal("0.00"))


def test_an_older_order_signed_in_a_month_nobody_settled_is_paid_by_the_next_run(hub):
    """Dated and delivered in August, signed on 13 September; August is settled on 5
    September, September's run never happens, October is settled on 5 November: the
    signature of September is news the October run must read (5 × 12,800 × 2 % = 1,280)."""
    clock_from(D(2026, 8, 1))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    order = signed_order(hub.db_url, kangda, D(2026, 8, 24), [("MON-M8", 5)],
                         signed_on=D(2026, 9, 13), delivered_on=D(2026, 8, 26))
    clock_from(D(2026, 9, 5))
    settle_month(current_hub(), "2026-08", documents=False)
    assert paid(hub.db_url, order) == 0  # not signed yet on 31 August
    clock_from(D(2026, 11, 5))
    settle_month(current_hub(), "2026-10", documents=False)
    assert paid(hub.db_url, order) == Decimal("1280.00")


def test_a_delivery_corrected_past_the_month_is_clawed_back_in_it(hub):
    """A September order paid on 5 October for its delivery of 2 September; on 20 October the
    ERP corrects the delivery to 11 November: by 31 October nothing was delivered, so the
    October run takes the 1,280 back (November's pays it again)."""
    clock_from(D(2026, 9, 1))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    order = signed_order(hub.db_url, kangda, D(2026, 9, 2), [("MON-M8", 5)])
    clock_from(D(2026, 10, 5))
    settle_month(current_hub(), "2026-09", documents=False)
    assert paid(hub.db_url, order) == Decimal("1280.00")
    clock_from(D(2026, 10, 20))
    with session_scope(hub.db_url) as s:
        delivery = s.exec(select(Delivery).where(Delivery.order_id == order)).one()
        delivery.delivered_on, delivery.recorded_at = D(2026, 11, 11), utcnow()
    clock_from(D(2026, 11, 5))
    settle_month(current_hub(), "2026-10", documents=False)
    assert paid(hub.db_url, order) == 0
    clock_from(D(2026, 12, 5))
    settle_month(current_hub(), "2026-11", documents=False)
    assert paid(hub.db_url, order) == Decimal("1280.00")
