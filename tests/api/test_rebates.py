"""Rebates through the API: the preview at order entry (the 12.5 % / +2.3 points example),
publishing a policy, the board and its access rules, drill-down to orders, customer and
policy text, finance's confirmation."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from api.auth import issue_token
from flows import rebate_board
from flows.hub import current_hub
from flows.settlement import settle_month
from models import Customer, IntentOrder, OrderRebate, Product, set_clock
from models.db import session_scope
from tests.rebate_support import clock_from, customer_id, invoice, publish, signed_order
from tests.support import SENDER, order_status

D = dt.date
POLICY = """
code: T-PREVIEW
name: 测试监护返利政策
effective_from: 2026-10-01
text: 第一条 月度阶梯：当月监护产品线销售额5万元以下10.2%，5万元及以上10%。第二条 按期回款奖励2.5%。
rules:
  - id: month-tier
    name: 月度阶梯
    clause: 第一条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers:
      - {from: 0, to: 50000, rate: 10.2%}
      - {from: 50000, rate: 10%}
    priority: 10
    stacking: stack
  - id: payment-bonus
    name: 按期回款奖励
    clause: 第二条
    applies_to:
      product_lines: [监护]
      payment_rate: {min: 90%, no_history: fail}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2.5%}]
    priority: 5
    stacking: stack
