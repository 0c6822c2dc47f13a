"""An order no policy in force pays (注射泵, 输注: T-BOARD covers 监护 only) says so once a
settlement of its month, or a later one, was stored after its delivery was recorded
(`none_because` "no_rule"); before, 尚未结算 (null). An October order keyed in on 12 November
was not read by October's run of 5 November: November's run reads it. The world:
tests/board_support.py (today 2026-11-20; October settled on 5 November)."""
from __future__ import annotations

import datetime as dt

from flows.hub import current_hub
from flows.settlement import settle_month
from tests.api.test_rebate_board import bearer, board_world
from tests.board_support import at
from tests.rebate_support import signed_order

D = dt.date


def reason(client, hub, order: str) -> str | None:
    return client.get(f"/rebates/orders/{order}",
                      headers=bearer(hub, "rep-zhangwei")).json()["none_because"]


def test_no_rule_once_a_settlement_read_the_delivered_order(hub, client):
    world = board_world(hub.db_url)
    db = hub.db_url
    at(D(2026, 11, 12))  # keyed in late: October was settled on 5 November without it
    october = signed_order(db, world["kangda"], D(2026, 10, 14), [("PUMP-SP3", 2)])
    november = signed_order(db, world["kangda"], D(2026, 11, 12), [("PUMP-SP3", 1)])
    at(D(2026, 11, 20))
    assert reason(client, hub, october) is None
    assert reason(client, hub, november) is None  # November is not settled
    at(D(2026, 12, 5))
    settle_month(current_hub(), "2026-11", documents=False)  # reads both, pays neither
    assert reason(client, hub, october) == "no_rule"
    assert reason(client, hub, november) == "no_rule"
