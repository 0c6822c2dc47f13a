"""Finance detail workbook of a settlement revision (返利结算明细表).

Sheets: 明细 (every rebate line), 按大区, 按销售, 按客户 (totals by kind, each with a 合计 row that
equals the sum of 明细; 按客户 also names each customer's 对账单号), 凭证 (every entry of the
revision's voucher drafts, with per-voucher and overall debit/credit totals, and each
voucher's 凭证号 in the import workbook). Money cells hold
exact Decimals formatted `#,##0.00`, rates are percent cells, dates are date cells, codes are
text cells; headers and sheet names are Chinese.
"""
from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from connectors.files import write_atomically
from connectors.tabular import MONEY_FORMAT, RATE_FORMAT, append_as_text
from models.base import SHANGHAI
from models.money import yuan
from models.rebates.engine import KIND_LABELS

__all__ = [
    "KIND_LABELS", "MONEY_FORMAT", "RATE_FORMAT", "SettlementDetailLine", "SettlementReport",
    "build_settlement_workbook", "save_settlement_workbook",
]

STATUS_LABELS = {"draft": "草稿", "confirmed": "已确认"}
DATE_FORMAT = "yyyy-mm-dd"
TEXT_FORMAT = "@"  # codes stay text (001234, 2026-10) also when finance edits or copies them
UNASSIGNED = "（未分配）"
ZERO = Decimal("0.00")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SettlementDetailLine:
    """One rebate line of the revision, with the customer, region and rep it is booked to."""

    month: str                       # 结算月份 "2026-10"
    revision: int                    # 结算版本
    order_id: str
    customer_name: str               # legal name
    customer_uscc: str | None
    region: str | None               # 大区
    rep_name: str | None             # 销售
    policy_code: str
    policy_version: int
    clause: str                      # 条款, e.g. 第二条
    period: str                      # the volume period, 2026-10 or 2026Q4
    basis_amount: Decimal            # 计算基数
    rate: Decimal                    # 实际比例: due ÷ basis (fraction)
    due_amount: Decimal              # 应返累计
    amount: Decimal                  # 本次金额 (signed)
    kind: str                        # rebate | tier_difference | clawback | adjustment
    explanation: str                 # 说明
    customer_code: str | None = None
    order_date: dt.date | None = None
    # 返利比例: the policy's one rate for the whole basis, as the explanation states it
    # (`reports.statement_pdf.policy_rate`); None where there is none (tiers crossed, cap)
    policy_rate: Decimal | None = None
    # the rep's staff id: two reps of one name are told apart (王芳（rep-wangf2）)
    rep_id: str | None = None
    # the customer the line was booked to: two customers sharing a code or a name (a merged
    # file and its survivor) stay two customers, with a statement each
    customer_id: int | None = None

    def __post_init__(self) -> None:
        for name in ("basis_amount", "rate", "due_amount", "amount", "policy_rate"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) and not (name == "policy_rate" and value is None):
                raise TypeError(f"{name} must be Decimal, got {type(value).__name__}")
        if self.kind not in KIND_LABELS:
            raise ValueError(f"kind must be one of {sorted(KIND_LABELS)}, not {self.kind!r}")


class VoucherEntryLike(Protocol):
    summary: str
    account_code: str
    account_name: str
    debit: Decimal
    credit: Decimal
    customer_code: str | None
    customer_name: str | None


class VoucherLike(Protocol):
    """The shape of `connectors.finance.VoucherDraft` (reports do not import connectors)."""

    voucher_key: str
    voucher_date: dt.date
    period: str
    word: str
    entries: Sequence[VoucherEntryLike]
    prepared_by: str
    number: int | None  # 凭证号 in the import workbook; None: not issued yet (not prepared)


