"""Deliveries, returns and receivables/payments imports refuse values they cannot keep or that
cannot be true, row by row with the column named, and write nothing:

- a delivery, a return, an invoice or a payment dated after today (a mistyped year, 2207 for
  2027, or 9999-12-31): the claw-back or the rebate would never happen;
- a quantity beyond an INTEGER column (3,000,000,000), an amount of a trillion yuan or more
  (Numeric(14, 2)), a NUL character in a text cell: PostgreSQL ended such an import in a raw
  SQL error, SQLite stored them;
- a workbook with a hidden worksheet holding data (旧数据 the clerk never saw).

Run on SQLite and on PostgreSQL (SALESOPS_TEST_DATABASE_URL): the refusals are the same."""
# ruff: noqa: F811 (the fixtures `order` and `cli` are imported, and named by the tests)
from __future__ import annotations

import datetime as dt

import openpyxl
import pytest
from sqlmodel import func, select

from flows.sales_facts import ImportRefused, import_movements, import_receivables_file
from models import Payment, ReceivableInvoice
from models.db import session_scope
from tests.flows.test_audit5_receivables import KANGDA, write
from tests.flows.test_movement_shipped_quantities import (  # noqa: F401 (fixtures)
    cli, csv_file, order, stored,
)
from tests.rebate_support import clock_from

D = dt.date
TODAY = D(2026, 11, 20)
DELIVERIES = "发货单号,意向单号,行号,实发数量,发货日期\n"
RETURNS = "退货单号,意向单号,行号,实退数量,退货日期\n"
INVOICES = "发票号,客户名称,开票日期,到期日,价税合计\n"
PAYMENTS = "回款单号,发票号,回款日期,金额\n"
NUL = "含有空字符（NUL，\\x00），通常是导出或复制出错带入的：请删除该字符（或从原系统重新导出）后再导入"
HIDDEN = "工作表“旧数据”已隐藏：请删除或取消隐藏后再导入"


@pytest.fixture(autouse=True)
def _today():
    clock_from(TODAY)


def delivered(db_url: str, tmp_path, order_id: str) -> None:
    """5 monitors delivered (line 1), so that a return has something to come back from."""
    import_movements(db_url, csv_file(tmp_path / "d.csv", DELIVERIES
                                      + f"FH-0,{order_id},1,5,2026-10-12\n"), "t", returns=False)


def receivables(db_url: str) -> tuple[int, int]:
    with session_scope(db_url) as s:
        return (s.exec(select(func.count()).select_from(ReceivableInvoice)).one(),
                s.exec(select(func.count()).select_from(Payment)).one())


def refused(call) -> list[str]:
    with pytest.raises(ImportRefused) as info:
        call()
    return [str(p) for p in info.value.problems]


# --- dated after today -------------------------------------------------------------------------

@pytest.mark.parametrize("day", ["2207-02-20", "9999-12-31", "2026-11-21"])
def test_a_delivery_dated_after_today_is_refused(seeded, order, tmp_path, day):
    db = seeded.db_url
    path = csv_file(tmp_path / "发货.csv", DELIVERIES + f"FH-1,{order},2,40,2026-10-12\n"
                                        f"FH-2,{order},1,3,{day}\n")
    assert refused(lambda: import_movements(db, path, "t", returns=False)) == [
        f"发货.csv 第3行「发货日期」：发货日期 {day} 晚于今天（{TODAY}）：尚未发出的货物不能登记为"
        "发货，请核对年份后再导入"]
    assert stored(db) == []
    # today itself is fine
    path = csv_file(tmp_path / "发货.csv", DELIVERIES + f"FH-2,{order},1,3,{TODAY}\n")
    assert import_movements(db, path, "t", returns=False).created == 1


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_return_dated_after_today_is_refused(seeded, order, tmp_path, suffix):
    """Checked before signing too: a return before the order was signed stays refused."""
    db = seeded.db_url
    delivered(db, tmp_path, order)
    rows = [["TH-1", order, 1, 2, "2207-02-20"], ["TH-2", order, 1, 1, "2026-11-02"]]
    if suffix == ".xlsx":
        wb = openpyxl.Workbook()
        for row in [RETURNS.strip().split(","), *rows]:
            wb.active.append(row)
        wb.save(path := tmp_path / "退货.xlsx")
    else:
        path = csv_file(tmp_path / "退货.csv", RETURNS + "".join(
            ",".join(str(c) for c in row) + "\n" for row in rows))
    assert refused(lambda: import_movements(db, path, "t", returns=True)) == [
        f"{path.name} 第2行「退货日期」：退货日期 2207-02-20 晚于今天（{TODAY}）：尚未退回的货物不能"
        "登记为退货，请核对年份后再导入"]
    assert stored(db, "sales_return") == []


