"""Mutation audit of the rebate engine and the policy book: regression guards for mistakes
the existing tests let through (each test names the mistake it catches). Hand-computed;
the arithmetic is in the comments."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from models.rebates.engine import evaluate, settle
from models.rebates.policy import PolicyBook, PublishedVersion
from tests.unit.test_rebate_engine import (
    CUSTOMERS,
    GOOD_PAYER,
    book,
    due_of,
    line,
    policy,
    rule,
)

D = Decimal
TWO_TIERS = "[{from: 0, to: 10000, rate: 1%}, {from: 10000, rate: 3%}]"


def test_a_rule_window_includes_its_last_day():
    """Catches: the rule's order-date window (applies_to.order_dates) read with its end
    exclusive (`day < end` for `day <= end`). A promotion written 「至 2027-01-31」 must pay
    the order of 31 January; the customer would lose the whole rebate of his last-day
    orders, the busiest day of a promotion."""
    b = book(policy("P", rule("promo", "[{from: 0, rate: 2%}]", extra="""\
        applies_to: {order_dates: {from: 2027-01-10, to: 2027-01-31}}
        """)))
    lines = [line("FIRST", "2027-01-10", 1),   # its first day: in
             line("LAST", "2027-01-31", 1),    # its last day: in
             line("AFTER", "2027-02-01", 1),   # the day after: out
             line("BEFORE", "2027-01-09", 1)]  # the day before: out
    dues = evaluate(lines, b, CUSTOMERS, GOOD_PAYER)
    assert sorted(o for _, o in dues) == ["FIRST", "LAST"]
    # 1,000.00 × 2 % = 20.00 on the last day
    assert due_of(dues, "LAST").due == D("20.00")


def test_a_negative_net_quantity_counts_as_nothing_not_less_than_nothing():
    """Catches: a line's negative net quantity (more returned than delivered by the cut, as
    sale_lines can read it: a return keyed before its delivery) not counted as 0. It would
    pull the bucket's volume down, so the other orders lose their tier, and give the order
    itself a negative due (docs/rebates.md: a negative net counts as 0)."""
    b = book(policy("P", rule("vol", TWO_TIERS)))
    lines = [line("BIG", "2027-01-05", 10),     # 10 × 1,000 = 10,000.00: reaches 3 %
             line("NEG", "2027-01-20", -4)]    # −4 units: counts as 0
    dues = evaluate(lines, b, CUSTOMERS, GOOD_PAYER)
    big, neg = due_of(dues, "BIG"), due_of(dues, "NEG")
    assert big.inputs["bucket_volume"] == "10000.00"
    assert big.due == D("300.00")  # 10,000.00 × 3 %
    assert (neg.basis, neg.due) == (D("0.00"), D("0.00"))
    # and nothing is drafted for it (no negative first payment)
    drafts = settle(dues, {}, rerun=False)
    assert {(d.order_id, d.amount) for d in drafts} == {("BIG", D("300.00"))}


def test_a_product_line_exclusion_leaves_the_line_out_of_volume_and_due():
    """Catches: exclude.product_lines ignored. 耗材 excluded from a volume rule must neither
    earn nor push the bucket into the higher tier; ignoring it overpays: here 3 % instead
    of 1 % on the 监护 order (+160.00) and 60.00 on the consumables."""
    b = book(policy("P", rule("vol", TWO_TIERS, extra="""\
        exclude: {product_lines: [耗材]}
        """)))
    lines = [line("MON", "2027-01-05", 8),                                   # 8,000.00 监护
             line("CON", "2027-01-06", 300, "10.00", sku="CONS-ECG10", pl="耗材")]  # 3,000.00
    dues = evaluate(lines, b, CUSTOMERS, GOOD_PAYER)
    assert sorted(o for _, o in dues) == ["MON"]
    mon = due_of(dues, "MON")
    # volume 8,000.00 < 10,000 → 1 %: 80.00
    assert (mon.inputs["bucket_volume"], mon.due) == ("8000.00", D("80.00"))


def _version(code: str, n: int, start: str) -> PublishedVersion:
    return PublishedVersion(code, n, policy(code, rule("r", "[{from: 0, rate: 1%}]"),
                                            start=start))


def test_a_back_dated_version_ends_every_earlier_version_it_overtakes():
    """Catches: a version's governing window ended by the next version's start only (not by
    the earliest start of ANY later version). v1 from 1 Jan; v2 from 1 Mar; v3, published
    after v2, back-dated to 1 Feb: v3 governs from 1 Feb, v2 governs nothing, and v1 ends
    31 Jan. The mistaken window says v1 runs to 28 Feb: statements (settlement._policies)
    and the policy listing would tell customers and legal that v1 governed February."""
    b = PolicyBook([_version("P", 1, "2027-01-01"), _version("P", 2, "2027-03-01"),
                    _version("P", 3, "2027-02-01")])
    assert [(w.version, w.start, w.end) for w in b.windows("P")] == [
        (1, dt.date(2027, 1, 1), dt.date(2027, 1, 31)),
        (3, dt.date(2027, 2, 1), None)]
    assert b.version_on("P", dt.date(2027, 2, 10)).version == 3
    assert b.version_on("P", dt.date(2027, 3, 10)).version == 3
