"""The rebate board against what a person can type or what the data can become: a NUL in
an asked-for rep, region or order (PostgreSQL refuses such a text: an error, not "nobody"),
the reused "expected" figures of a long-running server, a policy version that a later one
replaced before it began, the first days of a month (Beijing time) before last month is
settled, and claw-backs of orders the rep's recent orders or the region's customers no
longer reach. The world and its money: tests/board_support.py."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
import html
import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from flows import rebate_board
from flows.hub import current_hub
from flows.rebate_board import Scope, expected_lines
from flows.settlement import settle_month
from models import Customer, set_clock
from models.db import get_engine, session_scope
from tests.api.test_rebate_board import bearer, world  # noqa: F401 - a fixture
from tests.api.test_rebate_preview_access import POLICY as FLAT_MONTHLY  # 2 % a month
from tests.board_support import POLICY, at, board_world
from tests.rebate_support import customer_id, publish, return_goods, signed_order

D = dt.date
HTML = {"Accept": "text/html"}


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None),
                    raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def refuses_nul(hub):
    """The database as PostgreSQL is: a parameter holding NUL is an error (psycopg's
    DataError), which SQLite would quietly look up."""
    def check(conn, cursor, statement, parameters, context, executemany):
        rows = parameters if executemany else [parameters]
        for row in rows:
            values = row.values() if isinstance(row, dict) else row or ()
            if any(isinstance(v, str) and "\x00" in v for v in values):
                raise ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes")

    engine = get_engine(hub.db_url)
    sa.event.listen(engine, "before_cursor_execute", check)
    yield
    sa.event.remove(engine, "before_cursor_execute", check)


def test_a_nul_in_an_asked_for_rep_region_or_order_is_refused_not_a_500(
        hub, client, world, refuses_nul):
    for who, query, status, code, why in (
            ("finance-01", "rep=rep%00x", 404, "unknown_rep", "没有编号为 rep\\x00x 的销售"),
            ("finance-01", "region=%E5%8D%8E%E4%B8%9C%00", 404, "unknown_region",
             "没有名为“华东\\x00”的大区"),
            ("mgr-east", "rep=rep-zhangwei%00", 403, "forbidden",
             "rep-zhangwei\\x00不在华东大区")):
        for url in ("/rebates/board/data", "/rebates/board/orders?status=pending",
                    f"/rebates/orders/{world['o1']}"):
            r = client.get(f"{url}{'&' if '?' in url else '?'}{query}", headers=bearer(hub, who))
            assert r.status_code == status, (who, url, query, r.text)
            assert r.json()["error"] == {"code": code, "message": why}
        page = client.get(f"/rebates/board?{query}", headers=bearer(hub, who) | HTML)
        assert page.status_code == status and html.escape(why) in page.text
    r = client.get("/rebates/orders/IOH%00X", headers=bearer(hub, "finance-01"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_order"
    page = client.get("/rebates/orders/IOH%00X", headers=bearer(hub, "finance-01") | HTML)
    assert page.status_code == 404 and "意向单不存在" in page.text
    # the ordinary addresses still answer
    assert client.get("/rebates/board/data?rep=rep-zhangwei",
                      headers=bearer(hub, "finance-01")).status_code == 200


def test_expected_figures_of_the_past_are_forgotten(hub, world, monkeypatch):
    """Each new settlement line or policy version makes a new cache key: the old entry of the
    same scope can never be read again, nor can one past its time; a server running for
    months must not keep them all."""
    zhang = Scope("rep-zhangwei", None, "张伟的返利")
    south = Scope(None, "华南", "华南大区返利")
    expected_lines(hub.db_url, zhang)
    expected_lines(hub.db_url, south)
    assert len(rebate_board._EXPECTED) == 2
    publish(hub.db_url, POLICY.replace("effective_from: 2026-09-01",
                                       "effective_from: 2026-11-15"))  # a new stamp
    again = expected_lines(hub.db_url, zhang)
    assert [d.policy_version for _, d in again] == [1]  # 3 November: still version 1
    kept = {k[1] for k in rebate_board._EXPECTED}
    assert kept == {zhang.key, south.key} and len(rebate_board._EXPECTED) == 2
    # once the TTL has passed, storing anything drops what expired
    clock = rebate_board.time.monotonic() + rebate_board.EXPECTED_TTL + 1
    monkeypatch.setattr(rebate_board.time, "monotonic", lambda: clock)
    expected_lines(hub.db_url, Scope("rep-lina", None, "李娜的返利"))
    assert {k[1] for k in rebate_board._EXPECTED} == {"rep-lina|*"}


def test_a_version_replaced_before_it_began_does_not_read_as_in_force(hub, client, world):
    """Version 3 (from 15 November) paid the order of 16 November in November's settlement;
    then version 4 is back-dated to 10 November, so version 3 never governs any order. The
    order's page shows version 3's text (its line was computed with it) and says it was
    replaced, instead of an open-ended validity."""
    v3 = POLICY.replace("effective_from: 2026-09-01", "effective_from: 2026-11-15") \
        .replace("5万元以下按10.2%返利", "5万元以下按12%返利").replace("rate: 10.2%", "rate: 12%")
    publish(hub.db_url, v3)
    late = signed_order(hub.db_url, world["kangda"], D(2026, 11, 16), [("MON-M8", 1)])
    at(D(2026, 12, 5))
    settle_month(current_hub(), "2026-11")
    publish(hub.db_url, v3.replace("effective_from: 2026-11-15", "effective_from: 2026-11-10")
            .replace("rate: 12%", "rate: 11%"))
    detail = client.get(f"/rebates/orders/{late}", headers=bearer(hub, "rep-zhangwei")).json()
    # December's settlement will correct it under version 4 (11 %: 1,408.00 − 1,536.00)
    assert [(ln["status"], ln["policy_version"], ln["amount"]) for ln in detail["lines"]] == [
        ("pending", 3, "1536.00"), ("expected", 4, "-128.00")]
    assert [(p["version"], p["effective_from"], p["effective_to"], p["superseded"])
            for p in detail["policies"]] == [(3, "2026-11-15", None, True),
                                            (4, "2026-11-10", None, False)]
    page = client.get(f"/rebates/orders/{late}", headers=bearer(hub, "rep-zhangwei") | HTML)
    shown = html.unescape(re.sub(r"<[^>]+>", "", page.text))
    assert "有效期：原定从 2026-11-15 起（未设截止日期）；已被后续版本取代，现不适用于任何订单" \
        in shown
    assert "5万元以下按12%返利" in shown and "有效期：从 2026-11-10 起（未设截止日期）" in shown
    # a version in force reads as before, with the dates it governs now
    nov = client.get(f"/rebates/orders/{world['nov']}", headers=bearer(hub, "rep-zhangwei"))
    [v1] = nov.json()["policies"]
    assert (v1["effective_from"], v1["effective_to"], v1["superseded"]) == (
        "2026-09-01", "2026-11-09", False)


def test_on_the_first_of_the_month_last_months_orders_are_expected_in_last_months_run(
        hub, client, world):
    """Midnight in Beijing is 16:00 UTC. From 1 December until November is settled on the
    5th, the November order is expected in November's settlement (which pays it), not in
    December's; its amount, and the figure, stay the same, and November's run then pays
    exactly that."""
    rep = bearer(hub, "rep-zhangwei")
    for utc, today in ((dt.datetime(2026, 11, 30, 15, 59, tzinfo=dt.UTC), "2026-11-30"),
                       (dt.datetime(2026, 11, 30, 16, 1, tzinfo=dt.UTC), "2026-12-01")):
        set_clock(lambda utc=utc: utc)
        rebate_board._EXPECTED.clear()
        data = client.get("/rebates/board/data", headers=rep).json()
        assert data["today"] == today
        assert {f["status"]: f["amount"] for f in data["figures"]}["expected"] == "1305.60"
        orders = client.get("/rebates/board/orders?status=expected", headers=rep).json()
        assert [(o["order_id"], o["amount"], o["months"]) for o in orders["orders"]] == [
            (world["nov"], "1305.60", ["2026-11"])], today
        page = client.get(f"/rebates/orders/{world['nov']}", headers=rep | HTML).text
        assert "尚未结算（预计计入2026年11月结算）" in page, today
    at(D(2026, 12, 5))
    settle_month(current_hub(), "2026-11")
    rebate_board._EXPECTED.clear()
    pending = client.get("/rebates/board/orders?status=pending&month=2026-11",
                         headers=rep).json()
    assert [(o["order_id"], o["amount"]) for o in pending["orders"]] == [
        (world["nov"], "1305.60")]
    assert client.get("/rebates/board/orders?status=expected", headers=rep).json()[
        "orders"] == []


def test_a_return_of_an_old_order_claws_back_on_its_reps_expected_figure(hub, client):
    """June 2025's order of 仁和 (张伟) was paid; 仁和 ordered nothing since. Its whole return
    in November 2026 claws the rebate back: expected on the rep's board as on finance's."""
    publish(hub.db_url, POLICY.replace("effective_from: 2026-09-01",
                                       "effective_from: 2025-01-01"))
    renhe = customer_id(hub.db_url, "浙江仁和医疗器械有限公司")
    june = signed_order(hub.db_url, renhe, D(2025, 6, 10), [("MON-M8", 2)])
    at(D(2025, 7, 5))
    settle_month(current_hub(), "2025-06")  # 25,600.00 × 10.2 % = 2,611.20
    at(D(2026, 11, 20))
    return_goods(hub.db_url, june, 1, 2, D(2026, 11, 18))
    for who in ("finance-01", "rep-zhangwei", "mgr-east"):
        expect_clawback(client, bearer(hub, who), "", june, "-2611.20")


def test_a_claw_back_under_the_region_it_was_paid_in_shows_on_that_regions_board(
        hub, client):
    """仁和 (华东) was paid for October under a rule for 华东 only, then moved to 华南: when
    November's return touches its bucket the rule no longer applies and everything paid is
    clawed back under 华东, where it was paid; 华东's board expects it, though 仁和 is not
    a 华东 customer any more."""
    october = paid_in_the_east_then_moved_south(hub, POLICY.replace(
        "applies_to: {product_lines: [监护]}", "applies_to: {product_lines: [监护], regions: [华东]}"))
    for who, query in (("finance-01", ""), ("mgr-east", ""), ("finance-01", "region=华东")):
        expect_clawback(client, bearer(hub, who), query, october, "-2611.20")
    assert client.get("/rebates/board/orders?status=expected",
                      headers=bearer(hub, "mgr-south")).json()["count"] == 0


def paid_in_the_east_then_moved_south(hub, policy: str) -> str:
    """仁和's October order of 2 × M8 paid 2,611.20 under 华东; then 仁和 moves to 华南 and
    returns one unit on 18 November (today 20 November). Returns the order's id."""
    publish(hub.db_url, policy)
    renhe = customer_id(hub.db_url, "浙江仁和医疗器械有限公司")
    october = signed_order(hub.db_url, renhe, D(2026, 10, 10), [("MON-M8", 2)])
    at(D(2026, 11, 5))
    settle_month(current_hub(), "2026-10")
    with session_scope(hub.db_url) as s:
        s.get(Customer, renhe).region = "华南"
    at(D(2026, 11, 20))
    return_goods(hub.db_url, october, 1, 1, D(2026, 11, 18))
    return october