@dataclass(frozen=True)
class SettlementReport:
    month: str                       # "2026-10"
    revision: int
    status: str                      # draft | confirmed
    as_of: dt.datetime               # what the settlement knew (aware)
    lines: tuple[SettlementDetailLine, ...]
    vouchers: tuple[VoucherLike, ...] = ()
    batch_id: str | None = None      # the voucher batch, e.g. "RB-2026-10-r1"
    # confirmed: when (Shanghai business date) and by whom finance confirmed the revision
    confirmed_on: dt.date | None = None
    confirmed_by: str | None = None  # the person's name (and staff id), as finance reads it
    # each customer's 对账单号 (by customer id, else code) in this revision's documents: a
    # draft's differs from the confirmed one's
    statement_numbers: Mapping[int | str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("lines", "vouchers"):
            if not isinstance(getattr(self, name), tuple):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        if self.status not in STATUS_LABELS:
            raise ValueError(f"status must be one of {sorted(STATUS_LABELS)}, "
                             f"not {self.status!r}")

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


# ------------------------------------------------------------------------ sheets

# 返利比例 is the policy's rate (blank where no single rate applies); 实际比例 = 应返累计 ÷ 计算基数
# (blank without a basis): they differ by the fen rounding of the due, or by tiers and caps
DETAIL_HEADERS = ("结算月份", "结算版本", "订单号", "下单日期", "客户编码", "客户", "统一社会信用代码",
                  "大区", "销售", "政策", "政策版本", "条款", "期间", "计算基数", "返利比例",
                  "实际比例", "应返累计", "本次金额", "类型", "说明")
# 引入凭证号: the voucher's 凭证号 in the K/3 Cloud import workbook (continuing within its
# 凭证字 and 会计期间 across batches), which is what finance's books show after the import, not
# the hub's 凭证编号
VOUCHER_HEADERS = ("凭证编号", "凭证日期", "会计期间", "凭证字", "分录号", "摘要", "科目编码", "科目名称",
                   "客户编码", "客户名称", "借方金额", "贷方金额", "制单人", "引入凭证号")
KIND_COLUMNS = tuple(KIND_LABELS.values())

_HEAD_FONT = Font(bold=True, color="FFFFFF")
_HEAD_FILL = PatternFill("solid", fgColor="1F3A5F")
_TOTAL_FONT = Font(bold=True)
_TOTAL_FILL = PatternFill("solid", fgColor="E8EDF2")


def _header(ws, headers: Sequence[str], widths: Sequence[float]) -> None:
    ws.append(list(headers))
    for cell in ws[1]:
        cell.font, cell.fill = _HEAD_FONT, _HEAD_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center")
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"


def _formats(ws, first_row: int, columns: dict[int, str]) -> None:
    for row in ws.iter_rows(min_row=first_row):
        for col, fmt in columns.items():
            row[col - 1].number_format = fmt


def _total_row(ws) -> None:
    for cell in ws[ws.max_row]:
        cell.font, cell.fill = _TOTAL_FONT, _TOTAL_FILL


def _rep_labels(lines: Iterable[SettlementDetailLine]) -> Callable[[SettlementDetailLine], str]:
    """How the sheets name a line's rep: the name, and the staff id after it where two reps
    of the revision share the name (their rows must not be added up as one person's)."""
    ids: dict[str, set[str]] = {}
    for line in lines:
        if line.rep_name and line.rep_id:
            ids.setdefault(line.rep_name, set()).add(line.rep_id)

    def label(line: SettlementDetailLine) -> str:
        if not line.rep_name:
            return UNASSIGNED
        if line.rep_id and len(ids.get(line.rep_name, ())) > 1:
            return f"{line.rep_name}（{line.rep_id}）"
        return line.rep_name
    return label


def _detail(wb: Workbook, report: SettlementReport) -> None:
    ws = wb.active
    ws.title = "明细"
    _header(ws, DETAIL_HEADERS, (10, 9, 20, 12, 12, 30, 21, 8, 10, 14, 9, 10, 9, 14, 10, 10, 14,
                                 14, 10, 60))
    rep = _rep_labels(report.lines)
    for line in report.lines:
        append_as_text(ws, [line.month, line.revision, line.order_id, line.order_date,
                       line.customer_code or "", line.customer_name, line.customer_uscc or "",
                       line.region or UNASSIGNED, rep(line), line.policy_code,
                       line.policy_version, line.clause, line.period, line.basis_amount,
                       line.policy_rate, line.rate if line.basis_amount else None,
                       line.due_amount, line.amount, KIND_LABELS[line.kind], line.explanation])
    col = {h: i for i, h in enumerate(DETAIL_HEADERS, start=1)}
    _formats(ws, 2, {col["下单日期"]: DATE_FORMAT, col["计算基数"]: MONEY_FORMAT,
                     col["返利比例"]: RATE_FORMAT, col["实际比例"]: RATE_FORMAT,
                     col["应返累计"]: MONEY_FORMAT, col["本次金额"]: MONEY_FORMAT,
                     **{col[h]: TEXT_FORMAT for h in ("结算月份", "订单号", "客户编码",
                                                      "统一社会信用代码", "政策", "期间")}})
    for row in ws.iter_rows(min_row=2, min_col=col["说明"], max_col=col["说明"]):
        row[0].alignment = Alignment(wrap_text=True, vertical="top")
    if report.lines:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(DETAIL_HEADERS))}{ws.max_row}"


