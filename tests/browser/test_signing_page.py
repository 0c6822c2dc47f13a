"""The built-in signing page in a real (headless) Chromium at a phone's size: a customer reads
the quote, ticks consent and signs with a finger; the hub keeps the drawing and queues the
completion exactly once."""
from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import httpx
import pytest
from PIL import Image
from sqlmodel import select

from flows.dispatch import dispatch_pending
from flows.order_steps import signing_link
from models import Customer, InboxEvent, Quote, SigningToken
from models.db import session_scope
from tests.browser.conftest import PHONE, browser_unavailable
from tests.support import InlineLauncher, order_payload, post_order

_why_not = browser_unavailable()
pytestmark = [pytest.mark.skipif(_why_not is not None, reason=_why_not or ""),
              pytest.mark.usefixtures("prefect_harness")]

CONSENT = "我已阅读并同意上述报价单的全部内容，确认以电子签名方式签署，与手写签名具有同等法律效力。"
SIGNER = "顾晓峰"  # the order's contact, prefilled as the signer


@dataclass
class QuoteToSign:
    id: int
    code: str
    total: str
    legal_name: str
    link: str


@pytest.fixture
def quote(hub, live_server) -> QuoteToSign:
    """An intent order posted as a signed webhook to the live server, quoted by the flow."""
    with httpx.Client(base_url=live_server, timeout=30) as client:
        accepted = post_order(client, order_payload())
    assert accepted.status_code == 202, accepted.text
    order_id = accepted.json()["order_id"]
    launcher = InlineLauncher()
    while dispatch_pending(hub.db_url, launcher, batch_size=50):
        pass
    with session_scope(hub.db_url) as s:
        q = s.exec(select(Quote).where(Quote.order_id == order_id)).one()
        customer = s.get(Customer, q.customer_id)
    link = signing_link(hub.settings, q)
    assert link.startswith(f"{live_server}/sign/")
    return QuoteToSign(q.id, q.code, f"¥{q.total_amount:,.2f}", customer.legal_name, link)


# --- helpers ---------------------------------------------------------------------------------

def sign_with_finger(page) -> None:
    """Three strokes across the pad, as a finger would: a looping name and an underline."""
    r = page.rect_of("#pad")
    left, top, w, h = r["left"], r["top"], r["width"], r["height"]

    def at(fx: float, fy: float) -> tuple[float, float]:
        return left + fx * w, top + fy * h

    loop = [at(0.10 + 0.30 * i / 40, 0.50 - 0.25 * math.sin(i / 40 * 3 * math.pi))
            for i in range(41)]
    zigzag = [at(0.45 + 0.04 * i, 0.30 if i % 2 else 0.65) for i in range(10)]
    underline = [at(0.12 + 0.76 * i / 30, 0.82 + 0.03 * math.sin(i / 3)) for i in range(31)]
    for stroke in (loop, zigzag, underline):
        page.swipe(stroke)


def submit_disabled(page) -> bool:
    return page.js("document.getElementById('submit-btn').disabled")


def ink_pixels(png: bytes, dark_below: int = 160) -> int:
    """Visible pixels clearly darker than paper (transparent counts as paper)."""
    with Image.open(io.BytesIO(png)) as img:
        rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    gray = Image.alpha_composite(white, rgba).convert("L")
    return sum(gray.histogram()[:dark_below])


def signing_rows(db_url: str, q: QuoteToSign):
    with session_scope(db_url) as s:
        tokens = s.exec(select(SigningToken).where(SigningToken.quote_id == q.id)).all()
        events = s.exec(select(InboxEvent).where(InboxEvent.source == "esign:builtin",
                                                 InboxEvent.subject_id == q.code)).all()
        status = s.get(Quote, q.id).status
    return tokens, events, status


