"""Audit round 5 (H7): legal does the qualification reviews on 我的待办 on a phone (375×667)
in a real (headless) Chromium. A review sent back (不通过 without its reason) opens at that
review with the reason beside its fields, not at the top of the page screens above it; the
done review's page is a plain address (reloading it posts nothing again); the two outcomes
are a named group for a screen reader."""
from __future__ import annotations

import pytest
from sqlmodel import select

from api.auth import issue_token
from flows.notices import open_todo
from models import Customer
from models.db import session_scope
from tests.browser.conftest import browser_unavailable

_why_not = browser_unavailable()
pytestmark = pytest.mark.skipif(_why_not is not None, reason=_why_not or "")

SMALL_PHONE = {"width": 375, "height": 667, "deviceScaleFactor": 2, "mobile": True}
BODY = ("工商登记：{name}，统一社会信用代码见附件；经营范围含第二类、第三类医疗器械批发；"
        "请核对营业执照、医疗器械经营许可证及授权书是否齐全且在有效期内。")


def reviews(hub) -> list[int]:
    """One open qualification review per sample customer, due one after another."""
    ids = []
    with session_scope(hub.db_url) as s:
        for n, customer in enumerate(s.exec(select(Customer).order_by(Customer.id)).all()):
            todo = open_todo(s, kind="legal_review", key=f"audit5-{n}",
                             title=f"新客户资质初审：{customer.legal_name}",
                             body=BODY.format(name=customer.legal_name), assignee_id="legal-01",
                             customer_id=customer.id, due_hours=24 + n)
            s.flush()
            ids.append(todo.id)
    return ids


def submit(page, selector: str) -> int | None:
    since = page.mark()
    page.tap(selector)
    return page.wait_loaded(since)


def in_view(page, selector: str) -> bool:
    return page.js(f"""(() => {{const r = document.querySelector({selector!r})
        .getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight;}})()""")


def open_todos(phone, hub, live_server) -> list[int]:
    ids = reviews(hub)
    assert len(ids) >= 3
    phone.send("Emulation.setDeviceMetricsOverride", SMALL_PHONE)
    assert phone.goto(f"{live_server}/todos?token={issue_token(hub.settings, 'legal-01')}") == 200
    assert phone.js("document.documentElement.scrollWidth") <= 375
    return ids


def test_a_review_sent_back_opens_at_its_fields(phone, hub, live_server):
    last = open_todos(phone, hub, live_server)[-1]
    # 不通过 without a reason: the page opens at this review, the reason beside its fields
    phone.tap(f"#form-{last} input[value=rejected]")
    assert submit(phone, f"#form-{last} button") == 422
    assert phone.js("document.querySelector('#err').textContent") == \
        "初审不通过时请填写原因（将告知销售代表）"
    assert in_view(phone, "#err") and in_view(phone, f"#note-{last}")
    assert phone.js(f"document.getElementById('todo-{last}').contains("
                    "document.getElementById('err'))")
    assert phone.js(f"document.querySelector('#form-{last} input[value=rejected]').checked")
    assert phone.js("document.documentElement.scrollWidth") <= 375
    # the outcomes: a group named 初审结果 (a screen reader says what they are about)
    assert phone.js(f"""[...document.querySelectorAll('#form-{last} input[name=outcome]')]
        .map(i => i.closest('fieldset')?.querySelector('legend')?.textContent)""") == \
        ["初审结果", "初审结果"]


def test_the_done_reviews_page_reloads_without_posting_again(phone, hub, live_server):
    ids = open_todos(phone, hub, live_server)
    last = ids[-1]
    phone.tap(f"#form-{last} input[value=rejected]")
    phone.tap(f"#note-{last}")
    phone.send("Input.insertText", {"text": "医疗器械经营许可证已过期"})
    assert submit(phone, f"#form-{last} button") == 200
    assert phone.js("location.pathname + location.search") == f"/todos?done={last}"
    notice = phone.js("document.getElementById('notice').textContent")
    assert notice.startswith("已办结：新客户资质初审：") and notice.endswith("（不通过）")
    assert in_view(phone, "#notice")
    # reloading the page asks nothing and posts nothing: the same page, no error
    since = phone.mark()
    phone.send("Page.reload", {"ignoreCache": True})
    assert phone.wait_loaded(since) == 200
    assert phone.js("document.getElementById('err')") is None
    assert phone.js("document.getElementById('notice').textContent") == notice
    assert phone.js("document.querySelectorAll('#open > li[id]').length") == len(ids) - 1
