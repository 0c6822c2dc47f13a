"""Policy documents: validation (every problem, field named, in Chinese), exact numbers,
normalised JSON, version windows."""
from __future__ import annotations

import datetime as dt
import json
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from models.rebates.policy import (
    PolicyBook, PolicyBookError, PolicyDocumentError, PolicySpec, PublishedVersion,
    parse_policy_document,
)

SAMPLES = Path(__file__).resolve().parents[2] / "deployments" / "sample_data" / "policies"

GOOD = textwrap.dedent("""\
    code: MON-2027Q1
    name: 2027年第一季度监护产品返利政策
    effective_from: 2027-01-01
    effective_to: 2027-03-31
    text: |
      一、适用范围：A、B 级经销商采购监护产品线……
    rules:
      - id: quarter-volume
        name: 季度销售额阶梯返利
        clause: 第二条
        applies_to:
          product_lines: [监护]
          skus: [MON-M8, MON-M12]
          customer_tiers: [A, B]
          regions: [华东, 华南]
          order_dates: {from: 2027-01-01, to: 2027-03-31}
          payment_rate: {min: 90%, no_history: pass}
        exclude:
          skus: [CONS-ECG10]
          product_lines: [耗材]
          customers: [91320500MA1K2D3F5H, 某某医疗器械有限公司]
        measure: amount
        period: quarter
        style: retroactive
        tiers:
          - {from: 0, to: 100000, rate: 2%}
          - {from: 100000, to: 500000, rate: 0.05}
          - {from: 500000, rate: 8%}
        cap: {amount_per_period: 50000}
        priority: 10
        stacking: stack
    """)


def problems_of(text: str) -> dict[str, str]:
    with pytest.raises(PolicyDocumentError) as info:
        parse_policy_document(text)
    return {p.field: p.message for p in info.value.problems}


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# --------------------------------------------------------------------------- good documents

def test_good_document_parses_with_exact_decimals():
    spec = parse_policy_document(GOOD)
    assert spec.code == "MON-2027Q1"
    assert spec.effective_from == dt.date(2027, 1, 1)
    assert spec.effective_to == dt.date(2027, 3, 31)
    rule = spec.rules[0]
    assert rule.clause == "第二条"
    assert [t.rate for t in rule.tiers] == [Decimal("0.02"), Decimal("0.05"), Decimal("0.08")]
    assert all(type(t.rate) is Decimal for t in rule.tiers)
    assert rule.tiers[2].upper is None
    assert rule.cap == Decimal("50000")
    assert rule.applies_to.payment_rate.min == Decimal("0.9")
    assert rule.applies_to.payment_rate.no_history == "pass"
    assert rule.exclude.customers == ("91320500MA1K2D3F5H", "某某医疗器械有限公司")


def test_yaml_numbers_never_become_floats():
    # 0.1 + 0.2 as floats is not 0.3: the loader keeps the decimal text (up to 10 places)
    text = edit("rate: 0.05}", "rate: 0.0333333333}")
    rate = parse_policy_document(text).rules[0].tiers[1].rate
    assert rate == Decimal("0.0333333333") and rate != Decimal(0.0333333333)
    # a sku that YAML 1.1 would read as a boolean or an octal number stays as written
    text = edit("skus: [MON-M8, MON-M12]", "skus: [no, 0123, 1_000]")
    assert parse_policy_document(text).rules[0].applies_to.skus == ("no", "0123", "1_000")


@pytest.mark.parametrize("written, fraction", [
    ("2.5%", "0.025"), ("0.025", "0.025"), ("12.50%", "0.125"), ("100%", "1"), ("0%", "0"),
    ("0.1234%", "0.001234"), ('"8 %"', "0.08"),
])
def test_rates_as_percent_or_fraction(written, fraction):
    text = edit("rate: 8%}", f"rate: {written}}}")
    assert parse_policy_document(text).rules[0].tiers[2].rate == Decimal(fraction)


def test_json_document_is_accepted_with_exact_numbers():
    doc = {"code": "J-1", "name": "JSON 政策", "effective_from": "2027-01-01",
           "rules": [{"id": "r1", "measure": "quantity", "period": "month",
                      "style": "marginal", "priority": 1, "stacking": "exclusive",
                      "tiers": [{"from": 0, "to": 10, "rate": 0.015},
                                {"from": 10, "rate": "3%"}]}]}
    spec = parse_policy_document(json.dumps(doc))
    assert spec.rules[0].tiers[0].rate == Decimal("0.015")
    assert spec.rules[0].name == "r1"  # name defaults to the id


