"""Audit round 4 (H5): the staff pages a rep and a manager open from a push, on a small phone
(360 px) in a real (headless) Chromium: nothing wider than the screen, and the links a thumb
taps (the quote PDF, the order's rebates, the orders of a suspect name) tall enough to hit."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from api.pages import render
from api.staff_pages import order_page, suspect_page
from tests.browser.conftest import browser_unavailable

_why_not = browser_unavailable()
pytestmark = pytest.mark.skipif(_why_not is not None, reason=_why_not or "")

SMALL_PHONE = {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True}
NOW = dt.datetime(2026, 11, 20, 2, tzinfo=dt.UTC)
LONG = "江苏省苏州市工业园区康达医疗设备科技发展有限公司第二分公司（原苏州康达医疗器械贸易有限公司）"


def open_page(phone, tmp_path, name: str, page: tuple) -> None:
    path = tmp_path / f"{name}.html"
    path.write_text(render(*page), encoding="utf-8")
    phone.send("Emulation.setDeviceMetricsOverride", SMALL_PHONE)
    phone.goto(path.as_uri())
    assert phone.js("document.documentElement.scrollWidth") <= 360


def heights(phone, selector: str) -> list[float]:
    return phone.js(f"[...document.querySelectorAll({selector!r})]"
                    ".map(a => a.getBoundingClientRect().height)")


def test_the_links_of_the_order_and_suspect_pages_are_easy_to_tap(phone, tmp_path):
    order = {"order": {"id": "IOH261119-00119", "status": "quoted", "error": None,
                       "customer_name": LONG, "rep_id": "rep-zhangwei",
                       "order_date": "2026-11-19"},
             "names": {"rep-zhangwei": "张伟"}, "customer": {"customer_id": 12, "legal_name": LONG},
             "stage_label": "报价",
             "quote": {"code": "QT-20261119-ABCDEF", "status": "sent",
                       "total_amount": Decimal("12345678.90"), "valid_until": "2026-12-19",
                       "has_pdf": True, "pdf_withheld": False, "signed_pdf": False},
             "todos": [], "waiting": False, "may_choose": False, "suggestions": [],
             "rebate": "本次订单返利比例：12.5%，较上月提升2.3个百分点"}
    open_page(phone, tmp_path, "order", order_page(order, []))
    for selector in ("#quote-pdf", "#rebate-link"):
        [height] = heights(phone, selector)
        assert height >= 40, (selector, height)

    view = {"suspect_id": 42, "name": LONG, "status": "escalated", "status_label": "待经理确认",
            "sightings": 2, "decider": "mgr-east", "decided_by": None}
    data = {"view": view, "names": {"mgr-east": "王强", "rep-zhangwei": "张伟"},
            "deadline_at": NOW + dt.timedelta(hours=30), "may_decide": False,
            "orders": [{"order_id": f"IOH261119-0011{n}", "rep_id": "rep-zhangwei",
                        "typed_name": LONG, "seen_at": NOW, "status": "on_hold"}
                       for n in range(2)]}
    open_page(phone, tmp_path, "suspect", suspect_page(data, [], now=NOW, threshold=3))
    found = heights(phone, "#orders li > a")
    assert len(found) == 2 and all(h >= 36 for h in found), found
