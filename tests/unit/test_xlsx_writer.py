"""connectors/xlsx, the streaming workbook writer: what it writes reads back in openpyxl as
openpyxl's own write-only workbook of the same rows did (values, types, number formats,
heading fonts and fills, widths, frozen panes), and is a well-formed OOXML package."""
from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import xml.etree.ElementTree as ET
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook as OpenpyxlWorkbook
from openpyxl import load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill

from connectors import xlsx
from connectors.finance import (
    KINGDEE_SHEET,
    VoucherBatch,
    build_voucher_workbook,
)
from tests.connectors.test_finance_vouchers import batch

HEADING = xlsx.Style(bold=True, fill="DDDDDD")
TEXT, DATE, MONEY = xlsx.Style("@"), xlsx.Style("yyyy-mm-dd"), xlsx.Style("#,##0.00")
COLUMNS = (xlsx.Column(12, TEXT), xlsx.Column(30), xlsx.Column(12, DATE),
           xlsx.Column(14, MONEY), xlsx.Column(None), xlsx.Column(8.5, xlsx.Style("0%")))
TITLE = "凭证#单据头(FBillHead)"
ROWS = [
    ["编码", "名称", "日期", "金额", "数量", "比例"],
    ["001", "江苏康达医疗设备有限公司", dt.date(2026, 10, 31), Decimal("12651.50"), 3,
     Decimal("0.05")],
    ["1122.0345", "A & B <有限> \"公司\" 'x'", dt.date(1900, 1, 1), Decimal("1183.00"), 2.5,
     None],
    [None, "  前后空格 ", None, Decimal("0.07"), -7, 0.125],
    ["=HYPERLINK(\"http://evil.example\",\"x\")", "=1+2", dt.date(1900, 3, 1),
     Decimal("99999999999.99"), 10**12, Decimal("-800.05")],
    [None, None, None, None, None, None],
    ["尾", "第一行\r\n第二行\t制表", dt.date(9999, 12, 31), Decimal(0), 0, True],
]


def _saved(workbook) -> bytes:
    buf = io.BytesIO()
    workbook.save(buf)
    return buf.getvalue()


def _ours(rows=ROWS, columns=COLUMNS, title=TITLE, freeze="A2", heading_rows=1) -> bytes:
    styled = [[xlsx.Styled(v, HEADING) for v in row] for row in rows[:heading_rows]]
    return _saved(xlsx.Workbook([xlsx.Sheet(title, styled + [list(r) for r in
                                                              rows[heading_rows:]],
                                            columns, freeze)]))


def _openpyxl(rows=ROWS, columns=COLUMNS, title=TITLE, freeze="A2", heading_rows=1) -> bytes:
    """The same sheet as openpyxl's write-only mode writes it (the voucher workbook's former
    writer): a cell object per styled value."""
    wb = OpenpyxlWorkbook(write_only=True)
    ws = wb.create_sheet(title)
    for i, column in enumerate(columns, start=1):
        if column.width is not None:
            ws.column_dimensions[xlsx.column_letter(i)].width = column.width
    ws.freeze_panes = freeze
    bold, grey = Font(bold=True), PatternFill("solid", fgColor="DDDDDD")
    for n, row in enumerate(rows):
        out = []
        for i, value in enumerate(row):
            style = HEADING if n < heading_rows else columns[i].style if i < len(columns) else None
            if style is None:
                out.append(value)
                continue
            cell = WriteOnlyCell(ws, value=value)
            if style.bold:
                cell.font, cell.fill = bold, grey
            if style.number_format != "General":
                cell.number_format = style.number_format
            if cell.data_type == "f":
                cell.data_type = "s"
            out.append(cell)
        ws.append(out)
    return _saved(wb)


def _read(data: bytes) -> list:
    """What finance sees of a workbook, as the settlement bench's dump records it."""
    wb = load_workbook(io.BytesIO(data))
    seen = []
    for ws in wb.worksheets:
        seen.append(("sheet", ws.title, ws.freeze_panes, ws.dimensions))
        seen += [("col", key, dim.width) for key, dim in sorted(ws.column_dimensions.items())]
        for row in ws.iter_rows():
            seen.append([(c.value, type(c.value).__name__, c.number_format,
                          bool(c.font and c.font.b),
                          str(c.fill.fgColor.rgb) if c.fill and c.fill.fill_type else "")
                         for c in row])
    return seen


def test_reads_back_as_openpyxl_wrote_the_same_rows():
    ours, theirs = _read(_ours()), _read(_openpyxl())
    assert ours == theirs
    assert ours[0] == ("sheet", TITLE, "A2", "A1:F7")


