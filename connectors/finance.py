"""Finance: invoice preparation (开票准备), rebate voucher drafts (凭证草稿), receivables (应收与回款).

- `EmbeddedFinance` works through a drop folder finance watches:
  - invoice requests: `<drop>/<request_id>.json` + `.xlsx`;
  - voucher drafts: `<drop>/vouchers/<batch_id>.json` + `.xlsx`, the workbook laid out as a
    金蝶云星空 (K/3 Cloud) 凭证引入 sheet (see `build_voucher_workbook`);
  - in both the JSON is written last and is the "done" marker;
  - receivables: finance drops CSV/XLSX exports into `<drop>/receivables-inbound/`; they are
    read one file per page in file-name order, the cursor being the files read so far, each
    with a fingerprint of its content (a corrected export dropped again under its name is
    read again; `files_read`).
- `RestFinance` talks to the finance system's REST API: `POST /api/v1/invoice-requests` and
  `POST /api/v1/voucher-drafts` with an `Idempotency-Key`, `GET /api/v1/receivables?cursor=`.

Submissions are idempotent on their key (`request_id` "INV-<quote code>", `batch_id`
"RB-2026-10-r1"): asking twice returns the first reference and prepares nothing new, so a
retried or re-run flow cannot ask for two invoices or book a rebate twice.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
import threading
import unicodedata
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from connectors import xlsx
from connectors.base import PermanentError, RemoteClient, send, transient_retry
from connectors.files import os_reason, publish_once, write_atomically
from connectors.tabular import (
    INVALID,
    MAX_PROBLEMS,
    MONEY_FORMAT,
    NUL,
    RATE_FORMAT,
    REPEATED_ROW,
    XLSX_SUFFIXES,
    CellError,
    Column,
    Problem,
    Row,
    Sheet,
    TableError,
    append_as_text,
    convert_rows,
    header_key,
    load_sheets,
    money_in_range,
    no_nul,
    parse_code,
    parse_date,
    parse_money,
    parse_text,
)
from models.money import yuan
from models.names import HALF_WIDTH

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class InvoiceLine:
    """One quote line. `unit_price` and `amount` are tax included, as quotes are
    (amount = quantity × unit_price); `tax` is the VAT contained in `amount`. `model` (型号),
    `name` (品名) and `unit` (单位) are the ones the line was ordered under
    (`intent_order_line.model`, `.name`, `.unit`), not the catalogue's current ones: the
    invoice must say what the signed quote says."""

    sku: str
    model: str
    name: str
    unit: str
    quantity: int
    unit_price: Decimal
    tax_rate: Decimal
    amount: Decimal
    tax: Decimal


@dataclass(frozen=True)
class InvoiceRequest:
    request_id: str  # idempotency key, e.g. "INV-<quote code>"
    order_id: str
    quote_code: str
    customer_legal_name: str
    customer_uscc: str | None
    total_amount: Decimal  # tax included
    tax_amount: Decimal
    lines: tuple[InvoiceLine, ...]
    signed_at: dt.datetime
    rep_name: str | None
    signed_pdf_path: Path | None
    note: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """Wire/file form: Decimals as strings (exact), times ISO 8601, paths as strings."""
        return _jsonable(self)


# --- voucher drafts ------------------------------------------------------------------------

@dataclass(frozen=True)
class VoucherEntry:
    """One entry (分录) of a voucher: exactly one of debit / credit is non-zero."""

    summary: str                      # 摘要, e.g. "2026年10月返利结算 江苏康达医疗设备有限公司"
    account_code: str                 # 科目编码, e.g. "6601.09"
    account_name: str                 # 科目名称, e.g. "销售费用-销售返利"
    debit: Decimal                    # 借方, ≥ 0, whole fen
    credit: Decimal                   # 贷方, ≥ 0, whole fen
    customer_code: str | None = None  # 核算维度：客户编码
    customer_name: str | None = None


@dataclass(frozen=True)
class VoucherDraft:
    voucher_key: str                  # unique in the batch, e.g. "RB-2026-10-r1-C000123"
    voucher_date: dt.date             # the last day of the settled month
    period: str                       # "2026-10"
    word: str                         # 凭证字, "记"
    entries: tuple[VoucherEntry, ...]
    prepared_by: str                  # 制单人
    attachments: int = 0              # 附件数
    # 凭证号 in its (凭证字, period), issued by the hub so that it continues across the batches
    # a period receives (models.vouchers); None: numbered 1…n in the batch, as batches
    # prepared before the hub issued numbers were (`VoucherBatch.numbered`)
    number: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.entries, tuple):
            object.__setattr__(self, "entries", tuple(self.entries))

    @property
    def debit_total(self) -> Decimal:
        return sum((e.debit for e in self.entries), Decimal("0.00"))

    @property
    def credit_total(self) -> Decimal:
        return sum((e.credit for e in self.entries), Decimal("0.00"))


@dataclass(frozen=True)
class VoucherBatch:
    batch_id: str                     # idempotency key of the submission, e.g. "RB-2026-10-r1"
    period: str                       # "2026-10"
    vouchers: tuple[VoucherDraft, ...]
    note: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.vouchers, tuple):
            object.__setattr__(self, "vouchers", tuple(self.vouchers))

    def to_json_dict(self) -> dict[str, Any]:
        """Wire/file form: Decimals as strings (exact), dates ISO 8601. A voucher without a
        number has no `number` key: a batch prepared before numbers were issued reads back
        (and is sent again) in the form it was first sent in."""
        data = _jsonable(self)
        for voucher in data["vouchers"]:
            if voucher["number"] is None:
                del voucher["number"]
        return data

    def numbered(self) -> tuple[VoucherDraft, ...]:
        """The vouchers with the 凭证号 finance's import gives them: the number issued, or
        1…n in the batch (a batch prepared before numbers were issued)."""
        if all(v.number is not None for v in self.vouchers):
            return self.vouchers
        return tuple(v if v.number is not None else dataclasses.replace(v, number=n)
                     for n, v in enumerate(self.vouchers, start=1))

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> VoucherBatch:
        """The batch back from its wire/file form."""
        money = ("debit", "credit")
        return cls(data["batch_id"], data["period"], tuple(
            VoucherDraft(**{**v, "voucher_date": dt.date.fromisoformat(v["voucher_date"]),
                            "entries": tuple(VoucherEntry(**{**e, **{k: Decimal(e[k])
                                                                      for k in money}})
                                             for e in v["entries"])})
            for v in data["vouchers"]), data.get("note"))


# --- receivables ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ReceivableRecord:
    """An invoice the customer must pay by `due_on` (amount tax included)."""

    invoice_no: str
    customer_uscc: str | None
    customer_name: str
    issued_on: dt.date
    due_on: dt.date
    amount: Decimal
    invoice_code: str | None = None  # 发票代码 of an old-style invoice (8-digit 发票号码)
    # finance (or the tax system) voided the invoice (作废): nothing is due on it
    voided: bool = False
    # a red-letter invoice (红字发票, negative amount): the 发票号码 / 发票代码 of the blue
    # invoice it reverses (原蓝字发票), when the export names it
    original_no: str | None = None
    original_code: str | None = None
    # the column it was read from when not 原发票号码 (a 备注), for messages
    original_from: str | None = dataclasses.field(default=None, compare=False)
    # a blue invoice the export marks reversed in full (红冲状态 已红冲 / 全额红冲)
    reversed_in_full: bool = False
    # (file or worksheet, row) it was read from, for messages; None from REST
    at: tuple[str, int] | None = dataclasses.field(default=None, compare=False)
    # the column `amount` was read from (价税合计 or 金额), for messages; `tax_added`: it is
    # 金额 + 税额 (a file with both but no 价税合计), which the import's summary says
    amount_from: str = dataclasses.field(default="金额", compare=False)
    tax_added: bool = dataclasses.field(default=False, compare=False)

    @property
    def key(self) -> str:
        return invoice_key(self.invoice_code, self.invoice_no)

    @property
    def reverses(self) -> str | None:
        """The key of the blue invoice this red-letter invoice reverses, if it names one."""
        return invoice_key(self.original_code, self.original_no) if self.original_no else None


@dataclass(frozen=True)
class PaymentRecord:
    """Money received against one invoice (one record per invoice a payment settles):
    `amount` is what the payment allocates to that invoice (本次核销金额), not the receipt's
    total when it settles several.
    `voided`: finance voided the 回款单 (作废): none of its money counts any more; a 回款单 is
    voided whole, every record of its number says so."""

    payment_no: str
    invoice_no: str
    paid_on: dt.date
    amount: Decimal
    invoice_code: str | None = None
    voided: bool = False
    # (file or worksheet, row) it was read from, for messages; None from REST
    at: tuple[str, int] | None = dataclasses.field(default=None, compare=False)
    # the column `amount` was read from (金额, or 核销金额: the invoice's share of the receipt)
    amount_from: str = dataclasses.field(default="金额", compare=False)
    # the receipt's total (收款金额) a 收款核销 export writes beside 本次核销金额, when it does:
    # its rows may not allocate more (`_overdrawn_receipts`); None from REST
    receipt_total: Decimal | None = dataclasses.field(default=None, compare=False)

    @property
    def invoice_key(self) -> str:
        return invoice_key(self.invoice_code, self.invoice_no)


# Old-style (pre-全电) VAT invoices are identified by 发票代码 (10 digits 专票, 12 digits 普票)
# together with an 8-digit 发票号码, which repeats across codes; a 数电票 has a 20-digit number
# and no code. The hub keys an invoice by `invoice_key`: `<发票代码>-<发票号码>`, or the number.
OLD_STYLE_NUMBER = re.compile(r"\d{8}")
INVOICE_CODE = re.compile(r"\d{10}|\d{12}")
_OLD_STYLE_KEY = re.compile(r"(\d{10}|\d{12})-(\d{8})")


def invoice_key(code: str | None, number: str) -> str:
    """The hub's key of an invoice (`receivable_invoice.invoice_no`, `payment.invoice_no`)."""
    return f"{code}-{number}" if code else number


def invoice_label(key: str) -> str:
    """An invoice key as finance reads it: `04419876（发票代码 044001900111）`, or the number."""
    m = _OLD_STYLE_KEY.fullmatch(key)
    return f"{m.group(2)}（发票代码 {m.group(1)}）" if m else key


