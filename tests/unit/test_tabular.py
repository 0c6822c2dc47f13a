"""The import table reader: encodings, XLSX cells, headers, row numbers, Chinese problems."""
from __future__ import annotations

import codecs
import datetime as dt
from decimal import Decimal

import pytest
from openpyxl import Workbook

from connectors.tabular import (
    CellError,
    Column,
    TableError,
    convert_rows,
    decode_csv,
    header_key,
    header_unit,
    load_sheets,
    normalize_header,
    parse_date,
    parse_int,
    parse_money,
    parse_text,
    read_table,
)

COLUMNS = (
    Column("发票号", aliases=("发票号码",)),
    Column("客户名称"),
    Column("到期日"),
    Column("金额", aliases=("价税合计",)),
    Column("备注", required=False),
)
CSV_TEXT = ("发票号,客户名称,到期日,金额\r\n"
            "FP-001,江苏康达医疗设备有限公司,2026-10-31,\"12,345.60\"\r\n"
            "FP-002,苏州恒润精密机械有限公司,2026/11/15,800\r\n")


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def workbook(path, *sheets):
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(list(row))
    wb.save(path)
    return path


# --- CSV encodings -------------------------------------------------------------------------

@pytest.mark.parametrize("encode", [
    lambda t: t.encode("utf-8"),
    lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
    lambda t: t.encode("gb18030"),
    lambda t: t.encode("gbk"),
    lambda t: t.replace(",", "\t").replace('"12\t345.60"', "12345.60").encode("utf-16"),
], ids=["utf8", "utf8-bom", "gb18030", "gbk", "utf16-tab"])
def test_csv_in_every_encoding_excel_writes_reads_the_same(tmp_path, encode):
    table = read_table(write(tmp_path / "应收.csv", encode(CSV_TEXT)), COLUMNS)
    assert table.columns == ("发票号", "客户名称", "到期日", "金额")
    assert table.unknown == () and table.header_row == 1
    assert [r.number for r in table.rows] == [2, 3]
    first = table.rows[0]
    assert first["客户名称"] == "江苏康达医疗设备有限公司"  # no mojibake, no BOM on the header
    assert first["金额"] in ("12,345.60", "12345.60")
    assert first["备注"] == ""  # optional and absent
    assert table.rows[1]["到期日"] == "2026/11/15"


def test_gb18030_is_not_mistaken_for_utf8():
    text = "客户名称\n江苏康达\n"
    assert decode_csv(text.encode("gb18030")) == text
    assert decode_csv(codecs.BOM_UTF8 + text.encode("utf-8")) == text


def test_undecodable_bytes_are_reported_in_chinese(tmp_path):
    path = write(tmp_path / "坏.csv", b"\x81\x30\xff\xff,\x80\n")
    with pytest.raises(TableError) as info:
        read_table(path, COLUMNS)
    assert "坏.csv" in str(info.value) and "编码" in str(info.value)


# --- XLSX ----------------------------------------------------------------------------------

def test_xlsx_cells_become_text_and_a_title_block_is_skipped(tmp_path):
    path = workbook(tmp_path / "应收.xlsx", ("10月", [
        ("应收账款明细表",),
        ("期间：2026年10月",),
        (),
        ("发票号码", " 客户名称 ", "*到期日", "价税合计", "业务员"),  # alias, spaces, star, extra
        (20261031, "江苏康达医疗设备有限公司", dt.datetime(2026, 10, 31), 12345.6, "张伟"),
        ("FP-002", "苏州恒润精密机械有限公司", dt.date(2026, 11, 15), 800.0, None),
        (None, None, None, None, None),
        ("合计", None, None, 13145.6, None),
    ]))
    table = read_table(path, COLUMNS)
    assert table.header_row == 4
    assert table.unknown == ("业务员",)
    assert [r.number for r in table.rows] == [5, 6]  # blank and totals rows skipped
    first, second = table.rows
    assert first["发票号"] == "20261031"  # a number cell, without ".0"
    assert first["到期日"] == "2026-10-31" and second["到期日"] == "2026-11-15"
    assert first["金额"] == "12345.6" and second["金额"] == "800"
    assert str(first.number) == "5" and first.source == "应收.xlsx"


