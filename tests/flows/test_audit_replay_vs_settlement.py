"""Audit: the what-if replay (`salesops rebates replay`) against the settlement.

Two promises the sales-ops clerk relies on before publishing a draft:
(a) the replay's "published" side of a month is what that month's settlements computed, when
    nothing new happened since;
(b) its "draft" side is what the settlements pay once the draft is published and the months
    are settled.
Each test sets a scenario up, replays, then settles (or publishes the draft and settles) and
compares month by month, per customer and per rep, with hand-computed figures where given."""
from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal

import pytest
from sqlmodel import select

from flows.hub import current_hub
from flows.rebate_replay import replay
from flows.settlement import settle_month
from models import Customer, Delivery, IntentOrder, RebateLine, Staff
from models.db import session_scope
from models.oplog import apply_changes
from models.rebates.policy import parse_policy_document
from tests.rebate_support import (
    clock_from,
    customer_id,
    invoice,
    publish,
    return_goods,
    signed_order,
)
from tests.support import in_process_cli

D = dt.date
KANGDA, HUANAN, RENHE = "江苏康达医疗设备有限公司", "广州华南医药贸易有限公司", "浙江仁和医疗器械有限公司"
ZHANG, LINA = "张伟（rep-zhangwei）", "李娜（rep-lina）"

# 2 % of each month's 监护 amount; a quarterly tier on 监护 (3 % of the whole quarter from
# 100,000); a marginal quarterly band on 输注 (1 % up to 20,000, 4 % above)
POLICY = """
code: T-AUDIT
name: 审计用返利政策
effective_from: 2026-07-01
rules:
  - id: flat
    name: 基础返利
    clause: 第一条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 10
    stacking: stack
  - id: quarter
    name: 季度阶梯
    clause: 第二条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: quarter
    style: retroactive
    tiers:
      - {from: 0, to: 100000, rate: 0%}
      - {from: 100000, rate: 3%}
    priority: 5
    stacking: stack
  - id: pumps
    name: 输注分段
    clause: 第三条
    applies_to: {product_lines: [输注]}
    measure: amount
    period: quarter
    style: marginal
    tiers:
      - {from: 0, to: 20000, rate: 1%}
      - {from: 20000, rate: 4%}
    priority: 5
    stacking: stack
"""
# version 2 from 1 October: the quarter tier from 80,000 at 4 %, the pumps' upper band 5 %
DRAFT = (POLICY.replace("effective_from: 2026-07-01", "effective_from: 2026-10-01")
         .replace("{from: 0, to: 100000, rate: 0%}", "{from: 0, to: 80000, rate: 0%}")
         .replace("{from: 100000, rate: 3%}", "{from: 80000, rate: 4%}")
         .replace("{from: 20000, rate: 4%}", "{from: 20000, rate: 5%}"))
assert DRAFT.count("80000") == 2 and "5%" in DRAFT


def settled(db_url: str, months) -> dict:
    """What the settlements of `months` booked: per month, per customer legal name (the
    customer the line is booked to), per rep as the replay names them, and in all."""
    with session_scope(db_url) as s:
        names = {c.id: c.legal_name for c in s.exec(select(Customer))}
        reps = {p.id: p.name for p in s.exec(select(Staff))}
        lines = s.exec(select(RebateLine).where(RebateLine.month.in_(list(months)))).all()
    out = {"by_month": defaultdict(Decimal), "customers": defaultdict(Decimal),
           "reps": defaultdict(Decimal), "total": Decimal("0.00")}
    for ln in lines:
        out["by_month"][ln.month] += ln.amount
        out["customers"][names[ln.booked_customer_id]] += ln.amount
        rep = f"{reps[ln.rep_id]}（{ln.rep_id}）" if ln.rep_id else "（未分配）"
        out["reps"][rep] += ln.amount
        out["total"] += ln.amount
    return {k: (dict(v) if isinstance(v, defaultdict) else v) for k, v in out.items()}


def side(result, which: str) -> dict:
    """One side of a replay in the shape of settled(), rows of ¥0.00 left out."""
    def table(rows):
        return {k: getattr(r, which) for k, r in rows.items() if getattr(r, which)}
    return {"by_month": table(result.by_month), "customers": table(result.customers),
            "reps": table(result.reps), "total": getattr(result.total, which)}


def nonzero(figures: dict) -> dict:
    return {k: ({n: a for n, a in v.items() if a} if isinstance(v, dict) else v)
            for k, v in figures.items()}