def invoice_code_problem(number: str, code: str | None) -> str | None:
    """What is wrong with a 发票号码 and its 发票代码 together, if anything: "missing" (an
    8-digit number without its code), "code" (a code that is not 10 or 12 digits), or
    "number" (a code with a number that is not an old-style 8-digit one)."""
    if not code:
        return "missing" if OLD_STYLE_NUMBER.fullmatch(number) else None
    if not INVOICE_CODE.fullmatch(code):
        return "code"
    return None if OLD_STYLE_NUMBER.fullmatch(number) else "number"


@dataclass(frozen=True)
class ReceivablesPage:
    """What finance recorded after a cursor.

    `cursor` is the position after this page: store it and pass it back to read on. It is None
    only when there was nothing after the cursor you passed (keep the one you have): read until
    a page says None. A page may be empty and still carry a cursor (an export with no rows).
    A page lists every invoice each of its payment numbers is allocated to: what it says about
    a 回款单号 replaces what earlier pages said of that 回款单 (`flows.sales_facts.
    store_receivables`; another 收款单 reusing the number replaces nothing: `_replaced_later`).
    """

    invoices: tuple[ReceivableRecord, ...]
    payments: tuple[PaymentRecord, ...]
    cursor: str | None


@runtime_checkable
class Finance(Protocol):
    def request_invoice(self, request: InvoiceRequest) -> str:
        """Ask finance to prepare the invoice; returns finance's reference (same on replay)."""
        ...

    def submit_vouchers(self, batch: VoucherBatch) -> str:
        """Hand finance a batch of voucher drafts; returns finance's reference (same on replay).
        Refuses (PermanentError) an empty batch, an unbalanced voucher, sub-fen or negative
        money, a 凭证号 given twice or to some vouchers only, naming the voucher. The 凭证号
        are the vouchers' `number`s (issued by the caller), or 1…n when none is given."""
        ...

    def fetch_receivables(self, since_cursor: str | None) -> ReceivablesPage:
        """Invoices and payments recorded after `since_cursor` (None: from the beginning)."""
        ...


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}  # None: not a dataclass


def _jsonable(value: Any) -> Any:
    """The wire/file form of a value: a dataclass as a dict of its fields (as
    `dataclasses.asdict`, without its deep copies), tuples and lists as lists, Decimals as
    strings, dates and times ISO 8601, paths as strings."""
    kind = type(value)
    if kind is str or kind is int or value is None:
        return value
    if kind is Decimal:
        return str(value)
    try:
        names = _FIELD_NAMES[kind]
    except KeyError:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(kind)) \
            if dataclasses.is_dataclass(kind) else None
    if names is not None:  # text and no value, most fields, without a call each
        return {name: item if (item := getattr(value, name)) is None or type(item) is str
                else _jsonable(item) for name in names}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):  # datetimes included
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def _is_fen(value: Any) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value == value.quantize(CENT)


def _check(request: InvoiceRequest) -> None:
    """Refuse what finance could not invoice: naive times, sub-fen money, no lines, a line
    without its unit."""
    problems = []
    if not request.request_id.strip():
        problems.append("empty request_id")
    if request.signed_at.tzinfo is None:
        problems.append("signed_at is naive")
    if not request.lines:
        problems.append("no lines")
    money = [("total_amount", request.total_amount), ("tax_amount", request.tax_amount)]
    for n, line in enumerate(request.lines, start=1):
        if not isinstance(line.unit, str) or not line.unit.strip():
            problems.append(f"line {n} has no unit")
        money += [(f"line {n} unit_price", line.unit_price), (f"line {n} amount", line.amount),
                  (f"line {n} tax", line.tax)]
    for label, value in money:
        if not _is_fen(value):
            problems.append(f"{label} {value!r} is not a Decimal in whole fen")
    if problems:
        raise PermanentError(f"invoice request {request.request_id!r} refused: "
                             + "; ".join(problems), provider="finance", code="bad-request")


PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def _period_bounds(period: str) -> tuple[dt.date, dt.date] | None:
    m = PERIOD.fullmatch(period or "")
    if not m:
        return None
    year, month = int(m.group(1)), int(m.group(2))
    first = dt.date(year, month, 1)
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return first, following - dt.timedelta(days=1)


def _check_batch(batch: VoucherBatch) -> None:
    """Refuse what finance could not book: an empty batch, an unbalanced voucher, an entry
    with sub-fen, negative, two-sided or empty money, a voucher outside the batch's period."""
    problems: list[str] = []
    if not isinstance(batch.batch_id, str) or not batch.batch_id.strip():
        problems.append("empty batch_id")
    bounds = _period_bounds(batch.period)
    if bounds is None:
        problems.append(f"period {batch.period!r} is not YYYY-MM")
    if not batch.vouchers:
        problems.append("no vouchers (empty batch)")
    seen: set[str] = set()
    numbers: dict[tuple[str, int], str] = {}  # (凭证字, 凭证号) → the voucher that has it
    for voucher in batch.vouchers:
        key = voucher.voucher_key
        if not isinstance(key, str) or not key.strip():
            problems.append("a voucher has an empty voucher_key")
            continue
        if key in seen:
            problems.append(f"voucher {key!r} appears twice")
        seen.add(key)
        problems += [f"voucher {key!r}: {p}" for p in _voucher_problems(voucher, batch, bounds)]
        if isinstance(voucher.number, int) and not isinstance(voucher.number, bool):
            first = numbers.setdefault((voucher.word, voucher.number), key)
            if first != key:
                problems.append(f"voucher {key!r}: number {voucher.word}-{voucher.number} is "
                                f"also voucher {first!r}'s")
    given = sum(v.number is not None for v in batch.vouchers)
    if 0 < given < len(batch.vouchers):
        problems.append(f"{given} of {len(batch.vouchers)} vouchers have a number (all or none)")
    if problems:
        raise PermanentError(f"voucher batch {batch.batch_id!r} refused: " + "; ".join(problems),
                             provider="finance", code="bad-request")


def _voucher_problems(voucher: VoucherDraft, batch: VoucherBatch, bounds) -> list[str]:
    problems = []
    if voucher.period != batch.period:
        problems.append(f"period {voucher.period!r} differs from the batch's {batch.period!r}")
    if not isinstance(voucher.voucher_date, dt.date) or isinstance(voucher.voucher_date,
                                                                    dt.datetime):
        problems.append(f"voucher_date {voucher.voucher_date!r} is not a date")
    elif bounds and not bounds[0] <= voucher.voucher_date <= bounds[1]:
        problems.append(f"voucher_date {voucher.voucher_date} is outside {batch.period}")
    if not (voucher.word or "").strip():
        problems.append("empty word (凭证字)")
    if not (voucher.prepared_by or "").strip():
        problems.append("empty prepared_by (制单人)")
    if isinstance(voucher.attachments, bool) or not isinstance(voucher.attachments, int) \
            or voucher.attachments < 0:
        problems.append(f"attachments {voucher.attachments!r} is not a whole number ≥ 0")
    if voucher.number is not None and (isinstance(voucher.number, bool)
                                       or not isinstance(voucher.number, int)
                                       or voucher.number < 1):
        problems.append(f"number {voucher.number!r} is not a whole number ≥ 1")
    if len(voucher.entries) < 2:
        problems.append(f"{len(voucher.entries)} entries (a voucher needs a debit and a credit)")
    money_ok = True
    for n, entry in enumerate(voucher.entries, start=1):
        for side in ("debit", "credit"):
            value = getattr(entry, side)
            if not _is_fen(value):
                problems.append(f"entry {n} {side} {value!r} is not a Decimal in whole fen")
                money_ok = False
            elif value < 0:
                problems.append(f"entry {n} {side} {value} is negative")
                money_ok = False
        if money_ok and (entry.debit == 0) == (entry.credit == 0):
            problems.append(f"entry {n} must have exactly one of debit and credit "
                            f"(debit {entry.debit}, credit {entry.credit})")
        if not (entry.account_code or "").strip():
            problems.append(f"entry {n} has no account_code")
        if not (entry.summary or "").strip():
            problems.append(f"entry {n} has no summary")
    if money_ok and voucher.entries and voucher.debit_total != voucher.credit_total:
        problems.append(f"unbalanced: debit {voucher.debit_total} ≠ credit "
                        f"{voucher.credit_total}")
    return problems


# --- embedded ------------------------------------------------------------------------------

SHEET_HEADERS = ("申请编号", "客户名称", "统一社会信用代码", "报价单号", "型号", "品名", "单位",
                 "数量", "含税单价", "金额", "税率", "税额", "合计")
VOUCHER_DIR = "vouchers"
RECEIVABLES_DIR = "receivables-inbound"


def file_stem(request_id: str) -> str:
    """The file name stem for a request id: the id itself when it is file-name safe (the usual
    "INV-Q2611-7K3M9P-X"); otherwise %-escaped, e.g. a Crockford check symbol "*" → "%2A"."""
    stem = urllib.parse.quote(request_id.strip(), safe="-_.")
    if not stem or stem.startswith("."):
        raise PermanentError(f"request id {request_id!r} cannot name a file",
                             provider="finance", code="bad-request")
    return stem


