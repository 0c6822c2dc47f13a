"""Audit: the rebate board's figures against their drill-downs, through the HTTP API, for a
rep, a regional manager and finance. Each figure (amount and order count) must be the sum of
the rows its drill-down lists over all pages (no row lost or repeated), each row the sum of its
order page's lines of that status, the month table the figures; the order page must name the
policy version that paid each line and the customer it was booked to; bad parameters a 4xx
with a machine-readable body. The worlds: tests/board_support.py and the claw-back worlds of
the board's edge tests."""
from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from flows import rebate_board
from flows.customer_import import merge_files
from flows.hub import current_hub
from flows.settlement import confirm_settlement, settle_month, statement_number
from models import Staff, set_clock
from models.db import session_scope
from tests.api.test_board_expected_matches_settlement import hand_over, quarter_base, settle
from tests.api.test_rebate_board import bearer, world  # noqa: F401 - a fixture
from tests.board_support import POLICY, at
from tests.flows.test_settlement_claw_back_regions import POLICY as QUARTER_POLICY, move
from tests.rebate_support import (
    clock_from, customer_id, publish, return_goods, signed_order,
)

D = dt.date
ROLES = ("rep-zhangwei", "mgr-east", "finance-01")


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None),
                    raise_server_exceptions=False) as c:
        yield c
    set_clock(None)


def get(client, hub, who: str, url: str) -> dict:
    r = client.get(url, headers=bearer(hub, who))
    assert r.status_code == 200, (who, url, r.status_code, r.text)
    return r.json()


def all_rows(client, hub, who: str, query: str, limit: int) -> tuple[dict, list[dict]]:
    """The first page's head, and every row of the drill-down read `limit` at a time."""
    rows, offset, head = [], 0, None
    while True:
        page = get(client, hub, who, f"/rebates/board/orders?{query}&limit={limit}"
                                     f"&offset={offset}")
        head = head or page
        assert (page["count"], page["amount"]) == (head["count"], head["amount"]), query
        rows += page["orders"]
        if len(page["orders"]) < limit:
            return head, rows
        offset += limit


def line_sum(detail: dict, status: str, since: str | None = None) -> Decimal:
    return sum((Decimal(x["amount"]) for x in detail["lines"] if x["status"] == status
                and (since is None or x["month"] >= since)), Decimal("0.00"))


def inconsistencies(client, hub, who: str, narrow: str = "", fresh: bool = False) -> list[str]:
    """Every way the board of `who` (narrowed by `narrow`, e.g. "rep=…") does not add up.
    `fresh`: each order's page read as another server process (or the same one after the
    figure's 5 minutes) reads it, without the scope's reused expected figure."""
    found: list[str] = []
    q = f"&{narrow}" if narrow else ""
    data = get(client, hub, who, f"/rebates/board/data?{narrow}")
    year = f"{data['today'][:4]}-01"
    figures = {f["status"]: (Decimal(f["amount"]), f["orders"]) for f in data["figures"]}
    # the month table against the figures
    for status, since in (("confirmed", year), ("pending", "")):
        months = sum((Decimal(m[status]) for m in data["months"] if m["month"] >= since),
                     Decimal("0.00"))
        if months != figures[status][0]:
            found.append(f"{who}{q}: months' {status} {months} != figure {figures[status][0]}")
        for m in data["months"]:
            if Decimal(m[status]) == 0:
                continue
            head, rows = all_rows(client, hub, who, f"status={status}&month={m['month']}{q}", 2)
            if Decimal(head["amount"]) != Decimal(m[status]):
                found.append(f"{who}{q}: {m['month']} {status} {m[status]} != drill-down "
                             f"{head['amount']}")
    for status, (amount, orders) in figures.items():
        for limit in (1, 2, 1000):
            head, rows = all_rows(client, hub, who, f"status={status}{q}", limit)
            ids = [r["order_id"] for r in rows]
            if (Decimal(head["amount"]), head["count"]) != (amount, orders):
                found.append(f"{who}{q}: {status} figure {amount}/{orders} != drill-down head "
                             f"{head['amount']}/{head['count']}")
            repeated = [o for o, n in Counter(ids).items() if n > 1]
            if repeated or len(ids) != head["count"]:
                found.append(f"{who}{q}: {status} limit={limit}: {len(ids)} rows for count "
                             f"{head['count']}, repeated {repeated}")
            total = sum((Decimal(r["amount"]) for r in rows), Decimal("0.00"))
            if total != amount:
                found.append(f"{who}{q}: {status} limit={limit}: rows sum {total} != {amount}")
        for row in rows:
            if fresh:
                rebate_board._EXPECTED.clear()
            detail = get(client, hub, who, f"/rebates/orders/{row['order_id']}?{narrow}")
            lines = line_sum(detail, status, year if status == "confirmed" else None)
            if lines != Decimal(row["amount"]):
                found.append(f"{who}{q}: {status} row {row['order_id']} {row['amount']} != "
                             f"its page's {status} lines {lines}")
    return found


