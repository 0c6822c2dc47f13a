"""Settlement statement PDF (返利结算对账单): one A4 document per customer and settlement revision.

What the customer checks and signs: every rebate line of the revision (order, product line and
clause, basis, rate, amount, kind) with its explanation, subtotals by kind, the total in figures
and in 大写, the policies the lines cite, and a block for the customer's stamp and signature.
Long statements flow onto more pages with the table header repeated; a line never parts from
its explanation. Drafts carry a faint 草稿 watermark. Output is deterministic for a document
(creation date = issue date), so the returned SHA-256 identifies the content.
"""
from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from reportlab.lib.units import mm
from reportlab.lib import colors
from reportlab.platypus import Flowable, KeepTogether, LongTable, Spacer, Table, TableStyle

from models.money import capital_amount
from models.rebates.engine import KIND_LABELS, period_label as volume_period_label
from reports.pdf_layout import (
    ACCENT,
    BASE_TABLE_STYLE,
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
    Text,
    build_pdf,
    format_date,
    format_money,
    letterhead,
    num,
    numbered_canvas,
    paragraph_style,
    require_decimal,
    text,
    write_pdf,
)

__all__ = [
    "KIND_LABELS", "NOT_GIVEN", "STATUS_LABELS", "StatementDocument", "StatementLine",
    "StatementPolicy", "format_percent", "policy_rate", "rate_text", "render_statement_pdf",
    "statement_pdf_bytes",
]

# "confirmed" is the seller's (finance's) confirmation, not the customer's
# a draft says it is not final yet (the confirmed statement is issued when finance confirms)
STATUS_LABELS = {"draft": "草稿（待财务确认）", "confirmed": "供方已确认"}
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


# --------------------------------------------------------------------------- data


class _NotGiven(enum.Enum):
    NOT_GIVEN = "not given"


NOT_GIVEN = _NotGiven.NOT_GIVEN


@dataclass(frozen=True)
class StatementLine:
    """One rebate line (one order under one rule) of the settlement revision."""

    order_id: str
    order_date: date
    product_line: str | None        # 产品线 of the order's lines the rule counted
    policy_code: str
    policy_version: int
    clause: str                     # how the policy text cites the rule, e.g. 第二条
    basis_amount: Decimal           # 计算基数 (tax included)
    rate: Decimal                   # effective rate, due ÷ basis, as a fraction (0.05 = 5%)
    amount: Decimal                 # 本期金额: paid (+) or clawed back (−) by this revision
    kind: str                       # rebate | tier_difference | clawback | adjustment
    explanation: str = ""           # Chinese, shown under the line
    rule_name: str | None = None    # e.g. 季度销售额阶梯返利
    period: str | None = None       # the volume period, e.g. 2026Q4
    due_amount: Decimal | None = None  # 应返累计 for the order under the rule
    # the policy's one rate for the whole basis, as the explanation states it (see
    # `policy_rate`); None: there is none (tiers crossed, a cap share, below the first tier);
    # NOT_GIVEN: the caller does not know, the effective rate is shown unmarked
    policy_rate: Decimal | None | _NotGiven = NOT_GIVEN

    def __post_init__(self) -> None:
        for name in ("basis_amount", "rate", "amount"):
            require_decimal(name, getattr(self, name))
        if self.due_amount is not None:
            require_decimal("due_amount", self.due_amount)
        if self.policy_rate is not None and self.policy_rate is not NOT_GIVEN:
            require_decimal("policy_rate", self.policy_rate)
        if self.kind not in KIND_LABELS:
            raise ValueError(f"kind must be one of {sorted(KIND_LABELS)}, not {self.kind!r}")


@dataclass(frozen=True)
class StatementPolicy:
    """A policy version the lines cite."""

    code: str
    version: int
    name: str
    effective_from: date
    effective_to: date | None = None
    clauses: tuple[str, ...] = ()   # cited clauses; empty: taken from the lines
    # a version that governs no date any more: the version that took its place from its start
    replaced_by: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.clauses, tuple):
            object.__setattr__(self, "clauses", tuple(self.clauses))


