"""The rebate board (返利看板) in a real (headless) Chromium at a phone's size: a rep opens the
pushed link with ?token=, the board fits the width, he taps 待复核 → its orders → an order,
and reads the explanation, the customer and the policy text with its effective dates. Finance
narrows the board to a region with the page's own form. The world: tests/board_support.py."""
from __future__ import annotations

import pytest

from api.auth import issue_token
from tests.board_support import board_world
from tests.browser.conftest import PHONE, browser_unavailable
from tests.browser.test_staff_pages import fits_the_phone

_why_not = browser_unavailable()
pytestmark = pytest.mark.skipif(_why_not is not None, reason=_why_not or "")


@pytest.fixture
def world(hub):
    return board_world(hub.db_url)


def tap_and_load(page, selector: str) -> int | None:
    since = page.mark()
    page.tap(selector)
    return page.wait_loaded(since)


def by_id(page, ident: str) -> str:
    return page.js(f"document.getElementById({ident!r}).textContent")


def test_rep_drills_from_pending_to_the_policy_text(phone, hub, live_server, world, tmp_path):
    board = f"{live_server}/rebates/board"
    # without a login: the shell's page asking to open the push again
    assert phone.goto(board) == 401
    assert "请回到企业微信或钉钉，从推送消息中重新打开此链接" in phone.text()

    assert phone.goto(f"{board}?token={issue_token(hub.settings, 'rep-zhangwei')}") == 200
    assert phone.js("location.href") == board          # the token left the address
    assert phone.js("document.cookie") == ""           # and lives in an HttpOnly cookie
    assert by_id(phone, "scope") == "张伟的返利"
    cards = phone.js("""[...document.querySelectorAll('a.figure')].map(a => a.innerText
        .replace(/\\s+/g, ' ').trim())""")
    assert cards == ["已确认 2026年累计，财务已确认 · 1 张订单 ¥2,611.20 ›",
                     "待复核 已结算，待财务确认 · 1 张订单 ¥3,916.80 ›",
                     "本月预计 尚未结算，按当前数据估算（含冲回） · 1 张订单 ¥1,305.60 ›"]
    # big enough to tap with a thumb, as wide as the page
    card = phone.rect_of("#fig-pending")
    assert card["height"] >= 48 and card["width"] >= PHONE["width"] - 40
    fits_the_phone(phone)
    phone.screenshot(tmp_path / "board-phone.png")

    assert tap_and_load(phone, "#fig-pending") == 200
    assert phone.js("location.pathname + location.search") == \
        "/rebates/board/orders/page?status=pending"
    assert by_id(phone, "figure") == "待复核" and by_id(phone, "total") == "¥3,916.80"
    rows = phone.js("[...document.querySelectorAll('#orders a.row')].map(a => a.id)")
    assert rows == [f"order-{world['o1']}"]
    row = phone.js(f"document.getElementById('order-{world['o1']}').innerText")
    assert "江苏康达医疗设备有限公司" in row and "下单 2026-10-10" in row and "2026年10月" in row
    fits_the_phone(phone)
    phone.screenshot(tmp_path / "board-orders-phone.png")

    assert tap_and_load(phone, f"#order-{world['o1']}") == 200
    assert phone.js("location.pathname") == f"/rebates/orders/{world['o1']}"
    text = phone.text()
    explanation = phone.js("document.querySelector('#line-1 .explain').textContent")
    assert explanation.startswith("返利：应返 3,916.80 元，已返 0.00 元，本次 3,916.80 元。")
    assert "第一条「月度阶梯」" in explanation and "38,400.00 元 × 10.2% = 3,916.80 元" in explanation
    assert "2026年10月结算 · 第 1 版" in text and "待复核" in text
    assert by_id(phone, "customer-name") == "江苏康达医疗设备有限公司"
    assert by_id(phone, "customer-uscc") == "91320500MA1K2D3F5H"
    assert by_id(phone, "customer-tier") == "A 级" and by_id(phone, "customer-region") == "华东"
    policy = phone.js("document.querySelector('#policies .policy').innerText")
    assert "看板测试监护返利政策" in policy and "有效期：从 2026-09-01 起至 2026-11-30" in policy
    assert "第一条 月度阶梯：当月监护产品线含税销售额5万元以下按10.2%返利" in policy
    assert "第二条 <b>本政策</b>与其他政策叠加 & 按月结算。" in policy  # text, not markup
    assert phone.js("document.querySelector('.policy-text b')") is None
    fits_the_phone(phone)
    phone.screenshot(tmp_path / "board-order-phone.png", full_page=True)

    # back to the board; another rep's order is a Chinese 403 page
    assert tap_and_load(phone, "#back") == 200 and by_id(phone, "scope") == "张伟的返利"
    assert phone.goto(f"{live_server}/rebates/orders/{world['o2']}") == 403
    assert f"意向单 {world['o2']} 不在您的查看范围内" in phone.text()
    assert "广州华南医药贸易有限公司" not in phone.text()
    fits_the_phone(phone)