def test_xlsx_sheets_are_named_and_selectable(tmp_path):
    path = workbook(tmp_path / "导出.xlsx",
                    ("应收", [("发票号", "客户名称", "到期日", "金额"), ("FP-1", "甲", "2026-10-01", 1)]),
                    ("空表", []),
                    ("其他", [("发票号", "客户名称", "到期日", "金额"), ("FP-2", "乙", "2026-10-02", 2)]))
    sheets = load_sheets(path)
    assert [s.source for s in sheets] == ["导出.xlsx[应收]", "导出.xlsx[其他]"]  # empty dropped
    assert read_table(path, COLUMNS, sheet="其他").rows[0]["发票号"] == "FP-2"
    with pytest.raises(TableError) as info:
        read_table(path, COLUMNS, sheet="不存在")
    assert "找不到工作表「不存在」" in str(info.value)


def test_unreadable_or_unsupported_files_are_problems_not_crashes(tmp_path):
    for name, data, needle in (
        ("半截.xlsx", b"PK\x03\x04 half a zip", "无法打开 Excel 文件"),
        ("旧.xls", b"\xd0\xcf\x11\xe0", "另存为 .xlsx"),
        ("数据.json", b"{}", "不支持的文件类型"),
        ("空.csv", b"", "文件是空的"),
    ):
        with pytest.raises(TableError) as info:
            read_table(write(tmp_path / name, data), COLUMNS)
        assert name in str(info.value) and needle in str(info.value), str(info.value)


# --- headers -------------------------------------------------------------------------------

def test_header_spelling_is_normalised():
    assert normalize_header(" *发票号码（蓝字） ") == "发票号码(蓝字)"
    assert normalize_header("ＡＢＣ　金额") == "ABC金额"
    assert normalize_header("发货单号*") == "发货单号"  # Kingdee templates' required marker
    assert normalize_header("实发\n数量 ") == "实发数量"  # a line break inside the cell


@pytest.mark.parametrize("header, key", [
    ("实发数量(基本单位)", "实发数量"),
    ("实发数量（库存单位）", "实发数量"),
    ("实发数量（销售单位）*", "实发数量"),
    ("数量(台)", "数量"),
    ("数量(PCS)", "数量"),
    ("金额（元）", "金额"),
    ("金额(单位：元)", "金额"),
    ("金额【人民币】", "金额"),
    ("单价(元/台)", "单价"),
    # notes that change what the column is stay part of the header
    ("单价(含税)", "单价(含税)"),
    ("金额（不含税）", "金额(不含税)"),
    ("金额(美元)", "金额(美元)"),
    ("数量(千克)", "数量(千克)"),  # a weight, not a count of units
    ("金额(万元)", "金额(万元)"),
])
def test_a_suffix_that_only_names_a_unit_is_dropped(header, key):
    assert header_key(header) == key


@pytest.mark.parametrize("header, counting", [
    ("实发数量(个)", "个"), ("数量（台）", "台"), ("数量(单位：盒)", "盒"), ("数量(pcs)", "pcs"),
    # a kind of unit names no unit to check against; a currency or a note is no count
    ("实发数量(基本单位)", None), ("实发数量（库存单位）", None), ("数量(销售单位)", None),
    ("金额(元)", None), ("单价(元/台)", None), ("数量(千件)", None), ("数量(千克)", None),
])
def test_a_counting_unit_in_a_header_is_told_from_a_kind_of_unit(header, counting):
    assert header_unit(normalize_header(header)).counting == counting


UNIT_COLUMNS = (
    Column("单号"),
    Column("实发数量", aliases=("实际发货数量",)),
    Column("金额", aliases=("价税合计",)),
    Column("单价", required=False),
)
PLAIN_ROWS = [("单号", "实发数量", "金额", "单价"), ("FH-1", "3", "1200.50", "400.50")]


