"""Audit of the preview's 较上月 sentence (docs/rebates.md, Preview at order entry) and of
`POST /rebates/preview`'s input handling.

Two tests fail, each a defect found (API error handling; no wrong rate or sentence found):
- test_json_true_is_not_customer_1: `"customer_id": true` previews customer 1 (200);
- test_an_unknown_sku_is_named_in_the_details: the details of `unknown_sku` do not say which
  code (the webhook's do, one detail per code with its `value`).
The rest pass: hand-computed 较上月 cases not covered elsewhere, kept as regression tests."""
from __future__ import annotations

import datetime as dt

import pytest

from api.auth import issue_token
from flows.rebate_preview import ItemIn, preview_items
from models import set_clock
from models.base import SHANGHAI
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"  # tier A, 华东, rep 张伟
RENHE = "浙江仁和医疗器械有限公司"  # tier B, 华东


def policy(code: str, rules: str, effective_from: str = "2026-07-01") -> str:
    return f"code: {code}\nname: 审计政策{code}\neffective_from: {effective_from}\nrules:\n{rules}"


def rule(rid: str, rate_tiers: str, *, lines: str = "[监护]", period: str = "month",
         style: str = "retroactive", priority: int = 10, stacking: str = "stack",
         extra: str = "") -> str:
    return (f"  - id: {rid}\n    clause: 第{priority}条\n"
            f"    applies_to: {{product_lines: {lines}{extra}}}\n"
            f"    measure: amount\n    period: {period}\n    style: {style}\n"
            f"    tiers: {rate_tiers}\n    priority: {priority}\n    stacking: {stacking}\n")


FLAT2 = "[{from: 0, rate: 2%}]"
STEP = "[{from: 0, to: 30000, rate: 1%}, {from: 30000, rate: 3%}]"


def sentence(hub, cid, day, lines):
    """The preview of `lines` [(sku, qty)] for the customer on `day`."""
    return preview_items(hub.db_url, cid, [ItemIn(*ln) for ln in lines], order_date=day)


def token(hub, staff_id):
    return {"Authorization": f"Bearer {issue_token(hub.settings, staff_id)}"}


# ------------------------------------------------------------------ last month's rate

def test_no_order_last_month(hub):
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("a", FLAT2)))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, D(2026, 10, 10), [("PUMP-SP3", 1)])  # another product line
    clock_from(D(2026, 11, 20))
    p = sentence(hub, k, D(2026, 11, 20), [("MON-M8", 1)])
    assert p.sentence == "本次订单返利比例：2%，上月无该产品线订单"


def test_several_product_lines(hub):
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("a", FLAT2) + rule(
        "b", "[{from: 0, rate: 3%}]", lines="[输注]", priority=9)))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, D(2026, 10, 10), [("MON-M8", 1)])
    clock_from(D(2026, 11, 20))
    p = sentence(hub, k, D(2026, 11, 20), [("PUMP-SP3", 1), ("MON-M8", 1)])
    assert p.sentence == ("【输注】本次订单返利比例：3%，上月无该产品线订单；"
                          "【监护】本次订单返利比例：2%，与上月持平")


def test_two_stacking_rules_last_month_one_of_them_only(hub):
    """October: MON-M8×1 12,800 → 1 % (tier) + 2 % (flat) = 3 %. November MON-M8×3 38,400
    → 3 % + 2 % = 5 %: 提升2个百分点."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("a", FLAT2) + rule("t", STEP, priority=9)))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, D(2026, 10, 10), [("MON-M8", 1)])
    clock_from(D(2026, 11, 20))
    p = sentence(hub, k, D(2026, 11, 20), [("MON-M8", 3)])
    assert p.sentence == "本次订单返利比例：5%，较上月提升2个百分点"


def test_exclusive_rule(hub):
    """An exclusive 6 % on MON-M12 beats the 2 % stack rule; October MON-M12 at 6 %,
    November MON-M8 at 2 %: 下降4个百分点."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("a", FLAT2)))
    publish(hub.db_url, policy("P2", "  - id: x\n    clause: 第一条\n"
                               "    applies_to: {skus: [MON-M12]}\n    measure: amount\n"
                               "    period: month\n    style: retroactive\n"
                               "    tiers: [{from: 0, rate: 6%}]\n    priority: 50\n"
                               "    stacking: exclusive\n"))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, D(2026, 10, 10), [("MON-M12", 1)])
    clock_from(D(2026, 11, 20))
    p = sentence(hub, k, D(2026, 11, 20), [("MON-M8", 1)])
    assert p.sentence == "本次订单返利比例：2%，较上月下降4个百分点"


