"""A claw-back line of an order's rebate page says what was paid before, what is due now and
what is taken back (原已返 X 元，现应返 Y 元，追回 Z 元), not the new basis × rate beside a
negative amount; a claw-back split over the reps and regions it was paid to says which part
is this line's. Money by hand in each test."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from flows.hub import current_hub
from flows.settlement import settle_month
from models import set_clock
from tests.api.test_rebate_board import bearer, login, page, visible
from tests.api.test_rebate_board_edges import paid_in_the_east_then_moved_south
from tests.board_support import POLICY, at
from tests.flows.test_settlement_claw_back_regions import POLICY as QUARTER_POLICY, move
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

D = dt.date


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None)) as c:
        yield c
    set_clock(None)


def facts_of(text: str) -> list[dict[str, str]]:
    """Per line of an order's rebate page: {label: value} of its facts."""
    out = []
    for body in re.findall(r'<li class="line" id="line-\d+">(.*?)</li>', text, re.S):
        dl = re.search(r'<dl class="facts">(.*?)</dl>', body, re.S).group(1)
        out.append({visible(k): visible(v) for k, v in
                    re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", dl, re.S)})
    return out


def test_a_claw_back_says_paid_before_due_now_and_taken_back(hub, client):
    """仁和's October order of 2 × M8 = 25,600.00 × 10.2 % paid 2,611.20; one unit comes back:
    12,800.00 × 10.2 % = 1,305.60 is due now, 1,305.60 is taken back — expected first,
    then settled in November's run."""
    october = paid_in_the_east_then_moved_south(hub, POLICY)
    said = "原已返 2,611.20 元，现应返 1,305.60 元，追回 1,305.60 元"
    login(client, hub, "mgr-east")
    [line] = facts_of(page(client, f"/rebates/orders/{october}"))[1:]  # after October's rebate
    assert line == {"政策条款": "T-BOARD 第 1 版 · 第一条", "计算期间": "2026年10月",
                    "类型": "退货冲回", "冲回": said, "金额": "-¥1,305.60"}, line
    detail = client.get(f"/rebates/orders/{october}", headers=bearer(hub, "mgr-east")).json()
    assert [(x["status"], x["paid_before"], x["due"], x["change"], x["amount"])
            for x in detail["lines"]] == [("pending", "0.00", "2611.20", "2611.20", "2611.20"),
                                          ("expected", "2611.20", "1305.60", "-1305.60",
                                           "-1305.60")]
    at(D(2026, 12, 5))
    settle_month(current_hub(), "2026-11")
    facts = facts_of(page(client, f"/rebates/orders/{october}"))
    assert [f.get("冲回") for f in facts] == [None, said]
    assert "返利基数" not in facts[1] and "比例" not in facts[1] and "实际比例" not in facts[1]
    # October's rebate still reads from its basis and rate
    assert (facts[0]["返利基数"], facts[0]["比例"], facts[0]["金额"]) == (
        "¥25,600.00", "10.2%", "¥2,611.20")


def test_a_split_claw_back_says_the_whole_and_this_lines_part(hub, client):
    """O1 (5 × M8 = 64,000.00) was paid its quarter rebate in two regions: 640.00 (1 %) under
    华东 in October, the tier difference 1,280.00 (to 3 %) under 华南 in November. 3 units come
    back: the quarter falls to 76,800.00 (1 %), O1's quarter due is 2 × 12,800.00 × 1 % =
    256.00 of the 1,920.00 paid: 1,664.00 taken back, 1,280.00 by 华南 and 384.00 by 华东."""
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
    quarter = "原已返 1,920.00 元，现应返 256.00 元，追回 1,664.00 元"
    flat = "原已返 1,280.00 元，现应返 512.00 元，追回 768.00 元"  # 64,000 × 2 % → 25,600 × 2 %
    login(client, hub, "finance-01")
    claws = [f for f in facts_of(page(client, f"/rebates/orders/{o1}"))
             if f["类型"] == "退货冲回"]
    assert sorted((f["冲回"], f.get("本行冲回"), f["金额"]) for f in claws) == sorted([
        (flat, None, "-¥768.00"),
        (quarter, "1,280.00 元（按原入账销售与大区分摊）", "-¥1,280.00"),
        (quarter, "384.00 元（按原入账销售与大区分摊）", "-¥384.00")])
    # 华东's manager sees 华东's part of it, and the whole it is part of
    login(client, hub, "mgr-east")
    claws = [f for f in facts_of(page(client, f"/rebates/orders/{o1}"))
             if f["类型"] == "退货冲回"]
    assert sorted((f["冲回"], f.get("本行冲回"), f["金额"]) for f in claws) == sorted([
        (flat, None, "-¥768.00"), (quarter, "384.00 元（按原入账销售与大区分摊）", "-¥384.00")])
