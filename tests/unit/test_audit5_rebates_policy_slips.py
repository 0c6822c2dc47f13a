"""Slips a clerk makes writing a policy that were refused without saying how to write them
(audit round 5): dates as people and spreadsheets write them, a percentage quoted wrongly in
its own error, per-mille and ¥ amounts, characters an input method or a web page slips in
(full-width space, no-break space, full-width letters, a zero-width space, 【】 brackets)."""
from __future__ import annotations

import textwrap

import pytest

from models.rebates.policy import PolicyDocumentError, parse_policy_document

POLICY = textwrap.dedent("""\
    code: T-SLIPS
    name: 录入习惯测试政策
    effective_from: 2027-01-01
    rules:
      - id: month-tier
        applies_to: {regions: [华东, 华南]}
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


def test_the_written_policy_is_valid():
    assert parse_policy_document(POLICY).code == "T-SLIPS"


@pytest.mark.parametrize("written, hint", [
    ("2027/1/1", "（“2027/1/1”请写成 2027-01-01）"),
    ("2027/01/01", "（“2027/01/01”请写成 2027-01-01）"),
    ("2027年1月1日", "（“2027年1月1日”请写成 2027-01-01）"),
    ("2027-1-1", "（“2027-1-1”请写成 2027-01-01）"),
    ("2027.1.1", "（“2027.1.1”请写成 2027-01-01）"),
    ("20270101", "（“20270101”请写成 2027-01-01）"),
    ("２０２７／１／１", "（“2027/1/1”请写成 2027-01-01）"),  # typed full-width
    # a spreadsheet's date cell exported with its time, or as its serial number
    ("2027-01-01 00:00:00", "（只写日期，不带时间：请写成 2027-01-01）"),
    ("2027-01-01T00:00:00", "（只写日期，不带时间：请写成 2027-01-01）"),
    ("2027/1/1 0:00", "（只写日期，不带时间：请写成 2027-01-01）"),
    ("46388", "（像是 Excel 的日期序号，即 2027-01-01：请写成 2027-01-01）"),
    # a script's toISOString of midnight in Shanghai: the date it means is Shanghai's
    ("2026-12-31T16:00:00.000Z", "（只写日期，不带时间：该时刻在北京时间是 2027-01-01，请写成 2027-01-01）"),
])
def test_a_date_written_another_way_is_refused_with_how_to_write_it(written, hint):
    message = problems_of(POLICY.replace("effective_from: 2027-01-01",
                                         f"effective_from: {written}"))["effective_from"]
    assert message.startswith("日期格式应为 YYYY-MM-DD")
    assert message.endswith(hint)


def test_a_date_in_a_json_document_from_a_spreadsheet_says_how_to_write_it():
    document = ('{"code": "T-SLIPS", "name": "x", "effective_from": 46388, "rules": [{"id": "a",'
                ' "measure": "amount", "period": "month", "style": "retroactive", "tiers": '
                '[{"from": 0, "rate": "2%"}], "priority": 1, "stacking": "stack"}]}')
    assert problems_of(document)["effective_from"].endswith(
        "（像是 Excel 的日期序号，即 2027-01-01：请写成 2027-01-01）")


@pytest.mark.parametrize("written", ["2027/2/30", "12345", "2027年13月1日", "1999/12/31"])
def test_no_date_is_guessed_from_what_is_no_valid_date(written):
    message = problems_of(POLICY.replace("effective_from: 2027-01-01",
                                         f"effective_from: {written}"))["effective_from"]
    assert "请写成" not in message


def test_a_bad_percentage_is_quoted_as_written():
    """`12.5%%` used to be quoted as '12.5%' — as if the valid value were refused."""
    message = problems_of(POLICY.replace("rate: 2%}", "rate: 12.5%%}"))["rules[0].tiers[0].rate"]
    assert message.startswith("应为数字，实为 '12.5%%'"), message


def test_per_mille_and_yuan_signs_say_how_to_write_them():
    problems = problems_of(POLICY.replace("rate: 2%}", "rate: 2.5‰}")
                           .replace("{from: 100000, rate", "{from: ¥100000, rate"))
    assert problems["rules[0].tiers[0].rate"].endswith("（“2.5‰”是千分比，请写成百分比 0.25%）")
    assert problems["rules[0].tiers[1].from"].endswith(
        "（“¥100000”请写成 100000：金额以元、数量以件为单位，只写数字）")


def test_a_full_width_or_no_break_space_breaking_the_syntax_is_named():
    indented = POLICY.replace("    measure: amount", "\u3000\u3000measure: amount")
    message = problems_of(indented)[""]
    assert message.startswith("YAML 格式错误")
    assert message.endswith("；第 7 行用了全角空格，请改为半角空格")
    copied = POLICY.replace("code: T-SLIPS", "code:\u00a0T-SLIPS")
    assert problems_of(copied)[""].endswith(
        "；第 1 行用了不换行空格（网页或 Word 复制来的空格），请改为半角空格")
    dash = POLICY.replace("  - id: month-tier", "  － id: month-tier")
    assert problems_of(dash)[""].endswith("；第 5 行用了全角标点“－”，请改为半角“-”")
    # the 　　 indenting a paragraph of the policy text is a character of the text, not the
    # cause of an error beside it
    paragraph = POLICY.replace("rules:\n", "text: |\n  \u3000\u3000一、适用范围\nx: rules: 1\n")
    message = problems_of(paragraph)[""]
    assert message.startswith("YAML 格式错误，第 6 行") and "全角空格" not in message
    indented = paragraph.replace("  \u3000\u3000一", "\u3000\u3000一")  # not indented: breaks
    assert problems_of(indented)[""].endswith("；第 5 行用了全角空格，请改为半角空格")


def test_a_list_in_chinese_brackets_says_to_use_square_brackets():
    block = POLICY.replace("applies_to: {regions: [华东, 华南]}",
                           "applies_to:\n      regions: 【华东, 华南】")
    assert problems_of(block)["rules[0].applies_to.regions"] == (
        "应为列表（如 [A, B]）：列表须用半角方括号 [ ]，不能用【】或［］")


def test_full_width_letters_and_invisible_characters_say_what_was_meant():
    problems = problems_of(POLICY.replace("code: T-SLIPS", "code: Ｔ－ＳＬＩＰＳ")
                           .replace("id: month-tier", "id: ｍｏｎｔｈ－ｔｉｅｒ")
                           .replace("measure: amount", "measure: ａｍｏｕｎｔ"))
    assert problems["code"].endswith("；含全角字符，请写成 T-SLIPS")
    assert problems["rules[0].id"].endswith("；含全角字符，请写成 month-tier")
    assert problems["rules[0].measure"].endswith("（“ａｍｏｕｎｔ”请写成 amount）")
    hidden = problems_of(POLICY.replace("code: T-SLIPS", "code: T-SLIPS\u200b"))["code"]
    assert hidden.endswith("；含看不见的字符（如零宽空格），请删除后写成 T-SLIPS")


def test_a_spreadsheets_float_noise_says_which_number_was_meant():
    """JSON exported from a spreadsheet carries its binary arithmetic: 0.022999999999999999
    for 2.3 %, 99999.999999999985 for 100000."""
    document = ('{"code": "T-SLIPS", "name": "x", "effective_from": "2027-01-01", "rules": [{'
                '"id": "a", "measure": "amount", "period": "month", "style": "retroactive", '
                '"tiers": [{"from": 0, "to": 99999.999999999985, "rate": 0.022999999999999999},'
                ' {"from": 100000, "rate": "5.0000000000000009%"}], "priority": 1, '
                '"stacking": "stack"}]}')
    problems = problems_of(document)
    assert problems["rules[0].tiers[0].to"].endswith(
        "（像是电子表格导出的浮点误差：如指 100000，请写成 100000）")
    assert problems["rules[0].tiers[0].rate"].endswith(
        "（像是电子表格导出的浮点误差：如指 0.023，请写成 0.023）")
    assert problems["rules[0].tiers[1].rate"].endswith(
        "（像是电子表格导出的浮点误差：如指 5%，请写成 5%）")
    # a number really written with many places is not taken for noise
    precise = document.replace("0.022999999999999999", "0.01234567890123")
    assert "浮点误差" not in problems_of(precise)["rules[0].tiers[0].rate"]


def test_a_policy_in_a_json_list_says_to_drop_the_brackets():
    """A converter exports a sheet as a list of records: one policy in [ … ] is refused with
    how to fix it, not just "应为键值映射"."""
    import json

    one = json.dumps([{"code": "T-SLIPS"}], ensure_ascii=False)
    assert problems_of(one)[""] == ("应为键值映射（字段: 值）：一个文件写一份政策 { … }，"
                                    "不能是列表 [ … ]；请去掉最外层的方括号")
    rows = json.dumps([{"code": "T-SLIPS"}, {"code": "T-OTHER"}], ensure_ascii=False)
    assert problems_of(rows)[""] == "应为键值映射（字段: 值）：一个文件写一份政策 { … }，不能是列表 [ … ]"


def test_tiers_listed_from_the_top_down_are_refused_as_out_of_order():
    """Written as the policy text reads (10万以上5%，10万以下2%): it used to be refused as an
    overlap of each tier with the one before, or as an open tier that is not the last."""
    tiers = "      - {from: 0, to: 100000, rate: 2%}\n      - {from: 100000, rate: 5%}\n"
    assert tiers in POLICY
    expected = ("档位须按起点从小到大排列：本档起于 0，小于上一档的起点 100000，"
                "请把起点小的档位写在前面")
    for top_down in ("      - {from: 100000, rate: 5%}\n      - {from: 0, to: 100000, rate: 2%}\n",
                     "      - {from: 100000, to: 500000, rate: 5%}\n"
                     "      - {from: 0, to: 100000, rate: 2%}\n"):
        assert problems_of(POLICY.replace(tiers, top_down)) == {"rules[0].tiers[1].from": expected}
    # a tier starting inside the one before, in order, is still an overlap
    overlap = "      - {from: 0, to: 100000, rate: 2%}\n      - {from: 50000, rate: 5%}\n"
    assert problems_of(POLICY.replace(tiers, overlap)) == {
        "rules[0].tiers[1].from": "与上一档重叠（上一档止于 100000）"}
