"""The staff pages in a real (headless) Chromium at a phone's size, opened as from a push: the
sales manager decides a suspected new customer (search, merge) and the held orders go on; a
rep picks the customer of his held order."""
from __future__ import annotations

import json

import httpx
import pytest
from sqlmodel import select

from api.auth import issue_token
from models import Customer, IntentOrder, SuspectName
from models.db import session_scope
from tests.browser.conftest import PHONE, browser_unavailable
from tests.support import order_payload, post_order, run_pending

_why_not = browser_unavailable()
pytestmark = [pytest.mark.skipif(_why_not is not None, reason=_why_not or ""),
              pytest.mark.usefixtures("prefect_harness")]

UNKNOWN = "康达新材料"  # nothing on file, nothing in the registry



def submit(hub, live_server, name=UNKNOWN) -> str:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        accepted = post_order(client, order_payload(name=name))
    assert accepted.status_code == 202, accepted.text
    run_pending(hub)
    return accepted.json()["order_id"]


def pushed(hub, key: str) -> dict:
    for path in (hub.settings.data_dir / "pushes").glob("*.json"):
        push = json.loads(path.read_text(encoding="utf-8"))
        if push["key"] == key:
            return push
    raise AssertionError(f"no push {key}")


def customer_id(hub, legal_name: str) -> int:
    with session_scope(hub.db_url) as s:
        return s.exec(select(Customer).where(Customer.legal_name == legal_name)).one().id


def open_from_push(page, link: str, token: str) -> None:
    """Tap the link of a push: the page keeps the token as a cookie and drops it from the
    address."""
    assert page.goto(f"{link}?token={token}") == 200
    assert page.js("location.href") == link           # no token in the address (or history)
    assert page.js("document.cookie") == ""            # the cookie is HttpOnly


def fits_the_phone(page) -> None:
    assert page.js("window.innerWidth") == PHONE["width"]
    width = page.js("({scroll: document.documentElement.scrollWidth, inner: innerWidth})")
    assert width["scroll"] <= width["inner"], width
    overflowing = page.js("""[...document.querySelectorAll('main *')]
        .filter(el => el.getBoundingClientRect().right > innerWidth + 0.5)
        .map(el => el.tagName + '#' + el.id + '.' + el.className)""")
    assert overflowing == []


def search(page, text: str) -> list[str]:
    """Type into the search box and press its button; the names found, once this search has
    answered: the page says 搜索中… from the press until its own answer (an earlier search's
    answer, arriving later, is dropped by the page), so an earlier list still shown is never
    taken for this one's (it would be replaced under a tap)."""
    page.tap("#search")
    page.send("Input.insertText", {"text": text})
    page.tap("#search-btn")
    page.js("""new Promise((ok, fail) => { const t0 = Date.now(); (function check() {
        const msg = document.getElementById('search-msg').textContent;
        if (msg !== '搜索中…' && document.querySelector('#results label.choice')) return ok();
        if (Date.now() - t0 > 15000) return fail(msg);
        setTimeout(check, 50); })(); })""")
    return page.js("[...document.querySelectorAll('#results label.choice b')]"
                   ".map(b => b.textContent)")


def submit_disabled(page) -> bool:
    return page.js("document.getElementById('pick-btn').disabled")