def _unit_table(tmp_path, kind, header):
    rows = [("出库单列表",), header, *PLAIN_ROWS[1:]]
    if kind == "csv":
        text = "\r\n".join(",".join(f'"{c}"' for c in row) for row in rows)
        return read_table(write(tmp_path / "出库.csv", text.encode("gb18030")), UNIT_COLUMNS)
    return read_table(workbook(tmp_path / "出库.xlsx", ("出库", rows)), UNIT_COLUMNS)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_headers_naming_their_unit_read_as_the_plain_headers(tmp_path, kind):
    """K/3 Cloud and U8 exports: the unit in brackets, full-width or not, a required-field
    star, stray spaces and a line break inside the cell."""
    plain = _unit_table(tmp_path, kind, PLAIN_ROWS[0])
    table = _unit_table(tmp_path, kind, (" *单号 ", "实发数量\n（基本单位）", "金额(单位：元)*",
                                         "单价（元/台）"))
    assert table.columns == plain.columns == ("单号", "实发数量", "金额", "单价")
    assert table.unknown == ()
    # as the file writes them (a problem quotes them so), by the column they are
    assert table.headers == {"单号": "*单号", "实发数量": "实发数量 （基本单位）",
                             "金额": "金额(单位：元)*", "单价": "单价（元/台）"}
    assert [r.values for r in table.rows] == [r.values for r in plain.rows]
    assert table.rows[0]["实发数量"] == "3" and table.rows[0]["金额"] == "1200.50"


def test_a_suffix_that_changes_the_meaning_is_not_the_column(tmp_path):
    table = read_table(write(tmp_path / "出库.csv", "单号,实发数量,金额,单价(含税)\nFH-1,3,1,2\n"
                             .encode()), UNIT_COLUMNS)
    assert table.columns == ("单号", "实发数量", "金额") and table.unknown == ("单价(含税)",)
    assert table.rows[0]["单价"] == ""
    with pytest.raises(TableError) as info:
        read_table(write(tmp_path / "应收.csv", "单号,实发数量,金额（不含税）\nFH-1,3,1\n"
                         .encode()), UNIT_COLUMNS)
    assert str(info.value) == (
        "应收.csv 第1行「金额」：缺少必填列（也可写作：价税合计）；表头「金额（不含税）」的括注“不含税”"
        "不是可识别的单位（如元、台、基本单位），所指可能不同，未当作此列")


@pytest.mark.parametrize("header, advice", [
    ("金额（万元）", "以“万元”为单位，导入不做换算：请换算为元，表头写作「金额」后再导入"),
    ("实发数量(千件)", "以“千件”为单位，导入不做换算：请换算为不带倍数的单位，表头写作「实发数量」后再导入"),
])
def test_a_multiple_of_a_unit_is_refused_naming_the_column(tmp_path, header, advice):
    """A 万元 column read as yuan would be 10,000 times off: refused, not converted."""
    column = "金额" if "金额" in header else "实发数量"
    text = "单号,实发数量,金额\nFH-1,3,1\n".replace(column, header, 1)
    with pytest.raises(TableError) as info:
        read_table(write(tmp_path / "出库.csv", text.encode()), UNIT_COLUMNS)
    assert str(info.value) == f"出库.csv 第1行「{column}」：表头「{header}」{advice}"


def test_a_multiple_of_a_unit_on_a_column_not_read_is_no_problem(tmp_path):
    text = "单号,实发数量,金额,税额(万元)\nFH-1,3,1,0.01\n"
    assert read_table(write(tmp_path / "出库.csv", text.encode()), UNIT_COLUMNS).unknown == (
        "税额(万元)",)


def test_two_headers_of_one_column_in_two_units_are_refused_naming_both(tmp_path):
    text = "单号,实发数量(基本单位),实发数量（销售单位）,金额\nFH-1,12,1,1\n"
    with pytest.raises(TableError) as info:
        read_table(write(tmp_path / "出库.csv", text.encode()), UNIT_COLUMNS)
    assert str(info.value) == (
        "出库.csv 第1行「实发数量」：列重复（第2列「实发数量(基本单位)」和第3列「实发数量（销售单位）」"
        "都是此列）：无法确定用哪一列，请只保留一列后再导入")


