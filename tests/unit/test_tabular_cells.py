"""The table reader, the audit's cases: every bad cell of every row in one pass, and numbers
Excel stored for identifiers (a 20-digit 数电发票号 read back as 2.432200000001235e+19)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from openpyxl import Workbook

from connectors.tabular import (
    EXACT_FLOAT, CellError, Column, ExcelNumber, Row, TableError, _cell_text, convert_rows,
    parse_date, parse_int, parse_money, parse_text, read_table,
)

COLUMNS = (Column("发票号"), Column("开票日期"), Column("到期日"), Column("金额"))


def _invoice(row):
    issued = row.get("开票日期", parse_date)
    due = row.get("到期日", parse_date)
    if due < issued:
        row.fail("到期日", f"到期日 {due} 早于开票日期 {issued}")
    return row.get("发票号", parse_text), issued, due, row.get("金额", parse_money)


def table(tmp_path, body: str):
    path = tmp_path / "应收.csv"
    path.write_text("发票号,开票日期,到期日,金额\n" + body, encoding="utf-8")
    return read_table(path, COLUMNS)


def test_every_bad_cell_of_every_row_is_reported_at_once(tmp_path):
    rows = table(tmp_path, "FP-1,2026-08-01,2026-07-01,12.345\n"   # cross-field + amount
                           ",31/08/2026,2026-09-30,1e5\n"          # three bad cells
                           "FP-3,2026-08-01,2026-09-01,1.00\n").rows
    with pytest.raises(TableError) as info:
        convert_rows(rows, _invoice)
    assert [(p.row, p.column) for p in info.value.problems] == [
        (2, "到期日"), (2, "金额"), (3, "开票日期"), (3, "发票号"), (3, "金额")]
    assert "第2行「到期日」：到期日 2026-07-01 早于开票日期 2026-08-01" in str(info.value)


def test_a_converter_tripping_over_a_bad_value_only_ends_that_row(tmp_path):
    def convert(row):
        due = row.get("到期日", parse_date)
        return due.year, row.get("金额", parse_money)  # .year of a refused date: ends the row

    rows = table(tmp_path, "FP-1,2026-08-01,坏,坏\nFP-2,2026-08-01,2026-09-01,1.00\n").rows
    with pytest.raises(TableError) as info:
        convert_rows(rows, convert)
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "到期日")]

    def broken(row):
        raise KeyError("a bug, not a bad cell")

    with pytest.raises(KeyError):  # an error of a good row is not hidden
        convert_rows(rows, broken)


def test_a_problem_named_twice_is_listed_once_and_the_cap_counts_cells(tmp_path):
    def twice(row):
        row.get("金额", parse_money)
        return row.get("金额", parse_money)

    rows = table(tmp_path, "".join(f"FP-{n},2026-08-01,坏,坏\n" for n in range(4))).rows
    with pytest.raises(TableError) as info:
        convert_rows(rows, twice)
    assert [(p.row, p.column) for p in info.value.problems] == [(n, "金额") for n in (2, 3, 4, 5)]
    with pytest.raises(TableError) as info:
        convert_rows(rows, _invoice, max_problems=5)
    assert len(info.value.problems) == 5 and info.value.more == 3  # 4 rows × 2 bad cells


def test_outside_convert_rows_a_bad_cell_still_raises():
    row = Row("a.csv", 2, {"金额": "坏"})
    with pytest.raises(CellError) as info:
        row.get("金额", parse_money)
    assert info.value.column == "金额"
    with pytest.raises(CellError):
        row.fail("金额", "不对")


def test_numbers_excel_stored_keep_their_digits_or_are_marked():
    assert _cell_text(4419876.0) == "4419876"
    assert _cell_text(float(EXACT_FLOAT - 1)) == str(EXACT_FLOAT - 1)
    for value in (2.432200000001235e19, float(EXACT_FLOAT), 1e15 + 0.5, 1.1):
        text = _cell_text(value)
        assert isinstance(text, ExcelNumber) and text == repr(value)
    assert _cell_text(2.432200000001235e19).lost_digits
    assert not _cell_text(12345.6).lost_digits


def test_a_text_column_refuses_a_number_that_lost_digits():
    for value in (2.432200000001235e19, 1.1):
        with pytest.raises(CellError) as info:
            parse_text(_cell_text(value))
        assert "设为“文本”格式" in info.value.message and repr(value) in info.value.message
    assert type(parse_text(_cell_text(4419876.0))) is str


def test_number_columns_take_excel_numbers_unless_digits_were_lost():
    assert parse_money(_cell_text(12345.6)) == Decimal("12345.60")
    assert parse_int(_cell_text(12.0)) == 12
    for parse in (parse_money, parse_int):
        with pytest.raises(CellError, match="丢失位数"):
            parse(_cell_text(2.0 ** 60))


def test_an_xlsx_invoice_number_stored_as_a_number_is_named_by_row_and_column(tmp_path):
    wb = Workbook()
    wb.active.append(["发票号", "开票日期", "到期日", "金额"])
    wb.active.append([24322000000012345678.0, dt.datetime(2026, 10, 1),
                      dt.datetime(2026, 11, 1), 100.5])
    wb.active.append([4419876.0, dt.datetime(2026, 10, 1), dt.datetime(2026, 11, 1), 100])
    wb.save(tmp_path / "应收.xlsx")
    rows = read_table(tmp_path / "应收.xlsx", COLUMNS).rows
    with pytest.raises(TableError) as info:
        convert_rows(rows, _invoice)
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "发票号")]
    assert str(info.value).startswith("应收.xlsx 第2行「发票号」：该单元格在 Excel 中存为数字"
                                      "（读到 2.432200000001235e+19）")
    assert convert_rows(rows[1:], _invoice)[0][0] == "4419876"