def settle(month: str, on: dt.date):
    clock_from(on)
    return settle_month(current_hub(), month, documents=False)


def _orders(db: str) -> dict:
    """Q3 and Q4 2026 orders of three customers; returns the order ids by name."""
    kangda, huanan = customer_id(db, KANGDA), customer_id(db, HUANAN)
    o = {}
    clock_from(D(2026, 7, 1))
    publish(db, POLICY)
    o["k9"] = signed_order(db, kangda, D(2026, 9, 15), [("MON-M8", 2)])  # 25,600
    o["k10"] = signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)])  # 64,000
    o["h10"] = signed_order(db, huanan, D(2026, 10, 20), [("PUMP-SP3", 3)],  # 14,940
                            rep_id="rep-lina")
    o["k11"] = signed_order(db, kangda, D(2026, 11, 5), [("MON-M8", 2)])  # 25,600
    o["h11"] = signed_order(db, huanan, D(2026, 11, 12), [("PUMP-VP5", 2)],  # 13,160
                            rep_id="rep-lina")
    o["k12"] = signed_order(db, kangda, D(2026, 12, 3), [("MON-M12", 1)])  # 18,600
    return o


def _returns(db: str, o: dict) -> None:
    """December: one unit of the September order back (an order before the range), two of
    October's."""
    return_goods(db, o["k9"], 1, 1, D(2026, 12, 10))
    return_goods(db, o["k10"], 1, 2, D(2026, 12, 15))


# --- (a) the published side of months already settled ----------------------------------------

def test_published_side_of_settled_months_is_what_their_settlements_paid(hub):
    """Sep, Oct, Nov, Dec settled on the 5th of the next month, nothing recorded since; the
    replay of Nov–Dec (a range starting mid-quarter) gives, as "published", what November's
    and December's settlements paid, per month, customer and rep.

    By hand (published): November — k11 flat 512.00; Q4 监护 89,600 < 100,000: no quarter;
    华南 pumps 14,940 + 13,160 = 28,100: h11 earns 5,060 × 1 % + 8,100 × 4 % = 374.60.
    December — k12 flat 372.00; Q4 监护 108,200 − 25,600 (two of k10 back) = 82,600: still
    below; k9's return: flat −256.00 (September bucket); k10's return: flat −512.00."""
    db = hub.db_url
    o = _orders(db)
    settle("2026-09", D(2026, 10, 5))
    settle("2026-10", D(2026, 11, 5))
    settle("2026-11", D(2026, 12, 5))
    clock_from(D(2026, 12, 20))
    _returns(db, o)
    settle("2026-12", D(2027, 1, 5))

    real = settled(db, ["2026-11", "2026-12"])
    assert real["by_month"] == {"2026-11": Decimal("886.60"), "2026-12": Decimal("-396.00")}
    result = replay(db, parse_policy_document(DRAFT), "2026-11", "2026-12")
    assert side(result, "published") == nonzero(real)


# --- (b) the draft side: publish the draft, settle the months ----------------------------------

@pytest.mark.parametrize("which", ["published", "draft"])
def test_months_never_settled_replay_as_settling_them_pays(hub, which):
    """September and October settled; November and December not yet. The replay of Nov–Dec,
    then (for the draft side) the draft published and both months settled: the same figures
    per month, customer and rep. Under the draft the quarter reaches 80,000 in November
    (89,600 × 4 % = 3,584.00 for Q4's three 监护 orders), and falls back to 82,600 in
    December, still above."""
    db = hub.db_url
    o = _orders(db)
    settle("2026-09", D(2026, 10, 5))
    settle("2026-10", D(2026, 11, 5))
    clock_from(D(2026, 12, 20))
    _returns(db, o)
    clock_from(D(2027, 1, 6))
    result = replay(db, parse_policy_document(DRAFT), "2026-11", "2026-12")
    if which == "draft":
        publish(db, DRAFT)
    settle("2026-11", D(2027, 1, 7))
    settle("2026-12", D(2027, 1, 8))
    assert side(result, which) == nonzero(settled(db, ["2026-11", "2026-12"]))


def _settle_then_compare(db: str, draft: str, start: str, end: str, days: dict, which: str):
    """Replay `start`…`end` with the months not settled yet; then (draft side) publish the
    draft; settle the months on `days`; the replay's side must be what they paid."""
    result = replay(db, parse_policy_document(draft), start, end)
    if which == "draft":
        publish(db, draft)
    for month, day in days.items():
        settle(month, day)
    assert side(result, which) == nonzero(settled(db, list(days)))
    return result


