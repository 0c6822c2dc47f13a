"""Audit round 4 (H8): settlement scenarios computed by hand against docs/rebates.md — marginal
tiers by quantity crossing inside one order, a cap reached by a late tier difference, an order
delivered over three months, a return under a superseded version, an exchange, a customer
merge, two policies stacking and excluding."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from sqlmodel import select

from connectors.base import TransientError
from flows.customer_import import merge_files
from flows.hub import current_hub
from flows.settlement import breakdowns, compute_month, settle_month
from models import Delivery, RebateLine
from models.db import session_scope
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

D = dt.date


@pytest.fixture(autouse=True)
def months_over():
    clock_from(D(2027, 1, 5))


def lines_of(db_url, run_id) -> dict:
    with session_scope(db_url) as s:
        rows = s.exec(select(RebateLine).where(RebateLine.run_id == run_id)).all()
    out: dict = defaultdict(Decimal)
    for ln in rows:
        out[(ln.order_id, ln.rule_id, ln.kind)] += ln.amount
    return dict(out)


def paid(db_url) -> dict:
    with session_scope(db_url) as s:
        rows = s.exec(select(RebateLine)).all()
    out: dict = defaultdict(Decimal)
    for ln in rows:
        out[(ln.order_id, ln.rule_id)] += ln.amount
    return dict(out)


MARGINAL_QTY = """
code: MQ-2026
name: 数量累进
effective_from: 2026-10-01
rules:
  - id: units
    applies_to: {product_lines: [监护]}
    measure: quantity
    period: quarter
    style: marginal
    tiers: [{from: 0, to: 10, rate: 1%}, {from: 10, rate: 3%}]
    priority: 1
    stacking: stack
"""


def test_marginal_by_quantity_crossing_inside_one_order_of_two_prices(hub):
    publish(hub.db_url, MARGINAL_QTY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    # O1: 6 × M8 (units 0–6): 6 × 12,800 × 1 % = 768.00
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 6)])
    # O2: line 1 3 × M12 (units 6–9): 3 × 18,600 × 1 % = 558.00; line 2 4 × M8 (units 9–13):
    # 1 × 12,800 × 1 % = 128.00 and 3 × 12,800 × 3 % = 1,152.00 → 1,838.00
    o2 = signed_order(hub.db_url, kangda, D(2026, 10, 20), [("MON-M12", 3), ("MON-M8", 4)])
    result = settle_month(current_hub(), "2026-10", documents=False)
    assert lines_of(hub.db_url, result.run_id) == {
        (o1, "units", "rebate"): Decimal("768.00"), (o2, "units", "rebate"): Decimal("1838.00")}
    # November: O1 returns 2 units: O1 4 units (0–4) 512.00 (−256.00 claw-back); O2 now sits at
    # units 4–11: M12 4–7 558.00, M8 7–10 3 × 128 = 384.00, 10–11 384.00 → 1,326.00 (−512.00:
    # its own basis is unchanged, the band moved — a tier difference)
    return_goods(hub.db_url, o1, 1, 2, D(2026, 11, 3))
    result = settle_month(current_hub(), "2026-11", documents=False)
    assert lines_of(hub.db_url, result.run_id) == {
        (o1, "units", "clawback"): Decimal("-256.00"),
        (o2, "units", "tier_difference"): Decimal("-512.00")}


CAPPED = """
code: CAP-2026
name: 封顶测试
effective_from: 2026-10-01
rules:
  - id: quarter
    applies_to: {product_lines: [监护]}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, to: 100000, rate: 2%}, {from: 100000, rate: 5%}]
    cap: {amount_per_period: 4000}
    priority: 1
    stacking: stack
"""


def test_a_cap_reached_by_a_late_tier_difference_and_a_return_inside_it(hub):
    publish(hub.db_url, CAPPED)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])  # 64,000
    r = settle_month(current_hub(), "2026-10", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o1, "quarter", "rebate"): Decimal("1280.00")}
    # November: O2 51,200: quarter 115,200 → 5 %: O1 3,200, O2 2,560, 5,760 > cap 4,000:
    # O1 4,000 × 3,200 / 5,760 = 2,222.22(2), O2 1,777.77(7) → the last fen to O2: 1,777.78
    o2 = signed_order(hub.db_url, kangda, D(2026, 11, 5), [("MON-M8", 4)])
    r = settle_month(current_hub(), "2026-11", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {
        (o1, "quarter", "tier_difference"): Decimal("942.22"),
        (o2, "quarter", "rebate"): Decimal("1777.78")}
    # December: one O2 unit back: 102,400, still 5 %: O1 3,200, O2 1,920 (5,120 > 4,000):
    # O1 2,500.00 (+277.78), O2 1,500.00 (−277.78): the customer nets 0, no voucher
    return_goods(hub.db_url, o2, 1, 1, D(2026, 12, 2))
    r = settle_month(current_hub(), "2026-12", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {
        (o1, "quarter", "tier_difference"): Decimal("277.78"),
        (o2, "quarter", "clawback"): Decimal("-277.78")}
    assert r.total == Decimal("0.00") and r.voucher_ref is None


FLAT = """
code: FLAT-2026
name: 基础返利
effective_from: 2026-07-01
rules:
  - id: flat
    applies_to: {product_lines: [监护]}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, to: 100000, rate: 2%}, {from: 100000, rate: 3%}]
    priority: 1
    stacking: stack