@dataclass(frozen=True)
class StatementDocument:
    statement_no: str               # "RS-202610-r1-C000123-草稿" (draft), "RSQ-202610-r1-C000123"
    month: str                      # the settled month, "2026-10"
    revision: int                   # settlement revision (第 n 版)
    status: str                     # draft | confirmed
    issued_on: date                 # 出具日期: a draft's settlement day, else the confirmation day
    seller_name: str
    seller_uscc: str
    seller_address: str
    seller_phone: str
    customer_legal_name: str
    customer_uscc: str | None
    lines: tuple[StatementLine, ...]
    policies: tuple[StatementPolicy, ...] = ()
    customer_code: str | None = None
    region: str | None = None       # 大区
    rep_name: str | None = None     # 销售代表
    confirmed_on: date | None = None
    note: str | None = None
    # a correction (revision > 1): what earlier revisions of the month settled for the customer
    settled_before: Decimal | None = None

    def __post_init__(self) -> None:
        # Accept any iterable but store tuples so the document stays hashable/immutable.
        for name in ("lines", "policies"):
            if not isinstance(getattr(self, name), tuple):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.lines:
            raise ValueError("a statement needs at least one line")
        if not _MONTH.fullmatch(self.month):
            raise ValueError(f"month must be YYYY-MM, not {self.month!r}")
        if self.status not in STATUS_LABELS:
            raise ValueError(f"status must be one of {sorted(STATUS_LABELS)}, "
                             f"not {self.status!r}")

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    def subtotals(self) -> dict[str, tuple[int, Decimal]]:
        """Per kind (in KIND_LABELS order): number of lines and their sum."""
        out = {kind: (0, Decimal("0.00")) for kind in KIND_LABELS}
        for line in self.lines:
            count, amount = out[line.kind]
            out[line.kind] = (count + 1, amount + line.amount)
        return out

    @property
    def period_label(self) -> str:
        year, month = self.month.split("-")
        return f"{year}年{int(month)}月"


# --------------------------------------------------------------------- formatting


def format_percent(rate: Decimal) -> str:
    """Decimal('0.05') → '5%', Decimal('0.054321') → '5.4321%' (at most 4 decimals of a
    percent, as the rebate contract shows rates)."""
    pct = (rate * 100).quantize(Decimal("0.0001")).normalize()
    return f"{pct:f}%"


def policy_rate(inputs: Mapping[str, Any]) -> Decimal | None:
    """The one rate of the policy that a rebate line's whole basis earns, from the line's
    stored inputs (`flows.settlement.line_inputs`): the rate of the tier reached
    (retroactive), or of the one tier the order's whole span lies in (marginal). None when
    there is no such rate: the span crosses a tier's bounds, a cap share cut the due, the
    bucket is below the first tier, or the line has no inputs (the claw-back of an order that
    left the bucket).

    The line's `rate` (due ÷ basis) is not it: the due is rounded to the fen once per order,
    so 1 % of 99.99 is due 1.00, an effective 1.0001 %, next to an explanation that says 1 %."""
    if inputs.get("capped"):
        return None
    if inputs.get("style") == "marginal":
        parts, span = inputs.get("marginal_parts") or (), inputs.get("order_span")
        whole = span is not None and len(parts) == 1 and \
            Decimal(parts[0]["part"]) == Decimal(span["to"]) - Decimal(span["from"])
        return Decimal(parts[0]["rate"]) if whole else None
    tier = inputs.get("tier")
    return Decimal(tier["rate"]) if tier else None


def rate_text(line: StatementLine) -> str:
    """返利比例 as the statement shows it: the policy's rate; where there is none, the
    effective rate marked `*` (see RATE_NOTE); "—" when there is no basis to relate to."""
    if not line.basis_amount:  # returned in full: the rule's rate now would read as the
        return "—"             # rate the claw-back was computed at (it takes back what was paid)
    if line.policy_rate is NOT_GIVEN:
        return format_percent(line.rate)
    if line.policy_rate is not None:
        return format_percent(line.policy_rate)
    return format_percent(line.rate) + "*"


RATE_NOTE = ("注：返利比例为政策条款规定的比例；标“*”者该行无单一政策比例（分段累进跨档、封顶分摊或未达"
             "最低档），所示为实际比例＝应返累计÷计算基数。")


def _iso(d: date) -> str:
    return d.isoformat()


def _validity(policy: StatementPolicy) -> str:
    if policy.replaced_by is not None:
        return f"已由第{policy.replaced_by}版取代（原定 {_iso(policy.effective_from)} 起）"
    if policy.effective_to:
        return f"{_iso(policy.effective_from)} 至 {_iso(policy.effective_to)}"
    return f"{_iso(policy.effective_from)} 起"


# ------------------------------------------------------------------------ layout

S_EXPLAIN = paragraph_style("explain", 7.5, leading=10, color=MUTED)