"""


def token(hub, staff_id):
    return {"Authorization": f"Bearer {issue_token(hub.settings, staff_id)}"}


@pytest.fixture
def world(hub):
    """October: 康达 (华东, rep 张伟) 3 × M8 = 38,400 at 10.2 %, no invoices due before →
    no bonus; an invoice due 15 October paid on time makes November's payment rate 100 %.
    华南医贸 (华南, rep 李娜) orders too."""
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    huanan = customer_id(hub.db_url, "广州华南医药贸易有限公司")
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 3)])
    o2 = signed_order(hub.db_url, huanan, D(2026, 10, 11), [("MON-M12", 1)], rep_id="rep-lina")
    invoice(hub.db_url, kangda, D(2026, 10, 15), "38400.00", paid=[(D(2026, 10, 14), "38400.00")])
    return {"kangda": kangda, "huanan": huanan, "o1": o1, "o2": o2}


def test_preview_shows_rate_clause_inputs_and_change_against_last_month(hub, client, world):
    body = {"customer_id": world["kangda"], "order_date": "2026-11-20",
            "lines": [{"sku": "MON-M8", "quantity": 5}]}
    r = client.post("/rebates/preview", json=body, headers=token(hub, "rep-zhangwei"))
    assert r.status_code == 200, r.text
    preview = r.json()
    # 64,000 ≥ 50,000 → 10 %; payment rate 100 % ≥ 90 % → + 2.5 % = 12.5 % = 8,000.00;
    # last month 38,400 at 10.2 % (no invoice was due before October: no bonus)
    assert preview["rate"] == "0.125000" and preview["amount"] == "8000.00"
    assert preview["product_lines"][0]["sentence"] == "本次订单返利比例：12.5%，较上月提升2.3个百分点"
    rules = {x["rule_id"]: x for x in preview["rules"]}
    assert rules["month-tier"]["policy_version"] == 1 and rules["month-tier"]["clause"] == "第一条"
    assert rules["payment-bonus"]["inputs"]["payment_rate"].startswith("1")
    # just under the threshold: an unpaid 4,269.04 due 20 October makes it
    # 38,400 ÷ 42,669.04 = 89.995 %, shown rounded down as 89.99 % → no bonus, and the reason says so
    invoice(hub.db_url, world["kangda"], D(2026, 10, 20), "4269.04")
    r = client.post("/rebates/preview", json=body, headers=token(hub, "rep-zhangwei"))
    preview = r.json()
    assert preview["rate"] == "0.100000"
    skipped = {x["rule_id"]: x for x in preview["skipped"]}
    assert "89.99%" in " ".join(skipped["payment-bonus"]["reasons"])
    assert "90%" in " ".join(skipped["payment-bonus"]["reasons"])


def test_preview_refuses_bad_input(hub, client, world):
    auth = token(hub, "rep-zhangwei")
    r = client.post("/rebates/preview", json={"customer_id": 99999, "lines": [
        {"sku": "MON-M8", "quantity": 1}]}, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_customer"
    r = client.post("/rebates/preview", json={"customer_id": world["kangda"], "lines": [
        {"sku": "NOPE", "quantity": 1}]}, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_sku"
    r = client.post("/rebates/preview", json={"customer_id": world["kangda"], "lines": [
        {"sku": "MON-M8", "quantity": 1.5}]}, headers=auth)
    assert r.status_code == 422
    for odd in ("NaN", "Infinity"):
        r = client.post("/rebates/preview", json={"customer_id": world["kangda"], "lines": [
            {"sku": "MON-M8", "quantity": 1, "unit_price": odd}]}, headers=auth)
        assert r.status_code == 422
        assert r.json()["error"]["details"][0]["message"] == "应为有限的数字（不能是 NaN 或 Infinity）"
    assert client.post("/rebates/preview", json={}).status_code == 401


def test_publishing_through_the_api_names_every_bad_field(hub, client):
    bad = POLICY.replace("tiers: [{from: 0, rate: 2.5%}]", "tires: [{from: 0, rate: 250%}]")
    r = client.post("/rebates/policies", content=bad.encode(), headers={
        **token(hub, "ops-01"), "Content-Type": "text/plain"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_policy"
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert any("tires" in f for f in fields)
    r = client.post("/rebates/policies", content=POLICY.encode(), headers={
        **token(hub, "rep-zhangwei"), "Content-Type": "text/plain"})
    assert r.status_code == 403
    r = client.post("/rebates/policies", content=POLICY.encode(), headers={
        **token(hub, "ops-01"), "Content-Type": "text/plain"})
    assert r.status_code == 201 and r.json()["version"] == 1
    listed = client.get("/rebates/policies", headers=token(hub, "rep-lina")).json()
    assert [(p["code"], p["version"]) for p in listed] == [("T-PREVIEW", 1)]


def test_board_access_and_drill_down(hub, client, world):
    set_clock(lambda: dt.datetime(2026, 11, 20, 2, tzinfo=dt.timezone.utc))
    settle_month(current_hub(), "2026-10")
    rep = client.get("/rebates/board/data", headers=token(hub, "rep-zhangwei")).json()
    figures = {f["status"]: f for f in rep["figures"]}
    assert figures["pending"]["amount"] == "3916.80"  # 38,400 × 10.2 %
    assert figures["confirmed"]["amount"] == "0.00"
    # a rep sees only his own; a manager his region; finance everything
    assert client.get("/rebates/board/data?rep=rep-lina",
                      headers=token(hub, "rep-zhangwei")).status_code == 403
    east = client.get("/rebates/board/data", headers=token(hub, "mgr-east")).json()
    assert {f["status"]: f["amount"] for f in east["figures"]}["pending"] == "3916.80"
    for query in ("?region=华南", "?rep=rep-lina"):
        r = client.get(f"/rebates/board/data{query}", headers=token(hub, "mgr-east"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    everything = client.get("/rebates/board/data", headers=token(hub, "finance-01")).json()
    pending = {f["status"]: f for f in everything["figures"]}["pending"]
    assert pending["orders"] == 2
    assert client.get("/rebates/board/data", headers=token(hub, "legal-01")).status_code == 403
    # drill down: the figure → its orders → an order's lines, customer and policy text
    orders = client.get("/rebates/board/orders?status=pending",
                        headers=token(hub, "rep-zhangwei")).json()
    assert [o["order_id"] for o in orders["orders"]] == [world["o1"]]
    assert (orders["count"], orders["amount"], orders["offset"]) == (1, "3916.80", 0)
    detail = client.get(f"/rebates/orders/{world['o1']}",
                        headers=token(hub, "rep-zhangwei")).json()
    assert detail["customer"]["legal_name"] == "江苏康达医疗设备有限公司"
    assert detail["lines"][0]["clause"] == "第一条" and detail["lines"][0]["status"] == "pending"
    assert detail["policies"][0]["effective_from"] == "2026-10-01"
    assert "月度阶梯" in detail["policies"][0]["text"]
    assert client.get(f"/rebates/orders/{world['o1']}",
                      headers=token(hub, "rep-lina")).status_code == 403
    # finance confirms: pending becomes confirmed
    r = client.post("/rebates/settlements/2026-10/1/confirm", headers=token(hub, "rep-zhangwei"))
    assert r.status_code == 403
    r = client.post("/rebates/settlements/2026-10/1/confirm", headers=token(hub, "finance-01"))
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    again = client.post("/rebates/settlements/2026-10/1/confirm", headers=token(hub, "finance-01"))
    assert again.status_code == 409
    rep = client.get("/rebates/board/data", headers=token(hub, "rep-zhangwei")).json()
    assert {f["status"]: f["amount"] for f in rep["figures"]} == {
        "confirmed": "3916.80", "pending": "0.00", "expected": "0.00"}


def test_expected_this_month(hub, client, world):
    set_clock(lambda: dt.datetime(2026, 11, 20, 2, tzinfo=dt.timezone.utc))
    # November so far: 5 × M8 = 64,000 → 10 % + 2.5 % (October's invoice was paid on time)
    o3 = signed_order(hub.db_url, world["kangda"], D(2026, 11, 3), [("MON-M8", 5)])
    board = client.get("/rebates/board/data", headers=token(hub, "rep-zhangwei")).json()
    expected = {f["status"]: f for f in board["figures"]}["expected"]
    # October's order is not settled yet either: it is expected now too (3,916.80)
    assert expected["amount"] == "11916.80" and expected["orders"] == 2
    orders = client.get("/rebates/board/orders?status=expected",
                        headers=token(hub, "rep-zhangwei")).json()
    assert {o["order_id"] for o in orders["orders"]} == {o3, world["o1"]}
    assert (orders["count"], orders["amount"]) == (2, "11916.80")


def test_preview_only_for_customers_one_may_see(hub, client, world):
    """The preview shows a customer's volumes and payment rate: the board's rule applies
    (a rep his customers, a manager his region, finance all), and products must be on sale."""
    body = {"customer_id": world["kangda"], "lines": [{"sku": "MON-M8", "quantity": 1}]}
    for who, status in (("rep-zhangwei", 200), ("rep-lina", 403), ("mgr-east", 200),
                        ("mgr-south", 403), ("finance-01", 200), ("legal-01", 403)):
        r = client.post("/rebates/preview", json=body, headers=token(hub, who))
        assert r.status_code == status, (who, r.text)
        if status == 403:
            assert r.json()["error"]["code"] == "forbidden"
            assert "不在您的负责范围内" in r.json()["error"]["message"]
    # a rep who has taken an order from the customer may preview the next one
    signed_order(hub.db_url, world["kangda"], D(2026, 10, 20), [("MON-M8", 1)],
                 rep_id="rep-lina")
    r = client.post("/rebates/preview", json=body, headers=token(hub, "rep-lina"))
    assert r.status_code == 200, r.text
    with session_scope(hub.db_url) as s:
        s.get(Product, "MON-M8").active = False
    r = client.post("/rebates/preview", json=body, headers=token(hub, "rep-zhangwei"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "inactive_sku"
    assert "MON-M8" in r.json()["error"]["message"]


@pytest.mark.parametrize("change, field", [
    ({"customer_id": 2**70}, "body.customer_id"),
    ({"order_date": "0001-01-15"}, "body.order_date"),
    ({"order_date": "9999-12-15"}, "body.order_date"),
    ({"lines": [{"sku": "MON-M8", "quantity": 0}]}, "body.lines.0.quantity"),
])
def test_out_of_range_preview_input_is_a_422_naming_the_field(hub, client, world, change,
                                                              field):
    body = {"customer_id": world["kangda"], "lines": [{"sku": "MON-M8", "quantity": 1}],
            **change}
    r = client.post("/rebates/preview", json=body, headers=token(hub, "rep-zhangwei"))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request" and field in error["message"]
    [detail] = error["details"]
    assert detail["field"] == field and re.search(r"[\u4e00-\u9fff]", detail["message"])


def test_board_orders_refuse_impossible_months_and_offsets(hub, client, world):
    auth = token(hub, "finance-01")
    for query in ("month=2026-13", "month=2026-00", "offset=100000000000000000000",
                  "offset=-1", "limit=0"):
        r = client.get(f"/rebates/board/orders?status=pending&{query}", headers=auth)
        assert r.status_code == 422, (query, r.text)
        assert r.json()["error"]["code"] == "invalid_request"


def test_an_orders_progress_shows_its_rebate_only_to_who_may_see_it(hub, client, world):
    with session_scope(hub.db_url) as s:
        s.add(OrderRebate(order_id=world["o1"], rate="0.102", amount="3916.80",
                          sentence="本次订单返利比例：10.2%（预计返利 ¥3,916.80）", detail="{}",
                          computed_at=dt.datetime(2026, 10, 10, tzinfo=dt.timezone.utc)))
        s.get(IntentOrder, world["o1"]).sender_id = SENDER  # as if the test portal sent it
    url = f"/orders/{world['o1']}"
    sent = order_status(client, world["o1"])
    assert sent.status_code == 200 and sent.json()["rebate"] is None  # the sender: no rebate
    for who, sees in (("rep-zhangwei", True), ("mgr-east", True), ("finance-01", True),
                      ("legal-01", False)):
        rebate = client.get(url, headers=token(hub, who)).json()["rebate"]
        assert (rebate is not None) is sees, who
        if sees:
            assert rebate["amount"] == "3916.80"
        page = client.get(url, headers={**token(hub, who), "Accept": "text/html"}).text
        assert ("返利预估" in page and "预计返利 ¥3,916.80" in page) is sees, who
    for who in ("rep-lina", "mgr-south"):  # not theirs to open: no progress, no rebate
        refused = client.get(url, headers=token(hub, who))
        assert refused.status_code == 403 and "3916.80" not in refused.text, who
        page = client.get(url, headers={**token(hub, who), "Accept": "text/html"}).text
        assert "返利预估" not in page and "3,916.80" not in page, who
    bad = client.get(url, headers={"Authorization": "Bearer forged.1.x"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_token"


def test_an_order_opens_as_its_figures_count_it_after_the_customer_moves(hub, client, world):
    """Lines keep the region they were settled under: the manager whose figure lists the
    order opens it; the new region's manager sees the customer but not the old lines."""
    set_clock(lambda: dt.datetime(2026, 11, 20, 2, tzinfo=dt.timezone.utc))
    settle_month(current_hub(), "2026-10")
    with session_scope(hub.db_url) as s:
        s.get(Customer, world["kangda"]).region = "华南"
    east = client.get("/rebates/board/orders?status=pending", headers=token(hub, "mgr-east"))
    assert [o["order_id"] for o in east.json()["orders"]] == [world["o1"]]
    detail = client.get(f"/rebates/orders/{world['o1']}", headers=token(hub, "mgr-east"))
    assert detail.status_code == 200 and [ln["amount"] for ln in detail.json()["lines"]] == [
        "3916.80"]
    south = client.get(f"/rebates/orders/{world['o1']}", headers=token(hub, "mgr-south"))
    assert south.status_code == 200 and south.json()["lines"] == []
    lina = client.get(f"/rebates/orders/{world['o1']}", headers=token(hub, "rep-lina"))
    assert lina.status_code == 403


