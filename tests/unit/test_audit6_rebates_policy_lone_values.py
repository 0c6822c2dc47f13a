"""A lone value written where the document wants a mapping (audit round 6): the policy text
says 每季度封顶 6 万元 or 回款率不低于 90%, and the clerk writes `cap: 60000`,
`payment_rate: 90%`."""
from __future__ import annotations

import pytest

from models.rebates.policy import PolicyDocumentError, parse_policy_document


YAML = """\
code: T-LONE
name: 单值写法测试
effective_from: 2027-01-01
rules:
  - id: a
    applies_to: {product_lines: [监护]}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    cap: {amount_per_period: 60000}
    priority: 1
    stacking: stack
"""


def field_problems(text: str) -> dict[str, str]:
    with pytest.raises(PolicyDocumentError) as info:
        parse_policy_document(text)
    return {p.field: p.message for p in info.value.problems}


@pytest.mark.parametrize(("old", "new", "field", "expected"), [
    ("cap: {amount_per_period: 60000}", "cap: 60000", "rules[0].cap",
     "请写成 {amount_per_period: 60000}"),
    ("cap: {amount_per_period: 60000}", "cap: 6万", "rules[0].cap",
     "请写成 {amount_per_period: 数字}（“6万”请写成 60000"),
    ("applies_to: {product_lines: [监护]}",
     "applies_to: {product_lines: [监护], payment_rate: 90%}",
     "rules[0].applies_to.payment_rate", "请写成 {min: 90%}"),
])
def test_a_lone_value_for_a_mapping_says_how_to_write_it(old, new, field, expected):
    """`cap: 60000` and `payment_rate: 90%` (the policy text says 每季度封顶 6 万元, 回款率不低于
    90%) were refused as 应为键值映射（字段: 值） without naming the field to write."""
    assert parse_policy_document(YAML).code == "T-LONE"
    problems = field_problems(YAML.replace(old, new))
    assert expected in problems[field], problems


def test_a_word_for_a_mapping_gets_no_made_up_field():
    problems = field_problems(YAML.replace("cap: {amount_per_period: 60000}", "cap: true"))
    assert problems["rules[0].cap"] == "应为键值映射（字段: 值）"


@pytest.mark.parametrize(("line", "field", "expected"), [
    ("stacking: stack", "stacking", "缺少必填字段（请写 stack（叠加） 或 exclusive（互斥））"),
    ("period: quarter", "period", "缺少必填字段（请写 month（按月） 或 quarter（按季））"),
    ("measure: amount", "measure", "缺少必填字段（请写 amount（金额） 或 quantity（数量））"),
    ("priority: 1", "priority", "缺少必填字段（请写一个整数，如 10"),
])
def test_a_missing_choice_says_what_it_takes(line, field, expected):
    """A rule copied without `stacking:` was refused as 缺少必填字段 alone: the clerk had to
    look up what the field takes."""
    problems = field_problems(YAML.replace(f"    {line}\n", ""))
    assert problems[f"rules[0].{field}"].startswith(expected), problems
