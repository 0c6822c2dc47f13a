"""Policy documents the clerk gets wrong: syntax errors in Chinese at the right line, numbers
and nesting out of bounds, booleans, full-width punctuation; and the pure checks publishing
adds (values unknown to the master data, order dates left without a version)."""
from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal

import pytest

from models.rebates.policy import (
    PolicyBook, PolicyDocumentError, PublishedVersion, parse_policy_document, unknown_values,
)

DOC = textwrap.dedent("""\
    code: TEST-A
    name: 测试政策
    effective_from: 2027-01-01
    rules:
      - id: r1
        measure: amount
        period: month
        style: retroactive
        tiers:
          - {from: 0, to: 100000, rate: 2%}
          - {from: 100000, rate: 5%}
        priority: 1
        stacking: stack
    """)


def problems_of(text: str) -> dict[str, str]:
    with pytest.raises(PolicyDocumentError) as info:
        parse_policy_document(text)
    return {p.field: p.message for p in info.value.problems}


def edit(old: str, new: str, text: str = DOC) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# --------------------------------------------------------------------------- numbers

@pytest.mark.parametrize("to", ["1e400", "1e999999999", "12345678901234567890123456789",
                                "1e28", "10000000000001"])
def test_huge_numbers_are_refused_naming_the_field(to):
    problems = problems_of(edit("to: 100000, rate: 2%}", f"to: {to}, rate: 2%}}"))
    assert "数值过大" in problems["rules[0].tiers[0].to"]


def test_numbers_with_too_many_places_are_refused():
    problems = problems_of(edit("rate: 2%}", "rate: 1e-999999999}"))
    assert "小数位数过多（最多 10 位）" in problems["rules[0].tiers[0].rate"]
    problems = problems_of(edit("rate: 2%}", "rate: 0.01234567891}"))
    assert "小数位数过多" in problems["rules[0].tiers[0].rate"]
    assert parse_policy_document(edit("rate: 2%}", "rate: 0.0123456789}")).rules[0].tiers[
        0].rate == Decimal("0.0123456789")


def test_the_largest_threshold_is_accepted():
    spec = parse_policy_document(edit("to: 100000, rate: 2%}\n      - {from: 100000,",
                                      "to: 10000000000000, rate: 2%}\n"
                                      "      - {from: 10000000000000,"))
    assert spec.rules[0].tiers[0].upper == Decimal(10) ** 13


def test_huge_numbers_in_json_too():
    text = ('{"code":"J-1","name":"x","effective_from":"2027-01-01","rules":[{"id":"r",'
            '"measure":"amount","period":"month","style":"retroactive","tiers":[{"from":0,'
            '"rate":"1%%"}],"priority":%s,"stacking":"stack"}]}')
    assert "数值过大" in problems_of(text % ("1" * 5000))["rules[0].priority"]
    assert "数值过大" in problems_of(text % "1e400")["rules[0].priority"]


def test_booleans_are_not_numbers():
    text = ('{"code":"J-1","name":"x","effective_from":"2027-01-01","rules":[{"id":"r",'
            '"measure":"amount","period":"month","style":"retroactive","tiers":[{"from":0,'
            '"rate":true}],"priority":false,"stacking":"stack"}]}')
    problems = problems_of(text)
    assert problems["rules[0].tiers[0].rate"] == "应为数字，实为 true"
    assert problems["rules[0].priority"] == "应为数字，实为 false"


def test_full_width_percent_sign_is_a_percent_sign():
    spec = parse_policy_document(edit("rate: 2%}", "rate: 12.5％}"))
    assert spec.rules[0].tiers[0].rate == Decimal("0.125")


def test_dates_outside_the_calendar_of_the_hub_are_refused():
    problems = problems_of(edit("effective_from: 2027-01-01", "effective_from: 0001-01-01"))
    assert "2000-01-01 至 2099-12-31" in problems["effective_from"]


# --------------------------------------------------------------------------- nesting