def test_a_joined_column_reads_every_header_of_its_name_together(tmp_path):
    """Free text split over two headers of one name (a document's 备注 and its line's) is read
    as one value, the cells joined by a space; a blank one adds nothing."""
    columns = (Column("单号"), Column("备注", required=False, joined=True))
    text = "单号,备注,金额,备注\nFH-1,整单退货,1,对应正数发票号码:1\nFH-2,,2,仅行备注\nFH-3,,3,\n"
    table = read_table(write(tmp_path / "单据.csv", text.encode()), columns)
    assert [r["备注"] for r in table.rows] == ["整单退货 对应正数发票号码:1", "仅行备注", ""]
    assert table.columns == ("单号", "备注") and table.unknown == ("金额",)


def test_missing_required_and_duplicate_columns_are_named(tmp_path):
    path = write(tmp_path / "缺列.csv",
                 "发票号,客户名称,客户名称,价税合计\nFP-1,甲,乙,1\n".encode("utf-8"))
    with pytest.raises(TableError) as info:
        read_table(path, COLUMNS)
    text = str(info.value)
    assert "缺列.csv 第1行「到期日」：缺少必填列" in text
    assert "「客户名称」：列重复（第2列「客户名称」和第3列「客户名称」都是此列）" in text
    assert len(info.value.problems) == 2


def test_unknown_columns_are_reported_or_refused(tmp_path):
    path = write(tmp_path / "多列.csv",
                 "发票号,客户名称,到期日,金额,开户行,\nFP-1,甲,2026-10-01,1,工行,x\n".encode("utf-8"))
    assert read_table(path, COLUMNS).unknown == ("开户行", "第6列（无表头）")
    with pytest.raises(TableError) as info:
        read_table(path, COLUMNS, unknown="error")
    assert "「开户行」：未知的列" in str(info.value)


def test_aliases_must_not_collide():
    with pytest.raises(ValueError):
        read_table("x.csv", (Column("金额"), Column("回款金额", aliases=("金额",))), data=b"a\n1\n")


# --- converting rows -----------------------------------------------------------------------

def _record(row):
    due = row.get("到期日", parse_date)
    if due.year < 2000:
        row.fail("到期日", "日期太早")
    return (row.get("发票号", parse_text), due, row.get("金额", parse_money))


def test_convert_rows_names_row_and_column_of_every_problem(tmp_path):
    text = ("发票号,客户名称,到期日,金额\n"
            "FP-1,甲,2026-10-31,100.00\n"
            ",乙,2026-10-31,1\n"             # row 3: no number
            "FP-3,丙,2026-13-01,1\n"         # row 4: no such month
            "FP-4,丁,2026-10-31,12.345\n"    # row 5: below a fen
            "FP-5,戊,1999-01-01,1\n")        # row 6: a cross-field refusal
    table = read_table(write(tmp_path / "应收.csv", text.encode("gb18030")), COLUMNS)
    with pytest.raises(TableError) as info:
        convert_rows(table.rows, _record)
    assert [(p.row, p.column) for p in info.value.problems] == [
        (3, "发票号"), (4, "到期日"), (5, "金额"), (6, "到期日")]
    text = str(info.value)
    assert "应收.csv 第3行「发票号」：不能为空" in text
    assert "第4行「到期日」：不是有效日期：'2026-13-01'" in text
    assert "第5行「金额」：金额须精确到分：'12.345'" in text


def test_convert_rows_returns_records_when_all_rows_are_good(tmp_path):
    table = read_table(write(tmp_path / "a.csv", CSV_TEXT.encode()), COLUMNS)
    assert convert_rows(table.rows, _record) == [
        ("FP-001", dt.date(2026, 10, 31), Decimal("12345.60")),
        ("FP-002", dt.date(2026, 11, 15), Decimal("800.00"))]


def test_problem_lists_are_capped(tmp_path):
    body = "".join(f"FP-{n},甲,坏日期,1\n" for n in range(60))
    table = read_table(write(tmp_path / "a.csv", ("发票号,客户名称,到期日,金额\n" + body).encode()),
                       COLUMNS)
    with pytest.raises(TableError) as info:
        convert_rows(table.rows, _record, max_problems=5)
    assert len(info.value.problems) == 5 and info.value.more == 55
    assert "另有 55 处问题未列出" in str(info.value)


