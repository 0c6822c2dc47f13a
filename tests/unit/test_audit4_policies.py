"""Audit round 4 (policies, the clerk): documents that must be refused field by field, in
Chinese, never with a traceback."""
from __future__ import annotations

import textwrap
from decimal import Decimal

import pytest

from models.rebates.policy import PolicyDocumentError, parse_policy_document

DOC = textwrap.dedent("""\
    code: T-AUDIT4
    name: 审计测试政策
    effective_from: 2027-01-01
    rules:
      - id: flat
        measure: amount
        period: month
        style: retroactive
        tiers: [{from: 0, rate: 2%}]
        priority: 1
        stacking: stack
    """)


def problems_of(text: str) -> dict[str, str]:
    with pytest.raises(PolicyDocumentError) as info:
        parse_policy_document(text)
    return {p.field: p.message for p in info.value.problems}


@pytest.mark.parametrize("written", ["91320500MA1K2D3F5H", "[]", "{a: 1}"])
def test_an_excluded_customer_not_written_as_a_list_is_named_not_a_crash(written):
    # `customers: 9132…` (one customer, no brackets) is the commonest way to write it
    text = DOC.replace("    measure: amount",
                       f"    exclude:\n      customers: {written}\n    measure: amount")
    problems = problems_of(text)
    assert list(problems) == ["rules[0].exclude.customers"]
    assert "列表" in problems["rules[0].exclude.customers"]


def test_two_policies_pasted_into_one_file_are_explained_in_chinese():
    # the clerk appends next quarter's policy to the same file after a `---` line
    problems = problems_of(DOC + "---\n" + DOC.replace("T-AUDIT4", "T-AUDIT4-Q2"))
    message = problems[""]
    assert "一份政策" in message and "第 12 行" in message
    assert not any(word in message for word in ("expected", "document", "stream"))


@pytest.mark.parametrize("text, words", [
    ("code: &x [*x]\n", "锚点"),  # an anchor used inside itself
    (DOC.replace("    period: month", "    ? [period]\n    : month"), "字段名"),
])
def test_rarer_yaml_mistakes_are_explained_in_chinese_too(text, words):
    message = problems_of(text)[""]
    assert words in message and not any(c.isascii() and c.isalpha() for c in
                                        message.replace("YAML", ""))


def test_a_threshold_grouped_with_a_full_width_comma_is_read_as_written():
    # typed with a Chinese input method: 100，000 (the full-width comma does not split YAML);
    # thousands separators are how amounts are written in China, full-width forms are read
    text = DOC.replace("tiers: [{from: 0, rate: 2%}]",
                       "tiers: [{from: 0, to: 100，000, rate: 2%}, {from: 100000, rate: 3%}]")
    assert parse_policy_document(text).rules[0].tiers[0].upper == Decimal(100000)


@pytest.mark.parametrize("text", ["", "# 2027 年政策（草稿，待填写）\n\n", "---\n"])
def test_an_empty_document_says_it_is_empty(text):
    # the wrong file, or a draft saved before anything was written in it
    assert "文档为空" in problems_of(text)[""]


def test_a_yaml_merge_key_is_explained_not_called_an_unknown_field():
    # conditions shared by two rules written once with an anchor and `<<: *common`
    text = DOC.replace("rules:\n  - id: flat\n",
                       "rules:\n  - &common\n    id: flat\n").replace(
        "    stacking: stack\n", "    stacking: stack\n  - <<: *common\n    id: other\n", 1)
    message = problems_of(text)["rules[1].<<"]
    assert "合并" in message and "未知字段" not in message


def test_a_condition_typed_in_full_width_letters_gets_the_value_it_meant():
    # a Chinese input method left in full-width mode: Ａ and ＭＯＮ－Ｍ８ look like A and MON-M8
    from models.rebates.policy import unknown_values

    spec = parse_policy_document(DOC.replace(
        "    measure: amount",
        "    applies_to: {skus: [ＭＯＮ－Ｍ８], customer_tiers: [Ａ]}\n    measure: amount"))
    known = {"skus": ["MON-M8", "MON-M12"], "customer_tiers": ["A", "B", "C"]}
    warnings = {w.field: w.message for w in unknown_values(spec, lambda kind: known[kind])}
    assert "是否应为 MON-M8？" in warnings["rules[0].applies_to.skus"]
    assert "是否应为 A？" in warnings["rules[0].applies_to.customer_tiers"]


