"""Audit round 4 (H8): the kind and the explanation of money taken back from an order the rule
no longer takes — a return (退货冲回) only when its goods came back; a condition it no longer
meets (tier, region, payment rate, an exclusive rule, a version without the rule) is a
tier difference that names the condition (docs/rebates.md, settlement step 4)."""
from __future__ import annotations

import dataclasses
from decimal import Decimal

from models.rebates.engine import evaluate, not_applied, settle
from models.rebates.policy import PublishedVersion
from tests.unit.test_rebate_engine import (
    CUSTOMERS, GOOD_PAYER, KANGDA, TWO_TIERS, book, line, pay, policy, rule,
)

D = Decimal


def _settle_again(b, lines, paid, customers=CUSTOMERS, rates=GOOD_PAYER):
    dues = evaluate(lines, b, customers, rates)
    gone = not_applied({k: p for k, p in paid.items() if k not in dues}, lines, b, customers,
                       rates)
    return settle(dues, paid, rerun=False, gone=gone)


def test_a_customer_whose_tier_changed_gives_back_as_a_tier_difference_naming_it():
    b = book(policy("P", rule("vol", TWO_TIERS, extra="applies_to: {customer_tiers: [A]}\n")))
    paid: dict = {}
    lines = [line("O1", "2027-01-10", 10, "10000.00")]  # 100,000 → 5 %: 5,000.00
    pay(paid, settle(evaluate(lines, b, CUSTOMERS, GOOD_PAYER), paid, rerun=False))
    # the customer is C now: the rule no longer takes O1, which still holds its goods
    now_c = {**CUSTOMERS, 1: dataclasses.replace(KANGDA, tier="C")}
    drafts = _settle_again(b, lines, paid, now_c)
    assert [(d.kind, d.amount) for d in drafts] == [("tier_difference", D("-5000.00"))]
    assert "本单未退货，但已不再适用该条款（客户等级 C 不在适用范围（A）），冲回已返金额。" \
        in drafts[0].explanation
    assert drafts[0].inputs["not_applied"] == ["客户等级 C 不在适用范围（A）"]
    # returned in full as well: that is a return
    drafts = _settle_again(b, [line("O1", "2027-01-10", 0, "10000.00")], paid, now_c)
    assert [(d.kind, d.amount) for d in drafts] == [("clawback", D("-5000.00"))]


def test_an_order_taken_by_a_new_exclusive_rule_or_a_version_without_the_rule():
    base = policy("P", rule("vol", "[{from: 0, rate: 2%}]"))
    b = book(base)
    paid: dict = {}
    lines = [line("O1", "2027-01-10", 10, "1000.00")]  # 10,000 × 2 % = 200.00
    pay(paid, settle(evaluate(lines, b, CUSTOMERS, GOOD_PAYER), paid, rerun=False))
    # an exclusive rule of another policy, back-dated, takes the line
    excl = policy("X", rule("only", "[{from: 0, rate: 1%}]", stacking="exclusive"),
                  name="独家政策")
    drafts = [d for d in _settle_again(book(base, excl), lines, paid) if d.rule_id == "vol"]
    assert [(d.kind, d.amount) for d in drafts] == [("tier_difference", D("-200.00"))]
    assert "与互斥条款《独家政策》第only条不叠加，按该条款执行" in drafts[0].explanation
    # version 2 of P, from the same day, without the rule
    v2 = PublishedVersion("P", 2, policy("P", rule("other", "[{from: 0, rate: 1%}]")))
    drafts = [d for d in _settle_again(book(base, versions=[v2]), lines, paid)
              if d.rule_id == "vol"]
    assert [(d.kind, d.amount) for d in drafts] == [("tier_difference", D("-200.00"))]
    assert "订单日期 2027-01-10 适用的 P 第2版已无该条款（第1版第vol条）" in drafts[0].explanation


def test_an_order_moved_to_another_customer_is_given_back_by_the_first():
    b = book(policy("P", rule("vol", "[{from: 0, rate: 2%}]")))
    paid: dict = {}
    pay(paid, settle(evaluate([line("O1", "2027-01-10", 10)], b, CUSTOMERS, GOOD_PAYER), paid,
                     rerun=False))  # 10,000 × 2 % = 200.00 under customer 1
    moved = [line("O1", "2027-01-10", 10, customer=2)]
    drafts = _settle_again(b, moved, paid)
    assert sorted((d.customer_id, d.kind, d.amount) for d in drafts) == [
        (1, "tier_difference", D("-200.00")), (2, "rebate", D("200.00"))]
    taken = next(d for d in drafts if d.customer_id == 1)
    assert taken.inputs["not_applied"] == ["订单已改属其他客户"]