def test_a_payment_rate_condition_in_the_draft_replays_as_settled(hub):
    """Draft version 2 from 1 October pays the flat 2 % only at a payment rate of 90 %:
    康达's invoice due 31 August was paid late (0 % for October and November orders), its
    invoice due 10 November on time (100 % for December's, whose window is Sep–Nov)."""
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    clock_from(D(2026, 7, 1))
    publish(db, POLICY)
    invoice(db, kangda, D(2026, 8, 31), "10000.00", [(D(2026, 9, 20), "10000.00")])
    invoice(db, kangda, D(2026, 11, 10), "10000.00", [(D(2026, 11, 1), "10000.00")])
    signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    signed_order(db, kangda, D(2026, 11, 5), [("MON-M8", 2)])
    signed_order(db, kangda, D(2026, 12, 3), [("MON-M8", 1)])
    settle("2026-09", D(2026, 10, 5))
    clock_from(D(2027, 1, 6))
    draft = DRAFT.replace("applies_to: {product_lines: [监护]}\n    measure: amount\n    period: "
                          "month", "applies_to: {product_lines: [监护], payment_rate: {min: 90%}}"
                          "\n    measure: amount\n    period: month")
    assert draft != DRAFT
    result = _settle_then_compare(db, draft, "2026-10", "2026-12",
                                  {"2026-10": D(2027, 1, 7), "2026-11": D(2027, 1, 8),
                                   "2026-12": D(2027, 1, 9)}, "draft")
    # by hand: only December's 12,800 earns the flat 2 %; the quarter 102,400 × 4 %
    assert result.total.draft == Decimal("256.00") + Decimal("4096.00")


def test_a_draft_lowering_the_cap_mid_quarter_replays_as_settled(hub):
    """Version 1's quarter tier is capped at 5,000 a quarter; the draft (version 2 from
    16 November) at 2,000. Q4: 64,000 + 25,600 (version 1) + 38,400 (version 2) = 128,000 ≥
    100,000: 3 %. Version 1's orders earn 2,688 ≤ 5,000; version 2's order 1,152, but its cap
    leaves nothing after the 2,688 (the cap never reaches back): 0."""
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    capped = POLICY.replace("      - {from: 100000, rate: 3%}\n",
                            "      - {from: 100000, rate: 3%}\n    cap: {amount_per_period: 5000}\n")
    assert capped != POLICY
    clock_from(D(2026, 7, 1))
    publish(db, capped)
    signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    signed_order(db, kangda, D(2026, 11, 5), [("MON-M8", 2)])
    signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 3)])
    settle("2026-09", D(2026, 10, 5))
    settle("2026-10", D(2026, 11, 5))
    clock_from(D(2026, 12, 6))
    draft = capped.replace("effective_from: 2026-07-01", "effective_from: 2026-11-16").replace(
        "amount_per_period: 5000", "amount_per_period: 2000")
    result = _settle_then_compare(db, draft, "2026-11", "2026-11",
                                  {"2026-11": D(2026, 12, 7)}, "draft")
    # flat 512 + 768; quarter: 1,920 (k10) + 768 (k11) + 0 (k12)
    assert result.total.draft == Decimal("512.00") + Decimal("768.00") + Decimal("2688.00")
    assert result.total.published == result.total.draft + Decimal("1152.00")


def test_a_re_rating_inside_the_range_replays_as_settled(hub):
    """The draft narrows the quarter tier to tier-A customers; 康达 (A) is re-rated B on
    15 November (logged): its orders of 10 October and 5 November count, those of
    20 November and 3 December do not, whenever replayed or settled."""
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    clock_from(D(2026, 7, 1))
    publish(db, POLICY)
    signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)])  # 64,000
    signed_order(db, kangda, D(2026, 11, 5), [("MON-M8", 2)])  # 25,600
    clock_from(D(2026, 11, 15))
    with session_scope(db) as s:
        assert apply_changes(s, s.get(Customer, kangda), "staff:ops-01", tier="B")
    signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 3)])  # 38,400
    signed_order(db, kangda, D(2026, 12, 3), [("MON-M8", 1)])  # 12,800
    settle("2026-09", D(2026, 10, 5))
    settle("2026-10", D(2026, 11, 5))
    clock_from(D(2027, 1, 6))
    draft = DRAFT.replace("applies_to: {product_lines: [监护]}\n    measure: amount\n    period: "
                          "quarter", "applies_to: {product_lines: [监护], customer_tiers: [A]}"
                          "\n    measure: amount\n    period: quarter")
    assert draft != DRAFT
    result = _settle_then_compare(db, draft, "2026-11", "2026-12",
                                  {"2026-11": D(2027, 1, 7), "2026-12": D(2027, 1, 8)}, "draft")
    # tier-A volume 89,600 ≥ 80,000: 4 % = 3,584.00 (October's order included, in November)
    assert result.total.draft == Decimal("3584.00") + Decimal("512.00") + Decimal("768.00") \
        + Decimal("256.00")


