"""A clerk fixes a refused policy without reading code: a field written at the wrong level
says where it belongs (found in the schema itself), a field written by its Chinese name says
which name to write, and numbers written with a decimal comma or in Chinese say the number
meant — while thousands separators and full-width digits are read as written."""
from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from models.rebates.policy import (
    _FIELD_WORDS, _SCHEMA, PolicyDocumentError, PolicySpec, parse_policy_document,
)

# a document with every place of the schema filled in
DOC = {
    "code": "T-PLACES", "name": "字段位置测试", "effective_from": "2027-01-01",
    "rules": [{
        "id": "r1", "measure": "amount", "period": "month", "style": "retroactive",
        "priority": 1, "stacking": "stack",
        "applies_to": {"customer_tiers": ["A"], "order_dates": {"from": "2027-01-01"},
                       "payment_rate": {"min": "90%"}},
        "exclude": {"skus": ["X-1"]},
        "tiers": [{"from": "0", "to": "100000", "rate": "2%"}, {"from": "100000", "rate": "3%"}],
        "cap": {"amount_per_period": "50000"},
    }],
}
YAML = """\
code: T-PLACES
name: 字段位置测试
effective_from: 2027-01-01
rules:
  - id: r1
    applies_to:
      customer_tiers: [A]
    measure: amount
    period: month
    style: retroactive
    tiers:
      - from: 0
        to: 100000
        rate: 2%
      - from: 100000
        rate: 3%
    cap:
      amount_per_period: 50000
    priority: 1
    stacking: stack
"""


def problems_of(text: str) -> dict[str, str]:
    with pytest.raises(PolicyDocumentError) as info:
        parse_policy_document(text)
    return {p.field: p.message for p in info.value.problems}


def edit(old: str, new: str, text: str = YAML) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def at(doc: dict, place: str) -> dict:
    """The mapping of `doc` at a schema place (i and j: the first rule, the first tier)."""
    node = doc
    for part in filter(None, place.replace("[i]", ".0").replace("[j]", ".0").split(".")):
        node = node[int(part)] if part.isdigit() else node[part]
    return node


def concrete(place: str) -> str:
    return place.replace("[i]", "[0]").replace("[j]", "[0]")


def test_the_sample_document_fills_every_place_of_the_schema():
    assert parse_policy_document(json.dumps(DOC))
    for place in _SCHEMA:
        assert isinstance(at(DOC, place), dict), place


# --------------------------------------------------------------------------- wrong level

@pytest.mark.parametrize("old, new, field, message", [
    # the brief's cases: tiers at the top, effective_from inside a rule, rate in the conditions
    ("rules:\n", "tiers: [{from: 0, rate: 1%}]\nrules:\n", "tiers",
     "不属于此处：tiers 应写在 rules[i] 下（与 id、name 同级）"),
    ("    measure: amount\n", "    effective_from: 2027-01-01\n    measure: amount\n",
     "rules[0].effective_from",
     "不属于此处：effective_from 应写在文档顶层（不缩进，与 code、name 同级）"),
    ("      customer_tiers: [A]\n", "      customer_tiers: [A]\n      rate: 2%\n",
     "rules[0].applies_to.rate", "不属于此处：rate 应写在 rules[i].tiers[j] 下（与 from、to 同级）"),
    # a field of two places names both
    ("      customer_tiers: [A]\n", "      customer_tiers: [A]\n      to: 2027-03-31\n",
     "rules[0].applies_to.to",
     "不属于此处：to 应写在 rules[i].applies_to.order_dates 下或 rules[i].tiers[j] 下"),
    ("        rate: 3%\n", "        rate: 3%\n        amount_per_period: 50000\n",
     "rules[0].tiers[1].amount_per_period",
     "不属于此处：amount_per_period 应写在 rules[i].cap 下"),
])
def test_a_field_at_the_wrong_level_says_where_it_belongs(old, new, field, message):
    assert problems_of(edit(old, new))[field] == message