@dataclass
class _Group:
    lines: int = 0
    customers: set[int | str] = field(default_factory=set)
    regions: set[str] = field(default_factory=set)
    reps: set[str] = field(default_factory=set)
    by_kind: dict[str, Decimal] = field(default_factory=lambda: {k: ZERO for k in KIND_LABELS})

    def add(self, line: SettlementDetailLine, rep: str) -> None:
        self.lines += 1
        self.customers.add(line.customer_id if line.customer_id is not None
                           else line.customer_code or line.customer_name)
        self.regions.add(line.region or UNASSIGNED)
        self.reps.add(rep)
        self.by_kind[line.kind] += line.amount

    @property
    def total(self) -> Decimal:
        return sum(self.by_kind.values(), ZERO)


def _groups(lines: Iterable[SettlementDetailLine],
            key: Callable[[SettlementDetailLine], tuple]) -> list[tuple[tuple, _Group]]:
    groups: dict[tuple, _Group] = {}
    lines = tuple(lines)
    rep = _rep_labels(lines)
    for line in lines:
        groups.setdefault(key(line), _Group()).add(line, rep(line))
    # by name, the unassigned last, so the sheet reads the same on every run
    return sorted(groups.items(), key=lambda kv: tuple((k == UNASSIGNED, k) for k in kv[0]))


def _unassigned_last(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda n: (n == UNASSIGNED, n))


def _summary(wb: Workbook, title: str, key_headers: Sequence[str], key_widths: Sequence[float],
             key: Callable[[SettlementDetailLine], tuple], extra: Callable[[_Group], list],
             extra_headers: Sequence[str], lines: Sequence[SettlementDetailLine]) -> None:
    ws = wb.create_sheet(title)
    headers = (*key_headers, *extra_headers, "行数", *KIND_COLUMNS, "合计")
    _header(ws, headers, (*key_widths, *([12] * len(extra_headers)), 8,
                          *([14] * len(KIND_COLUMNS)), 15))
    totals = {k: ZERO for k in KIND_LABELS}
    for keys, group in _groups(lines, key):
        append_as_text(ws, [*keys, *extra(group), group.lines,
                       *(group.by_kind[k] for k in KIND_LABELS), group.total])
        for k in KIND_LABELS:
            totals[k] += group.by_kind[k]
    ws.append(["合计", *([None] * (len(key_headers) - 1)), *([None] * len(extra_headers)),
               len(lines), *(totals[k] for k in KIND_LABELS), sum(totals.values(), ZERO)])
    _total_row(ws)
    first_money = len(key_headers) + len(extra_headers) + 2
    _formats(ws, 2, {**{c: MONEY_FORMAT for c in range(first_money, first_money + 5)},
                     **{i: TEXT_FORMAT for i, h in enumerate(key_headers, start=1)
                        if h in ("客户编码", "统一社会信用代码")}})


