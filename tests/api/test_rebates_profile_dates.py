"""The preview and the board's expected figures use the customer's tier and region on each
order's date, as the settlement does (docs/rebates.md, "The customer's tier and region on the
order date"): what a rep is shown at order entry is what the settlement pays the order, and
a region's expected figure holds the orders placed while the customer was in it. Computed by
hand."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from flows import rebate_board
from flows.hub import current_hub
from flows.rebate_preview import ItemIn, preview_items
from flows.settlement import compute_month, settle_month
from models.db import get_engine
from tests.api.test_rebates import token
from tests.flows.test_settlement import POLICY as SETTLEMENT_POLICY
from tests.flows.test_settlement_profile_dates import (
    KANGDA, RENHE, TIER_POLICY, change_profile, set_profile,
)
from tests.rebate_support import clock_from, customer_id, publish, signed_order

D = dt.date


def test_the_preview_counts_the_quarters_orders_with_the_tier_on_their_dates(hub, client):
    """康达 is tier B until re-rated A on 15 November. Under the A-only rules (3 % a month;
    the quarter 1 %, 2 % from 100,000) a new order of 12,800 on 25 November earns what the
    settlement of November pays it: the quarter holds the orders placed as tier A only."""
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    set_profile(db, kangda, tier="B")
    clock_from(D(2026, 10, 1))
    publish(db, TIER_POLICY)
    signed_order(db, kangda, D(2026, 10, 5), [("MON-M8", 8)])  # 102,400, tier B
    change_profile(db, kangda, D(2026, 11, 15), tier="A")
    signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 1)])  # 12,800, tier A
    clock_from(D(2026, 11, 25))
    r = client.post("/rebates/preview", headers=token(hub, "rep-zhangwei"), json={
        "customer_id": kangda, "order_date": "2026-11-25",
        "lines": [{"sku": "MON-M8", "quantity": 1}]})
    assert r.status_code == 200, r.text
    preview = r.json()
    rules = {x["rule_id"]: x for x in preview["rules"]}
    # November (tier A): 12,800 + 12,800 at 3 % → 384.00; the quarter of the tier-A orders,
    # 25,600 < 100,000 → 1 % → 128.00 (counting October's tier-B 102,400: 2 %, 256.00)
    assert {k: x["amount"] for k, x in rules.items()} == {"flat": "384.00", "quarter": "128.00"}
    assert rules["quarter"]["inputs"]["volume_before"] == "12800.00"
    assert rules["quarter"]["inputs"]["volume_after"] == "25600.00"
    assert preview["amount"] == "512.00" and preview["rate"] == "0.040000"
    # October's order earned nothing (tier B on its date): 4 % against 0 %, not 与上月持平
    # (5 % as tier A)
    assert preview["product_lines"][0]["last_month_rate"] == "0.000000"
    assert preview["sentence"] == "本次订单返利比例：4%，较上月提升4个百分点"

    # the order is entered as previewed; November's settlement pays it exactly that
    k3 = signed_order(db, kangda, D(2026, 11, 25), [("MON-M8", 1)])
    clock_from(D(2026, 12, 5))
    assert compute_month(db, "2026-10").drafts == []  # the comparison's 0 %: nothing paid
    settled = {d.rule_id: d for d in compute_month(db, "2026-11").drafts if d.order_id == k3}
    assert {k: d.amount for k, d in settled.items()} == {
        k: Decimal(x["amount"]) for k, x in rules.items()}
    assert {k: d.rate for k, d in settled.items()} == {
        k: Decimal(x["rate"]) for k, x in rules.items()}


def test_the_preview_of_an_order_dated_today_uses_todays_re_rating(hub, client):
    """A re-rating recorded on the order's day counts for the order (as the settlement
    counts it): the new order is tier A, the quarter's earlier tier-B orders stay out."""
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    set_profile(db, kangda, tier="B")
    clock_from(D(2026, 10, 1))
    publish(db, TIER_POLICY)
    signed_order(db, kangda, D(2026, 10, 5), [("MON-M8", 8)])
    change_profile(db, kangda, D(2026, 11, 25), tier="A")
    r = client.post("/rebates/preview", headers=token(hub, "rep-zhangwei"), json={
        "customer_id": kangda, "order_date": "2026-11-25",
        "lines": [{"sku": "MON-M8", "quantity": 1}]})
    assert r.status_code == 200, r.text
    # 3 % + the quarter's 12,800 at 1 % = 512.00
    assert {x["rule_id"]: x["amount"] for x in r.json()["rules"]} == {
        "flat": "384.00", "quarter": "128.00"}


def _figures(hub, client, who: str, **narrow) -> dict[str, str]:
    r = client.get("/rebates/board/data", params=narrow, headers=token(hub, who))
    assert r.status_code == 200, r.text
    return {f["status"]: f["amount"] for f in r.json()["figures"]}


