"""The matcher's name index of this process, kept in step with the database.

Built once from every active customer's legal name and aliases, then refreshed at most every
`customer_index_refresh_seconds`: rows changed since the last look (by `updated_at`, with a
margin for transactions that committed late) are applied, and merged files are dropped. A row
already applied with the same `updated_at` is not applied again, and the look-back window
starts at the previous look (minus the margin), not at the newest row: a bulk import stamps
thousands of rows with one time, and those must not be re-read and re-indexed on every refresh
for as long as nothing newer arrives. The API keeps one for suggestions; a flow run builds one
only when an order's name has no exact match.
"""
from __future__ import annotations

import datetime as dt
import threading
import time

import sqlalchemy as sa

from models import Customer, CustomerAlias
from models.base import utcnow
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
        # rows stamped at or after this may still be committing: look at them again
        self._since: dt.datetime | None = None
        # the rows of that window already applied: entry id -> updated_at
        self._applied: dict[str, dt.datetime] = {}
        self._checked = 0.0
        # customer id -> (legal name, parent id): what suggestions show beside a candidate
        self.files: dict[int, tuple[str, int | None]] = {}

    def search(self, query: str, limit: int = 5) -> MatchResult:
        return self.current().search(query, limit=limit)

    def current(self) -> NameIndex:
        with self._lock:
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
        applied = self._applied
        for cid, legal, parent, merged, stamp in customers:
            if merged is None and applied.get(f"c:{cid}") != stamp:
                self.files[cid] = (legal, parent)
                yield NameEntry(f"c:{cid}", cid, legal, "legal")
        for aid, cid, name, kind, stamp in aliases:
            if applied.get(f"a:{aid}") != stamp:
                yield NameEntry(f"a:{aid}", cid, name, kind)

    def _fetch(self) -> tuple[list, list, dt.datetime]:
        looked_at = utcnow()
        with get_engine(self.db_url).connect() as conn:
            customers, aliases = self._rows(conn, self._since)
        return customers, aliases, looked_at

    def _advance(self, customers, aliases, looked_at: dt.datetime) -> None:
        # a row committed after this look has a stamp of at least looked_at - margin
        self._since = looked_at - _MARGIN
        since = self._since
        self._applied = {f"c:{r[0]}": r[-1] for r in customers if r[-1] >= since}
        self._applied.update((f"a:{r[0]}", r[-1]) for r in aliases if r[-1] >= since)
        self._checked = time.monotonic()

    def _build(self) -> None:
        customers, aliases, looked_at = self._fetch()
        self.files = {}
        self._applied = {}
        self._index = NameIndex.build(self._entries(customers, aliases))
        self._advance(customers, aliases, looked_at)

    def _refresh(self) -> None:
        customers, aliases, looked_at = self._fetch()
        for cid, _, _, merged, _ in customers:
            if merged is not None:
                self._index.remove_customer(cid)
                self.files.pop(cid, None)
        for entry in self._entries(customers, aliases):
            self._index.add(entry)
        self._advance(customers, aliases, looked_at)


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