def test_effective_dates_written_the_wrong_way_round_are_one_problem_not_two():
    # effective_to mistyped before effective_from: the rule's order dates are not the problem
    text = DOC.replace("effective_from: 2027-01-01",
                       "effective_from: 2027-04-01\neffective_to: 2027-03-31").replace(
        "    measure: amount",
        "    applies_to: {order_dates: {from: 2027-04-01, to: 2027-06-30}}\n    measure: amount")
    assert list(problems_of(text)) == ["effective_to"]


def test_a_date_typed_with_full_width_digits_is_read_like_numbers_are():
    # ２０２７－０１－０１ from an input method in full-width mode: thresholds and rates written
    # so are read as numbers; a date was refused as "不是有效日期：２０２７-０１-０１"
    import datetime as dt

    spec = parse_policy_document(DOC.replace("effective_from: 2027-01-01",
                                             "effective_from: ２０２７－０１－０１"))
    assert spec.effective_from == dt.date(2027, 1, 1)


def test_a_rate_typed_full_width_with_its_point_is_read_too():
    from decimal import Decimal

    spec = parse_policy_document(DOC.replace("rate: 2%", "rate: ２．５％"))
    assert spec.rules[0].tiers[0].rate == Decimal("0.025")


@pytest.mark.parametrize("name", ["*重点* 推广政策", "&联合返利", "!!重要!! 新品政策"])
def test_a_name_starting_with_a_yaml_sign_asks_for_quotes_in_chinese(name):
    message = problems_of(DOC.replace("name: 审计测试政策", f"name: {name}"))[""]
    assert "请给这个值加引号" in message and "第 2 行" in message
    assert not any(word in message for word in ("while", "expected", "found"))


@pytest.mark.parametrize("text, words", [
    # the text written on the same line as its `|`
    (DOC.replace("name: 审计测试政策", "name: 审计测试政策\ntext: |一、适用范围：全部经销商"), "同一行"),
    (DOC.replace("name: 审计测试政策", "name: - 审计测试政策"), "列表项"),
    (DOC.replace("rules:", "%不含税\nrules:"), "%"),
])
def test_more_yaml_mistakes_are_explained_in_chinese(text, words):
    message = problems_of(text)[""]
    assert words in message and "无法解析" not in message


def test_a_value_starting_with_a_question_mark_asks_for_quotes():
    message = problems_of(DOC.replace("name: 审计测试政策", "name: ? 待定"))[""]
    assert "加引号" in message and "无法解析" not in message


@pytest.mark.parametrize("escaped", ["\\u0000", "\\x00"])
def test_a_nul_character_written_as_an_escape_is_refused(escaped):
    # PostgreSQL cannot store it in a text column: the publication failed with a 500 there
    text = DOC.replace("name: 审计测试政策", f'name: "审计{escaped}测试政策"')
    if escaped == "\\u0000":
        text = ('{"code": "T-NUL", "name": "审计\\u0000测试", "effective_from": "2027-01-01",'
                ' "rules": []}')
    assert "\\u0000" in problems_of(text)[""]


def test_a_choice_written_with_a_capital_says_how_to_write_it():
    problems = problems_of(DOC.replace("period: month", "period: Quarter")
                           .replace("stacking: stack", "stacking: STACK"))
    assert "请写成 quarter" in problems["rules[0].period"]
    assert "请写成 stack" in problems["rules[0].stacking"]


def test_a_misspelt_choice_gets_the_word_it_meant():
    problems = problems_of(DOC.replace("period: month", "period: quater")
                           .replace("style: retroactive", "style: retroactiv"))
    assert "是否应为 quarter？" in problems["rules[0].period"]
    assert "是否应为 retroactive？" in problems["rules[0].style"]


def test_only_full_width_forms_are_read_as_digits_not_footnote_marks():
    # 100000¹ (a footnote mark copied from the policy text) is no 1000001
    problems = problems_of(DOC.replace("tiers: [{from: 0, rate: 2%}]",
                                       "tiers: [{from: 0, to: 100000¹, rate: 2%}, "
                                       "{from: 100000, rate: 3%}]"))
    assert "rules[0].tiers[0].to" in problems