def test_a_published_version_reads_back_with_its_document(hub, client):
    r = client.post("/rebates/policies", content=POLICY.replace("[监护]", "[监护仪]", 1),
                    headers={**token(hub, "ops-01"), "Content-Type": "text/plain"})
    assert r.status_code == 201, r.text
    [warning] = r.json()["warnings"]  # a product line nobody sells: published, with a warning
    assert "监护仪" in warning["message"] and "监护" in warning["message"]
    latest = client.get("/rebates/policies/T-PREVIEW", headers=token(hub, "rep-zhangwei"))
    assert latest.status_code == 200 and latest.json()["version"] == 1
    assert latest.json()["document"] == POLICY.replace("[监护]", "[监护仪]", 1)
    assert client.get("/rebates/policies/T-PREVIEW/1", headers=token(hub, "rep-zhangwei")
                      ).json()["sha256"] == latest.json()["sha256"]
    missing = client.get("/rebates/policies/T-PREVIEW/2", headers=token(hub, "rep-zhangwei"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_policy"
    assert client.get("/rebates/policies/T-PREVIEW/0",
                      headers=token(hub, "rep-zhangwei")).status_code == 422
    assert client.get("/rebates/policies/T-PREVIEW").status_code == 401


def test_expected_includes_last_month_until_it_is_settled(hub, client, world):
    """On 3 January the December order is not settled yet: it is expected (to be settled in
    December's run), not lost between the quarters; once December is settled it is pending."""
    dec = signed_order(hub.db_url, world["kangda"], D(2026, 12, 10), [("MON-M8", 1)])
    clock_from(D(2027, 1, 3))
    auth = token(hub, "rep-zhangwei")
    expected = client.get("/rebates/board/orders?status=expected", headers=auth).json()
    months = {o["order_id"]: o["months"] for o in expected["orders"]}
    assert months[dec] == ["2026-12"] and months[world["o1"]] == ["2026-12"]
    settle_month(current_hub(), "2026-12")
    rebate_board._EXPECTED.clear()
    after = client.get("/rebates/board/orders?status=expected", headers=auth).json()
    assert after["orders"] == []
    pending = client.get("/rebates/board/orders?status=pending", headers=auth).json()
    assert {o["order_id"] for o in pending["orders"]} == {dec, world["o1"]}


def test_finance_narrows_to_a_rep_whatever_region_is_picked_and_unknown_regions_are_refused(
        hub, client, world):
    set_clock(lambda: dt.datetime(2026, 11, 20, 2, tzinfo=dt.timezone.utc))
    settle_month(current_hub(), "2026-10")
    auth = token(hub, "finance-01")
    both = client.get("/rebates/board/data?rep=rep-zhangwei&region=华南", headers=auth).json()
    alone = client.get("/rebates/board/data?rep=rep-zhangwei", headers=auth).json()
    assert both["figures"] == alone["figures"] and both["scope"]["label"] == "张伟的返利"
    assert {f["status"]: f["amount"] for f in alone["figures"]}["pending"] == "3916.80"
    mars = client.get("/rebates/board/data?region=火星", headers=auth)
    assert mars.status_code == 404 and mars.json()["error"] == {
        "code": "unknown_region", "message": "没有名为“火星”的大区"}


def test_an_orders_rebate_is_computed_once_and_keeps_its_amount_on_a_retry(hub, world):
    """The quote was rendered with the rebate: a retry of the order's steps, after another
    order of the customer moved the tier, keeps it."""
    from flows.rebate_preview import preview_for_order

    order = signed_order(hub.db_url, world["kangda"], D(2026, 11, 20), [("MON-M8", 3)])
    preview_for_order(current_hub(), order)
    with session_scope(hub.db_url) as s:
        first = s.get(OrderRebate, order)
        s.expunge(first)
    signed_order(hub.db_url, world["kangda"], D(2026, 11, 20), [("MON-M12", 2)])
    preview_for_order(current_hub(), order)
    with session_scope(hub.db_url) as s:
        again = s.get(OrderRebate, order)
        assert (again.rate, again.amount, again.sentence, again.computed_at) == (
            first.rate, first.amount, first.sentence, first.computed_at)


def test_a_long_rebate_sentence_keeps_its_amount():
    from types import SimpleNamespace

    from flows.rebate_preview import SENTENCE_MAX, rebate_sentence

    many = SimpleNamespace(rules=[object()], sentence="；".join(
        f"【产品线{i}】本次订单返利比例：12.5%，较上月提升2.3个百分点" for i in range(12)),
        amount=Decimal("4800"))
    text = rebate_sentence(many)
    # shortened by whole product lines (tests/unit/test_audit5_rebates_quote_and_rates.py)
    assert len(text) <= SENTENCE_MAX and text.endswith("个百分点…（预计返利 ¥4,800.00）")


def test_an_orders_rebate_page_shows_the_policys_rate_not_due_over_basis(hub, client, world):
    """99.99 at 10.2 % is due 10.20 (rounded to the fen): an effective 10.2010 %. The order's
    page states the rate its explanation gives, settled or still expected."""
    odd = signed_order(hub.db_url, world["kangda"], D(2026, 10, 12), [("MON-M8", 1, "99.99")])
    set_clock(lambda: dt.datetime(2026, 10, 20, 2, tzinfo=dt.timezone.utc))
    rebate_board._EXPECTED.clear()
    for settled in (False, True):
        if settled:
            set_clock(lambda: dt.datetime(2026, 11, 20, 2, tzinfo=dt.timezone.utc))
            settle_month(current_hub(), "2026-10")
        detail = client.get(f"/rebates/orders/{odd}", headers=token(hub, "rep-zhangwei")).json()
        line = next(ln for ln in detail["lines"] if ln["clause"] == "第一条")
        assert line["status"] == ("pending" if settled else "expected")
        assert (line["amount"], line["policy_rate"]) == ("10.20", "0.102")
        assert Decimal(line["rate"]).quantize(Decimal("0.000001")) == Decimal("0.102010")
        page = client.get(f"/rebates/orders/{odd}",
                          headers={**token(hub, "rep-zhangwei"), "Accept": "text/html"}).text
        assert "<dt>比例</dt><dd>10.2%</dd>" in page and "10.201%" not in page
