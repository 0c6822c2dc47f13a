"""Finance: ask finance to prepare the invoice (开票准备) for a signed quote.

- `EmbeddedFinance` drops `<request_id>.json` and `<request_id>.xlsx` into a folder finance
  watches; the JSON is written last and is the "done" marker.
- `RestFinance` POSTs to `{base}/api/v1/invoice-requests` with `Idempotency-Key: <request_id>`.

Both are idempotent on `request_id` ("INV-<quote code>"): asking twice returns the first
reference and prepares nothing new, so a retried or re-run flow cannot ask for two invoices.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from connectors.base import PermanentError, RemoteClient, send, transient_retry

SHANGHAI = ZoneInfo("Asia/Shanghai")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class InvoiceLine:
    """One quote line. `unit_price` and `amount` are tax included, as quotes are
    (amount = quantity × unit_price); `tax` is the VAT contained in `amount`."""

    sku: str
    model: str
    name: str
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
        return _jsonable(dataclasses.asdict(self))


@runtime_checkable
class Finance(Protocol):
    def request_invoice(self, request: InvoiceRequest) -> str:
        """Ask finance to prepare the invoice; returns finance's reference (same on replay)."""
        ...


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def _check(request: InvoiceRequest) -> None:
    """Refuse what finance could not invoice: naive times, sub-fen money, no lines."""
    problems = []
    if not request.request_id.strip():
        problems.append("empty request_id")
    if request.signed_at.tzinfo is None:
        problems.append("signed_at is naive")
    if not request.lines:
        problems.append("no lines")
    money = [("total_amount", request.total_amount), ("tax_amount", request.tax_amount)]
    for n, line in enumerate(request.lines, start=1):
        money += [(f"line {n} unit_price", line.unit_price), (f"line {n} amount", line.amount),
                  (f"line {n} tax", line.tax)]
    for label, value in money:
        if not isinstance(value, Decimal) or not value.is_finite() or value != value.quantize(CENT):
            problems.append(f"{label} {value!r} is not a Decimal in whole fen")
    if problems:
        raise PermanentError(f"invoice request {request.request_id!r} refused: "
                             + "; ".join(problems), provider="finance", code="bad-request")


# --- embedded ------------------------------------------------------------------------------

SHEET_HEADERS = ("申请编号", "客户名称", "统一社会信用代码", "报价单号", "型号", "品名", "数量",
                 "含税单价", "金额", "税率", "税额", "合计")
MONEY_FORMAT = "#,##0.00"


def file_stem(request_id: str) -> str:
    """The file name stem for a request id: the id itself when it is file-name safe (the usual
    "INV-Q2611-7K3M9P-X"); otherwise %-escaped, e.g. a Crockford check symbol "*" → "%2A"."""
    stem = urllib.parse.quote(request_id.strip(), safe="-_.")
    if not stem or stem.startswith("."):
        raise PermanentError(f"request id {request_id!r} cannot name a file",
                             provider="finance", code="bad-request")
    return stem


class EmbeddedFinance:
    """Invoice-preparation requests as files in a drop folder finance works from."""

    provider = "embedded-finance"

    def __init__(self, drop_dir: Path) -> None:
        self.drop_dir = Path(drop_dir)
        self._lock = threading.Lock()

    def request_invoice(self, request: InvoiceRequest) -> str:
        _check(request)
        stem = file_stem(request.request_id)
        json_path = self.drop_dir / f"{stem}.json"
        xlsx_path = self.drop_dir / f"{stem}.xlsx"
        with self._lock:
            done = self._reference_of(json_path)
            if done:
                return done
            self.drop_dir.mkdir(parents=True, exist_ok=True)
            reference = f"DRAFT-{request.request_id}"
            # the workbook first, the JSON last: a crash in between leaves no JSON, so the
            # retry rewrites both instead of pointing finance at half a request
            _write_atomically(xlsx_path, lambda fh: build_workbook(request).save(fh))
            document = {"reference": reference, "status": "draft",
                        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                        "workbook": xlsx_path.name, "request": request.to_json_dict()}
            payload = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
            if not _publish_once(json_path, payload):
                # another process published the same request a moment ago: its answer stands
                return self._reference_of(json_path) or reference
            return reference

    def _reference_of(self, json_path: Path) -> str | None:
        try:
            return json.loads(json_path.read_text(encoding="utf-8"))["reference"]
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"finance draft {json_path} is unreadable: {exc!r}",
                                 provider=self.provider, code="corrupt-draft") from exc


def _temp_beside(path: Path) -> tuple[int, str]:
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")


def _write_atomically(path: Path, write) -> None:
    """Readers see the old file or the whole new one, never a partial write."""
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _publish_once(path: Path, payload: bytes) -> bool:
    """Create `path` with `payload` atomically unless it exists; False when it already did."""
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if the name exists: exactly one publisher wins
        except FileExistsError:
            return False
        except OSError:
            # file systems without hard links: exclusivity then rests on the in-process lock
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        _unlink_quietly(tmp)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _money(value: Decimal) -> Decimal:
    # exact: _check() guarantees whole fen; openpyxl writes Decimal with 16 significant
    # digits, more than Numeric(14, 2) ever needs
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
        ws.append([request.request_id, request.customer_legal_name, request.customer_uscc or "",
                   request.quote_code, line.model, line.name, line.quantity,
                   _money(line.unit_price), _money(line.amount - line.tax), line.tax_rate,
                   _money(line.tax), _money(line.amount)])
    ws.append(["合计", None, None, None, None, None, sum(line.quantity for line in request.lines),
               None, _money(request.total_amount - request.tax_amount), None,
               _money(request.tax_amount), _money(request.total_amount)])
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
    for row in ws.iter_rows(min_row=2):
        for col in (8, 9, 11, 12):  # 含税单价 金额 税额 合计
            row[col - 1].number_format = MONEY_FORMAT
        row[9].number_format = "0%"  # 税率
    for col, width in zip("ABCDEFGHIJKL", (22, 30, 22, 20, 16, 24, 8, 14, 14, 8, 14, 14)):
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
        info.append([label, value])
        if isinstance(value, Decimal):
            info.cell(info.max_row, 2).number_format = MONEY_FORMAT
    info.column_dimensions["A"].width = 18
    info.column_dimensions["B"].width = 48
    return wb


# --- REST ----------------------------------------------------------------------------------

class RestFinance(RemoteClient):
    """Finance system's REST API; the request id travels as the Idempotency-Key, so a retry
    after a lost answer returns the first reference instead of a second invoice request."""

    provider = "finance"

    def __init__(self, base_url: str, token: SecretStr, timeout: float = 10.0,
                 attempts: int = 4) -> None:
        self._connect(base_url, timeout, f"Bearer {token.get_secret_value()}")
        self._post = transient_retry(attempts)(self._post_once)

    def request_invoice(self, request: InvoiceRequest) -> str:
        _check(request)
        return self._post(request)

    def _post_once(self, request: InvoiceRequest) -> str:
        response = send(self._client, self.provider, "POST", "/api/v1/invoice-requests",
                        json=request.to_json_dict(),
                        headers={"Idempotency-Key": request.request_id})
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
