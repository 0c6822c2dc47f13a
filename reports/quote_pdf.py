"""Quote PDF (报价单): one A4 document per quote, in Simplified Chinese.

Built with reportlab platypus so long quotes flow onto extra pages with the
table header repeated. Money is Decimal throughout. Output is deterministic for
a given document (reportlab "invariant" mode, creation date = issue date), so the
returned SHA-256 identifies the content and a re-render yields the same hash.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Spacer, Table, TableStyle

from models.money import capital_amount
from models.quoting import line_amount, line_tax
from models.rebates.engine import NO_POLICY_SENTENCE
from reports.fonts import LATIN_FONT_NAME
from reports.pdf_layout import (
    ACCENT,
    CONTENT_W,
    MUTED,
    RULE,
    S_BODY,
    S_CELL,
    S_CELL_C,
    S_HEAD,
    S_LABEL,
    S_NUM_C,
    S_SECTION,
    S_SMALL,
    S_VALUE,
    TOTAL_BG,
    ZEBRA,
    build_pdf,
    format_date,
    format_money,
    format_rate,
    letterhead,
    numbered_canvas,
    paragraph_style,
    require_decimal,
    write_pdf,
)
from reports.pdf_layout import num as _num
from reports.pdf_layout import text as _p


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


_require_decimal = require_decimal


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
    # the order's expected rebate, e.g. "本次订单返利比例：12.5%，较上月提升2.3个百分点（预计返利 ¥4,800.00）"
    rebate: str | None = None
    # where it comes from: each rule that pays it (policy, version, clause, the figures it
    # used), and each rule in force that does not apply, with why
    rebate_basis: tuple[str, ...] = ()

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


# ------------------------------------------------------------------------ layout

# The table's column widths (mm); 品名 takes what is left.
_COLS_MM = {"no": 9, "model": 25, "qty": 14, "unit": 10, "price": 23, "amount": 26, "rate": 11, "tax": 22}
_NAME_W = CONTENT_W - sum(_COLS_MM.values()) * mm
COL_WIDTHS = [
    _COLS_MM["no"] * mm, _COLS_MM["model"] * mm, _NAME_W, _COLS_MM["qty"] * mm,
    _COLS_MM["unit"] * mm, _COLS_MM["price"] * mm, _COLS_MM["amount"] * mm,
    _COLS_MM["rate"] * mm, _COLS_MM["tax"] * mm,
]
HEADERS = ("序号", "型号", "品名", "数量", "单位", "含税单价", "金额", "税率", "税额")


S_QR_CAPTION = paragraph_style("qr_caption", 9, align=TA_CENTER)
S_URL = paragraph_style("url", 6, leading=7.5, align=TA_CENTER, color=MUTED)


class _QrCode(Flowable):
    """QR code from reportlab's own QrCodeWidget encoder, painted as one filled path.

    Rendering the widget through reportlab.graphics builds and validates one
    Rect shape per module (~25 ms a quote); a single path draws the same modules
    in well under 1 ms, which matters when 1,000 quotes render in a burst.
    """

    QUIET_ZONE = 4  # modules, as ISO/IEC 18004 asks: the caption sits right below

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
    return letterhead(doc.seller_name, (f"地址：{doc.seller_address}", seller_info), "报价单")


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
    if doc.rebate:  # an expected rebate is settled monthly; no policy, nothing to settle
        tail = "。" if doc.rebate == NO_POLICY_SENTENCE else "，以月度结算为准。"
        left.append(_p(f"返利：{doc.rebate}{tail}", S_BODY))
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
        _QrCode(doc.signing_url, 34 * mm),  # modules about as large as with a 2-module margin
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
        *_rebate_basis(doc),
    ]


def _rebate_basis(doc: QuoteDocument) -> list[Flowable]:
    """返利依据 under the closing block: a paragraph per rule, free to run onto the next page
    (a table cell could not: several rules' explanations may be long)."""
    if not doc.rebate_basis:
        return []
    return [Spacer(0, 3 * mm), _p("返利依据", S_SECTION),
            *(_p(f"{i}. {text}", S_SMALL) for i, text in enumerate(doc.rebate_basis, start=1))]


def _canvas_class(doc: QuoteDocument):
    """Footer 报价单号 / seller / 第 x 页 / 共 y 页; running head on continuation pages."""
    return numbered_canvas(issued_on=doc.issued_on, footer_left=f"报价单号：{doc.code}",
                           footer_centre=doc.seller_name,
                           running_seller=doc.seller_name, running_title="报价单（续）",
                           running_right=doc.code)


def quote_pdf_bytes(doc: QuoteDocument) -> bytes:
    """Render the quote and return the PDF bytes."""
    return build_pdf(_story(doc), _canvas_class(doc), title=f"报价单 {doc.code}",
                     author=doc.seller_name, subject=f"{doc.customer_legal_name} 报价单")


def render_quote_pdf(doc: QuoteDocument, path: Path) -> str:
    """Write the quote PDF to path atomically; return the hex SHA-256 of its bytes."""
    return write_pdf(path, quote_pdf_bytes(doc))
