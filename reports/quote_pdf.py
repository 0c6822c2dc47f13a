"""Quote PDF (报价单): one A4 document per quote, in Simplified Chinese.

Built with reportlab platypus so long quotes flow onto extra pages with the
table header repeated. Money is Decimal throughout. Output is deterministic for
a given document (reportlab "invariant" mode, creation date = issue date), so the
returned SHA-256 identifies the content and a re-render yields the same hash.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from models.base import to_money
from models.money import capital_amount
from models.quoting import line_amount, line_tax
from reports.fonts import (
    CJK_FONT_NAME,
    LATIN_FONT_NAME,
    draw_string,
    markup,
    register_fonts,
    string_width,
)


__all__ = [
    "QuoteDocument",
    "QuoteLine",
    "format_date",
    "format_money",
    "format_rate",
    "quote_pdf_bytes",
    "render_quote_pdf",
]


# --------------------------------------------------------------------------- data


def _require_decimal(name: str, value) -> None:
    # Floats silently carry binary rounding errors into invoices; refuse them.
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be Decimal, got {type(value).__name__}")


@dataclass(frozen=True)
class QuoteLine:
    model: str
    name: str
    quantity: int
    unit: str
    unit_price: Decimal  # tax included
    tax_rate: Decimal  # e.g. Decimal("0.13")

    def __post_init__(self) -> None:
        _require_decimal("unit_price", self.unit_price)
        _require_decimal("tax_rate", self.tax_rate)
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise TypeError("quantity must be int")
        if self.tax_rate < 0:
            raise ValueError("tax_rate must not be negative")

    @property
    def amount(self) -> Decimal:
        """Line total, tax included, rounded to fen half up."""
        return line_amount(self.unit_price, self.quantity)

    @property
    def tax(self) -> Decimal:
        """VAT contained in the tax-included amount."""
        return line_tax(self.amount, self.tax_rate)


@dataclass(frozen=True)
class QuoteDocument:
    code: str
    issued_on: date
    valid_until: date
    seller_name: str
    seller_uscc: str
    seller_address: str
    seller_phone: str
    seller_bank: str
    customer_legal_name: str
    customer_uscc: str | None
    contact_name: str | None
    contact_phone: str | None
    rep_name: str | None
    lines: tuple[QuoteLine, ...]
    signing_url: str
    wanted_delivery_date: date | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        # Accept any iterable but store a tuple so the document stays hashable/immutable.
        if not isinstance(self.lines, tuple):
            object.__setattr__(self, "lines", tuple(self.lines))
        if not self.lines:
            raise ValueError("a quote needs at least one line")

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def tax_total(self) -> Decimal:
        # Sum of per-line tax, as on the VAT invoice, so the figures reconcile.
        return sum((line.tax for line in self.lines), Decimal("0.00"))


# --------------------------------------------------------------------- formatting


def format_money(value: Decimal, *, symbol: bool = False) -> str:
    """Decimal → '12,345.60' (or '¥12,345.60'); sign in front of the symbol."""
    q = to_money(value)
    text = f"{abs(q):,.2f}"
    if symbol:
        text = "¥" + text
    return ("-" + text) if q < 0 else text


def format_rate(rate: Decimal) -> str:
    """Decimal('0.13') → '13%', Decimal('0.065') → '6.5%'."""
    pct = (rate * 100).normalize()
    return f"{pct:f}%"


def format_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


# ------------------------------------------------------------------------ layout

PAGE_W, PAGE_H = A4
MARGIN_X = 15 * mm
MARGIN_TOP = 14 * mm
MARGIN_BOTTOM = 18 * mm
CONTENT_W = PAGE_W - 2 * MARGIN_X

INK = colors.HexColor("#1A1A1A")
MUTED = colors.HexColor("#5F6368")
ACCENT = colors.HexColor("#1F3A5F")
RULE = colors.HexColor("#B8C2CC")
ZEBRA = colors.HexColor("#F4F6F8")
TOTAL_BG = colors.HexColor("#E8EDF2")

# The table's column widths (mm); 品名 takes what is left.
_COLS_MM = {"no": 9, "model": 25, "qty": 14, "unit": 10, "price": 23, "amount": 26, "rate": 11, "tax": 22}
_NAME_W = CONTENT_W - sum(_COLS_MM.values()) * mm
COL_WIDTHS = [
    _COLS_MM["no"] * mm, _COLS_MM["model"] * mm, _NAME_W, _COLS_MM["qty"] * mm,
    _COLS_MM["unit"] * mm, _COLS_MM["price"] * mm, _COLS_MM["amount"] * mm,
    _COLS_MM["rate"] * mm, _COLS_MM["tax"] * mm,
]
HEADERS = ("序号", "型号", "品名", "数量", "单位", "含税单价", "金额", "税率", "税额")


def _style(name: str, size: float, *, leading: float | None = None, align=TA_LEFT,
           color=INK) -> ParagraphStyle:
    return ParagraphStyle(
        name, fontName=CJK_FONT_NAME, fontSize=size, leading=leading or size * 1.38,
        alignment=align, textColor=color, wordWrap="CJK",  # CJK has no spaces to break at
    )


S_SELLER_INFO = _style("seller_info", 8.5, align=TA_CENTER, color=MUTED)
S_LABEL = _style("label", 9, color=MUTED)
S_VALUE = _style("value", 9.5)
S_CELL = _style("cell", 8.5, leading=11)
S_CELL_C = _style("cell_c", 8.5, leading=11, align=TA_CENTER)
S_NUM = _style("num", 8.5, leading=11, align=TA_RIGHT)
S_NUM_C = _style("num_c", 8.5, leading=11, align=TA_CENTER)
S_HEAD = _style("head", 8.5, leading=11, align=TA_CENTER, color=colors.white)
S_BODY = _style("body", 9, leading=13)
S_SMALL = _style("small", 8, leading=11, color=MUTED)
S_QR_CAPTION = _style("qr_caption", 9, align=TA_CENTER)
S_URL = _style("url", 6, leading=7.5, align=TA_CENTER, color=MUTED)
S_SECTION = _style("section", 9.5, leading=13, color=ACCENT)


class _Text(Flowable):
    """Mixed CJK/Latin text. A line that fits is drawn directly; only text that
    needs wrapping pays for a Paragraph (parsing + CJK line breaking is the
    dominant cost of a render otherwise)."""

    _ANCHOR = {TA_LEFT: "left", TA_CENTER: "centre", TA_RIGHT: "right"}

    def __init__(self, text: str, style: ParagraphStyle, *, bold_latin: bool = False,
                 shrink: bool = False) -> None:
        super().__init__()
        self.text, self.style, self.bold, self.shrink = text, style, bold_latin, shrink
        self._para: Paragraph | None = None
        self.size = style.fontSize

    def wrap(self, avail_w, avail_h):
        st = self.style
        if "\n" not in self.text:
            natural = string_width(self.text, st.fontSize, bold=self.bold)
            fit = 1.0 if natural <= avail_w else avail_w / natural
            # Numbers must never wrap mid-figure: shrink them (down to 60 %) instead.
            if fit == 1.0 or (self.shrink and fit >= 0.6):
                self._para = None
                self.size = st.fontSize * fit
                self.width, self.height = avail_w, st.leading
                return self.width, self.height
        if self._para is None:
            lines = self.text.splitlines() or [""]
            self._para = Paragraph("<br/>".join(markup(x, bold=self.bold) for x in lines), st)
        self.width, self.height = self._para.wrap(avail_w, avail_h)
        return self.width, self.height

    def draw(self):
        if self._para is not None:
            self._para.drawOn(self.canv, 0, 0)
            return
        st = self.style
        anchor = self._ANCHOR.get(st.alignment, "left")
        x = {"left": 0, "centre": self.width / 2, "right": self.width}[anchor]
        self.canv.setFillColor(st.textColor)
        # Same first baseline as a Paragraph would use, so both kinds line up.
        draw_string(self.canv, x, self.height - st.fontSize, self.text, self.size,
                    anchor=anchor, bold=self.bold)


def _p(text: str, style: ParagraphStyle, *, bold_latin: bool = False) -> Flowable:
    return _Text(text, style, bold_latin=bold_latin)


def _num(text: str, style: ParagraphStyle | None = None, *, bold: bool = False) -> Flowable:
    return _Text(text, style or S_NUM, bold_latin=bold, shrink=True)


class _HeavyLine(Flowable):
    """A single centred line of heavy text. The CJK font has no bold face, so
    glyphs are filled and stroked (PDF text render mode 2) to thicken them."""

    def __init__(self, text: str, size: float, *, color=INK, weight: float = 0.5) -> None:
        super().__init__()
        self.text, self.size, self.color, self.weight = text, size, color, weight

    def wrap(self, avail_w, avail_h):
        self.width = avail_w
        # Shrink rather than overflow the margin for an unusually long name.
        natural = string_width(self.text, self.size, bold=True)
        self.draw_size = self.size * min(1.0, avail_w / natural) if natural else self.size
        return avail_w, self.draw_size * 1.3

    def draw(self):
        c = self.canv
        c.saveState()
        c.setFillColor(self.color)
        c.setStrokeColor(self.color)
        c.setLineWidth(self.weight * self.draw_size / self.size)
        draw_string(c, self.width / 2, self.draw_size * 0.28, self.text, self.draw_size,
                    anchor="centre", bold=True, render_mode=2)
        c.restoreState()


class _Rule(Flowable):
    def __init__(self, width: float = 0.8, color=ACCENT, gap: float = 0) -> None:
        super().__init__()
        self.lw, self.color, self.gap = width, color, gap

    def wrap(self, avail_w, avail_h):
        self.width = avail_w
        return avail_w, self.lw + self.gap

    def draw(self):
        self.canv.setStrokeColor(self.color)
        self.canv.setLineWidth(self.lw)
        self.canv.line(0, self.gap / 2, self.width, self.gap / 2)


class _QrCode(Flowable):
    """QR code from reportlab's own QrCodeWidget encoder, painted as one filled path.

    Rendering the widget through reportlab.graphics builds and validates one
    Rect shape per module (~25 ms a quote); a single path draws the same modules
    in well under 1 ms, which matters when 1,000 quotes render in a burst.
    """

    QUIET_ZONE = 2  # modules; the white cell around it completes the quiet zone

    def __init__(self, value: str, size: float) -> None:
        super().__init__()
        # Level M survives a smudged print; best mask chosen by the encoder.
        widget = QrCodeWidget(value, barLevel="M")
        widget.qr.make()
        self.modules = widget.qr.modules
        self.size = size
        self.hAlign = "CENTER"

    def wrap(self, avail_w, avail_h):
        return self.size, self.size

    def draw(self):
        n = len(self.modules)
        box = self.size / (n + 2 * self.QUIET_ZONE)
        path = self.canv.beginPath()
        for r, row in enumerate(self.modules):
            y = self.size - (r + self.QUIET_ZONE + 1) * box
            c = 0
            for dark, run in itertools.groupby(row):
                count = sum(1 for _ in run)
                if dark:
                    path.rect((c + self.QUIET_ZONE) * box, y, count * box, box)
                c += count
        self.canv.setFillColor(colors.black)
        self.canv.drawPath(path, stroke=0, fill=1)


def _header(doc: QuoteDocument) -> list[Flowable]:
    seller_info = "　".join([
        f"统一社会信用代码：{doc.seller_uscc}",
        f"电话：{doc.seller_phone}",
    ])
    return [
        _HeavyLine(doc.seller_name, 15, color=ACCENT, weight=0.35),
        Spacer(0, 1.5 * mm),
        _p(f"地址：{doc.seller_address}", S_SELLER_INFO),
        _p(seller_info, S_SELLER_INFO),
        Spacer(0, 2.5 * mm),
        _Rule(1.2, ACCENT),
        Spacer(0, 1 * mm),
        _Rule(0.4, ACCENT),
        Spacer(0, 4 * mm),
        _HeavyLine("报价单", 22, weight=0.6),
        Spacer(0, 4 * mm),
    ]


def _info_table(doc: QuoteDocument) -> Table:
    contact = "　".join(x for x in (doc.contact_name, doc.contact_phone) if x) or "—"
    rows: list[list] = [
        [_p("报价单号", S_LABEL), _p(doc.code, S_VALUE, bold_latin=True),
         _p("报价日期", S_LABEL), _p(format_date(doc.issued_on), S_VALUE)],
        [_p("客户名称", S_LABEL), _p(doc.customer_legal_name, S_VALUE), "", ""],
    ]
    spans = [("SPAN", (1, 1), (3, 1))]
    if doc.customer_uscc:
        rows.append([_p("统一社会信用代码", S_LABEL), _p(doc.customer_uscc, S_VALUE), "", ""])
        spans.append(("SPAN", (1, len(rows) - 1), (3, len(rows) - 1)))
    rows.append([_p("联系人", S_LABEL), _p(contact, S_VALUE),
                 _p("销售代表", S_LABEL), _p(doc.rep_name or "—", S_VALUE)])
    label_w, value_w = 30 * mm, CONTENT_W / 2 - 30 * mm
    table = Table(rows, colWidths=[label_w, value_w, label_w - 8 * mm, value_w + 8 * mm])
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), LATIN_FONT_NAME),  # string cells default to Helvetica
        *spans,
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LINEBELOW", (0, 0), (-1, -1), 0.3, RULE),
    ]))
    return table


def _lines_table(doc: QuoteDocument) -> Table:
    data: list[list] = [[_p(h, S_HEAD) for h in HEADERS]]
    for i, line in enumerate(doc.lines, start=1):
        data.append([
            _num(str(i), S_NUM_C),
            _p(line.model, S_CELL),
            _p(line.name, S_CELL),
            _num(f"{line.quantity:,}"),
            _p(line.unit, S_CELL_C),
            _num(format_money(line.unit_price)),
            _num(format_money(line.amount)),
            _num(format_rate(line.tax_rate), S_NUM_C),
            _num(format_money(line.tax)),
        ])
    n = len(data)
    data.append([_p("合计", S_CELL_C), "", "", "", "", "",
                 _num(format_money(doc.total), bold=True), "",
                 _num(format_money(doc.tax_total), bold=True)])
    style = [
        ("FONTNAME", (0, 0), (-1, -1), LATIN_FONT_NAME),  # string cells default to Helvetica
        ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ("GRID", (0, 0), (-1, -1), 0.4, RULE),
        ("BOX", (0, 0), (-1, -1), 0.8, ACCENT),
        ("SPAN", (0, n), (5, n)),
        ("BACKGROUND", (0, n), (-1, n), TOTAL_BG),
        ("LINEABOVE", (0, n), (-1, n), 0.8, ACCENT),
    ]
    style += [("BACKGROUND", (0, r), (-1, r), ZEBRA) for r in range(2, n, 2)]
    return Table(data, colWidths=COL_WIDTHS, repeatRows=1, style=TableStyle(style))


def _totals(doc: QuoteDocument) -> Table:
    total = doc.total
    rows = [[
        _p("合计金额（大写）", S_LABEL), _p(capital_amount(total), S_VALUE),
        _p("合计金额（小写）", S_LABEL), _num(format_money(total, symbol=True), S_VALUE, bold=True),
    ]]
    table = Table(rows, colWidths=[29 * mm, CONTENT_W - 29 * mm - 29 * mm - 38 * mm, 29 * mm, 38 * mm])
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), LATIN_FONT_NAME),  # string cells default to Helvetica
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("BOX", (0, 0), (-1, -1), 0.8, ACCENT),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 4),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
    ]))
    return table


QUOTE_TERMS = (
    "以上价格为人民币含税价，税率见明细，可开具增值税专用发票。",
    "交货期、运输方式及付款方式以双方签订的合同为准。",
    "扫描右侧二维码可在线查看并签署本报价，签署后即作为订货依据。",
)


def _closing(doc: QuoteDocument) -> Table:
    left: list[Flowable] = [
        _p(f"本报价有效期至 {format_date(doc.valid_until)}，逾期请重新询价。", S_BODY),
    ]
    if doc.wanted_delivery_date:
        left.append(_p(f"期望交货日期：{format_date(doc.wanted_delivery_date)}", S_BODY))
    if doc.note:
        left.append(_p(f"备注：{doc.note}", S_BODY))
    left += [
        Spacer(0, 2.5 * mm),
        _p("条款说明", S_SECTION),
        *(_p(f"{i}. {term}", S_SMALL) for i, term in enumerate(QUOTE_TERMS, start=1)),
        Spacer(0, 2.5 * mm),
        _p("收款信息", S_SECTION),
        _p(f"户名：{doc.seller_name}", S_SMALL),
        _p(f"开户行及账号：{doc.seller_bank}", S_SMALL),
    ]
    qr_w = 44 * mm
    right: list[Flowable] = [
        _QrCode(doc.signing_url, 32 * mm),
        _p("扫码在线签署", S_QR_CAPTION),
        Spacer(0, 1 * mm),
        _p(doc.signing_url, S_URL),
    ]
    table = Table([[left, right]], colWidths=[CONTENT_W - qr_w, qr_w])
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), LATIN_FONT_NAME),  # string cells default to Helvetica
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("ALIGN", (1, 0), (1, 0), "CENTER"),
        ("LEFTPADDING", (0, 0), (0, 0), 0),
        ("LEFTPADDING", (1, 0), (1, 0), 6),
        ("RIGHTPADDING", (1, 0), (1, 0), 0),
        ("LINEBEFORE", (1, 0), (1, 0), 0.4, RULE),
    ]))
    return table


def _story(doc: QuoteDocument) -> list[Flowable]:
    return [
        *_header(doc),
        _info_table(doc),
        Spacer(0, 5 * mm),
        _lines_table(doc),
        Spacer(0, 3 * mm),
        # Totals, validity, terms and QR belong together; never strand them apart.
        KeepTogether([_totals(doc), Spacer(0, 4 * mm), _closing(doc)]),
    ]


def _canvas_class(doc: QuoteDocument):
    """A canvas that defers page output so the footer can say 共 N 页."""
    issued = f"D:{doc.issued_on:%Y%m%d}000000+08'00'"

    class _QuoteCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []
            # Deterministic bytes: creation date comes from the quote, not the clock.
            self.setDateFormatter(lambda *_: issued)

        def showPage(self):  # noqa: N802 - reportlab API
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            count = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self._decorate(number, count)
                super().showPage()
            super().save()

        def _decorate(self, number: int, count: int) -> None:
            self.saveState()
            self.setStrokeColor(RULE)
            self.setLineWidth(0.4)
            y = MARGIN_BOTTOM - 6 * mm
            self.line(MARGIN_X, y + 3.5 * mm, PAGE_W - MARGIN_X, y + 3.5 * mm)
            self.setFillColor(MUTED)
            left, right = f"报价单号：{doc.code}", f"第 {number} 页 / 共 {count} 页"
            draw_string(self, MARGIN_X, y, left, 8)
            draw_string(self, PAGE_W - MARGIN_X, y, right, 8, anchor="right")
            # The seller name is a courtesy; drop it rather than overprint a long one.
            free = CONTENT_W - 2 * max(string_width(left, 8), string_width(right, 8)) - 12 * mm
            if string_width(doc.seller_name, 8) <= free:
                draw_string(self, PAGE_W / 2, y, doc.seller_name, 8, anchor="centre")
            if number > 1:
                # Continuation pages get a running head so loose sheets stay identifiable.
                top = PAGE_H - MARGIN_TOP + 3 * mm
                draw_string(self, MARGIN_X, top, f"{doc.seller_name}　报价单（续）", 8)
                draw_string(self, PAGE_W - MARGIN_X, top, doc.code, 8, anchor="right")
                self.line(MARGIN_X, top - 2 * mm, PAGE_W - MARGIN_X, top - 2 * mm)
            self.restoreState()

    return _QuoteCanvas


# reportlab keeps process-global state (font subset tables keyed per document,
# the paragraph parser); serialise builds so threaded task runners stay safe.
_build_lock = threading.Lock()


def quote_pdf_bytes(doc: QuoteDocument) -> bytes:
    """Render the quote and return the PDF bytes."""
    register_fonts()  # cached: the first call in a process parses the TTF (~0.1 s)
    buf = io.BytesIO()
    template = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=MARGIN_X,
        rightMargin=MARGIN_X,
        topMargin=MARGIN_TOP + (2 * mm),
        bottomMargin=MARGIN_BOTTOM,
        title=f"报价单 {doc.code}",
        author=doc.seller_name,
        subject=f"{doc.customer_legal_name} 报价单",
        creator="salesops-hub",
        producer="salesops-hub (ReportLab)",
        invariant=1,
        pageCompression=1,
        # Otherwise every page opens with an unembedded Helvetica selection.
        initialFontName=LATIN_FONT_NAME,
    )
    with _build_lock:
        template.build(_story(doc), canvasmaker=_canvas_class(doc))
    return buf.getvalue()


def render_quote_pdf(doc: QuoteDocument, path: Path) -> str:
    """Write the quote PDF to path atomically; return the hex SHA-256 of its bytes."""
    data = quote_pdf_bytes(doc)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target so os.replace is an atomic rename, never a copy.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; readers (web server) need access
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return hashlib.sha256(data).hexdigest()
