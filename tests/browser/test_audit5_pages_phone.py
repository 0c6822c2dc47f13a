"""Audit round 5 (H7): the page a manager reads after deciding a suspected new customer, on a
small phone (375×667) in a real (headless) Chromium: every link on it is a thumb's size."""
from __future__ import annotations

import pytest

from api.pages import render
from api.staff_pages import decision_result
from tests.browser.conftest import browser_unavailable

_why_not = browser_unavailable()
pytestmark = pytest.mark.skipif(_why_not is not None, reason=_why_not or "")

SMALL_PHONE = {"width": 375, "height": 667, "deviceScaleFactor": 2, "mobile": True}


def test_the_links_after_a_decision_are_easy_to_tap(phone, tmp_path):
    view = {"suspect_id": 42, "name": "康达新材料"}
    result = {"decision": "merged", "customer_id": 12,
              "released_orders": ["IOH261119-00119", "IOH261119-00120"]}
    path = tmp_path / "decided.html"
    path.write_text(render(*decision_result(view, result, {"legal_name": "江苏康达医疗设备有限公司"})),
                    encoding="utf-8")
    phone.send("Emulation.setDeviceMetricsOverride", SMALL_PHONE)
    phone.goto(path.as_uri())
    assert phone.js("document.documentElement.scrollWidth") <= 375
    links = phone.js("""[...document.querySelectorAll('main a')].map(a => ({
        text: a.textContent, height: a.getBoundingClientRect().height}))""")
    assert [a["text"] for a in links] == ["IOH261119-00119", "IOH261119-00120", "返回疑似新客户页面"]
    assert all(a["height"] >= 36 for a in links), links


def test_a_message_repeating_a_long_unbroken_address_part_stays_within_the_phone(phone, tmp_path):
    """A 403/404 page repeats what was typed (`?rep=…`, an order id): a hand-made value with
    no place to break still wraps inside the card instead of widening the page."""
    from api.pages import card
    typed = "rep" + "x" * 70
    path = tmp_path / "refused.html"
    path.write_text(render("无权查看", card("无权查看", f"{typed}不在华东大区")), encoding="utf-8")
    phone.send("Emulation.setDeviceMetricsOverride", SMALL_PHONE)
    phone.goto(path.as_uri())
    assert phone.js("document.documentElement.scrollWidth") <= 375