class EmbeddedFinance:
    """Finance through files: invoice requests and voucher drafts dropped into a folder finance
    works from, receivables read from the exports finance drops back."""

    provider = "embedded-finance"

    def __init__(self, drop_dir: Path, voucher_book: KingdeeVoucherBook | None = None) -> None:
        self.drop_dir = Path(drop_dir)
        self.voucher_book = voucher_book or KingdeeVoucherBook()
        self._lock = threading.Lock()
        # file name → (its stat, its fingerprint): a file unchanged since is not read again
        # to tell whether it changed
        self._fingerprints: dict[str, tuple[tuple[int, ...], str]] = {}

    def request_invoice(self, request: InvoiceRequest) -> str:
        _check(request)
        return self._publish(self.drop_dir, file_stem(request.request_id),
                             f"DRAFT-{request.request_id}",
                             lambda fh: build_workbook(request).save(fh),
                             {"request": request.to_json_dict()})

    def submit_vouchers(self, batch: VoucherBatch) -> str:
        _check_batch(batch)
        content = batch.to_json_dict()

        def same_batch(document: dict) -> None:
            # the key names one (month, revision): other content under it is a bug upstream,
            # and booking either silently would be wrong
            if _canonical(document.get("batch")) != _canonical(content):
                raise PermanentError(
                    f"voucher batch {batch.batch_id!r} was already submitted with other "
                    "content; a changed settlement needs a new revision (a new batch id)",
                    provider=self.provider, code="conflict")

        return self._publish(self.drop_dir / VOUCHER_DIR, file_stem(batch.batch_id),
                             f"DRAFT-{batch.batch_id}",
                             lambda fh: build_voucher_workbook(batch, self.voucher_book).save(fh),
                             {"layout": VOUCHER_LAYOUT, "batch": content}, same_batch)

    def fetch_receivables(self, since_cursor: str | None) -> ReceivablesPage:
        """The first export file, in name order, that `since_cursor` has not read as it is now
        (a new file, or one replaced by a corrected export under its name), parsed strictly.

        The cursor after it lists the files read up to it with a fingerprint of what was read
        (`files_read`), and none after it: a file read again puts the files after it to be
        read again too, so that what a later file says of an invoice or 回款单 still comes
        last (the sync keeps the last version of each). A file no longer in the folder is
        dropped from the cursor. An old cursor (a file name) has read every file up to it as
        the files are now."""
        inbound = self.drop_dir / RECEIVABLES_DIR
        try:
            paths = sorted((p for p in inbound.iterdir() if _is_inbound_file(p)),
                           key=lambda p: p.name)
        except FileNotFoundError:
            paths = []
        read = self._read_as_now(since_cursor, paths)
        for path in paths:
            if read.get(path.name) == self._fingerprint(path):
                continue
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise PermanentError(f"应收/回款导出文件 {path.name} 无法读取：{os_reason(exc)}",
                                     provider=self.provider, code="bad-file") from exc
            invoices, payments = read_receivables_file(path, data=data)
            again = " (changed since it was read: read again)" if path.name in read else ""
            log.info("receivables export %s%s: %d invoices, %d payments", path.name, again,
                     len(invoices), len(payments))
            cursor = {name: mark for name, mark in read.items() if name < path.name}
            cursor[path.name] = _fingerprint_of(data)
            return ReceivablesPage(invoices, payments, _files_cursor(cursor))
        return ReceivablesPage((), (), None)

    def _read_as_now(self, cursor: str | None, paths: list[Path]) -> dict[str, str]:
        """The files `cursor` has read, by name (those still in the folder), each with the
        fingerprint of the content read."""
        present = {p.name: p for p in paths}
        if cursor is None:
            return {}
        read = files_read(cursor)
        if read is None:  # an old cursor, the last file name read: read as they are now
            return {name: self._fingerprint(p) for name, p in present.items() if name <= cursor}
        return {name: mark for name, mark in read.items() if name in present}

    def _fingerprint(self, path: Path) -> str:
        try:
            st = path.stat()
        except OSError:
            return ""  # gone since the folder was listed: read (and refused) as such
        key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        known = self._fingerprints.get(path.name)
        if known is not None and known[0] == key:
            return known[1]
        try:
            mark = _fingerprint_of(path.read_bytes())
        except OSError:
            return ""
        self._fingerprints[path.name] = (key, mark)
        return mark

    # --- publishing ---------------------------------------------------------------------
    def _publish(self, folder: Path, stem: str, reference: str, write_workbook,
                 fields: dict[str, Any],
                 check_same: Callable[[dict], None] | None = None) -> str:
        """Publish `<stem>.xlsx` then `<stem>.json` once; a replay returns the first reference
        (after `check_same` accepted the first document) and writes nothing."""
        json_path = folder / f"{stem}.json"
        xlsx_path = folder / f"{stem}.xlsx"
        with self._lock:
            done = self._document_of(json_path)
            if done:
                if check_same:
                    check_same(done)
                return done["reference"]
            folder.mkdir(parents=True, exist_ok=True)
            # the workbook first, the JSON last: a crash in between leaves no JSON, so the
            # retry rewrites both instead of pointing finance at half a submission
            write_atomically(xlsx_path, write_workbook)
            document = {"reference": reference, "status": "draft",
                        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                        "workbook": xlsx_path.name, **fields}
            payload = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
            if not publish_once(json_path, payload):
                # another process published the same submission a moment ago: its answer stands
                done = self._document_of(json_path)
                if done and check_same:
                    check_same(done)
                return done["reference"] if done else reference
            return reference

    def _document_of(self, json_path: Path) -> dict | None:
        try:
            document = json.loads(json_path.read_text(encoding="utf-8"))
            if not isinstance(document["reference"], str):
                raise TypeError("reference is not a string")
            return document
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"finance draft {json_path} is unreadable: {exc!r}",
                                 provider=self.provider, code="corrupt-draft") from exc


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _money(value: Decimal) -> Decimal:
    # exact: _check() guarantees whole fen; openpyxl (and connectors/xlsx, as it does) writes
    # Decimal with 16 significant digits, more than Numeric(14, 2) ever needs
    return value.quantize(CENT)


