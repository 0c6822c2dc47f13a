"""A small streaming XLSX writer for plain workbooks: rows of values, a few cell styles (number
format, bold, a solid fill), column widths and frozen panes.

openpyxl builds a cell object per value and binds its style one cell at a time, which costs
seconds for a few thousand rows of an import sheet. This writes each row straight to XML text
in the zip, with the styles registered once per distinct style. The package has the parts
openpyxl wrote (content types, relationships, workbook, sheets, styles, the Office theme,
document properties), and reads back in openpyxl as openpyxl's own write-only output of the
same rows did: the same values and types, number formats, heading fonts and fills, widths and
freeze panes (tests/unit/test_xlsx_writer.py compares the two).

Values: None and "" (an empty cell, written only when it carries a style), str (an inline
string, never a formula: text that begins with "=" stays text), bool, int, float and Decimal
(numbers, written as openpyxl writes them, 16 significant digits), date and naive datetime
(date serials under a date format; "yyyy-mm-dd" when the cell's own format is General). Text
loses the characters XML cannot carry (control characters but tab, CR and LF; lone
surrogates) and is cut at Excel's 32,767 characters."""
from __future__ import annotations

import datetime as dt
import math
import os
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, BinaryIO

__all__ = ["Column", "Sheet", "Style", "Styled", "Workbook", "clean_text", "column_letter",
           "write_workbook"]

GENERAL = "General"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd h:mm:ss"
MAX_TEXT = 32767  # Excel's limit for one cell's text

# the number formats Excel knows by id (ECMA-376 18.8.30); others are declared from 164 on
_BUILTIN_FORMATS = {"General": 0, "0": 1, "0.00": 2, "#,##0": 3, "#,##0.00": 4, "0%": 9,
                    "0.00%": 10, "0.00E+00": 11, "mm-dd-yy": 14, "d-mmm-yy": 15, "h:mm": 20,
                    "h:mm:ss": 21, "m/d/yy h:mm": 22, "@": 49}
# XML 1.0 characters: tab, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD, U+10000 and up
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ATTR_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                               "\r": "&#13;", "\n": "&#10;", "\t": "&#9;"})
_BAD_SHEET_TITLE = re.compile(r"[\\/?*\[\]:]")
_CELL_REF = re.compile(r"([A-Z]{1,3})([1-9][0-9]{0,6})")
_EPOCH = dt.datetime(1899, 12, 30)  # Excel's 1900 date system, as openpyxl writes it

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


@dataclass(frozen=True)
class Style:
    """A cell's look: a number format (openpyxl's spelling: "@", "#,##0.00", "yyyy-mm-dd"),
    bold or not, and a solid fill colour ("DDDDDD" or with alpha "FFDDDDDD")."""

    number_format: str = GENERAL
    bold: bool = False
    fill: str | None = None


@dataclass(frozen=True)
class Styled:
    """A value with a style of its own (a heading), in place of its column's style."""

    value: Any
    style: Style


@dataclass(frozen=True)
class Column:
    """A column's width (None: Excel's default) and the style of its plain values. A styled
    column writes its empty cells too, styled, so that what a person types there later takes
    the format (a code typed into a text column stays text)."""

    width: float | None = None
    style: Style | None = None


@dataclass(frozen=True)
class Sheet:
    """A worksheet: its title, rows of values (any iterable, consumed once while writing),
    its columns from A on, and the top-left cell of the scrolling part ("A3": rows 1–2 stay)."""

    title: str
    rows: Iterable[Sequence[Any]]
    columns: Sequence[Column] = ()
    freeze: str | None = None


@dataclass(frozen=True)
class Workbook:
    """Sheets to save as one .xlsx (rows given as lists can be saved more than once)."""

    sheets: Sequence[Sheet]
    creator: str = "salesops-hub"

    def save(self, target: BinaryIO | str | os.PathLike) -> None:
        """Write the workbook to a binary file object, or to a path."""
        if isinstance(target, (str, os.PathLike)):
            with open(target, "wb") as fh:
                write_workbook(fh, self.sheets, creator=self.creator)
        else:
            write_workbook(target, self.sheets, creator=self.creator)