def test_manager_searches_merges_and_the_held_orders_go_on(phone, hub, live_server, tmp_path):
    waiting = [submit(hub, live_server) for _ in range(3)]
    push = pushed(hub, "todo:suspect_customer:suspect:1")   # the manager's to-do
    assert "mgr-east" in push["recipients"]
    link = push["link"]
    assert link == f"{live_server}/customers/suspects/1"

    # without the token (say, the link copied elsewhere) the page asks to open the push again
    assert phone.goto(link) == 401
    assert "请回到企业微信或钉钉，从推送消息中重新打开此链接" in phone.text()

    open_from_push(phone, link, issue_token(hub.settings, "mgr-east"))
    text = phone.text()
    assert UNKNOWN in text and "待经理确认" in text and "王强（mgr-east）" in text
    assert "北京时间" in text and "小时" in phone.js("document.getElementById('time-left').textContent")
    assert all(order_id in text for order_id in waiting)
    assert phone.js("document.getElementById('legal_name').value") == UNKNOWN
    fits_the_phone(phone)
    phone.screenshot(tmp_path / "suspect-page-phone.png")

    # search the customer files (the page's cookie goes with the request) and pick a result
    assert submit_disabled(phone)                       # nothing chosen yet
    found = search(phone, "康达医疗")
    assert "江苏康达医疗设备有限公司" in found
    fits_the_phone(phone)
    kangda = customer_id(hub, "江苏康达医疗设备有限公司")
    phone.tap(f'#results input[value="{kangda}"]')
    assert phone.js(f"document.querySelector('#results input[value=\"{kangda}\"]').checked")
    assert not submit_disabled(phone)
    since = phone.mark()
    phone.tap("#pick-btn")
    assert phone.wait_loaded(since) == 200
    done = phone.text()
    assert "已并入已有客户" in done and "江苏康达医疗设备有限公司" in done
    assert all(order_id in done for order_id in waiting)
    fits_the_phone(phone)
    phone.screenshot(tmp_path / "suspect-merged-phone.png")

    with session_scope(hub.db_url) as s:
        assert s.get(SuspectName, 1).status == "merged"
        assert s.get(SuspectName, 1).decided_by == "mgr-east"
    run_pending(hub)                                    # what the poked dispatcher does
    with session_scope(hub.db_url) as s:
        orders = [s.get(IntentOrder, o) for o in waiting]
        assert {(o.status, o.customer_id) for o in orders} == {("quoted", kangda)}

    # back on the suspect page: decided, nothing left to press
    assert phone.goto(link) == 200
    assert "已处理" in phone.text() and phone.js("document.getElementById('pick-form')") is None


def test_rep_picks_the_customer_of_his_held_order(phone, hub, live_server, tmp_path):
    order_id = submit(hub, live_server)
    push = pushed(hub, f"order-held:{order_id}")
    assert push["recipients"] == ["rep-zhangwei"]
    open_from_push(phone, push["link"], issue_token(hub.settings, "rep-zhangwei"))
    text = phone.text()
    assert order_id in text and "待确认客户" in text
    assert f"客户名称“{UNKNOWN}”未能识别" in phone.js("document.getElementById('reason').textContent")
    assert "江苏康达医疗设备有限公司" in phone.js("document.getElementById('choices').textContent")
    fits_the_phone(phone)
    phone.screenshot(tmp_path / "order-page-phone.png")

    # Enter in the search box searches; it does not send the form
    phone.tap("#search")
    phone.send("Input.insertText", {"text": "仁和"})
    phone.js("window.__stillHere = true")
    phone.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Enter", "code": "Enter",
                                          "windowsVirtualKeyCode": 13, "text": "\r"})
    phone.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Enter", "code": "Enter",
                                          "windowsVirtualKeyCode": 13})
    assert phone.js("window.__stillHere === true")
    phone.js("{const s = document.getElementById('search'); s.value = '';}")
    found = search(phone, "仁和医疗")
    assert found[0] == "浙江仁和医疗器械有限公司"
    renhe = customer_id(hub, "浙江仁和医疗器械有限公司")
    phone.tap(f'#results input[value="{renhe}"]')
    assert not submit_disabled(phone)
    since = phone.mark()
    phone.tap("#pick-btn")
    assert phone.wait_loaded(since) == 200
    done = phone.text()
    assert "已选择客户" in done and "浙江仁和医疗器械有限公司" in done
    assert "已接收，排队处理中" in done
    fits_the_phone(phone)

    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
        assert (order.status, order.customer_id) == ("quoted", renhe)
    # the order page now shows the quote, with its PDF behind the same cookie
    assert phone.goto(push["link"]) == 200
    assert "已报价，待客户签署" in phone.text() and "报价单" in phone.text()
    pdf = phone.js("""fetch(document.getElementById('quote-pdf').href)
        .then(r => r.arrayBuffer().then(b => ({status: r.status, type: r.headers.get('content-type'),
            head: String.fromCharCode(...new Uint8Array(b.slice(0, 4)))})))""")
    assert pdf == {"status": 200, "type": "application/pdf", "head": "%PDF"}