def test_values_types_formats_and_headings():
    ws = load_workbook(io.BytesIO(_ours()))[TITLE]
    heading = ws["A1"]
    assert heading.value == "编码" and heading.font.b and heading.fill.fgColor.rgb == "00DDDDDD"
    assert heading.fill.fill_type == "solid"
    assert ws["A2"].value == "001" and ws["A2"].number_format == "@"  # a code stays text
    assert ws["C2"].value == dt.datetime(2026, 10, 31) and ws["C2"].number_format == "yyyy-mm-dd"
    assert ws["C3"].value == dt.datetime(1900, 1, 1)  # Excel's serial 1, before its leap bug
    assert ws["C5"].value == dt.datetime(1900, 3, 1)
    assert ws["C7"].value == dt.datetime(9999, 12, 31)
    # money: exact to the fen, a whole amount an int as openpyxl wrote it
    assert ws["D2"].value == 12651.5 and ws["D2"].number_format == "#,##0.00"
    assert ws["D3"].value == 1183 and type(ws["D3"].value) is int
    assert ws["D4"].value == 0.07 and ws["D5"].value == 99999999999.99
    assert ws["F6"].number_format == "0%" and ws["F2"].value == 0.05
    assert ws["E3"].value == 2.5 and ws["E4"].value == -7 and ws["E5"].value == 10**12
    assert ws["F7"].value is True
    # blanks: a styled column keeps its format for what finance types in; others stay unwritten
    assert ws["A4"].value is None and ws["A4"].number_format == "@"
    assert ws["B6"].value is None and ws["B6"].number_format == "General"
    assert ws.column_dimensions["B"].width == 30 and ws.column_dimensions["F"].width == 8.5
    assert ws.freeze_panes == "A2"


def test_text_is_escaped_kept_whole_and_never_a_formula():
    data = _ours()
    ws = load_workbook(io.BytesIO(data))[TITLE]
    assert ws["B3"].value == "A & B <有限> \"公司\" 'x'"
    assert ws["B4"].value == "  前后空格 "  # leading and trailing spaces kept
    assert ws["B7"].value == "第一行\r\n第二行\t制表"  # CR too: a parser would read it as LF
    assert ws["A5"].value.startswith("=HYPERLINK(") and ws["B5"].value == "=1+2"
    assert ws["A5"].data_type == "s"
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet and b"<f " not in sheet
    # Excel trims a text's outer spaces unless told to keep them
    assert '<t xml:space="preserve">  前后空格 </t>'.encode() in sheet


def test_characters_xml_cannot_carry_are_dropped():
    rows = [["名称", "备注"],
            ["康达\x00医疗\x08设备\x1f公司", "\x0b\x0c"],
            ["lone \ud800 surrogate \uffff", "tab\tand\nnewline stay"]]
    data = _ours(rows, (xlsx.Column(20), xlsx.Column(20, TEXT)))
    ws = load_workbook(io.BytesIO(data))[TITLE]
    assert ws["A2"].value == "康达医疗设备公司"
    assert ws["B2"].value is None and ws["B2"].number_format == "@"  # nothing left: blank
    assert ws["A3"].value == "lone  surrogate "
    assert ws["B3"].value == "tab\tand\nnewline stay"
    _well_formed(data)


def test_long_text_is_cut_at_excels_limit():
    data = _ours([["x"], ["长" * 40000]], (xlsx.Column(10),))
    assert load_workbook(io.BytesIO(data))[TITLE]["A2"].value == "长" * 32767