@pytest.mark.parametrize("text", ["[" * 50_000, "a: " + "[" * 50_000, "{" * 30_000,
                                  "- " * 5_000 + "x\n", '{"a":' * 5_000 + "1" + "}" * 5_000,
                                  "[" * 500 + "]" * 500])
def test_deep_nesting_is_refused_in_chinese(text):
    assert "文档嵌套层数过深" in problems_of(text)[""]


def test_anchors_cannot_make_a_problem_message_explode():
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n"
        for i in range(5))  # *f: a million items
    text = laughs + edit("  - {from: 0, to: 100000, rate: 2%}",
                         "  - {from: 0, to: 100000, rate: *f}", DOC)
    message = problems_of(text)["rules[0].tiers[0].rate"]
    assert message.startswith("应为数字") and len(message) < 200


# --------------------------------------------------------------------------- syntax

def test_full_width_colon_is_reported_at_its_line_with_a_hint():
    (message,) = problems_of(edit("name: 测试政策", "name：测试政策")).values()
    assert message.startswith("YAML 格式错误，第 2 行第 1 列：找不到字段名后的冒号")
    assert "第 2 行用了全角标点“：”，请改为半角“:”" in message


def test_full_width_colon_on_the_first_line():
    (message,) = problems_of(edit("code: TEST-A", "code：TEST-A")).values()
    assert "第 1 行用了全角标点“：”" in message


def test_tab_is_explained_in_chinese():
    (message,) = problems_of("code: X\n\tname: tab\n").values()
    assert message == "YAML 格式错误，第 2 行第 1 列：含有制表符（Tab），YAML 只能用空格缩进"


def test_unclosed_bracket_is_reported_where_it_opens():
    (message,) = problems_of("code: X\nname: [unclosed\nrules:\n  - id: a\n").values()
    assert message.startswith("YAML 格式错误，第 2 行第 7 列：列表 [ … ] 缺少逗号或右方括号")
    assert "could" not in message and "expected" not in message


@pytest.mark.parametrize("text, words", [
    ("code: 'abc\nname: x\n", "第 1 行第 7 列：引号未闭合"),
    ("rules:\n  - id: a\n - id: b\n", "第 3 行第 2 列：缩进不一致"),
    ("code: @x\n", "该字符不能出现在值的开头"),
    ("code: *x\n", "未定义的锚点"),
    ("code: a\x07b\n", "第 1 行：含有不能使用的控制字符"),
])
def test_common_yaml_problems_in_chinese(text, words):
    (message,) = problems_of(text).values()
    assert message.startswith("YAML 格式错误") and words in message


@pytest.mark.parametrize("text, words", [
    ('{"code":"J-1", "name": }', "JSON 格式错误，第 1 行第 24 列：此处缺少值"),
    ('{"code": "J", "rules": [1, 2\n', "JSON 格式错误，第 1 行末尾：文档意外结束"),
    ('{"code" "J"}', "字段名后缺少冒号"),
    ('{"code"："J"}', "第 1 行用了全角标点“：”"),
    ('{"code": "J",}', "字段名须用英文双引号括起"),
    ('{"code": "J"} x', "文档结束后还有多余内容"),
    ('["a",\n "b" "c"]', "JSON 格式错误，第 2 行第 6 列：缺少逗号"),
])
def test_broken_json_is_reported_as_json_in_chinese(text, words):
    (message,) = problems_of(text).values()
    assert words in message and "Expecting" not in message


def test_yaml_flow_mapping_is_still_read_as_yaml():
    spec = parse_policy_document("{code: F-1, name: 流式, effective_from: 2027-01-01, rules: ["
                                 "{id: r, measure: amount, period: month, style: retroactive,"
                                 " tiers: [{from: 0, rate: 1%}], priority: 1, stacking: stack}]}")
    assert spec.code == "F-1"


# --------------------------------------------------------------------------- master data