def test_finance_narrows_the_board_to_a_region(phone, hub, live_server, world, tmp_path):
    board = f"{live_server}/rebates/board"
    assert phone.goto(f"{board}?token={issue_token(hub.settings, 'finance-01')}") == 200
    assert by_id(phone, "scope") == "全部返利"
    assert by_id(phone, "fig-pending").count("¥7,119.60") == 1
    phone.tap("#narrow summary")
    assert phone.js("document.getElementById('narrow').open")
    fits_the_phone(phone)
    phone.js("document.getElementById('region').value = '华南'")
    assert tap_and_load(phone, "#narrow-btn") == 200
    assert by_id(phone, "scope") == "华南大区返利"
    assert "¥1,897.20" in by_id(phone, "fig-pending")
    assert "region=%E5%8D%8E%E5%8D%97" in phone.js("location.search")
    fits_the_phone(phone)
    phone.screenshot(tmp_path / "board-finance-south-phone.png")
    # the narrowing goes along: the pending orders of 华南 only
    assert tap_and_load(phone, "#fig-pending") == 200
    assert phone.js("[...document.querySelectorAll('#orders a.row')].map(a => a.id)") == \
        [f"order-{world['o2']}"]

    # on a desktop the same page is a centred column, without horizontal scrolling
    phone.send("Emulation.setDeviceMetricsOverride",
               {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    assert phone.goto(board) == 200
    main = phone.rect_of("main")
    # centred in the window less its vertical scroll bar, when the page is long enough for one
    inner = phone.js("document.documentElement.clientWidth")
    assert main["width"] <= 560 + 2 * 16 and abs(main["left"] - (inner - main["width"]) / 2) <= 1
    assert phone.js("document.documentElement.scrollWidth") <= 1280


def test_finance_pages_through_a_long_figure(phone, hub, live_server, world, monkeypatch,
                                             tmp_path):
    from api import rebates as rebates_api

    monkeypatch.setattr(rebates_api, "ORDERS_PER_PAGE", 2)
    assert phone.goto(f"{live_server}/rebates/board?token="
                      f"{issue_token(hub.settings, 'finance-01')}") == 200
    assert tap_and_load(phone, "#fig-pending") == 200
    rows = "[...document.querySelectorAll('#orders a.row')].map(a => a.id.slice(6))"
    assert phone.js(rows) == [world["o3"], world["o2"]]
    assert by_id(phone, "count") == "3 张订单" and by_id(phone, "total") == "¥7,119.60"
    assert by_id(phone, "shown") == "第 1–2 张，共 3 张"
    older = phone.rect_of("#older")
    assert older["height"] >= 20 and older["left"] + older["width"] <= PHONE["width"]
    fits_the_phone(phone)
    phone.screenshot(tmp_path / "board-orders-paged-phone.png", full_page=True)
    assert tap_and_load(phone, "#older") == 200
    assert phone.js(rows) == [world["o1"]] and by_id(phone, "shown") == "第 3–3 张，共 3 张"
    assert tap_and_load(phone, "#newer") == 200
    assert phone.js(rows) == [world["o3"], world["o2"]]
    fits_the_phone(phone)
