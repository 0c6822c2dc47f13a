"""The matcher's name index of this process, kept in step with the database.

Built once from every active customer's legal name and aliases, then refreshed at most every
`customer_index_refresh_seconds`: rows changed since the last look (by `updated_at`, with a
margin for transactions that committed late) are applied, and merged files are dropped. The API
keeps one for suggestions; a flow run builds one only when an order's name has no exact match.
"""
from __future__ import annotations

import datetime as dt
import gc
import threading
import time

import sqlalchemy as sa

from models import Customer, CustomerAlias
from models.db import get_engine
from models.matching import MatchResult, NameEntry, NameIndex

# a transaction may commit a little after its rows' updated_at: look back this far each time
_MARGIN = dt.timedelta(seconds=30)


class CustomerIndex:
    def __init__(self, db_url: str, refresh_seconds: float = 2.0) -> None:
        self.db_url = db_url
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._index: NameIndex | None = None
        self._watermark: dt.datetime | None = None
        self._checked = 0.0
        # customer id -> (legal name, parent id): what suggestions show beside a candidate
        self.files: dict[int, tuple[str, int | None]] = {}

    def search(self, query: str, limit: int = 5) -> MatchResult:
        # the index is not thread-safe: a search never runs beside a refresh
        with self._lock:
            return self._current().search(query, limit=limit)

    def current(self) -> NameIndex:
        with self._lock:
            return self._current()

    def _current(self) -> NameIndex:
        if self._index is None:
            self._build()
        elif time.monotonic() - self._checked >= self.refresh_seconds:
            self._refresh()
        return self._index

    def _rows(self, conn, since: dt.datetime | None):
        c, a = Customer.__table__.c, CustomerAlias.__table__.c
        customers = sa.select(c.id, c.legal_name, c.parent_id, c.merged_into_id, c.updated_at)
        aliases = (sa.select(a.id, a.customer_id, a.name, a.kind, a.updated_at)
                   .join(Customer.__table__, c.id == a.customer_id)
                   .where(c.merged_into_id.is_(None)))
        if since is not None:
            customers = customers.where(c.updated_at >= since)
            aliases = aliases.where(a.updated_at >= since)
        return conn.execute(customers).all(), conn.execute(aliases).all()

    def _entries(self, customers, aliases):
        for cid, legal, parent, merged, _ in customers:
            if merged is None:
                self.files[cid] = (legal, parent)
                yield NameEntry(f"c:{cid}", cid, legal, "legal")
        for aid, cid, name, kind, _ in aliases:
            yield NameEntry(f"a:{aid}", cid, name, kind)

    def _advance(self, customers, aliases) -> None:
        stamps = [r[-1] for r in customers] + [r[-1] for r in aliases]
        if stamps:
            newest = max(stamps).replace(tzinfo=dt.timezone.utc)
            self._watermark = max(self._watermark or newest, newest)
        self._checked = time.monotonic()

    def _build(self) -> None:
        with get_engine(self.db_url).connect() as conn:
            customers, aliases = self._rows(conn, None)
        self.files = {}
        self._index = NameIndex.build(self._entries(customers, aliases))
        self._advance(customers, aliases)
        # hundreds of thousands of long-lived objects: keep the cyclic collector from walking
        # them again and again (its pauses were the tail of suggestion latency)
        gc.freeze()

    def _refresh(self) -> None:
        since = self._watermark - _MARGIN if self._watermark else None
        with get_engine(self.db_url).connect() as conn:
            customers, aliases = self._rows(conn, since)
        for cid, _, _, merged, _ in customers:
            if merged is not None:
                self._index.remove_customer(cid)
                self.files.pop(cid, None)
        for entry in self._entries(customers, aliases):
            self._index.add(entry)
        self._advance(customers, aliases)


_INDEXES: dict[str, CustomerIndex] = {}
_GUARD = threading.Lock()


def customer_index(db_url: str, refresh_seconds: float = 2.0) -> CustomerIndex:
    """The index of this process for a database."""
    with _GUARD:
        index = _INDEXES.get(db_url)
        if index is None:
            index = _INDEXES[db_url] = CustomerIndex(db_url, refresh_seconds)
        return index


def forget_indexes() -> None:
    """Tests: each test database starts with a fresh index."""
    with _GUARD:
        _INDEXES.clear()