def test_unknown_condition_values_are_warned_with_a_suggestion():
    spec = parse_policy_document(edit("    measure: amount\n", textwrap.indent(textwrap.dedent("""\
        applies_to:
          skus: [mon-m12, MON-M8, NEW-X1]
          customer_tiers: [A级, B]
          regions: [华东区]
          product_lines: [监护仪]
        exclude:
          customers: [不存在的公司, ９１３２０５００ＭＡ１Ｋ２Ｄ３Ｆ５Ｈ]
        measure: amount
        """), "    ")))
    known = {"skus": ["MON-M8", "MON-M12"], "customer_tiers": ["A", "B", "C"],
             "regions": ["华东", "华南"], "product_lines": ["监护", "输注"],
             "customers": ["91320500MA1K2D3F5H", "江苏康达医疗设备有限公司"]}
    asked = []
    warnings = unknown_values(spec, lambda kind: asked.append(kind) or known[kind])
    got = {(w.field, w.message.split("”")[0].split("“")[1]): w.message for w in warnings}
    assert set(got) == {("rules[0].applies_to.skus", "mon-m12"),
                        ("rules[0].applies_to.skus", "NEW-X1"),
                        ("rules[0].applies_to.customer_tiers", "A级"),
                        ("rules[0].applies_to.regions", "华东区"),
                        ("rules[0].applies_to.product_lines", "监护仪"),
                        ("rules[0].exclude.customers", "不存在的公司")}
    assert "是否应为 MON-M12" in got[("rules[0].applies_to.skus", "mon-m12")]
    assert "是否应为" not in got[("rules[0].applies_to.skus", "NEW-X1")]
    assert "是否应为 A？" in got[("rules[0].applies_to.customer_tiers", "A级")]
    assert "是否应为 华东？" in got[("rules[0].applies_to.regions", "华东区")]
    assert "该排除不会生效" in got[("rules[0].exclude.customers", "不存在的公司")]
    assert sorted(asked) == sorted(known)  # each kind asked once


# --------------------------------------------------------------------------- coverage

def _version(n: int, start: str, end: str | None = None) -> PublishedVersion:
    return PublishedVersion("P", n, parse_policy_document(edit(
        "effective_from: 2027-01-01", f"effective_from: {start}"
        + (f"\neffective_to: {end}" if end else ""), edit("code: TEST-A", "code: P"))))


def test_a_version_ending_earlier_leaves_dates_uncovered():
    book = PolicyBook([_version(1, "2027-01-01", "2027-12-31"),
                       _version(2, "2027-04-01", "2027-09-30")])
    D = dt.date
    assert book.lost_coverage(_version(3, "2027-02-01", "2027-02-28").spec) == [
        (D(2027, 3, 1), D(2027, 9, 30))]
    open_ended = PolicyBook([_version(1, "2027-01-01")])
    assert open_ended.lost_coverage(_version(2, "2027-03-01", "2027-06-30").spec) == [
        (D(2027, 7, 1), None)]
    assert open_ended.lost_coverage(_version(2, "2027-03-01").spec) == []
    assert PolicyBook([]).lost_coverage(_version(1, "2027-03-01", "2027-03-31").spec) == []
    last = PolicyBook([_version(1, "2099-01-01", "2099-12-31")])
    assert last.lost_coverage(_version(2, "2099-06-01", "2099-12-31").spec) == []


def test_a_bare_rate_of_one_and_a_nameless_exclusion_are_refused():
    """`rate: 1` is 100 % as a fraction, far more likely a slip for 1 %; an excluded customer
    written as punctuation alone would match every customer without a USCC."""
    assert "比例 1 含义不明" in problems_of(edit("rate: 2%", "rate: 1"))["rules[0].tiers[0].rate"]
    assert parse_policy_document(edit("rate: 2%", "rate: 100%"))
    nameless = edit("stacking: stack\n", "stacking: stack\n    exclude: {customers: ['（）']}\n")
    assert "没有可识别的文字" in problems_of(nameless)["rules[0].exclude.customers[0]"]