def test_every_misplaced_field_names_every_place_the_schema_takes_it():
    """Built from the schema: each field written in each place that does not take it."""
    fields = {f for fs in _SCHEMA.values() for f in fs}
    for place, allowed in _SCHEMA.items():
        for field in sorted(fields - set(allowed)):
            doc = copy.deepcopy(DOC)
            at(doc, place)[field] = "x"
            message = problems_of(json.dumps(doc))[f"{place and concrete(place) + '.'}{field}"]
            assert message.startswith(f"不属于此处：{field} 应写在"), message
            for home in (p for p, fs in _SCHEMA.items() if field in fs):
                assert (f" {home} 下" if home else "文档顶层") in message, (place, field)


def test_the_readers_take_their_fields_from_the_schema():
    """Every field the schema gives a place is accepted there (no second list in a reader
    that could refuse it), and a field no place takes is an unknown field with the list."""
    doc = copy.deepcopy(DOC)
    doc["rules"][0]["applies_to"].update(product_lines=["监护"], skus=["M"], regions=["华东"])
    doc["rules"][0]["applies_to"]["order_dates"]["to"] = "2027-12-31"
    doc["rules"][0]["applies_to"]["payment_rate"]["no_history"] = "pass"
    doc["rules"][0]["exclude"].update(product_lines=["耗材"], customers=["某公司"])
    doc["rules"][0].update(name="规则", clause="第一条")
    doc.update(effective_to="2027-12-31", text="正文")
    for place, allowed in _SCHEMA.items():
        assert set(at(doc, place)) == set(allowed), place
    spec = parse_policy_document(json.dumps(doc))
    assert PolicySpec.from_json(spec.to_json()) == spec
    doc["rules"][0]["tiers"][0]["bonus"] = "1"
    assert problems_of(json.dumps(doc))["rules[0].tiers[0].bonus"] == \
        "未知字段；可用字段：from、to、rate"


# --------------------------------------------------------------------------- Chinese names

def test_every_chinese_name_belongs_to_a_field_of_the_schema():
    fields = {f for fs in _SCHEMA.values() for f in fs}
    assert set(_FIELD_WORDS) == fields  # one entry per field, no field left out
    for place, allowed in _SCHEMA.items():
        # a name never stands for two fields of one place: the place decides
        words = [w for f in allowed for w in _FIELD_WORDS[f]]
        assert len(words) == len(set(words)), place
    assert not fields & {w for ws in _FIELD_WORDS.values() for w in ws}


@pytest.mark.parametrize("old, new, field, message", [
    ("effective_from:", "生效日期:", "生效日期", "字段“生效日期”无法识别：请写作 effective_from"),
    ("rules:", "规则:", "规则", "字段“规则”无法识别：请写作 rules"),
    ("    tiers:", "    阶梯:", "rules[0].阶梯", "字段“阶梯”无法识别：请写作 tiers"),
    ("        rate: 2%", "        返利比例: 2%", "rules[0].tiers[0].返利比例",
     "字段“返利比例”无法识别：请写作 rate"),
    ("      customer_tiers:", "      客户等级:", "rules[0].applies_to.客户等级",
     "字段“客户等级”无法识别：请写作 customer_tiers"),
    # one name, two fields: the place says which
    ("effective_from:", "开始日期:", "开始日期", "字段“开始日期”无法识别：请写作 effective_from"),
    ("      customer_tiers: [A]\n", "      customer_tiers: [A]\n      订单日期:\n        开始日期: 2027-01-01\n",
     "rules[0].applies_to.订单日期", "字段“订单日期”无法识别：请写作 order_dates"),
    ("        rate: 3%", "        比例: 3%", "rules[0].tiers[1].比例",
     "字段“比例”无法识别：请写作 rate"),
    # a field typed full-width, as an input method does
    ("        rate: 3%", "        ｒａｔｅ: 3%", "rules[0].tiers[1].ｒａｔｅ",
     "字段“ｒａｔｅ”无法识别：请写作 rate"),
])
def test_a_chinese_field_name_says_which_name_to_write(old, new, field, message):
    problems = problems_of(edit(old, new))
    assert problems[field] == message
    # the field it stands for is not also called missing: one fix, one line
    meant = message.rsplit(" ", 1)[1]
    assert not any(f.endswith(f".{meant}") or f == meant for f in problems), problems


