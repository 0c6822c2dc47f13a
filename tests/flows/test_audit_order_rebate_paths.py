"""Audit: the rebate shown at order entry across its paths — the intent-order flow (webhook →
customer check → rebate preview → quote PDF → order record) and what the monthly settlement
then pays for the same order. Each order here goes through the flow's own steps
(`check_customer`, `preview_for_order`, `render_quote`, `settle_outcome`), called one after
the other as `process_intent_orders` runs them; the quote is read back with pdftotext.

Found:
- an order whose customer is picked again after it was quoted (a blocked order that still
  carries its suspect name shows the customer choice again) keeps the quote and the rebate
  of the first customer: the quote names another company and prints its rebate;
- an order previewed after its order date (held for a customer decision, retried later)
  ignores what was signed (or returned) between its date and the preview, though the hub
  knows it and the settlement counts it;
- the quote says an earlier order's raise "结算时作阶梯补差" when that order has never been
  settled: the settlement pays it as its first 返利, no 阶梯补差 ever appears.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from api.orders import order_page_data
from flows import customer_check
from flows.batch import OrderHeld
from flows.hub import current_hub
from flows.intent_order import settle_outcome
from flows.order_steps import render_quote
from flows.rebate_preview import preview_for_order
from flows.settlement import compute_month, settle_month
from flows.suspects import DecisionError, choose_customer_for_order
from models import Delivery, IntentOrder, IntentOrderLine, OrderRebate, Quote, Staff
from models.base import SHANGHAI
from models.db import session_scope
from tests.flows.test_quote_rebate_basis import _order
from tests.rebate_support import clock_from, customer_id, publish, signed_order
from tests.support import order_payload, post_order
from tests.unit.test_quote_pdf import _run, needs_poppler

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"  # tier A, 华东
SHENKANG = "上海申康医疗科技有限公司"  # tier B, 华东


def policy(code: str, rules: str) -> str:
    return f"code: {code}\nname: 审计政策{code}\neffective_from: 2026-07-01\nrules:\n{rules}"


def sign_and_deliver(db_url: str, order_id: str, day: dt.date) -> None:
    """The customer signs the quote and the goods go out in full on `day`."""
    with session_scope(db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == order_id)).one()
        quote.signed_at = dt.datetime.combine(day, dt.time(11), SHANGHAI)
        quote.status = "signed"
        s.add(quote)
        for ln in s.exec(select(IntentOrderLine).where(IntentOrderLine.order_id == order_id)):
            s.add(Delivery(delivery_no=f"D-{order_id}", order_id=order_id, line_no=ln.line_no,
                           quantity=ln.quantity, delivered_on=day))


def settled(db_url: str, month: str, order_id: str) -> dict:
    """{(code, rule): (rate, amount, version, clause)} the settlement of `month` pays the order."""
    paid: dict = {}
    for d in compute_month(db_url, month).drafts:
        if d.order_id != order_id:
            continue
        key = (d.policy_code, d.rule_id)
        rate, amount, version, clause = paid.get(key, (d.rate, Decimal(0), d.policy_version,
                                                       d.clause))
        paid[key] = (rate, amount + d.amount, version, clause)
    return paid


def shown(db_url: str, order_id: str) -> dict:
    """The same, as the order's stored preview (the quote and GET /orders/{id}) shows it."""
    with session_scope(db_url) as s:
        detail = json.loads(s.get(OrderRebate, order_id).detail)
    return {(r["policy_code"], r["rule_id"]): (Decimal(r["rate"]), Decimal(r["amount"]),
                                               r["policy_version"], r["clause"])
            for r in detail["rules"]}


# --------------------------------------------------------------------------------------------
# 1. a customer picked again after the order was quoted

A_ONLY = """
  - {id: a, name: A级客户返利, clause: 第一条,
     applies_to: {product_lines: [监护], customer_tiers: [A]},
     measure: amount, period: month, style: retroactive, priority: 10, stacking: stack,
     tiers: [{from: 0, rate: 3%}]}
"""


def _entry_steps(order_id: str) -> None:
    """customer-check → rebate-preview → quote-pdf, as the intent-order flow runs them."""
    hub = current_hub()
    customer_check.check_customer(hub, order_id)
    preview_for_order(hub, order_id)
    render_quote(hub, order_id)


