"""Audit round 4: the customer picker on a phone while the rep types Chinese with a pinyin
keyboard. The letters being composed (kang…) are not a customer name: no search may go out
for them; the characters chosen at the end are searched."""
from __future__ import annotations

import pytest

from api.auth import issue_token
from tests.browser.conftest import browser_unavailable
from tests.browser.test_staff_pages import open_from_push, pushed, submit

_why_not = browser_unavailable()
pytestmark = [pytest.mark.skipif(_why_not is not None, reason=_why_not or ""),
              pytest.mark.usefixtures("prefect_harness")]

# counts the searches the picker schedules (its typing pause is a setTimeout) and sends
COUNT = """(() => { window.__timers = 0; window.__queries = [];
  const st = window.setTimeout; window.setTimeout = (fn, ms, ...a) => {
    if (ms === 400) window.__timers++; return st(fn, ms, ...a); };
  const f = window.fetch; window.fetch = (url, ...a) => {
    window.__queries.push(decodeURIComponent(String(url).split('q=')[1] || ''));
    return f(url, ...a); }; })()"""


def test_no_search_goes_out_for_pinyin_being_composed(phone, hub, live_server):
    order_id = submit(hub, live_server)
    push = pushed(hub, f"order-held:{order_id}")
    open_from_push(phone, push["link"], issue_token(hub.settings, "rep-zhangwei"))
    phone.js(COUNT)
    phone.tap("#search")
    for text in ("r", "re", "ren", "ren'h", "ren'he"):
        phone.send("Input.imeSetComposition", {"text": text, "selectionStart": len(text),
                                                "selectionEnd": len(text)})
    assert phone.js("document.getElementById('search').value") == "ren'he"  # composing
    # Enter confirms the keyboard's choice while composing: it is not a search either
    phone.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", "key": "Enter", "code": "Enter",
                                          "windowsVirtualKeyCode": 229})
    assert phone.js("window.__timers") == 0 and phone.js("window.__queries") == []
    phone.send("Input.insertText", {"text": "仁和"})  # the characters chosen: composition ends
    phone.js("""new Promise((ok, fail) => { const t0 = Date.now(); (function check() {
        if (document.querySelector('#results label.choice')) return ok();
        if (Date.now() - t0 > 15000) return fail(document.getElementById('search-msg').textContent);
        setTimeout(check, 50); })(); })""")
    assert phone.js("window.__queries") == ["仁和"]
    names = phone.js("[...document.querySelectorAll('#results label.choice b')]"
                     ".map(b => b.textContent)")
    assert names[0] == "浙江仁和医疗器械有限公司"