def test_a_chinese_name_of_a_field_of_another_place_says_where_it_goes():
    message = problems_of(edit("    measure: amount\n", "    生效日期: 2027-01-01\n"
                               "    measure: amount\n"))["rules[0].生效日期"]
    assert message == "字段“生效日期”无法识别：请写作 effective_from（写在文档顶层）"
    message = problems_of(edit("    measure: amount\n", "    开始日期: 2027-01-01\n"
                               "    measure: amount\n"))["rules[0].开始日期"]
    assert message.startswith("字段“开始日期”无法识别：请写作 effective_from（写在文档顶层）或 from（写在")
    assert " rules[i].applies_to.order_dates 下" in message


def test_every_chinese_name_is_understood_wherever_its_field_belongs():
    for field, words in _FIELD_WORDS.items():
        for place in (p for p, fs in _SCHEMA.items() if field in fs):
            for word in words:
                doc = copy.deepcopy(DOC)
                node = at(doc, place)
                node[word] = node.pop(field, "x")
                key = f"{place and concrete(place) + '.'}{word}"
                assert problems_of(json.dumps(doc, ensure_ascii=False))[key] == \
                    f"字段“{word}”无法识别：请写作 {field}", (place, word)


# --------------------------------------------------------------------------- numbers

@pytest.mark.parametrize("old, new, path, value", [
    # thousands separators, as amounts are written in China (also full-width, as typed)
    ("        to: 100000\n", "        to: 1,000,000\n", "to", Decimal(1000000)),
    ("        to: 100000\n", "        to: 100，000\n", "to", Decimal(100000)),
    ("        to: 100000\n", "        to: '100,000.50'\n", "to", Decimal("100000.5")),
    ("        to: 100000\n", "        to: １００，０００\n", "to", Decimal(100000)),
    # full-width digits and points
    ("        rate: 2%\n", "        rate: １２.５%\n", "rate", Decimal("0.125")),
    ("        rate: 2%\n", "        rate: １２．５％\n", "rate", Decimal("0.125")),
])
def test_grouped_and_full_width_numbers_are_read_as_written(old, new, path, value):
    text = edit(old, new)
    if path == "to":  # the next tier starts where this one ends
        text = edit("      - from: 100000\n", f"      - from: {value}\n", text)
    tier = parse_policy_document(text).rules[0].tiers[0]
    read = tier.upper if path == "to" else tier.rate
    assert read == value and type(read) is Decimal


def test_a_grouped_cap_is_read_and_stays_decimal():
    spec = parse_policy_document(edit("amount_per_period: 50000", "amount_per_period: 1,234,567.89"))
    assert spec.rules[0].cap == Decimal("1234567.89") and type(spec.rules[0].cap) is Decimal
    assert PolicySpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize("old, new, field, hint", [
    # a decimal comma: not Chinese usage, and a misread pays ten or a thousand times
    ("rate: 2%", "rate: 12,5%", "rules[0].tiers[0].rate",
     "（逗号不能作小数点，小数点请用半角“.”：如指 12.5%，请写成 12.5%）"),
    ("rate: 2%", "rate: 12，5%", "rules[0].tiers[0].rate",
     "（逗号不能作小数点，小数点请用半角“.”：如指 12.5%，请写成 12.5%）"),
    ("rate: 2%", "rate: 0,025", "rules[0].tiers[0].rate",
     "（逗号不能作小数点，小数点请用半角“.”：如指 0.025，请写成 0.025）"),
    # a rate needs no thousands separator: 1,500% is 1.5 % written with a decimal comma
    ("rate: 2%", "rate: 1,500%", "rules[0].tiers[0].rate",
     "（逗号不能作小数点，小数点请用半角“.”：如指 1.5%，请写成 1.5%）"),
    ("amount_per_period: 50000", "amount_per_period: 1.000,5", "rules[0].cap.amount_per_period",
     "（逗号不能作小数点，小数点请用半角“.”：如指 1000.5，请写成 1000.5）"),
    ("amount_per_period: 50000", "amount_per_period: 50000,50",
     "rules[0].cap.amount_per_period",
     "（逗号不能作小数点，小数点请用半角“.”：如指 50000.5，请写成 50000.5）"),
    # commas by 万 (four digits a group), as some write Chinese amounts: 10,000, not ¥1
    ("amount_per_period: 50000", "amount_per_period: 1,0000", "rules[0].cap.amount_per_period",
     "（“1,0000”请写成 10000：逗号只能三位一组分隔千位，也可以不写）"),
    ("amount_per_period: 50000", "amount_per_period: 120,0000,0000",
     "rules[0].cap.amount_per_period",
     "（“120,0000,0000”请写成 12000000000：逗号只能三位一组分隔千位，也可以不写）"),
    ("amount_per_period: 50000", "amount_per_period: 1.000.000",
     "rules[0].cap.amount_per_period",
     "（“1.000.000”请写成 1000000：千位分隔符只能用逗号“,”，也可以不写）"),
    # Chinese numbers: the figure meant, to write in digits
    ("rate: 2%", "rate: 百分之十二点五", "rules[0].tiers[0].rate", "（“百分之十二点五”请写成 12.5%）"),
    ("rate: 2%", "rate: 十二点五%", "rules[0].tiers[0].rate", "（“十二点五%”请写成 12.5%）"),
    ("rate: 2%", "rate: 千分之五", "rules[0].tiers[0].rate", "（“千分之五”请写成 0.5%）"),
    ("amount_per_period: 50000", "amount_per_period: 一百二十万元",
     "rules[0].cap.amount_per_period",
     "（“一百二十万元”请写成 1200000：金额以元、数量以件为单位，只写数字）"),
    ("amount_per_period: 50000", "amount_per_period: 五万零五十",
     "rules[0].cap.amount_per_period",
     "（“五万零五十”请写成 50050：金额以元、数量以件为单位，只写数字）"),
])
def test_decimal_commas_and_chinese_numbers_are_refused_with_the_number_meant(
        old, new, field, hint):
    message = problems_of(edit(old, new))[field]
    assert message.startswith("应为数字，实为 ") and message.endswith(hint), message