def test_json_round_trip_is_exact_and_stable():
    spec = parse_policy_document(GOOD)
    text = spec.to_json()
    again = PolicySpec.from_json(text)
    assert again == spec
    assert again.to_json() == text
    assert '"rate":"0.08"' in text  # fractions, exact, as text
    for path in sorted(SAMPLES.glob("*.yaml")):
        sample = parse_policy_document(path.read_text(encoding="utf-8"))
        assert PolicySpec.from_json(sample.to_json()) == sample


def test_sample_policies_are_valid():
    codes = {parse_policy_document(p.read_text(encoding="utf-8")).code
             for p in SAMPLES.glob("*.yaml")}
    assert codes == {"BASE-2027", "NEW-M12-2027Q1", "CONS-2027"}


# --------------------------------------------------------------------------- bad documents

@pytest.mark.parametrize("old, new, field, words", [
    ("    tiers:\n", "    tires:\n", "rules[0].tires", "未知字段（是否应为 tiers？）"),
    ("    cap: {amount_per_period: 50000}", "    cap: {amount_per_period: 50000, per: month}",
     "rules[0].cap.per", "未知字段"),
    ("  - {from: 100000, to: 500000, rate: 0.05}", "  - {from: 90000, to: 500000, rate: 0.05}",
     "rules[0].tiers[1].from", "与上一档重叠（上一档止于 100000）"),
    ("  - {from: 100000, to: 500000, rate: 0.05}", "  - {from: 120000, to: 500000, rate: 0.05}",
     "rules[0].tiers[1].from", "与上一档之间有空档（上一档止于 100000，本档起于 120000）"),
    ("  - {from: 100000, to: 500000, rate: 0.05}", "  - {from: 100000, rate: 0.05}",
     "rules[0].tiers[1].to", "只有最后一档可以不写止点"),
    ("rate: 8%}", "rate: 120%}", "rules[0].tiers[2].rate", "比例不能超过 100%"),
    ("rate: 8%}", "rate: 8}", "rules[0].tiers[2].rate", '如指 8%，请写成 "8%"'),
    ("rate: 2%}", "rate: -1%}", "rules[0].tiers[0].rate", "比例不能为负"),
    ("min: 90%", "min: 101%", "rules[0].applies_to.payment_rate.min", "比例不能超过 100%"),
    ("min: 90%", "min: -5%", "rules[0].applies_to.payment_rate.min", "比例不能为负"),
    ("effective_from: 2027-01-01\n", "", "effective_from", "缺少必填字段"),
    ("effective_to: 2027-03-31", "effective_to: 2026-12-31", "effective_to",
     "失效日期 2026-12-31 早于生效日期 2027-01-01"),
    ("effective_from: 2027-01-01", "effective_from: 2027-02-30", "effective_from", "不是有效日期"),
    ("effective_from: 2027-01-01", "effective_from: 2027/01/01", "effective_from",
     "日期格式应为 YYYY-MM-DD"),
    ("to: 2027-03-31}", "to: 2026-03-31}", "rules[0].applies_to.order_dates.to",
     "早于起始日期"),
    ("cap: {amount_per_period: 50000}", "cap: {amount_per_period: 0}",
     "rules[0].cap.amount_per_period", "封顶金额必须大于 0"),
    ("cap: {amount_per_period: 50000}", "cap: {amount_per_period: -10}",
     "rules[0].cap.amount_per_period", "封顶金额必须大于 0"),
    ("id: quarter-volume", "id: Quarter_Volume", "rules[0].id", "[a-z0-9-]"),
    ("    priority: 10\n", "", "rules[0].priority", "缺少必填字段"),
    ("    stacking: stack\n", "", "rules[0].stacking", "缺少必填字段"),
    ("priority: 10", "priority: high", "rules[0].priority", "应为数字"),
    ("period: quarter", "period: quarterly", "rules[0].period", "应为 month 或 quarter"),
    ("style: retroactive", "style: flat", "rules[0].style", "应为 retroactive 或 marginal"),
    ("stacking: stack", "stacking: both", "rules[0].stacking", "应为 stack 或 exclusive"),
    ("no_history: pass", "no_history: maybe", "rules[0].applies_to.payment_rate.no_history",
     "应为 pass 或 fail"),
    ("regions: [华东, 华南]", "regions: []", "rules[0].applies_to.regions", "列表不能为空"),
    ("code: MON-2027Q1", "code: MON|2027", "code", "政策编码"),
    ("  - {from: 0, to: 100000, rate: 2%}", "  - {from: -1, to: 100000, rate: 2%}",
     "rules[0].tiers[0].from", "门槛不能为负"),
    ("  - {from: 0, to: 100000, rate: 2%}", "  - {from: 0, to: 100000.005, rate: 2%}",
     "rules[0].tiers[0].to", "金额门槛最多两位小数"),
    ("  - {from: 0, to: 100000, rate: 2%}", "  - {from: 0, to: 0, rate: 2%}",
     "rules[0].tiers[0].to", "必须大于起点"),
])
def test_bad_document_names_the_field(old, new, field, words):
    problems = problems_of(edit(old, new))
    assert field in problems, problems
    assert words in problems[field]