# --- field parsers -------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["2026-10-31", "2026/10/31", "2026.10.31", "2026年10月31日",
                                  "20261031", "2026-10-31 00:00:00", "2026-10-31T00:00"])
def test_parse_date_accepts_the_usual_spellings(text):
    assert parse_date(text) == dt.date(2026, 10, 31)


@pytest.mark.parametrize("text", ["", "2026-02-30", "31/10/2026", "2026-10-31 08:30:00", "明天",
                                  "45230"])
def test_parse_date_refuses_the_rest(text):
    with pytest.raises(CellError):
        parse_date(text)


@pytest.mark.parametrize("text, value", [
    ("1234.5", "1234.50"), ("1,234.50", "1234.50"), ("¥1,234.50", "1234.50"),
    ("￥ 12", "12.00"), ("-80.05", "-80.05"), ("12.340", "12.34"), ("0", "0.00"),
])
def test_parse_money_is_exact(text, value):
    result = parse_money(text)
    assert result == Decimal(value) and result.as_tuple().exponent == -2


@pytest.mark.parametrize("text", ["", "12.345", "1.2E+5", "1,2,3", "十元", "12..3", "NaN",
                                  "Infinity", "1 000"])
def test_parse_money_refuses_what_is_not_whole_fen(text):
    with pytest.raises(CellError):
        parse_money(text)


def test_parse_money_sign_rules():
    with pytest.raises(CellError) as info:
        parse_money("0", positive=True)
    assert "大于零" in info.value.message
    with pytest.raises(CellError):
        parse_money("0.00", allow_zero=False)


def test_parse_date_may_drop_a_time_of_day_when_asked():
    for text in ("2026-10-31 14:35:22", "2026/10/31 8:05", "2026-10-31T23:59:59.500",
                 "２０２６-10-31 14:35:22", "2026-10-31"):
        assert parse_date(text, time_of_day=True) == dt.date(2026, 10, 31)
    for bad in ("2026-10-31 25:00", "2026-10-31 14:35:22+00:00", "2026-10-31 14:61"):
        with pytest.raises(CellError):
            parse_date(bad, time_of_day=True)
    with pytest.raises(CellError):
        parse_date("2026-10-31 14:35:22")  # not unless asked


def test_parse_int():
    assert parse_int("1,200") == 1200 and parse_int("-3") == -3
    for bad in ("", "1.5", "三"):
        with pytest.raises(CellError):
            parse_int(bad)
    with pytest.raises(CellError):
        parse_int("0", minimum=1)


def test_parse_int_reads_the_decimals_erp_exports_write_for_whole_quantities():
    """U8 and Kingdee export quantities with their unit's precision (`3.00`, `3.0000000000`)."""
    assert parse_int("3.00") == 3 and parse_int("1,200.0000000000") == 1200
    assert parse_int("１２.００") == 12 and parse_int("１，２００") == 1200
    with pytest.raises(CellError, match="不是整数"):
        parse_int("3.50")


def test_excel_cell_values_become_the_text_excel_shows():
    from connectors.tabular import _cell_text

    assert _cell_text(800.0) == "800"              # Excel stores numbers as floats
    assert _cell_text(12345.6) == "12345.6"        # shortest round-trip text, no float noise
    assert _cell_text(0.1 + 0.2) == "0.3"          # float noise past Excel's 15 digits
    assert _cell_text(12.345) == "12.345"          # then refused by parse_money
    assert _cell_text(dt.datetime(2026, 10, 31)) == "2026-10-31"
    assert _cell_text(dt.datetime(2026, 10, 31, 8, 30)) == "2026-10-31 08:30:00"
    assert _cell_text(None) == "" and _cell_text(True) == "TRUE" and _cell_text(" x ") == "x"
    with pytest.raises(CellError):
        parse_money(_cell_text(12.345))


def test_parse_int_takes_commas_only_as_thousands_separators():
    """`1,0` (a decimal comma) or `,3` is refused, never read as 10 or 3: a return of 10
    would claw back nine units too many."""
    assert parse_int("1,200") == 1200 and parse_int("１，２００") == 1200
    assert parse_int("12,345,678.00") == 12345678
    for bad in ("1,0", "12,0", ",3", "5,", "1,2,3", "1,20", "1,2000", "1,,200"):
        with pytest.raises(CellError, match="不是整数"):
            parse_int(bad)