def test_a_rate_above_a_hundred_percent_is_still_refused():
    # 1,000 as a thousands separator would make 1000 %: a rate is never read that way, and
    # a percentage above 100 stays refused
    assert "比例不能超过 100%" in problems_of(edit("rate: 2%", "rate: 120%"))[
        "rules[0].tiers[0].rate"]
    assert "应为数字" in problems_of(edit("rate: 2%", "rate: '1,000'"))["rules[0].tiers[0].rate"]


def test_a_number_cut_at_its_comma_inside_braces_is_explained():
    text = edit("    cap:\n      amount_per_period: 50000\n",
                "    cap: {amount_per_period: 50000,50}\n")
    message = problems_of(text)["rules[0].cap.50"]
    assert "逗号不能作小数点" in message and "未知字段" not in message
    text = edit("    cap:\n      amount_per_period: 50000\n",
                "    cap: {amount_per_period: 1,000,000}\n")
    with pytest.raises(PolicyDocumentError) as info:
        parse_policy_document(text)
    # the two tails are one slip, not also a key written twice
    said = [p.message for p in info.value.problems if p.field == "rules[0].cap.000"]
    # the number written, not a fixed example (which, followed, would publish another cap)
    assert len(said) == 1 and "千位分隔符" in said[0] and '"1,000,000"' in said[0] \
        and "请写成 1000000（" in said[0], said


def test_a_lone_grouped_amount_for_the_cap_is_shown_without_its_commas():
    # inside braces YAML would cut 1,000,000 at its commas: the mapping to write has none
    text = edit("    cap:\n      amount_per_period: 50000\n", "    cap: 1,000,000\n")
    assert problems_of(text)["rules[0].cap"] == \
        "应为键值映射（字段: 值），请写成 {amount_per_period: 1000000}"


def test_an_unknown_field_holding_another_fields_content_names_that_field():
    """`conditions:` for applies_to, `limits:` for cap: what the mapping holds says which
    field of the rule it stands for (the schema's places again)."""
    text = edit("    applies_to:\n", "    conditions:\n")
    assert problems_of(text)["rules[0].conditions"].startswith(
        "未知字段（其中的字段属于 applies_to：是否应为 applies_to？）；可用字段：id、")
    text = edit("    cap:\n", "    limits:\n")
    assert "是否应为 cap？" in problems_of(text)["rules[0].limits"]
    text = edit("    applies_to:\n      customer_tiers: [A]\n", "    scope:\n      skus: [A]\n")
    assert "是否应为 applies_to 或 exclude？" in problems_of(text)["rules[0].scope"]