# --- the board's own world ---------------------------------------------------------------------

def test_the_boards_world_adds_up_for_every_role(hub, client, world):
    found = [x for who in ROLES for x in inconsistencies(client, hub, who)]
    found += inconsistencies(client, hub, "mgr-east", "rep=rep-zhangwei")
    found += inconsistencies(client, hub, "finance-01", "region=华东")
    assert found == []


def test_a_late_revision_confirmed_moves_from_pending_to_confirmed_totals_unchanged(
        hub, client, world):
    """October's revision 1 (3,916.80 + 1,897.20 + 1,305.60) is pending; a late order of
    10 October (康达, 1 × M8: the month's volume 51,200 crosses 50,000, all of it at 10 %:
    5,120.00 due, 3,916.80 paid → +1,203.20) makes revision 2. Finance confirms r1, then
    r2: each moves from 待复核 to 已确认, the two together unchanged, every drill-down
    adding up on the way."""
    signed_order(hub.db_url, world["kangda"], D(2026, 10, 10), [("MON-M8", 1)])
    at(D(2026, 11, 20))
    settle_month(current_hub(), "2026-10")
    at(D(2026, 11, 20))
    with session_scope(hub.db_url) as s:
        finance = s.get(Staff, "finance-01")

    def totals() -> dict[str, Decimal]:
        data = get(client, hub, "finance-01", "/rebates/board/data")
        return {f["status"]: Decimal(f["amount"]) for f in data["figures"]}

    before = totals()
    found = [x for who in ROLES for x in inconsistencies(client, hub, who)]
    for revision in (1, 2):
        confirm_settlement(hub.db_url, "2026-10", revision, finance)
        now = totals()
        assert now["confirmed"] + now["pending"] == before["confirmed"] + before["pending"]
        found += [x for who in ROLES for x in inconsistencies(client, hub, who)]
    assert now["pending"] == 0
    assert found == []


def test_after_a_customer_merge_the_drill_down_names_the_customer_booked(hub, client, world):
    """申康's October order (赵六, 1,305.60, pending) is on 申康's statement of October r1. Then
    申康 is merged into 康达: the line's statement, voucher and booked customer stay 申康's
    (docs/rebates.md), so the pending figure's row and the order's settled line must still
    name 申康 as the customer the money was booked to; the figures still add up."""
    merge_files(hub.db_url, world["kangda"], [world["shenkang"]], "ops-01")
    found = [x for who in ROLES for x in inconsistencies(client, hub, who)]
    assert found == []
    # the order's page books the line to 申康's statement (right) ...
    lines = get(client, hub, "finance-01", f"/rebates/orders/{world['o3']}")["lines"]
    [line] = [x for x in lines if x["status"] == "pending"]
    assert line["statement_no"] == statement_number("2026-10", 1, world["shenkang"], "draft")
    # ... the figure's row names the file it was merged into
    rows = get(client, hub, "finance-01", "/rebates/board/orders?status=pending")["orders"]
    [row] = [r for r in rows if r["order_id"] == world["o3"]]
    assert (row["customer_id"], row["customer"]) == (world["shenkang"],
                                                     "上海申康<医疗>&科技有限公司")


def test_a_claw_back_split_over_two_regions_nets_on_each_board(hub, client):
    """仁和's O1 (5 × M8) was paid 640.00 under 华东 in October and its quarter tier difference
    1,280.00 under 华南 in November (仁和 moved); 3 units come back in December: 768.00
    (monthly) + 1,664.00 (quarter: 1,280.00 from 华南, 384.00 from 华东) taken back. Every
    board adds up, each manager's with his region's part only."""
    clock_from(D(2027, 1, 5))
    publish(hub.db_url, QUARTER_POLICY)
    renhe = customer_id(hub.db_url, "浙江仁和医疗器械有限公司")
    o1 = signed_order(hub.db_url, renhe, D(2026, 10, 10), [("MON-M8", 5)])
    settle_month(current_hub(), "2026-10", documents=False)
    move(hub.db_url, renhe, "华南")
    signed_order(hub.db_url, renhe, D(2026, 11, 5), [("MON-M8", 4)])
    settle_month(current_hub(), "2026-11", documents=False)
    return_goods(hub.db_url, o1, 1, 3, D(2026, 12, 10))
    settle_month(current_hub(), "2026-12", documents=False)
    at(D(2027, 1, 6))
    found = [x for who in ("rep-zhangwei", "mgr-east", "mgr-south", "finance-01")
             for x in inconsistencies(client, hub, who)]
    assert found == []
    east = [x["amount"] for x in get(client, hub, "mgr-east", f"/rebates/orders/{o1}")["lines"]
            if x["month"] == "2026-12"]
    south = [x["amount"] for x in get(client, hub, "mgr-south", f"/rebates/orders/{o1}")["lines"]
             if x["month"] == "2026-12"]
    assert sorted(east) == ["-384.00", "-768.00"] and south == ["-1280.00"], (east, south)