def test_version_superseded_since(hub):
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("a", FLAT2)))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, D(2026, 10, 10), [("MON-M8", 1)])
    clock_from(D(2026, 10, 25))
    publish(hub.db_url, policy("P1", rule("a", "[{from: 0, rate: 3.5%}]"), "2026-11-01"))
    clock_from(D(2026, 11, 20))
    p = sentence(hub, k, D(2026, 11, 20), [("MON-M8", 1)])
    assert p.sentence == "本次订单返利比例：3.5%，较上月提升1.5个百分点"


def test_tier_reached_late_last_month_monthly(hub):
    """October 10-05 12,800 and 10-30 25,600: the month 38,400 ≥ 30,000 → 3 % on both."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("t", STEP)))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, D(2026, 10, 5), [("MON-M8", 1)])
    signed_order(hub.db_url, k, D(2026, 10, 30), [("MON-M8", 2)])
    clock_from(D(2026, 11, 20))
    p = sentence(hub, k, D(2026, 11, 20), [("MON-M8", 1)])
    assert p.sentence == "本次订单返利比例：1%，较上月下降2个百分点"


def test_tier_reached_late_last_month_quarterly(hub):
    """Q4 quarterly: October 12,800 (1 % then), November 25,600 → quarter 38,400 → 3 % for
    November's order as of 11-30. December MON-M8×1 → quarter 51,200 → 3 %: 持平."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("t", STEP, period="quarter")))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, D(2026, 10, 5), [("MON-M8", 1)])
    signed_order(hub.db_url, k, D(2026, 11, 29), [("MON-M8", 2)])
    clock_from(D(2026, 12, 3))
    p = sentence(hub, k, D(2026, 12, 3), [("MON-M8", 1)])
    assert p.sentence == "本次订单返利比例：3%，与上月持平"


def test_first_month_of_a_quarter(hub):
    """Q4: Oct 25,600 + Dec 25,600 = 51,200 → 5 % for December's order; January 12,800 → 2 %."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule(
        "q", "[{from: 0, to: 50000, rate: 2%}, {from: 50000, rate: 5%}]", period="quarter")))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, D(2026, 10, 5), [("MON-M8", 2)])
    signed_order(hub.db_url, k, D(2026, 12, 20), [("MON-M8", 2)])
    clock_from(D(2027, 1, 1))
    p = sentence(hub, k, D(2027, 1, 1), [("MON-M8", 1)])
    assert p.sentence == "本次订单返利比例：2%，较上月下降3个百分点"


def test_order_entered_0030_beijing_on_the_first_through_the_api(hub, client):
    """00:30 on 1 December in Beijing is 16:30 UTC on 30 November: a December order,
    compared with November."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("t", STEP)))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, D(2026, 11, 10), [("MON-M8", 3)])  # 38,400 → 3 %
    signed_order(hub.db_url, k, D(2026, 10, 10), [("MON-M8", 1)])  # 12,800 → 1 %
    moment = dt.datetime(2026, 12, 1, 0, 30, tzinfo=SHANGHAI).astimezone(dt.UTC)
    set_clock(lambda: moment)
    r = client.post("/rebates/preview", json={"customer_id": k, "lines": [
        {"sku": "MON-M8", "quantity": 1}]}, headers=token(hub, "rep-zhangwei"))
    assert r.status_code == 200, r.text
    assert r.json()["order_date"] == "2026-12-01"
    assert r.json()["sentence"] == "本次订单返利比例：1%，较上月下降2个百分点"


