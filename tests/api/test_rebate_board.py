"""The rebate board pages (返利看板): GET /rebates/board, the orders behind a figure, an order's
rebate page. The same data and the same access rules as the JSON (a rep his own orders, a
manager his region, finance everything), as Chinese phone pages: 401 without a login, a 403
page beyond one's scope, every value escaped. The world and its money are in
tests/board_support.py."""
from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest

from api import rebates as rebates_api
from api.auth import COOKIE, issue_token
from api.board_pages import effective_label, period_label, rate_label
from models.money import yuan
from tests.board_support import POLICY_TEXT, SHENKANG, ZHAOLIU, board_world

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
HTML = {"Accept": BROWSER}


@pytest.fixture
def world(hub):
    return board_world(hub.db_url)


def bearer(hub, staff_id: str) -> dict:
    return {"Authorization": f"Bearer {issue_token(hub.settings, staff_id)}"}


def login(client, hub, staff_id: str) -> None:
    """As a browser that opened a pushed link: the cookie the link's token became."""
    client.cookies.clear()
    client.cookies.set(COOKIE, issue_token(hub.settings, staff_id))


def page(client, url: str, status: int = 200) -> str:
    r = client.get(url, headers=HTML)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    return r.text


def figures(text: str) -> dict[str, tuple[str, str]]:
    """{status: (amount, '… 张订单')} as the board's cards show them."""
    found = re.findall(r'id="fig-(\w+)" href="[^"]*">.*?·\s*(\d+ 张订单)</span>.*?'
                       r'<span class="amount">([^<]*)</span>', text)
    return {status: (amount, count) for status, count, amount in found}


def listed(text: str) -> list[str]:
    """The order ids of an order list page, in their order."""
    return re.findall(r'<li><a class="row" href="[^"]*" id="order-([^"]+)"', text)


