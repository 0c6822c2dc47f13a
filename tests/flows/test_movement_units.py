"""ERP delivery and return exports carry the unit of each line's quantity (U8: 主计量单位,
K/3 Cloud: 库存单位; others 单位 / 计量单位), and sometimes a quantity in another unit than the
order (个 where the order is in 盒). The import converts nothing: the quantity counts in the
order line's unit (the one it was ordered in), so a line said to be in another unit — in a unit column or
in its quantity's header, `实发数量(个)` — is refused, row by row, and nothing is written. A
file without a unit takes its quantities as in the order's unit, as before."""
from __future__ import annotations

import datetime as dt

import pytest

from flows.sales_facts import ImportRefused, import_movements
from models import Product
from models.catalog import same_unit
from models.db import session_scope
from models.oplog import apply_changes
from tests.flows.test_import_header_units import write_table
from tests.flows.test_movement_shipped_quantities import (  # noqa: F401 (fixtures)
    KANGDA, cli, csv_file, order, stored,
)
from tests.rebate_support import customer_id, signed_order

# the order fixture: line 1 is 5 MON-M8 (台), line 2 is 100 CONS-ECG10 (盒)


def mismatch(document: str, order_id: str, line: int, sku: str, said: str, quantity: int,
             given: str, unit: str) -> str:
    return (f"{document} 意向单 {order_id} 第 {line} 行（物料 {sku}）{said}，订单按“{unit}”订购："
            f"导入不做单位换算，不能把 {quantity} {given}当作 {quantity} {unit}计入；"
            f"请在 ERP 中按订单的单位“{unit}”（销售单位）导出数量后再导入")


def deliver(db_url: str, tmp_path, order_id: str):
    """5 monitors and 100 boxes delivered, so that returns have something to come back from."""
    import_movements(db_url, csv_file(tmp_path / "d.csv", "发货单号,意向单号,行号,实发数量,发货日期\n"
                                      f"FH-0,{order_id},1,5,2026-10-12\n"
                                      f"FH-0,{order_id},2,100,2026-10-12\n"), "test", returns=False)


# --- the unit matches: imported -------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
@pytest.mark.parametrize("unit_header, units", [
    ("单位", ["台", "盒"]),
    ("计量单位", [" 台 ", "盒"]),           # spaces around it
    ("主计量单位", ["台", "盒"]),            # U8
    ("库存单位", ["台", "\N{IDEOGRAPHIC SPACE}盒"]),  # K/3 Cloud, a full-width space
    ("单位", ["台", ""]),                    # a blank cell: the order's unit
])
def test_deliveries_in_the_orders_units_are_imported(seeded, order, tmp_path, suffix,
                                                      unit_header, units):
    path = write_table(tmp_path / f"出库{suffix}",
                       ["出库单号", "订单号", "行号", "物料编码", unit_header, "实发数量", "出库日期"],
                       [["XSCK-1", order, 1, "MON-M8", units[0], 3, "2026-10-12"],
                        ["XSCK-1", order, 2, "CONS-ECG10", units[1], 60, "2026-10-12"]])
    assert import_movements(seeded.db_url, path, "test", returns=False).created == 2
    assert stored(seeded.db_url) == [("XSCK-1", 1, 3), ("XSCK-1", 2, 60)]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_kingdee_export_is_checked_by_its_stock_unit_not_its_base_or_sales_unit(
        seeded, order, tmp_path, suffix):
    """K/3 Cloud 销售出库单: 实发数量 is in the 库存单位; 基本单位 and 销售单位 name the units of
    other quantities of the line (基本数量, 销售数量) and are not read."""
    path = write_table(tmp_path / f"销售出库单{suffix}",
                       ["单据编号", "发货单号", "意向单号", "物料编码", "库存单位", "实发数量",
                        "基本单位", "销售单位", "发货日期"],
                       [["1", "XSCK-1", order, "CONS-ECG10", "盒", 60, "片", "箱", "2026-10-12"]])
    assert import_movements(seeded.db_url, path, "test", returns=False).created == 1
    assert stored(seeded.db_url) == [("XSCK-1", 2, 60)]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_kingdee_quantity_in_the_base_unit_is_checked_by_the_base_unit_column(
        seeded, order, tmp_path, suffix):
    """`实发数量(基本单位)`: the numbers are in the 基本单位 (片), whatever the 库存单位 (盒) says:
    1,200 pieces are not 1,200 boxes. `实发数量(库存单位)` of the same line is imported."""
    header = ["发货单号", "意向单号", "物料编码", "库存单位", "基本单位", "实发数量(基本单位)",
              "发货日期"]
    path = write_table(tmp_path / f"销售出库单{suffix}", header,
                       [["XSCK-1", order, "CONS-ECG10", "盒", "片", 1200, "2026-10-12"]])
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=False)
    assert str(refused.value) == (
        f"{path.name} 第{2 if suffix == '.csv' else 3}行「基本单位」：" + mismatch(
            "发货单 XSCK-1", order, 2, "CONS-ECG10", "的单位是“片”", 1200, "片", "盒"))
    assert stored(seeded.db_url) == []
    header[5] = "实发数量（库存单位）"
    path = write_table(tmp_path / f"销售出库单{suffix}", header,
                       [["XSCK-1", order, "CONS-ECG10", "盒", "片", 12, "2026-10-12"]])
    assert import_movements(seeded.db_url, path, "test", returns=False).created == 1
    assert stored(seeded.db_url) == [("XSCK-1", 2, 12)]


