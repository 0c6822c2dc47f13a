"""ERP exports write the unit into the header: K/3 Cloud `实发数量(基本单位)`, others `数量（台）`,
`金额（元）`, with a required-field star or a line break inside the cell. Every import reads
such a file as it reads the plain headers; a multiple of a unit (万元) and two headers of one
column (基本单位 and 销售单位 side by side) are refused with both named, nothing written."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from flows.sales_facts import ImportRefused, import_movements, import_receivables_file
from models.db import get_engine
from tests.flows.test_audit5_receivables import KANGDA, allocations
from tests.flows.test_movement_shipped_quantities import (  # noqa: F401 (fixtures)
    cli, csv_file, order, stored, xlsx_file,
)

D = dt.date
DELIVERY_PLAIN = ["发货单号", "意向单号", "行号", "物料编码", "应发数量", "实发数量", "发货日期"]
# K/3 Cloud 销售出库单 as exported, and as its import template marks required fields
DELIVERY_SUFFIXED = ["*发货单号", "意向单号 ", "行号*", "物料编码", "应发数量(基本单位)",
                     "实发数量\n（基本单位）", "发货日期*"]
RETURN_PLAIN = ["退货单号", "意向单号", "行号", "应退数量", "实退数量", "退货日期", "类型"]
RETURN_SUFFIXED = ["退货单号*", "意向单号", "行号", "应退数量（库存单位）", "实退数量(台)", "退货日期",
                   "类型"]


def write_table(path, header: list[str], rows: list[list]):
    """The rows as CSV (UTF-8 with BOM, cells quoted: a header may hold a line break) or XLSX."""
    if path.suffix == ".xlsx":
        return xlsx_file(path, [header, *rows], title="销售出库单列表")
    lines = [header, *([str(c) for c in row] for row in rows)]
    text = "\r\n".join(",".join('"' + c.replace('"', '""') + '"' for c in line) for line in lines)
    path.write_text(text + "\r\n", encoding="utf-8-sig")
    return path


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
@pytest.mark.parametrize("header", [DELIVERY_PLAIN, DELIVERY_SUFFIXED], ids=["plain", "units"])
def test_deliveries_with_units_in_the_headers_store_what_plain_headers_store(
        seeded, order, tmp_path, suffix, header):
    path = write_table(tmp_path / f"销售出库单{suffix}", header, [
        ["XSCK-1", order, 1, "MON-M8", 5, 3, "2026-10-12"],
        ["XSCK-1", order, 2, "CONS-ECG10", 100, 0, "2026-10-12"],
        ["XSCK-2", order, 2, "CONS-ECG10", 100, 40, "2026-10-13"],
    ])
    summary = import_movements(seeded.db_url, path, "test", returns=False)
    assert (summary.created, summary.updated) == (2, 0)
    assert stored(seeded.db_url) == [("XSCK-1", 1, 3), ("XSCK-2", 2, 40)]
    assert summary.skipped == [
        f"{path.name} 第{3 if suffix == '.csv' else 4}行：发货单 XSCK-1 意向单 {order} 第 2 行"
        "实发数量为 0（应发数量 100）：未发货，不计入"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
@pytest.mark.parametrize("header", [RETURN_PLAIN, RETURN_SUFFIXED], ids=["plain", "units"])
def test_returns_with_units_in_the_headers_store_what_plain_headers_store(
        seeded, order, tmp_path, suffix, header):
    db = seeded.db_url
    import_movements(db, csv_file(tmp_path / "d.csv", "发货单号,意向单号,行号,实发数量,发货日期\n"
                                  f"FH-1,{order},1,5,2026-10-12\n"), "test", returns=False)
    path = write_table(tmp_path / f"退货单{suffix}", header, [
        ["TH-1", order, 1, 2, 1, "2026-10-20", "换货"],
    ])
    assert import_movements(db, path, "test", returns=True).created == 1
    assert stored(db, "sales_return") == [("TH-1", 1, 1)]


def test_shipped_quantities_in_two_units_are_refused_naming_both_headers(seeded, order,
                                                                          tmp_path):
    """实发数量 in the base unit (12 pieces) and in the sales unit (1 box): which to count is
    not for the import to guess."""
    path = write_table(tmp_path / "销售出库单.xlsx",
                       ["发货单号", "意向单号", "行号", "实发数量(基本单位)", "实发数量（销售单位）",
                        "发货日期"],
                       [["XSCK-1", order, 2, 12, 1, "2026-10-12"]])
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=False)
    assert str(refused.value) == (
        "销售出库单.xlsx 第2行「实发数量」：列重复（第4列「实发数量(基本单位)」和第5列「实发数量（销售单位）」"
        "都是此列）：无法确定用哪一列，请只保留一列后再导入")
    assert stored(seeded.db_url) == []


def test_a_quantity_in_thousands_is_refused_not_read_as_pieces(seeded, order, tmp_path):
    path = csv_file(tmp_path / "发货.csv", "发货单号,意向单号,行号,数量(千件),发货日期\n"
                                         f"FH-1,{order},1,1,2026-10-12\n")
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=False)
    assert str(refused.value) == (
        "发货.csv 第1行「数量」：表头「数量(千件)」以“千件”为单位，导入不做换算：请换算为不带倍数的单位，"
        "表头写作「数量」后再导入")
    assert stored(seeded.db_url) == []


@pytest.mark.parametrize("planned, problem", [
    ("", "发货.csv 第1行「实发数量」：缺少必填列（也可写作：实际发货数量、实际出库数量、shipped_quantity、"
         "数量、发货数量、quantity）"),
    ("应发数量,", "发货.csv 第1行「应发数量」：只有应发数量（计划发货的数量），没有实发数量：返利按实际出库的"
                 "数量计算，不能用应发数量代替；请从 ERP 导出含实发数量的单据后再导入"),
])
def test_a_quantity_header_with_a_note_that_is_no_unit_is_not_read_and_said(
        seeded, order, tmp_path, planned, problem):
    """`实发数量(含赠品)` may count the free goods too: not taken for 实发数量, and the refusal
    says why the column the clerk sees was not read."""
    path = csv_file(tmp_path / "发货.csv", f"发货单号,意向单号,行号,{planned}实发数量(含赠品),发货日期\n"
                                         f"FH-1,{order},1,{'5,' if planned else ''}5,2026-10-12\n")
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=False)
    assert str(refused.value) == problem + (
        "；表头「实发数量(含赠品)」的括注“含赠品”不是可识别的单位（如元、台、基本单位），所指可能不同，"
        "未当作此列")
    assert stored(seeded.db_url) == []


def test_the_cli_imports_a_kingdee_export_with_units_in_its_headers(hub, cli, order, tmp_path):
    path = write_table(tmp_path / "销售出库单.xlsx", DELIVERY_SUFFIXED, [
        ["XSCK-1", order, 1, "MON-M8", 5, 5, dt.datetime(2026, 10, 12)],
        ["XSCK-1", order, 2, "CONS-ECG10", 100, 60, dt.datetime(2026, 10, 12)],
    ])
    code, out, err = cli("deliveries", "import", path)
    assert code == 0, err
    assert "发货导入完成：新增 2，更新 0，未变 0。" in out
    assert stored(hub.db_url) == [("XSCK-1", 1, 5), ("XSCK-1", 2, 60)]


# --- receivables and payments --------------------------------------------------------------

def invoice_amounts(db_url: str) -> list[tuple]:
    with get_engine(db_url).connect() as conn:
        return [(n, Decimal(a)) for n, a in conn.execute(sa.text(
            "SELECT invoice_no, amount FROM receivable_invoice WHERE invoice_no LIKE 'FP-U%' "
            "ORDER BY invoice_no"))]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_receivables_and_payments_with_amounts_in_yuan_are_imported(seeded, tmp_path, suffix):
    db = seeded.db_url
    invoices = write_table(tmp_path / f"应收{suffix}",
                           ["发票号码*", "客户名称", "开票日期", "到期日", "价税合计（元）"],
                           [["FP-U1", KANGDA, "2026-10-01", "2026-11-01", "1,234.50"]])
    assert import_receivables_file(db, invoices, "t").created == 1
    payments = write_table(tmp_path / f"回款{suffix}",
                           ["回款单号", "发票号", "回款日期", "金额（元）"],
                           [["SK-U1", "FP-U1", "2026-10-20", "1000.00"]])
    assert import_receivables_file(db, payments, "t").created == 1
    assert invoice_amounts(db) == [("FP-U1", Decimal("1234.50"))]
    assert [(n, Decimal(a)) for n, a in allocations(db, "SK-U1")] == [("FP-U1", Decimal("1000.00"))]


def test_payments_in_ten_thousands_of_yuan_are_refused_naming_the_column(seeded, tmp_path):
    """0.1 万元 read as 0.10 yuan would understate the payment 10,000 times."""
    db = seeded.db_url
    import_receivables_file(db, write_table(tmp_path / "应收.csv",
                                            ["发票号", "客户名称", "开票日期", "到期日", "金额"],
                                            [["FP-U1", KANGDA, "2026-10-01", "2026-11-01", "1000"]]),
                            "t")
    path = write_table(tmp_path / "回款.csv", ["回款单号", "发票号", "回款日期", "回款金额（万元）"],
                       [["SK-U1", "FP-U1", "2026-10-20", "0.1"]])
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, path, "t")
    assert str(refused.value) == (
        "回款.csv 第1行「金额」：表头「回款金额（万元）」以“万元”为单位，导入不做换算：请换算为元，"
        "表头写作「回款金额」后再导入")
    assert allocations(db, "SK-U1") == []
