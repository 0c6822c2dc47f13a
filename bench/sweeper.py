"""The inbox-sweeper's notices part at a company's scale after a couple of years: the
database time of `flows.notices.tell_untold` (its two queries, `_untold` and `_untold_news`)
per sweep, over 1,000,000 effect rows and 200,000 to-dos of which 2,000 are open.

    python -m bench.sweeper [--database-url URL] [--effects 1000000] [--todos 200000]
                            [--open 2000] [--sweeps 9]

The effects are mostly done: every to-do's mail and most to-dos' pushes, news mails
(`todo_mail` keyed `<to-do mail key>#<news>`) of a few percent of the to-dos, and the orders'
quote mails, signing requests, signed-quote mails and invoice requests. A few hundred are not
done (failed or pending), some of them open to-dos' mails, pushes and news mails, all within
their backoff: a sweep finds them and tries nothing, so the figures are the queries' and no
sending's (the connectors are the embedded ones anyway). A PostgreSQL URL is emptied first
(a database of its own). Prints p50 and max of each query and of the whole sweep."""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time
from pathlib import Path

import sqlalchemy as sa

from bench.common import fresh_database, scratch_dir
from connectors.settings import Settings
from flows.hub import build_hub, use_hub
from flows.notices import (
    TELL_AFTER,
    _mail_key,
    _push_key,
    _untold,
    _untold_news,
    tell_untold,
)
from models import Effect, Staff, Todo, utcnow
from models.db import get_engine, migrate, session_scope

KINDS = ["order_blocked", "purchase_alert", "legal_review", "invoice_preparation",
         "signing_blocked", "signing_ended", "suspect_customer", "registry_change",
         "settlement_review", "notice_failed"]
# to-do kinds in the proportions a year brings them (orders blocked and short the most)
KIND_WEIGHTS = [30, 25, 10, 15, 4, 6, 4, 4, 1, 1]
# the other effects, per order and then some
OTHER_KINDS = [("quote_email", 40), ("signing_request", 30), ("signed_quote_email", 22),
               ("invoice_request", 8)]
BATCH = 20_000


def _batches(rows, size=BATCH):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _key(kind: str, n: int) -> str:
    if kind in ("suspect_customer", "registry_change"):
        return f"customer:{n}"
    if kind == "settlement_review":
        return f"settlement:{n}"
    if kind == "notice_failed":
        return f"mailbox:user{n}@example.com#1"
    return f"order:IO{n:08d}"