def _vouchers(wb: Workbook, report: SettlementReport) -> None:
    ws = wb.create_sheet("凭证")
    _header(ws, VOUCHER_HEADERS, (24, 12, 9, 7, 7, 44, 11, 22, 11, 30, 14, 14, 9, 10))
    all_debit = all_credit = ZERO
    by_account: dict[tuple[str, str], Decimal] = {}  # debit − credit
    for voucher in report.vouchers:
        debit = credit = ZERO
        for n, entry in enumerate(voucher.entries, start=1):
            append_as_text(ws, [voucher.voucher_key, voucher.voucher_date, voucher.period, voucher.word,
                           n, entry.summary, entry.account_code, entry.account_name,
                           entry.customer_code or "", entry.customer_name or "",
                           entry.debit, entry.credit, voucher.prepared_by, voucher.number])
            debit += entry.debit
            credit += entry.credit
            account = (entry.account_code, entry.account_name)
            by_account[account] = by_account.get(account, ZERO) + entry.debit - entry.credit
        append_as_text(ws, [voucher.voucher_key, None, None, None, None, "小计", None, None, None, None,
                       debit, credit, None])
        for cell in ws[ws.max_row]:
            cell.font = _TOTAL_FONT
        all_debit += debit
        all_credit += credit
    ws.append(["合计", None, None, None, None, f"{len(report.vouchers)} 张凭证", None, None, None,
               None, all_debit, all_credit, None])
    _total_row(ws)
    # claw-back vouchers run the other way, so the 合计 above exceeds the settlement's net:
    # per account, debit and credit offset, which ties to the 本次金额 total of 明细
    for (code, name), net in by_account.items():
        append_as_text(ws, ["科目净额", None, None, None, None, "借贷相抵后", code, name, None, None,
                       net if net >= 0 else ZERO, -net if net < 0 else ZERO, None])
        for cell in ws[ws.max_row]:
            cell.font = _TOTAL_FONT
    # a customer whose lines net to nothing gets no voucher: say so, or 按客户 seems to miss one
    for (code, name), group in _groups(report.lines, lambda r: (r.customer_code or "",
                                                                 r.customer_name)):
        if not group.total:
            append_as_text(ws, ["无凭证", None, None, None, None, "本版净额为零，不生成凭证", None, None, code,
                           name, ZERO, ZERO, None])
    # voucher key, period, account and customer codes stay text
    _formats(ws, 2, {2: DATE_FORMAT, 11: MONEY_FORMAT, 12: MONEY_FORMAT,
                     **{c: TEXT_FORMAT for c in (1, 3, 7, 9)}})


def build_settlement_workbook(report: SettlementReport) -> Workbook:
    """The revision's lines, totals by region / rep / customer, and voucher entries."""
    wb = Workbook()
    _detail(wb, report)
    _summary(wb, "按大区", ("大区",), (10,), lambda r: (r.region or UNASSIGNED,),
             lambda g: [len(g.customers)], ("客户数",), report.lines)
    rep = _rep_labels(report.lines)
    _summary(wb, "按销售", ("销售",), (10,), lambda r: (rep(r),),
             lambda g: ["、".join(sorted(g.regions)), len(g.customers)], ("大区", "客户数"),
             report.lines)
    # one row per customer, as there is one voucher per customer: lines booked to two reps
    # or regions (a claw-back booked where it was paid) name both
    numbers = report.statement_numbers
    _summary(wb, "按客户", ("客户编码", "客户", "统一社会信用代码"), (12, 30, 21),
             lambda r: (r.customer_code or "", r.customer_name, r.customer_uscc or ""),
             lambda g: ["、".join(_unassigned_last(g.regions)),
                        "、".join(_unassigned_last(g.reps)),
                        "、".join(sorted({numbers[c] for c in g.customers if c in numbers}))],
             ("大区", "销售", "对账单号"), report.lines)
    wb["按客户"].column_dimensions["F"].width = 30  # RS-202610-r1-C000123-草稿
    _vouchers(wb, report)
    props = wb.properties
    status = STATUS_LABELS[report.status]
    if report.status == "confirmed" and report.confirmed_on:  # when, and by whom
        status += (f" {report.confirmed_on.year}年{report.confirmed_on.month}月"
                   f"{report.confirmed_on.day}日" + (f" {report.confirmed_by}"
                                                      if report.confirmed_by else ""))
    props.title = f"{report.month} 返利结算明细（第{report.revision}版，{status}）"
    props.subject = f"凭证批次 {report.batch_id}" if report.batch_id else "返利结算"
    props.creator = "salesops-hub"
    props.created = report.as_of.astimezone(dt.timezone.utc).replace(tzinfo=None)
    as_of = report.as_of.astimezone(SHANGHAI)
    props.description = (f"计算时点 {as_of:%Y-%m-%d %H:%M}（北京时间）；{len(report.lines)} 行；"
                         f"合计 {yuan(report.total)}；状态：{status}")
    for ws in wb.worksheets:  # a printed page says which revision, and whether a draft
        ws.oddHeader.center.text = props.title
        ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    return wb


def save_settlement_workbook(report: SettlementReport, path: Path) -> str:
    """Build and write the workbook atomically; returns the SHA-256 of the bytes written (it
    identifies this file: an .xlsx records its save time, so a re-save differs)."""
    buf = io.BytesIO()
    build_settlement_workbook(report).save(buf)
    return write_atomically(path, buf.getvalue())
