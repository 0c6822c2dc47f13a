"""REST ERP / finance simulator: stock, invoice requests, voucher drafts, receivables.

- `POST /api/v1/stock/query` `{"skus": [...]}` → `{"items": [{"sku", "available"}]}`; known
  SKUs only, more than 200 SKUs → 400 (the client must batch).
- `POST /api/v1/invoice-requests` with `Idempotency-Key` → 201 `{"reference": ...}`. A replay
  of a key returns the first answer (with `Idempotent-Replayed: true`) and counts as a replay,
  not a new effect; the same key with a different body → 422; no lines, or a line without
  its `unit` (单位) → 400.
- `POST /api/v1/voucher-drafts` with `Idempotency-Key: <batch_id>` → 201 `{"reference": ...}`;
  same replay rules; an unbalanced voucher or a one-sided/negative entry → 422 (finance's own
  check, whatever the client checked); so is a voucher whose `number` (凭证号) is booked
  already in its (word, period) by another batch, as K/3 Cloud and U8 refuse it.
- `GET /api/v1/receivables?cursor=<c>` → `{"invoices": [...], "payments": [...],
  "next_cursor": ...}`: the records finance recorded after the cursor, `page_size` at a time
  (invoices and payments in the order they were recorded, as given: a voided payment carries
  `"voided": true`). `next_cursor` is the position after
  the page; it is null only when nothing came after the cursor given. An unknown cursor → 400.
- All need `Authorization: Bearer <token>` (401 otherwise).

`lose_answers(n)` applies the next n new submissions (invoice requests or voucher batches) and
then hangs past the client's timeout, so the client never hears the answer: the idempotency
key must prevent a duplicate.
"""
from __future__ import annotations

import collections
import json
import time
from decimal import Decimal, InvalidOperation

from tests.simulators.base import Faults, Reply, Request, Simulator

STOCK_PATH = "/api/v1/stock/query"
INVOICE_PATH = "/api/v1/invoice-requests"
VOUCHER_PATH = "/api/v1/voucher-drafts"
RECEIVABLES_PATH = "/api/v1/receivables"
MAX_BATCH = 200


