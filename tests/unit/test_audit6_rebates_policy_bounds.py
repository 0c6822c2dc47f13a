"""Thresholds copied from the policy text with their comparison (audit round 6): 回款率
“≥90%”, “不低于90%”, 达到 100000, 10万以上, and a doubled 1%% — refused as 应为数字 without
saying what to write."""
from __future__ import annotations

import pytest

from models.rebates.policy import PolicyDocumentError, parse_policy_document

YAML = """\
code: T-BOUNDS
name: 门槛写法测试
effective_from: 2027-01-01
rules:
  - id: a
    applies_to: {product_lines: [监护], payment_rate: {min: 90%}}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, to: 100000, rate: 1%}, {from: 100000, rate: 2%}]
    priority: 1
    stacking: stack
"""


def problems_of(text: str) -> dict[str, str]:
    with pytest.raises(PolicyDocumentError) as info:
        parse_policy_document(text)
    return {p.field: p.message for p in info.value.problems}


@pytest.mark.parametrize(("old", "new", "field", "expected"), [
    ("min: 90%", 'min: "≥90%"', "rules[0].applies_to.payment_rate.min", "“≥90%”请写成 90%"),
    ("min: 90%", "min: 不低于90%", "rules[0].applies_to.payment_rate.min", "“不低于90%”请写成 90%"),
    ("min: 90%", "min: '>=90%'", "rules[0].applies_to.payment_rate.min", "“>=90%”请写成 90%"),
    ("{from: 100000, rate", "{from: 达到100000, rate", "rules[0].tiers[1].from",
     "“达到100000”请写成 100000"),
    ("{from: 100000, rate", "{from: 10万以上, rate", "rules[0].tiers[1].from",
     "“10万”请写成 100000"),
    ("rate: 1%}", "rate: 1%%}", "rules[0].tiers[0].rate", "“1%%”多了百分号，请写成 1%"),
])
def test_a_bound_written_with_its_comparison_says_what_to_write(old, new, field, expected):
    assert parse_policy_document(YAML).code == "T-BOUNDS"
    problems = problems_of(YAML.replace(old, new))
    assert expected in problems[field], problems


def test_a_strict_comparison_gets_no_guessed_number():
    """“>100000” does not include 100000 itself: what to write is the clerk's call."""
    message = problems_of(YAML.replace("{from: 100000, rate", "{from: '>100000', rate"))[
        "rules[0].tiers[1].from"]
    assert "不加比较词或符号" in message and "请写成" not in message, message


@pytest.mark.parametrize(("written", "meant"), [
    ("R1", "r1"), ("Quarter_Volume", "quarter-volume"), ("quarter volume", "quarter-volume"),
])
def test_a_rule_id_in_capitals_or_with_underscores_says_what_to_write(written, meant):
    message = problems_of(YAML.replace("- id: a", f"- id: {written}"))["rules[0].id"]
    assert message.endswith(f"；请写成 {meant}"), message


def test_a_rule_id_in_chinese_gets_no_guess():
    message = problems_of(YAML.replace("- id: a", "- id: 季度阶梯"))["rules[0].id"]
    assert "请写成" not in message, message


@pytest.mark.parametrize(("old", "new", "field", "meant"), [
    ("code: T-BOUNDS", "code: “T-BOUNDS”", "code", "T-BOUNDS"),
    ("code: T-BOUNDS", "code: T—BOUNDS", "code", "T-BOUNDS"),  # Word's em dash
    ("code: T-BOUNDS", "code: T–BOUNDS", "code", "T-BOUNDS"),  # and its en dash
    ("- id: a", "- id: quarter–volume", "rules[0].id", "quarter-volume"),
])
def test_a_code_copied_from_word_says_what_to_write(old, new, field, meant):
    """Word turns "-" into a dash and quotes into “”: the code was refused as written with no
    word of the code meant."""
    message = problems_of(YAML.replace(old, new))[field]
    assert f"；请写成 {meant}（" in message, message


@pytest.mark.parametrize(("old", "new", "field", "expected"), [
    ("rate: 1%}", "rate: 1%；}", "rules[0].tiers[0].rate", "（末尾多了“；”，请写成 1%）"),
    ("min: 90%", "min: 90%。", "rules[0].applies_to.payment_rate.min", "（末尾多了“。”，请写成 90%）"),
])
def test_a_number_copied_with_its_sentence_punctuation_says_what_to_write(old, new, field,
                                                                           expected):
    assert problems_of(YAML.replace(old, new))[field].endswith(expected)