@pytest.mark.parametrize("start", ["2026-12-01", "2026-10-01"])
def test_a_draft_superseding_a_version_that_changed_inside_the_range(hub, start):
    """Version 2 (flat 3 % from 16 November) was published on 10 November, before November
    was settled; the draft (version 3, flat 4 %) starts on 1 December (version 2 governs
    16–30 November) or on 1 October (version 2 then governs nothing)."""
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    clock_from(D(2026, 7, 1))
    publish(db, POLICY)
    signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    signed_order(db, kangda, D(2026, 11, 5), [("MON-M8", 2)])
    signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 3)])
    signed_order(db, kangda, D(2026, 12, 3), [("MON-M8", 1)])
    settle("2026-09", D(2026, 10, 5))
    settle("2026-10", D(2026, 11, 5))
    clock_from(D(2026, 11, 10))
    publish(db, POLICY.replace("effective_from: 2026-07-01", "effective_from: 2026-11-16")
            .replace("tiers: [{from: 0, rate: 2%}]", "tiers: [{from: 0, rate: 3%}]"))
    clock_from(D(2027, 1, 6))
    draft = POLICY.replace("effective_from: 2026-07-01", f"effective_from: {start}").replace(
        "tiers: [{from: 0, rate: 2%}]", "tiers: [{from: 0, rate: 4%}]")
    _settle_then_compare(db, draft, "2026-11", "2026-12",
                         {"2026-11": D(2027, 1, 7), "2026-12": D(2027, 1, 8)}, "draft")


def test_a_new_exclusive_policy_code_replays_as_settled(hub):
    """A new policy code whose exclusive rule (5 % of the quarter's 监护) takes the lines
    from T-AUDIT's rules from 1 October: October's settled flat payments are taken back."""
    db = hub.db_url
    o = _orders(db)
    settle("2026-09", D(2026, 10, 5))
    settle("2026-10", D(2026, 11, 5))
    clock_from(D(2026, 12, 20))
    _returns(db, o)
    clock_from(D(2027, 1, 6))
    draft = """
code: T-EXCL
name: 独占季度返利
effective_from: 2026-10-01
rules:
  - id: only
    name: 独占
    applies_to: {product_lines: [监护]}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, rate: 5%}]
    priority: 50
    stacking: exclusive
"""
    result = _settle_then_compare(db, draft, "2026-11", "2026-12",
                                  {"2026-11": D(2027, 1, 7), "2026-12": D(2027, 1, 8)}, "draft")
    assert result.version == 1


def test_settled_months_replayed_then_published_pay_the_change_in_the_next_run(hub):
    """The clerk's usual case: September to December settled, the draft replayed over
    November–December, then published; January's run (no January orders) pays exactly the
    replay's change, per customer and rep (the draft starts on 1 October, inside the quarter
    the range starts in)."""
    db = hub.db_url
    o = _orders(db)
    settle("2026-09", D(2026, 10, 5))
    settle("2026-10", D(2026, 11, 5))
    settle("2026-11", D(2026, 12, 5))
    clock_from(D(2026, 12, 20))
    _returns(db, o)
    settle("2026-12", D(2027, 1, 5))
    clock_from(D(2027, 1, 20))
    result = replay(db, parse_policy_document(DRAFT), "2026-11", "2026-12")
    publish(db, DRAFT)
    settle("2027-01", D(2027, 2, 5))
    jan = settled(db, ["2027-01"])
    change = {"customers": {k: r.change for k, r in result.customers.items() if r.change},
              "reps": {k: r.change for k, r in result.reps.items() if r.change},
              "total": result.total.change}
    assert change == {k: v for k, v in nonzero(jan).items() if k != "by_month"}
    # by hand: Q4 监护 82,600 ≥ 80,000 at 4 % = 3,304.00; pumps' upper band 8,100 × 1 %
    assert result.total.change == Decimal("3304.00") + Decimal("81.00")


