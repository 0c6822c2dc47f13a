"""ERP delivery and return exports (用友 U8 发货单/销售出库单, 金蝶 K/3 Cloud 销售出库单/退货单)
carry the quantity to ship (应发数量 / 应退数量) beside the quantity that actually moved (实发数量 /
实退数量), or only the latter: the rebates count what left (came back to) the warehouse. A line
that moved nothing is skipped and said; a document re-sent with a line at 0 drops that line."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from sqlmodel import select

from flows.hub import current_hub
from flows.sales_facts import ImportRefused, import_movements
from flows.settlement import settle_month
from models import OperationLog, RebateLine
from models.db import get_engine, session_scope
from tests.rebate_support import clock_from, customer_id, publish, signed_order
from tests.support import in_process_cli

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"
POLICY = """
code: P-SHIP
name: 实发测试
effective_from: 2026-07-01
rules:
  - {id: flat, measure: amount, period: month, style: retroactive,
     tiers: [{from: 0, rate: 2%}], priority: 1, stacking: stack}
"""


@pytest.fixture
def order(seeded):
    """5 monitors (line 1) and 100 boxes of electrodes (line 2), signed, nothing delivered."""
    return signed_order(seeded.db_url, customer_id(seeded.db_url, KANGDA), D(2026, 10, 10),
                        [("MON-M8", 5), ("CONS-ECG10", 100)], delivered_on=False)


def csv_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def xlsx_file(path: Path, rows: list[list], title: str | None = None) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    if title:
        ws.append([title])
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def stored(db_url: str, table: str = "delivery") -> list[tuple]:
    number = "return_no" if table == "sales_return" else "delivery_no"
    with get_engine(db_url).connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            f"SELECT {number}, line_no, quantity FROM {table} "
            f"WHERE {number} NOT LIKE 'D%' ORDER BY {number}, line_no"))]


def deletions(db_url: str, table: str = "delivery") -> list[dict]:
    with session_scope(db_url) as s:
        return [json.loads(c) for c in s.exec(select(OperationLog.changes).where(
            OperationLog.entity == table, OperationLog.action == "delete"))]


# --- which column is the delivered quantity ---------------------------------------------------

def test_a_kingdee_export_with_planned_and_shipped_quantities_counts_what_shipped(
        seeded, order, tmp_path):
    """K/3 Cloud 销售出库单: 应发数量 and 实发数量, no 数量. Line 1: 5 to ship, 3 shipped; line 2:
    100 to ship, nothing shipped yet (0), the same line on another document left blank (U8 and
    Kingdee reports leave zeros blank): neither is a delivery nor an error."""
    path = csv_file(tmp_path / "销售出库单.csv",
                    "出库单号,订单号,行号,物料编码,应发数量,实发数量,出库日期\n"
                    f"XSCK-1,{order},1,MON-M8,5.00,3.00,2026-10-12\n"
                    f"XSCK-1,{order},2,CONS-ECG10,100.00,0.00,2026-10-12\n"
                    f"XSCK-2,{order},2,CONS-ECG10,100,,\n")
    summary = import_movements(seeded.db_url, path, "test", returns=False)
    assert (summary.created, summary.updated, summary.removed) == (1, 0, 0)
    assert stored(seeded.db_url) == [("XSCK-1", 1, 3)]
    assert summary.skipped == [
        f"销售出库单.csv 第3行：发货单 XSCK-1 意向单 {order} 第 2 行实发数量为 0（应发数量 100）：未发货，不计入",
        f"销售出库单.csv 第4行：发货单 XSCK-2 意向单 {order} 第 2 行实发数量为空（应发数量 100）：未发货，不计入",
    ]
    again = import_movements(seeded.db_url, path, "test", returns=False)
    assert (again.created, again.updated, again.unchanged, again.removed) == (0, 0, 1, 0)


def test_shipped_quantity_wins_over_quantity_and_planned_quantity_in_a_workbook(
        seeded, order, tmp_path):
    """A U8 export in Excel under a title block, with 数量 (here the ordered quantity), 应发数量
    and 实发数量 as numbers: the stored deliveries are the 实发数量, 2 + 40 (not 5 + 100)."""
    path = xlsx_file(tmp_path / "发货单.xlsx", [
        ["发货单号", "意向单号", "行号", "数量", "应发数量", "实发数量", "发货日期"],
        ["FH-1", order, 1, 5.0, 5.0, 2.0, dt.datetime(2026, 10, 12)],
        ["FH-1", order, 2, 100.0, 100.0, 40.0, dt.datetime(2026, 10, 12)],
    ], title="用友U8 发货单列表")
    assert import_movements(seeded.db_url, path, "test", returns=False).created == 2
    assert stored(seeded.db_url) == [("FH-1", 1, 2), ("FH-1", 2, 40)]


def test_each_worksheet_is_read_by_its_own_columns(seeded, order, tmp_path):
    """October's sheet from the old template (数量 only), November's from the new one (应发 /
    实发): each sheet's quantity is read from its own columns; the unshipped line is named with
    its sheet."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, header, rows in (
            ("10月", ["发货单号", "意向单号", "行号", "数量", "发货日期"],
             [["FH-1", order, 1, 2, dt.datetime(2026, 10, 12)]]),
            ("11月", ["发货单号", "意向单号", "行号", "应发数量", "实发数量", "发货日期"],
             [["FH-2", order, 1, 3, 1, dt.datetime(2026, 11, 3)],
              ["FH-2", order, 2, 100, 0, dt.datetime(2026, 11, 3)]])):
        ws = wb.create_sheet(title)
        for row in (header, *rows):
            ws.append(row)
    wb.save(tmp_path / "发货.xlsx")
    summary = import_movements(seeded.db_url, tmp_path / "发货.xlsx", "test", returns=False)
    assert stored(seeded.db_url) == [("FH-1", 1, 2), ("FH-2", 1, 1)]
    assert summary.skipped == [f"发货.xlsx[11月] 第3行：发货单 FH-2 意向单 {order} 第 2 行实发数量为 0"
                               "（应发数量 100）：未发货，不计入"]


