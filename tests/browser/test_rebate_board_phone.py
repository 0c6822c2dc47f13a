"""The rebate board's pages on a small phone (375×667) in a real (headless) Chromium: a
month's claw-back keeps its minus sign with its amount, and what a thumb taps (a month's
amount, the pager, the way back) is big enough. The pages are rendered from figures as
finance's board shows them for a large region (millions a month, a net claw-back)."""
from __future__ import annotations

import pytest

from api.board_pages import Figure, board_page, order_rebate_page, orders_page
from api.pages import render
from tests.browser.conftest import browser_unavailable

_why_not = browser_unavailable()
pytestmark = pytest.mark.skipif(_why_not is not None, reason=_why_not or "")

SMALL_PHONE = {"width": 375, "height": 667, "deviceScaleFactor": 2, "mobile": True}
EVERYONE = {"rep": None, "region": None}
OPENED = Figure(None, None, 2026)  # an order page opened from no figure, in 2026


def open_page(phone, tmp_path, name: str, title_content: tuple[str, str]) -> None:
    path = tmp_path / f"{name}.html"
    path.write_text(render(*title_content), encoding="utf-8")
    phone.send("Emulation.setDeviceMetricsOverride", SMALL_PHONE)
    phone.goto(path.as_uri())
    assert phone.js("innerWidth") == 375
    assert phone.js("document.documentElement.scrollWidth") <= 375


def boxes(phone, selector: str) -> list[dict]:
    """Per element: its text, how many line boxes it takes, its height (CSS px)."""
    return phone.js(f"""[...document.querySelectorAll({selector!r})].map(a => ({{
        text: a.textContent, lines: a.getClientRects().length,
        height: a.getBoundingClientRect().height}}))""")


def test_a_months_claw_back_keeps_its_sign_and_amounts_are_easy_to_tap(phone, tmp_path):
    months = [{"month": f"2026-{m:02d}", "confirmed": "12345678.90", "pending": "-2345678.90"}
              for m in (11, 10, 9)]
    data = {"scope": {"label": "全部返利", "rep_id": None, "region": None},
            "today": "2026-12-03",
            "figures": [{"status": s, "label": s, "amount": "1.00", "orders": 1}
                        for s in ("confirmed", "pending", "expected")],
            "months": months}
    choices = {"regions": ["华东", "华南"], "reps": []}
    open_page(phone, tmp_path, "board", board_page(data, choices, EVERYONE))
    amounts = boxes(phone, "#months a")
    assert [a["text"] for a in amounts] == ["¥12,345,678.90", "-¥2,345,678.90"] * 3
    # one line each: a minus sign alone on a line above reads as a payment, not a claw-back
    assert all(a["lines"] == 1 for a in amounts), amounts
    assert all(a["height"] >= 36 for a in amounts), amounts
    [narrow] = boxes(phone, "#narrow summary")
    assert narrow["height"] >= 40, narrow
    phone.screenshot(tmp_path / "board-months-375.png")


def test_the_pager_the_way_back_and_the_orders_progress_are_easy_to_tap(phone, tmp_path):
    row = {"order_id": "IOH261119-00119", "order_date": "2026-11-19", "customer_id": 5,
           "customer": "江苏康达医疗设备有限公司", "amount": "1280.00", "kinds": ["返利"],
           "months": ["2026-11"]}
    figure = {"count": 150, "amount": "192000.00", "offset": 50, "limit": 50,
              "orders": [dict(row, order_id=f"IOH261119-{n:05d}") for n in range(50)]}
    open_page(phone, tmp_path, "orders",
              orders_page("expected", None, figure, "张伟的返利", 2026, EVERYONE))
    for selector in ("#newer", "#older", "#back"):
        [link] = boxes(phone, selector)
        assert link["height"] >= 40, (selector, link)
    detail = {"order_id": "IOH261119-00119", "order_date": "2026-11-19", "rep_id": "rep-x",
              "customer": None, "lines": [], "policies": []}
    open_page(phone, tmp_path, "order", order_rebate_page(detail, "张伟", EVERYONE, OPENED))
    for selector in ("#order-progress", "#back"):
        [link] = boxes(phone, selector)
        assert link["height"] >= 40, (selector, link)