def column_letter(index: int) -> str:
    """1 → "A", 28 → "AB"."""
    if not 1 <= index <= 16384:
        raise ValueError(f"column {index} is outside A…XFD")
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def clean_text(text: str) -> str:
    """The text as a cell can hold it: without characters XML cannot carry, at most 32,767
    characters."""
    if _ILLEGAL.search(text):
        text = _ILLEGAL.sub("", text)
    return text[:MAX_TEXT]


def _text_xml(text: str) -> str | None:
    """An inline string cell's XML after its reference and style; None for no text."""
    text = clean_text(text)
    if not text:
        return None
    space = ' xml:space="preserve"' if text != text.strip() else ""
    return f' t="inlineStr"><is><t{space}>{_escape(text)}</t></is></c>'


def _escape(text: str) -> str:
    # str.translate is slow on non-Latin text; most text has nothing to escape
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:  # a parser reads a bare CR as LF
        text = text.replace("\r", "&#13;")
    return text


def _attr(text: str) -> str:
    return clean_text(text).translate(_ATTR_ESCAPES)


def _number(value: float | Decimal) -> str:
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a number a cell can hold")
    return "%.16g" % value  # noqa: UP031 -- as openpyxl writes numbers (a Decimal: its float)


def _serial(value: dt.date) -> str:
    """Excel's serial number of a date or naive datetime (1900 date system)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise ValueError(f"{value!r}: a cell holds no time zone; convert it first")
        moment = value
    else:
        moment = dt.datetime(value.year, value.month, value.day)
    delta = moment - _EPOCH
    days = delta.days
    if 0 < days <= 60:  # before 1900-03-01: Excel counts a 29 February 1900 that never was
        days -= 1
    fraction = delta.seconds + delta.microseconds / 1_000_000
    return _number(days + fraction / 86400 if fraction else days)


class _Styles:
    """The workbook's cell formats (cellXfs), one per distinct Style, numbered as first used.
    Index 0 is the default look."""

    def __init__(self) -> None:
        self.ids: dict[Style, int] = {Style(): 0}
        self.formats: dict[str, int] = {}   # custom number formats → numFmtId
        self.fills: dict[str, int] = {}     # solid fill ARGB → fillId (0, 1 are reserved)

    def style(self, style_id: int) -> Style:
        return list(self.ids)[style_id]

    def id(self, style: Style | None) -> int:
        if style is None:
            return 0
        found = self.ids.get(style)
        if found is None:
            found = self.ids[style] = len(self.ids)
            if style.number_format not in _BUILTIN_FORMATS:
                self.formats.setdefault(style.number_format, 164 + len(self.formats))
            if style.fill:
                self.fills.setdefault(_argb(style.fill), 2 + len(self.fills))
        return found

    def xml(self) -> str:
        formats = "".join(f'<numFmt numFmtId="{n}" formatCode="{_attr(code)}"/>'
                          for code, n in self.formats.items())
        fills = "".join(f'<fill><patternFill patternType="solid"><fgColor rgb="{argb}"/>'
                        "</patternFill></fill>" for argb in self.fills)
        xfs = []
        for style in self.ids:
            fmt = _BUILTIN_FORMATS.get(style.number_format) \
                if style.number_format in _BUILTIN_FORMATS else self.formats[style.number_format]
            fill = self.fills[_argb(style.fill)] if style.fill else 0
            font = 1 if style.bold else 0
            applied = "".join((' applyNumberFormat="1"' if fmt else "",
                               ' applyFont="1"' if font else "",
                               ' applyFill="1"' if fill else ""))
            xfs.append(f'<xf numFmtId="{fmt}" fontId="{font}" fillId="{fill}" borderId="0" '
                       f'xfId="0"{applied}/>')
        return (
            f'{_DECLARATION}<styleSheet xmlns="{_MAIN}">'
            + (f'<numFmts count="{len(self.formats)}">{formats}</numFmts>' if formats else "")
            # the default font as openpyxl (and Excel) declare it; bold alone for headings
            + '<fonts count="2"><font><name val="Calibri"/><family val="2"/><color theme="1"/>'
            '<sz val="11"/><scheme val="minor"/></font><font><b val="1"/></font></fonts>'
            f'<fills count="{2 + len(self.fills)}"><fill><patternFill/></fill>'
            f'<fill><patternFill patternType="gray125"/></fill>{fills}</fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
            '</borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
            f'borderId="0"/></cellStyleXfs><cellXfs count="{len(xfs)}">{"".join(xfs)}'
            '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
            '</cellStyles><dxfs count="0"/><tableStyles count="0" '
            'defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/>'
            '</styleSheet>')


def _argb(colour: str) -> str:
    colour = colour.upper().lstrip("#")
    if not re.fullmatch(r"[0-9A-F]{6}|[0-9A-F]{8}", colour):
        raise ValueError(f"fill colour {colour!r} is not RRGGBB or AARRGGBB")
    return colour if len(colour) == 8 else "00" + colour  # openpyxl's reading of RRGGBB


def _check_title(title: str, seen: set[str]) -> None:
    # Excel refuses these titles, and opens a file holding one as damaged
    if not title or len(title) > 31 or _BAD_SHEET_TITLE.search(title) or _ILLEGAL.search(title) \
            or title.startswith("'") or title.endswith("'") or title.casefold() in seen:
        raise ValueError(f"{title!r} cannot name a worksheet (1–31 characters, none of "
                         "\\ / ? * [ ] :, no quote at either end, unique in the workbook)")
    seen.add(title.casefold())


def _pane(freeze: str) -> str:
    """The sheetView content that freezes the rows above and the columns left of `freeze`."""
    m = _CELL_REF.fullmatch(freeze)
    if not m:
        raise ValueError(f"freeze {freeze!r} is not a cell reference such as A3")
    letters, row = m.group(1), int(m.group(2))
    col = 0
    for ch in letters:
        col = col * 26 + ord(ch) - 64
    if col == 1 and row == 1:
        return ""
    split = ((f' xSplit="{col - 1}"' if col > 1 else "")
             + (f' ySplit="{row - 1}"' if row > 1 else ""))
    panes = (["topRight", "bottomLeft", "bottomRight"] if col > 1 and row > 1
             else ["bottomLeft"] if row > 1 else ["topRight"])
    selections = "".join(f'<selection pane="{p}" activeCell="{freeze}" sqref="{freeze}"/>'
                         for p in panes)
    return (f'<pane{split} topLeftCell="{freeze}" activePane="{panes[-1]}" state="frozen"/>'
            + selections)


class _Cells:
    """Cell XML for one sheet. The row loop in `_sheet_rows` writes the common cells (text,
    numbers, blanks in the column's style) itself; the rest (a Styled value, a date, a bool,
    a subclass of str or int) comes here."""

    def __init__(self, title: str, styles: _Styles) -> None:
        self.title = title
        self.styles = styles
        self.texts: dict[str, str | None] = {}  # text → its cell's XML after the style
        # (style, a datetime?) → the style with a date format
        self.dates: dict[tuple[int, bool], int] = {}
        self.serials: dict[dt.date, str] = {}

    def text(self, value: str) -> str | None:
        xml = self.texts.get(value)
        if xml is None and value not in self.texts:
            xml = self.texts[value] = _text_xml(value)
        return xml

    def other(self, ref: str, value: Any, sid: int, number: int) -> str | None:
        """`ref` is '<c r="B7'; None for a cell not written (empty, without a style)."""
        if type(value) is Styled:
            sid = self.styles.id(value.style)
            value = value.value
        if isinstance(value, str):
            xml = self.text(value)
            if xml is not None:
                return f'{ref}" s="{sid}"{xml}' if sid else f'{ref}"{xml}'
            value = None  # "" is no text: an empty cell
        if value is None:
            return f'{ref}" s="{sid}"/>' if sid else None
        s = f' s="{sid}"' if sid else ""
        if isinstance(value, bool):
            return f'{ref}"{s} t="b"><v>{int(value)}</v></c>'
        if isinstance(value, (int, float, Decimal)):
            return f'{ref}"{s}><v>{_number(value)}</v></c>'
        if isinstance(value, dt.date):
            stamp = isinstance(value, dt.datetime)
            did = self.dates.get((sid, stamp))
            if did is None:
                style = self.styles.style(sid)
                did = self.dates[sid, stamp] = self.styles.id(replace(
                    style, number_format=DATETIME_FORMAT if stamp else DATE_FORMAT)) \
                    if style.number_format == GENERAL else sid
            serial = self.serials.get(value)
            if serial is None:
                serial = self.serials[value] = _serial(value)
            return f'{ref}" s="{did}"><v>{serial}</v></c>'
        raise TypeError(f"{self.title!r} row {number}: a cell cannot hold {value!r} "
                        f"({type(value).__name__})")


def _sheet_rows(out: BinaryIO, sheet: Sheet, styles: _Styles) -> None:
    """Stream the sheet's rows as XML into `out`, a few hundred rows per write."""
    cells = _Cells(sheet.title, styles)
    column_ids = [styles.id(c.style) for c in sheet.columns]
    heads = [f'<c r="{column_letter(i)}' for i in range(1, len(column_ids) + 1)]
    closes = [f'" s="{sid}"' if sid else '"' for sid in column_ids]  # ends the reference
    texts = cells.texts
    numbers = (int, Decimal, float)
    numerals: dict[int | Decimal | float, str] = {}  # equal numbers write the same text
    chunk: list[str] = []
    for number, row in enumerate(sheet.rows, start=1):
        r = str(number)
        if len(row) > len(heads):
            column_ids += [0] * (len(row) - len(heads))
            heads += [f'<c r="{column_letter(i)}' for i in range(len(heads) + 1, len(row) + 1)]
            closes += ['"'] * (len(row) - len(closes))
        parts = [f'<row r="{r}">']
        for value, head, close, sid in zip(row, heads, closes, column_ids):
            kind = type(value)
            if kind is str:
                xml = texts.get(value)
                if xml is None and value not in texts:
                    xml = texts[value] = _text_xml(value)
                if xml is not None:
                    parts.append(f"{head}{r}{close}{xml}")
                elif sid:  # "" is no text: an empty cell, as Excel has it
                    parts.append(f"{head}{r}{close}/>")
                continue
            if value is None:
                if sid:
                    parts.append(f"{head}{r}{close}/>")
                continue
            if kind in numbers:
                # an amount comes back in the same voucher, a year or a count in every row
                text = numerals.get(value)
                if text is None:
                    text = numerals[value] = "%.16g" % value  # noqa: UP031 -- as openpyxl
                    if text[-1] in "nf":  # nan, inf
                        raise ValueError(f"{sheet.title!r} row {number}: {value!r} is not a "
                                         "number a cell can hold")
                parts.append(f"{head}{r}{close}><v>{text}</v></c>")
                continue
            xml = cells.other(f"{head}{r}", value, sid, number)
            if xml is not None:
                parts.append(xml)
        parts.append("</row>")
        chunk.append("".join(parts))
        if len(chunk) >= 256:
            out.write("".join(chunk).encode("utf-8"))
            chunk.clear()
    if chunk:
        out.write("".join(chunk).encode("utf-8"))


