"""Building blocks shared by the A4 business documents (quote, settlement statement).

Page metrics and colours, paragraph styles in the embedded CJK font, mixed CJK/Latin text
flowables, the seller letterhead, a canvas that numbers pages "第 x 页 / 共 y 页" with a
running head on continuation pages, and a deterministic, thread-safe build plus an atomic
write that returns the SHA-256 of the bytes.
"""
from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer

from models.base import to_money
from models.money import yuan
from connectors.files import write_atomically
from reports.fonts import (
    CJK_FONT_NAME,
    LATIN_FONT_NAME,
    draw_string,
    markup,
    register_fonts,
    string_width,
)

__all__ = [
    "ACCENT", "BASE_TABLE_STYLE", "CONTENT_W", "HeavyLine", "INK", "MARGIN_BOTTOM", "MARGIN_TOP", "MARGIN_X",
    "MUTED", "PAGE_H", "PAGE_W", "RULE", "Rule", "TOTAL_BG", "Text", "ZEBRA", "build_pdf",
    "fit_line", "format_date", "format_money", "format_rate", "letterhead", "num",
    "numbered_canvas", "paragraph_style", "require_decimal", "text", "write_pdf",
]


# --------------------------------------------------------------------- formatting


def require_decimal(name: str, value) -> None:
    # Floats silently carry binary rounding errors into invoices; refuse them.
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be Decimal, got {type(value).__name__}")


def format_money(value: Decimal, *, symbol: bool = False) -> str:
    """Decimal → '12,345.60' (or '¥12,345.60'); sign in front of the symbol."""
    if symbol:
        return yuan(value)
    q = to_money(value)
    return f"{q:,.2f}"


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


def paragraph_style(name: str, size: float, *, leading: float | None = None, align=TA_LEFT,
                    color=INK) -> ParagraphStyle:
    return ParagraphStyle(
        name, fontName=CJK_FONT_NAME, fontSize=size, leading=leading or size * 1.38,
        alignment=align, textColor=color, wordWrap="CJK",  # CJK has no spaces to break at
    )


S_SELLER_INFO = paragraph_style("seller_info", 8.5, align=TA_CENTER, color=MUTED)
S_LABEL = paragraph_style("label", 9, color=MUTED)
S_VALUE = paragraph_style("value", 9.5)
S_CELL = paragraph_style("cell", 8.5, leading=11)
S_CELL_C = paragraph_style("cell_c", 8.5, leading=11, align=TA_CENTER)
S_NUM = paragraph_style("num", 8.5, leading=11, align=TA_RIGHT)
S_NUM_C = paragraph_style("num_c", 8.5, leading=11, align=TA_CENTER)
S_HEAD = paragraph_style("head", 8.5, leading=11, align=TA_CENTER, color=colors.white)
S_BODY = paragraph_style("body", 9, leading=13)
S_SMALL = paragraph_style("small", 8, leading=11, color=MUTED)
S_SECTION = paragraph_style("section", 9.5, leading=13, color=ACCENT)

# Table cells are flowables; their string fallback must not select unembedded Helvetica.
BASE_TABLE_STYLE = (("FONTNAME", (0, 0), (-1, -1), LATIN_FONT_NAME),)


class Text(Flowable):
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


def text(value: str, style: ParagraphStyle, *, bold_latin: bool = False) -> Flowable:
    return Text(value, style, bold_latin=bold_latin)


def num(value: str, style: ParagraphStyle | None = None, *, bold: bool = False) -> Flowable:
    """A figure: shrinks to fit its cell rather than wrapping mid-number."""
    return Text(value, style or S_NUM, bold_latin=bold, shrink=True)


class HeavyLine(Flowable):
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


class Rule(Flowable):
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


def letterhead(seller_name: str, info_lines: Sequence[str], title: str) -> list[Flowable]:
    """The seller's name, address/registration lines, a double rule and the document title."""
    return [
        HeavyLine(seller_name, 15, color=ACCENT, weight=0.35),
        Spacer(0, 1.5 * mm),
        *(text(line, S_SELLER_INFO) for line in info_lines),
        Spacer(0, 2.5 * mm),
        Rule(1.2, ACCENT),
        Spacer(0, 1 * mm),
        Rule(0.4, ACCENT),
        Spacer(0, 4 * mm),
        HeavyLine(title, 22, weight=0.6),
        Spacer(0, 4 * mm),
    ]