# 序号 订单号 下单日期 产品线/条款 计算基数 返利比例 本期金额 类型 (mm); 产品线/条款 takes the rest.
_COLS_MM = (8, 30, 18, None, 24, 18, 24, 15)
_FLEX_W = CONTENT_W - sum(w for w in _COLS_MM if w) * mm
COL_WIDTHS = [w * mm if w else _FLEX_W for w in _COLS_MM]
HEADERS = ("序号", "订单号", "下单日期", "产品线/条款", "计算基数", "返利比例", "本期金额", "类型")


def _table_style(extra: list) -> TableStyle:
    return TableStyle([
        *BASE_TABLE_STYLE,
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        *extra,
    ])


def _header(doc: StatementDocument) -> list[Flowable]:
    info = "　".join([f"统一社会信用代码：{doc.seller_uscc}", f"电话：{doc.seller_phone}"])
    return letterhead(doc.seller_name, (f"地址：{doc.seller_address}", info), "返利结算对账单")


def _info_table(doc: StatementDocument) -> Table:
    rows: list[list] = [
        [text("对账单号", S_LABEL), text(doc.statement_no, S_VALUE, bold_latin=True),
         text("结算期间", S_LABEL), text(f"{doc.period_label}（第{doc.revision}版）", S_VALUE)],
        [text("客户名称", S_LABEL), text(doc.customer_legal_name, S_VALUE), "", ""],
    ]
    spans = [("SPAN", (1, 1), (3, 1))]
    if doc.customer_uscc:
        rows.append([text("统一社会信用代码", S_LABEL), text(doc.customer_uscc, S_VALUE), "", ""])
        spans.append(("SPAN", (1, len(rows) - 1), (3, len(rows) - 1)))
    status = STATUS_LABELS[doc.status]
    if doc.status == "confirmed" and doc.confirmed_on:
        status += f"（{format_date(doc.confirmed_on)}）"
    rows += [
        [text("客户编码", S_LABEL), text(doc.customer_code or "—", S_VALUE),
         text("状态", S_LABEL), text(status, S_VALUE)],
        [text("大区", S_LABEL), text(doc.region or "—", S_VALUE),
         text("销售代表", S_LABEL), text(doc.rep_name or "—", S_VALUE)],
        [text("出具日期", S_LABEL), text(format_date(doc.issued_on), S_VALUE),
         text("币种", S_LABEL), text("人民币（元）", S_VALUE)],
    ]
    label_w, value_w = 30 * mm, CONTENT_W / 2 - 30 * mm
    table = Table(rows, colWidths=[label_w, value_w, label_w - 8 * mm, value_w + 8 * mm])
    table.setStyle(_table_style([*spans, ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                                 ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
                                 ("LINEBELOW", (0, 0), (-1, -1), 0.3, RULE)]))
    return table


def _rule_cell(line: StatementLine) -> Flowable:
    first = line.product_line or line.rule_name or "—"
    if line.period:  # the customer reads 2026年第四季度, not the code 2026Q4
        first += f"（{volume_period_label(line.period)}）"
    return Text(f"{first}\n{line.policy_code} 第{line.policy_version}版 {line.clause}", S_CELL)


_INNER_STYLE = TableStyle([
    *BASE_TABLE_STYLE,
    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ("LEFTPADDING", (0, 0), (-1, -1), 3),
    ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ("TOPPADDING", (0, 0), (-1, -1), 0),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
    ("INNERGRID", (0, 0), (-1, 0), 0.4, RULE),
])


def _line_cell(line: StatementLine) -> list[Flowable]:
    """The figures of one line in a small table of their own, its explanation below: one row
    of the outer table, which therefore never splits between a line and its explanation."""
    figures = Table([[
        Text(line.order_id, S_CELL, shrink=True), num(_iso(line.order_date), S_NUM_C),
        _rule_cell(line), num(format_money(line.basis_amount)),
        num(rate_text(line), S_NUM_C), num(format_money(line.amount), bold=True),
        text(KIND_LABELS[line.kind], S_CELL_C)]], colWidths=COL_WIDTHS[1:], style=_INNER_STYLE)
    if not line.explanation:
        return [figures]
    due = f"（应返累计 {format_money(line.due_amount)}）" if line.due_amount is not None else ""
    return [figures, Spacer(0, 1 * mm), text(f"说明：{line.explanation}{due}", S_EXPLAIN)]