def build_workbook(request: InvoiceRequest):
    """The request as finance reads it: one row per line (金额 net of tax, 合计 = tax included),
    a totals row, and a second sheet with the request's particulars."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "开票申请"
    ws.append(list(SHEET_HEADERS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for line in request.lines:
        append_as_text(ws, [
            request.request_id, request.customer_legal_name, request.customer_uscc or "",
            request.quote_code, line.model, line.name, line.unit, line.quantity,
            _money(line.unit_price), _money(line.amount - line.tax), line.tax_rate,
            _money(line.tax), _money(line.amount)])
    ws.append(["合计", None, None, None, None, None, None,
               sum(line.quantity for line in request.lines), None,
               _money(request.total_amount - request.tax_amount), None,
               _money(request.tax_amount), _money(request.total_amount)])
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
    for row in ws.iter_rows(min_row=2):
        for col in (9, 10, 12, 13):  # 含税单价 金额 税额 合计
            row[col - 1].number_format = MONEY_FORMAT
        row[10].number_format = RATE_FORMAT  # 税率: 1.5% must not read 2%
    for col, width in zip("ABCDEFGHIJKLM", (22, 30, 22, 20, 16, 24, 6, 8, 14, 14, 8, 14, 14)):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A2"

    info = wb.create_sheet("申请信息")
    signed_local = request.signed_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    for label, value in (
        ("申请编号", request.request_id), ("订单号", request.order_id),
        ("报价单号", request.quote_code), ("客户名称", request.customer_legal_name),
        ("统一社会信用代码", request.customer_uscc or ""), ("签署时间", signed_local),
        ("销售", request.rep_name or ""),
        ("已签报价单", str(request.signed_pdf_path) if request.signed_pdf_path else ""),
        ("价税合计", _money(request.total_amount)), ("税额", _money(request.tax_amount)),
        ("备注", request.note or ""),
    ):
        append_as_text(info, [label, value])
        if isinstance(value, Decimal):
            info.cell(info.max_row, 2).number_format = MONEY_FORMAT
    info.column_dimensions["A"].width = 18
    info.column_dimensions["B"].width = 48
    return wb


# --- the 金蝶云星空 voucher import sheet ------------------------------------------------------
#
# K/3 Cloud imports a voucher workbook through 总账 → 凭证 → 引入 ("凭证引入"). The sheet is the
# one its 引入模板 download produces for GL_VOUCHER: sheet name "凭证#单据头(FBillHead)", row 1
# the field keys, row 2 the Chinese captions (a leading * marks required fields), data from
# row 3. The voucher-level fields are filled on a voucher's first entry row only; the entry
# fields on every row. "*Split*1" (间隔列) separates the head from the entries. Which 核算维度
# columns a template holds depends on the data centre; the customer dimension is FFlex6 (客户)
# in the standard presets, as in the WebAPI's FDetailID.FDETAILID__FFLEX6.

VOUCHER_LAYOUT = "kingdee-k3cloud-gl-voucher-import"
KINGDEE_SHEET = "凭证#单据头(FBillHead)"
KINGDEE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("FBillHead(GL_VOUCHER)", "*单据头(序号)"),
    ("FAccountBookID", "*(单据头)账簿#编码"),
    ("FAccountBookID#Name", "(单据头)账簿#名称"),
    ("FDate", "*(单据头)日期"),
    ("FBUSDATE", "(单据头)业务日期"),
    ("FYEAR", "(单据头)会计年度"),
    ("FPERIOD", "(单据头)期间"),
    ("FVOUCHERGROUPID", "*(单据头)凭证字#编码"),
    ("FVOUCHERGROUPID#Name", "(单据头)凭证字#名称"),
    ("FVOUCHERGROUPNO", "*(单据头)凭证号"),
    ("FATTACHMENTS", "(单据头)附件数"),
    ("FACCBOOKORGID", "(单据头)核算组织#编码"),
    ("FACCBOOKORGID#Name", "(单据头)核算组织#名称"),
    ("*Split*1", "间隔列"),
    ("FEntity", "*分录(序号)"),
    ("FEXPLANATION", "(分录)摘要"),
    ("FACCOUNTID", "*(分录)科目编码#编码"),
    ("FACCOUNTID#Name", "(分录)科目编码#名称"),
    ("FDetailID#FFlex6", "(分录)客户#编码"),
    ("FDetailID#FFlex6#Name", "(分录)客户#名称"),
    ("FCURRENCYID", "*(分录)币别#编码"),
    ("FCURRENCYID#Name", "(分录)币别#名称"),
    ("FEXCHANGERATETYPE", "*(分录)汇率类型#编码"),
    ("FEXCHANGERATETYPE#Name", "(分录)汇率类型#名称"),
    ("FEXCHANGERATE", "(分录)汇率"),
    ("FAMOUNTFOR", "(分录)原币金额"),
    ("FDEBIT", "(分录)借方金额"),
    ("FCREDIT", "(分录)贷方金额"),
)
# the order in which build_voucher_workbook lays out a row: head (with the split column), entry
_HEAD = ("FBillHead(GL_VOUCHER)", "FAccountBookID", "FAccountBookID#Name", "FDate", "FBUSDATE",
         "FYEAR", "FPERIOD", "FVOUCHERGROUPID", "FVOUCHERGROUPID#Name", "FVOUCHERGROUPNO",
         "FATTACHMENTS", "FACCBOOKORGID", "FACCBOOKORGID#Name", "*Split*1")
_ENTRY = ("FEntity", "FEXPLANATION", "FACCOUNTID", "FACCOUNTID#Name", "FDetailID#FFlex6",
          "FDetailID#FFlex6#Name", "FCURRENCYID", "FCURRENCYID#Name", "FEXCHANGERATETYPE",
          "FEXCHANGERATETYPE#Name", "FEXCHANGERATE", "FAMOUNTFOR", "FDEBIT", "FCREDIT")
assert _HEAD + _ENTRY == tuple(k for k, _ in KINGDEE_COLUMNS)
_KINGDEE_MONEY = ("FAMOUNTFOR", "FDEBIT", "FCREDIT")
_KINGDEE_TEXT = ("FBillHead(GL_VOUCHER)", "FAccountBookID", "FVOUCHERGROUPID", "FACCBOOKORGID",
                 "FACCOUNTID", "FDetailID#FFlex6", "FCURRENCYID", "FEXCHANGERATETYPE")


@dataclass(frozen=True)
class KingdeeVoucherBook:
    """Finance's own codes the import needs and the hub does not know. The defaults are the
    K/3 Cloud presets (PRE001 人民币, HLTX01_SYS 固定汇率, PRE001 记); the account book (账簿) and
    accounting organisation (核算组织) differ per company and are left blank unless given: the
    import refuses a voucher without a 账簿, so finance fills it in or configures it here."""

    account_book: str = ""
    account_book_name: str = ""
    accounting_org: str = ""
    accounting_org_name: str = ""
    currency: str = "PRE001"
    currency_name: str = "人民币"
    rate_type: str = "HLTX01_SYS"
    rate_type_name: str = "固定汇率"
    voucher_words: tuple[tuple[str, str], ...] = (("记", "PRE001"),)  # 凭证字 → its code

    def word_code(self, word: str) -> str:
        return dict(self.voucher_words).get(word, word)


def build_voucher_workbook(batch: VoucherBatch, book: KingdeeVoucherBook | None = None
                           ) -> xlsx.Workbook:
    """The batch as a K/3 Cloud 凭证引入 workbook: one row per entry, vouchers in the batch's
    order with their 凭证号 (`VoucherBatch.numbered`: continuing within the period across
    batches) and 单据头序号 1…n (the head's row key within this file), entries 1…m within each
    voucher.

    Written by the streaming writer in connectors/xlsx (rows straight to XML, a format per
    column): a month's batch is a few thousand rows, which openpyxl's cell objects took
    seconds to lay out. Text is always text there, never a formula Excel would evaluate."""
    book = book or KingdeeVoucherBook()
    keys = [k for k, _ in KINGDEE_COLUMNS]
    widths = {"FEXPLANATION": 44, "FACCOUNTID#Name": 22, "FDetailID#FFlex6#Name": 30,
              "FDate": 12, "FBUSDATE": 12, "FDEBIT": 14, "FCREDIT": 14, "FAMOUNTFOR": 14}
    # codes such as 1122 or 001 must stay text, also in the cells finance fills in
    formats = {"FDate": "yyyy-mm-dd", "FBUSDATE": "yyyy-mm-dd",
               **{k: MONEY_FORMAT for k in _KINGDEE_MONEY}, **{k: "@" for k in _KINGDEE_TEXT}}
    columns = [xlsx.Column(widths.get(k, 14), xlsx.Style(formats[k]) if k in formats else None)
               for k in keys]
    heading = xlsx.Style(bold=True, fill="DDDDDD")
    rows: list[list[Any]] = [[xlsx.Styled(k, heading) for k in keys],
                             [xlsx.Styled(caption, heading) for _, caption in KINGDEE_COLUMNS]]
    # a row is the voucher's head (its first entry only, blank after), the split column, the
    # entry: built as lists in the columns' order, which _HEAD and _ENTRY name
    no_head = [None] * len(_HEAD)
    for sequence, voucher in enumerate(batch.numbered(), start=1):
        bounds = _period_bounds(voucher.period)
        year, month = (bounds[0].year, bounds[0].month) if bounds else (None, None)
        head = [str(sequence), book.account_book or None, book.account_book_name or None,
                voucher.voucher_date, voucher.voucher_date, year, month,
                book.word_code(voucher.word), voucher.word, voucher.number, voucher.attachments,
                book.accounting_org or None, book.accounting_org_name or None, None]
        for entry_no, entry in enumerate(voucher.entries, start=1):
            rows.append((head if entry_no == 1 else no_head) + [
                entry_no, entry.summary, entry.account_code, entry.account_name,
                entry.customer_code, entry.customer_name if entry.customer_code else None,
                book.currency, book.currency_name, book.rate_type, book.rate_type_name,
                1, _money(entry.debit or entry.credit),
                _money(entry.debit) if entry.debit else None,
                _money(entry.credit) if entry.credit else None])
    return xlsx.Workbook([xlsx.Sheet(KINGDEE_SHEET, rows, columns, freeze="A3")])


# --- receivables exports -------------------------------------------------------------------

# the invoice's 备注 as the tax software printed it: two columns, not aliases, as an ERP list
# may carry both its own 备注 and the invoice's. Not 摘要: an ERP's or a voucher's summary line,
# which the tax software never writes
REMARK_COLUMNS = ("备注", "发票备注")
DUE, TAX = "价税合计", "税额"  # an invoice's tax-included amount, the VAT beside 金额
ALLOCATED = "核销金额"  # a payment row's share of its receipt for that invoice
INVOICE_COLUMNS = (
    Column("发票号", aliases=("发票号码", "发票编号")),
    Column("客户名称", aliases=("客户", "购方名称", "购买方名称")),
    Column("统一社会信用代码", required=False,
           aliases=("客户统一社会信用代码", "纳税人识别号", "购方税号", "购买方纳税人识别号")),
    Column("开票日期", aliases=("发票日期",)),
    Column("到期日", aliases=("到期日期", "应收日期", "收款到期日")),
    # what is due (tax included): 价税合计 when the file has it; VAT exports (the tax
    # platform's, Kingdee's 应收单) write 金额 before tax and 税额 beside it, read as 金额 + 税额
    # without 价税合计; 金额 alone is the tax-included amount (`_due`). One of 价税合计 / 金额
    # must be present (`_check_amount_columns`).
    Column(DUE, required=False, aliases=("含税金额", "应收金额")),
    Column("金额", required=False, aliases=("发票金额",)),
    Column(TAX, required=False, aliases=("合计税额",)),
    Column("币种", required=False, aliases=("币别", "货币")),
    Column("发票代码", required=False),
    Column("作废状态", required=False, aliases=("作废标志", "是否作废", "voided")),
    # red-letter invoices (红字发票) and the blue ones they reverse, as 增值税发票 exports
    # (the tax platform's 发票查询导出, Kingdee's 销售发票) name them
    Column("原发票号码", required=False,
           aliases=("原蓝字发票号码", "蓝字发票号码", "对应蓝字发票号码", "原发票号", "被红冲发票号码")),
    Column("原发票代码", required=False, aliases=("原蓝字发票代码", "蓝字发票代码", "对应蓝字发票代码")),
    Column("红冲状态", required=False, aliases=("是否红冲", "红冲标志", "红冲标识", "已红冲")),
    # where the tax software writes a 红字发票's blue invoice (see `_remarked_blue`)
    *(Column(name, required=False, joined=True) for name in REMARK_COLUMNS),
)
PAYMENT_COLUMNS = (
    Column("回款单号", aliases=("收款单号", "回款编号", "收款单编号")),
    Column("发票号", aliases=("发票号码", "发票编号")),
    Column("回款日期", aliases=("收款日期", "到账日期")),
    # 收款金额 of a 收款核销 export is the receipt's total, written on each invoice's row; the
    # invoice's share is 本次核销金额 (K/3 Cloud 收款核销记录, U8 核销明细), read when present
    # (`_payment`). One of the two must be present (`_check_amount_columns`).
    Column("金额", required=False, aliases=("回款金额", "收款金额")),
    Column(ALLOCATED, required=False,
           aliases=("本次核销金额", "本次核销", "核销金额(本位币)", "本次核销金额(本位币)",
                    "本位币核销金额", "本币核销金额")),
    Column("币种", required=False, aliases=("币别", "货币")),
    Column("发票代码", required=False),
    Column("作废状态", required=False, aliases=("作废标志", "是否作废", "voided")),
)
# the columns that tell a payment table (回款单号, 回款日期) from an invoice table (开票日期, 到期日)
_PAYMENT_MARKERS = PAYMENT_COLUMNS[:1] + PAYMENT_COLUMNS[2:3]
_INVOICE_MARKERS = INVOICE_COLUMNS[3:5]
USCC_PATTERN = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}")


# exports the reader reads (.csv, .xlsx/.xlsm), and the old .xls, which it refuses with the
# advice to save it again: skipped silently, its payments would be missing without a word.
# Other files (a 说明.txt beside the exports) are not exports and are skipped.
INBOUND_SUFFIXES = frozenset({".csv", *XLSX_SUFFIXES, ".xls"})


def _fingerprint_of(data: bytes) -> str:
    # 64 bits of SHA-256: tells a corrected export from the one read, the cursor stays short
    return hashlib.sha256(data).hexdigest()[:16]


def _files_cursor(read: dict[str, str]) -> str:
    return json.dumps(dict(sorted(read.items())), ensure_ascii=False, separators=(",", ":"))


def files_read(cursor: str) -> dict[str, str] | None:
    """The export files an embedded receivables cursor has read, by name, each with the
    fingerprint of the content read; None for a cursor written before fingerprints were
    kept, which is the name of the last file read (no export's name ends in `}`)."""
    if not cursor.startswith("{") or not cursor.endswith("}"):
        return None
    try:
        read = json.loads(cursor)
    except ValueError:
        read = None
    if not isinstance(read, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in read.items()):
        raise PermanentError(f"receivables cursor is unreadable: {cursor[:200]!r}",
                             provider="embedded-finance", code="bad-cursor")
    return read


def last_file_read(cursor: str) -> str | None:
    """The name of the last export file (in name order) a receivables cursor has read."""
    read = files_read(cursor)
    if read is None:
        return cursor
    return max(read, default=None)


def _is_inbound_file(path: Path) -> bool:
    # ".name" is a copy in progress (copy in under a dot name, then rename); "~$name" is
    # Excel's lock file beside an open workbook
    name = path.name
    return (path.is_file() and not name.startswith((".", "~$"))
            and path.suffix.lower() in INBOUND_SUFFIXES)


def _uscc(text: str) -> str | None:
    if not text:
        return None
    value = text.upper()
    if not USCC_PATTERN.fullmatch(value):
        raise CellError(f"不是有效的统一社会信用代码（18位）：{text!r}")
    return value


# the hub keeps yuan: another currency would be read as yuan, so it is refused
_YUAN = frozenset({"", "CNY", "RMB", "人民币", "元", "¥", "￥"})


def _yuan_only(text: str) -> str:
    if text.strip().upper() not in _YUAN:
        raise CellError(f"只支持人民币（CNY）金额，此行币种为 {text.strip()}")
    return text


NUMBER_LENGTH = 40  # receivable_invoice.invoice_no, payment.payment_no


def _number(text: str) -> str:
    return parse_code(text, max_length=NUMBER_LENGTH)


def _invoice_number(row: Row) -> tuple[str, str | None]:
    """The row's 发票号码 and 发票代码 (None when blank), checked together: an 8-digit number
    needs its code, a code goes with an 8-digit number only."""
    number = row.get("发票号", _number)
    code = row.get("发票代码", parse_code) if row["发票代码"] else None
    if number is not INVALID and code is not INVALID:
        problem = invoice_code_problem(number, code)
        if problem == "missing":
            row.fail("发票代码", f"发票号码 {number} 是8位的旧版发票号码，须同时填写发票代码"
                               "（10位或12位；不同发票代码下的号码会重复）")
        elif problem == "code":
            row.fail("发票代码", f"发票代码须为10位或12位数字：{code!r}"
                               "（Excel 存为数字时会去掉开头的 0，请把该列设为“文本”）")
        elif problem == "number":
            row.fail("发票号", f"填写了发票代码时，发票号码须为8位数字：{number!r}"
                             "（数电发票的20位号码不带发票代码；Excel 存为数字时会去掉开头的 0）")
    return number, code


def _check_amount_columns(table, names: tuple[str, ...], columns: tuple[Column, ...]) -> None:
    """A table needs one of the amount columns `names` (absent ones read as ''): refused
    naming the first, with every spelling of each, when it has none."""
    if any(name in table.columns for name in names):
        return
    spelled = "或".join(f"「{c.name}」（也可写作：{'、'.join(c.aliases)}）"
                       for name in names for c in columns if c.name == name)
    raise TableError([Problem(table.source, table.header_row, names[0],
                              f"缺少必填列：须有{spelled}{table.unread(*names)}")])


def _due(row: Row) -> tuple[Any, str, bool]:
    """What is due on an invoice row (tax included), the column it was read from, and
    whether 税额 was added: 价税合计 when the file has it (金额 and 税额 beside it are not
    read); else 金额 + 税额 when the file has 税额 (VAT exports: 金额 is before tax); else 金额,
    the tax-included amount. Not zero (a 红字发票 is negative)."""
    def amount(text: str) -> Decimal:
        return parse_money(text, allow_zero=False)

    if DUE in row.values:
        return row.get(DUE, amount), DUE, False
    if TAX not in row.values:
        return row.get("金额", amount), "金额", False
    net, tax = row.get("金额", parse_money), row.get(TAX, parse_money)
    if net is INVALID or tax is INVALID:
        return INVALID, "金额", True
    if net * tax < 0:
        return row.fail(TAX, f"税额 {tax} 与金额 {net} 正负不一致（红字发票的金额与税额均为负数）"
                        ), "金额", True
    if net + tax == 0:
        return row.fail("金额", "金额与税额合计（价税合计）不能为零"), "金额", True
    try:
        return money_in_range(net + tax), "金额", True
    except CellError as exc:
        return row.fail("金额", f"金额与税额合计（价税合计）{exc.message}"), "金额", True


def _business_date(text: str) -> dt.date:
    # exports write 开票日期 / 到账时间 with the local time of day: the date is what counts
    return parse_date(text, time_of_day=True)


def _invoice(row: Row) -> ReceivableRecord:
    row.get("币种", _yuan_only)
    number, code = _invoice_number(row)
    issued = row.get("开票日期", _business_date)
    due = row.get("到期日", _business_date)
    if due < issued:
        row.fail("到期日", f"到期日 {due} 早于开票日期 {issued}")
    # a credit note (红字发票) is a negative invoice; zero is a mistake
    amount, amount_from, tax_added = _due(row)
    original, original_code = _original_invoice(row, number, code)
    if original not in (None, INVALID) and amount is not INVALID and amount > 0:
        row.fail(amount_from, f"填写了原发票号码的是红字发票，金额须为负数：{amount}"
                              "（蓝字发票被红冲，请在「红冲状态」列注明）")
    voided = row.get("作废状态", lambda t: parse_voided(t, "该发票"))
    original_from = None
    # every 红字发票 is issued against a 红字发票信息表 / 红字确认单 naming its blue invoice: a
    # negative row without one is an export without that column, or a wrong row (a voided
    # one counts nowhere, whatever it names)
    if amount is not INVALID and amount < 0 and voided is False:
        original, original_code, original_from = _blue_of_red(
            row, number, code, original, original_code, amount)
    reversal = row.get("红冲状态", parse_reversal)
    return ReceivableRecord(
        invoice_no=number, customer_uscc=row.get("统一社会信用代码", _uscc),
        customer_name=row.get("客户名称", parse_text), issued_on=issued, due_on=due,
        amount=amount, invoice_code=code, voided=voided,
        original_no=original, original_code=original_code, original_from=original_from,
        # a red invoice's own 红冲状态 says nothing about what is due on it
        reversed_in_full=(reversal == "full" and amount is not INVALID and amount > 0),
        amount_from=amount_from, tax_added=tax_added)


# How the tax software names a 红字发票's blue invoice in the invoice's 备注 (read after NFKC:
# full-width colons, digits and spaces as ASCII): 税控开票软件 `对应正数发票代码:032001900311号码:
# 12345678` (also `…代码：3200194130 号码：01234567`), 数电票 `被红冲蓝字数电票号码：
# 24322000000012345678`; other remark text may come before or after (开具红字增值税专用发票信息表
# 编号…, 红字发票信息确认单编号…). Digits are taken as written and checked as the columns are.
_REMARKED_BLUE = re.compile(
    r"(?:对应正数发票|被红冲蓝字(?:数电票|数电发票|全电发票|发票)?)\s*"
    r"(?:代码\s*:?\s*(?P<code>[0-9]+)\s*[,;]?\s*)?号码\s*:?\s*(?P<number>[0-9]+)")
_REMARK_FORMS = "如税控开票软件写的“对应正数发票代码:…号码:…”、数电票的“被红冲蓝字数电票号码:…”"


def _remarked_blue(row: Row) -> dict[str, tuple[str, str | None, str]]:
    """The blue invoices the row's 备注 columns name, by key: (号码, 代码 or None, column)."""
    found: dict[str, tuple[str, str | None, str]] = {}
    for column in REMARK_COLUMNS:
        for m in _REMARKED_BLUE.finditer(unicodedata.normalize("NFKC", row[column])):
            found.setdefault(invoice_key(m["code"], m["number"]),
                             (m["number"], m["code"], column))
    return found


def _blue_of_red(row: Row, number: str, code: str | None, original, original_code,
                 amount: Decimal) -> tuple[Any, Any, str | None]:
    """The blue invoice a red-letter (negative, not voided) row reverses, and the column it
    was read from when not 原发票号码: the 原发票号码 / 原发票代码 columns when filled (a 备注
    naming another blue invoice is refused), else the one its 备注 names, checked as those
    columns are. Naming none, or two, is refused."""
    remarked = _remarked_blue(row)
    if row["原发票号码"] or row["原发票代码"]:
        if (original not in (None, INVALID) and original_code is not INVALID
                and invoice_code_problem(original, original_code) is None):
            key = invoice_key(original_code, original)
            for other, (_, _, column) in remarked.items():
                if other != key:
                    row.fail("原发票号码", f"原发票号码 {invoice_label(key)} 与「{column}」写明的蓝字"
                                        f"发票 {invoice_label(other)} 不同：请按红字发票信息表"
                                        "（红字确认单）核对，改正其一后再导入")
        return original, original_code, None
    if not remarked:
        row.fail("原发票号码", _red_without_blue(row, amount))
        return None, None, None
    if len(remarked) > 1:
        columns = list(dict.fromkeys(column for _, _, column in remarked.values()))
        row.fail(columns[-1], f"「{'」「'.join(columns)}」写明了{len(remarked)}张蓝字发票（"
                         f"{'、'.join(invoice_label(k) for k in remarked)}），一张红字发票只冲销"
                         "一张：请在「原发票号码」列填写它冲销的蓝字发票")
        return INVALID, INVALID, None
    (original, original_code, column), = remarked.values()
    if len(original) > NUMBER_LENGTH:
        row.fail(column, f"「{column}」中的原发票号码超过 {NUMBER_LENGTH} 位：{original}")
        return INVALID, INVALID, None
    _check_original(row, number, code, original, original_code, column)
    return original, original_code, column


def _red_without_blue(row: Row, amount: Decimal) -> str:
    said = (f"金额为负数（{amount}）的是红字发票，须填写它冲销的蓝字发票的原发票号码"
            "（旧版发票另填原发票代码），以红字发票信息表（红字确认单）上的蓝字发票为准")
    remarks = [c for c in REMARK_COLUMNS if c in row.values]
    looked = (f"，「{'」「'.join(remarks)}」中也没有写明蓝字发票（{_REMARK_FORMS}）"
              if remarks else "")
    if "原发票号码" not in row.values:
        also = "、".join(next(c for c in INVOICE_COLUMNS if c.name == "原发票号码").aliases)
        remark = "" if remarks else "，或开票软件写明蓝字发票的「备注」列"
        return (f"{said}：此表没有「原发票号码」列（也可写作：{also}）{looked}，请导出时带上该列"
                f"（旧版发票还有「原发票代码」列）{remark}后再导入")
    return f"{said}：此行的原发票号码为空{looked}"


def _original_invoice(row: Row, number: str, code: str | None
                      ) -> tuple[str | None, str | None]:
    """The 原发票号码 / 原发票代码 a red-letter invoice names (None, None when blank), checked as
    a 发票号码 with its 发票代码 is."""
    original = row.get("原发票号码", _number) if row["原发票号码"] else None
    original_code = row.get("原发票代码", parse_code) if row["原发票代码"] else None
    if original is INVALID or original_code is INVALID:
        return original, original_code
    if original_code and not original:
        row.fail("原发票号码", f"填写了原发票代码 {original_code}，须同时填写原发票号码")
        return None, None
    if original:
        _check_original(row, number, code, original, original_code)
    return original, original_code


def _check_original(row: Row, number: str, code: str | None, original: str,
                    original_code: str | None, remark: str | None = None) -> None:
    """A blue invoice's 号码 with its 代码, as a 发票号码 with its 发票代码 is checked, and not
    the red invoice itself; `remark`: the 备注 column they were read from (else the 原发票号码 /
    原发票代码 columns)."""
    number_column, code_column = (remark, remark) if remark else ("原发票号码", "原发票代码")
    said, wrote = (f"「{remark}」中的", f"「{remark}」写有") if remark else ("", "填写了")
    problem = invoice_code_problem(original, original_code)
    if problem == "missing":
        row.fail(code_column, f"{said}原发票号码 {original} 是8位的旧版发票号码，须同时填写原发票代码"
                              "（10位或12位）")
    elif problem == "code":
        row.fail(code_column, f"{said}原发票代码须为10位或12位数字：{original_code!r}")
    elif problem == "number":
        row.fail(number_column, f"{wrote}原发票代码时，原发票号码须为8位数字：{original!r}")
    elif number is not INVALID and code is not INVALID \
            and invoice_key(original_code, original) == invoice_key(code, number):
        row.fail(number_column, f"红字发票{said or '的'}原发票号码不能是它自己的号码")


# 红冲状态 of an invoice row, as exports and clerks write it (blank: not reversed). A partial
# reversal is told by its red invoices' amounts; the flag alone takes nothing off.
_NOT_REVERSED = frozenset({"", "未红冲", "正常", "否", "N", "NO", "FALSE", "0", "蓝字"})
_REVERSED_IN_FULL = frozenset({"已红冲", "全额红冲", "全部红冲", "红冲", "是", "Y", "YES", "TRUE", "1"})
_REVERSED_IN_PART = frozenset({"部分红冲"})


def parse_reversal(text: str) -> str | None:
    """"full", "partial" or None (not reversed)."""
    value = unicodedata.normalize("NFKC", text).strip().upper()
    if value in _REVERSED_IN_FULL:
        return "full"
    if value in _REVERSED_IN_PART:
        return "partial"
    if value not in _NOT_REVERSED:
        raise CellError(f"无法识别的红冲状态：{text.strip()!r}（留空或写“未红冲”表示未红冲，"
                        "“已红冲”或“全额红冲”表示整张发票已被红冲，“部分红冲”表示按红字发票金额冲减）")
    return None


# a payment row's 作废状态, as finance systems and clerks write it (blank: in force)
_IN_FORCE = frozenset({"", "正常", "有效", "未作废", "否", "N", "NO", "FALSE", "0"})
_VOIDED = frozenset({"作废", "已作废", "是", "Y", "YES", "TRUE", "1"})


def parse_voided(text: str, what: str = "该回款单") -> bool:
    value = unicodedata.normalize("NFKC", text).strip().upper()
    if value in _VOIDED:
        return True
    if value not in _IN_FORCE:
        raise CellError(f"无法识别的作废状态：{text.strip()!r}（留空或写“正常”表示有效，"
                        f"写“已作废”表示{what}已作废）")
    return False


def _payment(row: Row, totals: bool = False) -> PaymentRecord:
    """A payment row; `totals`: its table's 金额 is the receipt's total beside 本次核销金额
    (`_receipt_totals`), read when the cell is not blank."""
    row.get("币种", _yuan_only)
    payment_no = row.get("回款单号", _number)
    number, code = _invoice_number(row)
    # the invoice's share of the receipt when the file says it, not the receipt's total
    amount_from = ALLOCATED if ALLOCATED in row.values else "金额"
    total = (row.get("金额", lambda t: parse_money(t, positive=True))
             if totals and row["金额"] else None)
    return PaymentRecord(
        payment_no=payment_no, invoice_no=number, paid_on=row.get("回款日期", _business_date),
        amount=row.get(amount_from, lambda t: parse_money(t, positive=True)), invoice_code=code,
        voided=row.get("作废状态", parse_voided), amount_from=amount_from, receipt_total=total)


# the headers a 收款核销 export gives the receipt's total (written on each invoice's row);
# 回款金额 is that total only beside a 本次核销金额 column (alone, it is the invoice's payment)
RECEIPT_TOTALS = frozenset({"收款金额"})
RECEIPT_TOTALS_BESIDE_SHARES = frozenset({"回款金额"})


def _receipt_totals(table, shares: bool) -> bool:
    """The table's 金额 column is the receipt's total on each row: headed 收款金额, or
    回款金额 beside the invoices' shares (`shares`: a 本次核销金额 column)."""
    header = header_key(table.headers.get("金额", ""))
    return header in RECEIPT_TOTALS or (shares and header in RECEIPT_TOTALS_BESIDE_SHARES)


def _rows(records: list[PaymentRecord]) -> str:
    """Where records are, as one message says it: `第2、3行`, or with the worksheet of each
    when they are on several (`收款核销.xlsx[12月] 第2行、收款核销.xlsx[1月] 第2行`)."""
    if len({r.at[0] for r in records}) == 1:
        return f"第{'、'.join(str(r.at[1]) for r in records)}行"
    return "、".join(f"{r.at[0]} 第{r.at[1]}行" for r in records)


def _receipts(found: list[PaymentRecord]) -> dict[str, list[PaymentRecord]]:
    """The rows of each receipt (回款单号) not voided, in the order found."""
    receipts: dict[str, list[PaymentRecord]] = {}
    for record in found:
        if not record.voided:
            receipts.setdefault(record.payment_no, []).append(record)
    return receipts


def _overdrawn_receipts(found: list[PaymentRecord]) -> list[Problem]:
    """Of all the payment rows of a file (every worksheet: a file lists each receipt whole,
    see `flows.sales_facts.store_receivables`): a receipt (not voided) whose rows give its
    收款金额 (`receipt_total`) two ways, or allocate more than it in total (本次核销金额 of all
    its rows) — money that was never received. Less is the receipt's unapplied part (预收).
    Refused at each of its rows."""
    problems = []
    for payment_no, records in _receipts(found).items():
        stated = [r for r in records if r.receipt_total is not None]
        if not stated:
            continue
        first = stated[0]
        other = next((r for r in stated if r.receipt_total != first.receipt_total), None)
        if other is not None:
            said = (f"回款单 {payment_no} 的收款金额在{_rows([first])}是 {yuan(first.receipt_total)}，"
                    f"在{_rows([other])}是 {yuan(other.receipt_total)}：收款金额是收款单的收款总额，"
                    "同一收款单的各行应相同；若是两张收款单（不同账套或年度各自编号），请在导出时给"
                    "回款单号加上账套或年度前缀")
            problems += [Problem(*r.at, "金额", said) for r in stated]
            continue
        allocated = sum((r.amount for r in records), Decimal("0"))
        if allocated > first.receipt_total:
            said = (f"回款单 {payment_no} {_rows(records)}的本次核销金额合计 {yuan(allocated)}，"
                    f"超过该收款单的收款金额 {yuan(first.receipt_total)}：核销出去的款项不能多于收到的"
                    "款项，请核对各行的本次核销金额")
            problems += [Problem(*r.at, r.amount_from, said) for r in records]
    return problems


def _ambiguous_receipts(found: list[PaymentRecord]) -> list[Problem]:
    """Of a table whose amount is 收款金额 and that has no 核销金额 column: a receipt (not
    voided) listed against several invoices with the same amount on every row. That is how a
    收款核销 export writes the receipt's total beside each invoice it settles; read as each
    invoice's share, the money would count once per invoice. Refused at each of its rows."""
    problems = []
    for payment_no, records in _receipts(found).items():
        if len(records) < 2 or len({r.amount for r in records}) > 1:
            continue
        amount = yuan(records[0].amount)
        invoices = "、".join(invoice_label(r.invoice_key) for r in records)
        problems += [Problem(*r.at, "金额", (
            f"回款单 {payment_no} 核销 {len(records)} 张发票（{invoices}），每行金额都是 {amount}："
            "无法判断这是收款单的收款总额还是本张发票的核销金额；请导出收款核销记录时带上"
            "「本次核销金额」列后再导入（若确是每张发票各核销 "
            f"{amount}，请把此列表头改为「本次核销金额」）")) for r in records]
    return problems


def _sheet_kind(sheet: Sheet) -> str | None:
    """Told by the header, looked for where `Sheet.table` looks for it (`Sheet.names_any`)."""
    if sheet.names_any(_PAYMENT_MARKERS):
        return "payments"
    if sheet.names_any(_INVOICE_MARKERS):
        return "invoices"
    return None


def parse_receivables(sheets: list[Sheet]) -> tuple[tuple[ReceivableRecord, ...],
                                                     tuple[PaymentRecord, ...]]:
    """Invoices and payments from export sheets; each sheet is an invoice table (开票日期,
    到期日 …) or a payment table (回款单号, 回款日期 …), told apart by its header. An invoice
    is due 价税合计, or 金额 + 税额, or 金额 (`_due`); a payment row is worth its 本次核销金额
    when the table has it, and a receipt's 收款金额 repeated on several invoices without it is
    refused (`_ambiguous_receipts`), and so are a receipt's rows allocating more than its
    收款金额 (`_overdrawn_receipts`); both over all the file's worksheets. Raises TableError
    listing every problem (file, row, column) in Chinese."""
    invoices: list[ReceivableRecord] = []
    payments: list[PaymentRecord] = []
    problems: list[Problem] = []
    more = 0  # problems a table found but did not list (beyond its first MAX_PROBLEMS)
    # a record on two worksheets (一张发票 on 10月 and 11月): the second would overwrite the first
    first_seen: dict[tuple, tuple[str, int]] = {}
    # per 回款单号, each row's (voided, file or sheet, row): a 回款单 is voided whole
    states: dict[str, list[tuple[bool, str, int]]] = {}
    # rows whose amount is 收款金额 with no 核销金额 beside it, of every worksheet
    totals_only: list[PaymentRecord] = []

    def once(table, found, key, column: str) -> None:
        for row, record in zip(table.rows, found):
            k = (column, key(record))
            where = first_seen.setdefault(k, (table.source, row.number))
            if where[0] != table.source:
                problems.append(Problem(table.source, row.number, column,
                                        f"与 {where[0]} 第{where[1]}行重复"))

    for sheet in sheets:
        kind = _sheet_kind(sheet)
        try:
            if kind is None:
                raise TableError([Problem(sheet.source, None, None,
                                          "无法判断是应收发票表还是回款表：应收表需有「开票日期」"
                                          "「到期日」列，回款表需有「回款单号」「回款日期」列")])
            if kind == "invoices":
                table = sheet.table(INVOICE_COLUMNS)
                _check_amount_columns(table, (DUE, "金额"), INVOICE_COLUMNS)
                found = _located(table, convert_rows(table.rows, _invoice))
                no_duplicates(table, found, lambda r: r.key, "发票号")
                once(table, found, lambda r: r.key, "发票号")
                invoices += found
            else:
                table = sheet.table(PAYMENT_COLUMNS)
                _check_amount_columns(table, ("金额", ALLOCATED), PAYMENT_COLUMNS)
                shares = ALLOCATED in table.columns
                totals = _receipt_totals(table, shares)
                found = _located(table, convert_rows(
                    table.rows, lambda row: _payment(row, totals=shares and totals)))
                no_duplicates(table, found, lambda r: (r.payment_no, r.invoice_key), "回款单号")
                once(table, found, lambda r: (r.payment_no, r.invoice_key), "回款单号")
                if totals and not shares:
                    totals_only += found
                payments += found
                for row, record in zip(table.rows, found):
                    states.setdefault(record.payment_no, []).append(
                        (record.voided, table.source, row.number))
            if table.unknown:
                log.warning("%s: columns not used: %s", sheet.source, "、".join(table.unknown))
        except TableError as exc:
            problems += exc.problems
            more += exc.more
    problems += _ambiguous_receipts(totals_only)
    problems += _overdrawn_receipts(payments)
    for payment_no, ((first, source, number), *others) in states.items():
        for voided, at, row_number in others:
            if voided != first:
                where = "本表" if at == source else source
                problems.append(Problem(
                    at, row_number, "作废状态",
                    f"回款单 {payment_no} 在{where}第{number}行{_void_word(first)}，此行却"
                    f"{_void_word(voided)}：回款单须整单作废，请统一该单各行的作废状态"))
    if problems:
        raise TableError(problems[:MAX_PROBLEMS],
                         more=more + max(0, len(problems) - MAX_PROBLEMS))
    return tuple(invoices), tuple(payments)


def _located(table, records: list) -> list:
    """The records of a table's rows (all converted: none was dropped), each with its row."""
    return [dataclasses.replace(r, at=(table.source, row.number))
            for row, r in zip(table.rows, records)]


def _void_word(voided: bool) -> str:
    return "已作废" if voided else "未作废"


# a 收款单 paid by 电汇 and 承兑汇票 lists one 核销 line per 结算方式: the clerk merges them
PAYMENT_REPEATED = ("：同一回款单对同一张发票只能有一行，若按结算方式等分成了多行，"
                    "请合并为一行（金额相加）后再导入")


def no_duplicates(table, records, key, column: str) -> None:
    """One row per key in a table: a row that repeats an earlier one in everything read is
    one row given twice (delete it); another row of the key is refused with the advice to
    merge (amounts added, for a payment's rows), which would double a repeated row."""
    first: dict[Any, tuple[int, Any]] = {}
    problems = []
    advice = PAYMENT_REPEATED if column == "回款单号" else ""
    for row, record in zip(table.rows, records):
        k = key(record)
        if k not in first:
            first[k] = (row.number, record)
            continue
        number, earlier = first[k]
        if _same_read(earlier, record):
            said = f"与第{number}行完全相同：{REPEATED_ROW}"
        else:
            said = f"与第{number}行重复{advice}"
        problems.append(Problem(table.source, row.number, column, said))
    if problems:
        raise TableError(problems)


def _same_read(first, other) -> bool:
    """Two records read the same in everything but where they are (`at`): their fields
    compared, those left out of `==` (messages' helpers, a receipt's total) too; raw rows
    (`Row`, a failed strict read's second look) by their cells."""
    if isinstance(first, Row):
        return first.values == other.values
    return (dataclasses.replace(first, at=None).__dict__
            == dataclasses.replace(other, at=None).__dict__)


def read_receivables_file(path: Path, data: bytes | None = None
                          ) -> tuple[tuple[ReceivableRecord, ...], tuple[PaymentRecord, ...]]:
    """One export file (CSV, or XLSX with one table per worksheet), parsed strictly (`data`:
    its bytes, read already); a PermanentError names the file, row and column of every
    problem."""
    try:
        return parse_receivables(load_sheets(path, data=data))
    except TableError as exc:
        raise PermanentError(f"应收/回款导出文件 {path.name} 无法导入：\n{exc}",
                             provider="embedded-finance", code="bad-file") from exc


# --- REST ----------------------------------------------------------------------------------

INVOICE_PATH = "/api/v1/invoice-requests"
VOUCHER_PATH = "/api/v1/voucher-drafts"
RECEIVABLES_PATH = "/api/v1/receivables"


class RestFinance(RemoteClient):
    """Finance system's REST API; a submission's key travels as the Idempotency-Key, so a retry
    after a lost answer returns the first reference instead of a second invoice request or a
    second set of vouchers. Reading receivables is a GET, retried as it is."""

    provider = "finance"

    def __init__(self, base_url: str, token: SecretStr, timeout: float = 10.0,
                 attempts: int = 4) -> None:
        self._connect(base_url, timeout, f"Bearer {token.get_secret_value()}")
        self._post = transient_retry(attempts)(self._post_once)
        self._get = transient_retry(attempts)(self._get_once)

    def request_invoice(self, request: InvoiceRequest) -> str:
        _check(request)
        return self._post(INVOICE_PATH, request.to_json_dict(), request.request_id)

    def submit_vouchers(self, batch: VoucherBatch) -> str:
        _check_batch(batch)
        return self._post(VOUCHER_PATH, batch.to_json_dict(), batch.batch_id)

    def fetch_receivables(self, since_cursor: str | None) -> ReceivablesPage:
        params = {"cursor": since_cursor} if since_cursor is not None else {}
        return self._get(params)

    def _post_once(self, path: str, body: dict, key: str) -> str:
        response = send(self._client, self.provider, "POST", path, json=body,
                        headers={"Idempotency-Key": key})
        try:
            reference = response.json()["reference"]
            if not isinstance(reference, str) or not reference:
                raise ValueError(f"reference {reference!r}")
            return reference
        except (ValueError, KeyError, TypeError) as exc:
            # the request may well be applied: a person must look rather than a blind retry
            raise PermanentError(f"{self.provider} answer not understood: {exc!r}; "
                                 f"{response.text[:200]}", provider=self.provider,
                                 code="bad-body") from exc

    def _get_once(self, params: dict) -> ReceivablesPage:
        response = send(self._client, self.provider, "GET", RECEIVABLES_PATH, params=params)
        try:
            body = response.json()
        except ValueError as exc:
            raise PermanentError(f"财务系统应收/回款接口的应答不是 JSON，未导入（{exc}）："
                                 f"{response.text[:200]!r}", provider=self.provider,
                                 code="bad-body") from exc
        return parse_receivables_page(body, params.get("cursor"))


def parse_receivables_page(body: Any, since_cursor: str | None = None) -> ReceivablesPage:
    """The wire form of a receivables page, checked strictly: dates `YYYY-MM-DD`, amounts as
    decimal strings in whole fen and > 0, numbers non-empty, an 8-digit (old-style)
    invoice_no with its 10- or 12-digit invoice_code, no duplicates in the page.

    A refusal (PermanentError, code `bad-body`) lists every problem in Chinese, as the export
    files' problems are said, each under its field path and naming the record by its number
    when it has a readable one (`invoices[3].amount（发票 04419876）：…`)."""
    where = "从头读取的第一页" if since_cursor is None else f"游标 {since_cursor} 之后的一页"
    problems: list[str] = []

    def refuse(item, index: str, name: str | None, message: str) -> None:
        """One problem of the record `item` at `index` (`invoices[3]`), in its field `name`
        (None: the record as a whole)."""
        key = "payment_no" if index.startswith("payments") else "invoice_no"
        number = item.get(key) if isinstance(item, dict) else None
        said = (f"（{'回款' if key == 'payment_no' else '发票'} {number.strip()}）"
                if isinstance(number, str) and number.strip() and NUL not in number else "")
        problems.append(f"{index}{'.' + name if name else ''}{said}：{message}")

    def field(item: dict, name: str, index: str, kind: str):
        value = item.get(name)
        try:  # no database text column keeps a NUL character, whatever the field
            if isinstance(value, str):
                no_nul(value)
        except CellError as exc:
            refuse(item, index, name, exc.message)
            return False if kind == "flag" else None
        if kind in ("text", "number"):
            if not isinstance(value, str) or not value.strip():
                refuse(item, index, name, f"不能为空，须为文字（JSON 字符串），读到 {value!r}")
                return None
            if kind == "text":
                return value.strip()
            # a document number keyed as the file import keys it (`parse_code`): ＦＰ－Ａ is FP-A
            number = value.translate(HALF_WIDTH).strip()
            if len(number) > NUMBER_LENGTH:
                refuse(item, index, name, _too_long(number))
                return None
            return number
        if kind in ("code", "uscc"):  # optional text
            if value is None or value == "":
                return None
            if not isinstance(value, str):
                refuse(item, index, name, f"须为文字（JSON 字符串）或不填，读到 {value!r}")
                return None
            if kind == "code":
                return value.translate(HALF_WIDTH).strip() or None
            try:
                return _uscc(value)
            except CellError as exc:
                refuse(item, index, name, exc.message)
                return None
        if kind == "flag":  # optional boolean, false when absent
            if value is None:
                return False
            if not isinstance(value, bool):
                refuse(item, index, name, f"须为 true 或 false（或不填），读到 {value!r}")
                return False
            return value
        if kind == "date":
            try:
                if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                    raise ValueError
                return dt.date.fromisoformat(value)
            except ValueError:
                refuse(item, index, name, f"不是有效日期：{value!r}（应写作 \"2026-10-31\"）")
                return None
        # money: a decimal string (exact), whole fen, > 0 ("credit": not 0, < 0 a credit note)
        if not isinstance(value, str) or not re.fullmatch(r"-?\d+(\.\d+)?", value):
            refuse(item, index, name, f"不是有效金额：{value!r}（应为 JSON 字符串，写作 "
                                      "\"1234.50\"，不用数字类型，以免小数失真）")
            return None
        amount = Decimal(value)
        if amount != amount.quantize(CENT):
            refuse(item, index, name, f"金额须精确到分：{value!r}")
        elif amount == 0:
            refuse(item, index, name, "金额不能为零")
        elif kind == "money" and amount < 0:
            refuse(item, index, name, f"金额须大于零：{value!r}")
        else:
            try:  # beyond what an amount column keeps
                return money_in_range(amount.quantize(CENT), value)
            except CellError as exc:
                refuse(item, index, name, exc.message)
        return None

    def code_problems(item, index: str, number: str | None, code: str | None,
                      number_field: str, code_field: str) -> None:
        """An 8-digit (old-style) number needs its code; a code goes with 8 digits only."""
        problem = None if number is None else invoice_code_problem(number, code)
        if problem == "missing":
            refuse(item, index, code_field, f"{number_field} {number} 是8位的旧版发票号码，须同时"
                                            f"给出 {code_field}（发票代码，10位或12位；不同发票代码"
                                            "下的号码会重复）")
        elif problem == "code":
            refuse(item, index, code_field, f"发票代码须为10位或12位数字：{code!r}")
        elif problem == "number":
            refuse(item, index, number_field, f"给出 {code_field}（发票代码）时，{number_field} "
                                              f"须为8位数字：{number!r}（数电发票的20位号码不带"
                                              "发票代码）")

    def keyed(item, record: dict, index: str) -> None:
        code_problems(item, index, record["invoice_no"], record["invoice_code"], "invoice_no",
                      "invoice_code")

    def red_letter(item, record: dict, index: str) -> None:
        """A red-letter (negative) invoice names its blue one, unless voided, as an invoice is
        named; one naming a blue invoice is negative; only a blue (positive) invoice is
        reversed in full."""
        number, code = record["original_no"], record["original_code"]
        amount = record["amount"]
        if number is None:
            if code is not None:
                refuse(item, index, "original_invoice_no", f"给出了 original_invoice_code "
                                                           f"{code!r}，须同时给出原发票号码")
            elif amount is not None and amount < 0 and not record["voided"]:
                refuse(item, index, "original_invoice_no", f"金额为负数（{amount}）的是红字发票，"
                       "须给出它冲销的蓝字发票的原发票号码（旧版发票另给 original_invoice_code），"
                       "以红字发票信息表（红字确认单）上的蓝字发票为准")
        else:
            code_problems(item, index, number, code, "original_invoice_no",
                          "original_invoice_code")
            if invoice_code_problem(number, code) is None and len(number) > NUMBER_LENGTH:
                refuse(item, index, "original_invoice_no", _too_long(number))
            if amount is not None and amount > 0:
                refuse(item, index, "amount", f"给出了原发票号码（original_invoice_no）的是红字"
                                              f"发票，金额须为负数：{amount}")
            if invoice_key(code, number) == invoice_key(record["invoice_code"],
                                                         record["invoice_no"] or ""):
                refuse(item, index, "original_invoice_no", "红字发票的原发票号码不能是它自己的号码")
        if record["reversed_in_full"] and amount is not None and amount < 0:
            refuse(item, index, "reversed_in_full", f"只有蓝字发票（金额为正）才能整张红冲，此发票"
                                                    f"金额为 {amount}")

    def yuan_only(item, index: str) -> None:
        """The hub keeps yuan: an amount in another currency would be read as yuan."""
        currency = item.get("currency")
        if currency not in (None, "CNY"):
            refuse(item, index, "currency", f"只支持人民币（CNY）金额，此记录币种为 {currency!r}")

    def records(raw: list, name: str):
        """(index, item) of every record of the list that is a JSON object."""
        for n, item in enumerate(raw):
            if isinstance(item, dict):
                yield n, f"{name}[{n}]", item
            else:
                refuse(item, f"{name}[{n}]", None, f"须为 JSON 对象，读到 {item!r}")

    if not isinstance(body, dict):
        raise PermanentError(f"财务系统应收/回款接口的应答（{where}）不是 JSON 对象，未导入",
                             provider="finance", code="bad-body")
    raw_invoices, raw_payments = body.get("invoices"), body.get("payments")
    cursor = body.get("next_cursor")
    for name, raw in (("invoices", raw_invoices), ("payments", raw_payments)):
        if not isinstance(raw, list):
            problems.append(f"{name}：须为 JSON 数组（没有记录时为 []），读到 {raw!r}")
    if not isinstance(raw_invoices, list) or not isinstance(raw_payments, list):
        raw_invoices, raw_payments = [], []
    if cursor is not None and (not isinstance(cursor, str) or not cursor):
        problems.append(f"next_cursor：须为非空字符串，或为 null（其后没有记录时），读到 {cursor!r}")
    elif cursor is not None:  # stored (connector_cursor) and sent back: no NUL either
        try:
            no_nul(cursor)
        except CellError as exc:
            problems.append(f"next_cursor：{exc.message}")
    invoices, payments = [], []
    seen_invoices: dict[tuple, int] = {}
    seen_payments: dict[tuple, int] = {}
    for n, i, item in records(raw_invoices, "invoices"):
        record = dict(invoice_no=field(item, "invoice_no", i, "number"),
                      customer_uscc=field(item, "customer_uscc", i, "uscc"),
                      customer_name=field(item, "customer_name", i, "text"),
                      issued_on=field(item, "issued_on", i, "date"),
                      due_on=field(item, "due_on", i, "date"),
                      amount=field(item, "amount", i, "credit"),
                      invoice_code=field(item, "invoice_code", i, "code"),
                      voided=field(item, "voided", i, "flag"),
                      original_no=field(item, "original_invoice_no", i, "code"),
                      original_code=field(item, "original_invoice_code", i, "code"),
                      reversed_in_full=field(item, "reversed_in_full", i, "flag"))
        yuan_only(item, i)
        keyed(item, record, i)
        red_letter(item, record, i)
        if record["issued_on"] and record["due_on"] and record["due_on"] < record["issued_on"]:
            refuse(item, i, "due_on", f"到期日 {record['due_on']} 早于开票日期 "
                                      f"{record['issued_on']}")
        key = (record["invoice_code"], record["invoice_no"])
        if record["invoice_no"] is not None:
            first = seen_invoices.setdefault(key, n)
            if first != n:
                refuse(item, i, "invoice_no", f"与 invoices[{first}] 重复：同一张发票在本页出现两次")
        invoices.append(record)
    for n, i, item in records(raw_payments, "payments"):
        yuan_only(item, i)
        record = dict(payment_no=field(item, "payment_no", i, "number"),
                      invoice_no=field(item, "invoice_no", i, "number"),
                      paid_on=field(item, "paid_on", i, "date"),
                      amount=field(item, "amount", i, "money"),
                      invoice_code=field(item, "invoice_code", i, "code"),
                      voided=field(item, "voided", i, "flag"))
        keyed(item, record, i)
        key = (record["payment_no"], record["invoice_code"], record["invoice_no"])
        if None not in (record["payment_no"], record["invoice_no"]):
            first = seen_payments.setdefault(key, n)
            if first != n:
                label = invoice_label(invoice_key(record["invoice_code"], record["invoice_no"]))
                refuse(item, i, None, f"与 payments[{first}] 重复：回款单对发票 {label} 的核销在本页"
                                      "出现两次（同一回款单对同一张发票只能有一条）")
        payments.append((n, item, record))
    voided: dict[str, tuple[int, bool]] = {}  # a payment is voided whole
    for n, item, r in payments:
        first, state = voided.setdefault(r["payment_no"], (n, r["voided"]))
        if r["voided"] != state:
            refuse(item, f"payments[{n}]", "voided", f"回款单在 payments[{first}] "
                   f"{_void_word(state)}，此条却{_void_word(r['voided'])}：回款单须整单作废，"
                   "请统一该单各条的 voided")
    if cursor is None and (invoices or payments) and not problems:
        # records without a position to resume from would be read again and again
        problems.append(f"next_cursor：本页有 {len(invoices) + len(payments)} 条记录，"
                        "next_cursor 却为 null（没有本页之后的游标），无法接着读取")
    if problems:
        shown = "".join(f"\n  - {p}" for p in problems[:MAX_PROBLEMS])
        more = (f"\n  - ……另有 {len(problems) - MAX_PROBLEMS} 处问题未列出"
                if len(problems) > MAX_PROBLEMS else "")
        raise PermanentError(f"财务系统应收/回款接口返回的数据（{where}）有 {len(problems)} 处问题，"
                             f"本页未导入：{shown}{more}", provider="finance", code="bad-body")
    return ReceivablesPage(tuple(ReceivableRecord(**r) for r in invoices),
                           tuple(PaymentRecord(**r) for _, _, r in payments), cursor)


def _too_long(number: str) -> str:
    return f"不能超过 {NUMBER_LENGTH} 个字符（此处 {len(number)} 个）：{number!r}"
