"""Audit of the rebate engine's money rules (docs/rebates.md) computed by hand and compared with
the settlement (flows.settlement), the order preview (flows.rebate_preview) and the replay
(flows.rebate_replay): caps with marginal tiers and versions, payment-rate thresholds and the
trailing window, exclusions, stacking ties, rounding. Each expected figure is worked out in the
test's docstring; MON-M8 is 12,800.00 a unit, MON-M12 18,600.00, PUMP-SP3 4,980.00."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from sqlmodel import select

from flows.hub import current_hub
from flows.settlement import compute_month, settle_month
from models import Payment, RebateLine
from models.db import session_scope
from tests.flows.test_audit4_settle_scenarios import paid as paid_per_order
from tests.rebate_support import (
    clock_from,
    customer_id,
    invoice,
    publish,
    return_goods,
    signed_order,
)

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"


def lines_of(db_url: str, run_id: int | None) -> dict:
    """{(order, rule, kind): amount} of one settlement run."""
    if run_id is None:
        return {}
    with session_scope(db_url) as s:
        rows = s.exec(select(RebateLine).where(RebateLine.run_id == run_id)).all()
    out: dict = defaultdict(Decimal)
    for ln in rows:
        out[(ln.order_id, ln.rule_id, ln.kind)] += ln.amount
    return dict(out)


# --- payment-rate news of two due months in one import ------------------------------------------

PAYING = """
code: PAY-2026
name: 回款达标返利
effective_from: 2026-01-01
rules:
  - id: paid-up
    name: 回款达标季度返利
    clause: 第一条
    applies_to:
      product_lines: [监护]
      payment_rate: {min: 90%}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 1
    stacking: stack
"""


def _late_keyed_payment(db_url: str, invoice_no: str, customer: int, on: dt.date,
                        amount: str) -> None:
    with session_scope(db_url) as s:
        s.add(Payment(payment_no=f"PK-{invoice_no}", invoice_no=invoice_no, customer_id=customer,
                      paid_on=on, amount=Decimal(amount)))


def _september_order_unpaid_for_its_rate(db_url: str) -> tuple[int, str, str]:
    publish(db_url, PAYING)
    kangda = customer_id(db_url, KANGDA)
    # the invoice due 20 Aug is the September order's whole window (Jun–Aug): unpaid → 0 %
    aug = invoice(db_url, kangda, D(2026, 8, 20), "100000.00")
    o = signed_order(db_url, kangda, D(2026, 9, 10), [("MON-M8", 5)])  # 64,000.00
    for month in ("2026-09", "2026-10"):
        r = settle_month(current_hub(), month, documents=False)
        assert lines_of(db_url, r.run_id) == {}
    return kangda, aug, o


def test_a_payment_keyed_late_for_an_august_invoice_pays_the_september_order(hub):
    """Control. Policy PAY-2026 pays 2 % of 监护 a quarter when the trailing 3-month payment rate
    is at least 90 %. O (10 Sep 2026, 5 × MON-M8 = 64,000.00): its window is Jun–Aug, where the
    only invoice (due 20 Aug, 100,000.00) is unpaid: 0 % < 90 %, September and October pay
    nothing. In November finance keys the payment of 15 Aug (100,000.00, on time): the
    September rate is now 100 %, and the November settlement (docs: "an invoice or payment
    recorded … since … for the customer's orders dated in the three months after the due month
    of the invoice concerned, earlier quarters' included") pays O 64,000.00 × 2 % = 1,280.00."""
    clock_from(D(2026, 12, 5))
    kangda, aug, o = _september_order_unpaid_for_its_rate(hub.db_url)
    _late_keyed_payment(hub.db_url, aug, kangda, D(2026, 8, 15), "100000.00")
    r = settle_month(current_hub(), "2026-11", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o, "paid-up", "rebate"): Decimal("1280.00")}


def test_a_late_payment_is_not_lost_when_the_same_import_also_touches_an_older_invoice(hub):
    """As the control above (O, 10 Sep 2026, 64,000.00, unpaid for want of its August invoice's
    payment), but finance's November import carries two facts for 康达: the payment of 15 Aug
    keyed late (it makes September's rate 100 %) and an invoice due 20 Jan 2026 that had not
    been imported before (2,000.00, paid 10 Jan: it changes the rates of February–April orders,
    康达 has none). Each is news for the orders dated in the three months after its own due
    month: the August payment still makes O due 64,000.00 × 2 % = 1,280.00 in November's
    settlement.

    What happens: nothing is paid. flows.settlement._receivables_news keeps only the EARLIEST
    due date per customer (January), and _touched_windows reads the quarters from February to
    April only (2026Q1, 2026Q2): 2026Q3, where the August payment changed the rate, is never
    read, and O stays unpaid (no later run reads it either: the news is then old)."""
    clock_from(D(2026, 12, 5))
    kangda, aug, o = _september_order_unpaid_for_its_rate(hub.db_url)
    _late_keyed_payment(hub.db_url, aug, kangda, D(2026, 8, 15), "100000.00")
    invoice(hub.db_url, kangda, D(2026, 1, 20), "2000.00", paid=[(D(2026, 1, 10), "2000.00")])
    r = settle_month(current_hub(), "2026-11", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o, "paid-up", "rebate"): Decimal("1280.00")}


