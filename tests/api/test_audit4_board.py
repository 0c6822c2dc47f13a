"""Audit round 4 (H5): the rebate board and the staff pages as a rep on a phone, a regional
manager and finance use them. The world and its money are in tests/board_support.py."""
from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from flows import rebate_board
from flows.rebate_board import board, board_scope, order_detail
from models import Staff
from models.db import session_scope
from tests.api.test_rebate_board import HTML, bearer, login, page, world  # noqa: F401


def client_of(hub) -> TestClient:
    return TestClient(create_app(hub.settings, launcher=None), raise_server_exceptions=False)


def test_confirming_a_revision_beyond_any_number_is_refused_not_a_500(hub, world):
    with client_of(hub) as client:
        for revision in ("99999999999999999999", "2147483648", "0"):
            r = client.post(f"/rebates/settlements/2026-10/{revision}/confirm",
                            headers=bearer(hub, "finance-01"))
            assert r.status_code == 422, (revision, r.text)
            assert r.json()["error"]["details"][0]["field"] == "path.revision"
        # the revision that exists is still confirmed
        r = client.post("/rebates/settlements/2026-10/1/confirm",
                        headers=bearer(hub, "finance-01"))
        assert r.status_code == 200 and r.json()["status"] == "confirmed"


def test_a_wrong_drill_down_address_offers_the_way_back_to_the_board(hub, world):
    with client_of(hub) as client:
        login(client, hub, "mgr-east")
        bad = page(client, "/rebates/board/orders/page?status=paid&rep=rep-zhaoliu", 400)
        assert "链接有误" in bad
        assert '<a id="back" href="/rebates/board?rep=rep-zhaoliu">‹ 返回返利看板</a>' in bad
        missing = page(client, "/rebates/orders/IO-NOPE", 404)
        assert "意向单不存在：IO-NOPE" in missing
        assert '<a id="back" href="/rebates/board">‹ 返回返利看板</a>' in missing


def test_the_login_page_says_how_to_get_in_when_the_push_carries_no_token(hub, world):
    """Pushes carry no token: "open the push again" alone leads back to the same page."""
    with client_of(hub) as client:
        text = page(client, "/rebates/board", 401)
        assert "从推送消息中重新打开此链接" in text
        assert "请联系系统管理员获取您的登录链接" in text


def test_an_empty_token_in_the_address_keeps_the_login_cookie(hub, world):
    with client_of(hub) as client:
        login(client, hub, "rep-zhangwei")
        text = page(client, "/rebates/board?token=")
        assert '<h1 id="scope">张伟的返利</h1>' in text


def test_an_orders_page_computes_the_expected_rebate_of_its_customer_only(
        hub, world, monkeypatch):
    """Finance (or a manager) opening one order's page from a link does not wait for the
    whole company's expected month; with the board's figure at hand, that one is used."""
    rebate_board._EXPECTED.clear()
    asked = []
    compute = rebate_board.compute_month

    def counting(db_url, month, customer_ids=None, **kw):
        asked.append(None if customer_ids is None else set(customer_ids))
        return compute(db_url, month, customer_ids=customer_ids, **kw)

    monkeypatch.setattr(rebate_board, "compute_month", counting)
    with session_scope(hub.db_url) as s:
        finance, manager = s.get(Staff, "finance-01"), s.get(Staff, "mgr-east")
    for person in (finance, manager):
        scope = board_scope(hub.db_url, person)
        detail = order_detail(hub.db_url, scope, world["nov"])
        assert [(ln["status"], ln["amount"]) for ln in detail["lines"]] == [
            ("expected", "1305.60")]
        assert asked and all(c == {world["kangda"]} for c in asked), asked
        assert rebate_board._EXPECTED == {}  # one order's figure is not kept as the scope's
        asked.clear()
        # the board's figure of the scope, once computed, is the one the order shows
        board(hub.db_url, scope)
        asked.clear()
        detail = order_detail(hub.db_url, scope, world["nov"])
        assert [ln["amount"] for ln in detail["lines"]] == ["1305.60"] and asked == []
        rebate_board._EXPECTED.clear()


def test_a_post_from_another_site_riding_the_login_cookie_is_refused(hub, world):
    """The staff pages' forms refuse a post another site makes; the JSON doors that take the
    same cookie (finance's confirmation, publishing a policy) refuse it too. A program that
    sends its token, or a post without an Origin, is not a browser riding a cookie."""
    from models import SettlementRun
    from sqlmodel import select

    evil = {"Origin": "https://evil.example.com"}
    with client_of(hub) as client:
        login(client, hub, "finance-01")
        r = client.post("/rebates/settlements/2026-10/1/confirm", headers=evil)
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site", r.text
        assert "来源" in r.json()["error"]["message"]
        with session_scope(hub.db_url) as s:
            run = s.exec(select(SettlementRun).where(SettlementRun.month == "2026-10")).one()
            assert run.status == "draft"
        login(client, hub, "ops-01")
        r = client.post("/rebates/policies", content="code: X\n", headers=evil
                        | {"Content-Type": "text/plain"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site"
        # our own origin, a program's token, no Origin at all: as before
        login(client, hub, "finance-01")
        ours = {"Origin": str(client.base_url).rstrip("/")}
        assert client.post("/rebates/settlements/2026-10/9/confirm",
                           headers=ours).status_code == 404
        client.cookies.clear()
        r = client.post("/rebates/settlements/2026-10/1/confirm",
                        headers=evil | bearer(hub, "finance-01"))
        assert r.status_code == 200 and r.json()["status"] == "confirmed"