def test_quantity_thresholds_must_be_whole_units():
    text = edit("measure: amount", "measure: quantity")
    text = edit("  - {from: 100000, to: 500000, rate: 0.05}",
                "  - {from: 100000, to: 500000.5, rate: 0.05}", text)
    text = edit("  - {from: 500000, rate: 8%}", "  - {from: 500000.5, rate: 8%}", text)
    problems = problems_of(text)
    assert "按数量计的门槛必须是整数" in problems["rules[0].tiers[1].to"]
    assert "按数量计的门槛必须是整数" in problems["rules[0].tiers[2].from"]
    # 100.0 is a whole number
    ok = edit("measure: amount", "measure: quantity")
    ok = edit("  - {from: 100000, to: 500000, rate: 0.05}",
              "  - {from: 100000.0, to: 500000, rate: 0.05}", ok)
    assert parse_policy_document(ok).rules[0].tiers[1].lower == 100000


def test_duplicate_rule_id_and_duplicate_key():
    rule = GOOD[GOOD.index("  - id: quarter-volume"):]
    text = GOOD + rule.replace("    priority: 10", "    priority: 10\n    priority: 11")
    problems = problems_of(text)
    assert problems["rules[1].id"] == "规则 id 与 rules[0].id 重复（quarter-volume）"
    assert problems["rules[1].priority"] == "字段重复出现"


def test_missing_fields_of_a_rule_are_all_reported():
    text = textwrap.dedent("""\
        code: X-1
        name: 缺字段
        effective_from: 2027-01-01
        rules:
          - id: a
            tiers: [{from: 0, rate: 1%}]
        """)
    problems = problems_of(text)
    for f in ("measure", "period", "style", "priority", "stacking"):
        assert problems[f"rules[0].{f}"].startswith("缺少必填字段（请写")


def test_all_problems_are_reported_at_once_in_chinese():
    text = edit("tiers:\n", "tires:\n")
    text = edit("rate: 8%}", "rate: 120%}", text)
    text = edit("effective_to: 2027-03-31", "effective_to: 2026-12-31", text)
    text = edit("cap: {amount_per_period: 50000}", "cap: {amount_per_period: 0}", text)
    with pytest.raises(PolicyDocumentError) as info:
        parse_policy_document(text)
    fields = [p.field for p in info.value.problems]
    assert {"rules[0].tires", "rules[0].tiers", "effective_to",
            "rules[0].cap.amount_per_period"} <= set(fields)
    assert "rules[0].tires: 未知字段" in str(info.value)


def test_syntax_errors_and_wrong_shapes():
    problems = problems_of("code: [unclosed\n")
    assert "YAML 格式错误" in problems[""]
    problems = problems_of("- just\n- a list\n")
    assert "应为键值映射" in problems[""]
    problems = problems_of('{"code": "X", "rules": [}')
    assert "格式错误" in problems[""]
    problems = problems_of(edit("rules:\n", "rules: []\nrulez:\n"))
    assert "rulez" in problems


# --------------------------------------------------------------------------- versions