# --- a draft back-dated into a quarter no settlement ever covered ----------------------------

def _before_go_live(db: str) -> dict:
    """The policy in force since 1 July; the hub settles from October on (its first run):
    September's order (25,600) was never settled. October, November and December are."""
    kangda = customer_id(db, KANGDA)
    clock_from(D(2026, 7, 1))
    publish(db, POLICY)
    o = {"k9": signed_order(db, kangda, D(2026, 9, 15), [("MON-M8", 2)]),
         "k10": signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)]),
         "k11": signed_order(db, kangda, D(2026, 11, 5), [("MON-M8", 2)])}
    settle("2026-10", D(2026, 11, 5))
    settle("2026-11", D(2026, 12, 5))
    settle("2026-12", D(2027, 1, 5))
    clock_from(D(2027, 1, 20))
    return o


# version 2 from 1 September: the flat rate 3 %
FROM_SEPTEMBER = POLICY.replace("effective_from: 2026-07-01", "effective_from: 2026-09-01")\
    .replace("tiers: [{from: 0, rate: 2%}]", "tiers: [{from: 0, rate: 3%}]")


def test_a_draft_back_dated_before_the_first_settled_month_replays_what_publishing_pays(hub):
    """Replaying October–December (all settled, October the first month ever settled) with
    a draft from 1 September, then publishing it: January's run reaches back to the
    draft's start, and pays September's never-settled order its whole rebate (3 % of
    25,600 = 768.00) besides October's and November's 1 % more (640.00 + 256.00). The
    replay's draft side must be what November–January pay over those months' orders: the
    replay settles its first month without reaching back (no run before October: the draft
    is not taken as news), so it leaves the 768.00 out."""
    db = hub.db_url
    _before_go_live(db)
    result = replay(db, parse_policy_document(FROM_SEPTEMBER), "2026-10", "2026-12")
    publish(db, FROM_SEPTEMBER)
    settle("2027-01", D(2027, 2, 5))
    real = settled(db, ["2026-10", "2026-11", "2026-12", "2027-01"])
    assert real["total"] == Decimal("1280.00") + Decimal("512.00") + Decimal("768.00") \
        + Decimal("640.00") + Decimal("256.00")
    assert (result.total.draft, side(result, "draft")["customers"]) == (
        real["total"], nonzero(real)["customers"])


def test_the_published_side_pays_no_order_its_settlements_never_touched(hub):
    """The same history replayed over November–December: November's replay takes the
    draft from 1 September as news and settles September's order again — under the
    published policies too, paying it 512.00 that no settlement ever paid (nor will under
    the published policies): the published side is 512.00 above November's settlement, and
    the change it shows (draft − published) is 512.00 below what publishing then costs."""
    db = hub.db_url
    _before_go_live(db)
    real = settled(db, ["2026-11", "2026-12"])
    assert real["total"] == Decimal("512.00")  # k11's flat; nothing in December
    result = replay(db, parse_policy_document(FROM_SEPTEMBER), "2026-11", "2026-12")
    publish(db, FROM_SEPTEMBER)
    settle("2027-01", D(2027, 2, 5))
    # publishing costs January's run: 768.00 + 640.00 + 256.00
    cost = settled(db, ["2027-01"])["total"]
    assert cost == Decimal("1664.00")
    assert (result.total.published, result.total.change) == (real["total"], cost)


# --- (a) by month: late news of a month settled in the next one --------------------------------

def test_a_delivery_recorded_after_its_months_run_is_replayed_in_the_month_it_is_dated(hub):
    """An order of 28 October delivered on 30 October, the delivery keyed into the ERP on
    10 November — after October's run (5 November): November's run paid it (256.00 flat,
    October's bucket). Everything is settled and nothing was recorded since. The replay
    settles every month with what is known now (docs/operations.md): its October holds the
    late delivery (1,536.00, November nothing); the range's total, per customer and per
    rep, is what the runs paid."""
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    clock_from(D(2026, 7, 1))
    publish(db, POLICY)
    signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)])  # 64,000
    late = signed_order(db, kangda, D(2026, 10, 28), [("MON-M8", 1)], delivered_on=False)
    settle("2026-09", D(2026, 10, 5))
    settle("2026-10", D(2026, 11, 5))
    clock_from(D(2026, 11, 10))
    with session_scope(db) as s:
        s.add(Delivery(delivery_no="DX-LATE", order_id=late, line_no=1, quantity=1,
                       delivered_on=D(2026, 10, 30)))
    settle("2026-11", D(2026, 12, 5))
    real = settled(db, ["2026-10", "2026-11"])
    assert real["by_month"] == {"2026-10": Decimal("1280.00"), "2026-11": Decimal("256.00")}
    result = replay(db, parse_policy_document(DRAFT), "2026-10", "2026-11")
    replayed = side(result, "published")
    assert replayed["by_month"] == {"2026-10": Decimal("1536.00")}
    assert {k: v for k, v in replayed.items() if k != "by_month"} == {
        k: v for k, v in nonzero(real).items() if k != "by_month"}


