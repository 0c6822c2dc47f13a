"""Audit: the rebate board as a rep, a regional manager and finance use it on a phone — a
figure, its orders, one order's page — where the levels must tell the same story. The
world and its money: tests/board_support.py (policy T-BOARD, 监护 only, 10.2 % a month
below 50,000; today 2026-11-20), and a year-end world below."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from flows.hub import current_hub
from flows.settlement import confirm_settlement, settle_month
from models import Staff
from models.db import session_scope
from tests.api.test_rebate_board import HTML, bearer, board_world, login, page, visible
from tests.board_support import at
from tests.rebate_support import customer_id, publish, return_goods, signed_order

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"

# 2 % a month on 监护, from 1 November 2026, open-ended: one rate across the year's end
YEAR_END_POLICY = """
code: T-YEAREND
name: 年末监护返利政策
effective_from: 2026-11-01
text: 第一条 当月监护产品线含税销售额按2%返利。
rules:
  - id: month-flat
    name: 月度返利
    clause: 第一条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers:
      - {from: 0, rate: 2%}
    priority: 10
    stacking: stack
"""


@pytest.fixture
def world(hub):
    return board_world(hub.db_url)


def confirm(db_url: str, month: str, revision: int = 1) -> None:
    with session_scope(db_url) as s:
        finance = s.get(Staff, "finance-01")
    confirm_settlement(db_url, month, revision, finance)


def money_of(text: str, ident: str) -> str:
    found = re.search(rf'id="{ident}"[^>]*>(?:<[^>]+>)*([^<]*)<', text)
    return found.group(1) if found else ""


def test_a_confirmed_rows_order_page_shows_the_same_confirmed_amount_after_new_year(
        hub, client):
    """康达 buys 5 × M8 (64,000) on 10 December 2026: 1,280.00, settled on 5 January and
    confirmed. 2 units come back on 15 January 2027: January's settlement claws back 512.00,
    confirmed. On 10 February the rep's 已确认 card (2027年累计) is -¥512.00 and lists the
    order at -¥512.00 — tapping it, the order's page heads its lines with 已确认 ¥768.00
    (both years' lines summed): the row and the page the row opens disagree on the one
    figure both call 已确认."""
    db = hub.db_url
    at(D(2026, 11, 1))
    publish(db, YEAR_END_POLICY)
    kangda = customer_id(db, KANGDA)
    order = signed_order(db, kangda, D(2026, 12, 10), [("MON-M8", 5)])
    at(D(2027, 1, 5))
    settle_month(current_hub(), "2026-12", documents=False)
    confirm(db, "2026-12")
    return_goods(db, order, 1, 2, D(2027, 1, 15))
    at(D(2027, 2, 5))
    settle_month(current_hub(), "2027-01", documents=False)
    confirm(db, "2027-01")
    at(D(2027, 2, 10))

    login(client, hub, "rep-zhangwei")
    rows = page(client, "/rebates/board/orders/page?status=confirmed")
    assert money_of(rows, "total") == "-¥512.00"
    row = visible(re.search(rf'id="order-{order}".*?</a>', rows, re.DOTALL).group(0))
    assert "-¥512.00" in row  # the row the rep taps
    detail = page(client, f"/rebates/orders/{order}")
    # the order page's 已确认 sum must be the amount of the row it was opened from (or say
    # which year it sums): it shows ¥768.00 under the same word
    shown = visible(detail.split("<main>")[-1])[:400]
    assert money_of(detail, "sum-confirmed") == "-¥512.00", shown


def test_an_order_settled_without_any_rebate_is_not_said_to_be_still_unsettled(
        hub, client, world):
    """An October order of 注射泵 (输注: T-BOARD covers 监护 only), signed and delivered
    on 14 October; October was settled on 5 November. On 20 November its rebate page says
    "该意向单暂无返利：尚未结算，本月也没有预计返利。" — the month was settled; no policy in
    force pays this order anything, and it never will. A rep reading "尚未结算" waits for
    money that is not coming."""
    db = hub.db_url
    at(D(2026, 10, 14))
    pump = signed_order(db, world["kangda"], D(2026, 10, 14), [("PUMP-SP3", 2)])
    at(D(2026, 11, 5))
    settle_month(current_hub(), "2026-10", documents=False)  # revision 2: nothing for it
    at(D(2026, 11, 20))

    login(client, hub, "rep-zhangwei")
    text = visible(page(client, f"/rebates/orders/{pump}").split("<main>")[-1])
    assert "尚未结算" not in text, text


def test_a_re_runs_take_back_for_a_return_reads_as_a_claw_back_not_basis_times_rate(
        hub, client, world):
    """康达's October order (3 × M8, 38,400: 3,916.80 in October r1, pending). One unit
    comes back on 25 October, keyed in late; the re-run of October (r2) takes back
    1,305.60 as a 更正 line. Its page shows 返利基数 ¥25,600.00 · 比例 10.2% · 金额
    -¥1,305.60 — 25,600 × 10.2 % is 2,611.20, not minus 1,305.60: the contradiction the
    claw-back card (原已返 3,916.80 元，现应返 2,611.20 元，追回 1,305.60 元) exists to avoid,
    shown for the same money taken back for the same return, only because a re-run found it."""
    db = hub.db_url
    return_goods(db, world["o1"], 1, 1, D(2026, 10, 25), number="TH-LATE-1")
    settle_month(current_hub(), "2026-10", documents=False)
    data = client.get(f"/rebates/orders/{world['o1']}", headers=bearer(hub, "rep-zhangwei")).json()
    [taken] = [x for x in data["lines"] if x["revision"] == 2]
    assert (taken["kind_code"], taken["amount"]) == ("adjustment", "-1305.60")
    assert (taken["paid_before"], taken["due"]) == ("3916.80", "2611.20")

    login(client, hub, "rep-zhangwei")
    text = page(client, f"/rebates/orders/{world['o1']}")
    line = visible(re.search(r'<li class="line" id="line-2">.*?</li>', text, re.DOTALL).group(0))
    assert "原已返 3,916.80 元，现应返 2,611.20 元，追回 1,305.60 元" in line, line


def test_the_order_progress_link_on_a_rebate_page_does_not_lead_to_a_403(hub, client, world):
    """张伟's October order (3,916.80 pending, booked to him) is handed over to 李娜 on 10
    November. It stays on 张伟's 待复核 card, its rebate page opens and offers 查看意向单进度;
    tapping it answers 403 无权查看此意向单 (“此意向单属于其他销售代表”). The page should
    not offer a way it then refuses (or the order page should let the rep whose rebate it
    is read it)."""
    from tests.api.test_board_expected_matches_settlement import hand_over

    hand_over(hub.db_url, world["o1"])
    at(D(2026, 11, 20))
    login(client, hub, "rep-zhangwei")
    rows = page(client, "/rebates/board/orders/page?status=pending")
    assert f'id="order-{world["o1"]}"' in rows
    text = page(client, f"/rebates/orders/{world['o1']}")
    assert "¥3,916.80" in text
    progress = re.search(r'<a id="order-progress" href="([^"]+)"', text)
    if progress:  # offered: it must open
        r = client.get(progress.group(1), headers=HTML)
        assert r.status_code == 200, visible(r.text.split("<main>")[-1])