def test_a_claw_back_split_over_two_reps_shows_each_his_part(hub, client):
    """康达's October order (张伟, 5 × M8 = 64,000: 1,280.00 at 2 %) is handed over to 李娜 on
    10 November; 张伟's November order (3 × M8) lifts the quarter over 100,000 (3 %): the
    October order's tier difference (640.00) is paid to 李娜. In December 2 units come back:
    the claw-back is split over 李娜 and 张伟. Each rep's board and the managers' add up."""
    db = hub.db_url
    kangda, oct_ = quarter_base(db)
    hand_over(db, oct_)
    signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 3)])
    settle(db, "2026-11")
    return_goods(db, oct_, 1, 2, D(2026, 12, 10))
    settle(db, "2026-12")
    at(D(2027, 1, 6))
    found = [x for who in ("rep-zhangwei", "rep-lina", "mgr-east", "mgr-south", "finance-01")
             for x in inconsistencies(client, hub, who)]
    found += inconsistencies(client, hub, "mgr-east", "rep=rep-lina")
    assert found == []
    mine = {who: sum(Decimal(x["amount"]) for x in get(
        client, hub, who, f"/rebates/orders/{oct_}")["lines"] if x["month"] == "2026-12")
        for who in ("rep-zhangwei", "rep-lina", "finance-01")}
    assert mine["rep-zhangwei"] + mine["rep-lina"] == mine["finance-01"] < 0, mine
    assert mine["rep-zhangwei"] < 0 and mine["rep-lina"] < 0, mine


# --- the expected figure, read by another process -----------------------------------------------

def test_a_split_claw_back_still_expected_adds_up_in_every_process(hub, client):
    """As above, on 20 December before December is settled: the claw-backs are expected, split
    over 李娜 and 张伟. An order's page read without the scope's reused figure must list the
    same expected lines as the figure's row."""
    db = hub.db_url
    kangda, oct_ = quarter_base(db)
    hand_over(db, oct_)
    signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 3)])
    settle(db, "2026-11")
    at(D(2026, 12, 20))
    return_goods(db, oct_, 1, 2, D(2026, 12, 10))
    found = [x for who in ("rep-zhangwei", "rep-lina", "mgr-east", "finance-01")
             for fresh in (False, True) for x in inconsistencies(client, hub, who, fresh=fresh)]
    assert found == []


def test_in_the_first_days_of_a_month_every_process_adds_up(hub, client):
    """3 December, November not settled: 康达's October order (张伟, paid 1,280.00) handed over
    to 李娜, a November order lifting the quarter, a December return of 2 units."""
    db = hub.db_url
    kangda, oct_ = quarter_base(db)
    hand_over(db, oct_)
    signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 3)])
    at(D(2026, 12, 2))
    return_goods(db, oct_, 1, 2, D(2026, 12, 2))
    at(D(2026, 12, 3))
    found = [x for who in ("rep-zhangwei", "rep-lina", "mgr-east", "finance-01")
             for fresh in (False, True) for x in inconsistencies(client, hub, who, fresh=fresh)]
    assert found == []


def test_after_a_merge_the_expected_order_page_matches_its_row_in_every_process(
        hub, client, world):
    """康达's November order is expected (1,305.60); 申康 (with its pending October order) is
    merged into 康达 on 20 November."""
    merge_files(hub.db_url, world["kangda"], [world["shenkang"]], "ops-01")
    found = [x for who in ROLES for fresh in (False, True)
             for x in inconsistencies(client, hub, who, fresh=fresh)]
    assert found == []


# --- paging: ties in the sort order ---------------------------------------------------------------

