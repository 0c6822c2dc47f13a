"""Audit round 4 (finance): amounts Excel computed with a formula carry binary float noise in
the file (`<v>113.11000000000001</v>` for =100.1+13.01); Excel shows, and finance means, 113.11."""
from __future__ import annotations

import datetime as dt
import zipfile
from decimal import Decimal

import pytest

from connectors.finance import read_receivables_file
from connectors.tabular import CellError, _cell_text, parse_money, parse_text


@pytest.mark.parametrize("value, shown", [
    (113.11000000000001, "113.11"),     # 价税合计 = 金额 + 税额
    (0.1 + 0.2, "0.3"),
    (1130.0 * 1.13, "1276.9"),          # 1276.8999999999999
    (12345.6, "12345.6"),
    (-113.11000000000001, "-113.11"),   # a credit note's amount
])
def test_a_formula_amount_reads_as_the_digits_excel_shows(value, shown):
    text = _cell_text(value)
    assert text == shown
    assert parse_money(text) == Decimal(shown).quantize(Decimal("0.01"))


def test_real_sub_fen_amounts_and_lost_identifiers_are_still_refused():
    with pytest.raises(CellError, match="精确到分"):
        parse_money(_cell_text(12.345))
    with pytest.raises(CellError, match="精确到分"):
        parse_money(_cell_text(100 / 3))
    with pytest.raises(CellError, match="文本"):
        parse_text(_cell_text(2.432200000001235e19))


def test_an_export_with_a_formula_total_is_imported(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["发票号", "客户名称", "开票日期", "到期日", "价税合计"])
    wb.active.append(["FP-1", "江苏康达医疗设备有限公司", dt.date(2026, 10, 1),
                      dt.date(2026, 10, 31), 113.25])
    plain = tmp_path / "plain.xlsx"
    wb.save(plain)
    # what Excel itself writes for the cached value of =100.1+13.01
    with zipfile.ZipFile(plain) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet] = parts[sheet].replace(b"<v>113.25</v>", b"<v>113.11000000000001</v>")
    path = tmp_path / "20261101-应收.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    invoices, _ = read_receivables_file(path)
    assert [i.amount for i in invoices] == [Decimal("113.11")]


@pytest.mark.parametrize("text", [
    "2026/10/31 0:00",            # Excel (zh-CN) saving a date-time cell as CSV
    "2026/10/31 0:00:00",
    "2026年10月31日 0:00",
    "2026-10-31 00:00",
])
def test_a_date_with_excels_midnight_reads_as_the_date(text):
    from connectors.tabular import parse_date

    assert parse_date(text) == dt.date(2026, 10, 31)


def test_a_date_with_a_time_of_day_is_still_refused():
    from connectors.tabular import parse_date

    for text in ("2026/10/31 8:30", "2026-10-31 00:00:01"):
        with pytest.raises(CellError, match="不是有效日期"):
            parse_date(text)


@pytest.mark.parametrize("text, value", [
    ("１２３４．５０", "1234.50"),        # typed with a full-width input method
    ("１，２３４．５", "1234.50"),
    ("－１２３４．５０", "-1234.50"),
    ("1,234.50元", "1234.50"),
    ("￥1,234.50 元", "1234.50"),
])
def test_amounts_typed_in_full_width_or_with_yuan_are_read(text, value):
    assert parse_money(text) == Decimal(value)


def _with_builtin_date_format(path, number_format_id: int):
    """The workbook as Chinese Excel saves a cell formatted 2026年10月31日: the date serial
    number with the locale's built-in format id (31), no format code in styles.xml."""
    import re

    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    styles = parts["xl/styles.xml"].decode()
    styles = re.sub(r"<numFmts.*?</numFmts>", "", styles, flags=re.S)
    parts["xl/styles.xml"] = styles.replace('numFmtId="164"',
                                            f'numFmtId="{number_format_id}"').encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)


@pytest.mark.parametrize("format_id", [31, 57, 58, 14])
def test_dates_in_chinese_excels_built_in_formats_are_dates(tmp_path, format_id):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["回款单号", "发票号", "回款日期", "金额"])
    ws.append(["SK-1", "FP-1", 46326, "100.00"])  # 2026-10-31 as Excel counts days
    ws["C2"].number_format = 'yyyy"年"m"月"d"日"'
    path = tmp_path / "回款.xlsx"
    wb.save(path)
    _with_builtin_date_format(path, format_id)
    _, payments = read_receivables_file(path)
    assert [p.paid_on for p in payments] == [dt.date(2026, 10, 31)]


@pytest.mark.parametrize("label", ["合计：", "合计:", "总计：", " 小 计 "])
def test_a_totals_row_with_a_colon_is_skipped(tmp_path, label):
    path = tmp_path / "回款.csv"
    path.write_text("回款单号,发票号,回款日期,金额\nSK-1,FP-1,2026-10-20,100.00\n"
                    f"{label},,,100.00\n", encoding="utf-8")
    _, payments = read_receivables_file(path)
    assert [p.payment_no for p in payments] == ["SK-1"]


@pytest.mark.parametrize("text, value", [
    ("(1,234.50)", "-1234.50"),        # Excel's #,##0.00_);(#,##0.00) saved as CSV
    ("(¥1,234.50)", "-1234.50"),
    ("¥(1,234.50)", "-1234.50"),
    ("（１，２３４．５０）", "-1234.50"),  # full-width brackets
])
def test_negative_amounts_in_brackets_are_credit_notes(text, value):
    assert parse_money(text) == Decimal(value)
    with pytest.raises(CellError, match="大于零"):
        parse_money(text, positive=True)


@pytest.mark.parametrize("text", ["-(5.00)", "(5.00", "((5.00))", "()"])
def test_malformed_brackets_are_refused(text):
    with pytest.raises(CellError, match="不是有效金额"):
        parse_money(text)


def test_an_invoice_on_two_worksheets_of_one_export_is_refused(tmp_path):
    from openpyxl import Workbook

    from connectors.base import PermanentError

    wb = Workbook()
    october = wb.active
    october.title = "10月"
    november = wb.create_sheet("11月")
    for ws, amount in ((october, "100.00"), (november, "120.00")):
        ws.append(["发票号", "客户名称", "开票日期", "到期日", "金额"])
        ws.append(["FP-1", "江苏康达医疗设备有限公司", "2026-10-01", "2026-10-31", amount])
    path = tmp_path / "应收.xlsx"
    wb.save(path)
    with pytest.raises(PermanentError) as refused:
        read_receivables_file(path)
    assert "应收.xlsx[11月] 第2行「发票号」：与 应收.xlsx[10月] 第2行重复" in str(refused.value)
