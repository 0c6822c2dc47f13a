"""Audit round 4 (finance): 按客户 is one row per customer, also when the customer's lines are
booked to two reps or regions (orders of two reps; a claw-back booked where it was paid after
the customer changed hands), so that it ties to the customer's one voucher."""
from __future__ import annotations

from decimal import Decimal as D

from reports.settlement_workbook import build_settlement_workbook
from tests.unit.test_settlement_workbook import KANGDA, line, report, rows, voucher_for


def test_a_customer_booked_to_two_reps_is_one_row_by_customer():
    moved = (*KANGDA[:3], "华南", "王芳")  # the same customer, booked elsewhere
    lines = (line(KANGDA, "IO261008-AAAA0001", "1341.26"),
             line(moved, "IO260915-AAAA0002", "-300.00", "clawback"))
    wb = build_settlement_workbook(report(lines=lines,
                                          vouchers=(voucher_for(KANGDA, D("1041.26")),)))
    table = rows(wb["按客户"])
    head, body = table[0], table[1:-1]
    assert head[:5] == ("客户编码", "客户", "统一社会信用代码", "大区", "销售")
    assert len(body) == 1, body
    row = dict(zip(head, body[0]))
    assert (row["客户编码"], row["行数"]) == ("C000123", 2)
    assert row["大区"] == "华东、华南" and row["销售"] == "张伟、王芳"
    assert D(str(row["合计"])).quantize(D("0.01")) == D("1041.26")
    # the other summaries still split by where the lines are booked
    assert len(rows(wb["按销售"])) == 4 and len(rows(wb["按大区"])) == 4


def test_two_reps_of_the_same_name_are_two_rows_by_rep():
    # two 王芳 (one in 华东, one in 华南): one row would add up two people's rebates
    east = (*KANGDA[:3], "华东", "王芳")
    south = ("C000789", "广州岭南医疗器械有限公司", None, "华南", "王芳")
    lines = (line(east, "IO261008-AAAA0001", "100.00", rep_id="rep-wangf"),
             line(south, "IO261011-CCCC0001", "200.00", rep_id="rep-wangf2"),
             line(KANGDA, "IO261012-AAAA0003", "300.00", rep_id="rep-zhangw"))
    wb = build_settlement_workbook(report(lines=lines, vouchers=()))
    table = rows(wb["按销售"])
    body = {r[0]: D(str(r[-1])).quantize(D("0.01")) for r in table[1:-1]}
    assert body == {"王芳（rep-wangf）": D("100.00"), "王芳（rep-wangf2）": D("200.00"),
                    "张伟": D("300.00")}
    detail = rows(wb["明细"])
    reps = [dict(zip(detail[0], r))["销售"] for r in detail[1:]]
    assert reps == ["王芳（rep-wangf）", "王芳（rep-wangf2）", "张伟"]