def test_last_month_return_inside_last_month_counts(hub):
    """October MON-M8×3 (38,400 → 3 %), 1 returned 10-25: 25,600 → 1 %."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("t", STEP)))
    k = customer_id(hub.db_url, KANGDA)
    o = signed_order(hub.db_url, k, D(2026, 10, 10), [("MON-M8", 3)])
    return_goods(hub.db_url, o, 1, 1, D(2026, 10, 25))
    clock_from(D(2026, 11, 20))
    p = sentence(hub, k, D(2026, 11, 20), [("MON-M8", 3)])
    assert p.sentence == "本次订单返利比例：3%，较上月提升2个百分点"


def test_last_month_return_after_last_month_does_not_count(hub):
    """The same return dated 11-05: as of the end of October the order was 38,400 → 3 %."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("t", STEP)))
    k = customer_id(hub.db_url, KANGDA)
    o = signed_order(hub.db_url, k, D(2026, 10, 10), [("MON-M8", 3)])
    return_goods(hub.db_url, o, 1, 1, D(2026, 11, 5))
    clock_from(D(2026, 11, 20))
    p = sentence(hub, k, D(2026, 11, 20), [("MON-M8", 3)])
    assert p.sentence == "本次订单返利比例：3%，与上月持平"


def test_last_month_fully_returned(hub):
    """October's only 监护 order returned in full in October: no rate last month (0 of 0)."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("t", STEP)))
    k = customer_id(hub.db_url, KANGDA)
    o = signed_order(hub.db_url, k, D(2026, 10, 10), [("MON-M8", 1)])
    return_goods(hub.db_url, o, 1, 1, D(2026, 10, 20))
    clock_from(D(2026, 11, 20))
    p = sentence(hub, k, D(2026, 11, 20), [("MON-M8", 1)])
    assert p.sentence == "本次订单返利比例：1%，上月无该产品线订单"


# ------------------------------------------------------------------ wording

def test_rate_with_more_decimals(hub):
    """12.345 % shows as 12.35 %; October 10 % → 提升2.35个百分点."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule(
        "t", "[{from: 0, to: 30000, rate: 10%}, {from: 30000, rate: 12.345%}]")))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, D(2026, 10, 10), [("MON-M8", 1)])
    clock_from(D(2026, 11, 20))
    p = sentence(hub, k, D(2026, 11, 20), [("MON-M8", 3)])
    assert p.sentence == "本次订单返利比例：12.35%，较上月提升2.35个百分点"


def test_cap_last_month(hub):
    """Monthly cap 500: October 38,400 at 3 % = 1,152 capped to 500 → 1.302083 % → 1.3 %;
    November 12,800 at 1 % → 下降0.3个百分点."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("t", STEP) + "    cap: {amount_per_period: 500}\n"))
    k = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, k, D(2026, 10, 10), [("MON-M8", 3)])
    clock_from(D(2026, 11, 20))
    p = sentence(hub, k, D(2026, 11, 20), [("MON-M8", 1)])
    assert p.sentence == "本次订单返利比例：1%，较上月下降0.3个百分点"



def signed_at(hub, order_id: str, moment: dt.datetime) -> None:
    from sqlmodel import select
    from models import Quote
    from models.db import session_scope
    with session_scope(hub.db_url) as s:
        s.exec(select(Quote).where(Quote.order_id == order_id)).one().signed_at = moment


@pytest.mark.parametrize("today", [D(2026, 12, 1), D(2027, 1, 1)])
def test_signed_late_on_the_last_day_of_last_month(hub, today):
    """Last month's order signed 23:50 Beijing on its last day (15:50 UTC) counts as of the
    end of last month; one dated the same day but signed 00:10 Beijing on the 1st does not."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("t", STEP)))
    k = customer_id(hub.db_url, KANGDA)
    last_day = today - dt.timedelta(days=1)
    a = signed_order(hub.db_url, k, last_day, [("MON-M8", 1)])
    b = signed_order(hub.db_url, k, last_day, [("MON-M8", 2)])
    signed_at(hub, a, dt.datetime.combine(last_day, dt.time(23, 50), SHANGHAI))
    signed_at(hub, b, dt.datetime.combine(today, dt.time(0, 10), SHANGHAI))
    clock_from(today)
    p = sentence(hub, k, today, [("MON-M8", 1)])
    # as of the end of last month only `a` (12,800 → 1 %)
    assert p.sentence == "本次订单返利比例：1%，与上月持平"


# ------------------------------------------------------------------ the API

@pytest.fixture
def kangda(hub):
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("P1", rule("t", STEP)))
    return customer_id(hub.db_url, KANGDA)


