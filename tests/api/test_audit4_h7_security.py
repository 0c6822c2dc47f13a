"""Security review (audit round 4, H7): what a person opening a wrong address, a curious rep or
a page from another site meets at the doors."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import COOKIE, _b64, _mac, issue_token

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
HTML = {"Accept": BROWSER}


@pytest.fixture
def client(hub):
    app = create_app(hub.settings, launcher=None)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def login(client, hub, staff_id: str = "rep-zhangwei") -> None:
    client.cookies.clear()
    client.cookies.set(COOKIE, issue_token(hub.settings, staff_id))


@pytest.mark.parametrize("path", ["/rebates/board/order", "/customer/suspects/1",
                                  "/rebates/orders/IO261126-AAAA/extra"])
def test_a_wrong_address_opened_in_a_browser_answers_a_chinese_page(client, hub, path):
    login(client, hub)
    r = client.get(path, headers=HTML)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "Not Found" not in r.text and "页面" in r.text


def test_an_unknown_route_answers_the_api_error_shape_in_chinese(client, hub):
    r = client.get("/rebates/unknown", headers={"Accept": "application/json"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert "接口" in r.json()["error"]["message"]


# --- a safety net under the escaping: the staff pages run only their own scripts ------------

def _inline(page: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.S)


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_staff_pages_allow_only_their_own_inline_script_and_style(client, hub):
    """A value that ever escaped the escaping could not run a script, load one from
    elsewhere, send a form or a fetch to another site, or frame the page: the policy names
    the page's own inline script and style by their hashes."""
    login(client, hub, "mgr-east")
    suspect = client.get("/customers/suspects/1", headers=HTML)  # 404 page: style only
    board = client.get("/rebates/board", headers=HTML)
    for r in (suspect, board):
        policy = r.headers.get("content-security-policy", "")
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
        assert directives.get("default-src") == "'none'"
        assert directives.get("base-uri") == "'none'"
        assert directives.get("form-action") == "'self'"
        assert directives.get("frame-ancestors") == "'none'"
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        for style in _inline(r.text, "style"):
            assert _sha256(style) in directives["style-src"].split()
        for code in _inline(r.text, "script"):
            assert _sha256(code) in directives["script-src"].split()


def test_the_customer_picker_script_is_allowed_on_the_pages_that_carry_it():
    from api.pages import STAFF_HEADERS
    from api.staff_pages import PICKER

    code = PICKER.removeprefix("<script>").removesuffix("</script>")
    script_src = next(d for d in STAFF_HEADERS["Content-Security-Policy"].split(";")
                      if d.strip().startswith("script-src"))
    assert _sha256(code) in script_src.split()
    assert "connect-src 'self'" in STAFF_HEADERS["Content-Security-Policy"]


# --- an old login link, opened by someone who is logged in ------------------------------------

def _expired_token(hub, staff_id: str) -> str:
    payload = f"{_b64(staff_id.encode())}.{int(dt.datetime(2020, 1, 1).timestamp())}"
    return f"{payload}.{_mac(hub.settings, payload)}"


@pytest.mark.parametrize("old", ["expired", "forged.123.abc", "removed"])
def test_an_old_login_link_opened_with_a_valid_cookie_opens_the_page(client, hub, old):
    """The administrator sent a new login link after the first expired; the rep taps the old
    one in the chat history: his cookie (from the new link) still logs him in; the page does
    not send him to the administrator again, and the old token leaves the address."""
    token = {"expired": _expired_token(hub, "rep-zhangwei"), "forged.123.abc": old,
             "removed": issue_token(hub.settings, "nobody-here")}[old]
    login(client, hub, "rep-zhangwei")
    r = client.get(f"/rebates/board?token={token}&region=", headers=HTML,
                   follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/rebates/board?region="
    assert "set-cookie" not in r.headers  # the valid cookie stays as it is
    page = client.get(r.headers["location"], headers=HTML)
    assert page.status_code == 200 and "张伟的返利" in page.text


def test_an_old_login_link_without_a_valid_cookie_still_says_the_link_expired(client, hub):
    client.cookies.clear()
    r = client.get(f"/rebates/board?token={_expired_token(hub, 'rep-zhangwei')}", headers=HTML,
                   follow_redirects=False)
    assert r.status_code == 401 and "链接已失效" in r.text
    client.cookies.set(COOKIE, _expired_token(hub, "rep-zhangwei"))
    r = client.get(f"/rebates/board?token={_expired_token(hub, 'rep-zhangwei')}", headers=HTML,
                   follow_redirects=False)
    assert r.status_code == 401 and "链接已失效" in r.text


# --- the page's own origin, however the administrator wrote the public address ---------------

@pytest.mark.parametrize("public", ["https://Hub.Example.com:443/", "https://hub.example.com:443",
                                    "http://hub.example.com:80/salesops"])
def test_a_post_from_the_hubs_own_page_is_not_refused_for_a_default_port_or_case(hub, public):
    """`public_base_url` written with the default port or capitals: the browser names the
    origin without them (https://hub.example.com); the hub's own forms must still post."""
    origin = "http://hub.example.com" if public.startswith("http:") else "https://hub.example.com"
    app = create_app(hub.settings.model_copy(update={"public_base_url": public}), launcher=None)
    with TestClient(app, raise_server_exceptions=False) as c:
        login(c, hub, "mgr-east")
        own = c.post("/rebates/preview", content=b"{}", headers={
            "Origin": origin, "Content-Type": "application/json"})
        assert own.status_code == 422, own.text  # past the door: the body is what is wrong
        other = c.post("/rebates/preview", content=b"{}", headers={
            "Origin": "https://evil.example.com", "Content-Type": "application/json"})
        assert other.status_code == 403 and other.json()["error"]["code"] == "cross_site"
        page = c.post("/customers/suspects/1/decide", data={"action": "merge"},
                      headers={"Origin": origin, "Accept": BROWSER})
        assert page.status_code != 403, page.text


def test_an_origin_of_null_is_refused_even_without_a_public_address(hub):
    app = create_app(hub.settings.model_copy(update={"public_base_url": ""}), launcher=None)
    with TestClient(app, raise_server_exceptions=False) as c:
        login(c, hub, "mgr-east")
        r = c.post("/rebates/preview", content=b"{}", headers={
            "Origin": "null", "Content-Type": "application/json"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site"