def visible(text: str) -> str:
    """The page's text with tags removed and entities read, roughly as a person sees it."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


# --- words and numbers ----------------------------------------------------------------------

def test_money_rates_periods_and_dates_read_in_chinese():
    assert yuan("3916.8") == "¥3,916.80" and yuan(Decimal("1234567.891")) == "¥1,234,567.89"
    assert yuan("-1200.00") == "-¥1,200.00" and yuan("-0.00") == "¥0.00"
    assert yuan("12", plus=True) == "+¥12.00" and yuan("-371.87", plus=True) == "-¥371.87"
    assert rate_label("0.102000") == "10.2%" and rate_label("0.012345") == "1.2345%"
    assert period_label("2026-10") == "2026年10月" and period_label("2026Q4") == "2026年第四季度"
    assert effective_label({"effective_from": "2026-09-01", "effective_to": "2026-11-30"}) \
        == "从 2026-09-01 起至 2026-11-30"
    assert effective_label({"effective_from": "2026-12-01", "effective_to": None}) \
        == "从 2026-12-01 起（未设截止日期）"


# --- who sees what ----------------------------------------------------------------------------

@pytest.mark.parametrize("who, label, expected", [
    ("rep-zhangwei", "张伟的返利", {"confirmed": ("¥2,611.20", "1 张订单"),
                                  "pending": ("¥3,916.80", "1 张订单"),
                                  "expected": ("¥1,305.60", "1 张订单")}),
    ("mgr-east", "华东大区返利", {"confirmed": ("¥2,611.20", "1 张订单"),
                               "pending": ("¥5,222.40", "2 张订单"),
                               "expected": ("¥1,305.60", "1 张订单")}),
    ("finance-01", "全部返利", {"confirmed": ("¥2,611.20", "1 张订单"),
                            "pending": ("¥7,119.60", "3 张订单"),
                            "expected": ("¥1,305.60", "1 张订单")}),
])
def test_each_role_sees_its_own_figures(hub, client, world, who, label, expected):
    login(client, hub, who)
    text = page(client, "/rebates/board")
    assert f'<h1 id="scope">{label}</h1>' in text
    assert figures(text) == expected
    assert "数据截至 2026-11-20（北京时间）" in text
    # the same figures as the JSON for the same person
    data = client.get("/rebates/board/data", headers=bearer(hub, who)).json()
    assert {f["status"]: (yuan(f["amount"]), f"{f['orders']} 张订单") for f in data["figures"]} \
        == expected
    # the settled months, newest first, each amount opening that month's orders
    months = re.findall(r'<tr id="month-([\d-]+)"><td>([^<]+)</td>', text)
    assert months == [("2026-10", "2026年10月"), ("2026-09", "2026年9月")]
    assert '<a class="money" href="/rebates/board/orders/page?status=confirmed&amp;' \
        'month=2026-09">¥2,611.20</a>' in text
    # the cards open the orders behind them
    assert '<a class="card figure pending" id="fig-pending" ' \
           'href="/rebates/board/orders/page?status=pending">' in text


def test_the_board_is_a_page_even_for_programs_and_needs_a_login(hub, client, world):
    r = client.get("/rebates/board")  # no Accept, no login: still the page, 401
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")
    assert "需要登录" in r.text and "从推送消息中重新打开此链接" in r.text
    r = client.get("/rebates/board", headers=bearer(hub, "rep-zhangwei"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for url in ("/rebates/board/orders/page?status=pending", f"/rebates/orders/{world['o1']}"):
        assert client.get(url, headers=HTML).status_code == 401
    # the JSON is where it was, as it was
    assert client.get("/rebates/board/data").json()["error"]["code"] == "unauthenticated"
    assert client.get("/rebates/board/data", headers=bearer(hub, "rep-zhangwei")
                      ).json()["scope"]["label"] == "张伟的返利"


def test_a_pushed_board_link_trades_its_token_for_a_cookie(hub, client, world):
    t = issue_token(hub.settings, "mgr-east")
    r = client.get(f"/rebates/board?rep=rep-zhaoliu&token={t}", headers=HTML,
                   follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/rebates/board?rep=rep-zhaoliu"
    assert r.headers["set-cookie"].startswith(f"{COOKIE}={t};") and "HttpOnly" in r.headers[
        "set-cookie"]
    text = page(client, r.headers["location"])
    assert f'<h1 id="scope">{html.escape(ZHAOLIU)}在华东大区的返利</h1>' in text
    assert figures(text)["pending"] == ("¥1,305.60", "1 张订单")


def test_narrowing_to_a_rep_or_a_region_only_within_ones_scope(hub, client, world):
    login(client, hub, "finance-01")
    south = page(client, "/rebates/board?region=华南")
    assert '<h1 id="scope">华南大区返利</h1>' in south
    assert figures(south)["pending"] == ("¥1,897.20", "1 张订单")
    assert figures(south)["confirmed"] == ("¥0.00", "0 张订单")
    # the cards keep the narrowing on the way down
    assert 'href="/rebates/board/orders/page?status=pending&amp;region=%E5%8D%8E%E5%8D%97"' in south
    # finance picks among every region and rep
    assert '<option value="华南" selected>华南大区</option>' in south
    assert '<option value="rep-lina">李娜（华南）</option>' in south
    lina = page(client, "/rebates/board?rep=rep-lina")
    assert figures(lina)["pending"] == ("¥1,897.20", "1 张订单")
    assert page(client, "/rebates/board?rep=&region=").count("全部返利") >= 1  # the empty form

    login(client, hub, "mgr-east")
    text = page(client, "/rebates/board")
    assert '<select id="region"' not in text  # his region only
    assert '<option value="rep-zhangwei">张伟</option>' in text
    assert 'value="rep-lina"' not in text
    zhaoliu = page(client, "/rebates/board?rep=rep-zhaoliu")
    assert figures(zhaoliu)["pending"] == ("¥1,305.60", "1 张订单")
    for query, why in (("region=华南", "您只能查看华东大区的返利"),
                       ("rep=rep-lina", "李娜不在华东大区"), ("rep=nobody", "nobody不在华东大区")):
        refused = page(client, f"/rebates/board?{query}", 403)
        assert "无权查看" in refused and why in refused
        assert "¥" not in refused  # no figure leaks onto a refusal

    login(client, hub, "rep-zhangwei")
    text = page(client, "/rebates/board")
    assert 'id="narrow"' not in text  # nothing to pick for a rep
    refused = page(client, "/rebates/board?rep=rep-lina", 403)
    assert "销售只能查看本人的返利" in refused
    assert '<a id="back" href="/rebates/board">‹ 返回我的返利看板</a>' in refused
    assert "销售只能查看本人的返利" in page(client, "/rebates/board?region=华东", 403)

    login(client, hub, "legal-01")
    refused = page(client, "/rebates/board", 403)
    assert "当前角色（法务）无权查看返利看板" in refused
    # no board of his own to go back to: his to-dos are the way on
    assert '<a id="back" href="/todos">‹ 前往我的待办</a>' in refused
    assert page(client, f"/rebates/orders/{world['o1']}", 403)


# --- drill-down ---------------------------------------------------------------------------------

def test_a_figure_opens_its_orders_newest_first(hub, client, world):
    login(client, hub, "finance-01")
    text = page(client, "/rebates/board/orders/page?status=pending")
    assert listed(text) == [world["o3"], world["o2"], world["o1"]]  # 12, 11, 10 October
    assert '<h1 id="figure">待复核</h1>' in text and "全部返利 · 已结算，待财务确认" in text
    assert '<span class="total money" id="total">¥7,119.60</span>' in text
    assert '<span class="muted" id="count">3 张订单</span>' in text
    row = visible(text)
    assert f"{world['o2']}¥1,897.20广州华南医药贸易有限公司下单 2026-10-11 · 返利 · 2026年10月结算" in row
    # each row opens its order's page on this figure (its subtotal there: the row's)
    assert f'href="/rebates/orders/{world["o1"]}?status=pending"' in text
    # one month's confirmed figure, and the expected one
    sep = page(client, "/rebates/board/orders/page?status=confirmed&month=2026-09")
    assert listed(sep) == [world["sep"]] and '<h1 id="figure">已确认 · 2026年9月</h1>' in sep
    assert listed(page(client, "/rebates/board/orders/page?status=expected")) == [world["nov"]]
    assert listed(page(client, "/rebates/board/orders/page?status=confirmed&month=2026-10")) == []

    login(client, hub, "rep-zhangwei")
    mine = page(client, "/rebates/board/orders/page?status=pending")
    assert listed(mine) == [world["o1"]] and "¥3,916.80" in mine
    assert page(client, "/rebates/board/orders/page?status=pending&rep=rep-lina", 403)
    login(client, hub, "mgr-east")
    east = page(client, "/rebates/board/orders/page?status=pending")
    assert listed(east) == [world["o3"], world["o1"]]
    # the narrowing goes on to the order links
    narrowed = page(client, "/rebates/board/orders/page?status=pending&rep=rep-zhaoliu")
    assert listed(narrowed) == [world["o3"]]
    assert f'href="/rebates/orders/{world["o3"]}?rep=rep-zhaoliu&amp;status=pending"' in narrowed
    assert 'href="/rebates/board?rep=rep-zhaoliu">‹ 返回返利看板' in narrowed


def test_a_long_figure_is_paged_with_its_whole_count_and_total(hub, client, world,
                                                                monkeypatch):
    monkeypatch.setattr(rebates_api, "ORDERS_PER_PAGE", 2)
    login(client, hub, "finance-01")
    first = page(client, "/rebates/board/orders/page?status=pending")
    assert listed(first) == [world["o3"], world["o2"]]
    # the figure's count and total are the whole figure's, not the page's
    assert '<span class="muted" id="count">3 张订单</span>' in first
    assert '<span class="total money" id="total">¥7,119.60</span>' in first
    assert "第 1–2 张，共 3 张" in visible(first) and 'id="newer"' not in first
    assert 'id="older" href="/rebates/board/orders/page?status=pending&amp;offset=2"' in first
    second = page(client, "/rebates/board/orders/page?status=pending&offset=2")
    assert listed(second) == [world["o1"]] and 'id="older"' not in second
    assert "第 3–3 张，共 3 张" in visible(second)
    assert 'id="newer" href="/rebates/board/orders/page?status=pending">' in second
    beyond = page(client, "/rebates/board/orders/page?status=pending&offset=40")
    assert listed(beyond) == [] and '<span class="muted" id="count">3 张订单</span>' in beyond
    assert 'id="newer" href="/rebates/board/orders/page?status=pending&amp;offset=1"' in beyond
    # the JSON pages the same way
    r = client.get("/rebates/board/orders?status=pending&offset=1&limit=1",
                   headers=bearer(hub, "finance-01")).json()
    assert (r["count"], r["amount"], [o["order_id"] for o in r["orders"]]) == (
        3, "7119.60", [world["o2"]])
    for query in ("limit=0", "limit=1001", "offset=-1"):
        r = client.get(f"/rebates/board/orders?status=pending&{query}",
                       headers=bearer(hub, "finance-01"))
        assert r.status_code == 422 and r.json()["error"]["code"]


def test_bad_drill_down_addresses_answer_a_page(hub, client, world):
    login(client, hub, "rep-zhangwei")
    for query in ("status=paid", "", "status=confirmed&month=2026-13",
                  "status=confirmed&month=<b>", "status=pending&offset=-1",
                  "status=pending&offset=x"):
        assert "链接有误" in page(client, f"/rebates/board/orders/page?{query}", 400)
    assert "意向单不存在：IO-NOPE" in page(client, "/rebates/orders/IO-NOPE", 404)


def test_an_order_shows_its_lines_explanations_customer_and_policy_text(hub, client, world):
    detail = client.get(f"/rebates/orders/{world['o1']}",
                        headers=bearer(hub, "rep-zhangwei")).json()
    login(client, hub, "rep-zhangwei")
    text = page(client, f"/rebates/orders/{world['o1']}")
    shown = visible(text)
    line = detail["lines"][0]
    # the line: settled month and revision, status, policy and clause, period, kind, money
    assert "2026年10月结算 · 第 1 版" in shown and '<span class="badge warn">待复核</span>' in text
    assert "政策条款T-BOARD 第 1 版 · 第一条" in shown and "计算期间2026年10月" in shown
    assert "类型返利" in shown and "返利基数¥38,400.00" in shown and "比例10.2%" in shown
    assert "金额¥3,916.80" in shown
    # the whole Chinese explanation, as settlement wrote it
    assert line["explanation"].startswith("返利：应返 3,916.80 元，已返 0.00 元，本次 3,916.80 元。")
    assert f'<p class="explain">{html.escape(line["explanation"])}</p>' in text
    # the customer
    assert "工商全称江苏康达医疗设备有限公司" in shown
    assert "统一社会信用代码91320500MA1K2D3F5H" in shown
    assert "客户等级A 级" in shown and "大区华东" in shown
    # the policy: its text and the dates it governs (version 2 takes over on 1 December)
    assert "看板测试监护返利政策" in shown and "T-BOARD · 第 1 版" in shown
    assert "有效期：从 2026-09-01 起至 2026-11-30" in shown
    assert f'<div class="policy-text">{html.escape(POLICY_TEXT)}</div>' in text
    assert "销售张伟（rep-zhangwei）" in shown and "待复核¥3,916.80" in shown

    # the September order: a confirmed line; November's: expected, not settled yet
    sep = visible(page(client, f"/rebates/orders/{world['sep']}"))
    assert "2026年9月结算 · 第 1 版已确认" in sep and "已确认¥2,611.20" in sep
    nov = visible(page(client, f"/rebates/orders/{world['nov']}"))
    assert "尚未结算（预计计入2026年11月结算）本月预计" in nov and "金额¥1,305.60" in nov
    assert "按《看板测试监护返利政策》（T-BOARD 第1版）第一条" in nov


def test_an_order_answers_json_to_programs_and_a_page_to_browsers(hub, client, world):
    url = f"/rebates/orders/{world['o1']}"
    for accept in (None, "application/json", "*/*", "application/json, text/html;q=0.5"):
        headers = bearer(hub, "rep-zhangwei") | ({"Accept": accept} if accept else {})
        r = client.get(url, headers=headers)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json", accept
        assert set(r.json()) == {"order_id", "order_date", "rep_id", "customer", "lines",
                                 "none_because", "preview", "policies"}
        assert r.headers["vary"] == "Accept"
    r = client.get(url, headers=bearer(hub, "rep-zhangwei") | HTML)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    # JSON errors stay JSON
    assert client.get(url).json()["error"]["code"] == "unauthenticated"
    assert client.get(url, headers=bearer(hub, "rep-lina")).json()["error"]["code"] == "forbidden"
    assert client.get("/rebates/orders/IO-NOPE", headers=bearer(hub, "rep-zhangwei")
                      ).json()["error"]["code"] == "unknown_order"
    # without a login, the page asks to open the push again
    r = client.get(url, headers=HTML)
    assert r.status_code == 401 and "需要登录" in r.text


def test_another_reps_order_is_a_403_page(hub, client, world):
    login(client, hub, "rep-lina")
    refused = page(client, f"/rebates/orders/{world['o1']}", 403)
    assert f"意向单 {world['o1']} 不在您的查看范围内。" in refused and "江苏康达" not in refused
    assert "广州华南医药贸易有限公司" in page(client, f"/rebates/orders/{world['o2']}")
    login(client, hub, "mgr-south")
    assert page(client, f"/rebates/orders/{world['o1']}", 403)
    login(client, hub, "mgr-east")
    assert SHENKANG not in page(client, f"/rebates/orders/{world['o3']}")  # escaped, below
    # narrowed to a rep, the order must be his
    assert page(client, f"/rebates/orders/{world['o1']}?rep=rep-zhaoliu", 403)
    login(client, hub, "finance-01")
    assert page(client, f"/rebates/orders/{world['o2']}")


def test_every_value_is_escaped(hub, client, world):
    login(client, hub, "mgr-east")
    board = page(client, "/rebates/board")
    assert ZHAOLIU not in board
    assert '<option value="rep-zhaoliu">赵六&quot;&lt;i&gt;</option>' in board
    orders = page(client, "/rebates/board/orders/page?status=pending")
    assert SHENKANG not in orders and "上海申康&lt;医疗&gt;&amp;科技有限公司" in orders
    order = page(client, f"/rebates/orders/{world['o3']}")
    assert SHENKANG not in order and "上海申康&lt;医疗&gt;&amp;科技有限公司" in order
    assert "<b>本政策</b>" not in order and "&lt;b&gt;本政策&lt;/b&gt;与其他政策叠加 &amp; 按月结算" in order
    scoped = page(client, "/rebates/board?rep=rep-zhaoliu")
    assert '<h1 id="scope">赵六&quot;&lt;i&gt;在华东大区的返利</h1>' in scoped
    # what a person types into the address comes back escaped, or not at all
    login(client, hub, "finance-01")
    unknown = page(client, '/rebates/board?rep="><script>alert(1)</script>', 404)  # no such rep
    assert "<script>alert(1)" not in unknown and "&lt;script&gt;alert(1)&lt;/script&gt;" in unknown
    missing = page(client, "/rebates/orders/%3Cscript%3E", 404)
    assert "<script>" not in missing and "&lt;script&gt;" in missing
