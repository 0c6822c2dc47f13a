"""An order's rebate page opened from a figure's row: the row's link carries the figure (its
status and month, or the confirmed card's year), and the page heads its lines with the same
subtotal, named as summed (2027年已确认, 2026年12月已确认), its other years' or months' lines
apart. And its way to the order's own page is offered only to whom that page opens.

The year-end world of tests/api/test_audit_board_journey.py: 康达 buys 5 × M8 (64,000) on 10
December 2026 under T-YEAREND (2 %): 1,280.00, confirmed; 2 units come back on 15 January
2027: January claws back 512.00, confirmed. Today: 10 February 2027."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from flows.hub import current_hub
from flows.settlement import settle_month
from tests.api.test_audit_board_journey import KANGDA, YEAR_END_POLICY, confirm, money_of
from tests.api.test_rebate_board import HTML, board_world, login, page, visible
from tests.board_support import at
from tests.rebate_support import customer_id, publish, return_goods, signed_order

D = dt.date


@pytest.fixture
def year_end(hub):
    db = hub.db_url
    at(D(2026, 11, 1))
    publish(db, YEAR_END_POLICY)
    order = signed_order(db, customer_id(db, KANGDA), D(2026, 12, 10), [("MON-M8", 5)])
    at(D(2027, 1, 5))
    settle_month(current_hub(), "2026-12", documents=False)
    confirm(db, "2026-12")
    return_goods(db, order, 1, 2, D(2027, 1, 15))
    at(D(2027, 2, 5))
    settle_month(current_hub(), "2027-01", documents=False)
    confirm(db, "2027-01")
    at(D(2027, 2, 10))
    return order


def _row_link(text: str, order: str) -> str:
    return re.search(rf'<a class="row" href="([^"]+)" id="order-{order}"', text).group(1) \
        .replace("&amp;", "&")


def _sum(text: str, ident: str) -> tuple[str, str]:
    """(label, amount) of a subtotal on the order's page."""
    found = re.search(rf'<dt>([^<]*)</dt><dd id="{ident}">', text)
    return (found.group(1) if found else "", money_of(text, ident))


def test_the_confirmed_cards_row_opens_its_order_on_this_years_confirmed_amount(
        hub, client, year_end):
    order = year_end
    login(client, hub, "rep-zhangwei")
    rows = page(client, "/rebates/board/orders/page?status=confirmed")
    url = _row_link(rows, order)
    assert url == f"/rebates/orders/{order}?status=confirmed&year=2027"
    text = page(client, url)
    assert _sum(text, "sum-confirmed") == ("2027年已确认", "-¥512.00")
    assert _sum(text, "sum-confirmed-other") == ("其他年份已确认", "¥1,280.00")
    # the year's line under the figure, December's apart
    lines = visible(text.split('id="lines"')[1].split("</ul>")[0])
    others = visible(text.split('id="other-lines"')[1].split("</ul>")[0])
    assert "2027年1月结算" in lines and "2026年12月结算" not in lines
    assert "2026年12月结算 · 第 1 版" in others and "2027年1月结算" not in others
    assert 'id="back-orders" href="/rebates/board/orders/page?status=confirmed"' in text
    # opened without a figure (a bookmark): the same words, the board's card's year
    plain = page(client, f"/rebates/orders/{order}")
    assert _sum(plain, "sum-confirmed") == ("2027年已确认", "-¥512.00")
    assert 'id="other-lines"' not in plain and 'id="back-orders"' not in plain
    # a year asked for
    last_year = page(client, f"/rebates/orders/{order}?status=confirmed&year=2026")
    assert _sum(last_year, "sum-confirmed") == ("2026年已确认", "¥1,280.00")
    assert _sum(last_year, "sum-confirmed-other") == ("其他年份已确认", "-¥512.00")


def test_a_months_row_opens_its_order_on_that_months_amount(hub, client, year_end):
    order = year_end
    login(client, hub, "rep-zhangwei")
    rows = page(client, "/rebates/board/orders/page?status=confirmed&month=2026-12")
    url = _row_link(rows, order)
    assert url == f"/rebates/orders/{order}?status=confirmed&month=2026-12"
    assert "¥1,280.00" in visible(re.search(rf'id="order-{order}".*?</a>', rows, re.S).group(0))
    text = page(client, url)
    assert _sum(text, "sum-confirmed") == ("2026年12月已确认", "¥1,280.00")
    assert _sum(text, "sum-confirmed-other") == ("其他月份已确认", "-¥512.00")
    assert "返利明细 · 2026年12月已确认" in visible(text)
    assert ('id="back-orders" href="/rebates/board/orders/page?status=confirmed&amp;'
            'month=2026-12"') in text


@pytest.mark.parametrize("query", ["status=nope", "status=confirmed&year=20x6",
                                   "status=pending&month=2026-13"])
def test_an_order_page_address_naming_no_figure_is_a_wrong_link(hub, client, year_end, query):
    login(client, hub, "rep-zhangwei")
    assert "页面地址不正确" in page(client, f"/rebates/orders/{year_end}?{query}", 400)


def test_an_order_handed_over_is_not_offered_to_its_old_rep_but_to_finance(hub, client):
    from tests.api.test_board_expected_matches_settlement import hand_over

    world = board_world(hub.db_url)
    hand_over(hub.db_url, world["o1"])
    at(D(2026, 11, 20))
    login(client, hub, "rep-zhangwei")
    text = page(client, f"/rebates/orders/{world['o1']}?status=pending")
    assert 'id="order-progress"' not in text
    assert "意向单进度页仅供本单现任销售代表" in visible(text)
    login(client, hub, "finance-01")
    text = page(client, f"/rebates/orders/{world['o1']}")
    link = re.search(r'<a id="order-progress" href="([^"]+)"', text).group(1)
    assert client.get(link, headers=HTML).status_code == 200