def test_a_u8_export_is_checked_by_its_main_unit_not_its_auxiliary_stock_unit(
        seeded, order, tmp_path):
    """U8 销售出库单: 数量 is in the 主计量单位; 库存单位 is the auxiliary unit of 件数."""
    path = write_table(tmp_path / "销售出库单.csv",
                       ["出库单号", "订单号", "行号", "主计量单位", "数量", "库存单位", "件数", "出库日期"],
                       [["CK-1", order, 2, "盒", 60, "箱", 3, "2026-10-12"]])
    assert import_movements(seeded.db_url, path, "test", returns=False).created == 1
    assert stored(seeded.db_url) == [("CK-1", 2, 60)]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_file_without_a_unit_takes_the_orders_unit(seeded, order, tmp_path, suffix):
    path = write_table(tmp_path / f"发货{suffix}", ["发货单号", "意向单号", "行号", "数量", "发货日期"],
                       [["FH-1", order, 2, 60, "2026-10-12"]])
    assert import_movements(seeded.db_url, path, "test", returns=False).created == 1
    assert stored(seeded.db_url) == [("FH-1", 2, 60)]


# --- another unit: refused -------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_delivery_in_another_unit_is_refused_row_by_row_and_nothing_stored(
        seeded, order, tmp_path, suffix):
    """60 个 of electrodes on a line ordered in 盒 (100): within the order, so the ceiling check
    would let it through as 60 boxes. Refused, and so is a monitor line in 件; the good row of
    the same file is not stored either."""
    path = write_table(tmp_path / f"出库{suffix}",
                       ["出库单号", "订单号", "行号", "物料编码", "计量单位", "实发数量", "出库日期"],
                       [["XSCK-1", order, 1, "MON-M8", "台", 3, "2026-10-12"],
                        ["XSCK-2", order, 2, "CONS-ECG10", "个", 60, "2026-10-13"],
                        ["XSCK-3", order, 1, "MON-M8", "件", 1, "2026-10-14"]])
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=False)
    first = 3 if suffix == ".csv" else 4  # the workbook has a title row
    assert [str(p) for p in refused.value.problems] == [
        f"{path.name} 第{first}行「单位」：" + mismatch(
            "发货单 XSCK-2", order, 2, "CONS-ECG10", "的单位是“个”", 60, "个", "盒"),
        f"{path.name} 第{first + 1}行「单位」：" + mismatch(
            "发货单 XSCK-3", order, 1, "MON-M8", "的单位是“件”", 1, "件", "台"),
    ]
    assert stored(seeded.db_url) == []