# JS: draw a few Chinese characters with the page's own font; a missing CJK font renders
# every one as the same empty box ("tofu").
GLYPHS_JS = """(() => {
  const font = getComputedStyle(document.querySelector('h1')).fontFamily;
  const c = document.createElement('canvas'); c.width = 64; c.height = 64;
  const x = c.getContext('2d'); const shapes = [];
  for (const ch of ['江', '苏', '签', '署']) {
    x.clearRect(0, 0, 64, 64); x.font = '48px ' + font; x.fillStyle = '#000';
    x.textBaseline = 'top'; x.fillText(ch, 8, 8);
    const d = x.getImageData(0, 0, 64, 64).data; let bits = '', ink = 0;
    for (let i = 3; i < d.length; i += 4) { const on = d[i] > 127; bits += on ? '1' : '0'; ink += on; }
    shapes.push({bits, ink});
  }
  return {distinct: new Set(shapes.map(s => s.bits)).size, ink: shapes.map(s => s.ink)};
})()"""


# --- tests -----------------------------------------------------------------------------------

def test_page_reads_well_on_a_phone_and_gates_the_submit(phone, quote, tmp_path):
    assert phone.goto(quote.link) == 200
    text = phone.text()
    assert quote.legal_name in text and quote.legal_name == "江苏康达医疗设备有限公司"
    assert quote.code in text
    assert quote.total in text
    assert CONSENT in text
    assert phone.js("document.title") == f"签署报价单 {quote.code}"

    # a phone's viewport, nothing wider than it
    assert phone.js("window.innerWidth") == PHONE["width"]
    assert phone.js("window.devicePixelRatio") == PHONE["deviceScaleFactor"]
    assert phone.js("navigator.maxTouchPoints") > 0
    width = phone.js("({scroll: document.documentElement.scrollWidth, inner: innerWidth})")
    assert width["scroll"] <= width["inner"], width
    overflowing = phone.js("""[...document.querySelectorAll('main *')]
        .filter(el => el.getBoundingClientRect().right > innerWidth + 0.5)
        .map(el => el.tagName + '#' + el.id)""")
    assert overflowing == []
    # Chinese glyphs are real glyphs, not boxes
    glyphs = phone.js(GLYPHS_JS)
    assert glyphs["distinct"] == 4 and min(glyphs["ink"]) > 50, glyphs

    # the button waits for consent, a name and a drawing
    assert phone.js("document.getElementById('signer_name').value") == SIGNER
    assert submit_disabled(phone)
    phone.tap("#consent")
    assert phone.js("document.getElementById('consent').checked")
    assert submit_disabled(phone)                       # nothing drawn yet
    sign_with_finger(phone)
    assert not submit_disabled(phone)
    phone.js("{const n = document.getElementById('signer_name'); n.value = '';"
             " n.dispatchEvent(new Event('input'));}")
    assert submit_disabled(phone)                       # no name
    phone.tap("#signer_name")
    phone.send("Input.insertText", {"text": SIGNER})
    assert not submit_disabled(phone)
    phone.tap("#consent")
    assert submit_disabled(phone)                       # consent withdrawn
    phone.tap("#consent")
    assert not submit_disabled(phone)
    phone.tap("#clear")
    assert submit_disabled(phone)                       # drawing cleared
    assert phone.js("document.getElementById('pad').toDataURL()") == phone.js(
        "(() => {const c = document.createElement('canvas'); const p = document"
        ".getElementById('pad'); c.width = p.width; c.height = p.height;"
        " return c.toDataURL();})()")
    sign_with_finger(phone)
    assert not submit_disabled(phone)

    # screenshots as the phone shows them: the first screen, then scrolled to the button
    top = phone.screenshot(tmp_path / "signing-page-phone.png")
    phone.js("window.scrollTo(0, document.documentElement.scrollHeight)")
    bottom = phone.screenshot(tmp_path / "signing-page-phone-bottom.png", scroll_top=False)
    assert not submit_disabled(phone)                   # scrolling kept the drawing
    for path in (top, bottom):
        with Image.open(path) as img:
            assert img.size == (PHONE["width"] * PHONE["deviceScaleFactor"],
                                PHONE["height"] * PHONE["deviceScaleFactor"])
            gray = img.convert("L")
        # text, the red total, the blue button, the ink: many clearly non-white pixels
        assert sum(gray.histogram()[:200]) > 0.02 * gray.width * gray.height, path
    # the whole page for a reviewer (capturing beyond the viewport resizes it, which wipes
    # the pad: see test_drawing_survives_a_viewport_resize)
    phone.screenshot(tmp_path / "signing-page-full.png", full_page=True)