def _lines_table(doc: StatementDocument) -> Table:
    """One outer row per line with a handful of style commands for the whole table: a
    statement of thousands of lines splits across pages in linear time (per-row commands
    made reportlab's page splitting quadratic)."""
    header = Table([[text(h, S_HEAD) for h in HEADERS[1:]]], colWidths=COL_WIDTHS[1:],
                   style=_INNER_STYLE)
    data: list[list] = [[text(HEADERS[0], S_HEAD), header]]
    data += [[num(str(i), S_NUM_C), _line_cell(line)]
             for i, line in enumerate(doc.lines, start=1)]
    style = [
        ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, ZEBRA]),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
        ("LINEAFTER", (0, 0), (0, -1), 0.4, RULE),
        ("BOX", (0, 0), (-1, -1), 0.8, ACCENT),
        ("LEFTPADDING", (1, 0), (1, -1), 0),
        ("RIGHTPADDING", (1, 0), (1, -1), 0),
    ]
    return LongTable(data, colWidths=[COL_WIDTHS[0], sum(COL_WIDTHS[1:])], repeatRows=1,
                     style=_table_style(style))


def _subtotals(doc: StatementDocument) -> Table:
    subtotals = doc.subtotals()
    rows: list[list] = [
        [text("分类小计", S_HEAD), *(text(KIND_LABELS[k], S_HEAD) for k in subtotals),
         text("合计", S_HEAD)],
        [text("笔数", S_CELL_C), *(num(str(c), S_NUM_C) for c, _ in subtotals.values()),
         num(str(len(doc.lines)), S_NUM_C)],
        [text("金额", S_CELL_C), *(num(format_money(a)) for _, a in subtotals.values()),
         num(format_money(doc.total), bold=True)],
    ]
    label_w = 24 * mm
    table = Table(rows, colWidths=[label_w] + [(CONTENT_W - label_w) / 5] * 5)
    table.setStyle(_table_style([
        ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
        ("GRID", (0, 0), (-1, -1), 0.4, RULE),
        ("BOX", (0, 0), (-1, -1), 0.8, ACCENT),
        ("BACKGROUND", (-1, 1), (-1, -1), TOTAL_BG),
    ]))
    return table


def _totals(doc: StatementDocument) -> Table:
    total = doc.total
    rows = [[
        text("本期合计（大写）", S_LABEL), text(capital_amount(total), S_VALUE),
        text("本期合计（小写）", S_LABEL), num(format_money(total, symbol=True), S_VALUE, bold=True),
    ]]
    if doc.settled_before is not None:  # a correction: the month before and after it
        after = doc.settled_before + total
        rows.append([
            text("原结算金额", S_LABEL), num(format_money(doc.settled_before, symbol=True), S_VALUE),
            text("更正后合计", S_LABEL), num(format_money(after, symbol=True), S_VALUE, bold=True),
        ])
    table = Table(rows, colWidths=[29 * mm, CONTENT_W - 29 * mm - 29 * mm - 38 * mm, 29 * mm,
                                   38 * mm])
    table.setStyle(_table_style([("BOX", (0, 0), (-1, -1), 0.8, ACCENT),
                                 ("LEFTPADDING", (0, 0), (-1, -1), 4),
                                 ("TOPPADDING", (0, 0), (-1, -1), 4),
                                 ("BOTTOMPADDING", (0, 0), (-1, -1), 4)]))
    return table


def _clauses(doc: StatementDocument, policy: StatementPolicy) -> str:
    cited = list(policy.clauses)
    for line in doc.lines:
        if (line.policy_code, line.policy_version) == (policy.code, policy.version) \
                and line.clause not in cited:
            cited.append(line.clause)
    return "、".join(cited) or "—"


def _policies(doc: StatementDocument) -> list[Flowable]:
    policies = list(doc.policies)
    known = {(p.code, p.version) for p in policies}
    missing = sorted({(line.policy_code, line.policy_version) for line in doc.lines} - known)
    rows: list[list] = [[text(h, S_HEAD) for h in ("政策编码", "版本", "政策名称", "有效期",
                                                   "引用条款")]]
    for policy in policies:
        rows.append([Text(policy.code, S_CELL, shrink=True), num(f"第{policy.version}版", S_NUM_C),
                     text(policy.name, S_CELL), text(_validity(policy), S_CELL_C),
                     text(_clauses(doc, policy), S_CELL)])
    for code, version in missing:  # a line cites a version the caller did not describe
        rows.append([Text(code, S_CELL, shrink=True), num(f"第{version}版", S_NUM_C),
                     text("—", S_CELL), text("—", S_CELL_C),
                     text(_clauses(doc, StatementPolicy(code, version, "", date.min)), S_CELL)])
    widths = [30 * mm, 12 * mm, None, 42 * mm, 36 * mm]
    flex = CONTENT_W - sum(w for w in widths if w)
    table = Table(rows, colWidths=[w or flex for w in widths], repeatRows=1)
    table.setStyle(_table_style([
        ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
        ("GRID", (0, 0), (-1, -1), 0.4, RULE),
        ("BOX", (0, 0), (-1, -1), 0.8, ACCENT),
    ]))
    return [text("依据的返利政策", S_SECTION), Spacer(0, 1.5 * mm), table]