# --- what the database columns keep ----------------------------------------------------------

def test_parse_int_stops_at_what_an_integer_column_keeps():
    """Quantities and line numbers are INTEGER columns: 3,000,000,000 would end a PostgreSQL
    import in a raw `integer out of range`."""
    assert parse_int("2,147,483,647") == 2_147_483_647 == parse_int("2147483647.00")
    assert parse_int("-2147483647") == -2_147_483_647
    with pytest.raises(CellError) as info:
        parse_int("3,000,000,000")
    assert info.value.message == "不能大于 2,147,483,647：'3,000,000,000'"
    with pytest.raises(CellError, match="不能小于 -2,147,483,647"):
        parse_int("-3000000000")
    with pytest.raises(CellError, match="不能大于 99"):
        parse_int("100", minimum=0, maximum=99)
    assert parse_int("99", minimum=0, maximum=99) == 99


@pytest.mark.parametrize("text", ["1,000,000,000,000.00", "-1000000000000", "(1,000,000,000,000.00)",
                                  "1" + "0" * 30, "12345678901234567890123456789.123"])
def test_parse_money_refuses_a_trillion_or_more(text):
    """Amounts are Numeric(14, 2): below 10^12 yuan. Beyond Decimal's 28 digits too, the
    refusal is the same (no InvalidOperation from rounding)."""
    with pytest.raises(CellError) as info:
        parse_money(text)
    assert info.value.message == (f"金额超出可登记的范围：{text!r}"
                                  "（绝对值须小于 1,000,000,000,000.00 元）")


def test_parse_money_takes_what_an_amount_column_keeps():
    assert parse_money("999,999,999,999.99") == Decimal("999999999999.99")
    assert parse_money("-999999999999.99") == Decimal("-999999999999.99")


def test_a_nul_character_in_a_cell_is_refused_with_its_row_and_column(tmp_path):
    """A NUL (`\\x00`) in text is refused by `parse_text` and by every read of a row's cell:
    PostgreSQL text columns cannot hold it (SQLite would store it silently)."""
    nul = "含有空字符（NUL，\\x00），通常是导出或复制出错带入的：请删除该字符（或从原系统重新导出）后再导入"
    with pytest.raises(CellError) as info:
        parse_text("FP-\x00001")
    assert info.value.message == nul
    table = read_table(write(tmp_path / "应收.csv",
                             "发票号,客户名称,到期日,金额,备注\r\n"
                             "FP-\x00001,甲\x00,2026-10-31,12,\x00\r\n"
                             "FP-002,乙,2026-10-31,12,好\r\n".encode()), COLUMNS)
    with pytest.raises(TableError) as info:
        convert_rows(table.rows, lambda r: (r.get("发票号", parse_text), r.get("客户名称"),
                                            r.get("备注")))
    assert [str(p) for p in info.value.problems] == [
        f"应收.csv 第2行「{column}」：{nul}" for column in ("发票号", "客户名称", "备注")]
    assert table.rows[1].get("备注") == "好"
    with pytest.raises(CellError, match="空字符"):  # outside convert_rows: raised
        table.rows[0].get("备注")