def test_shipped_quantity_wins_over_a_plain_quantity(seeded, order, tmp_path):
    """数量 beside 实发数量 is the quantity to ship: a blank 实发数量 with 数量 > 0 is unshipped."""
    path = csv_file(tmp_path / "发货.csv", "发货单号,意向单号,行号,数量,实发数量,发货日期\n"
                                         f"FH-1,{order},1,5,4,2026-10-12\n"
                                         f"FH-1,{order},2,100,,2026-10-12\n")
    summary = import_movements(seeded.db_url, path, "test", returns=False)
    assert stored(seeded.db_url) == [("FH-1", 1, 4)]
    assert summary.skipped == [
        f"发货.csv 第3行：发货单 FH-1 意向单 {order} 第 2 行实发数量为空（数量 100）：未发货，不计入"]


def test_beside_a_planned_quantity_a_plain_quantity_is_what_shipped(seeded, order, tmp_path):
    """U8 销售出库单: 应发数量 and 数量 (the quantity out). 数量 counts; 0 there is unshipped."""
    path = csv_file(tmp_path / "出库.csv", "出库单号,意向单号,行号,应发数量,数量,出库日期\n"
                                         f"CK-1,{order},1,5,3,2026-10-12\n"
                                         f"CK-1,{order},2,100,0,2026-10-12\n")
    summary = import_movements(seeded.db_url, path, "test", returns=False)
    assert stored(seeded.db_url) == [("CK-1", 1, 3)]
    assert summary.skipped == [
        f"出库.csv 第3行：发货单 CK-1 意向单 {order} 第 2 行数量为 0（应发数量 100）：未发货，不计入"]