@needs_poppler
def test_a_customer_picked_again_after_the_quote_gets_its_own_quote_and_rebate(hub):
    """The portal sends 康达's order under a name nobody recognises (康达苏州器械): it waits.
    The rep picks 上海申康 by mistake; the flow previews 申康's rebate (tier B: the A-only
    rule does not apply, 本订单暂无适用的返利政策) and renders a quote for 上海申康. The
    signature request is then refused (blocked). The order still carries its suspect name, so
    its page offers the customer choice again, and the rep now picks 江苏康达.

    What happens: the choice is accepted and the flow goes on for 康达, but the rebate step
    keeps 申康's stored preview and the quote step keeps 申康's PDF (both are "computed
    once"): the customer is sent, and asked to sign, a quote naming 上海申康医疗科技有限公司
    and saying it earns no rebate, while the settlement pays 康达 3 % (768.00). What should
    happen: either the choice is refused once the order has a quote, or the quote and the
    rebate are made again for the customer the order now belongs to."""
    clock_from(D(2026, 11, 20))
    publish(hub.db_url, policy("AQA", A_ONLY))
    kangda = customer_id(hub.db_url, KANGDA)
    shenkang = customer_id(hub.db_url, SHENKANG)
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        answer = post_order(client, order_payload(name="康达苏州器械", lines=[("MON-M8", 2)]))
    assert answer.status_code == 202
    oid = answer.json()["order_id"]
    with pytest.raises(OrderHeld):
        customer_check.check_customer(current_hub(), oid)
    with session_scope(hub.db_url) as s:
        rep = s.get(Staff, "rep-zhangwei")
        s.expunge(rep)
    choose_customer_for_order(current_hub(), oid, rep, shenkang)
    _entry_steps(oid)
    # the signature step refused the order (a PermanentError): blocked, a person acts
    settle_outcome(current_hub(), {}, {oid: "发起电子签署：签署方信息有误"})
    try:
        choose_customer_for_order(current_hub(), oid, rep, kangda)
    except DecisionError as refused:  # refusing the second choice is a correct product too
        assert refused.status == 409
        assert f"已选定客户“{SHENKANG}”" in str(refused) and "不能再更换客户" in str(refused)
        # nor is the choice offered on the order's page
        assert order_page_data(hub.db_url, oid, rep)["waiting"] is False
        return
    _entry_steps(oid)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
        rebate = s.get(OrderRebate, oid)
        assert order.customer_id == kangda
        # the quote is the contract the customer signs: it must name the order's customer
        assert quote.customer_id == order.customer_id, "quote kept the first customer's file"
        pdf = quote.pdf_path
        sentence = rebate.sentence
    text = re.sub(r"\s+", "", _run("pdftotext", pdf, "-"))
    assert KANGDA in text and SHENKANG not in text
    # …and the rebate the settlement will pay this customer (3 % of 25,600 = 768.00)
    assert sentence.startswith("本次订单返利比例：3%"), sentence
    sign_and_deliver(hub.db_url, oid, D(2026, 11, 21))
    clock_from(D(2026, 12, 5))
    assert shown(hub.db_url, oid) == settled(hub.db_url, "2026-11", oid)


# --------------------------------------------------------------------------------------------
# 2. an order previewed after its order date

QUARTER_RETRO = """
  - {id: q, name: 季度阶梯, clause: 第二条, applies_to: {product_lines: [监护]},
     measure: amount, period: quarter, style: retroactive, priority: 10, stacking: stack,
     tiers: [{from: 0, to: 50000, rate: 2%}, {from: 50000, rate: 5%}]}
"""


def test_an_order_previewed_days_after_its_date_counts_what_was_signed_meanwhile(hub):
    """康达's order of 11-10 (MON-M8×2, 25,600) is signed on 11-21. The order of 11-20
    (MON-M8×2, 25,600) waited for a customer decision (or was retried by the sweeper): its
    rebate-preview step runs on 11-23, when the hub already knows of the 11-21 signature.

    What happens: the preview reads the period's orders signed by the end of the order date
    only (`summed_ordered_twice(..., cut=order_date)`), so the quarter is 25,600 → 2 %,
    512.00, and the quote rendered on 11-23 tells the customer 2 % / ¥512.00. The November
    settlement, with nothing changed after the preview, pays the order 5 % = 1,280.00. The
    same happens with a return recorded between the order date and the preview (the quote
    then promises more than will be paid). What should happen: the preview computed on
    11-23 counts what is known on 11-23, so the quote shows what the settlement pays."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("AQR", QUARTER_RETRO))
    kangda = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, kangda, D(2026, 11, 10), [("MON-M8", 2)], signed_on=D(2026, 11, 21))
    oid = _order(hub.db_url, kangda, D(2026, 11, 20), [("MON-M8", 2)])
    clock_from(D(2026, 11, 23))  # released (or retried) three days after it came in
    preview_for_order(current_hub(), oid)
    render_quote(current_hub(), oid)
    sign_and_deliver(hub.db_url, oid, D(2026, 11, 24))
    clock_from(D(2026, 12, 5))
    paid = settled(hub.db_url, "2026-11", oid)
    assert paid[("AQR", "q")][:2] == (Decimal("0.050000"), Decimal("1280.00"))
    assert shown(hub.db_url, oid) == paid


# --------------------------------------------------------------------------------------------
# 3. "结算时作阶梯补差" for an order that was never settled

MONTH_RETRO = """
  - {id: mr, name: 月度阶梯, clause: 第一条, applies_to: {product_lines: [监护]},
     measure: amount, period: month, style: retroactive, priority: 10, stacking: stack,
     tiers: [{from: 0, to: 50000, rate: 2%}, {from: 50000, rate: 5%}]}