"""


def deliver(db_url, order_id, line_no, quantity, on):
    with session_scope(db_url) as s:
        s.add(Delivery(delivery_no=f"DX-{order_id}-{on}", order_id=order_id, line_no=line_no,
                       quantity=quantity, delivered_on=on))


def test_an_order_of_september_delivered_over_three_months(hub):
    clock_from(D(2026, 10, 5))
    publish(hub.db_url, FLAT)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    # dated and signed 25 September (Q3), 10 × M8 = 128,000; delivered 4 / 4 / 2 in
    # October, November, December. The Q3 volume is what was delivered by each month's end.
    o1 = signed_order(hub.db_url, kangda, D(2026, 9, 25), [("MON-M8", 10)],
                      delivered_on=False)
    r = settle_month(current_hub(), "2026-09", documents=False)
    assert r.lines == 0
    deliver(hub.db_url, o1, 1, 4, D(2026, 10, 8))
    clock_from(D(2026, 11, 5))
    r = settle_month(current_hub(), "2026-10", documents=False)
    # 51,200 × 2 % = 1,024.00
    assert lines_of(hub.db_url, r.run_id) == {(o1, "flat", "rebate"): Decimal("1024.00")}
    deliver(hub.db_url, o1, 1, 4, D(2026, 11, 8))
    clock_from(D(2026, 12, 5))
    r = settle_month(current_hub(), "2026-11", documents=False)
    # 102,400 ≥ 100,000 → 3 %: 3,072.00 (+2,048.00: more of the order delivered → rebate)
    assert lines_of(hub.db_url, r.run_id) == {(o1, "flat", "rebate"): Decimal("2048.00")}
    deliver(hub.db_url, o1, 1, 2, D(2026, 12, 8))
    clock_from(D(2027, 1, 5))
    r = settle_month(current_hub(), "2026-12", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o1, "flat", "rebate"): Decimal("768.00")}
    assert paid(hub.db_url) == {(o1, "flat"): Decimal("3840.00")}  # 128,000 × 3 %


def test_a_return_under_a_superseded_version_claws_back_at_that_versions_rate(hub):
    publish(hub.db_url, FLAT.replace("effective_from: 2026-07-01", "effective_from: 2026-10-01"))
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])  # 64,000 × 2 %
    settle_month(current_hub(), "2026-10", documents=False)
    # v2 from 1 November: 4 % below 100,000
    v2 = publish(hub.db_url, FLAT.replace("effective_from: 2026-07-01",
                                          "effective_from: 2026-11-01")
                 .replace("rate: 2%", "rate: 4%"))
    assert v2.version == 2
    # November: one O1 unit back: O1 51,200 under v1: 1,024.00 (−256.00)
    return_goods(hub.db_url, o1, 1, 1, D(2026, 11, 3))
    r = settle_month(current_hub(), "2026-11", documents=False)
    with session_scope(hub.db_url) as s:
        (line,) = s.exec(select(RebateLine).where(RebateLine.run_id == r.run_id)).all()
    assert (line.kind, line.amount, line.policy_version) == ("clawback", Decimal("-256.00"), 1)


def test_an_exchange_claws_back_until_its_replacement_ships(hub):
    publish(hub.db_url, FLAT.replace("effective_from: 2026-07-01", "effective_from: 2026-10-01"))
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])  # 1,280.00
    settle_month(current_hub(), "2026-10", documents=False)
    # one unit exchanged on 28 November, its replacement shipped on 3 December
    return_goods(hub.db_url, o1, 1, 1, D(2026, 11, 28), kind="exchange")
    r = settle_month(current_hub(), "2026-11", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o1, "flat", "clawback"): Decimal("-256.00")}
    deliver(hub.db_url, o1, 1, 1, D(2026, 12, 3))
    r = settle_month(current_hub(), "2026-12", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o1, "flat", "rebate"): Decimal("256.00")}
    assert paid(hub.db_url) == {(o1, "flat"): Decimal("1280.00")}


def test_a_customer_merge_between_two_settlements_adds_up_the_volume(hub):
    publish(hub.db_url, FLAT.replace("effective_from: 2026-07-01", "effective_from: 2026-10-01"))
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    renhe = customer_id(hub.db_url, "浙江仁和医疗器械有限公司")
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])  # 64,000: 1,280
    o2 = signed_order(hub.db_url, renhe, D(2026, 10, 12), [("MON-M8", 4)])  # 51,200: 1,024
    settle_month(current_hub(), "2026-10", documents=False)
    merge_files(hub.db_url, kangda, [renhe], "ops-01")
    # one file now: the quarter is 115,200 → 3 %: O1 1,920 (+640), O2 1,536 (+512)
    r = settle_month(current_hub(), "2026-11", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {
        (o1, "flat", "tier_difference"): Decimal("640.00"),
        (o2, "flat", "tier_difference"): Decimal("512.00")}
    assert dict(breakdowns(r.as_dict()))["客户"] == {"江苏康达医疗设备有限公司": "1152.00"}
    assert compute_month(hub.db_url, "2026-11").drafts == []


TWO_POLICIES = ["""
code: BASE-2026
name: 年度基础返利
effective_from: 2026-10-01
rules:
  - id: base
    applies_to: {product_lines: [监护, 输注]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 5
    stacking: stack
  - id: pump-extra
    applies_to: {product_lines: [输注]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 1%}]
    priority: 4
    stacking: stack
