"""REST ERP / finance simulator: stock queries and invoice-preparation requests.

- `POST /api/v1/stock/query` `{"skus": [...]}` → `{"items": [{"sku", "available"}]}`; known
  SKUs only, more than 200 SKUs → 400 (the client must batch).
- `POST /api/v1/invoice-requests` with `Idempotency-Key` → 201 `{"reference": ...}`. A replay
  of a key returns the first answer (with `Idempotent-Replayed: true`) and counts as a replay,
  not a new effect; the same key with a different body → 422.
- Both need `Authorization: Bearer <token>` (401 otherwise).

`lose_answers(n)` applies the next n invoice requests and then hangs past the client's
timeout, so the client never hears the answer: the idempotency key must prevent a duplicate.
"""
from __future__ import annotations

import collections
import json
import time

from tests.simulators.base import Faults, Reply, Request, Simulator

STOCK_PATH = "/api/v1/stock/query"
INVOICE_PATH = "/api/v1/invoice-requests"
MAX_BATCH = 200


class ErpSimulator(Simulator):
    name = "erp"

    def __init__(self, token: str, stock: dict[str, int] | None = None,
                 faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.token = token
        self.stock: dict[str, int] = dict(stock or {})
        self.stock_batches: list[int] = []  # size of every answered stock query
        self.invoices: dict[str, dict] = {}  # request id → the body first applied
        self.effects: collections.Counter[str] = collections.Counter()  # applied per id
        self.replays: collections.Counter[str] = collections.Counter()
        self._answers: dict[str, tuple[int, dict]] = {}
        self._lose = 0
        self._lose_seconds = 0.0

    # --- test controls -----------------------------------------------------------------
    def lose_answers(self, count: int, hang_seconds: float) -> None:
        """Apply the next `count` new invoice requests, then hang `hang_seconds` (longer than
        the client's timeout) before answering a client that has gone."""
        with self.lock:
            self._lose, self._lose_seconds = count, hang_seconds

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


def _canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False)