def test_the_cli_refuses_each_kind_dated_after_today(seeded, cli, order, tmp_path):
    """One rule, said alike for the four dates: 发货日期, 退货日期, 开票日期, 回款日期."""
    delivered(seeded.db_url, tmp_path, order)
    late = "9999-12-31"
    for command, name, text, said in (
        ("deliveries", "发货.csv", DELIVERIES + f"FH-1,{order},1,1,{late}\n", "发货日期"),
        ("returns", "退货.csv", RETURNS + f"TH-1,{order},1,1,{late}\n", "退货日期"),
        ("receivables", "应收.csv", INVOICES + f"FP-1,{KANGDA},{late},{late},100.00\n", "开票日期"),
    ):
        code, out, err = cli(command, "import", write(tmp_path / name, text))
        assert code != 0 and out == ""
        assert f"  - {name} 第2行「{said}」：{said} {late} 晚于今天（{TODAY}）：" in err
        assert "导入未执行（未写入任何数据），共 1 处问题" in err
    assert stored(seeded.db_url) == [("FH-0", 1, 5)]
    assert stored(seeded.db_url, "sales_return") == []
    assert receivables(seeded.db_url) == (0, 0)


# --- what the columns cannot keep ----------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_quantity_beyond_an_integer_column_is_refused(seeded, order, tmp_path, suffix):
    db = seeded.db_url
    if suffix == ".xlsx":
        wb = openpyxl.Workbook()
        for row in [DELIVERIES.strip().split(","), ["FH-1", order, 1, 3000000000, "2026-10-12"]]:
            wb.active.append(row)
        wb.save(path := tmp_path / "发货.xlsx")
    else:
        path = csv_file(tmp_path / "发货.csv", DELIVERIES + f"FH-1,{order},1,\"3,000,000,000\","
                                                            "2026-10-12\n")
    shown = "'3000000000'" if suffix == ".xlsx" else "'3,000,000,000'"
    assert refused(lambda: import_movements(db, path, "t", returns=False)) == [
        f"{path.name} 第2行「实发数量」：不能大于 2,147,483,647：{shown}"]
    assert stored(db) == []


def test_a_returned_quantity_or_line_beyond_an_integer_column_is_refused(seeded, order, tmp_path):
    db = seeded.db_url
    delivered(db, tmp_path, order)
    path = csv_file(tmp_path / "退货.csv", "退货单号,意向单号,行号,数量,退货日期\n"
                                        f"TH-1,{order},1,3000000000,2026-11-02\n"
                                        f"TH-2,{order},99999999999,1,2026-11-02\n")
    assert refused(lambda: import_movements(db, path, "t", returns=True)) == [
        "退货.csv 第2行「数量」：不能大于 2,147,483,647：'3000000000'",
        "退货.csv 第3行「行号」：不能大于 2,147,483,647：'99999999999'"]
    assert stored(db, "sales_return") == []


def test_an_amount_of_a_trillion_yuan_is_refused(seeded, tmp_path):
    db = seeded.db_url
    invoices = write(tmp_path / "应收.csv", INVOICES
                     + f"FP-1,{KANGDA},2026-11-01,2026-12-01,100.00\n"
                     + f"FP-2,{KANGDA},2026-11-01,2026-12-01,\"1,000,000,000,000.00\"\n")
    assert refused(lambda: import_receivables_file(db, invoices, "t")) == [
        "应收.csv 第3行「价税合计」：金额超出可登记的范围：'1,000,000,000,000.00'"
        "（绝对值须小于 1,000,000,000,000.00 元）"]
    # 金额 + 税额 (no 价税合计): each within, the sum not
    vat = write(tmp_path / "增值税.csv", "发票号,客户名称,开票日期,到期日,金额,税额\n"
                f"FP-3,{KANGDA},2026-11-01,2026-12-01,999999999999.00,130000000000.00\n")
    assert refused(lambda: import_receivables_file(db, vat, "t")) == [
        "增值税.csv 第2行「金额」：金额与税额合计（价税合计）金额超出可登记的范围：1129999999999.00"
        "（绝对值须小于 1,000,000,000,000.00 元）"]
    assert import_receivables_file(db, write(tmp_path / "应收2.csv", INVOICES + (
        f"FP-1,{KANGDA},2026-11-01,2026-12-01,100.00\n")), "t").created == 1
    payments = write(tmp_path / "回款.csv", PAYMENTS + "SK-1,FP-1,2026-11-10,-1000000000000\n")
    assert refused(lambda: import_receivables_file(db, payments, "t")) == [
        "回款.csv 第2行「金额」：金额超出可登记的范围：'-1000000000000'"
        "（绝对值须小于 1,000,000,000,000.00 元）"]
    assert receivables(db) == (1, 0)


