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
import gc
import logging
import threading
import time

import sqlalchemy as sa

from models import Customer, CustomerAlias
from models.base import utcnow
from models.customer_files import exact_matches
from models.db import get_engine, session_scope
from models.matching import Candidate, MatchResult, NameEntry, NameIndex
from models.uscc import check_uscc, clean_uscc

log = logging.getLogger(__name__)

REFRESH_THREAD = "customer-index-refresh"
# a transaction may commit a little after its rows' updated_at: look back this far each time
_MARGIN = dt.timedelta(seconds=30)


# this many changed names are indexed into a fresh copy, swapped in when ready, rather than
# applied while searches wait
REBUILD_AT = 5000


class CustomerIndex:
    def __init__(self, db_url: str, refresh_seconds: float = 2.0) -> None:
        self.db_url = db_url
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()  # the index is not thread-safe
        self._index: NameIndex | None = None
        # rows stamped at or after this may still be committing: look at them again
        self._since: dt.datetime | None = None
        # the rows of that window already applied: entry id -> updated_at
        self._applied: dict[str, dt.datetime] = {}
        self._checked = 0.0
        self._refreshing = False
        # customer id -> (legal name, parent id): what suggestions show beside a candidate
        self.files: dict[int, tuple[str, int | None]] = {}

    def search(self, query: str, limit: int = 5) -> MatchResult:
        """Searches never wait for the database: changes are read in the background (or
        inline when `refresh_seconds` is 0, as tests want) and applied between searches."""
        with self._lock:
            index = self._current_locked()
            return index.search(query, limit=limit)

    def find(self, query: str, limit: int = 5) -> MatchResult:
        """`search`, or, for a valid USCC pasted or sent as the name (the index holds names
        only), the files of that code: one indexed lookup."""
        if check_uscc(query).ok:
            with session_scope(self.db_url) as s:
                coded = tuple(Candidate(c.id, c.legal_name, clean_uscc(query), "uscc", 100.0,
                                        ("统一社会信用代码一致",))
                              for c in exact_matches(s, query))
            if coded:
                return MatchResult(query, clean_uscc(query),
                                   "auto" if len(coded) == 1 else "suggest", coded[:limit])
        return self.search(query, limit)

    def current(self) -> NameIndex:
        with self._lock:
            return self._current_locked()

    def _current_locked(self) -> NameIndex:
        if self._index is None:
            self._index, self.files = self._build(*self._fetch())
            return self._index
        if time.monotonic() - self._checked >= self.refresh_seconds and not self._refreshing:
            self._checked = time.monotonic()
            if self.refresh_seconds <= 0:
                self._apply(*self._fetch())
            else:
                self._refreshing = True
                threading.Thread(target=self._refresh, name=REFRESH_THREAD,
                                 daemon=True).start()
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

    def _fetch(self, since: dt.datetime | None | bool = True) -> tuple[list, list, dt.datetime]:
        looked_at = utcnow()
        with get_engine(self.db_url).connect() as conn:
            customers, aliases = self._rows(conn, self._since if since is True else since)
        return customers, aliases, looked_at

    @staticmethod
    def _entries(customers, aliases, applied: dict):
        files = {}
        entries = []
        for cid, legal, parent, merged, stamp in customers:
            if merged is None and applied.get(f"c:{cid}") != stamp:
                files[cid] = (legal, parent)
                entries.append(NameEntry(f"c:{cid}", cid, legal, "legal"))
        for aid, cid, name, kind, stamp in aliases:
            if applied.get(f"a:{aid}") != stamp:
                entries.append(NameEntry(f"a:{aid}", cid, name, kind))
        return entries, files

    def _advance(self, customers, aliases, looked_at: dt.datetime) -> None:
        # a row committed after this look has a stamp of at least looked_at - margin
        self._since = since = looked_at - _MARGIN
        self._applied = {f"c:{r[0]}": r[-1] for r in customers if r[-1] >= since}
        self._applied.update((f"a:{r[0]}", r[-1]) for r in aliases if r[-1] >= since)

    def _build(self, customers, aliases, looked_at: dt.datetime):
        entries, files = self._entries(customers, aliases, {})
        index = NameIndex.build(entries)
        self._advance(customers, aliases, looked_at)
        # hundreds of thousands of long-lived objects: keep the cyclic collector from walking
        # them again and again (a full collection over a 400k-name index took ~2 s; its
        # pauses were the tail of suggestion latency)
        gc.collect()
        gc.freeze()
        return index, files

    def _apply(self, customers, aliases, looked_at: dt.datetime) -> None:
        """Under the lock: merged files out, changed names in."""
        for cid, _, _, merged, _ in customers:
            if merged is not None:
                self._index.remove_customer(cid)
                self.files.pop(cid, None)
        entries, files = self._entries(customers, aliases, self._applied)
        for entry in entries:
            self._index.add(entry)
        self.files.update(files)
        self._advance(customers, aliases, looked_at)

    def _unchanged(self) -> bool:
        """A cheap look first (counts and newest stamps, from the `updated_at` indexes): when
        the rows stamped since `_since` are exactly those already applied, nothing is read —
        and the window slides forward, so that after a bulk import it does not stay wide."""
        if self._since is None:
            return False
        looked_at = utcnow()
        c, a = Customer.__table__.c, CustomerAlias.__table__.c
        with get_engine(self.db_url).connect() as conn:
            customers = conn.execute(sa.select(sa.func.count(), sa.func.max(c.updated_at))
                                     .where(c.updated_at >= self._since)).one()
            aliases = conn.execute(
                sa.select(sa.func.count(), sa.func.max(a.updated_at))
                .join(Customer.__table__, c.id == a.customer_id)
                .where(c.merged_into_id.is_(None), a.updated_at >= self._since)).one()
        known = {"c": [], "a": []}
        for key, stamp in self._applied.items():
            known[key[0]].append(stamp)
        for (count, newest), stamps in ((customers, known["c"]), (aliases, known["a"])):
            if count != len(stamps) or (count and newest != max(stamps)):
                return False
        # everything stamped before looked_at - margin has committed and been seen
        since = max(self._since, looked_at - _MARGIN)
        self._applied = {k: v for k, v in self._applied.items() if v >= since}
        self._since = since
        return True

    def _refresh(self) -> None:
        try:
            if self._unchanged():
                return
            customers, aliases, looked_at = self._fetch()
            changed, _ = self._entries(customers, aliases, self._applied)
            if len(changed) < REBUILD_AT:
                with self._lock:
                    self._apply(customers, aliases, looked_at)
                return
            # a bulk import: index everything into a fresh copy while searches go on
            index, files = self._build(*self._fetch(since=None))
            with self._lock:
                self._index, self.files = index, files
        except Exception:  # e.g. the database restarting: searches go on, the next look retries
            log.warning("customer index refresh failed; the next look retries", exc_info=True)
        finally:
            self._refreshing = False


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
    """Tests: each test database starts with a fresh index, and no refresh of the previous
    one still reads (on PostgreSQL its read would hold a lock across the next TRUNCATE)."""
    with _GUARD:
        _INDEXES.clear()
    for thread in threading.enumerate():  # of any index, kept here or not
        if thread.name == REFRESH_THREAD:
            thread.join(30)
