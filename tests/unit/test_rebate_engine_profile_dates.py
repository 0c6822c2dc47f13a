"""Rebate engine with DatedProfiles: each order is evaluated with its customer's profile on
its order date, and not_applied explains a paid order by that profile too."""
from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from models.rebates.engine import DatedProfiles, evaluate, not_applied, profile_on, settle
from tests.unit.test_rebate_engine import (
    CUSTOMERS, GOOD_PAYER, KANGDA, TWO_TIERS, book, line, pay, policy, rule,
)

D = Decimal
A_ONLY = book(policy("P", rule("vol", TWO_TIERS, extra="applies_to: {customer_tiers: [A]}\n")))


def _settle_again(lines, paid, customers):
    dues = evaluate(lines, A_ONLY, customers, GOOD_PAYER)
    gone = not_applied({k: p for k, p in paid.items() if k not in dues}, lines, A_ONLY,
                       customers, GOOD_PAYER)
    return settle(dues, paid, rerun=False, gone=gone)


def test_profile_on_takes_the_profile_from_its_first_day():
    as_c = dataclasses.replace(KANGDA, tier="C")
    dated = DatedProfiles(CUSTOMERS, {1: [(dt.date.min, as_c), (dt.date(2027, 2, 1), KANGDA)]})
    assert profile_on(dated, 1, dt.date(2027, 1, 31)) is as_c
    assert profile_on(dated, 1, dt.date(2027, 2, 1)) is KANGDA
    assert profile_on(dated, 2, dt.date(2027, 1, 31)) is CUSTOMERS[2]
    assert profile_on(CUSTOMERS, 1, dt.date(2020, 1, 1)) is KANGDA


def test_a_paid_order_keeps_its_rebate_when_the_tier_changes_after_its_date():
    paid: dict = {}
    lines = [line("O1", "2027-01-10", 10, "10000.00")]  # 100,000 → 5 %: 5,000.00
    pay(paid, settle(evaluate(lines, A_ONLY, CUSTOMERS, GOOD_PAYER), paid, rerun=False))
    # re-rated C from 1 February: O1 (10 January) was a tier-A order, nothing changes
    as_c = dataclasses.replace(KANGDA, tier="C")
    dated = DatedProfiles({**CUSTOMERS, 1: as_c},
                          {1: [(dt.date.min, KANGDA), (dt.date(2027, 2, 1), as_c)]})
    assert _settle_again(lines, paid, dated) == []


def test_not_applied_names_the_tier_the_customer_had_on_the_order_date():
    """A paid order that no rule takes now (its customer was tier C on its date: a correction
    of the file not in the log): the reason is the tier on the order date, not today's A."""
    paid: dict = {}
    lines = [line("O1", "2027-01-10", 10, "10000.00")]
    pay(paid, settle(evaluate(lines, A_ONLY, CUSTOMERS, GOOD_PAYER), paid, rerun=False))
    as_c = dataclasses.replace(KANGDA, tier="C")
    dated = DatedProfiles(CUSTOMERS, {1: [(dt.date.min, as_c), (dt.date(2027, 2, 1), KANGDA)]})
    drafts = _settle_again(lines, paid, dated)
    assert [(d.kind, d.amount) for d in drafts] == [("tier_difference", D("-5000.00"))]
    assert drafts[0].inputs["not_applied"] == ["客户等级 C 不在适用范围（A）"]