def fit_line(line: str, size: float, width: float, *, min_size: float = 6) -> tuple[str, float]:
    """(text, font size) that fits `width` on one line: the size shrunk to fit, down to
    `min_size`; below that, characters are taken out of the middle for an ellipsis (the start
    and the end of a running head, e.g. a name and a period, stay readable)."""
    natural = string_width(line, size)
    if natural <= width:
        return line, size
    if natural * min_size / size <= width:
        return line, size * width / natural
    head, tail = line[:len(line) // 2], line[len(line) // 2:]
    while (head or tail) and string_width(f"{head}…{tail}", min_size) > width:
        if len(head) >= len(tail):
            head = head[:-1]
        else:
            tail = tail[1:]
    return f"{head}…{tail}", min_size


_RUNNING_SELLER_MIN = 20 * mm  # a seller cut shorter than this is no name at all


def numbered_canvas(*, issued_on: date, footer_left: str, footer_centre: str,
                    running_seller: str, running_title: str, running_right: str,
                    watermark: str | None = None):
    """A canvas class that defers page output so the footer can say 共 N 页; pages after the
    first carry a running head (seller + title on the left, e.g. the customer and period on
    the right) so loose sheets stay identifiable; `watermark` (e.g. 草稿) is laid faintly
    across every page."""
    issued = f"D:{issued_on:%Y%m%d}000000+08'00'"

    class _NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []
            # Deterministic bytes: creation date comes from the document, not the clock.
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
            if watermark:
                self._watermark(watermark)
            self.setStrokeColor(RULE)
            self.setLineWidth(0.4)
            y = MARGIN_BOTTOM - 6 * mm
            self.line(MARGIN_X, y + 3.5 * mm, PAGE_W - MARGIN_X, y + 3.5 * mm)
            self.setFillColor(MUTED)
            right = f"第 {number} 页 / 共 {count} 页"
            draw_string(self, MARGIN_X, y, footer_left, 8)
            draw_string(self, PAGE_W - MARGIN_X, y, right, 8, anchor="right")
            # The centre text is a courtesy; drop it rather than overprint a long one.
            free = CONTENT_W - 2 * max(string_width(footer_left, 8),
                                       string_width(right, 8)) - 12 * mm
            if string_width(footer_centre, 8) <= free:
                draw_string(self, PAGE_W / 2, y, footer_centre, 8, anchor="centre")
            if number > 1:
                self._running_head(PAGE_H - MARGIN_TOP + 3 * mm)
            self.restoreState()

        def _running_head(self, top: float) -> None:
            # What identifies a loose sheet (the customer and period, the quote code) keeps
            # its width and the title stays whole; the seller's name, printed in full on
            # page 1, is what gets cut when the line is too long.
            gap, title = 6 * mm, f"　{running_title}"
            title_w = string_width(title, 8)
            right, right_size = fit_line(running_right, 8,
                                         CONTENT_W - gap - title_w - _RUNNING_SELLER_MIN)
            seller, _ = fit_line(running_seller, 8, CONTENT_W - gap - title_w
                                 - string_width(right, right_size), min_size=8)
            draw_string(self, MARGIN_X, top, seller + title, 8)
            draw_string(self, PAGE_W - MARGIN_X, top, right, right_size, anchor="right")
            self.line(MARGIN_X, top - 2 * mm, PAGE_W - MARGIN_X, top - 2 * mm)

        def _watermark(self, mark: str) -> None:
            self.saveState()
            self.setFillColor(ACCENT)
            self.setFillAlpha(0.07)
            self.translate(PAGE_W / 2, PAGE_H / 2)
            self.rotate(35)
            draw_string(self, 0, 0, mark, 120, anchor="centre")
            self.restoreState()

    return _NumberedCanvas


# reportlab keeps process-global state (font subset tables keyed per document,
# the paragraph parser); serialise builds so threaded task runners stay safe.
_build_lock = threading.Lock()


def build_pdf(story: list[Flowable], canvasmaker, *, title: str, author: str,
              subject: str) -> bytes:
    """Lay the story out on A4 with the house margins; deterministic bytes."""
    register_fonts()  # cached: the first call in a process parses the TTF (~0.1 s)
    buf = io.BytesIO()
    template = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=MARGIN_X,
        rightMargin=MARGIN_X,
        topMargin=MARGIN_TOP + (2 * mm),
        bottomMargin=MARGIN_BOTTOM,
        title=title,
        author=author,
        subject=subject,
        creator="salesops-hub",
        producer="salesops-hub (ReportLab)",
        invariant=1,
        pageCompression=1,
        # Otherwise every page opens with an unembedded Helvetica selection.
        initialFontName=LATIN_FONT_NAME,
    )
    with _build_lock:
        template.build(story, canvasmaker=canvasmaker)
    return buf.getvalue()


def write_pdf(path: Path, data: bytes) -> str:
    """Write PDF bytes to path atomically; return the hex SHA-256 of the bytes."""
    return write_atomically(path, data)
