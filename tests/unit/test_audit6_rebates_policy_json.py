"""Slips a clerk makes in a JSON policy document (audit round 6): a rate or an amount typed
the way people write it, without quotes (`"rate": 1%`, `"from": 10万`). JSON stops at the
sign and only said a comma was missing or a bracket unclosed."""
from __future__ import annotations

import pytest

from models.rebates.policy import PolicyDocumentError, parse_policy_document

JSON = ('{"code": "J-2027", "name": "JSON政策", "effective_from": "2027-01-01",\n'
        ' "rules": [{"id": "a", "measure": "amount", "period": "month",\n'
        '   "style": "retroactive", "tiers": [{"from": FROM, "rate": RATE}],\n'
        '   "priority": 1, "stacking": "stack"}]}\n')


def syntax_error(text: str) -> str:
    with pytest.raises(PolicyDocumentError) as info:
        parse_policy_document(text)
    [problem] = info.value.problems
    return problem.message


def test_the_json_document_is_valid():
    assert parse_policy_document(JSON.replace("FROM", "0").replace("RATE", '"1%"')).code == "J-2027"


@pytest.mark.parametrize(("from_", "rate", "expected"), [
    ("0", "1%", '第 3 行第 59 列：比例“1%”须加英文双引号，写成 "1%"'),
    ("0", "2.5%", '比例“2.5%”须加英文双引号，写成 "2.5%"'),
    ("0", "1.5 %", '比例“1.5%”须加英文双引号，写成 "1.5%"'),
    ("10 万", '"1%"', "数字后多了“万”（“10万”请写成 100000"),
    ("0", "1.5％", '比例“1.5％”须加英文双引号，写成 "1.5%"'),
    ("10万", '"1%"', "数字后多了“万”（“10万”请写成 100000"),
    ("300000元", '"1%"', "数字后多了“元”（“300000元”请写成 300000"),
])
def test_an_unquoted_percentage_or_amount_says_how_to_write_it(from_, rate, expected):
    message = syntax_error(JSON.replace("FROM", from_).replace("RATE", rate))
    assert message.startswith("JSON 格式错误"), message
    assert expected in message, message
    assert "缺少逗号" not in message


def test_a_missing_comma_is_still_a_missing_comma():
    message = syntax_error(JSON.replace("FROM", '0 "rate": "1%", "x"').replace(', "rate": RATE', ""))
    assert "缺少逗号" in message, message