class ErpSimulator(Simulator):
    name = "erp"

    def __init__(self, token: str, stock: dict[str, int] | None = None,
                 faults: Faults | None = None, page_size: int = 100) -> None:
        super().__init__(faults)
        self.token = token
        self.stock: dict[str, int] = dict(stock or {})
        self.stock_batches: list[int] = []  # size of every answered stock query
        self.invoices: dict[str, dict] = {}  # request id → the body first applied
        self.effects: collections.Counter[str] = collections.Counter()  # applied per id
        self.replays: collections.Counter[str] = collections.Counter()
        self._answers: dict[str, tuple[int, dict]] = {}
        self.voucher_batches: dict[str, dict] = {}  # batch id → the body first applied
        self.voucher_effects: collections.Counter[str] = collections.Counter()
        self.voucher_replays: collections.Counter[str] = collections.Counter()
        self._voucher_answers: dict[str, tuple[int, dict]] = {}
        # (凭证字, period, 凭证号) → the batch that booked it
        self.voucher_numbers: dict[tuple[str, str, int], str] = {}
        self.page_size = page_size
        self.receivables_log: list[tuple[str, dict]] = []  # ("invoice" | "payment", record)
        self.receivables_pages: list[str | None] = []  # the cursor of every answered GET
        self._lose = 0
        self._lose_seconds = 0.0

    # --- test controls -----------------------------------------------------------------
    def lose_answers(self, count: int, hang_seconds: float) -> None:
        """Apply the next `count` new submissions (invoice requests or voucher batches), then
        hang `hang_seconds` (longer than the client's timeout) before answering a client that
        has gone."""
        with self.lock:
            self._lose, self._lose_seconds = count, hang_seconds

    def record_receivables(self, invoices: list[dict] = (), payments: list[dict] = ()) -> None:
        """Finance records invoices and payments (wire form, taken as given: a test may record
        a malformed one to see the client refuse it)."""
        with self.lock:
            self.receivables_log += [("invoice", dict(r)) for r in invoices]
            self.receivables_log += [("payment", dict(r)) for r in payments]

    @property
    def effect_count(self) -> int:
        return sum(self.effects.values())

    # --- wire --------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, {"error": "unauthorized"})
        if request.method == "POST" and request.path == STOCK_PATH:
            return self._stock(request)
        if request.method == "POST" and request.path == INVOICE_PATH:
            return self._invoice(request)
        if request.method == "POST" and request.path == VOUCHER_PATH:
            return self._vouchers(request)
        if request.method == "GET" and request.path == RECEIVABLES_PATH:
            return self._receivables(request)
        return Reply(404, {"error": "no such route"})

    def _stock(self, request: Request) -> Reply:
        try:
            skus = request.json()["skus"]
            if not isinstance(skus, list) or not all(isinstance(s, str) for s in skus):
                raise ValueError("skus must be a list of strings")
        except (ValueError, KeyError, TypeError) as exc:
            return Reply(400, {"error": f"bad request: {exc}"})
        if len(skus) > MAX_BATCH:
            return Reply(400, {"error": f"at most {MAX_BATCH} skus per query"})
        with self.lock:
            self.stock_batches.append(len(skus))
            items = [{"sku": s, "available": self.stock[s]} for s in skus if s in self.stock]
        return Reply(200, {"items": items})

    def _invoice(self, request: Request) -> Reply:
        key = request.headers.get("idempotency-key", "")
        if not key:
            return Reply(400, {"error": "Idempotency-Key header required"})
        try:
            body = request.json()
            if body.get("request_id") != key:
                raise ValueError("request_id differs from Idempotency-Key")
            for field in ("total_amount", "tax_amount"):
                if not isinstance(body[field], str):
                    raise ValueError(f"{field} must be a decimal string")
            lines = body["lines"]
            if not isinstance(lines, list) or not lines:
                raise ValueError("lines must be a non-empty list")
            for n, line in enumerate(lines):
                # the invoice's 单位 is the one ordered: finance does not guess it
                if not isinstance(line.get("unit"), str) or not line["unit"].strip():
                    raise ValueError(f"lines[{n}].unit must be a non-empty string")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return Reply(400, {"error": f"bad request: {exc}"})
        lose_for = 0.0
        with self.lock:
            if key in self._answers:
                if _canonical(self.invoices[key]) != _canonical(body):
                    return Reply(422, {"error": "Idempotency-Key reused with another body"})
                self.replays[key] += 1
                status, answer = self._answers[key]
                return Reply(status, answer, {"Idempotent-Replayed": "true"})
            self.effects[key] += 1
            self.invoices[key] = body
            answer = {"reference": f"FIN-{len(self._answers) + 1:06d}", "request_id": key}
            self._answers[key] = (201, answer)
            if self._lose > 0:
                self._lose -= 1
                lose_for = self._lose_seconds
        if lose_for:
            time.sleep(lose_for)  # applied, but the client gives up before hearing it
        return Reply(201, answer)

    def _vouchers(self, request: Request) -> Reply:
        key = request.headers.get("idempotency-key", "")
        if not key:
            return Reply(400, {"error": "Idempotency-Key header required"})
        try:
            body = request.json()
            if body.get("batch_id") != key:
                raise ValueError("batch_id differs from Idempotency-Key")
            vouchers = body["vouchers"]
            if not isinstance(vouchers, list) or not vouchers:
                raise ValueError("vouchers must be a non-empty list")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return Reply(400, {"error": f"bad request: {exc}"})
        unbalanced = _unbalanced(vouchers)
        if unbalanced:
            return Reply(422, {"error": unbalanced})
        lose_for = 0.0
        with self.lock:
            if key in self._voucher_answers:
                if _canonical(self.voucher_batches[key]) != _canonical(body):
                    return Reply(422, {"error": "Idempotency-Key reused with another body"})
                self.voucher_replays[key] += 1
                status, answer = self._voucher_answers[key]
                return Reply(status, answer, {"Idempotent-Replayed": "true"})
            numbered = [(v.get("word"), v.get("period"), v["number"]) for v in vouchers
                        if v.get("number") is not None]
            taken = [n for n in numbered if n in self.voucher_numbers]
            if taken:
                word, period, number = taken[0]
                return Reply(422, {"error": f"凭证号重复：{period} {word}-{number} 已由批次 "
                                            f"{self.voucher_numbers[taken[0]]} 使用"})
            self.voucher_numbers.update(dict.fromkeys(numbered, key))
            self.voucher_effects[key] += 1
            self.voucher_batches[key] = body
            answer = {"reference": f"VCH-{len(self._voucher_answers) + 1:06d}",
                      "batch_id": key, "vouchers": len(vouchers)}
            self._voucher_answers[key] = (201, answer)
            if self._lose > 0:
                self._lose -= 1
                lose_for = self._lose_seconds
        if lose_for:
            time.sleep(lose_for)
        return Reply(201, answer)

    def _receivables(self, request: Request) -> Reply:
        cursors = request.query.get("cursor", [])
        with self.lock:
            start = 0
            if cursors:
                start = _offset(cursors[0])
                if start is None or start > len(self.receivables_log):
                    return Reply(400, {"error": f"unknown cursor {cursors[0]!r}"})
            self.receivables_pages.append(cursors[0] if cursors else None)
            page = self.receivables_log[start:start + self.page_size]
        end = start + len(page)
        return Reply(200, {
            "invoices": [r for kind, r in page if kind == "invoice"],
            "payments": [r for kind, r in page if kind == "payment"],
            "next_cursor": f"rcv-{end:08d}" if page else None,
        })


def _canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def _offset(cursor: str) -> int | None:
    if not cursor.startswith("rcv-") or not cursor[4:].isdigit():
        return None
    return int(cursor[4:])


def _unbalanced(vouchers: list) -> str | None:
    """Finance's own check of a batch: every entry one-sided and ≥ 0, every voucher balanced."""
    for voucher in vouchers:
        try:
            debit = credit = Decimal(0)
            for entry in voucher["entries"]:
                d, c = Decimal(entry["debit"]), Decimal(entry["credit"])
                if d < 0 or c < 0 or (d == 0) == (c == 0):
                    return f"voucher {voucher.get('voucher_key')!r}: bad entry {entry!r}"
                debit, credit = debit + d, credit + c
        except (KeyError, TypeError, InvalidOperation) as exc:
            return f"voucher not understood: {exc!r}"
        if debit != credit:
            return f"voucher {voucher.get('voucher_key')!r} unbalanced: {debit} ≠ {credit}"
    return None
