"""Tables people export from Excel or an ERP (CSV or XLSX), read as rows of text by header.

Used by every import: receivables and payments from finance, customers, deliveries. What it
does so the callers need not:
- CSV in UTF-8 (with or without BOM), UTF-16 with BOM (Excel "Unicode text") or GB18030 (what
  Chinese Excel writes as "CSV"); comma or tab separated.
- XLSX: every worksheet, cached values of formulas; a workbook with a hidden (or very hidden)
  worksheet that holds data is refused, naming it (the clerk never saw what it would add);
  hidden rows are read (a filter left on hides rows, it does not delete them); a cell
  merged over several rows is read in each of them that holds anything else (`_merged_down`:
  a document's number and date merged over its lines); dates (also in Chinese Excel's built-in
  年月日 formats) become `2026-10-31`, whole floats below 2**53 lose their `.0`, so the
  callers always parse text. Other floats keep the text Excel shows (at most 15 significant
  digits: a formula's `113.11000000000001` is `113.11`; else the shortest, `2.4322e+19`)
  and a mark (`ExcelNumber`): a text column refuses them
  (a 20-digit invoice number stored as a number in Excel has lost its last digits), a number
  column refuses those beyond 2**53.
- The header row may sit below a title block (first 10 non-empty rows are searched for one
  that holds every required column); header spelling is compared after NFKC normalisation
  (full-width letters and brackets), spaces and line breaks and a `*` at either end removed,
  and columns may have aliases. A bracketed suffix that only names a unit is dropped
  (`实发数量（基本单位）`, `金额(元)`); a multiple (`金额(万元)`) is refused, any other note
  (`单价(含税)`) leaves an unknown column; two headers that are one column are refused.
- A cell holding a NUL character (`\x00`, which a database text column cannot keep) is
  refused where a row's cell is read (`Row.get`, `parse_text`).
- Blank rows and totals rows (first cell 合计 / 总计 / 小计, a colon may follow) are skipped.
- Problems are collected with the file, the row number as Excel shows it and the column,
  and reported in Chinese, e.g. `回款.xlsx[Sheet1] 第7行「金额」：金额须精确到分：'12.345'`.

Field parsers (`parse_date`, `parse_money`, `parse_int`, `parse_text`, `parse_code`) raise
`CellError` with a Chinese message; `convert_rows` turns those into problems of the row and
column, every bad cell of every row in one pass.
"""
from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import errno
import io
import itertools
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar

from connectors.files import os_reason
from models.names import HALF_WIDTH

__all__ = [
    "COUNTING_UNITS", "CellError", "Column", "ExcelNumber", "INT_MAX", "INVALID", "MONEY_FORMAT",
    "MONEY_LIMIT", "NUL", "RATE_FORMAT",
    "Problem", "REPEATED_ROW", "Row",
    "Sheet", "Table", "TableError", "UNIT_KINDS", "append_as_text", "convert_rows",
    "decode_csv", "load_sheets", "money_in_range", "no_nul",
    "header_key", "header_unit", "normalize_header", "parse_code",
    "parse_date", "parse_int", "parse_money", "parse_text", "read_table",
]

T = TypeVar("T")

HEADER_SEARCH_ROWS = 10
MAX_PROBLEMS = 50  # enough to fix a file in one go; more only buries the first ones
# said of a row that repeats an earlier one in everything read (an export appended twice, two
# overlapping exports pasted into one sheet): one row given twice, not two lots of a line
# whose quantities (amounts) are to be added up
REPEATED_ROW = "是同一行重复出现（如导出内容粘贴了两次），请删除重复的这一行后再导入"
TOTAL_MARKERS = frozenset({"合计", "总计", "小计", "合 计", "总 计"})
CSV_SUFFIXES = frozenset({".csv", ".txt"})
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
# Excel's day numbers (1900 system, its 1900-02-29 counted: day 1 is 1899-12-31 + 1) from
# 1982 to 2064, which a date column saved in General format holds instead of the date
EXCEL_EPOCH = dt.date(1899, 12, 30)
_EXCEL_SERIAL = re.compile(r"[3-5]\d{4}")
EXACT_FLOAT = 2 ** 53  # every whole number below it is exactly a float; beyond, digits are lost
INT_MAX = 2 ** 31 - 1  # what an INTEGER column (quantities, line numbers) keeps
MONEY_LIMIT = Decimal(10) ** 12  # a Numeric(14, 2) amount is below a trillion yuan
NUL = "\x00"  # no database text column keeps it (PostgreSQL refuses the statement)


# --- problems --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input table; `str()` is the Chinese sentence a clerk reads."""

    source: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.source
        if self.row is not None:
            where += f" 第{self.row}行"
        if self.column:
            where += f"「{self.column}」"
        return f"{where}：{self.message}"


class TableError(ValueError):
    """A table that cannot be imported as it is; `problems` lists every finding (capped)."""

    def __init__(self, problems: Sequence[Problem], *, more: int = 0) -> None:
        self.problems = tuple(problems)
        self.more = more
        text = "；\n".join(str(p) for p in self.problems)
        if more:
            text += f"；\n……另有 {more} 处问题未列出"
        super().__init__(text)


