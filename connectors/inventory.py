"""Inventory: how many units of each SKU can still be promised.

- `EmbeddedInventory` reads our own `stock_level` table (available = on_hand - reserved).
- `RestErpInventory` asks a REST ERP: `POST {base}/api/v1/stock/query {"skus": [...]}` with a
  Bearer token, answered by `{"items": [{"sku": ..., "available": ...}]}`.

Both answer every SKU asked for (a SKU nobody knows has 0 available) and neither clamps a
negative figure: over-reserved stock is a real shortage the purchase alert must see.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pydantic import SecretStr
from sqlmodel import select

from connectors.base import PermanentError, RemoteClient, send, transient_retry
from models.catalog import StockLevel
from models.db import session_scope

MAX_ERP_BATCH = 200  # the ERP refuses larger queries


@runtime_checkable
class Inventory(Protocol):
    def availability(self, skus: Sequence[str]) -> dict[str, int]:
        """Available units per SKU asked for; an unknown SKU maps to 0."""
        ...


def _distinct(skus: Sequence[str]) -> list[str]:
    if isinstance(skus, str):
        raise TypeError("availability() takes a sequence of SKUs, not one string")
    return list(dict.fromkeys(skus))


class EmbeddedInventory:
    """Stock from the hub's own tables: one SELECT for the whole batch."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url

    def availability(self, skus: Sequence[str]) -> dict[str, int]:
        wanted = _distinct(skus)
        if not wanted:
            return {}
        with session_scope(self.db_url) as session:
            rows = session.exec(
                select(StockLevel.sku, StockLevel.on_hand - StockLevel.reserved)
                .where(StockLevel.sku.in_(wanted))
            ).all()
        found = {sku: int(available) for sku, available in rows}
        return {sku: found.get(sku, 0) for sku in wanted}


class RestErpInventory(RemoteClient):
    """Stock from the ERP's REST API, ≤ 200 SKUs per call, each call retried on its own
    (a stock query has no side effect, so a retry is always safe)."""

    provider = "erp"

    def __init__(self, base_url: str, token: SecretStr, timeout: float = 10.0,
                 attempts: int = 4, batch_size: int = MAX_ERP_BATCH) -> None:
        self.batch_size = max(1, min(batch_size, MAX_ERP_BATCH))
        self._connect(base_url, timeout, f"Bearer {token.get_secret_value()}")
        self._query = transient_retry(attempts)(self._query_once)

    def availability(self, skus: Sequence[str]) -> dict[str, int]:
        wanted = _distinct(skus)
        found: dict[str, int] = {}
        for start in range(0, len(wanted), self.batch_size):
            found.update(self._query(wanted[start:start + self.batch_size]))
        return {sku: found.get(sku, 0) for sku in wanted}

    def _query_once(self, batch: list[str]) -> dict[str, int]:
        response = send(self._client, self.provider, "POST", "/api/v1/stock/query",
                        json={"skus": batch})
        try:
            items = response.json()["items"]
            asked = set(batch)
            out: dict[str, int] = {}
            for item in items:
                available = item["available"]
                # bool is an int in Python; a float such as 3.5 units is a broken contract
                if isinstance(available, bool) or int(available) != available:
                    raise ValueError(f"available {available!r} is not a whole number")
                if item["sku"] in asked:
                    out[item["sku"]] = int(available)
            return out
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"{self.provider} stock answer not understood: {exc!r}; "
                                 f"{response.text[:200]}", provider=self.provider,
                                 code="bad-body") from exc
