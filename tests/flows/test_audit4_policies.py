"""Audit round 4 (policies, the clerk): what a published policy does afterwards."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from flows.rebate_preview import ItemIn, preview_items
from models.rebates.policy import PolicySpec, parse_policy_document
from tests.rebate_support import customer_id, invoice, publish

D = dt.date
FULL_PAYMENT = """
code: T-FULLPAY
name: 全额按期回款奖励
effective_from: 2026-10-01
rules:
  - id: full-payment
    name: 全额按期回款奖励
    clause: 第一条
    applies_to:
      product_lines: [监护]
      payment_rate: {min: 100%}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 3%}]
    priority: 5
    stacking: stack
"""


@pytest.mark.parametrize("text", [
    FULL_PAYMENT,
    # a full rebate, written as the docs say it must be written
    FULL_PAYMENT.replace("payment_rate: {min: 100%}", "payment_rate: {min: 90%}")
                .replace("rate: 3%", "rate: 100%"),
])
def test_a_100_percent_rate_reads_back_as_it_was_published(text):
    spec = parse_policy_document(text)
    assert PolicySpec.from_json(spec.to_json()) == spec


def test_a_bonus_for_paying_everything_on_time_can_be_previewed(hub):
    """`payment_rate: {min: 100%}` (全额按期回款) was accepted, stored as the fraction 1 and
    then refused as ambiguous whenever the policy book was read: every preview failed."""
    publish(hub.db_url, FULL_PAYMENT)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    invoice(hub.db_url, kangda, D(2026, 10, 15), "38400.00", paid=[(D(2026, 10, 14), "38400.00")])
    result = preview_items(hub.db_url, kangda, [ItemIn("MON-M8", 1)], order_date=D(2026, 11, 20))
    # 12,800 × 3 % = 384.00: the October invoice was paid in full on time (100 % ≥ 100 %)
    assert (result.amount, result.rules[0].clause) == (Decimal("384.00"), "第一条")


def test_a_percentage_with_many_decimals_is_refused_not_stored_unreadable():
    # 3.3333333333% pasted from a spreadsheet: ten places as a percentage, twelve as the
    # fraction the spec stores, which no longer read back
    text = FULL_PAYMENT.replace("rate: 3%", "rate: 3.3333333333%")
    with pytest.raises(Exception) as info:
        spec = parse_policy_document(text)
        PolicySpec.from_json(spec.to_json())
    problems = {p.field: p.message for p in info.value.problems}
    assert "小数位数过多" in problems["rules[0].tiers[0].rate"]
    assert "百分比" in problems["rules[0].tiers[0].rate"]
    spec = parse_policy_document(FULL_PAYMENT.replace("rate: 3%", "rate: 3.33333333%"))
    assert PolicySpec.from_json(spec.to_json()) == spec


def test_checking_the_published_file_again_does_not_warn_it_would_supersede_itself(hub):
    """`salesops rebates validate` on the file just published: nothing would be published
    (内容相同), so no warning that version 1 would no longer apply to any order."""
    from flows.policies import review_draft

    publish(hub.db_url, FULL_PAYMENT)
    review = review_draft(hub.db_url, parse_policy_document(FULL_PAYMENT))
    assert ["内容相同" in p.message for p in review.refusals] == [True]
    assert [w.message for w in review.warnings if "不再适用" in w.message] == []


def test_a_document_whose_stored_form_would_not_read_back_is_not_published(hub, monkeypatch):
    """Defence for the class of fault above: a version that cannot be read back stops every
    preview, settlement and later publication, so publishing checks the round trip first."""
    from flows.policies import PublishError
    from flows.rebate_data import policy_book
    from models.db import session_scope

    real = PolicySpec.from_json.__func__

    def strict(cls, text):  # a stricter reader than the one that accepted the document
        if "T-FULLPAY" in text:
            raise ValueError("simulated")
        return real(cls, text)

    monkeypatch.setattr(PolicySpec, "from_json", classmethod(strict))
    with pytest.raises(PublishError) as info:
        publish(hub.db_url, FULL_PAYMENT)
    assert "读回" in info.value.message
    from flows.policies import review_draft  # validate says so before anyone publishes

    refusals = review_draft(hub.db_url, parse_policy_document(FULL_PAYMENT)).refusals
    assert ["读回" in p.message for p in refusals] == [True]
    with session_scope(hub.db_url) as s:
        assert policy_book(s).versions == []  # nothing stored: the book still reads


def test_the_consumables_policy_pays_its_own_example_in_preview_and_settlement(hub):
    """CONS-2027's text: 季度累计 20 万元，返利 = 5 万 × 2% + 10 万 × 4% + 5 万 × 6% = 8,000 元;
    the preview says so before the order is signed and the settlement pays it, to the fen."""
    from pathlib import Path

    from flows.hub import current_hub
    from flows.settlement import breakdowns, settle_month
    from tests.rebate_support import clock_from, signed_order

    root = Path(__file__).resolve().parents[2]
    publish(hub.db_url, (root / "deployments/sample_data/policies/consumables-2027.yaml")
            .read_text(encoding="utf-8"))
    renhe = customer_id(hub.db_url, "浙江仁和医疗器械有限公司")
    items = [ItemIn("CONS-ECG10", 2500, Decimal("80.00"))]  # 200,000.00
    preview = preview_items(hub.db_url, renhe, items, order_date=D(2027, 2, 10))
    assert (preview.amount, preview.rate) == (Decimal("8000.00"), Decimal("0.040000"))
    assert preview.sentence == "本次订单返利比例：4%，上月无该产品线订单"
    signed_order(hub.db_url, renhe, D(2027, 2, 10), [("CONS-ECG10", 2500, "80.00")])
    clock_from(D(2027, 3, 5))
    result = settle_month(current_hub(), "2027-02")
    assert dict(breakdowns(result.as_dict()))["客户"] == {"浙江仁和医疗器械有限公司": "8000.00"}
