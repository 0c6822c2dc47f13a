"""Slips a clerk really makes when writing a policy (round 13): a copied policy whose rule
still carries last quarter's order dates, numbers written as people say them (10万,
300000元; 100,000 is read, but not where YAML's braces cut it), and a bare `min: 1` for the payment rate."""
from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal

import pytest

from models.rebates.policy import (
    PolicyBook, PolicyDocumentError, PolicySpec, PublishedVersion, parse_policy_document,
    unknown_values,
)

Q2 = textwrap.dedent("""\
    code: NEW-M12-2027Q2
    name: 2027年第二季度M12新品返利
    effective_from: 2027-04-01
    effective_to: 2027-06-30
    rules:
      - id: m12-units
        applies_to:
          skus: [MON-M12]
          order_dates: {from: 2027-04-01, to: 2027-06-30}
        measure: quantity
        period: quarter
        style: retroactive
        tiers:
          - {from: 0, to: 10, rate: 3%}
          - {from: 10, rate: 5%}
        priority: 20
        stacking: stack
    """)


def problems_of(text: str) -> dict[str, str]:
    with pytest.raises(PolicyDocumentError) as info:
        parse_policy_document(text)
    return {p.field: p.message for p in info.value.problems}


def test_rule_dates_wholly_outside_the_policy_dates_are_refused():
    """Copied from the Q1 policy, effective dates changed, the rule's order dates not: the
    rule could never apply, and the policy would pay nothing without a word."""
    copied = Q2.replace("order_dates: {from: 2027-04-01, to: 2027-06-30}",
                        "order_dates: {from: 2027-01-01, to: 2027-03-31}")
    message = problems_of(copied)["rules[0].applies_to.order_dates"]
    assert "2027-01-01 至 2027-03-31" in message and "2027-04-01 至 2027-06-30" in message
    assert "不会适用于任何订单" in message
    later = Q2.replace("order_dates: {from: 2027-04-01, to: 2027-06-30}",
                       "order_dates: {from: 2027-07-01}")
    assert "rules[0].applies_to.order_dates" in problems_of(later)
    # overlapping at all is fine, and an open-ended policy reaches any later window
    assert parse_policy_document(Q2.replace("from: 2027-04-01, to: 2027-06-30",
                                            "from: 2027-06-30, to: 2027-09-30"))
    assert parse_policy_document(Q2.replace("effective_to: 2027-06-30\n", "").replace(
        "from: 2027-04-01, to: 2027-06-30", "from: 2028-01-01"))


def test_a_published_version_reads_back_whatever_checks_came_later():
    """The stored spec of a version accepted before this check must still load (the policy
    book is built from every published version)."""
    spec = parse_policy_document(Q2)
    stored = spec.to_json().replace('"from":"2027-04-01","to":"2027-06-30"',
                                    '"from":"2027-01-01","to":"2027-03-31"')
    assert stored != spec.to_json()
    assert PolicySpec.from_json(stored).rules[0].applies_to.order_dates.end.month == 3


def test_numbers_written_as_people_say_them_get_a_hint():
    amounts = Q2.replace("measure: quantity", "measure: amount").replace(
        "- {from: 0, to: 10, rate: 3%}\n      - {from: 10, rate: 5%}",
        "- {from: 0, to: 10万, rate: 3%}\n      - {from: 100,000, to: 300000元, rate: 5%}\n"
        "      - {from: 300000, rate: 8%}")
    problems = problems_of(amounts)
    assert "“10万”请写成 100000" in problems["rules[0].tiers[0].to"]
    assert "“300000元”请写成 300000" in problems["rules[0].tiers[1].to"]
    # in a flow mapping YAML cuts 100,000 at the comma: the "field" 000 is explained
    assert "千位分隔符" in problems["rules[0].tiers[1].000"]
    assert "未知字段" not in problems["rules[0].tiers[1].000"]
    # outside braces (or quoted) a number grouped in thousands is read as written
    block = Q2.replace("- {from: 10, rate: 5%}", "- from: 1,000\n        rate: 5%").replace(
        "to: 10, rate: 3%", "to: '1,000', rate: 3%")
    tiers = parse_policy_document(block).rules[0].tiers
    assert (tiers[0].upper, tiers[1].lower) == (Decimal(1000), Decimal(1000))
    assert "“1.5万”请写成 15000" in problems_of(Q2.replace("to: 10,", "to: 1.5万,"))[
        "rules[0].tiers[0].to"]


def test_a_bare_one_as_the_payment_rate_asks_about_payment_not_rebate():
    text = Q2.replace("skus: [MON-M12]", "skus: [MON-M12]\n      payment_rate: {min: 1}")
    message = problems_of(text)["rules[0].applies_to.payment_rate.min"]
    assert "全额返利" not in message and "全额按期回款" in message and '"100%"' in message
    assert "全额返利" in problems_of(Q2.replace("rate: 5%", "rate: 1"))["rules[0].tiers[1].rate"]