def test_a_nul_character_in_a_document_number_is_refused(seeded, order, tmp_path):
    db = seeded.db_url
    path = csv_file(tmp_path / "发货.csv", DELIVERIES + f"FH-\x001,{order},1,3,2026-10-12\n")
    assert refused(lambda: import_movements(db, path, "t", returns=False)) == [
        f"发货.csv 第2行「发货单号」：{NUL}"]
    assert stored(db) == []
    delivered(db, tmp_path, order)
    path = csv_file(tmp_path / "退货.csv", "退货单号,意向单号,行号,实退数量,退货日期,原因\n"
                                        f"TH-1,{order},1,1,2026-11-02,包装\x00破损\n")
    assert refused(lambda: import_movements(db, path, "t", returns=True)) == [
        f"退货.csv 第2行「原因」：{NUL}"]
    assert stored(db, "sales_return") == []


def test_a_nul_character_in_an_invoice_number_or_customer_name_is_refused(seeded, tmp_path):
    db = seeded.db_url
    invoices = write(tmp_path / "应收.csv", INVOICES
                     + f"FP-\x001,{KANGDA},2026-11-01,2026-12-01,100.00\n"
                     + f"FP-2,{KANGDA}\x00,2026-11-01,2026-12-01,100.00\n")
    assert refused(lambda: import_receivables_file(db, invoices, "t")) == [
        f"应收.csv 第2行「发票号」：{NUL}", f"应收.csv 第3行「客户名称」：{NUL}"]
    payments = write(tmp_path / "回款.csv", PAYMENTS + "SK-\x001,FP-\x002,2026-11-10,100.00\n")
    assert refused(lambda: import_receivables_file(db, payments, "t")) == [
        f"回款.csv 第2行「回款单号」：{NUL}", f"回款.csv 第2行「发票号」：{NUL}"]
    assert receivables(db) == (0, 0)


# --- hidden worksheets -----------------------------------------------------------------------------

def workbook_with_hidden_sheet(path, header: str, visible: list, hidden: list, state="hidden"):
    """A workbook of a visible sheet 本月 and a hidden sheet 旧数据 (the same header)."""
    wb = openpyxl.Workbook()
    wb.active.title = "本月"
    old = wb.create_sheet("旧数据")
    for ws, rows in ((wb.active, visible), (old, hidden)):
        for row in [header.strip().split(","), *rows]:
            ws.append(row)
    old.sheet_state = state
    wb.save(path)
    return path


@pytest.mark.parametrize("state", ["hidden", "veryHidden"])
def test_deliveries_and_returns_with_a_hidden_worksheet_are_refused(seeded, order, tmp_path,
                                                                    state):
    db = seeded.db_url
    path = workbook_with_hidden_sheet(tmp_path / "发货.xlsx", DELIVERIES,
                                      [["FH-1", order, 1, 3, "2026-10-12"]],
                                      [["FH-9", order, 2, 60, "2026-09-12"]], state)
    assert refused(lambda: import_movements(db, path, "t", returns=False)) == [
        f"发货.xlsx：{HIDDEN}"]
    assert stored(db) == []
    delivered(db, tmp_path, order)
    path = workbook_with_hidden_sheet(tmp_path / "退货.xlsx", RETURNS,
                                      [["TH-1", order, 1, 1, "2026-11-02"]],
                                      [["TH-9", order, 1, 4, "2026-11-01"]], state)
    assert refused(lambda: import_movements(db, path, "t", returns=True)) == [
        f"退货.xlsx：{HIDDEN}"]
    assert stored(db, "sales_return") == []


def test_receivables_with_a_hidden_worksheet_are_refused_hidden_rows_are_read(seeded, cli,
                                                                              tmp_path):
    path = workbook_with_hidden_sheet(tmp_path / "应收.xlsx", INVOICES,
                                      [["FP-1", KANGDA, "2026-11-01", "2026-12-01", 100]],
                                      [["FP-0", KANGDA, "2025-11-01", "2025-12-01", 900]])
    code, out, err = cli("receivables", "import", path)
    assert code != 0 and out == ""
    assert f"  - 应收.xlsx：{HIDDEN}" in err
    assert receivables(seeded.db_url) == (0, 0)
    # a filter left on hides rows, it does not take them out of the file: they are imported
    wb = openpyxl.load_workbook(path)
    del wb["旧数据"]
    wb["本月"].append(["FP-2", KANGDA, "2026-11-02", "2026-12-02", 200])
    wb["本月"].row_dimensions[3].hidden = True
    wb.save(path)
    assert import_receivables_file(seeded.db_url, path, "t").created == 2
    assert receivables(seeded.db_url) == (2, 0)