""", """
code: NEW-M12
name: 新品推广
effective_from: 2026-10-01
rules:
  - id: m12
    applies_to: {skus: [MON-M12]}
    measure: quantity
    period: month
    style: retroactive
    tiers: [{from: 2, rate: 6%}]
    priority: 20
    stacking: exclusive
"""]


def test_two_policies_stack_and_an_exclusive_rule_takes_its_lines(hub):
    for text in TWO_POLICIES:
        publish(hub.db_url, text)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    # one order: 2 × M8 25,600, 2 × M12 37,200, 3 × SP3 14,940
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10),
                      [("MON-M8", 2), ("MON-M12", 2), ("PUMP-SP3", 3)])
    r = settle_month(current_hub(), "2026-10", documents=False)
    # base 2 % of M8 + SP3 = 40,540 → 810.80; pump-extra 1 % of 14,940 = 149.40;
    # M12 taken by the exclusive rule alone: 37,200 × 6 % = 2,232.00
    assert lines_of(hub.db_url, r.run_id) == {
        (o1, "base", "rebate"): Decimal("810.80"), (o1, "pump-extra", "rebate"): Decimal("149.40"),
        (o1, "m12", "rebate"): Decimal("2232.00")}
    # a return of one M12 in November: the exclusive rule's first tier (2 units) is lost, it
    # pays 0 (deliberate) and still takes the line from base: −2,232.00
    return_goods(hub.db_url, o1, 2, 1, D(2026, 11, 2))
    r = settle_month(current_hub(), "2026-11", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o1, "m12", "clawback"): Decimal("-2232.00")}



def test_a_rerun_after_finance_confirmed_adds_a_revision_booked_when_made(hub):
    from flows.settlement import confirm_settlement, voucher_batch
    from models import Staff
    publish(hub.db_url, FLAT.replace("effective_from: 2026-07-01", "effective_from: 2026-10-01"))
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    clock_from(D(2026, 11, 5))
    settle_month(current_hub(), "2026-10", documents=False)
    with session_scope(hub.db_url) as s:
        finance = s.get(Staff, "finance-01")
    confirm_settlement(hub.db_url, "2026-10", 1, finance)
    # two units back on 30 October, recorded after the confirmation: a correction r2
    return_goods(hub.db_url, o1, 1, 2, D(2026, 10, 30))
    clock_from(D(2026, 11, 9))
    r = settle_month(current_hub(), "2026-10", documents=False)
    assert (r.revision, r.kind, r.total, r.by_kind) == (2, "adjustment", Decimal("-512.00"),
                                                         {"adjustment": "-512.00"})
    (voucher,) = voucher_batch(current_hub(), r.run_id).vouchers
    assert (voucher.voucher_date, voucher.period) == (D(2026, 11, 9), "2026-11")
    assert [e.debit for e in voucher.entries][0] == Decimal("512.00")  # the payable first


PAY_RULE = """
code: PAY-2026
name: 回款达标返利
effective_from: 2026-07-01
rules:
  - id: paid-up
    applies_to: {product_lines: [监护], payment_rate: {min: 90%, no_history: pass}}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 1
    stacking: stack