def fill(url: str, n_effects: int, n_todos: int, n_open: int, now: dt.datetime,
         seed: int = 20261130) -> dict:
    """Fill the empty (migrated) database at `url`; returns what was written."""
    rng = random.Random(seed)
    start = now - dt.timedelta(days=730)
    staff = [{"id": f"s{i:04d}", "name": f"员工{i}", "role": "rep",
              "email": f"s{i:04d}@example.com", "mobile": f"138{i:08d}"} for i in range(250)]
    # most open to-dos are recent ones; some old ones linger (forgotten, waiting on someone)
    recent = range(max(1, n_todos - 5 * n_open) + 1, n_todos + 1)
    open_ids = set(rng.sample(recent, n_open * 85 // 100))
    while len(open_ids) < n_open:
        open_ids.add(rng.randint(1, n_todos))
    span = (now - TELL_AFTER * 5 - start).total_seconds()
    todos, effects = [], []
    counts = {"not_done": 0, "news": 0}

    def effect(kind, key, created, status="done", attempts=1):
        effects.append({"kind": kind, "business_key": key, "status": status,
                        "attempts": attempts, "result": '{"message_id": "<x@hub>"}',
                        "created_at": created,
                        "done_at": created + dt.timedelta(seconds=2) if status == "done" else None})
        if status != "done":
            counts["not_done"] += 1

    for n in range(1, n_todos + 1):
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        key = _key(kind, n)
        is_open = n in open_ids
        # opened one after the other over 2 years, the last one 10 minutes ago
        created = start + dt.timedelta(seconds=span * n / n_todos)
        todos.append({"kind": kind, "business_key": key, "title": f"待办 {n}", "body": "…",
                      "assignee_id": rng.choice(staff)["id"],
                      "due_at": created + dt.timedelta(days=1),
                      "status": "open" if is_open else "done", "created_at": created,
                      "done_at": None if is_open else created + dt.timedelta(hours=5)})
        # an open to-do's mail or push failing just now: within its backoff (not due)
        failing = is_open and rng.random() < 0.03
        effect("todo_mail", _mail_key(kind, key), created + dt.timedelta(seconds=1),
               *(("started", 6) if failing and rng.random() < 0.5 else ("done", 1)))
        if rng.random() < 0.9:
            effect("push", _push_key(kind, key), created + dt.timedelta(seconds=1),
                   *(("started", 6) if failing and rng.random() < 0.5 else ("done", 1)))
        if rng.random() < 0.06:  # news of an open to-do worth its own mail (shortages, mostly)
            for k in range(rng.randint(1, 3)):
                at = created + dt.timedelta(minutes=3 + k)
                news = f"{rng.getrandbits(48):012x}"
                effect("todo_mail", f"{_mail_key(kind, key)}#{news}", at,
                       *(("started", 6) if is_open and rng.random() < 0.2 else ("done", 1)))
                counts["news"] += 1
    for row in effects:  # a not-done one failing now: first tried within the hour
        if row["status"] != "done":
            row["created_at"] = max(row["created_at"],
                                    now - dt.timedelta(minutes=rng.randint(5, 60)))
    n = 0
    while len(effects) < n_effects:  # the orders' own outside calls
        kind = rng.choices([k for k, _ in OTHER_KINDS], [w for _, w in OTHER_KINDS])[0]
        created = start + dt.timedelta(seconds=rng.randint(0, 729 * 86400))
        pending = rng.random() < 0.0003
        effect(kind, f"Q{n:09d}", now - dt.timedelta(minutes=30) if pending else created,
               *(("started", 3) if pending else ("done", 1)))
        n += 1
    effects.sort(key=lambda row: row["created_at"])  # ids in the order they were made
    engine = get_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.insert(Staff.__table__), staff)
        for table, rows in ((Todo, todos), (Effect, effects)):
            for batch in _batches(rows):
                conn.execute(sa.insert(table.__table__), batch)
    # a table two years old is analyzed, and vacuumed (PostgreSQL: its index-only scans
    # read no heap), not freshly loaded with autovacuum about to start
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE" if url.startswith("postgresql") else "ANALYZE")
    return {"effects": len(effects), "todos": len(todos), "open": n_open, **counts}


def sweep(hub, url: str, now: dt.datetime) -> tuple[float, float, float, int, int, int]:
    """(the two queries' seconds, the whole sweep's, to-dos untold, news untold, tried)."""
    opened = Todo.created_at < now - TELL_AFTER
    with session_scope(url) as s:
        t0 = time.perf_counter()
        untold = _untold(s, opened, push_expected=False)
        t1 = time.perf_counter()
        news = _untold_news(s, opened)
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    tried = tell_untold(hub, now)
    return t1 - t0, t2 - t1, time.perf_counter() - t3, len(untold), len(news), tried


def ms(values: list[float]) -> str:
    return (f"p50 {statistics.median(values) * 1000:.1f} ms, "
            f"max {max(values) * 1000:.1f} ms")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--database-url", default="",
                    help="default: a fresh SQLite file; a PostgreSQL URL is emptied first")
    ap.add_argument("--effects", type=int, default=1_000_000)
    ap.add_argument("--todos", type=int, default=200_000)
    ap.add_argument("--open", type=int, default=2000)
    ap.add_argument("--sweeps", type=int, default=9)
    args = ap.parse_args(argv)
    with scratch_dir("salesops-sweeper-bench-") as work:
        measure(args, work)


def measure(args: argparse.Namespace, work: Path) -> None:
    url = fresh_database(args.database_url, work)
    migrate(url)
    now = utcnow()
    t0 = time.perf_counter()
    world = fill(url, args.effects, args.todos, args.open, now)
    print(f"filled in {time.perf_counter() - t0:.0f}s: {world['effects']:,} effects "
          f"({world['news']:,} news mails, {world['not_done']:,} not done), "
          f"{world['todos']:,} to-dos ({world['open']:,} open)")
    hub = build_hub(Settings(_env_file=None, data_dir=work / "data", database_url=url,
                             public_base_url="http://127.0.0.1:8000"))
    use_hub(hub)
    sweep(hub, url, now)  # warm: connection, plans, the database's cache
    runs = [sweep(hub, url, now) for _ in range(args.sweeps)]
    untold, news, whole = ([r[i] for r in runs] for i in range(3))
    both = [a + b for a, b in zip(untold, news)]
    _, _, _, n_untold, n_news, tried = runs[-1]
    print(f"per sweep ({args.sweeps} sweeps; {n_untold} to-dos with a mail or push not done, "
          f"{n_news} with news not mailed, {tried} tried: all within their backoff)")
    print(f"  _untold       {ms(untold)}")
    print(f"  _untold_news  {ms(news)}")
    print(f"  both queries  {ms(both)}")
    print(f"  tell_untold   {ms(whole)} (the whole sweep: claim, both queries, nothing due)")


if __name__ == "__main__":
    main()