def _well_formed(data: bytes) -> dict[str, ET.Element]:
    """Every part parses as XML; the content types and relationships name parts that exist."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        parts = {name: ET.fromstring(z.read(name)) for name in z.namelist()}
    ns_types = "{http://schemas.openxmlformats.org/package/2006/content-types}"
    ns_rels = "{http://schemas.openxmlformats.org/package/2006/relationships}"
    overrides = {o.get("PartName").lstrip("/")
                 for o in parts["[Content_Types].xml"].iter(f"{ns_types}Override")}
    assert overrides == set(parts) - {"[Content_Types].xml", "_rels/.rels",
                                      "xl/_rels/workbook.xml.rels"}
    for rels, base in (("_rels/.rels", ""), ("xl/_rels/workbook.xml.rels", "xl/")):
        for rel in parts[rels].iter(f"{ns_rels}Relationship"):
            assert base + rel.get("Target") in parts, rel.get("Target")
    return parts


def test_the_package_is_well_formed_with_its_sheet_name_escaped():
    title = "收入&支出<明细>\"表\""
    parts = _well_formed(_ours(title=title))
    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    (sheet,) = parts["xl/workbook.xml"].iter(f"{main}sheet")
    assert sheet.get("name") == title
    assert load_workbook(io.BytesIO(_ours(title=title))).sheetnames == [title]
    xfs = list(parts["xl/styles.xml"].find(f"{main}cellXfs"))
    assert int(parts["xl/styles.xml"].find(f"{main}cellXfs").get("count")) == len(xfs)
    pane = parts["xl/worksheets/sheet1.xml"].find(f"{main}sheetViews/{main}sheetView/{main}pane")
    assert (pane.get("ySplit"), pane.get("topLeftCell"), pane.get("state")) == (
        "1", "A2", "frozen")


@pytest.mark.parametrize("freeze", ["A3", "B1", "C4", "A1", None])
def test_frozen_panes_read_back(freeze):
    data = _ours(freeze=freeze)
    assert load_workbook(io.BytesIO(data))[TITLE].freeze_panes == (
        None if freeze in (None, "A1") else freeze)
    _well_formed(data)


def test_dates_and_times_in_a_general_column_get_a_date_format():
    rows = [["when"], [dt.date(2026, 9, 30)], [dt.datetime(2026, 9, 30, 18, 30, 15)]]
    ws = load_workbook(io.BytesIO(_ours(rows, (xlsx.Column(20),))))[TITLE]
    assert ws["A2"].value == dt.datetime(2026, 9, 30) and ws["A2"].number_format == "yyyy-mm-dd"
    assert ws["A3"].value == dt.datetime(2026, 9, 30, 18, 30, 15)
    assert ws["A3"].number_format == "yyyy-mm-dd h:mm:ss"
    assert _read(_ours(rows, (xlsx.Column(20),))) == _read(_openpyxl(rows, (xlsx.Column(20),)))


@pytest.mark.parametrize("title", ["", "a" * 32, "月/日", "a:b", "[x]", "'q", "x?", "*"])
def test_a_title_excel_refuses_is_refused(title):
    with pytest.raises(ValueError):
        _ours(title=title)


@pytest.mark.parametrize("value, error", [
    (float("nan"), ValueError), (Decimal("Infinity"), ValueError),
    (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), ValueError), (object(), TypeError),
    (b"bytes", TypeError)])
def test_a_value_no_cell_can_hold_is_refused(value, error):
    with pytest.raises(error):
        _ours([["x"], [value]], (xlsx.Column(10),))


def test_a_workbook_saves_to_a_path_and_again_the_same(tmp_path: Path):
    book = xlsx.Workbook([xlsx.Sheet("表", [["a", 1]], (xlsx.Column(10),))])
    book.save(tmp_path / "a.xlsx")
    book.save(tmp_path / "b.xlsx")
    for name in ("a.xlsx", "b.xlsx"):
        assert [r for r in load_workbook(tmp_path / name)["表"].iter_rows(values_only=True)] == [
            ("a", 1)]


def test_column_letters():
    assert [xlsx.column_letter(n) for n in (1, 26, 27, 28, 52, 702, 703, 16384)] == [
        "A", "Z", "AA", "AB", "AZ", "ZZ", "AAA", "XFD"]
    with pytest.raises(ValueError):
        xlsx.column_letter(0)


# --- the voucher workbook and JSON on the writer ---------------------------------------------

def test_voucher_workbook_is_a_well_formed_package_named_for_the_import():
    data = _saved(build_voucher_workbook(batch()))
    _well_formed(data)
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == [KINGDEE_SHEET]
    ws = wb[KINGDEE_SHEET]
    assert ws.freeze_panes == "A3" and ws.dimensions == "A1:AB6"
    assert all(c.font.b and c.fill.fgColor.rgb == "00DDDDDD" for row in ws["A1:AB2"] for c in row)


def _asdict_form(value):
    """A batch's wire form as it was made before: dataclasses.asdict, then Decimals and dates
    as strings, tuples as lists; a voucher without a 凭证号 has no `number` (the form of the
    batches prepared before numbers were issued)."""
    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, Decimal):
            return str(v)
        if isinstance(v, dt.date):
            return v.isoformat()
        return v
    form = plain(dataclasses.asdict(value))
    for voucher in form["vouchers"]:
        if voucher["number"] is None:
            del voucher["number"]
    return form


def test_a_batchs_json_form_is_what_asdict_made():
    made = batch()
    odd = dataclasses.replace(made, note=None, vouchers=made.vouchers + (dataclasses.replace(
        made.vouchers[0], voucher_key="RB-2026-10-r1-C000999", attachments=0,
        entries=tuple(dataclasses.replace(e, customer_code=None, customer_name=None,
                                          summary="") for e in made.vouchers[0].entries)),))
    numbered = dataclasses.replace(made, vouchers=tuple(
        dataclasses.replace(v, number=n) for n, v in enumerate(made.vouchers, start=41)))
    for value in (made, odd, numbered):
        form = value.to_json_dict()
        assert form == _asdict_form(value)
        assert json.dumps(form, ensure_ascii=False) == json.dumps(_asdict_form(value),
                                                                  ensure_ascii=False)
        assert VoucherBatch.from_json_dict(form) == value
