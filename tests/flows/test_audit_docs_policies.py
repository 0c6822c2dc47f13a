"""Audit: the sales-ops clerk writing rebate policies from docs/rebates.md alone. The docs'
own example is written in YAML flow mappings (`- {from: 0, to: 100000, rate: 2%}`); the
slips below are what a clerk types into that style, and what the messages then tell her.
A message that names a wrong number or a wrong field is worse than none: followed, it
publishes a policy that pays the wrong money."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from models.rebates.policy import PolicyDocumentError, parse_policy_document
from tests.rebate_support import publish

ROOT = Path(__file__).resolve().parents[2]

POLICY = textwrap.dedent("""\
    code: T-DOCS
    name: 2027年第一季度监护产品返利政策
    effective_from: 2027-01-01
    effective_to: 2027-03-31
    rules:
      - id: quarter-volume
        name: 季度销售额阶梯返利
        clause: 第二条
        applies_to:
          product_lines: [监护]
        measure: amount
        period: quarter
        style: retroactive
        tiers:
          - {from: 0, to: 100000, rate: 2%}
          - {from: 100000, to: 500000, rate: 5%}
          - {from: 500000, rate: 8%}
        cap: {amount_per_period: 50000}
        priority: 10
        stacking: stack
    """)


def problems_of(text: str) -> dict[str, str]:
    with pytest.raises(PolicyDocumentError) as info:
        parse_policy_document(text)
    return {p.field: p.message for p in info.value.problems}


def said(problems: dict[str, str]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in problems.items())


# --- 1. a decimal comma with its percent sign, inside the docs' braces ---------------------

@pytest.mark.parametrize("written, meant, misread", [
    ("rate: 5%", "rate: 2,5%", "2%"),       # tier 2 as 2,5 %: the docs' style, one slip
    ("rate: 5%", "rate: 12,5%", "12%"),
])
def test_a_decimal_comma_in_a_rate_inside_braces_is_named_with_the_rate_meant(
        written, meant, misread):
    """docs/rebates.md: a decimal comma (`12,5%`) is refused with the number it most likely
    means (`如指 12.5%，请写成 12.5%`), and inside `{ … }`, where YAML cuts at the comma, the
    "field" after it is explained as a decimal comma. With its `%` the tail (`5%`) is only
    `未知字段`, and the rate is said to be `2` — `如指 2%，请写成 "2%"`: the clerk who meant
    2.5 % is told to publish 2 %."""
    text = POLICY.replace("{from: 100000, to: 500000, " + written + "}",
                          "{from: 100000, to: 500000, " + meant + "}")
    problems = problems_of(text)
    everything = said(problems)
    right = meant.split(": ")[1].replace(",", ".")
    assert f'请写成 "{misread}"' not in everything and f"请写成 {misread}" not in everything, \
        everything
    assert "逗号不能作小数点" in everything and right in everything, everything


def test_a_payment_rate_minimum_with_a_decimal_comma_inside_braces_is_not_read_as_92():
    """`payment_rate: {min: 92,5%}` is told `如指 92%，请写成 "92%"`."""
    text = POLICY.replace("product_lines: [监护]",
                          "product_lines: [监护]\n      payment_rate: {min: 92,5%}")
    everything = said(problems_of(text))
    assert '请写成 "92%"' not in everything, everything
    assert "逗号不能作小数点" in everything and "92.5%" in everything, everything


def test_a_rate_fraction_with_a_decimal_comma_inside_braces_is_not_a_thousands_separator():
    """docs/rebates.md: "A rate never has thousands: a comma in it is a decimal comma".
    `{from: 0, rate: 0,025}` is explained as a thousands separator cut by the braces (and
    told to write 100000)."""
    text = POLICY.replace("{from: 0, to: 100000, rate: 2%}", "{from: 0, to: 100000, rate: 0,025}")
    everything = said(problems_of(text))
    assert "千位分隔符" not in everything, everything
    assert "逗号不能作小数点" in everything and "0.025" in everything, everything


# --- 2. thousands cut by the braces: the message names a number the clerk never wrote -----

@pytest.mark.parametrize("old, new, number", [
    ("cap: {amount_per_period: 50000}", "cap: {amount_per_period: 50,000}", "50000"),
    ("{from: 500000, rate: 8%}", "{from: 500,000, rate: 8%}", "500000"),
])
def test_a_number_cut_at_its_thousands_comma_is_told_as_the_number_written(old, new, number):
    """`cap: {amount_per_period: 50,000}` is told `请写成 100000（不加逗号），或给数字加引号
    "100,000"` — a fixed example read as an instruction: followed, the cap doubles. The
    message should give the number written, without its comma."""
    problems = problems_of(POLICY.replace(old, new))
    cut = [m for f, m in problems.items() if f.endswith(".000")]
    assert cut, said(problems)
    assert "100000" not in cut[0] and f"请写成 {number}" in cut[0], cut[0]


# --- 3. field names that send the clerk to the wrong field --------------------------------

def test_a_rule_clause_written_as_tiaokuan_is_not_sent_to_the_top_level_rules():
    """Inside a rule, `条款: 第二条` is the clause the text cites (docs: `clause` is how the
    text cites it, e.g. 第二条). The message says `请写作 rules（写在文档顶层）`: a list of
    rules at the top, for a value that is a clause number. A name is to be read by the place
    it is written in."""
    text = POLICY.replace("    clause: 第二条\n", "    条款: 第二条\n")
    message = problems_of(text)["rules[0].条款"]
    assert "rules" not in message and "clause" in message, message


def test_effective_date_is_not_taken_for_effective_to():
    """`effective_date:` (the policy's 生效日期) is answered `是否应为 effective_to？` — the
    end date, the opposite of what was meant."""
    text = POLICY.replace("effective_from: 2027-01-01", "effective_date: 2027-01-01")
    message = problems_of(text)["effective_date"]
    assert "effective_to？" not in message, message


def test_a_lone_payment_rate_is_told_a_mapping_that_is_itself_accepted():
    """`payment_rate: 90` is told `请写成 {min: 90}`, which is then refused (`比例不能超过
    100%（90）`): the hint should be the mapping that reads, `{min: 90%}`."""
    text = POLICY.replace("product_lines: [监护]", "product_lines: [监护]\n      payment_rate: 90")
    message = problems_of(text)["rules[0].applies_to.payment_rate"]
    assert "{min: 90}" not in message, message
    hinted = POLICY.replace("product_lines: [监护]",
                            "product_lines: [监护]\n      payment_rate: "
                            + message.split("请写成 ")[1].split("）")[0].split("（")[0])
    parse_policy_document(hinted)  # what the message says to write must read


# --- 4. numbers written as contracts write them --------------------------------------------

@pytest.mark.parametrize("written, number", [("壹拾万元", "100000"), ("100000元整", "100000")])
def test_an_amount_in_contract_style_is_refused_with_the_number_to_write(written, number):
    """docs/rebates.md: a number written the way people say it (`10万`, `300000元`, in
    Chinese numerals `一百二十万元`) is refused with how to write it. Contracts and policy
    texts write amounts in capital numerals (壹拾万元) and with 整; these get a bare
    `应为数字`."""
    text = POLICY.replace("{from: 100000, to: 500000, rate: 5%}",
                          f"{{from: {written}, to: 500000, rate: 5%}}")
    text = text.replace("{from: 0, to: 100000, rate: 2%}", f"{{from: 0, to: {written}, rate: 2%}}")
    message = problems_of(text)["rules[0].tiers[1].from"]
    assert f"请写成 {number}" in message, message


# --- 5. the docs' own example, published: its warning suggests another customer -------------

def test_the_docs_example_does_not_suggest_excluding_an_unrelated_customer(hub):
    """docs/rebates.md's example excludes `某某医疗器械有限公司`. Published on the sample data
    it warns `……不在主数据中（是否应为 浙江仁和医疗器械有限公司？）`: the names share only the
    suffix 医疗器械有限公司. A clerk who follows the suggestion takes the rebate away from a
    real customer that the policy never meant to exclude. The same for any unknown company:
    a suggestion needs the name itself (not its 有限公司 suffix) to be close."""
    doc = (ROOT / "docs/rebates.md").read_text(encoding="utf-8").split("```yaml\n")[1] \
        .split("```")[0]
    done = publish(hub.db_url, doc)
    messages = [w.message for w in done.warnings if w.field == "rules[0].exclude.customers"]
    assert messages and all("浙江仁和" not in m for m in messages), messages
    other = POLICY.replace("product_lines: [监护]",
                           "product_lines: [监护]\n    exclude: {customers: [苏州康泰医疗器械有限公司]}")
    done = publish(hub.db_url, other)
    messages = [w.message for w in done.warnings if w.field == "rules[0].exclude.customers"]
    assert messages and all("是否应为" not in m for m in messages), messages