# --- preview: the payment rate of a later order of the period ------------------------------------

PAYING_TIERS = """
code: PT-2027
name: 回款达标阶梯返利
effective_from: 2026-10-01
rules:
  - id: q
    name: 季度阶梯（回款达标）
    clause: 第一条
    applies_to:
      product_lines: [监护]
      payment_rate: {min: 90%}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, to: 100000, rate: 2%}, {from: 100000, rate: 5%}]
    priority: 1
    stacking: stack
"""


def test_a_preview_days_after_its_date_reads_a_later_orders_payment_rate_in_full(hub):
    """PT-2027 第一条: 监护 by quarter, 2 % below 100,000 and 5 % from it, when the trailing
    3-month payment rate is at least 90 %. 康达's invoices: due 20 Dec 2026 10,000.00 paid 15 Dec
    (on time); due 15 Jan 2027 100,000.00 paid 10 Feb (late).
    - an order dated in January: window Oct–Dec: 10,000 / 10,000 = 100 % → the rule applies;
    - an order dated in February: window Nov–Jan: 10,000 / 110,000 = 9.09 % → it does not.
    O2 (3 Feb 2027, 5 × MON-M8 = 64,000.00) is signed and delivered on 3 Feb. The order O of
    20 Jan (4 × MON-M8 = 51,200.00) was held for its customer and its rebate is previewed on
    10 Feb, when the hub knows of O2 (docs: such a preview "counts the orders signed … since,
    as the settlement will"). O2 fails the payment rate, so it is not in the bucket: the quarter
    is O alone, 51,200.00 → 2 % → 51,200.00 × 2 % = 1,024.00, which is what the February
    settlement pays O once it is signed and delivered (nothing else changing).

    What happens: the preview says 5 %, 2,560.00 (51,200 + 64,000 = 115,200 ≥ 100,000).
    flows.rebate_preview.preview_items loads the payment rates for orders dated up to the
    ORDER's date (`payment_rates(s, [cid], first, day)`: invoices due before 1 January), so
    O2's February window lacks the January invoice and reads 100 %."""
    from flows.rebate_preview import ItemIn, preview_items

    clock_from(D(2027, 1, 5))
    publish(hub.db_url, PAYING_TIERS)
    kangda = customer_id(hub.db_url, KANGDA)
    invoice(hub.db_url, kangda, D(2026, 12, 20), "10000.00", paid=[(D(2026, 12, 15), "10000.00")])
    invoice(hub.db_url, kangda, D(2027, 1, 15), "100000.00", paid=[(D(2027, 2, 10), "100000.00")])
    signed_order(hub.db_url, kangda, D(2027, 2, 3), [("MON-M8", 5)])
    clock_from(D(2027, 2, 10))
    shown = preview_items(hub.db_url, kangda, [ItemIn("MON-M8", 4)], order_date=D(2027, 1, 20))
    # the settlement of February, O signed and delivered after the preview
    o = signed_order(hub.db_url, kangda, D(2027, 1, 20), [("MON-M8", 4)], signed_on=D(2027, 2, 10))
    clock_from(D(2027, 3, 5))
    comp = compute_month(hub.db_url, "2027-02")
    paid = {(d.order_id, d.rule_id): d.amount for d in comp.drafts}
    assert paid == {(o, "q"): Decimal("1024.00")}
    assert (shown.rules[0].rate, shown.amount) == (Decimal("0.020000"), Decimal("1024.00"))


# --- a version lowering the cap from mid-quarter ---------------------------------------------------

CAP_V1 = """
code: CAPQ-2027
name: 季度封顶返利
effective_from: 2027-01-01
rules:
  - id: q
    name: 季度阶梯
    clause: 第二条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, to: 500000, rate: 2%}, {from: 500000, rate: 5%}]
    cap: {amount_per_period: 50000}
    priority: 1
    stacking: stack
"""