def test_orders_of_one_day_are_paged_without_loss_or_repeat(hub, client):
    """Seven orders of 张伟 on 10 October (settled, pending) and five on 3 November (expected),
    read one and two at a time."""
    at(D(2026, 10, 1))
    publish(hub.db_url, POLICY)
    customers = [customer_id(hub.db_url, n) for n in (
        "江苏康达医疗设备有限公司", "浙江仁和医疗器械有限公司", "上海申康医疗科技有限公司")]
    for i in range(7):
        signed_order(hub.db_url, customers[i % 3], D(2026, 10, 10), [("MON-M8", 1 + i % 2)])
    at(D(2026, 11, 5))
    settle_month(current_hub(), "2026-10", documents=False)
    for i in range(5):
        signed_order(hub.db_url, customers[i % 3], D(2026, 11, 3), [("MON-M8", 1)])
    at(D(2026, 11, 20))
    found = [x for who in ROLES for x in inconsistencies(client, hub, who)]
    assert found == []


# --- the policy version that paid each line -----------------------------------------------------

def test_each_line_names_the_version_that_paid_it_with_its_text_and_dates(hub, client, world):
    """On 20 November a correction of T-BOARD back-dated to 1 October (version 3, 12 % below
    50,000, its own text) is published, and October settled again: r2 pays the difference
    (康达's O1: 38,400 × 1.8 % = 691.20) under version 3, r1's line stays version 1's. The
    order's page lists both versions, each with its own text and the date it begins."""
    text_v3 = "第一条（更正）月度阶梯：5万元以下按12%返利。"
    v3 = (POLICY.replace("effective_from: 2026-09-01", "effective_from: 2026-10-01")
           .replace("rate: 10.2%", "rate: 12%")
           .replace(POLICY.split("text: |\n")[1].split("rules:")[0], f"  {text_v3}\n"))
    publish(hub.db_url, v3)
    at(D(2026, 11, 20))
    settle_month(current_hub(), "2026-10", documents=False)
    at(D(2026, 11, 20))
    found = [x for who in ROLES for x in inconsistencies(client, hub, who)]
    detail = get(client, hub, "rep-zhangwei", f"/rebates/orders/{world['o1']}")
    paid = [(x["revision"], x["policy_version"], x["amount"]) for x in detail["lines"]]
    policies = {p["version"]: p for p in detail["policies"]}
    assert paid == [(1, 1, "3916.80"), (2, 3, "691.20")], paid
    assert policies[3]["text"].strip() == text_v3 and policies[3]["effective_from"] == \
        "2026-10-01"
    assert policies[1]["effective_from"] == "2026-09-01"
    assert "第二条 <b>本政策</b>" in policies[1]["text"]
    nov = get(client, hub, "rep-zhangwei", f"/rebates/orders/{world['nov']}")
    assert {x["policy_version"] for x in nov["lines"]} == {3}
    assert [p["version"] for p in nov["policies"]] == [3]
    assert found == []


# --- bad parameters ------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ROLES)
def test_bad_drill_down_parameters_are_a_4xx_with_a_machine_readable_body(hub, client, world,
                                                                          who):
    long = "x" * 5000
    for url in ("/rebates/board/orders", "/rebates/board/orders?status=PENDING",
                "/rebates/board/orders?status=pending&month=2026-13",
                "/rebates/board/orders?status=pending&month=%EF%BC%92026-10",
                "/rebates/board/orders?status=pending&month=2026-10%0A",
                "/rebates/board/orders?status=pending&limit=0",
                "/rebates/board/orders?status=pending&limit=1001",
                "/rebates/board/orders?status=pending&limit=1.5",
                "/rebates/board/orders?status=pending&limit=",
                "/rebates/board/orders?status=pending&offset=-1",
                "/rebates/board/orders?status=pending&offset=0x10",
                "/rebates/board/orders?status=pending&offset=9223372036854775807",
                "/rebates/board/orders?status=expected&month=2026-11",
                f"/rebates/board/orders?status=pending&rep={long}",
                f"/rebates/board/data?region={long}", "/rebates/board/data?region=%FF",
                f"/rebates/orders/{long}", "/rebates/orders/%FF%FE", "/rebates/orders/%2E%2E"):
        r = client.get(url, headers=bearer(hub, who))
        assert 400 <= r.status_code < 500, (who, url, r.status_code, r.text[:200])
        assert set(r.json()["error"]) >= {"code", "message"}, (who, url, r.text[:200])
    # past the last row: the figure's head, no rows
    page = get(client, hub, who, "/rebates/board/orders?status=pending&offset=2147483647")
    assert page["orders"] == [] and page["count"] >= 1