def test_a_file_with_only_the_planned_quantity_is_refused(seeded, order, tmp_path):
    path = csv_file(tmp_path / "发货.csv", "发货单号,意向单号,行号,应发数量,发货日期\n"
                                         f"FH-1,{order},1,5,2026-10-12\n")
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=False)
    assert str(refused.value) == (
        "发货.csv 第1行「应发数量」：只有应发数量（计划发货的数量），没有实发数量：返利按实际出库的数量计算，"
        "不能用应发数量代替；请从 ERP 导出含实发数量的单据后再导入")
    assert stored(seeded.db_url) == []


def test_a_file_without_any_quantity_names_every_spelling(seeded, order, tmp_path):
    path = csv_file(tmp_path / "发货.csv", f"发货单号,意向单号,行号,发货日期\nFH-1,{order},1,2026-10-12\n")
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=False)
    assert str(refused.value) == (
        "发货.csv 第1行「实发数量」：缺少必填列（也可写作：实际发货数量、实际出库数量、shipped_quantity、"
        "数量、发货数量、quantity）")


@pytest.mark.parametrize("rows, problem", [
    # blank, and nothing says the line was to ship at all
    ("FH-1,{order},1,,,2026-10-12", "发货.csv 第2行「实发数量」：不能为空（未发货的行请填 0）"),
    ("FH-1,{order},1,0,,2026-10-12", "发货.csv 第2行「实发数量」：不能为空（未发货的行请填 0）"),
    ("FH-1,{order},1,5,-2,2026-10-12", "发货.csv 第2行「实发数量」：发货数量须大于零：'-2'（负数是红字"),
    ("FH-1,{order},1,5,2.5,2026-10-12", "发货.csv 第2行「实发数量」：不是整数：'2.5'"),
    ("FH-1,{order},1,五,,2026-10-12", "发货.csv 第2行「应发数量」：不是整数：'五'"),
    # shipped beyond the order (5): the order is the ceiling, whatever 应发数量 says
    ("FH-1,{order},1,6,6,2026-10-12", "累计发货 6，超过订购数量 5"),
])
def test_bad_shipped_quantities_are_refused_by_row_and_column(seeded, order, tmp_path, rows,
                                                               problem):
    path = csv_file(tmp_path / "发货.csv", "发货单号,意向单号,行号,应发数量,实发数量,发货日期\n"
                    + rows.format(order=order) + f"\nFH-2,{order},2,100,100,2026-10-12\n")
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=False)
    assert problem in str(refused.value)
    assert len(refused.value.problems) == 1, refused.value.problems  # each cell said once
    assert stored(seeded.db_url) == []


def test_shipped_beyond_the_planned_quantity_but_within_the_order_is_accepted(
        seeded, order, tmp_path):
    """U8 and Kingdee let a warehouse ship over 应发数量 within a tolerance (超发): what left is
    what counts; the order (5) is the ceiling the import checks."""
    path = csv_file(tmp_path / "发货.csv", "发货单号,意向单号,行号,应发数量,实发数量,发货日期\n"
                                         f"FH-1,{order},1,3,4,2026-10-12\n")
    assert import_movements(seeded.db_url, path, "test", returns=False).created == 1
    assert stored(seeded.db_url) == [("FH-1", 1, 4)]


# --- a re-sent document ---------------------------------------------------------------------