def _write_sheet(zf: zipfile.ZipFile, name: str, sheet: Sheet, styles: _Styles) -> None:
    view = _pane(sheet.freeze) if sheet.freeze else ""
    cols = "".join(f'<col min="{i}" max="{i}" width="{c.width:g}" customWidth="1"/>'
                   for i, c in enumerate(sheet.columns, start=1) if c.width is not None)
    with zf.open(name, "w") as out:
        out.write((
            f'{_DECLARATION}<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}">'
            f'<sheetViews><sheetView workbookViewId="0">{view}</sheetView></sheetViews>'
            '<sheetFormatPr baseColWidth="8" defaultRowHeight="15"/>'
            + (f"<cols>{cols}</cols>" if cols else "") + "<sheetData>").encode("utf-8"))
        _sheet_rows(out, sheet, styles)
        out.write(b'</sheetData><pageMargins left="0.75" right="0.75" top="1" bottom="1" '
                  b'header="0.5" footer="0.5"/></worksheet>')


def write_workbook(fh: BinaryIO, sheets: Sequence[Sheet], *, creator: str = "salesops-hub",
                   created: dt.datetime | None = None) -> None:
    """Write the sheets as one .xlsx package to the binary file `fh`."""
    if not sheets:
        raise ValueError("a workbook needs at least one sheet")
    seen: set[str] = set()
    for sheet in sheets:
        _check_title(sheet.title, seen)
    # the Office theme (as openpyxl ships it) that the default font refers to
    from openpyxl.writer.theme import theme_xml

    created = (created or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    stamp = f"{created:%Y-%m-%dT%H:%M:%SZ}"
    count = len(sheets)
    sheet_types = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for n in range(1, count + 1))
    parts = {
        "[Content_Types].xml": (
            f'{_DECLARATION}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.'
            'openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.'
            f'main+xml"/>{sheet_types}<Override PartName="/xl/styles.xml" ContentType='
            '"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            '<Override PartName="/xl/theme/theme1.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.theme+xml"/><Override PartName="/docProps/core.xml" '
            'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
            '<Override PartName="/docProps/app.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.extended-properties+xml"/></Types>'),
        "_rels/.rels": (
            f'{_DECLARATION}<Relationships xmlns="{_PKG_REL}">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
            f'<Relationship Id="rId2" Type="{_PKG_REL}/metadata/core-properties" '
            'Target="docProps/core.xml"/>'
            f'<Relationship Id="rId3" Type="{_REL}/extended-properties" '
            'Target="docProps/app.xml"/></Relationships>'),
        "docProps/app.xml": (
            f'{_DECLARATION}<Properties xmlns="http://schemas.openxmlformats.org/'
            'officeDocument/2006/extended-properties"><Application>Microsoft Excel</Application>'
            '</Properties>'),
        "docProps/core.xml": (
            f'{_DECLARATION}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/'
            'package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'<dc:creator>{_attr(creator)}</dc:creator>'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified>'
            '</cp:coreProperties>'),
        "xl/workbook.xml": (
            f'{_DECLARATION}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><workbookPr/>'
            '<bookViews><workbookView activeTab="0"/></bookViews><sheets>'
            + "".join(f'<sheet name="{_attr(s.title)}" sheetId="{n}" r:id="rId{n}"/>'
                      for n, s in enumerate(sheets, start=1))
            + '</sheets><calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            f'{_DECLARATION}<Relationships xmlns="{_PKG_REL}">'
            + "".join(f'<Relationship Id="rId{n}" Type="{_REL}/worksheet" '
                      f'Target="worksheets/sheet{n}.xml"/>' for n in range(1, count + 1))
            + f'<Relationship Id="rId{count + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
            f'<Relationship Id="rId{count + 2}" Type="{_REL}/theme" '
            'Target="theme/theme1.xml"/></Relationships>'),
        "xl/theme/theme1.xml": theme_xml,
    }
    styles = _Styles()
    # the fastest deflate: a third of the time of the default level for a file a third
    # larger, which no reader minds
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, text in parts.items():
            zf.writestr(name, text.encode("utf-8"))
        for n, sheet in enumerate(sheets, start=1):
            _write_sheet(zf, f"xl/worksheets/sheet{n}.xml", sheet, styles)
        # last: the sheets registered the styles their cells use
        zf.writestr("xl/styles.xml", styles.xml().encode("utf-8"))
