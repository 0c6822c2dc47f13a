"""The rebate the quote PDF prints against the order's preview (order_rebate): the issue asks
for the order's rebate rate and amount "with the policy version and clause that produced it,
the inputs used, and the change against last month's rate … The quote and the order record
show it." Each quote here is rendered by the intent-order flow's own steps
(`preview_for_order`, then `render_quote`) for an order with a 20-character id, and read back
with pdftotext. Found by an audit: the quote printed the sentence only; it now has 返利依据,
each paying rule's explanation and each rule in force that does not apply, with why."""
from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from sqlmodel import select

from flows.hub import current_hub
from flows.order_steps import render_quote
from flows.rebate_preview import preview_for_order
from models import IntentOrder, IntentOrderLine, Opportunity, OrderRebate, Product, Quote, set_clock
from models.base import SHANGHAI
from models.codes import new_order_id
from models.db import session_scope
from tests.rebate_support import customer_id, invoice, publish, signed_order
from tests.unit.test_quote_pdf import _run, needs_poppler

D = dt.date
POLICY = """
code: T-AUDIT
name: 华东大区监护产品线经销商阶梯返利及按期回款奖励政策
effective_from: 2026-10-01
text: 第一条 月度阶梯。第二条 按期回款奖励。第三条 专项。
rules:
{rules}
"""
RULES = {
    # two rules stacking: 10 % tier + 2.5 % payment bonus = 12.5 %, +2.3 points on October
    "stacking": """
  - {id: tier, name: 月度阶梯, clause: 第一条, applies_to: {product_lines: [监护]},
     measure: amount, period: month, style: retroactive, priority: 10, stacking: stack,
     tiers: [{from: 0, to: 50000, rate: 10.2%}, {from: 50000, rate: 10%}]}
  - {id: bonus, name: 按期回款奖励, clause: 第二条,
     applies_to: {product_lines: [监护], payment_rate: {min: 90%, no_history: fail}},
     measure: amount, period: month, style: retroactive, priority: 5, stacking: stack,
     tiers: [{from: 0, rate: 2.5%}]}""",
    # an exclusive rule takes the line from a stacking one
    "exclusive": """
  - {id: plain, name: 普通返利, clause: 第一条, applies_to: {product_lines: [监护]},
     measure: amount, period: month, style: retroactive, priority: 5, stacking: stack,
     tiers: [{from: 0, rate: 5%}]}
  - {id: special, name: 专项返利, clause: 第三条, applies_to: {product_lines: [监护]},
     measure: amount, period: month, style: retroactive, priority: 10, stacking: exclusive,
     tiers: [{from: 0, rate: 8%}]}""",
    # a quarterly cap shared with October's order
    "capped": """
  - {id: capped, name: 季度封顶返利, clause: 第一条, applies_to: {product_lines: [监护]},
     measure: amount, period: quarter, style: retroactive, priority: 10, stacking: stack,
     cap: {amount_per_period: 5000}, tiers: [{from: 0, rate: 10%}]}""",
}


def _order(db_url: str, customer: int, day: dt.date, lines) -> str:
    """An intent order as the webhook takes it (IO<yymmdd>-<6>-<4>, 20 characters)."""
    now = dt.datetime.combine(day, dt.time(10, 30), SHANGHAI)
    oid = new_order_id(now)
    assert len(oid) == 20
    with session_scope(db_url) as s:
        products = {p.sku: p for p in s.exec(select(Product))}
        s.add(IntentOrder(id=oid, event_id=f"e-{oid}", sender_id="portal", customer_name="康达",
                          customer_id=customer, rep_id="rep-zhangwei", order_date=day,
                          status="processing", created_at=now))
        s.flush()
        for no, (sku, qty) in enumerate(lines, start=1):
            p = products[sku]
            s.add(IntentOrderLine(order_id=oid, line_no=no, sku=sku, model=p.model, name=p.name,
                                  quantity=qty, unit=p.unit, unit_price=p.list_price,
                                  tax_rate=Decimal("0.13")))
        s.add(Opportunity(order_id=oid, customer_id=customer, rep_id="rep-zhangwei",
                          stage="intent", amount=0))
    return oid


def _quote_of(hub, rules: str) -> tuple[dict, str]:
    """(the order's stored preview detail, the quote's text without white space) of a
    November order of 5 × M8 (64,000.00) after October's 3 × M8, under `rules`."""
    set_clock(lambda: dt.datetime(2026, 11, 20, 2, tzinfo=dt.timezone.utc))
    publish(hub.db_url, POLICY.format(rules=rules))
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 3)])
    invoice(hub.db_url, kangda, D(2026, 10, 15), "38400.00", paid=[(D(2026, 10, 14), "38400.00")])
    oid = _order(hub.db_url, kangda, D(2026, 11, 20), [("MON-M8", 5)])
    preview_for_order(current_hub(), oid)
    render_quote(current_hub(), oid)
    with session_scope(hub.db_url) as s:
        rebate = s.get(OrderRebate, oid)
        pdf = s.exec(select(Quote).where(Quote.order_id == oid)).one().pdf_path
        detail = json.loads(rebate.detail)
        assert detail["sentence"] in rebate.sentence
    return detail, re.sub(r"\s+", "", _run("pdftotext", pdf, "-"))


@needs_poppler
@pytest.mark.parametrize("policy", sorted(RULES))
def test_the_quote_names_the_policy_version_and_clause_of_its_rebate(hub, policy):
    """返利：本次订单返利比例：12.5%，较上月提升2.3个百分点（预计返利 ¥8,000.00），以月度结算为准。
    and under 返利依据 which policy, version and clause pay it, with the figures used."""
    detail, text = _quote_of(hub, RULES[policy])
    assert detail["rules"], "the policy applies to the order"
    assert detail["sentence"] in text  # the rate and the 较上月 sentence are there
    for rule in detail["rules"]:
        assert rule["policy_code"] in text or rule["policy_name"] in text, rule["policy_code"]
        assert f"第{rule['policy_version']}版" in text, rule["policy_version"]
        assert rule["clause"] in text, rule["clause"]
    assert "返利依据" in text
    for rule in detail["rules"]:  # its explanation: the period's volume, the tier, base × rate
        assert re.sub(r"\s+", "", rule["explanation"]) in text
    for skipped in detail["skipped"]:
        assert re.sub(r"\s+", "", skipped["reasons"][0]) in text