def test_a_document_re_sent_with_a_line_at_nothing_shipped_drops_that_line(seeded, order,
                                                                           tmp_path):
    """FH-1 (two lines) and FH-2 (one line) were imported as shipped; the ERP re-sends them
    after the shipment of FH-1 line 2 was reversed (实发 now blank, 应发 100) and FH-2 was
    reversed whole (实发 0): the re-sent documents are authoritative, both lines are deleted
    (operation log), FH-2 with its only line, and the import says which rows moved nothing."""
    db = seeded.db_url
    header = "发货单号,意向单号,行号,应发数量,实发数量,发货日期\n"
    import_movements(db, csv_file(tmp_path / "a.csv", header
                                  + f"FH-1,{order},1,5,2,2026-10-12\n"
                                  + f"FH-1,{order},2,100,60,2026-10-12\n"
                                  + f"FH-2,{order},1,5,1,2026-10-14\n"), "test", returns=False)
    assert stored(db) == [("FH-1", 1, 2), ("FH-1", 2, 60), ("FH-2", 1, 1)]
    fixed = import_movements(db, csv_file(tmp_path / "b.csv", header
                                          + f"FH-1,{order},1,5,2,2026-10-12\n"
                                          + f"FH-1,{order},2,100,,2026-10-12\n"
                                          + f"FH-2,{order},1,5,0,2026-10-14\n"),
                             "test", returns=False)
    assert (fixed.created, fixed.updated, fixed.unchanged, fixed.removed) == (0, 0, 1, 2)
    assert stored(db) == [("FH-1", 1, 2)]
    assert fixed.skipped == [
        f"b.csv 第3行：发货单 FH-1 意向单 {order} 第 2 行实发数量为空（应发数量 100）：未发货，不计入",
        f"b.csv 第4行：发货单 FH-2 意向单 {order} 第 1 行实发数量为 0（应发数量 5）：未发货，不计入",
    ]
    assert fixed.moved == [
        f"发货单 FH-1：已不含意向单 {order} 第 2 行（原数量 60，2026-10-12），该行已删除",
        f"发货单 FH-2：已不含意向单 {order} 第 1 行（原数量 1，2026-10-14），该行已删除",
    ]
    assert sorted((d["delivery_no"][0], d["line_no"][0], d["quantity"][0])
                  for d in deletions(db)) == [("FH-1", 2, 60), ("FH-2", 1, 1)]


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


def test_the_cli_counts_and_names_the_lines_not_shipped(hub, cli, order, tmp_path):
    path = csv_file(tmp_path / "发货.csv", "发货单号,意向单号,行号,应发数量,实发数量,发货日期\n"
                                         f"FH-1,{order},1,5,5,2026-10-12\n"
                                         f"FH-1,{order},2,100,0,2026-10-12\n")
    code, out, err = cli("deliveries", "import", path)
    assert code == 0
    assert "发货导入完成：新增 1，更新 0，未变 0，跳过 1。" in out
    assert (f"跳过：发货.csv 第3行：发货单 FH-1 意向单 {order} 第 2 行实发数量为 0（应发数量 100）："
            "未发货，不计入") in err


# --- returns --------------------------------------------------------------------------------

def test_a_return_export_counts_what_came_back(seeded, order, tmp_path):
    """Kingdee 销售退货单 in Excel: 申请退货数量 (应退) 2 and 实退数量 1 on line 1, a line of
    electrodes applied for (10) and not returned (0). Returned: 1, and the exchange kind kept."""
    db = seeded.db_url
    import_movements(db, csv_file(tmp_path / "d.csv", "发货单号,意向单号,行号,实发数量,发货日期\n"
                                  f"FH-1,{order},1,5,2026-10-12\n"
                                  f"FH-1,{order},2,100,2026-10-12\n"), "test", returns=False)
    path = xlsx_file(tmp_path / "退货单.xlsx", [
        ["退货单号", "意向单号", "行号", "申请退货数量", "实退数量", "退货日期", "类型", "原因"],
        ["TH-1", order, 1, 2, 1, dt.datetime(2026, 10, 20), "换货", "屏幕坏点"],
        ["TH-1", order, 2, 10, 0, dt.datetime(2026, 10, 20), "退货", None],
    ])
    summary = import_movements(db, path, "test", returns=True)
    assert summary.created == 1
    assert stored(db, "sales_return") == [("TH-1", 1, 1)]
    assert summary.skipped == [
        f"退货单.xlsx 第3行：退货单 TH-1 意向单 {order} 第 2 行实退数量为 0（应退数量 10）：未退回，不计入"]
    # re-sent with line 1 not returned after all: the line goes
    xlsx_file(path, [["退货单号", "意向单号", "行号", "应退数量", "实退数量", "退货日期"],
                     ["TH-1", order, 1, 2, None, dt.datetime(2026, 10, 20)]])
    again = import_movements(db, path, "test", returns=True)
    assert (again.removed, stored(db, "sales_return")) == (1, [])
    assert again.moved == [f"退货单 TH-1：已不含意向单 {order} 第 1 行（原数量 1，2026-10-20），该行已删除"]