def test_a_return_in_another_unit_is_refused_with_its_document(seeded, order, tmp_path):
    db = seeded.db_url
    deliver(db, tmp_path, order)
    path = write_table(tmp_path / "退货单.xlsx",
                       ["退货单号", "意向单号", "行号", "库存单位", "实退数量", "退货日期", "类型"],
                       [["TH-1", order, 1, "台", 1, dt.datetime(2026, 10, 20), "换货"],
                        ["TH-1", order, 2, "片", 10, dt.datetime(2026, 10, 20), "退货"]])
    with pytest.raises(ImportRefused) as refused:
        import_movements(db, path, "test", returns=True)
    assert str(refused.value) == "退货单.xlsx 第4行「库存单位」：" + mismatch(
        "退货单 TH-1", order, 2, "CONS-ECG10", "的单位是“片”", 10, "片", "盒")
    assert stored(db, "sales_return") == []


def test_a_document_re_sent_in_another_unit_keeps_what_was_stored(seeded, order, tmp_path):
    db = seeded.db_url
    header = ["发货单号", "意向单号", "行号", "单位", "实发数量", "发货日期"]
    import_movements(db, write_table(tmp_path / "a.csv", header,
                                     [["FH-1", order, 2, "盒", 10, "2026-10-12"]]),
                     "test", returns=False)
    with pytest.raises(ImportRefused, match="单位是“个”，订单按“盒”订购"):
        import_movements(db, write_table(tmp_path / "b.csv", header,
                                         [["FH-1", order, 2, "个", 120, "2026-10-12"]]),
                         "test", returns=False)
    assert stored(db) == [("FH-1", 2, 10)]


# --- a unit in the quantity's header ------------------------------------------------------

@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_counting_unit_in_the_quantity_header_is_checked_like_a_unit_column(
        seeded, order, tmp_path, suffix):
    """`实发数量(个)`: every row's quantity is in 个; the monitors (台) and electrodes (盒)
    are each refused; `实发数量（盒）` on the electrodes' line is imported."""
    rows = [["XSCK-1", order, 1, 5, 3, "2026-10-12"],
            ["XSCK-1", order, 2, 100, 60, "2026-10-12"]]
    header = ["出库单号", "订单号", "行号", "应发数量", "实发数量(个)", "出库日期"]
    path = write_table(tmp_path / f"出库{suffix}", header, rows)
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=False)
    first = 2 if suffix == ".csv" else 3
    said = "按表头「实发数量(个)」以“个”计"
    assert [str(p) for p in refused.value.problems] == [
        f"{path.name} 第{first}行「实发数量」：" + mismatch(
            "发货单 XSCK-1", order, 1, "MON-M8", said, 3, "个", "台"),
        f"{path.name} 第{first + 1}行「实发数量」：" + mismatch(
            "发货单 XSCK-1", order, 2, "CONS-ECG10", said, 60, "个", "盒"),
    ]
    assert stored(seeded.db_url) == []
    header[4] = "实发数量（盒）"
    path = write_table(tmp_path / f"出库{suffix}", header, rows[1:])
    assert import_movements(seeded.db_url, path, "test", returns=False).created == 1
    assert stored(seeded.db_url) == [("XSCK-1", 2, 60)]


def test_a_unit_in_the_header_and_another_in_the_unit_column_are_both_named(
        seeded, order, tmp_path):
    """数量(PCS) with 单位 盒: the header says pieces, the column boxes: the header is refused,
    the column (the order's unit) is not."""
    path = write_table(tmp_path / "退货.csv",
                       ["退货单号", "意向单号", "行号", "单位", "数量(pcs)", "退货日期"],
                       [["TH-1", order, 2, "盒", 10, "2026-10-20"]])
    deliver(seeded.db_url, tmp_path, order)
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=True)
    assert str(refused.value) == "退货.csv 第2行「数量」：" + mismatch(
        "退货单 TH-1", order, 2, "CONS-ECG10", "按表头「数量(pcs)」以“pcs”计", 10, "pcs", "盒")
    assert stored(seeded.db_url, "sales_return") == []


