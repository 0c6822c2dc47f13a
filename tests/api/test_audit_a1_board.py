"""Rebate board, audit a1: what a regional manager meets when reps and regions do not line up
(a rep moved to another region, a rep selling to a customer of another region). The world and
its money are in tests/board_support.py."""
from __future__ import annotations

import datetime as dt

import pytest

from models import Staff
from models.db import session_scope
from tests.api.test_rebate_board import bearer, figures, listed, login, page
from tests.board_support import board_world
from tests.rebate_support import signed_order


@pytest.fixture
def world(hub):
    return board_world(hub.db_url)


def move(db_url: str, staff_id: str, region: str, manager: str) -> None:
    with session_scope(db_url) as s:
        person = s.get(Staff, staff_id)
        person.region, person.manager_id = region, manager
        s.add(person)


def test_a_manager_narrows_to_a_rep_who_moved_away_but_has_rebates_in_his_region(
        hub, client, world):
    """赵六 sold to 申康 (华东) in October, then moved to 华南. 华东's 待复核 (¥5,222.40, 2
    orders) still holds his ¥1,305.60, but the manager's picker offered only 张伟 (¥3,916.80)
    and `?rep=rep-zhaoliu` was refused (赵六不在华东大区): the region's figure could not be
    broken down by the reps it is made of."""
    move(hub.db_url, "rep-zhaoliu", "华南", "mgr-south")
    login(client, hub, "mgr-east")
    board = page(client, "/rebates/board")
    assert figures(board)["pending"] == ("¥5,222.40", "2 张订单")
    # offered, with the region he is in now
    assert '<option value="rep-zhaoliu">赵六&quot;&lt;i&gt;（现属华南大区）</option>' in board
    narrowed = page(client, "/rebates/board?rep=rep-zhaoliu")
    assert '<h1 id="scope">赵六&quot;&lt;i&gt;在华东大区的返利</h1>' in narrowed
    assert figures(narrowed)["pending"] == ("¥1,305.60", "1 张订单")
    assert listed(page(client, "/rebates/board/orders/page?status=pending&rep=rep-zhaoliu")) \
        == [world["o3"]]
    assert page(client, f"/rebates/orders/{world['o3']}?rep=rep-zhaoliu")
    data = client.get("/rebates/board/data?rep=rep-zhaoliu", headers=bearer(hub, "mgr-east"))
    assert data.status_code == 200
    assert {f["status"]: f["amount"] for f in data.json()["figures"]}["pending"] == "1305.60"
    # someone with nothing in 华东 is still refused, and named no differently from nobody
    for query, why in (("rep=rep-lina", "李娜不在华东大区"), ("rep=nobody", "nobody不在华东大区")):
        assert why in page(client, f"/rebates/board?{query}", 403)
    # 华南's manager sees his new rep, with none of his 华东 rebates
    login(client, hub, "mgr-south")
    south = page(client, "/rebates/board?rep=rep-zhaoliu")
    assert figures(south)["pending"] == ("¥0.00", "0 张订单")


def test_a_manager_narrows_to_a_rep_of_another_region_selling_to_his_customer(
        hub, client, world):
    """张伟 (华东) sold to 华南医贸 (华南) in November: 华南's expected figure holds the order,
    and its manager can see whose it is."""
    order = signed_order(hub.db_url, world["huanan"], dt.date(2026, 11, 10), [("MON-M8", 1)])
    login(client, hub, "mgr-south")
    board = page(client, "/rebates/board")
    assert figures(board)["expected"] == ("¥1,305.60", "1 张订单")
    assert '<option value="rep-zhangwei">张伟（现属华东大区）</option>' in board
    narrowed = page(client, "/rebates/board?rep=rep-zhangwei")
    assert '<h1 id="scope">张伟在华南大区的返利</h1>' in narrowed
    assert figures(narrowed)["expected"] == ("¥1,305.60", "1 张订单")
    assert listed(page(client, "/rebates/board/orders/page?status=expected&rep=rep-zhangwei")) \
        == [order]
    # his 华东 rebates stay out of it
    assert figures(narrowed)["pending"] == ("¥0.00", "0 张订单")