def test_a_partial_claw_back_is_booked_where_it_was_paid(hub, client):
    """仁和 was paid for October under 华东, then moved to 华南; November's return of half the
    order takes half back. Money taken back reverses a payment: it is booked to the rep and
    region that were paid (华东's figures and vouchers), not to the customer's region now."""
    october = paid_in_the_east_then_moved_south(hub, POLICY)
    expect_clawback(client, bearer(hub, "mgr-east"), "", october, "-1305.60")
    assert client.get("/rebates/board/orders?status=expected",
                      headers=bearer(hub, "mgr-south")).json()["count"] == 0
    at(D(2026, 12, 5))
    result = settle_month(current_hub(), "2026-11")
    with get_engine(hub.db_url).connect() as conn:
        booked = conn.execute(sa.text(
            "SELECT kind, region, amount FROM rebate_line WHERE order_id = :o AND month = "
            "'2026-11'"), {"o": october}).all()
    assert [(k, r, f"{float(a):.2f}") for k, r, a in booked] == [("clawback", "华东", "-1305.60")]
    assert result.lines == 1

def expect_clawback(client, auth: dict, query: str, order_id: str, amount: str) -> None:
    r = client.get(f"/rebates/board/orders?status=expected&{query}", headers=auth).json()
    assert (r["count"], r["amount"], [o["order_id"] for o in r["orders"]]) == (
        1, amount, [order_id]), (auth, query, r)
    figures = client.get(f"/rebates/board/data?{query}", headers=auth).json()["figures"]
    assert {f["status"]: f["amount"] for f in figures}["expected"] == amount