def test_a_version_lowering_the_cap_from_the_16th_pays_its_orders_what_v1_left(hub):
    """CAPQ-2027 v1 (from 1 Jan): 监护 by quarter, 2 % below 500,000 and 5 % from it, cap 50,000.
    O1 (10 Jan, 50 × MON-M8 at 12,000.00 = 600,000.00): January pays 600,000 × 5 % = 30,000.00.
    v2 from 16 Feb lowers the cap to 20,000 (the docs' example): O2 (20 Feb, 10 × 12,000.00 =
    120,000.00, a v2 order) would earn 6,000.00, but v1's orders earned 30,000 ≥ 20,000: O2 gets
    0 and O1 keeps 30,000 — February settles nothing. A v3, also from 16 Feb, with a cap of
    34,000 then leaves O2 34,000 − 30,000 = 4,000.00 (inputs: cap 34000.00, cap_room 4000.00,
    earned_under_earlier_versions 30000.00, uncapped_due 6000.00, version 3).
    March: 10 units of O1 come back (O1 480,000; quarter 600,000, still 5 %): O1 24,000.00
    (−6,000.00 claw-back, never more than paid); v2's room grows to 34,000 − 24,000 = 10,000 ≥
    O2's 6,000: O2 +2,000.00 (tier difference: its cap share)."""
    clock_from(D(2027, 4, 5))
    publish(hub.db_url, CAP_V1)
    kangda = customer_id(hub.db_url, KANGDA)
    o1 = signed_order(hub.db_url, kangda, D(2027, 1, 10), [("MON-M8", 50, "12000.00")])
    r = settle_month(current_hub(), "2027-01", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o1, "q", "rebate"): Decimal("30000.00")}
    publish(hub.db_url, CAP_V1.replace("effective_from: 2027-01-01", "effective_from: 2027-02-16")
            .replace("amount_per_period: 50000", "amount_per_period: 20000"))
    o2 = signed_order(hub.db_url, kangda, D(2027, 2, 20), [("MON-M8", 10, "12000.00")])
    comp = compute_month(hub.db_url, "2027-02")
    assert [(d.order_id, d.amount) for d in comp.drafts] == []
    publish(hub.db_url, CAP_V1.replace("effective_from: 2027-01-01", "effective_from: 2027-02-16")
            .replace("amount_per_period: 50000", "amount_per_period: 34000"))
    r = settle_month(current_hub(), "2027-02", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o2, "q", "rebate"): Decimal("4000.00")}
    with session_scope(hub.db_url) as s:
        line = s.exec(select(RebateLine).where(RebateLine.run_id == r.run_id)).one()
        from flows.settlement import line_inputs
        inputs = line_inputs(s, [line])[0]
    assert (inputs["cap"], inputs["cap_room"], inputs["earned_under_earlier_versions"],
            inputs["uncapped_due"], line.policy_version) == (
        "34000.00", "4000.00", "30000.00", "6000.00", 3)
    return_goods(hub.db_url, o1, 1, 10, D(2027, 3, 5))
    r = settle_month(current_hub(), "2027-03", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o1, "q", "clawback"): Decimal("-6000.00"),
                                              (o2, "q", "tier_difference"): Decimal("2000.00")}


# --- the payment-rate threshold across the year end ----------------------------------------------

AT_85 = PAYING.replace("min: 90%", "min: 85%").replace("2026-01-01", "2026-10-01")


@pytest.mark.parametrize("on_time, pays", [("35000.00", Decimal("1280.00")),
                                           ("34999.99", None)], ids=["equal", "one-fen-under"])