def test_a_region_expects_the_orders_placed_while_the_customer_was_in_it(hub, client):
    """仁和 (华东, rep 张伟) moves to 华南 on 10 November and 李娜 takes it over. Its order of the
    5th (2 % of 12,800 = 256.00) is 华东's expected figure, the one of the 15th (2 % of
    25,600 = 512.00) 华南's; the reps' parts add up to each region's, and the regions' to
    everyone's; once November is settled, the pending lines are booked the same way."""
    db = hub.db_url
    renhe = customer_id(db, RENHE)
    clock_from(D(2026, 11, 1))
    publish(db, SETTLEMENT_POLICY)  # 2 % a month; the quarter 0 % below 100,000
    signed_order(db, renhe, D(2026, 11, 5), [("MON-M8", 1)])
    change_profile(db, renhe, D(2026, 11, 10), region="华南", owner_rep_id="rep-lina")
    signed_order(db, renhe, D(2026, 11, 15), [("MON-M8", 2)], rep_id="rep-lina")
    clock_from(D(2026, 11, 20))
    rebate_board._EXPECTED.clear()
    east, south = _figures(hub, client, "mgr-east"), _figures(hub, client, "mgr-south")
    assert (east["expected"], south["expected"]) == ("256.00", "512.00")
    assert _figures(hub, client, "finance-01")["expected"] == "768.00"
    assert _figures(hub, client, "mgr-east", rep="rep-zhangwei")["expected"] == "256.00"
    assert _figures(hub, client, "mgr-south", rep="rep-lina")["expected"] == "512.00"
    assert _figures(hub, client, "finance-01", region="华东")["expected"] == "256.00"
    east_orders = client.get("/rebates/board/orders?status=expected",
                             headers=token(hub, "mgr-east")).json()
    assert [o["order_date"] for o in east_orders["orders"]] == ["2026-11-05"]

    # settled on 5 December: the pending lines are what was expected, region by region
    clock_from(D(2026, 12, 5))
    settle_month(current_hub(), "2026-11", documents=False)
    rebate_board._EXPECTED.clear()
    assert _figures(hub, client, "mgr-east")["pending"] == "256.00"
    assert _figures(hub, client, "mgr-south")["pending"] == "512.00"


def test_a_rep_of_another_region_who_sold_before_the_move_is_part_of_the_old_regions_board(
        hub, client):
    """李娜 (华南) took an order from 仁和 while it was 华东's; 仁和 then moved to 华北. Her
    order is expected in 华东's figure, and 华东's manager may narrow his board to her part."""
    db = hub.db_url
    renhe = customer_id(db, RENHE)
    clock_from(D(2026, 11, 1))
    publish(db, SETTLEMENT_POLICY)
    signed_order(db, renhe, D(2026, 11, 5), [("MON-M8", 1)], rep_id="rep-lina")
    change_profile(db, renhe, D(2026, 11, 10), region="华北")
    clock_from(D(2026, 11, 20))
    rebate_board._EXPECTED.clear()
    assert _figures(hub, client, "mgr-east")["expected"] == "256.00"
    assert _figures(hub, client, "mgr-east", rep="rep-lina")["expected"] == "256.00"
    assert _figures(hub, client, "mgr-south", rep="rep-lina")["expected"] == "0.00"


def test_the_preview_reads_the_dated_profile_in_one_query_changed_or_not(hub):
    """The dated profile costs the preview one look-up of the customer's log entries, the
    same with a re-rating in the quarter as without: no query per order."""
    db = hub.db_url
    kangda, renhe = customer_id(db, KANGDA), customer_id(db, RENHE)
    set_profile(db, kangda, tier="B")
    clock_from(D(2026, 10, 1))
    publish(db, TIER_POLICY)
    for customer in (kangda, renhe):
        for day in (D(2026, 10, 5), D(2026, 11, 2), D(2026, 11, 20)):
            signed_order(db, customer, day, [("MON-M8", 1)])
    change_profile(db, kangda, D(2026, 11, 15), tier="A")
    clock_from(D(2026, 11, 25))
    preview_items(db, renhe, [ItemIn("MON-M8", 1)])  # the policies read (kept after)
    statements: list[str] = []

    def count(conn, cursor, statement, *_):
        statements.append(statement)

    engine = get_engine(db)
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        seen = {}
        for customer in (kangda, renhe):
            statements.clear()
            preview_items(db, customer, [ItemIn("MON-M8", 1)])
            seen[customer] = list(statements)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert [sum("operation_log" in st for st in seen[c]) for c in (kangda, renhe)] == [1, 1]
    assert len(seen[kangda]) == len(seen[renhe])
