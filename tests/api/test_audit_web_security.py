"""Security audit of the doors (api/): what a rep opening a pushed link, finance on a revision's
status page, a customer on the signing page and a program calling the JSON meet when
something is off — an internal error, a login run out, a body in the wrong encoding, a
mistyped address. (The earlier review, tests/api/test_audit4_h7_security.py, is not repeated.)"""
from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import COOKIE, _b64, _mac, issue_token
from tests.support import order_payload, order_status, post_order, run_pending

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
HTML = {"Accept": BROWSER}


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None), raise_server_exceptions=False) as c:
        yield c


def login(client, hub, staff_id: str) -> None:
    client.cookies.clear()
    client.cookies.set(COOKIE, issue_token(hub.settings, staff_id))


def expired_cookie(client, hub, staff_id: str) -> None:
    """The cookie a login link left a month ago: its token has expired since."""
    payload = f"{_b64(staff_id.encode())}.{int(dt.datetime(2020, 1, 1).timestamp())}"
    client.cookies.clear()
    client.cookies.set(COOKIE, f"{payload}.{_mac(hub.settings, payload)}")


def bearer(hub, staff_id: str) -> dict:
    return {"Authorization": f"Bearer {issue_token(hub.settings, staff_id)}"}


# --- 1. an internal error's text (SQL and its parameters) on the rep's order page ------------

def _database_refused_the_write(*_args, **_kwargs):
    """What SQLAlchemy raises when PostgreSQL refuses a write (here: its disk is full)."""
    raise sa.exc.OperationalError(
        "UPDATE quote SET pdf_path=%(pdf_path)s, pdf_sha256=%(pdf_sha256)s WHERE quote.id = "
        "%(quote_id)s", {"pdf_path": "/srv/salesops/data/quotes/Q2611-0001.pdf",
                         "pdf_sha256": "ab12", "quote_id": 1},
        Exception("could not extend file \"base/16384/2619\": No space left on device"))


@pytest.mark.usefixtures("prefect_harness")
def test_an_internal_error_is_not_shown_verbatim_on_the_reps_order_page(hub, client,
                                                                       monkeypatch):
    """A step of the order fails on something unforeseen (the database refused a write). The
    rep opens his order page from the push, and the sending system asks for the order's
    progress: both should read that the hub had an internal problem and retries (the details
    are for the engineer, in the log and the Prefect run). Instead the exception's text is
    stored as the order's reason and shown to both: the SQL statement, its parameters (a
    server path) and SQLAlchemy's help link (flows/batch.run_each keeps
    f"{type(exc).__name__}: {exc}" for any unforeseen error)."""
    import flows.order_steps

    monkeypatch.setattr(flows.order_steps, "render_quote_pdf", _database_refused_the_write)
    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    login(client, hub, "rep-zhangwei")
    page = client.get(f"/orders/{oid}", headers=HTML)
    assert page.status_code == 200, page.text
    assert 'id="reason"' in page.text  # the order says why it has not gone on
    progress = order_status(client, oid).json()
    for shown in (page.text, json.dumps(progress, ensure_ascii=False)):
        for internal in ("[SQL:", "UPDATE quote", "/srv/salesops", "sqlalche.me",
                         "OperationalError"):
            assert internal not in shown, (internal, progress["error"])


# --- 2. 重新发送 on finance's status page answers JSON to the browser -------------------------

@pytest.fixture
def september_failed(hub, monkeypatch):
    from tests.api.test_board_settlement_status import september_fails
    from tests.api.test_rebate_board import board_world

    board_world(hub.db_url)
    september_fails(hub, monkeypatch)
    return "/rebates/settlements/2026-09/1"


def test_resending_after_the_login_ran_out_answers_a_login_page_not_json(hub, client,
                                                                         september_failed):
    """Finance opened the status page of a revision whose vouchers failed, and taps 重新发送
    (a form) once the month's login has run out. The confirm form beside it answers the
    Chinese 401 page (open the link again …); 重新发送 answers the raw JSON
    {"error": {"code": "invalid_token", …}} in the phone's browser: the route takes the API's
    `current_staff` dependency, not `staff_for_page` (api/rebates.send_again)."""
    login(client, hub, "finance-01")
    status = client.get(september_failed, headers=HTML)
    assert 'id="send-form"' in status.text
    expired_cookie(client, hub, "finance-01")
    confirm = client.post("/rebates/settlements/2026-10/1/confirm", data={"checked": "yes"},
                          headers=HTML, follow_redirects=False)
    assert confirm.status_code == 401 and confirm.headers["content-type"].startswith("text/html")
    resend = client.post(september_failed + "/send", headers=HTML, follow_redirects=False)
    assert resend.status_code == 401
    assert resend.headers["content-type"].startswith("text/html"), resend.text
    assert "重新打开" in resend.text


def test_a_resend_refused_to_a_browser_is_a_chinese_page(hub, client, september_failed):
    """A manager forwarded the status link and a rep taps 重新发送, or the form is posted from
    another site: the refusal should be a page (as the confirm form's 403 page is), not the
    JSON error object."""
    login(client, hub, "rep-zhangwei")
    refused = client.post(september_failed + "/send", headers=HTML, follow_redirects=False)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html"), refused.text
    login(client, hub, "finance-01")
    foreign = client.post(september_failed + "/send", follow_redirects=False,
                          headers=HTML | {"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert foreign.headers["content-type"].startswith("text/html"), foreign.text


# --- 3. a JSON body not in UTF-8 ----------------------------------------------------------------

def test_a_json_body_in_gbk_is_told_it_must_be_utf8(hub, client):
    """Sales-ops' tool (a Windows program) re-rates a customer with a JSON body encoded as
    GBK, the code page it runs under. The webhook answers such a body 400 `malformed_json` 请求体不是合法
    JSON：须为 UTF-8 编码; PATCH /customers/{id} answers 400 `http_error` 请求无法处理（400）,
    which does not say what is wrong (FastAPI's own body-parsing failure reaches the catch-all
    branch of api/app._http_error)."""
    body = json.dumps({"region": "华南"}, ensure_ascii=False).encode("gbk")
    r = client.patch("/customers/1", content=body,
                     headers=bearer(hub, "ops-01") | {"Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.text
    error = r.json()["error"]
    assert error["code"] != "http_error", error
    assert "UTF-8" in error["message"], error


def test_json_nested_past_the_parsers_depth_is_told_so(hub, client):
    """A program posts a preview whose body is nested deeper than the parser goes: the
    webhook says 请求体不是合法 JSON：嵌套层数过多; the preview says only 请求无法处理（400）."""
    r = client.post("/rebates/preview", content=b"[" * 100_000,
                    headers=bearer(hub, "ops-01") | {"Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert r.json()["error"]["code"] != "http_error", r.text


# --- 4. the customer's signing link: a page for the customer --------------------------------

def test_a_cut_off_signing_address_speaks_to_the_customer_not_to_staff(client):
    """The quote mail is plain text and the customer's mail program wraps the long link after
    /sign/, so the tap opens https://hub/sign/ without its token. He reads 页面不存在 and
    请回到企业微信或钉钉，从推送消息中重新打开此链接 — the staff pages' advice (api/app._http_error
    answers every browser's 404 with staff_message); a customer has neither and no push. The
    signing page's own 404 (a wrong token) says 请核对链接或联系您的销售顾问: that is his page."""
    r = client.get("/sign/", headers=HTML)
    assert r.status_code == 404
    assert "企业微信" not in r.text and "钉钉" not in r.text
    assert "销售顾问" in r.text