def test_a_return_file_with_only_the_applied_quantity_is_refused(seeded, order, tmp_path):
    path = csv_file(tmp_path / "退货.csv", "退货单号,意向单号,行号,申请退货数量,退货日期\n"
                                         f"TH-1,{order},1,1,2026-10-20\n")
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=True)
    assert str(refused.value) == (
        "退货.csv 第1行「应退数量」：只有应退数量（申请退货的数量），没有实退数量：返利按实际退回的数量计算，"
        "不能用应退数量代替；请从 ERP 导出含实退数量的单据后再导入")


def test_a_return_beyond_what_shipped_is_refused_though_applied_for(seeded, order, tmp_path):
    db = seeded.db_url
    import_movements(db, csv_file(tmp_path / "d.csv", "发货单号,意向单号,行号,应发数量,实发数量,发货日期\n"
                                  f"FH-1,{order},1,5,2,2026-10-12\n"), "test", returns=False)
    path = csv_file(tmp_path / "r.csv", "退货单号,意向单号,行号,应退数量,实退数量,退货日期\n"
                                      f"TH-1,{order},1,5,3,2026-10-20\n")
    with pytest.raises(ImportRefused, match="累计退货 3，超过已发货 2") as refused:
        import_movements(db, path, "test", returns=True)
    assert [str(p) for p in refused.value.problems] == [  # at the file's row
        f"r.csv 第2行「数量」：意向单 {order} 第 1 行截至 2026-10-20 累计退货 3，超过已发货 2"]


# --- the settlement -------------------------------------------------------------------------

def test_the_settlement_pays_on_what_shipped_not_on_what_was_to_ship(hub, tmp_path):
    """5 monitors ordered at 12,800, 应发 5, 实发 3 on 3 September: September's rebate is
    3 × 12,800 × 2 % = 768.00 (not 1,280.00). The rest ships on 8 October: October pays
    2 × 256 = 512.00."""
    clock_from(D(2026, 9, 1))
    publish(hub.db_url, POLICY)
    db = hub.db_url
    order = signed_order(db, customer_id(db, KANGDA), D(2026, 9, 2), [("MON-M8", 5)],
                         delivered_on=False)
    header = ["出库单号", "订单号", "行号", "应发数量", "实发数量", "出库日期"]
    clock_from(D(2026, 9, 3))  # imported the day it shipped, not before (a date after today)
    import_movements(db, xlsx_file(tmp_path / "9月.xlsx", [
        header, ["XSCK-1", order, 1, 5, 3, dt.datetime(2026, 9, 3)]]), "erp", returns=False)
    clock_from(D(2026, 10, 5))
    settle_month(current_hub(), "2026-09", documents=False)
    clock_from(D(2026, 10, 8))
    import_movements(db, xlsx_file(tmp_path / "10月.xlsx", [
        header, ["XSCK-2", order, 1, 2, 2, dt.datetime(2026, 10, 8)]]), "erp", returns=False)
    clock_from(D(2026, 11, 5))
    settle_month(current_hub(), "2026-10", documents=False)
    with session_scope(db) as s:
        paid = [(ln.month, Decimal(str(ln.amount))) for ln in s.exec(
            select(RebateLine).where(RebateLine.order_id == order).order_by(RebateLine.id))]
    assert paid == [("2026-09", Decimal("768.00")), ("2026-10", Decimal("512.00"))]
