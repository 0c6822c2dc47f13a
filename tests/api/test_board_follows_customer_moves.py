"""The board's 本月预计 follows a customer re-rated or moved to another region or owner at
once: the figures a process reuses for up to five minutes (flows.rebate_board._EXPECTED) are
stamped by the latest line and policy, which such a change leaves as they are, so the change
(PATCH /customers/{id}, `salesops customers set`, an import that updates files) drops them."""
from __future__ import annotations

import datetime as dt

from flows.customer_import import import_customers
from tests.api.test_rebate_board import bearer
from tests.api.test_rebates_profile_dates import _figures
from tests.flows.test_customer_import import write_rows
from tests.flows.test_settlement import POLICY as SETTLEMENT_POLICY
from tests.flows.test_voucher_numbers import RENHE
from tests.rebate_support import clock_from, customer_id, publish, signed_order


def renhe_orders_today(hub, client) -> int:
    """仁和 (华东) orders on 20 November: 2 % of 12,800 expected in 华东's board, none in
    华南's; both figures are kept for reuse. Returns 仁和's id."""
    renhe = customer_id(hub.db_url, RENHE)
    clock_from(dt.date(2026, 11, 20))
    publish(hub.db_url, SETTLEMENT_POLICY)  # 2 % a month
    signed_order(hub.db_url, renhe, dt.date(2026, 11, 20), [("MON-M8", 1)])
    assert _figures(hub, client, "mgr-east")["expected"] == "256.00"
    assert _figures(hub, client, "mgr-south")["expected"] == "0.00"
    return renhe


def test_a_customer_moved_to_another_region_leaves_the_old_regions_expected_at_once(
        hub, client):
    """Sales-ops moves 仁和 to 华南 the day it ordered (a move counts for the orders of its
    day): 华东's board drops the order and 华南's counts it at the next look, not up to five
    minutes later."""
    renhe = renhe_orders_today(hub, client)
    r = client.patch(f"/customers/{renhe}", json={"region": "华南"},
                     headers=bearer(hub, "ops-01"))
    assert r.status_code == 200, r.text
    assert _figures(hub, client, "mgr-east")["expected"] == "0.00"
    assert _figures(hub, client, "mgr-south")["expected"] == "256.00"


def test_an_import_moving_a_customer_is_seen_by_the_boards_at_once(hub, client, tmp_path):
    renhe_orders_today(hub, client)
    moves = write_rows(tmp_path / "moves.csv", [[RENHE, "华南"]], header=["legal_name", "region"])
    import_customers(hub.db_url, moves, actor="ops-01", review_out=tmp_path / "r.xlsx",
                     update=("region",))
    assert _figures(hub, client, "mgr-east")["expected"] == "0.00"
    assert _figures(hub, client, "mgr-south")["expected"] == "256.00"