# --- per rep: a claw-back of an order paid to two reps ----------------------------------------

REP_POLICY = POLICY.replace(
    "      - {from: 0, to: 100000, rate: 0%}\n      - {from: 100000, rate: 3%}\n",
    "      - {from: 0, to: 50000, rate: 1%}\n      - {from: 50000, to: 100000, rate: 2%}\n"
    "      - {from: 100000, rate: 3%}\n")
assert REP_POLICY != POLICY


@pytest.mark.parametrize("which", ["published", "draft"])
def test_a_claw_back_split_over_two_reps_is_replayed_where_settled(hub, which):
    """October's order (64,000, 2 %) was paid to 张伟 (1,280.00 quarter); the order was then
    handed to 李娜 (its rep changed in the database). November's order lifts the quarter to
    115,200 (3 %): 李娜 gets the order's tier difference (640.00). In December all five units
    come back: the settlement takes the 1,920.00 back where it was paid, newest first —
    李娜 −640.00, 张伟 −1,280.00. The replay books it all to 李娜."""
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    clock_from(D(2026, 7, 1))
    publish(db, REP_POLICY)
    k10 = signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    settle("2026-09", D(2026, 10, 5))
    settle("2026-10", D(2026, 11, 5))
    with session_scope(db) as s:
        s.get(IntentOrder, k10).rep_id = "rep-lina"
    signed_order(db, kangda, D(2026, 11, 5), [("MON-M8", 4)])  # 51,200
    clock_from(D(2026, 12, 20))
    return_goods(db, k10, 1, 5, D(2026, 12, 10))
    clock_from(D(2027, 1, 6))
    draft = REP_POLICY.replace("effective_from: 2026-07-01", "effective_from: 2026-10-01")\
        .replace("tiers: [{from: 0, rate: 2%}]", "tiers: [{from: 0, rate: 2.5%}]")
    result = replay(db, parse_policy_document(draft), "2026-11", "2026-12")
    if which == "draft":
        publish(db, draft)
    settle("2026-11", D(2027, 1, 7))
    settle("2026-12", D(2027, 1, 8))
    real = nonzero(settled(db, ["2026-11", "2026-12"]))
    if which == "published":  # by hand: 张伟 2,560 − 1,280 (flat) − 1,280 − 512; 李娜 640 − 640
        assert real["reps"] == {ZHANG: Decimal("-512.00")}
    assert side(result, which)["reps"] == real["reps"]


# --- the --json output -------------------------------------------------------------------------

@pytest.fixture
def cli(hub, monkeypatch, capsys, tmp_path):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, tmp_path / "data")


def test_json_money_is_strings_and_totals_are_the_sums_of_rows(hub, cli, tmp_path):
    db = hub.db_url
    o = _orders(db)
    settle("2026-09", D(2026, 10, 5))
    settle("2026-10", D(2026, 11, 5))
    clock_from(D(2026, 12, 20))
    _returns(db, o)
    clock_from(D(2027, 1, 6))
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT, encoding="utf-8")
    code, out, err = cli("rebates", "replay", "--policy", draft, "--from", "2026-11",
                         "--to", "2026-12", "--json")
    assert code == 0, err
    data = json.loads(out)
    for section in ("by_month", "customers", "reps"):
        for row in data[section]:
            for k in ("published", "draft", "change"):
                assert isinstance(row[k], str) and Decimal(row[k]) == Decimal(row[k]).quantize(
                    Decimal("0.01")) and not row[k].startswith("-0.00"), row
            assert Decimal(row["change"]) == Decimal(row["draft"]) - Decimal(row["published"])
        for k in ("published", "draft", "change"):
            assert sum(Decimal(r[k]) for r in data[section]) == Decimal(data["total"][k]), section
    assert [r["name"] for r in data["by_month"]] == ["2026-11", "2026-12"]