# --- the unit the order was taken in, not the catalogue's current one ------------------------

def test_an_order_is_checked_against_the_unit_it_was_ordered_in_after_a_catalogue_change(
        seeded, order, tmp_path):
    """The catalogue moves electrodes from 盒 to 箱 (of 10 盒) after the order: an export of
    that order in 盒 is still right and imported; for an order taken after the change, 盒 is
    not its unit (60 盒 are not 60 箱): refused, and 箱 imported."""
    with session_scope(seeded.db_url) as s:
        apply_changes(s, s.get(Product, "CONS-ECG10"), "test", unit="箱")
    path = write_table(tmp_path / "出库.csv",
                       ["出库单号", "订单号", "行号", "物料编码", "单位", "实发数量", "出库日期"],
                       [["XSCK-1", order, 2, "CONS-ECG10", "盒", 60, "2026-10-12"]])
    assert import_movements(seeded.db_url, path, "test", returns=False).created == 1
    assert stored(seeded.db_url) == [("XSCK-1", 2, 60)]

    newer = signed_order(seeded.db_url, customer_id(seeded.db_url, KANGDA), dt.date(2026, 10, 11),
                         [("CONS-ECG10", 10)], delivered_on=False)
    path = write_table(tmp_path / "出库2.csv",
                       ["出库单号", "订单号", "行号", "物料编码", "单位", "实发数量", "出库日期"],
                       [["XSCK-2", newer, 1, "CONS-ECG10", "盒", 6, "2026-10-12"]])
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=False)
    assert str(refused.value) == "出库2.csv 第2行「单位」：" + mismatch(
        "发货单 XSCK-2", newer, 1, "CONS-ECG10", "的单位是“盒”", 6, "盒", "箱")
    assert stored(seeded.db_url) == [("XSCK-1", 2, 60)]
    path = write_table(tmp_path / "出库3.csv",
                       ["出库单号", "订单号", "行号", "物料编码", "单位", "实发数量", "出库日期"],
                       [["XSCK-2", newer, 1, "CONS-ECG10", "箱", 6, "2026-10-12"]])
    assert import_movements(seeded.db_url, path, "test", returns=False).created == 1
    assert stored(seeded.db_url) == [("XSCK-1", 2, 60), ("XSCK-2", 1, 6)]


# --- the CLI ---------------------------------------------------------------------------------

def test_the_cli_refuses_a_delivery_in_another_unit_and_exits_2(hub, cli, order, tmp_path):
    path = write_table(tmp_path / "发货.csv",
                       ["发货单号", "意向单号", "行号", "物料编码", "单位", "实发数量", "发货日期"],
                       [["FH-1", order, 2, "CONS-ECG10", "个", 60, "2026-10-12"]])
    code, out, err = cli("deliveries", "import", path)
    assert code == 2
    assert err.strip().endswith(
        "导入未执行（未写入任何数据），共 1 处问题：\n  - 发货.csv 第2行「单位」：" + mismatch(
            "发货单 FH-1", order, 2, "CONS-ECG10", "的单位是“个”", 60, "个", "盒")), err
    assert stored(hub.db_url) == []


# --- units compared --------------------------------------------------------------------------

@pytest.mark.parametrize("a, b, same", [
    ("台", "台", True), ("台 ", "台", True), ("\N{IDEOGRAPHIC SPACE}盒", "盒", True),
    ("pcs", "PCS", True), ("ＰＣＳ", "PCS", True),
    ("个", "PCS", False), ("只", "个", False), ("箱", "盒", False), ("", "台", False),
])
def test_units_are_alike_only_when_spelled_alike(a, b, same):
    assert same_unit(a, b) is same