"""


@needs_poppler
def test_the_quote_promises_no_tier_difference_the_statement_will_not_show(hub):
    """11-05 MON-M8×2 (25,600, signed and delivered); the order of 11-20 MON-M8×2 takes the
    month to 51,200 ≥ 50,000: 5 % on both. The quote's 返利依据 says
    "本单使本期此前订单的应返增加 768.00 元（结算时作阶梯补差）".

    But November has not been settled: the settlement pays the 11-05 order its first line, a
    `rebate` of 1,280.00 at 5 %, and no `tier_difference` (阶梯补差) line ever appears. The
    customer (and the rep) looking for a 768.00 阶梯补差 on the statement find none. What
    should happen: the quote calls it 阶梯补差 only when the earlier orders were already
    settled at the lower tier (otherwise: they are settled at this tier with this month)."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("AMR", MONTH_RETRO))
    kangda = customer_id(hub.db_url, KANGDA)
    early = signed_order(hub.db_url, kangda, D(2026, 11, 5), [("MON-M8", 2)])
    oid = _order(hub.db_url, kangda, D(2026, 11, 20), [("MON-M8", 2)])
    clock_from(D(2026, 11, 20))
    preview_for_order(current_hub(), oid)
    render_quote(current_hub(), oid)
    with session_scope(hub.db_url) as s:
        pdf = s.exec(select(Quote).where(Quote.order_id == oid)).one().pdf_path
    quote_says_tier_difference = "阶梯补差" in re.sub(r"\s+", "", _run("pdftotext", pdf, "-"))
    sign_and_deliver(hub.db_url, oid, D(2026, 11, 20))
    clock_from(D(2026, 12, 5))
    kinds = {d.kind for d in compute_month(hub.db_url, "2026-11").drafts if d.order_id == early}
    assert kinds == {"rebate"}  # the earlier order's first payment, already at 5 %
    assert not quote_says_tier_difference, (
        "the quote announces a 阶梯补差 the settlement never makes")


QUARTER_TIERS = """
  - {id: qt, name: 季度阶梯, clause: 第三条, applies_to: {product_lines: [监护]},
     measure: amount, period: quarter, style: retroactive, priority: 10, stacking: stack,
     tiers: [{from: 0, to: 50000, rate: 2%}, {from: 50000, rate: 5%}]}
"""


def test_the_preview_names_a_tier_difference_on_orders_already_settled(hub):
    """The quarter's October order (25,600) was settled at 2 % (512.00); the November order
    (25,600) takes the quarter to 51,200: 5 % on both, so October's order earns 768.00 more,
    which the November settlement pays as a 阶梯补差 — the preview says so, and how much."""
    clock_from(D(2026, 7, 1))
    publish(hub.db_url, policy("AQT", QUARTER_TIERS))
    kangda = customer_id(hub.db_url, KANGDA)
    october = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 2)])
    clock_from(D(2026, 11, 5))
    assert settle_month(current_hub(), "2026-10").total == Decimal("512.00")
    oid = _order(hub.db_url, kangda, D(2026, 11, 20), [("MON-M8", 2)])
    clock_from(D(2026, 11, 20))
    preview_for_order(current_hub(), oid)
    with session_scope(hub.db_url) as s:
        detail = json.loads(s.get(OrderRebate, oid).detail)
    [rule] = detail["rules"]
    assert "本单使本期此前订单的应返增加 768.00 元（该等订单已结算，下次结算时作阶梯补差）" \
        in rule["explanation"], rule["explanation"]
    render_quote(current_hub(), oid)
    sign_and_deliver(hub.db_url, oid, D(2026, 11, 20))
    clock_from(D(2026, 12, 5))
    kinds = {(d.kind, d.amount) for d in compute_month(hub.db_url, "2026-11").drafts
             if d.order_id == october}
    assert kinds == {("tier_difference", Decimal("768.00"))}
