"""A line whose basis fell through returns names them: the date and number of each return or
exchange that lowered the order's basis since its latest line, so finance and the customer can
tell which return caused the deduction. Amounts are computed by hand; only the explanation
(and the line's `returns` input) carries the new facts."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import openpyxl
import pytest
from sqlmodel import select

from flows.hub import current_hub
from flows.settlement import compute_month, line_inputs, settle_month
from models import Customer, RebateLine, SettlementRun
from models.db import session_scope
from tests.flows.test_settlement_claw_back_regions import POLICY as TWO_RULES
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

D = dt.date
FLAT = """
code: T-FLAT
name: 测试月度返利政策
effective_from: 2026-10-01
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
"""


@pytest.fixture(autouse=True)
def months_over():
    clock_from(D(2027, 1, 5))


@pytest.fixture
def kangda(hub):
    publish(hub.db_url, FLAT)
    return customer_id(hub.db_url, "江苏康达医疗设备有限公司")


def month_lines(db_url: str, month: str, revision: int = 1) -> tuple[list, list[dict]]:
    with session_scope(db_url) as s:
        run = s.exec(select(SettlementRun).where(SettlementRun.month == month,
                                                 SettlementRun.revision == revision)).one()
        lines = s.exec(select(RebateLine).where(RebateLine.run_id == run.id)
                       .order_by(RebateLine.order_id, RebateLine.rule_id,
                                 RebateLine.region)).all()
        return lines, line_inputs(s, lines)


def test_a_late_return_settled_next_month_names_its_date_and_number(hub, kangda, statements):
    # October, settled on 5 November: O1 5 × M8 at 12,800 = 64,000 × 2 % = 1,280.00
    clock_from(D(2026, 11, 5))
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    settle_month(current_hub(), "2026-10", documents=False)
    # entered on 10 November: one unit came back on 28 October (after October was settled)
    clock_from(D(2026, 11, 10))
    return_goods(hub.db_url, o1, 1, 1, D(2026, 10, 28), number="TH-2026-0101")
    # November: O1's basis 4 × 12,800 = 51,200 × 2 % = 1,024.00, paid 1,280.00 → −256.00
    clock_from(D(2026, 12, 5))
    result = settle_month(current_hub(), "2026-11")
    lines, inputs = month_lines(hub.db_url, "2026-11")
    assert [(ln.order_id, ln.kind, ln.basis_amount, ln.due_amount, ln.amount, ln.rate)
            for ln in lines] == [(o1, "clawback", Decimal("51200.00"), Decimal("1024.00"),
                                  Decimal("-256.00"), Decimal("0.020000"))]
    (line,) = lines
    assert line.explanation.startswith(
        "退货冲回：应返 1,024.00 元，已返 1,280.00 元，本次 -256.00 元。"
        "因 2026-10-28 退货（退货单号 TH-2026-0101），"
        "本单计返基数由 64,000.00 元 降至 51,200.00 元。")
    assert inputs[0]["returns"] == [
        {"return_no": "TH-2026-0101", "returned_on": "2026-10-28", "kind": "return"}]
    assert inputs[0]["basis_before"] == "64000.00" and inputs[0]["paid_before"] == "1280.00"
    # the customer's statement and finance's workbook carry it
    (row,) = statements["C000001"].lines
    assert "退货单号 TH-2026-0101" in row.explanation and row.amount == Decimal("-256.00")
    ws = openpyxl.load_workbook(result.documents["workbook"])["明细"]
    assert any("退货单号 TH-2026-0101" in str(cell) for row in ws.iter_rows(values_only=True)
               for cell in row if cell)
    assert compute_month(hub.db_url, "2026-11").drafts == []


def test_two_returns_on_one_order_are_both_named_and_an_earlier_one_is_not(hub, kangda):
    # October: 10 × M8 = 128,000; one back on 25 October before October is settled (TH-0100):
    # basis 9 × 12,800 = 115,200 × 2 % = 2,304.00
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 10)])
    return_goods(hub.db_url, o1, 1, 1, D(2026, 10, 25), number="TH-2026-0100")
    settle_month(current_hub(), "2026-10", documents=False)
    (october,), _ = month_lines(hub.db_url, "2026-10")
    assert (october.kind, october.amount) == ("rebate", Decimal("2304.00"))
    # November: two more returns, 2 units on the 3rd and 1 on the 20th: basis 6 × 12,800 =
    # 76,800 × 2 % = 1,536.00, paid 2,304.00 → −768.00
    return_goods(hub.db_url, o1, 1, 1, D(2026, 11, 20), number="TH-2026-0103")
    return_goods(hub.db_url, o1, 1, 2, D(2026, 11, 3), number="TH-2026-0102")
    settle_month(current_hub(), "2026-11", documents=False)
    (line,), (inputs,) = month_lines(hub.db_url, "2026-11")
    assert (line.kind, line.basis_amount, line.amount) == (
        "clawback", Decimal("76800.00"), Decimal("-768.00"))
    assert ("因 2026-11-03 退货（退货单号 TH-2026-0102）、2026-11-20 退货（退货单号 TH-2026-0103），"
            "本单计返基数由 115,200.00 元 降至 76,800.00 元。") in line.explanation
    assert "TH-2026-0100" not in line.explanation  # counted in October's line already
    assert [r["return_no"] for r in inputs["returns"]] == ["TH-2026-0102", "TH-2026-0103"]


def test_a_return_dated_in_the_month_of_an_earlier_month_s_order(hub, kangda):
    # October: O1 5 × M8 (64,000, 监护) and 2 × SP3 (9,960, 输注: not under the rule):
    # 64,000 × 2 % = 1,280.00
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5), ("PUMP-SP3", 2)])
    settle_month(current_hub(), "2026-10", documents=False)
    # 8 November: a pump and a monitor come back, on two returns; an exchange of a monitor
    # whose replacement has not shipped yet on the 12th. Basis 3 × 12,800 = 38,400 × 2 % =
    # 768.00, paid 1,280.00 → −512.00; the pump's return is no part of it
    return_goods(hub.db_url, o1, 2, 1, D(2026, 11, 8), number="TH-2026-0201")
    return_goods(hub.db_url, o1, 1, 1, D(2026, 11, 8), number="TH-2026-0202")
    return_goods(hub.db_url, o1, 1, 1, D(2026, 11, 12), kind="exchange", number="HH-2026-0007")
    settle_month(current_hub(), "2026-11", documents=False)
    (line,), (inputs,) = month_lines(hub.db_url, "2026-11")
    assert (line.period, line.kind, line.basis_amount, line.due_amount, line.amount) == (
        "2026-10", "clawback", Decimal("38400.00"), Decimal("768.00"), Decimal("-512.00"))
    assert ("退货冲回：应返 768.00 元，已返 1,280.00 元，本次 -512.00 元。"
            "因 2026-11-08 退货（退货单号 TH-2026-0202）、2026-11-12 换货（换货单号 HH-2026-0007），"
            "本单计返基数由 64,000.00 元 降至 38,400.00 元。") in line.explanation
    assert "TH-2026-0201" not in line.explanation
    assert inputs["returns"] == [
        {"return_no": "TH-2026-0202", "returned_on": "2026-11-08", "kind": "return"},
        {"return_no": "HH-2026-0007", "returned_on": "2026-11-12", "kind": "exchange"}]


def test_a_re_run_after_a_late_return_names_it_and_everything_back_names_it_too(hub, kangda):
    # October: O1 5 × M8 = 1,280.00; O2 2 × M8 = 25,600 × 2 % = 512.00
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    o2 = signed_order(hub.db_url, kangda, D(2026, 10, 12), [("MON-M8", 2)])
    settle_month(current_hub(), "2026-10", documents=False)
    # a return dated in October entered afterwards, October run again: O1 4 units, 1,024.00
    return_goods(hub.db_url, o1, 1, 1, D(2026, 10, 30), number="TH-2026-0301")
    settle_month(current_hub(), "2026-10", documents=False)
    (line,), _ = month_lines(hub.db_url, "2026-10", revision=2)
    assert (line.order_id, line.kind, line.amount) == (o1, "adjustment", Decimal("-256.00"))
    assert line.explanation.startswith(
        "更正：应返 1,024.00 元，已返 1,280.00 元，本次 -256.00 元。重算已结算月份发现变化（更正）。"
        "因 2026-10-30 退货（退货单号 TH-2026-0301），本单计返基数由 64,000.00 元 降至 51,200.00 元。")
    # November: all of O2 comes back on two returns: nothing left under the rule, −512.00
    return_goods(hub.db_url, o2, 1, 1, D(2026, 11, 2), number="TH-2026-0302")
    return_goods(hub.db_url, o2, 1, 1, D(2026, 11, 9), number="TH-2026-0303")
    settle_month(current_hub(), "2026-11", documents=False)
    (line,), _ = month_lines(hub.db_url, "2026-11")
    assert (line.order_id, line.kind, line.basis_amount, line.amount) == (
        o2, "clawback", Decimal("0.00"), Decimal("-512.00"))
    assert "因 2026-11-02 退货（退货单号 TH-2026-0302）、2026-11-09 退货（退货单号 TH-2026-0303）" \
        in line.explanation


def test_a_claw_back_booked_to_two_regions_names_the_return_on_one_statement_row(
        hub, statements):
    publish(hub.db_url, TWO_RULES)
    renhe = customer_id(hub.db_url, "浙江仁和医疗器械有限公司")  # 华东
    o1 = signed_order(hub.db_url, renhe, D(2026, 10, 10), [("MON-M8", 5)])
    settle_month(current_hub(), "2026-10", documents=False)
    with session_scope(hub.db_url) as s:
        s.get(Customer, renhe).region = "华南"
    o2 = signed_order(hub.db_url, renhe, D(2026, 11, 5), [("MON-M8", 4)])
    settle_month(current_hub(), "2026-11", documents=False)
    # December: 3 of O1's 5 units back (the amounts of test_settlement_claw_back_regions):
    # O1 quarter −1,664.00 split 华南 −1,280.00 / 华东 −384.00, O1 flat −768.00, O2 quarter
    # −1,024.00 (a tier that fell back: O2 returned nothing)
    return_goods(hub.db_url, o1, 1, 3, D(2026, 12, 10), number="TH-2026-1210")
    result = settle_month(current_hub(), "2026-12")
    assert (result.lines, result.total) == (4, Decimal("-3456.00"))
    lines, _ = month_lines(hub.db_url, "2026-12")
    named = "因 2026-12-10 退货（退货单号 TH-2026-1210），本单计返基数由 64,000.00 元 降至 25,600.00 元。"
    assert {(ln.order_id, ln.rule_id, ln.region, ln.kind, ln.amount, named in ln.explanation)
            for ln in lines} == {
        (o1, "flat", "华东", "clawback", Decimal("-768.00"), True),
        (o1, "quarter", "华南", "clawback", Decimal("-1280.00"), True),
        (o1, "quarter", "华东", "clawback", Decimal("-384.00"), True),
        (o2, "quarter", "华南", "tier_difference", Decimal("-1024.00"), False)}
    assert not any("退货单号" in ln.explanation for ln in lines if ln.order_id == o2)
    # the customer's statement: one row for O1's quarter, cut before the split, the return named
    doc = statements["C000002"]
    (row,) = [ln for ln in doc.lines if ln.order_id == o1 and ln.clause == "第二条"]
    assert row.amount == Decimal("-1664.00")
    assert row.explanation.startswith("退货冲回：应返 256.00 元，已返 1,920.00 元，本次 -1,664.00 元。"
                                      + named)
    assert "华南" not in row.explanation and "本行" not in row.explanation


def test_a_delivery_corrected_down_is_not_blamed_on_a_return(hub, kangda):
    """The basis fell with no return behind it (the ERP corrected a delivery down): the
    explanation says so instead of naming returns that never happened."""
    from models import Delivery, utcnow
    clock_from(D(2026, 11, 5))
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    settle_month(current_hub(), "2026-10", documents=False)
    clock_from(D(2026, 11, 10))
    with session_scope(hub.db_url) as s:  # 5 → 4 units shipped, as a corrected import stores it
        (delivery,) = s.exec(select(Delivery).where(Delivery.order_id == o1)).all()
        delivery.quantity, delivery.recorded_at = 4, utcnow()
        s.add(delivery)
    clock_from(D(2026, 12, 5))
    settle_month(current_hub(), "2026-11", documents=False)
    (line,), (inputs,) = month_lines(hub.db_url, "2026-11")
    assert (line.order_id, line.basis_amount, line.amount) == (
        o1, Decimal("51200.00"), Decimal("-256.00"))
    assert "本单计返基数由 64,000.00 元 降至 51,200.00 元（其间无新的退货或换货：发货或订单数据有更正）。" \
        in line.explanation
    assert "退货/换货后" not in line.explanation and "returns" not in inputs