class CellError(ValueError):
    """A field parser's refusal; `convert_rows` adds the row and column."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


# --- headers ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    """An expected column: its name in the rows handed back, whether it must be present, and
    other spellings exports use for it (e.g. 发票号 / 发票号码)."""

    name: str
    required: bool = True
    aliases: tuple[str, ...] = ()
    # free text an export may split over several headers of the same name (a document's
    # 备注 and its line's 备注): read together, joined by a space, instead of refused as a
    # repeated column
    joined: bool = False

    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def normalize_header(text: str) -> str:
    """`' *发票号码（蓝字） '` → `'发票号码(蓝字)'`: NFKC (full-width brackets and letters), no
    spaces or line breaks, no required-field star at either end (Kingdee's import templates
    write `*单据编号` or `单据编号*`)."""
    text = unicodedata.normalize("NFKC", text or "")
    text = re.sub(r"\s+", "", text)
    return text.strip("*")


# A header may say the unit of its numbers in brackets: K/3 Cloud writes `实发数量(基本单位)`,
# other exports `数量（台）`, `金额（元）`, `金额(单位：元)`. Such a suffix only names the unit
# and the header is the column's; any other note changes what the column is (`单价(含税)` is
# not `单价`, `金额(不含税)` not the tax-included `金额`, `金额(美元)` no yuan) and the header is
# an unknown column. A multiple of a unit (`金额(万元)`, `数量(千件)`) is refused: the
# readers take numbers as they stand and would be 10,000 times off.
# A kind of unit (`实发数量(基本单位)`) says which of the item's units the numbers are in, not
# the unit itself; a counting unit (`实发数量(个)`) is the unit, which an import can check.
UNIT_KINDS = frozenset({
    "基本单位", "库存单位", "销售单位", "计价单位", "主单位", "辅单位", "辅助单位", "常用单位",
})
COUNTING_UNITS = frozenset({
    "台", "件", "个", "箱", "套", "只", "支", "把", "盒", "包", "袋", "瓶", "桶", "卷", "张",
    "块", "根", "条", "副", "对", "双", "组", "片", "粒", "册", "本", "PCS", "EA", "SET",
})
QUANTITY_UNITS = UNIT_KINDS | COUNTING_UNITS
CURRENCY_UNITS = frozenset({"元", "人民币", "人民币元", "RMB", "CNY"})
UNIT_MULTIPLES = ("十", "百", "千", "万", "十万", "百万", "千万", "亿")
_UNIT_SUFFIX = re.compile(r"(.+?)[(\[【〔](?:单位:?)?([^()\[\]【】〔〕]+)[)\]】〕]")


@dataclass(frozen=True)
class HeaderUnit:
    """A header's bracketed suffix: the header without it (`base`), the suffix, and what it
    is: a unit (`is_unit`), a multiple of one (`multiple`), or a note of another kind."""

    base: str
    suffix: str
    is_unit: bool
    multiple: bool

    @property
    def counting(self) -> str | None:
        """The counting unit the suffix names (`个` of `实发数量(个)`); None for a kind of unit
        (`基本单位`), a currency or any other note."""
        return self.suffix if self.suffix.upper() in COUNTING_UNITS else None


def _is_unit(text: str, *, scaled: bool = False) -> bool:
    text = text.upper()
    if "/" in text:  # 单价(元/台)
        money, _, per = text.partition("/")
        return _is_unit(money, scaled=scaled) and per in QUANTITY_UNITS
    if scaled:
        return any(text.startswith(m) and (text == m or text[len(m):] in CURRENCY_UNITS
                                           or text[len(m):] in QUANTITY_UNITS)
                   for m in UNIT_MULTIPLES)
    return text in QUANTITY_UNITS or text in CURRENCY_UNITS


def header_unit(key: str) -> HeaderUnit | None:
    """The bracketed suffix of a normalised header (`实发数量(基本单位)`), or None."""
    m = _UNIT_SUFFIX.fullmatch(key)
    if m is None:
        return None
    base, suffix = m.group(1).rstrip("*"), m.group(2)
    multiple = _is_unit(suffix, scaled=True)
    return HeaderUnit(base, suffix, not multiple and _is_unit(suffix), multiple)


def header_key(text: str) -> str:
    """A header as it is matched against column spellings: `normalize_header`, and a suffix
    that only names a unit dropped (`实发数量（基本单位）*` → `实发数量`)."""
    key = normalize_header(text)
    unit = header_unit(key)
    return unit.base if unit is not None and unit.is_unit else key


def _shown(raw: str) -> str:
    """A header as a problem quotes it: line breaks inside the cell read as spaces."""
    return " ".join(raw.split())


# --- rows and tables -------------------------------------------------------------------------

class _Invalid:
    """What a refused cell reads as while `convert_rows` goes on through the row: it compares
    false to everything (so a cross-field check on it stays quiet) and is good for nothing else
    (arithmetic or attributes on it raise, which ends the row)."""

    __slots__ = ()

    def __eq__(self, other) -> bool:
        return False

    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    __hash__ = object.__hash__

    def __ne__(self, other) -> bool:
        return True

    def __repr__(self) -> str:
        return "INVALID"


INVALID = _Invalid()


@dataclass(frozen=True)
class Row:
    """One data row: `number` is the row as Excel shows it; values are stripped text keyed by
    column name ('' when blank; optional columns that are absent read as '').

    Outside `convert_rows` a refused cell raises CellError. Inside it (`problems` is a list)
    the refusal is noted and `INVALID` stands for the value, so that the converter goes on and
    every bad cell of the row is reported; the row's record is then dropped. A converter must
    therefore not catch CellError from `get` to fall back on something else."""

    source: str
    number: int
    values: Mapping[str, str]
    problems: list[Problem] | None = field(default=None, compare=False, repr=False)

    def __getitem__(self, column: str) -> str:
        return self.values.get(column, "")

    def get(self, column: str, parse: Callable[[str], T] | None = None) -> T | str:
        """The column's text, or `parse(text)`; a parser's CellError names this column. Text
        holding a NUL character is refused whatever the parser."""
        text = self[column]
        try:
            no_nul(text)
            return text if parse is None else parse(text)
        except CellError as exc:
            return self.fail(exc.column or column, exc.message)

    @property
    def has_nul(self) -> bool:
        """A cell of the row holds a NUL character: the row is refused wherever that cell is
        read (`get`), and its raw text must not reach a database query either."""
        return any(NUL in text for text in self.values.values())

    def fail(self, column: str | None, message: str):
        """Refuse the row for a reason that spans fields (e.g. due date before issue date)."""
        if self.problems is None:
            raise CellError(message, column)
        problem = Problem(self.source, self.number, column, message)
        if problem not in self.problems:
            self.problems.append(problem)
        return INVALID


@dataclass(frozen=True)
class Table:
    source: str
    header_row: int
    columns: tuple[str, ...]       # the expected columns present, by name
    unknown: tuple[str, ...]       # headers that matched no expected column (reported)
    rows: tuple[Row, ...]
    # absent expected columns → a header that is the column but for a note (`单价(含税)`)
    noted: Mapping[str, str] = field(default_factory=dict)
    # the expected columns present → their header as the file writes it (`实发数量(个)`)
    headers: Mapping[str, str] = field(default_factory=dict)

    def unread(self, *columns: str) -> str:
        """Said where one of `columns` is found missing: `；表头「金额(不含税)」的括注“不含税”不是
        可识别的单位…` for a header that is the column but for such a note, else ''."""
        return _unread(self.noted, columns)


def _unread(noted: Mapping[str, str], columns: Sequence[str]) -> str:
    header = next((noted[c] for c in columns if c in noted), None)
    if header is None:
        return ""
    note = header_unit(normalize_header(header)).suffix
    return (f"；表头「{header}」的括注“{note}”不是可识别的单位（如元、台、基本单位），"
            "所指可能不同，未当作此列")


@dataclass(frozen=True)
class Sheet:
    """Raw cells of one CSV file or one worksheet: (row number, cells as text)."""

    source: str
    lines: tuple[tuple[int, tuple[str, ...]], ...] = field(repr=False)
    title: str | None = None  # the worksheet's name (None for CSV)
    hidden: bool = False  # a worksheet hidden (or very hidden) in Excel

    def table(self, columns: Sequence[Column], *, unknown: str = "report",
              skip_totals: bool = True) -> Table:
        """The rows under the header, keyed by the expected columns.

        unknown: "report" (listed in `Table.unknown`) or "error" (a problem). Raises TableError
        for a missing required column, a column given twice, or unknown="error" findings.
        """
        if unknown not in ("report", "error"):
            raise ValueError(f"unknown must be 'report' or 'error', not {unknown!r}")
        _check_columns(columns)
        header_at, mapping, problems, extra, noted = self._find_header(columns)
        if unknown == "error":
            problems += [Problem(self.source, header_at, name, "未知的列（请删除或改名）")
                         for name in extra]
        if problems:
            raise TableError(problems)
        rows = []
        for number, cells in self.lines:
            if number <= header_at or not any(cells):
                continue
            if skip_totals and _is_total(cells):
                continue
            values: dict[str, str] = {}
            for i, name in mapping.items():
                cell = cells[i] if i < len(cells) else ""
                values[name] = f"{values[name]} {cell}".strip() if name in values else cell
            rows.append(Row(self.source, number, values))
        present = tuple(c.name for c in columns if c.name in mapping.values())
        header_cells = next(cells for number, cells in self.lines if number == header_at)
        headers: dict[str, str] = {}
        for index, name in mapping.items():
            headers.setdefault(name, _shown(header_cells[index]))
        return Table(self.source, header_at, present, tuple(extra), tuple(rows), noted, headers)

    def header_rows(self) -> list[tuple[int, tuple[str, ...]]]:
        """The rows a header is searched in: the first HEADER_SEARCH_ROWS non-empty rows (a
        title block's blank spacer rows do not count). The one rule for every reader: `table`
        finds its header here, and a caller telling which kind of table a sheet holds
        (`names_any`) looks here too, so that a sheet it passes over is one `table` could not
        read either."""
        return list(itertools.islice(((n, cells) for n, cells in self.lines if any(cells)),
                                     HEADER_SEARCH_ROWS))

    def names_any(self, columns: Sequence[Column]) -> bool:
        """Whether a cell of the `header_rows` is one of `columns` (any spelling; a unit in
        brackets as `table` allows it): e.g. whether a worksheet holds deliveries at all."""
        lookup = {normalize_header(s): c.name for c in columns for s in c.spellings()}
        return any(_column_of(lookup, c)[0] is not None
                   for _, cells in self.header_rows() for c in cells if c)

    def _find_header(self, columns: Sequence[Column]):
        lookup = {normalize_header(s): c.name for c in columns for s in c.spellings()}
        joined = {c.name for c in columns if c.joined}
        required = [c for c in columns if c.required]
        candidates = self.header_rows()
        if not candidates:
            return 0, {}, [Problem(self.source, None, None, "文件是空的（没有表头）")], [], {}
        chosen = None
        for number, cells in candidates:
            names = {_column_of(lookup, c)[0] for c in cells}
            if all(c.name in names for c in required):
                chosen = (number, cells)
                break
        header_at, cells = chosen or candidates[0]
        mapping: dict[int, str] = {}
        seen: dict[str, int] = {}
        problems: list[Problem] = []
        extra: list[str] = []
        noted: dict[str, str] = {}  # column → a header that is it but for a note (单价(含税))
        for index, raw in enumerate(cells):
            if not normalize_header(raw):
                if self._column_has_data(index, header_at):
                    extra.append(f"第{index + 1}列（无表头）")
                continue
            name, refusal = _column_of(lookup, raw)
            if refusal is not None:
                problems.append(Problem(self.source, header_at, name, refusal))
            elif name is None:
                extra.append(_shown(raw))
                unit = header_unit(normalize_header(raw))
                if unit is not None and unit.base in lookup:
                    noted.setdefault(lookup[unit.base], _shown(raw))
            elif name in seen and name in joined:
                mapping[index] = name
            elif name in seen:
                first = seen[name]
                problems.append(Problem(
                    self.source, header_at, name,
                    f"列重复（第{first + 1}列「{_shown(cells[first])}」和第{index + 1}列"
                    f"「{_shown(raw)}」都是此列）：无法确定用哪一列，请只保留一列后再导入"))
            else:
                seen[name] = index
                mapping[index] = name
        noted = {name: raw for name, raw in noted.items() if name not in seen}
        for column in required:
            if column.name not in seen and column.name not in {p.column for p in problems}:
                also = f"（也可写作：{'、'.join(column.aliases)}）" if column.aliases else ""
                problems.append(Problem(self.source, header_at, column.name,
                                        f"缺少必填列{also}{_unread(noted, (column.name,))}"))
        return header_at, mapping, problems, extra, noted

    def _column_has_data(self, index: int, header_at: int) -> bool:
        return any(index < len(cells) and cells[index]
                   for number, cells in self.lines if number > header_at)


def _column_of(lookup: Mapping[str, str], raw: str) -> tuple[str | None, str | None]:
    """The column a header is (None: no expected column), and why it is refused (a multiple
    of a unit), or None."""
    key = normalize_header(raw)
    if key in lookup:
        return lookup[key], None
    unit = header_unit(key)
    if unit is None or unit.base not in lookup or not (unit.is_unit or unit.multiple):
        return None, None
    if unit.is_unit:
        return lookup[unit.base], None
    return lookup[unit.base], (
        f"表头「{_shown(raw)}」以“{unit.suffix}”为单位，导入不做换算：请换算为"
        f"{'元' if unit.suffix.endswith('元') else '不带倍数的单位'}，表头写作「{unit.base}」后再导入")


def _check_columns(columns: Sequence[Column]) -> None:
    seen: dict[str, str] = {}
    for column in columns:
        for spelling in column.spellings():
            key = normalize_header(spelling)
            if key in seen and seen[key] != column.name:
                raise ValueError(f"header {spelling!r} maps to both {seen[key]!r} and "
                                 f"{column.name!r}")
            seen[key] = column.name


# What an export writes under its rows in a cell of its own: a record count (共 2 条记录,
# 记录数：2) or who made it and when (导出时间：…, 制表人：…)
_FOOTER = re.compile(r"(?:共计?|总共|合计)[:：]?\s*\d[\d,]*\s*(?:条|行|笔|项|个|家|户)(?:记录|数据|客户)?"
                     r"[。.]?|(?:总?记录数|记录总数|总条数)\s*[:：]\s*\d[\d,]*|"
                     r"(?:导出|打印|生成|制表)(?:时间|日期|人)\s*[:：].*|(?:制表|审核|经办)\s*[:：].*")


def _is_total(cells: tuple[str, ...]) -> bool:
    """A totals row (合计 … in its first cell), or an export's footer alone in its row."""
    filled = [c for c in cells if c]
    first = filled[0] if filled else ""
    # "合计：" as often as "合计" (NFKC makes the full-width colon a ":")
    if normalize_header(first).rstrip(":") in {normalize_header(m) for m in TOTAL_MARKERS}:
        return True
    return len(filled) == 1 and _FOOTER.fullmatch(first.strip()) is not None


# --- reading files ---------------------------------------------------------------------------

def decode_csv(data: bytes) -> str:
    """CSV bytes → text: a BOM decides; otherwise UTF-8 if it decodes, else GB18030. A file
    its BOM's encoding cannot decode (a UTF-16 "Unicode 文本" export cut short) is refused."""
    for bom, encoding, label in ((codecs.BOM_UTF8, "utf-8", "UTF-8"),
                                 (codecs.BOM_UTF16_LE, "utf-16", "UTF-16（Unicode 文本）"),
                                 (codecs.BOM_UTF16_BE, "utf-16", "UTF-16（Unicode 文本）")):
        if data.startswith(bom):
            try:
                return data[len(bom):].decode("utf-8") if encoding == "utf-8" \
                    else data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise TableError([Problem("", None, None, (
                    f"文件编码错误：文件开头标明为 {label} 编码，但第 {exc.start + 1} 字节起无法按该"
                    "编码读取（文件可能不完整，如复制或下载中断），请重新导出后再导入"))]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise TableError([Problem("", None, None,
                                  f"无法识别文件编码（应为 UTF-8 或 GB18030/GBK）：{exc.reason}")]) from None


def _csv_sheet(source: str, data: bytes) -> Sheet:
    try:
        text = decode_csv(data)
    except TableError as exc:
        raise TableError([Problem(source, None, None, p.message) for p in exc.problems]) from None
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        # the record number, as Excel numbers the rows when it opens the CSV
        lines = tuple((n, tuple(c.strip() for c in cells)) for n, cells in enumerate(reader, 1))
    except csv.Error as exc:
        raise TableError([Problem(source, reader.line_num, None, f"CSV 格式错误：{exc}")]) from None
    return Sheet(source, lines)


class ExcelNumber(str):
    """The text of a number cell that is not a whole number below 2**53, e.g. `12345.6` or
    `2.432200000001235e+19`: fine for an amount, not for a number written as text (invoice
    numbers, codes: digits or trailing zeros are gone)."""

    @property
    def lost_digits(self) -> bool:
        value = float(self)
        return not math.isfinite(value) or abs(value) >= EXACT_FLOAT


def _stored_as_number(text: str) -> CellError:
    return CellError(f"该单元格在 Excel 中存为数字（读到 {text}），已丢失位数或末尾的 0："
                     "请把该列设为“文本”格式，按原单据重新填写后再导入")


def _exact_number(text: str) -> None:
    """Refuse a number cell too large for a float to hold every digit."""
    if isinstance(text, ExcelNumber) and text.lost_digits:
        raise _stored_as_number(text)


def _cell_text(value, width: int | None = None) -> str:
    """The cell as text, as Excel shows it. `width`: the digits its number format pads a
    whole number to with leading zeros (000000 shows 123 as 000123: a code, not a count)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if (width and isinstance(value, (int, float)) and 0 <= value < EXACT_FLOAT
            and float(value).is_integer()):
        return str(int(value)).zfill(width)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < EXACT_FLOAT:
            return str(int(value))
        return ExcelNumber(_excel_digits(value))
    return str(value).strip()


def _excel_digits(value: float) -> str:
    """The number as Excel shows it: at most 15 significant digits, Excel's precision. A
    formula's result carries binary noise beyond them in the file (=100.1+13.01 is stored as
    113.11000000000001) that nobody typed or sees. Otherwise the shortest text that reads back
    as the same float (`2.432200000001235e+19`: the digits a lost identifier still has)."""
    shortest = repr(value)
    excel = format(value, ".15g")
    if "e" in shortest or "e" in excel or len(excel) >= len(shortest):
        return shortest
    return excel


# Built-in number formats that Excel in a Chinese (Japanese, Korean) locale writes for dates
# by id alone (31 is yyyy"年"m"月"d"日"); openpyxl knows only the locale-neutral ids 14–22 and
# would hand the date back as its serial number (46326). 32–35, 55 and 56 are times of day.
CJK_DATE_FORMAT_IDS = frozenset({27, 28, 29, 30, 31, 36, 50, 51, 52, 53, 54, 57, 58})


_ZERO_PADDING = re.compile(r"0{2,}")  # a number format of zeros alone: 000000


def _zero_padded_styles(wb) -> dict[int, int]:
    """Cell style index → width, for the styles whose number format pads a whole number with
    leading zeros (a column of codes formatted 000000, which Excel stores as numbers)."""
    from openpyxl.styles.numbers import BUILTIN_FORMATS_MAX_SIZE  # custom format ids from here

    styles, formats = getattr(wb, "_cell_styles", None), getattr(wb, "_number_formats", None)
    if styles is None or formats is None:
        return {}
    out = {}
    for i, style in enumerate(styles):
        custom = getattr(style, "numFmtId", 0) - BUILTIN_FORMATS_MAX_SIZE
        if 0 <= custom < len(formats) and _ZERO_PADDING.fullmatch(str(formats[custom])):
            out[i] = len(formats[custom])
    return out


def _read_cjk_dates(wb) -> None:
    styles, dates = getattr(wb, "_cell_styles", None), getattr(wb, "_date_formats", None)
    if styles is None or not isinstance(dates, set):
        return
    dates.update(i for i, style in enumerate(styles)
                 if getattr(style, "numFmtId", None) in CJK_DATE_FORMAT_IDS)


def _xlsx_sheets(source: str, path_or_data) -> list[Sheet]:
    from openpyxl import load_workbook

    try:
        handle = io.BytesIO(path_or_data) if isinstance(path_or_data, bytes) else path_or_data
        wb = load_workbook(handle, read_only=True, data_only=True)
    except OSError as exc:  # not there, a folder, no permission: not a question of format
        raise TableError([Problem(source, None, None,
                                  f"无法读取文件：{os_reason(exc)}")]) from None
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException, …
        raise TableError([Problem(source, None, None,
                                  f"无法打开 Excel 文件（{type(exc).__name__}）：是否为 .xlsx 格式、"
                                  "是否仍在写入？")]) from None
    try:
        _read_cjk_dates(wb)
        sheets = []
        padded = _zero_padded_styles(wb)
        for ws in wb.worksheets:
            if padded:  # cells (slower than bare values) only where a format pads numbers
                lines = tuple((n, tuple(_cell_text(c.value, padded.get(getattr(c, "_style_id",
                                                                              None)))
                                        for c in cells))
                              for n, cells in enumerate(ws.iter_rows(), 1))
            else:
                lines = tuple((n, tuple(_cell_text(v) for v in values))
                              for n, values in enumerate(ws.iter_rows(values_only=True), 1))
            lines = _merged_down(lines, _merged_ranges(ws))
            if any(any(cells) for _, cells in lines):
                name = source if len(wb.worksheets) == 1 else f"{source}[{ws.title}]"
                sheets.append(Sheet(name, lines, ws.title,
                                    hidden=getattr(ws, "sheet_state", "visible") != "visible"))
        return sheets
    finally:
        wb.close()


# `<mergeCell ref="A2:A3"/>` of a worksheet's XML (any namespace prefix)
_MERGE_CELL = re.compile(rb'<(?:[\w.-]+:)?mergeCell\s[^>]*?\bref="\$?([A-Za-z]{1,3})\$?(\d+)'
                         rb':\$?([A-Za-z]{1,3})\$?(\d+)"')
_MERGE_TAIL = 512  # bytes kept from one chunk to the next: a tag cut in two is found whole


def _merged_ranges(ws) -> set[tuple[int, int, int]]:
    """The ranges of merged cells that span several rows, as (column, first row, last row)
    (1-based; a range over several columns by its first one). openpyxl's read-only worksheets
    do not read them (`<mergeCells>`, after the cells in the sheet's XML), so the XML is
    scanned for them: a plain byte search through the decompressed stream, skipping the
    chunks that hold none, which costs little beside parsing the cells."""
    from openpyxl.utils.cell import column_index_from_string

    source = getattr(ws, "_get_source", None)
    if source is None:  # not a read-only worksheet: nothing to scan (not used so)
        return set()
    found: set[tuple[int, int, int]] = set()
    tail = b""
    with source() as stream:
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            data = tail + chunk
            if b"mergeCell" in data:
                for m in _MERGE_CELL.finditer(data):
                    first, last = int(m.group(2)), int(m.group(4))
                    if last > first:
                        found.add((column_index_from_string(m.group(1).decode().upper()),
                                   first, last))
            tail = data[-_MERGE_TAIL:]
    return found


def _merged_down(lines: tuple[tuple[int, tuple[str, ...]], ...],
                 ranges: set[tuple[int, int, int]]) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """A cell merged over several rows read in each row it spans, as the clerk sees it:
    report-style exports (and a clerk tidying a sheet) merge a document's 单号 / 日期 over
    its lines, and the file keeps the value in the first row only. A row of the range with
    nothing of its own stays blank (skipped): the merge only lengthens the document's block.
    A range over several columns is read in its first column, as in its first row."""
    if not ranges:
        return lines
    index = {n: i for i, (n, _) in enumerate(lines)}
    filled: dict[int, list[str]] = {}  # line index → its cells, filled in
    for column, first, last in sorted(ranges):
        at = index.get(first)
        top = lines[at][1] if at is not None else ()
        if column > len(top) or not top[column - 1]:
            continue
        for number in range(first + 1, last + 1):
            i = index.get(number)
            if i is None or not any(lines[i][1]):  # nothing of its own (before any filling)
                continue
            cells = filled.setdefault(i, list(lines[i][1]))
            if len(cells) < column:
                cells.extend([""] * (column - len(cells)))
            if not cells[column - 1]:
                cells[column - 1] = top[column - 1]
    if not filled:
        return lines
    return tuple((n, tuple(filled[i]) if i in filled else cells)
                 for i, (n, cells) in enumerate(lines))


def _refuse_hidden(source: str, sheets: Sequence[Sheet]) -> None:
    """A hidden worksheet with data among the sheets read: the clerk who checked the file in
    Excel never saw its rows, which would count all the same (an old month left in the file)."""
    hidden = [Problem(source, None, None, f"工作表“{s.title}”已隐藏：请删除或取消隐藏后再导入")
              for s in sheets if s.hidden]
    if hidden:
        raise TableError(hidden)


def load_sheets(path: Path | str, *, data: bytes | None = None,
                name: str | None = None) -> list[Sheet]:
    """The sheets of a CSV (one) or XLSX (each non-empty worksheet) file; a workbook with a
    hidden worksheet that holds data is refused (TableError naming it).

    `data` reads bytes instead of the file (e.g. an upload); `name` is how problems name the
    source (default: the file name).
    """
    sheets = _all_sheets(path, data=data, name=name)
    _refuse_hidden(name or Path(path).name, sheets)
    return sheets


def _all_sheets(path: Path | str, *, data: bytes | None, name: str | None) -> list[Sheet]:
    path = Path(path)
    source = name or path.name
    suffix = path.suffix.lower()
    if data is None and path.is_dir():  # whatever its name says
        raise TableError([Problem(source, None, None, "无法读取文件：" + os_reason(
            IsADirectoryError(errno.EISDIR, "is a directory")))])
    if suffix in XLSX_SUFFIXES:
        return _xlsx_sheets(source, data if data is not None else path)
    if suffix in CSV_SUFFIXES:
        if data is None:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise TableError([Problem(source, None, None,
                                          f"无法读取文件：{os_reason(exc)}")]) from None
        return [_csv_sheet(source, data)]
    if suffix == ".xls":
        raise TableError([Problem(source, None, None,
                                  "不支持旧版 .xls 格式，请在 Excel 中另存为 .xlsx 或 CSV")])
    raise TableError([Problem(source, None, None,
                              f"不支持的文件类型「{path.suffix}」（支持 .csv、.xlsx）")])


def read_table(path: Path | str, columns: Sequence[Column], *, sheet: str | None = None,
               data: bytes | None = None, name: str | None = None, unknown: str = "report",
               skip_totals: bool = True) -> Table:
    """One table from a CSV or XLSX file: the named worksheet, or the first non-empty one.
    Refused when the worksheet named, or (none named) any worksheet with data, is hidden."""
    sheets = _all_sheets(path, data=data, name=name)
    source = name or Path(path).name
    if sheet is not None:
        sheets = [s for s in sheets if s.title == sheet]
        if not sheets:
            raise TableError([Problem(source, None, None, f"找不到工作表「{sheet}」或该表为空")])
    _refuse_hidden(source, sheets)
    if not sheets:
        raise TableError([Problem(source, None, None, "文件是空的（没有表头）")])
    return sheets[0].table(columns, unknown=unknown, skip_totals=skip_totals)


def convert_rows(rows: Iterable[Row], convert: Callable[[Row], T],
                 *, max_problems: int = MAX_PROBLEMS) -> list[T]:
    """`convert` every row; raise one TableError listing every bad cell of every row (at most
    `max_problems` listed, the others counted). See `Row` for how a row goes on past a bad
    cell; any other error of a row that already has problems only ends that row."""
    results: list[T] = []
    problems: list[Problem] = []
    for row in rows:
        probe = dataclasses.replace(row, problems=[])
        try:
            result = convert(probe)
        except CellError as exc:  # raised by the converter itself
            probe.fail(exc.column, exc.message)
        except Exception:
            if not probe.problems:
                raise
        if probe.problems:
            problems += probe.problems
        else:
            results.append(result)
    if problems:
        raise TableError(problems[:max_problems], more=max(0, len(problems) - max_problems))
    return results


# --- field parsers ---------------------------------------------------------------------------

_DATE_PATTERNS = (
    re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"),
    re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"),
    re.compile(r"(\d{4})\.(\d{1,2})\.(\d{1,2})"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)
_TIME_OF_DAY = re.compile(r"(.*?)[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?")
_MIDNIGHT = re.compile(r"(.*?)(?:[ T]0?0:00(?::00(?:\.0+)?)?)?")  # Excel CSV: "… 0:00"
_MONEY = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_WHOLE = re.compile(r"([+-]?(?:\d{1,3}(?:,\d{3})+|\d+))(?:\.0*)?")


def no_nul(text: str) -> None:
    """Refuse text holding a NUL character: no database text column keeps it (PostgreSQL
    refuses the row), and nobody typed it (a broken export, a copy from a binary file)."""
    if NUL in text:
        raise CellError("含有空字符（NUL，\\x00），通常是导出或复制出错带入的：请删除该字符"
                        "（或从原系统重新导出）后再导入")


def parse_text(text: str, *, max_length: int | None = None) -> str:
    """A value that must be present (refused when Excel stored it as a number other than a
    whole one below 2**53: an invoice number or code that lost digits), at most `max_length`
    characters (what its database column keeps), without a NUL character."""
    if not text:
        raise CellError("不能为空")
    no_nul(text)
    if isinstance(text, ExcelNumber):
        raise _stored_as_number(text)
    if max_length is not None and len(text) > max_length:
        raise CellError(f"不能超过 {max_length} 个字符（此处 {len(text)} 个）")
    return str(text)


_SCIENTIFIC = re.compile(r"[+-]?\d+(?:\.\d+)?[eE][+-]?\d+")


def parse_code(text: str, *, max_length: int | None = None) -> str:
    """A document number or code (发票号, 回款单号 …): `parse_text`, full-width letters and
    digits made half-width (`ＦＰ－００１` is the FP-001 the finance system writes: one
    document, one key), and refused when it reads `2.4322E+19`, what Excel makes of a long
    number in a CSV it opened and saved again (the digits are lost, and two documents would
    share the number)."""
    value = parse_text(text, max_length=max_length)
    value = value.translate(HALF_WIDTH).strip()
    if _SCIENTIFIC.fullmatch(value.strip()):
        raise CellError(f"编号 {value} 是 Excel 的科学计数法显示，已丢失位数：请从原系统重新导出，"
                        "或在 Excel 中把该列设为“文本”格式后按原单据重新填写")
    return value


def parse_date(text: str, *, time_of_day: bool = False) -> dt.date:
    """2026-10-31, 2026/10/31, 2026.10.31, 2026年10月31日 or 20261031 (a time of exactly
    midnight may follow, as Excel writes dates). `time_of_day`: any local time may follow
    and is dropped (`2026-10-31 14:35:22`, as the tax platform's invoice exports and bank
    receipts write 开票日期 and 到账时间, in Beijing time: the date is the business date)."""
    if not text:
        raise CellError("不能为空")
    body = unicodedata.normalize("NFKC", text).strip()
    if time_of_day:
        m = _TIME_OF_DAY.fullmatch(body)
        if m and int(m.group(2)) < 24 and int(m.group(3)) < 60 and int(m.group(4) or 0) < 60:
            body = m.group(1)
    body = _MIDNIGHT.fullmatch(body).group(1)  # type: ignore[union-attr]
    for pattern in _DATE_PATTERNS:
        m = pattern.fullmatch(body)
        if m:
            try:
                return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                break
    if _EXCEL_SERIAL.fullmatch(body):  # 46392: a date cell saved as a number (General format)
        meant = EXCEL_EPOCH + dt.timedelta(days=int(body))
        raise CellError(f"不是有效日期：{text!r}（像是 Excel 的日期序号，即 {meant}：请把该列设为"
                        "日期格式后再导出，或写作 2026-10-31）")
    raise CellError(f"不是有效日期：{text!r}（应写作 2026-10-31）")


def parse_money(text: str, *, positive: bool = False, allow_zero: bool = True) -> Decimal:
    """Yuan, exact to the fen: `1234.5`, `1,234.50`, `¥1,234.50`, `1,234.50元`, `(1,234.50)`
    (negative, as Excel shows it), also typed in full-width (`１２３４．５０`). Refused: blanks,
    more than two decimals that are not zero, scientific notation (Excel's lossy `1.23E+11`),
    a trillion yuan or more either way (`money_in_range`)."""
    if not text:
        raise CellError("不能为空")
    _exact_number(text)
    body = unicodedata.normalize("NFKC", text).strip()
    if body.endswith("元"):
        body = body[:-1].rstrip()
    sign = ""
    if body[:1] in ("+", "-"):
        sign, body = body[:1], body[1:]
    if body[:1] in ("¥", "￥"):
        body = body[1:].lstrip()
    if not sign and body[:1] == "(" and body[-1:] == ")":
        # a negative as Excel's (1,234.50) formats show it, and save it as CSV
        sign, body = "-", body[1:-1].strip()
        if body[:1] == "¥":
            body = body[1:].lstrip()
    body = sign + body
    if not _MONEY.fullmatch(body):
        raise CellError(f"不是有效金额：{text!r}（应写作 1234.50）")
    try:
        value = Decimal(body.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern already guarantees a number
        raise CellError(f"不是有效金额：{text!r}") from None
    money_in_range(value, text)
    if value != value.quantize(Decimal("0.01")):
        raise CellError(f"金额须精确到分：{text!r}")
    value = value.quantize(Decimal("0.01"))
    if positive and value <= 0:
        raise CellError(f"金额须大于零：{text!r}")
    if not allow_zero and value == 0:
        raise CellError("金额不能为零")
    return value


def money_in_range(value: Decimal, text: str | None = None) -> Decimal:
    """`value`, refused when its absolute value is a trillion yuan or more: beyond what an
    amount column (Numeric(14, 2)) keeps — a typo, or a number that is not an amount."""
    if abs(value) >= MONEY_LIMIT:
        said = repr(text) if text is not None else str(value)
        raise CellError(f"金额超出可登记的范围：{said}（绝对值须小于 1,000,000,000,000.00 元）")
    return value


def parse_int(text: str, *, minimum: int | None = None, maximum: int = INT_MAX) -> int:
    """A whole number (`12`, `1,200`, also in full-width; Excel's `12.0` is read as 12 already;
    `3.00` too: ERP exports write quantities with their unit's precision), at most `maximum`
    (default: what an INTEGER column keeps; without `minimum`, at least -`maximum`)."""
    if not text:
        raise CellError("不能为空")
    _exact_number(text)
    body = unicodedata.normalize("NFKC", text).strip()
    # commas only as thousands separators (1,200): "1,0" is a decimal comma, never 10
    m = _WHOLE.fullmatch(body)
    if not m:
        raise CellError(f"不是整数：{text!r}（应写作 1200 或 1,200）")
    value = int(m.group(1).replace(",", ""))
    if minimum is not None and value < minimum:
        raise CellError(f"不能小于 {minimum}：{text!r}")
    if value > maximum:
        raise CellError(f"不能大于 {maximum:,}：{text!r}")
    if minimum is None and value < -maximum:
        raise CellError(f"不能小于 {-maximum:,}：{text!r}")
    return value


# --- writing -------------------------------------------------------------------------------

# One number format per kind of figure in every workbook the hub writes for people.
MONEY_FORMAT = "#,##0.00"
RATE_FORMAT = "0.00##%"  # 5.00% … 5.4321%, 1.50%: rates carry at most 4 decimals of a percent


def append_as_text(ws, values) -> None:
    """A worksheet row (openpyxl) whose text that begins with "=" (a clause, a name, a value
    imported as typed) stays text: openpyxl stores such a string as a formula, which Excel
    evaluates when the file is opened (`=HYPERLINK(…)`)."""
    values = list(values)
    ws.append(values)
    if any(isinstance(v, str) and v.startswith("=") for v in values):
        for cell in ws[ws.max_row]:
            if cell.data_type == "f":
                cell.data_type = "s"