def test_json_true_is_not_customer_1(hub, client, kangda):
    """The intent-order webhook refuses `true` for a customer id (api.schemas.whole_number:
    JSON true is not 1); the preview takes it as customer 1 and answers 200 with that
    customer's rebate. Observed 200; expected 422 naming body.customer_id."""
    r = client.post("/rebates/preview", json={"customer_id": True, "lines": [
        {"sku": "MON-M8", "quantity": 1}]}, headers=token(hub, "ops-01"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "body.customer_id"


def test_an_unknown_sku_is_named_in_the_details(hub, client, kangda):
    """Of an order's lines, which code is unknown: the details carry it (as the webhook's
    `unknown_sku` does: {"field": "lines.sku", "problem": "unknown", "value": sku} per code),
    not only the Chinese message. Observed details [{"field": "lines.sku", "problem":
    "unknown_sku"}] — no value, no line."""
    r = client.post("/rebates/preview", json={"customer_id": kangda, "lines": [
        {"sku": "MON-M8", "quantity": 1}, {"sku": "PUMP-XX", "quantity": 1},
        {"sku": "mon-m12", "quantity": 1}]}, headers=token(hub, "rep-zhangwei"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_sku"
    details = r.json()["error"]["details"]
    assert [d.get("value") for d in details] == ["PUMP-XX", "mon-m12"], details


@pytest.mark.parametrize("line", [
    {"sku": "MON-M8", "quantity": 1, "unit_price": 12000.1},
    {"sku": "MON-M8", "quantity": 1, "unit_price": "12000.10"},
])
def test_a_price_as_float_or_string_is_the_same_money(hub, client, kangda, line):
    clock_from(D(2026, 11, 20))
    r = client.post("/rebates/preview", json={"customer_id": kangda, "lines": [line]},
                    headers=token(hub, "rep-zhangwei"))
    assert r.status_code == 200, r.text
    assert (r.json()["order_amount"], r.json()["amount"]) == ("12000.10", "120.00")


def test_the_largest_order_is_previewed_with_money_as_strings(hub, client, kangda):
    """200 lines × 1,000,000 units × ¥999,999,999,999.99: exact, no float anywhere."""
    clock_from(D(2026, 11, 20))
    line = {"sku": "MON-M8", "quantity": 1_000_000, "unit_price": "999999999999.99"}
    r = client.post("/rebates/preview", json={"customer_id": kangda, "lines": [line] * 200},
                    headers=token(hub, "rep-zhangwei"))
    assert r.status_code == 200, r.text
    assert r.json()["order_amount"] == "199999999999998000000.00"
    assert r.json()["amount"] == "5999999999999940000.00"

    def floats(v):
        if isinstance(v, float):
            yield v
        for x in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()):
            yield from floats(x)
    assert not list(floats(r.json()))


@pytest.mark.parametrize("body, field", [
    ({}, "body.customer_id"),
    ({"customer_id": 1}, "body.lines"),
    ({"customer_id": 1, "lines": []}, "body.lines"),
    ({"customer_id": 1, "lines": [{"quantity": 1}]}, "body.lines.0.sku"),
    ({"customer_id": 1, "lines": [{"sku": "MON-M8", "quantity": -1}]}, "body.lines.0.quantity"),
    ({"customer_id": 1, "lines": [{"sku": "MON-M8", "quantity": 10**30}]},
     "body.lines.0.quantity"),
    ({"customer_id": 1, "lines": [{"sku": "MON-M8", "quantity": 1, "unit_price": 1.005}]},
     "body.lines.0.unit_price"),
    ({"customer_id": 1, "lines": [{"sku": "MON-M8", "quantity": 1}], "order_date": "1999-12-31"},
     "body.order_date"),
    ({"customer_id": 1, "lines": [{"sku": "MON-M8", "quantity": 1}], "order_date":
      "2026-11-20T00:30:00+08:00"}, "body.order_date"),
    ([{"customer_id": 1}], "body"),
])
def test_bad_bodies_are_422_naming_the_field(hub, client, kangda, body, field):
    r = client.post("/rebates/preview", json=body, headers=token(hub, "rep-zhangwei"))
    assert r.status_code == 422, r.text
    assert field in [d["field"] for d in r.json()["error"]["details"]]