def test_a_hidden_worksheet_with_data_refuses_the_workbook(tmp_path):
    """A hidden (or very hidden) worksheet's rows were never seen by the clerk who checked the
    file: refused, named, whatever reads it. An empty hidden sheet is nothing; hidden rows of
    a visible sheet (a filter left on) are read."""
    wb = Workbook()
    ws = wb.active
    ws.title = "本月"
    for row in [("发票号", "客户名称", "到期日", "金额"), ("FP-1", "甲", "2026-10-01", 1),
                ("FP-2", "乙", "2026-10-02", 2)]:
        ws.append(row)
    ws.row_dimensions[3].hidden = True
    wb.create_sheet("空的").sheet_state = "hidden"
    wb.save(tmp_path / "好.xlsx")
    assert [r["发票号"] for r in read_table(tmp_path / "好.xlsx", COLUMNS).rows] == ["FP-1", "FP-2"]
    assert [s.title for s in load_sheets(tmp_path / "好.xlsx")] == ["本月"]
    old = wb.create_sheet("旧数据", 0)
    old.append(("发票号", "客户名称", "到期日", "金额"))
    old.append(("FP-0", "丙", "2025-10-01", 3))
    old.sheet_state = "hidden"
    notes = wb.create_sheet("说明")
    notes.append(("内部备注",))
    notes.sheet_state = "veryHidden"
    wb.save(tmp_path / "导出.xlsx")
    said = ["导出.xlsx：工作表“旧数据”已隐藏：请删除或取消隐藏后再导入",
            "导出.xlsx：工作表“说明”已隐藏：请删除或取消隐藏后再导入"]
    for read in (lambda: load_sheets(tmp_path / "导出.xlsx"),
                 lambda: read_table(tmp_path / "导出.xlsx", COLUMNS)):
        with pytest.raises(TableError) as info:
            read()
        assert [str(p) for p in info.value.problems] == said
    # a visible worksheet named is read; the hidden one named is refused
    assert read_table(tmp_path / "导出.xlsx", COLUMNS, sheet="本月").rows[0]["发票号"] == "FP-1"
    with pytest.raises(TableError) as info:
        read_table(tmp_path / "导出.xlsx", COLUMNS, sheet="旧数据")
    assert [str(p) for p in info.value.problems] == said[:1]


def test_an_excel_day_number_in_a_date_column_is_refused_with_the_date_it_means():
    """A date column saved in Excel's General format holds day numbers (46392): never read as
    a date (it may be something else), but the refusal says which date it would be."""
    with pytest.raises(CellError, match=r"像是 Excel 的日期序号，即 2027-01-05：请把该列设为日期格式"):
        parse_date("46392")
    with pytest.raises(CellError) as refused:
        parse_date("12345")  # no day of these years
    assert "日期序号" not in refused.value.message


# --- header rows and merged cells ---------------------------------------------------------

def test_the_header_rows_are_the_first_ten_non_empty_rows_for_every_reader(tmp_path):
    """`table` and `names_any` (which sheet holds which table) search the same rows: blank
    spacer rows of a title block are not counted."""
    wb = Workbook()
    ws = wb.active
    for i in range(7):
        ws.append([f"标题{i}"])
        ws.append([])
    ws.append(["发票号", "客户名称"])
    ws.append(["FP-1", "某公司"])
    wb.save(tmp_path / "t.xlsx")
    columns = (Column("发票号"), Column("客户名称"))
    sheet = load_sheets(tmp_path / "t.xlsx")[0]
    assert [n for n, _ in sheet.header_rows()] == [1, 3, 5, 7, 9, 11, 13, 15, 16]
    assert sheet.names_any(columns[:1]) and sheet.table(columns).header_row == 15
    ws.insert_rows(1, 3)  # three more non-empty rows above: the header is the 11th
    for row in (1, 2, 3):
        ws.cell(row, 1, f"说明{row}")
    wb.save(tmp_path / "t.xlsx")
    sheet = load_sheets(tmp_path / "t.xlsx")[0]
    assert not sheet.names_any(columns[:1])
    with pytest.raises(TableError):
        sheet.table(columns)


def test_a_cell_merged_over_rows_is_read_in_each_row_that_holds_anything(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["单号", "行号", "数量", "备注"])
    ws.append(["FH-1", 1, 3, "整单备注"])
    ws.append([None, 2, 40, None])
    ws.append([None, None, None, None])  # inside the merge, nothing of its own
    ws.append(["FH-2", 1, 5, None])
    ws.merge_cells("A2:A4")
    ws.merge_cells("D2:E3")  # over two columns too: read in its first one
    wb.save(tmp_path / "m.xlsx")
    lines = dict(load_sheets(tmp_path / "m.xlsx")[0].lines)
    assert lines[3][:4] == ("FH-1", "2", "40", "整单备注")
    assert not any(lines[4]) and lines[5][0] == "FH-2"
    assert all(len(cells) < 5 or not cells[4] for cells in lines.values())
