"""Tiers written as a clerk reads them off a policy text (audit a2): “1–10台 3%，11–30台 5%，
31台以上 8%” are inclusive ranges of whole units. The document is refused (tiers are from
inclusive, to exclusive, and a one-unit gap may be meant either way), but the refusal must
say how to close it: “空档（上一档止于 10，本档起于 11）” alone reads as nonsense to someone
who sees no number between 10 and 11, and the fix that comes to mind — tier 2 from 10 — puts
the tenth unit in tier 2 (5 % instead of the 3 % the text says) without any complaint."""
from __future__ import annotations

from models.rebates.policy import PolicyDocumentError, parse_policy_document

DOC = """\
code: NEW-M12-2026Q4
name: M12新品季度台数返利
effective_from: 2026-10-01
rules:
  - id: m12-units
    measure: {measure}
    period: quarter
    style: retroactive
    tiers:
{tiers}
    priority: 20
    stacking: stack
"""


def problems_of(measure: str, tiers: str) -> dict[str, str]:
    try:
        parse_policy_document(DOC.format(measure=measure, tiers=tiers))
    except PolicyDocumentError as exc:
        return {p.field: p.message for p in exc.problems}
    raise AssertionError("accepted")


def test_inclusive_unit_ranges_are_refused_with_the_to_that_closes_the_gap():
    said = problems_of("quantity", "      - {from: 1, to: 10, rate: 3%}\n"
                                   "      - {from: 11, to: 30, rate: 5%}\n"
                                   "      - {from: 31, rate: 8%}")
    assert set(said) == {"rules[0].tiers[1].from", "rules[0].tiers[2].from"}
    first = said["rules[0].tiers[1].from"]
    assert first.startswith("与上一档之间有空档（上一档止于 10，本档起于 11）")
    assert "不含止点" in first and "上一档的 to 写成 11" in first
    assert "上一档的 to 写成 31" in said["rules[0].tiers[2].from"]


def test_an_amount_range_ending_a_fen_or_a_yuan_short_gets_the_same_hint():
    said = problems_of("amount", "      - {from: 0, to: 99999.99, rate: 1%}\n"
                                 "      - {from: 100000, to: 499999, rate: 2%}\n"
                                 "      - {from: 500000, rate: 3%}")
    assert "上一档的 to 写成 100000" in said["rules[0].tiers[1].from"]
    assert "上一档的 to 写成 500000" in said["rules[0].tiers[2].from"]


def test_a_real_gap_is_not_explained_as_inclusive_ends():
    said = problems_of("amount", "      - {from: 0, to: 100000, rate: 1%}\n"
                                 "      - {from: 120000, rate: 2%}")
    assert said == {"rules[0].tiers[1].from":
                    "与上一档之间有空档（上一档止于 100000，本档起于 120000）"}