def _confirmation(doc: StatementDocument) -> Table:
    blank_date = "日期：　　　　年　　月　　日"
    left: list[Flowable] = [
        text("供方", S_SECTION),
        text(doc.seller_name, S_BODY),
        Spacer(0, 8 * mm),
        text("（盖章）", S_SMALL),
        Spacer(0, 2 * mm),
        text("经办人：", S_BODY),
        text(f"日期：{format_date(doc.issued_on)}", S_BODY),
    ]
    # the amount is restated here: the signed block must not be separable from the total
    right: list[Flowable] = [
        text("客户确认", S_SECTION),
        text(f"经核对，上述返利明细无误，本期合计金额 {format_money(doc.total, symbol=True)}"
             f"（{capital_amount(doc.total)}）。", S_BODY),
        Spacer(0, 8 * mm),
        text("客户（盖章）：", S_BODY),
        Spacer(0, 2 * mm),
        text("签字：", S_BODY),
        text(blank_date, S_BODY),
    ]
    table = Table([[left, right]], colWidths=[CONTENT_W / 2, CONTENT_W / 2])
    table.setStyle(_table_style([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                 ("BOX", (0, 0), (-1, -1), 0.8, ACCENT),
                                 ("LINEBEFORE", (1, 0), (1, 0), 0.4, RULE),
                                 ("LEFTPADDING", (0, 0), (-1, -1), 6),
                                 ("TOPPADDING", (0, 0), (-1, -1), 5),
                                 ("BOTTOMPADDING", (0, 0), (-1, -1), 6)]))
    return table


def _story(doc: StatementDocument) -> list[Flowable]:
    if doc.settled_before is None:
        what = f"返利结算（第{doc.revision}版）明细如下，"
    else:
        what = (f"返利结算更正（第{doc.revision}版）明细如下：本对账单只列本次更正的差额，"
                "原结算金额与更正后合计见合计栏；")
    intro = (f"贵司 {doc.period_label} {what}金额单位为人民币元，负数表示冲回。"
             "请核对后在本对账单末尾盖章或签字确认并回传；如有疑问，请联系您的销售代表。")
    closing: list[Flowable] = [_totals(doc)]
    if doc.note:
        closing += [Spacer(0, 2 * mm), text(f"备注：{doc.note}", S_BODY)]
    return [
        *_header(doc),
        _info_table(doc),
        Spacer(0, 3 * mm),
        text(intro, S_BODY),
        Spacer(0, 3 * mm),
        _lines_table(doc),
        *([Spacer(0, 1.5 * mm), text(RATE_NOTE, S_EXPLAIN)]
          if any(rate_text(line).endswith("*") for line in doc.lines) else []),
        Spacer(0, 4 * mm),
        # Subtotals and the total belong together.
        KeepTogether([_subtotals(doc), Spacer(0, 2 * mm), *closing]),
        Spacer(0, 4 * mm),
        KeepTogether(_policies(doc)),
        Spacer(0, 4 * mm),
        KeepTogether([_confirmation(doc)]),
    ]


def _canvas_class(doc: StatementDocument):
    return numbered_canvas(
        issued_on=doc.issued_on, footer_left=f"对账单号：{doc.statement_no}",
        footer_centre=doc.seller_name,
        running_seller=doc.seller_name, running_title="返利结算对账单（续）",
        running_right=f"{doc.customer_legal_name}　{doc.period_label}",
        watermark="草稿" if doc.status == "draft" else None)


def statement_pdf_bytes(doc: StatementDocument) -> bytes:
    """Render the statement and return the PDF bytes."""
    return build_pdf(_story(doc), _canvas_class(doc),
                     title=f"返利结算对账单 {doc.statement_no}", author=doc.seller_name,
                     subject=f"{doc.customer_legal_name} {doc.period_label} 返利结算对账单")


def render_statement_pdf(doc: StatementDocument, path: Path) -> str:
    """Write the statement PDF to path atomically; return the hex SHA-256 of its bytes."""
    return write_pdf(path, statement_pdf_bytes(doc))