"""


def test_an_order_that_no_longer_meets_the_payment_rate_is_not_a_return(hub):
    from tests.rebate_support import invoice
    publish(hub.db_url, PAY_RULE)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])  # 1,280.00
    r = settle_month(current_hub(), "2026-10", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(o1, "paid-up", "rebate"): Decimal("1280.00")}
    # finance's export brings an invoice due 15 September, unpaid: October's rate is 0 %
    invoice(hub.db_url, kangda, D(2026, 9, 15), "10000.00")
    r = settle_month(current_hub(), "2026-11", documents=False)
    with session_scope(hub.db_url) as s:
        (line,) = s.exec(select(RebateLine).where(RebateLine.run_id == r.run_id)).all()
    assert line.amount == Decimal("-1280.00")
    # not a return (退货冲回): it still holds its goods; the line says which condition failed
    assert line.kind == "tier_difference"
    assert "本单未退货，但已不再适用该条款（近3个月回款率 0% 低于 90%），冲回已返金额。" \
        in line.explanation


def test_a_customer_moving_region_and_rep_mid_quarter(hub):
    from models import Customer
    publish(hub.db_url, FLAT.replace("effective_from: 2026-07-01", "effective_from: 2026-10-01"))
    renhe = customer_id(hub.db_url, "浙江仁和医疗器械有限公司")  # 华东, 张伟
    o1 = signed_order(hub.db_url, renhe, D(2026, 10, 10), [("MON-M8", 5)])  # 64,000: 1,280
    settle_month(current_hub(), "2026-10", documents=False)
    with session_scope(hub.db_url) as s:
        c = s.get(Customer, renhe)
        c.region, c.owner_rep_id = "华南", "rep-lina"
    # November, 李娜's order O2 51,200: the quarter is 115,200 → 3 %. O1's difference
    # (+640.00) is booked to its own rep (张伟) in the customer's region now (华南); O2 1,536.00
    o2 = signed_order(hub.db_url, renhe, D(2026, 11, 5), [("MON-M8", 4)], rep_id="rep-lina")
    r = settle_month(current_hub(), "2026-11", documents=False)
    with session_scope(hub.db_url) as s:
        got = sorted((ln.order_id, ln.kind, ln.rep_id, ln.region, ln.amount) for ln in s.exec(
            select(RebateLine).where(RebateLine.run_id == r.run_id)))
    assert got == [(o1, "tier_difference", "rep-zhangwei", "华南", Decimal("640.00")),
                   (o2, "rebate", "rep-lina", "华南", Decimal("1536.00"))]
    assert r.by_rep == {"rep-zhangwei": "640.00", "rep-lina": "1536.00"} and r.by_region == {"华南": "2176.00"}
    # December: O2 comes back in full: the quarter falls to 64,000 (2 %): O2 −1,536.00 (李娜);
    # O1's −640.00 is given back by 华南, which received it, not by 华东
    return_goods(hub.db_url, o2, 1, 4, D(2026, 12, 1))
    r = settle_month(current_hub(), "2026-12", documents=False)
    with session_scope(hub.db_url) as s:
        got = sorted((ln.order_id, ln.kind, ln.rep_id, ln.region, ln.amount) for ln in s.exec(
            select(RebateLine).where(RebateLine.run_id == r.run_id)))
    assert got == [(o1, "tier_difference", "rep-zhangwei", "华南", Decimal("-640.00")),
                   (o2, "clawback", "rep-lina", "华南", Decimal("-1536.00"))]


def test_a_rerun_with_nothing_new_names_the_month_and_its_revision(hub):
    publish(hub.db_url, FLAT.replace("effective_from: 2026-07-01", "effective_from: 2026-10-01"))
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    settle_month(current_hub(), "2026-10")
    again = settle_month(current_hub(), "2026-10")
    # run on 5 January for October: "本月" (this month) would be January
    assert again.message == "无新增变动：2026-10 的结算结果不变（仍为第 1 版），未生成新版本或凭证"


@pytest.mark.parametrize("finance_down_in_november", [False, True])
def test_a_stopped_month_is_finished_after_the_next_month_was_settled(hub, monkeypatch,
                                                                      finance_down_in_november):
    """October's run stored r1 and stopped before the vouchers (finance down); its message
    says to run October again, but November was settled first. November's run sends r1's
    vouchers and writes its statements (nothing is computed again) and says so; when it
    cannot, October's own run still does. Then, with nothing left, October is refused,
    saying that what it stored is out."""
    from flows.settlement import SettlementError, store_settlement
    from models import SettlementRun
    publish(hub.db_url, FLAT.replace("effective_from: 2026-07-01", "effective_from: 2026-10-01"))
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    store_settlement(hub.db_url, compute_month(hub.db_url, "2026-10"), "cron")  # then stopped
    finance = current_hub().finance
    real = finance.submit_vouchers

    def october_down(batch):
        if batch.batch_id.startswith("RB-2026-10"):
            raise TransientError("connection reset", provider="finance")
        return real(batch)

    if finance_down_in_november:
        monkeypatch.setattr(finance, "submit_vouchers", october_down)
    november = settle_month(current_hub(), "2026-11")
    monkeypatch.undo()
    if finance_down_in_november:
        assert "此前已保存、仍未完成的版本：2026-10 第 1 版（1 行，合计 ¥1,280.00）" in november.message
        r = settle_month(current_hub(), "2026-10")
        assert (r.run_id, r.revision, r.total) == (None, 1, Decimal("1280.00"))
        assert "此前已保存，本次补齐凭证草稿与对账单" in r.message and r.documents["statements"]
    else:
        assert november.message.endswith("此前已保存、本次补齐的版本：2026-10 第 1 版（1 行，合计 "
                                         "¥1,280.00）：凭证草稿 DRAFT-RB-2026-10-r1、对账单与明细")
    with session_scope(hub.db_url) as s:
        run = s.exec(select(SettlementRun).where(SettlementRun.month == "2026-10")).one()
    assert run.voucher_ref == "DRAFT-RB-2026-10-r1"
    # with nothing left to finish, October is refused, saying so
    with pytest.raises(SettlementError, match="2026-11 已经结算") as refused:
        settle_month(current_hub(), "2026-10")
    assert refused.value.code == "later_month_settled"
    assert refused.value.message.endswith(
        "；2026-10 已保存的结算（至第 1 版）均已完成：凭证草稿已提交财务、对账单已生成，无需再运行")


def test_confirmed_statements_missed_are_written_by_the_months_run_after_a_later_one(hub):
    from flows.settlement import confirm_settlement
    from models import Staff
    publish(hub.db_url, FLAT.replace("effective_from: 2026-07-01", "effective_from: 2026-10-01"))
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    settle_month(current_hub(), "2026-10")
    with session_scope(hub.db_url) as s:
        finance = s.get(Staff, "finance-01")
    confirm_settlement(hub.db_url, "2026-10", 1, finance)  # the API's writing then failed
    november = settle_month(current_hub(), "2026-11")  # writes them
    assert november.message.endswith("此前已保存、本次补齐的版本：2026-10 第 1 版（1 行，合计 "
                                     "¥1,280.00）：对账单与明细")
    folder = hub.settings.data_dir / "settlements" / "2026-10" / "r1-confirmed"
    assert list(folder.glob("*.pdf"))


def test_a_signature_counts_in_the_shanghai_month_it_was_made(hub):
    """Signed 31 October 23:30 in Shanghai (15:30 UTC) counts in October; signed 1 November
    00:30 in Shanghai (16:30 UTC on 31 October) counts in November."""
    from models import Quote
    from models.base import SHANGHAI
    publish(hub.db_url, FLAT.replace("effective_from: 2026-07-01", "effective_from: 2026-10-01"))
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    late = signed_order(hub.db_url, kangda, D(2026, 10, 30), [("MON-M8", 1)],
                        delivered_on=D(2026, 10, 30))
    later = signed_order(hub.db_url, kangda, D(2026, 10, 30), [("MON-M8", 2)],
                         delivered_on=D(2026, 10, 30))
    with session_scope(hub.db_url) as s:
        for oid, when in ((late, dt.datetime(2026, 10, 31, 23, 30, tzinfo=SHANGHAI)),
                          (later, dt.datetime(2026, 11, 1, 0, 30, tzinfo=SHANGHAI))):
            q = s.exec(select(Quote).where(Quote.order_id == oid)).one()
            q.signed_at = when
    r = settle_month(current_hub(), "2026-10", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(late, "flat", "rebate"): Decimal("256.00")}
    r = settle_month(current_hub(), "2026-11", documents=False)
    assert lines_of(hub.db_url, r.run_id) == {(later, "flat", "rebate"): Decimal("512.00")}