def _spec(code: str, start: str, end: str | None = None, rate: str = "1%",
          measure: str = "amount", period: str = "month") -> PolicySpec:
    return parse_policy_document(textwrap.dedent(f"""\
        code: {code}
        name: 测试政策
        effective_from: {start}
        {f'effective_to: {end}' if end else ''}
        rules:
          - id: flat
            measure: {measure}
            period: {period}
            style: retroactive
            tiers: [{{from: 0, rate: {rate}}}]
            priority: 1
            stacking: stack
        """))


def test_v2_from_mid_month_supersedes_v1():
    book = PolicyBook([PublishedVersion("P", 1, _spec("P", "2027-01-01", "2027-12-31", "1%")),
                       PublishedVersion("P", 2, _spec("P", "2027-02-15", None, "2%"))])
    assert book.version_on("P", dt.date(2027, 2, 14)).version == 1
    assert book.version_on("P", dt.date(2027, 2, 15)).version == 2
    assert book.version_on("P", dt.date(2028, 6, 1)).version == 2  # v2 open-ended
    assert book.version_on("P", dt.date(2026, 12, 31)) is None
    (rule,) = book.rules_on(dt.date(2027, 2, 14))
    assert (rule.version, rule.rule.tiers[0].rate) == (1, Decimal("0.01"))
    (rule,) = book.rules_on(dt.date(2027, 2, 15))
    assert (rule.version, rule.rule.tiers[0].rate) == (2, Decimal("0.02"))
    windows = book.windows("P")
    assert [(w.version, w.start, w.end) for w in windows] == [
        (1, dt.date(2027, 1, 1), dt.date(2027, 2, 14)), (2, dt.date(2027, 2, 15), None)]


def test_superseded_version_does_not_come_back_after_the_new_one_ends():
    book = PolicyBook([PublishedVersion("P", 1, _spec("P", "2027-01-01")),
                       PublishedVersion("P", 2, _spec("P", "2027-02-01", "2027-03-31"))])
    assert book.version_on("P", dt.date(2027, 3, 31)).version == 2
    assert book.version_on("P", dt.date(2027, 4, 1)) is None


def test_backdated_version_takes_over_from_its_own_start():
    book = PolicyBook([PublishedVersion("P", 1, _spec("P", "2027-01-01")),
                       PublishedVersion("P", 2, _spec("P", "2027-03-01")),
                       PublishedVersion("P", 3, _spec("P", "2027-02-01"))])
    assert book.version_on("P", dt.date(2027, 1, 31)).version == 1
    assert book.version_on("P", dt.date(2027, 2, 1)).version == 3
    assert book.version_on("P", dt.date(2027, 3, 15)).version == 3  # v2 never governs
    assert [w.version for w in book.windows("P")] == [1, 3]


def test_several_codes_in_force_together_and_rules_cached_per_date():
    book = PolicyBook([PublishedVersion("BASE", 1, _spec("BASE", "2027-01-01")),
                       PublishedVersion("NEW", 1, _spec("NEW", "2027-01-01", "2027-03-31"))])
    day = dt.date(2027, 2, 1)
    assert [r.code for r in book.rules_on(day)] == ["BASE", "NEW"]
    assert book.rules_on(day) is book.rules_on(day)
    assert [r.code for r in book.rules_on(dt.date(2027, 4, 1))] == ["BASE"]


def test_a_rule_keeps_its_measure_across_versions():
    book = PolicyBook([PublishedVersion("P", 1, _spec("P", "2027-01-01"))])
    problems = book.check_new_version(_spec("P", "2027-02-01", measure="quantity"))
    assert [p.field for p in problems] == ["rules[0].measure"]
    assert "为金额，新版本不能改为数量" in problems[0].message
    problems = book.check_new_version(_spec("P", "2027-02-01", period="quarter"))
    assert [p.field for p in problems] == ["rules[0].period"]
    assert "为按月，新版本不能改为按季" in problems[0].message
    assert book.check_new_version(_spec("P", "2027-02-01")) == []
    with pytest.raises(PolicyBookError):
        PolicyBook([PublishedVersion("P", 1, _spec("P", "2027-01-01")),
                    PublishedVersion("P", 2, _spec("P", "2027-02-01", measure="quantity"))])