def canvas_ink(page) -> int:
    data = page.js("document.getElementById('pad').toDataURL('image/png')")
    return ink_pixels(base64.b64decode(data.split(",", 1)[1]))


def test_drawing_survives_a_viewport_resize(phone, quote):
    assert phone.goto(quote.link) == 200
    sign_with_finger(phone)
    phone.tap("#consent")
    assert not submit_disabled(phone) and canvas_ink(phone) > 1000
    # the address bar slides away: the window grows by its height
    phone.send("Emulation.setDeviceMetricsOverride", {**PHONE, "height": PHONE["height"] + 56})
    phone.js("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    assert phone.js("innerHeight") == PHONE["height"] + 56
    assert canvas_ink(phone) > 1000
    assert not submit_disabled(phone)


def test_finger_signature_signs_once(phone, quote, hub, live_server):
    from connectors.esign_builtin import load_signature_capture

    assert phone.goto(quote.link) == 200
    sign_with_finger(phone)
    phone.tap("#consent")
    assert not submit_disabled(phone)
    since = phone.mark()
    phone.tap("#submit-btn")
    assert phone.wait_loaded(since) == 200
    done = phone.text()
    assert "签署成功" in done and quote.code in done

    tokens, events, _ = signing_rows(hub.db_url, quote)
    assert len(tokens) == 1 and tokens[0].used_at is not None
    assert len(events) == 1
    assert events[0].status == "pending" and events[0].event_id == quote.code
    assert f'"signer": "{SIGNER}"' in events[0].payload

    captured = load_signature_capture(hub.settings.data_dir.resolve(), quote.code)
    assert captured is not None
    record, png = captured
    assert record["signer_name"] == SIGNER
    assert "Android" in (record["user_agent"] or "")
    assert record["width"] > PHONE["width"]             # drawn at the phone's 3x density
    assert ink_pixels(png) > 1000

    # the link is single use
    assert phone.goto(quote.link) == 409
    assert "报价单已签署" in phone.text() and quote.code in phone.text()
    # an unknown token
    assert phone.goto(f"{live_server}/sign/{'x' * 43}") == 404
    assert "链接无效" in phone.text()

    tokens, events, _ = signing_rows(hub.db_url, quote)
    assert len(events) == 1 and tokens[0].used_at is not None


def test_blank_signature_is_refused(phone, quote, hub):
    from connectors.esign_builtin import MSG_BLANK, load_signature_capture

    assert phone.goto(quote.link) == 200
    phone.tap("#consent")
    assert submit_disabled(phone)                       # consent and name, but no drawing
    phone.js("window.__stillHere = true")
    since = phone.mark()
    phone.tap("#submit-btn")
    assert phone.js("window.__stillHere === true")      # the disabled button did nothing
    assert not [e for e in phone.cdp.events[since:]
                if e["method"] == "Network.requestWillBeSent"
                and e["params"]["request"]["method"] == "POST"]

    # forced past the page's checks: no signature at all
    since = phone.mark()
    phone.js("{const b = document.getElementById('submit-btn'); b.disabled = false;"
             " document.getElementById('sign-form').submit();}")
    assert phone.wait_loaded(since) == 422
    assert "签名图片格式不正确" in phone.js("document.getElementById('err').textContent")
    assert quote.code in phone.text()                   # the quote page again, with the error

    # forced again: the page's own submit fills in the empty canvas
    phone.tap("#consent")
    assert submit_disabled(phone)
    since = phone.mark()
    phone.js("{const b = document.getElementById('submit-btn'); b.disabled = false; b.click();}")
    assert phone.wait_loaded(since) == 422
    assert phone.js("document.getElementById('err').textContent") == MSG_BLANK

    tokens, events, status = signing_rows(hub.db_url, quote)
    assert len(tokens) == 1 and tokens[0].used_at is None
    assert events == [] and status != "signed"
    assert load_signature_capture(hub.settings.data_dir.resolve(), quote.code) is None
    # and the link still works
    assert phone.goto(quote.link) == 200