def test_board_addresses_take_ascii_digits_only_and_expected_takes_no_month(hub, client):
    """`offset=１` (full-width) or a month in Arabic-Indic digits is not read as a number;
    `status=expected` has no months to pick from, so a month is refused, not ignored."""
    board_world(hub.db_url)
    auth = bearer(hub, "finance-01")
    r = client.get("/rebates/board/orders?status=pending&month=２０２６-10", headers=auth)
    assert r.status_code == 422
    r = client.get("/rebates/board/orders?status=expected&month=2026-10", headers=auth)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "month"
    page = client.get("/rebates/board/orders/page?status=pending&offset=１", headers=auth | HTML)
    assert page.status_code == 400
    assert client.get("/rebates/board/orders?status=expected", headers=auth).status_code == 200




def test_goods_returned_before_last_month_is_settled_are_not_expected(hub, client):
    """October settled; 康达 orders ¥25,600 on 20 November (2 %: ¥512) and returns all of it
    on 2 December. On 3 December November is not settled yet: its run will pay ¥512 and
    December's claw it back, ¥0 together — the board expects nothing for the order (before:
    ¥512, November's line kept as December's computation, with nothing paid yet, had none).
    The two runs then pay exactly that."""
    at(D(2026, 10, 1))
    publish(hub.db_url, FLAT_MONTHLY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    at(D(2026, 11, 2))
    settle_month(current_hub(), "2026-10", documents=False)
    order = signed_order(hub.db_url, kangda, D(2026, 11, 20), [("MON-M8", 2)])
    at(D(2026, 11, 25))
    rebate_board._EXPECTED.clear()
    finance = bearer(hub, "finance-01")
    figures = client.get("/rebates/board/data", headers=finance).json()["figures"]
    assert {f["status"]: f["amount"] for f in figures}["expected"] == "512.00"

    return_goods(hub.db_url, order, 1, 2, D(2026, 12, 2), number="TH-1")
    at(D(2026, 12, 3))
    rebate_board._EXPECTED.clear()
    for who in ("finance-01", "rep-zhangwei", "mgr-east"):
        figures = client.get("/rebates/board/data", headers=bearer(hub, who)).json()["figures"]
        assert {f["status"]: f["amount"] for f in figures}["expected"] == "0.00", who
        assert client.get("/rebates/board/orders?status=expected", headers=bearer(hub, who)
                          ).json()["orders"] == [], who

    paid = []
    for month, day in (("2026-11", D(2026, 12, 5)), ("2026-12", D(2027, 1, 5))):
        at(day)
        paid.append(settle_month(current_hub(), month, documents=False).total)
    assert paid == [Decimal("512.00"), Decimal("-512.00")]