def test_a_payment_rate_exactly_at_the_threshold_across_the_year_end(hub, on_time, pays):
    """PAY-2026 with `payment_rate: {min: 85%}` (inclusive). O (10 Jan 2027, 5 × MON-M8 =
    64,000.00): its window is Oct–Dec 2026. 康达's invoices:
    - A due 31 Oct 2026, 50,000.00: 30,000.00 paid 20 Oct and 20,000.00 on 31 Oct (the due
      date itself counts) → 50,000.00 on time;
    - B due 31 Dec 2026, 60,000.00, reversed by a red-letter invoice of −10,000.00 issued in
      January (due 28 Feb 2027): B is due 50,000.00 in December; 35,000.00 paid 30 Dec, the
      other 15,000.00 on 2 Jan 2027 (late: not counted);
    - C due 5 Jan 2027 (100,000.00, unpaid) and D due 30 Sep 2026 (100,000.00, unpaid) lie
      outside the window.
    Rate = (50,000 + 35,000) / (50,000 + 50,000) = 85 % → applies: 64,000 × 2 % = 1,280.00.
    One fen less on 30 Dec (34,999.99): 84.99999 % < 85 % → nothing."""
    from models import ReceivableInvoice

    clock_from(D(2027, 2, 5))
    publish(hub.db_url, AT_85)
    kangda = customer_id(hub.db_url, KANGDA)
    invoice(hub.db_url, kangda, D(2026, 10, 31), "50000.00",
            paid=[(D(2026, 10, 20), "30000.00"), (D(2026, 10, 31), "20000.00")])
    b = invoice(hub.db_url, kangda, D(2026, 12, 31), "60000.00",
                paid=[(D(2026, 12, 30), on_time), (D(2027, 1, 2), "15000.00")])
    with session_scope(hub.db_url) as s:
        s.add(ReceivableInvoice(invoice_no="RED-1", customer_id=kangda, issued_on=D(2027, 1, 15),
                                due_on=D(2027, 2, 28), amount=Decimal("-10000.00"), reverses=b))
    invoice(hub.db_url, kangda, D(2027, 1, 5), "100000.00")
    invoice(hub.db_url, kangda, D(2026, 9, 30), "100000.00")
    o = signed_order(hub.db_url, kangda, D(2027, 1, 10), [("MON-M8", 5)])
    r = settle_month(current_hub(), "2027-01", documents=False)
    assert lines_of(hub.db_url, r.run_id) == ({(o, "paid-up", "rebate"): pays} if pays else {})


# --- a cap over marginal bands, then a whole order returned after the quarter ---------------------

MARGINAL_CAP = """
code: MCAP-2026
name: 累进封顶返利
effective_from: 2026-10-01
rules:
  - id: m
    name: 季度累进
    clause: 第三条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: quarter
    style: marginal
    tiers: [{from: 0, to: 100000, rate: 2%}, {from: 100000, rate: 6%}]
    cap: {amount_per_period: 5000}
    priority: 1
    stacking: stack
"""


def test_a_capped_marginal_quarter_claws_back_no_more_than_was_paid(hub):
    """MCAP-2026: 监护 by quarter, marginal 2 % below 100,000 and 6 % above, cap 5,000.
    O1 (10 Oct), O2 (5 Nov), O3 (1 Dec 2026), each 5 × MON-M8 = 64,000.00.
    - Oct: O1 at 0–64,000: 1,280.00.  Nov: O2 at 64,000–128,000: 36,000 × 2 % + 28,000 × 6 % =
      720 + 1,680 = 2,400.00 (3,680 ≤ 5,000).
    - Dec: O3 at 128,000–192,000: 3,840.00; uncapped 1,280 + 2,400 + 3,840 = 7,520 > 5,000: in
      fen 500,000 × (128,000 | 240,000 | 384,000) / 752,000 = 85,106.38 | 159,574.47 |
      255,319.15 → 85,106 + 159,574 + 255,319 = 499,999, the last fen to the largest remainder
      (O2): O1 851.06 (−428.94), O2 1,595.75 (−804.25), O3 2,553.19 (first payment).
    - Jan 2027: O2 comes back whole (10 Jan): O1 0–64,000 1,280.00, O3 64,000–128,000
      2,400.00, 3,680 ≤ cap: O1 +428.94, O2 −1,595.75 (exactly what it was paid, no more),
      O3 −153.19."""
    clock_from(D(2027, 2, 5))
    publish(hub.db_url, MARGINAL_CAP)
    kangda = customer_id(hub.db_url, KANGDA)
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    o2 = signed_order(hub.db_url, kangda, D(2026, 11, 5), [("MON-M8", 5)])
    o3 = signed_order(hub.db_url, kangda, D(2026, 12, 1), [("MON-M8", 5)])
    runs = {m: settle_month(current_hub(), m, documents=False).run_id
            for m in ("2026-10", "2026-11", "2026-12")}
    assert lines_of(hub.db_url, runs["2026-11"]) == {(o2, "m", "rebate"): Decimal("2400.00")}
    assert lines_of(hub.db_url, runs["2026-12"]) == {
        (o1, "m", "tier_difference"): Decimal("-428.94"),
        (o2, "m", "tier_difference"): Decimal("-804.25"),
        (o3, "m", "rebate"): Decimal("2553.19")}
    return_goods(hub.db_url, o2, 1, 5, D(2027, 1, 10))
    r = settle_month(current_hub(), "2027-01", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {
        (o1, "m", "tier_difference"): Decimal("428.94"),
        (o2, "m", "clawback"): Decimal("-1595.75"),
        (o3, "m", "tier_difference"): Decimal("-153.19")}
    assert paid_per_order(hub.db_url) == {(o1, "m"): Decimal("1280.00"),
                                          (o2, "m"): Decimal("0.00"),
                                          (o3, "m"): Decimal("2400.00")}
