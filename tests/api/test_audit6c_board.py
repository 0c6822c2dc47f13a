"""Rebate board, audit round 6 (c): what a rep on his phone and a regional manager meet on the
board and an order's rebate page. The world and its money are in tests/board_support.py."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from flows.hub import current_hub
from flows.rebate_preview import preview_for_order
from models import Customer, Staff
from models.db import session_scope
from tests.api.test_rebate_board import bearer, login, page, visible
from tests.api.test_rebate_board_edges import paid_in_the_east_then_moved_south
from tests.board_support import POLICY, board_world
from tests.rebate_support import signed_order


@pytest.fixture
def world(hub):
    return board_world(hub.db_url)


def test_an_entered_orders_rebate_page_shows_its_preview_and_policy_text(hub, client, world):
    """The order page shows the preview (返利预估) with a link "返利明细与政策原文": an order not
    delivered yet has no settled or expected line, and its rebate page said only "暂无返利",
    without the policy the preview came from."""
    order = signed_order(hub.db_url, world["kangda"], dt.date(2026, 11, 20), [("MON-M8", 1)],
                         delivered_on=False)
    preview_for_order(current_hub(), order)
    login(client, hub, "rep-zhangwei")
    order_page = visible(page(client, f"/orders/{order}"))
    assert "本次订单返利比例：10.2%" in order_page and "返利明细与政策原文" in order_page

    text = visible(page(client, f"/rebates/orders/{order}"))
    assert "暂无返利：尚未结算，本月也没有预计返利" not in text
    assert "已签署，发货后才计入返利" in text
    assert "录入时返利预估" in text and "本次订单返利比例：10.2%" in text
    assert "预计返利 ¥1,305.60" in text
    assert "第一条「月度阶梯」" in text  # the rule's explanation
    assert "看板测试监护返利政策" in text and "有效期：从 2026-09-01 起至 2026-11-30" in text

    data = client.get(f"/rebates/orders/{order}", headers=bearer(hub, "rep-zhangwei")).json()
    assert data["lines"] == [] and data["none_because"] == "not_delivered"
    assert data["preview"]["amount"] == "1305.60"
    assert [(r["policy_code"], r["policy_version"]) for r in data["preview"]["rules"]] == \
        [("T-BOARD", 1)]
    assert [p["code"] for p in data["policies"]] == ["T-BOARD"]

    # the preview follows the order page's rule: another region's manager gets no page
    login(client, hub, "mgr-south")
    page(client, f"/rebates/orders/{order}", 403)


def test_an_order_booked_under_another_region_says_so_instead_of_not_yet_counted(hub, client):
    """仁和 was paid for October under 华东, then moved to 华南: 华南's manager may open the
    order (its customer is his now) but its lines stay 华东's. The page said 尚未结算，本月也没
    有预计返利 of an order settled and paid."""
    october = paid_in_the_east_then_moved_south(hub, POLICY)
    login(client, hub, "mgr-south")
    text = visible(page(client, f"/rebates/orders/{october}"))
    assert "尚未结算，本月也没有预计返利" not in text
    assert "该意向单的返利记在结算时的销售和大区名下，不在当前查看范围内" in text
    assert client.get(f"/rebates/orders/{october}", headers=bearer(hub, "mgr-south")
                      ).json()["none_because"] == "booked_elsewhere"
    login(client, hub, "mgr-east")  # where it was paid: the lines
    assert "本次 2,611.20 元" in visible(page(client, f"/rebates/orders/{october}"))


def test_a_manager_without_a_region_is_told_once_whom_to_ask(hub, client):
    """The refusal said 请联系管理员。如需调整查看权限，请联系系统管理员。 — the same advice
    twice."""
    with session_scope(hub.db_url) as s:
        s.add(Staff(id="mgr-new", name="新经理", role="sales_manager", email="new@example.com"))
    login(client, hub, "mgr-new")
    text = visible(page(client, "/rebates/board", 403))
    assert "您的账号未设置所辖大区，请联系管理员" in text
    assert text.count("管理员") == 1, text
    # a refusal without advice of its own still gets it
    login(client, hub, "rep-zhangwei")
    text = visible(page(client, "/rebates/board?rep=rep-lina", 403))
    assert "销售只能查看本人的返利。如需调整查看权限，请联系系统管理员。" in text


def test_finance_narrows_to_a_region_whose_customers_all_moved_away(hub, client, world):
    """华南's October was paid under 华南; then every 华南 customer and rep moved to a new
    region (a reorganisation). Finance asked for 华南 was told 没有名为“华南”的大区, and the
    menu no longer offered it, though its lines are still booked there."""
    with session_scope(hub.db_url) as s:
        for table in (Customer, Staff):
            for row in s.exec(select(table).where(table.region == "华南")):
                row.region = "华南一区"
    login(client, hub, "finance-01")
    text = page(client, "/rebates/board?region=华南")
    assert '<h1 id="scope">华南大区返利</h1>' in text
    assert '<option value="华南" selected>华南大区</option>' in text
    data = client.get("/rebates/board/data?region=华南", headers=bearer(hub, "finance-01")).json()
    assert {f["status"]: f["amount"] for f in data["figures"]}["pending"] == "1897.20"
    # a region nothing was ever booked to is unknown
    assert client.get("/rebates/board/data?region=火星", headers=bearer(hub, "finance-01")
                      ).status_code == 404


def test_a_managers_view_of_a_rep_says_it_is_the_part_in_his_region(hub, client, world):
    """张伟 (华东) also sold to 华南医贸 (华南) in November. His own board, titled 张伟的返利,
    expects both orders; his manager narrowing to him sees only the 华东 one, under the same
    title: the two figures differed under one name."""
    signed_order(hub.db_url, world["huanan"], dt.date(2026, 11, 10), [("MON-M8", 1)])
    own = client.get("/rebates/board/data", headers=bearer(hub, "rep-zhangwei")).json()
    east = client.get("/rebates/board/data?rep=rep-zhangwei",
                      headers=bearer(hub, "mgr-east")).json()
    expected = {d["scope"]["label"]: {f["status"]: f["amount"] for f in d["figures"]}["expected"]
                for d in (own, east)}
    assert expected == {"张伟的返利": "2611.20", "张伟在华东大区的返利": "1305.60"}
    login(client, hub, "mgr-east")
    assert '<h1 id="scope">张伟在华东大区的返利</h1>' in page(client, "/rebates/board?rep=rep-zhangwei")


def test_an_order_rows_month_says_it_is_the_settlement_month(hub, client, world):
    """A row read 下单 2026-10-11 · 返利 · 2026年10月: a bare month beside the order date,
    which a rep reads as the order's month or the rule's period, not the settlement's."""
    login(client, hub, "rep-zhangwei")
    pending = visible(page(client, "/rebates/board/orders/page?status=pending"))
    assert "下单 2026-10-10 · 返利 · 2026年10月结算" in pending
    expected = visible(page(client, "/rebates/board/orders/page?status=expected"))
    assert "下单 2026-11-03 · 返利 · 预计计入2026年11月结算" in expected