def test_a_bare_fraction_above_ten_percent_must_carry_its_percent_sign():
    """`rate: 0.5` copied from "0.5%" without its sign would publish a 50 % rebate."""
    message = problems_of(Q2.replace("rate: 5%", "rate: 0.5"))["rules[0].tiers[1].rate"]
    assert "0.5 即 50%" in message and '"0.5%"' in message and '"50%"' in message
    assert "rules[0].tiers[1].rate" in problems_of(Q2.replace("rate: 5%", "rate: 0.12"))
    json_doc = ('{"code": "J", "name": "J", "effective_from": "2027-01-01", "rules": [{"id": "r",'
                ' "measure": "amount", "period": "month", "style": "retroactive", "priority": 1,'
                ' "stacking": "stack", "tiers": [{"from": 0, "rate": 0.3}]}]}')
    assert "0.3 即 30%" in problems_of(json_doc)["rules[0].tiers[0].rate"]
    # with its sign, or a plausible fraction, it stands; a payment rate of 0.9 is 90 %
    assert parse_policy_document(Q2.replace("rate: 5%", "rate: 50%")).rules[0].tiers[1].rate \
        == Decimal("0.5")
    assert parse_policy_document(Q2.replace("rate: 5%", "rate: 0.1")).rules[0].tiers[1].rate \
        == Decimal("0.1")
    paid = Q2.replace("skus: [MON-M12]", "skus: [MON-M12]\n      payment_rate: {min: 0.9}")
    assert parse_policy_document(paid).rules[0].applies_to.payment_rate.min == Decimal("0.9")
    # a published version with a 50 % tier still reads back from its stored form
    spec = parse_policy_document(Q2.replace("rate: 5%", "rate: 50%"))
    assert PolicySpec.from_json(spec.to_json()) == spec


def test_a_list_written_with_a_full_width_comma_is_warned_as_such():
    """`[华东，华南]` is one region named “华东，华南” to YAML: the warning says how to write
    the two it meant, not a guess at one of them."""
    spec = parse_policy_document(Q2.replace("skus: [MON-M12]",
                                            "skus: [MON-M8，MON-M12]\n      regions: [华东、华南]"
                                            "\n      customer_tiers: [A级]"))
    known = {"skus": ["MON-M8", "MON-M12"], "regions": ["华东", "华南"],
             "customer_tiers": ["A", "B"]}
    got = {w.field: w.message for w in unknown_values(spec, lambda kind: known[kind])}
    assert "是否应写成 [MON-M8, MON-M12]？" in got["rules[0].applies_to.skus"]
    assert "是否应写成 [华东, 华南]？" in got["rules[0].applies_to.regions"]
    # parts that are not all known values: the usual closest match
    assert "是否应为 A？" in got["rules[0].applies_to.customer_tiers"]


def test_chinese_words_and_quotes_are_answered_with_what_to_write():
    text = (Q2.replace("measure: quantity", "measure: 数量").replace("period: quarter",
                                                                    "period: 季度")
            .replace("style: retroactive", "style: 超额累进").replace("stacking: stack",
                                                                   "stacking: 互斥")
            .replace("rate: 5%", "rate: “5%”"))
    problems = problems_of(text)
    assert problems["rules[0].measure"].endswith("（“数量”请写成 quantity）")
    assert problems["rules[0].period"].endswith("（“季度”请写成 quarter）")
    assert problems["rules[0].style"].endswith("（“超额累进”请写成 marginal）")
    assert problems["rules[0].stacking"].endswith("（“互斥”请写成 exclusive）")
    assert problems["rules[0].tiers[1].rate"].endswith("（中文引号须去掉，写成 5%）")
    # 累进 alone could be either style: no guess
    assert "请写成" not in problems_of(Q2.replace("style: retroactive", "style: 累进"))[
        "rules[0].style"]


def _published(n: int, start: str, end: str | None = None) -> PublishedVersion:
    head = Q2.replace("effective_from: 2027-04-01", f"effective_from: {start}").replace(
        "effective_to: 2027-06-30\n", f"effective_to: {end}\n" if end else "").replace(
        "      order_dates: {from: 2027-04-01, to: 2027-06-30}\n", "")
    return PublishedVersion("NEW-M12-2027Q2", n, parse_policy_document(head))


def test_a_version_starting_before_the_one_it_follows_supersedes_it_wholly():
    """v2 raised a tier from the 16th; a v3 copied from v1 and dated the 1st would silently
    undo v2 for every order (from the 10th: v1 keeps its first days, v2 none); publishing
    warns (PolicyBook says which versions)."""
    book = PolicyBook([_published(1, "2027-04-01"), _published(2, "2027-04-16")])
    gone = book.wholly_superseded(_published(3, "2027-04-10").spec)
    assert [(w.version, w.start, w.end) for w in gone] == [(2, dt.date(2027, 4, 16), None)]
    # from the 1st (or earlier) v1 is gone as well
    assert [w.version for w in book.wholly_superseded(_published(3, "2027-04-01").spec)] == [1, 2]
    # a later start leaves both some dates
    assert book.wholly_superseded(_published(3, "2027-05-01").spec) == []
    assert PolicyBook([]).wholly_superseded(_published(1, "2027-04-01").spec) == []
