"""Next year's version of a policy that does not follow on from the last one (audit a2):
“2026年下半年” ends on 31 December, the clerk's 2027 version starts on 15 January (a typo for
the 1st, or a pause nobody decided): the orders in between earn nothing under the code, and
publishing said nothing about it."""
from __future__ import annotations

from tests.rebate_support import publish

H2 = """\
code: BASE-H
name: 经销商基础返利政策
effective_from: 2026-07-01
effective_to: 2026-12-31
rules:
  - id: base-flat
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 10
    stacking: stack
"""


def said_of(done) -> list[str]:
    return [w.message for w in done.warnings if w.field == "effective_from"]


def test_a_version_starting_after_a_gap_says_which_order_dates_no_version_governs(hub):
    publish(hub.db_url, H2)
    later = H2.replace("effective_from: 2026-07-01", "effective_from: 2027-01-15").replace(
        "effective_to: 2026-12-31", "effective_to: 2027-12-31").replace("rate: 2%", "rate: 2.5%")
    said = said_of(publish(hub.db_url, later))
    assert len(said) == 1, said
    assert "2027-01-01 至 2027-01-14" in said[0] and "第 1 版" in said[0]
    assert "effective_from 改为 2027-01-01" in said[0]


def test_a_version_that_follows_on_or_supersedes_is_not_warned_of_a_gap(hub):
    publish(hub.db_url, H2)
    follows = H2.replace("effective_from: 2026-07-01", "effective_from: 2027-01-01").replace(
        "effective_to: 2026-12-31", "effective_to: 2027-12-31")
    assert said_of(publish(hub.db_url, follows)) == []
    inside = follows.replace("effective_from: 2027-01-01", "effective_from: 2027-03-01").replace(
        "rate: 2%", "rate: 3%")
    assert said_of(publish(hub.db_url, inside)) == []
