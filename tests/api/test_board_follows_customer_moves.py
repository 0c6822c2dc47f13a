"""The board's 本月预计 follows a customer re-rated or moved to another region or owner at
once, whichever process made the change: the figures a process reuses for up to five minutes
(flows.rebate_board._EXPECTED) are stamped by the latest line and policy, which such a change
leaves as they are, and by the customers' entries in the operation log, which it adds to
(PATCH /customers/{id}, `salesops customers set`, an import that updates files, or any other
code that changes a customer's file through the log)."""
from __future__ import annotations

import datetime as dt

from flows.customer_import import import_customers
from models import Customer
from models.db import session_scope
from models.oplog import apply_changes
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


def test_a_change_no_hook_of_this_process_knows_of_is_seen_by_the_boards_at_once(hub, client):
    """The change as another process would make it (the CLI beside the server): a customer's
    file changed through the log, nothing else in this process told."""
    renhe = renhe_orders_today(hub, client)
    with session_scope(hub.db_url) as s:
        apply_changes(s, s.get(Customer, renhe), "ops-01", region="华南")
    assert _figures(hub, client, "mgr-east")["expected"] == "0.00"
    assert _figures(hub, client, "mgr-south")["expected"] == "256.00"