def test_a_months_voucher_status_fits_the_phone_and_its_link_is_easy_to_tap(phone, tmp_path):
    """Under each settled month, how its revisions' vouchers went — a failure with its whole
    reason — wraps within the phone's width; finance's link to the status page is a thumb's
    height, and the month's amounts keep their one line."""
    failed = ("发送失败：财务系统暂时无法连接，凭证草稿未能提交（HTTP 503 Service Unavailable），"
              "请稍后重新发送")
    months = [{"month": "2026-10", "confirmed": "0.00", "pending": "-2345678.90",
               "settlements": [
                   {"revision": 1, "status": "pending", "status_label": "待复核",
                    "delivery": {"state": "sent", "label": "凭证已发送"},
                    "status_url": "/rebates/settlements/2026-10/1"},
                   {"revision": 2, "status": "pending", "status_label": "待复核",
                    "delivery": {"state": "failed", "label": failed},
                    "status_url": "/rebates/settlements/2026-10/2"}]}]
    data = {"scope": {"label": "全部返利", "rep_id": None, "region": None},
            "today": "2026-12-03",
            "figures": [{"status": s, "label": s, "amount": "1.00", "orders": 1}
                        for s in ("confirmed", "pending", "expected")],
            "months": months}
    open_page(phone, tmp_path, "board-delivery",
              board_page(data, {}, EVERYONE, status_links=True))
    links = boxes(phone, "#months tr.delivery a")
    assert [a["text"] for a in links] == ["凭证已发送 ›", f"{failed} ›"]
    assert all(a["height"] >= 36 for a in links), links
    assert [a["lines"] for a in boxes(phone, "#months a.money")] == [1, 1]
    colour = phone.js("getComputedStyle(document.querySelector("
                      "'#delivery-2026-10-r2 a')).color")
    assert colour == "rgb(192, 57, 43)"  # a failure reads as one
    phone.screenshot(tmp_path / "board-delivery-375.png")


def test_a_claw_back_lines_facts_fit_the_phone(phone, tmp_path):
    """What was paid, what is due and what is taken back, with this line's part of a split
    claw-back, wrap within the phone's width (the amounts of a large order)."""
    line = {"month": "2026-12", "revision": 1, "status": "pending", "policy_code": "MON-2026Q4",
            "policy_version": 2, "clause": "第二条", "period": "2026Q4", "kind": "退货冲回",
            "kind_code": "clawback", "basis": "2560000.00", "rate": "0.010000",
            "policy_rate": "0.01", "amount": "-1280000.00", "paid_before": "1920000.00",
            "due": "256000.00", "change": "-1664000.00", "explanation": "退货冲回：……"}
    detail = {"order_id": "IOH261010-00001", "order_date": "2026-10-10", "rep_id": "rep-x",
              "customer": None, "lines": [line], "policies": []}
    open_page(phone, tmp_path, "claw-back", order_rebate_page(detail, "张伟", EVERYONE, OPENED))
    facts = phone.js("document.querySelector('#line-1 dl').innerText")
    assert "原已返 1,920,000.00 元，现应返 256,000.00 元，追回 1,664,000.00 元" in facts
    assert "1,280,000.00 元（按原入账销售与大区分摊）" in facts and "返利基数" not in facts
    phone.screenshot(tmp_path / "claw-back-375.png")


def test_finance_confirms_a_revision_on_the_phone(phone, tmp_path):
    """A draft revision's status page: the box 已核对 and 确认第 N 版 fit the phone's width and
    are a thumb's height; the customers' table stays within the page."""
    from api.rebates import settlement_card

    customers = [{"customer_id": n, "customer": f"江苏康达医疗设备有限公司第{n}分公司",
                  "customer_code": f"C{n:06d}", "amount": "-1234567.89",
                  "statement_no": f"RS-202610-r2-C{n:06d}-草稿", "voucher_word": "记",
                  "voucher_no": n} for n in range(1, 4)]
    body = {"month": "2026-10", "revision": 2, "status": "draft", "lines": 1234,
            "total": "-1234567.89", "status_url": "/rebates/settlements/2026-10/2",
            "delivery": {"state": "sent", "label": "凭证已发送", "voucher_ref": "K3-8812",
                         "voucher_batch_id": "RB-2026-10-r2"},
            "customers": customers, "customers_total": 3, "offset": 0, "limit": 100}
    open_page(phone, tmp_path, "status", ("2026-10 第 2 版结算", settlement_card(body)))
    for selector in ("#confirm-form button", "#confirm-form label"):
        [box] = boxes(phone, selector)
        assert box["height"] >= 40, (selector, box)
    assert phone.js("document.querySelector('#checked').required") is True
