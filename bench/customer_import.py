"""Customer import and batch match on a generated customer list of realistic size.

    python -m bench.customer_import [--customers 100000] [--queries 5000] [--seed 1]
                                    [--database-url postgresql+psycopg://…] [--keep DIR]

Generates the list (bench/customer_names.py: short and former names, branches, planted
duplicates), writes it as CSV, imports it with `salesops customers import`'s code into a fresh
SQLite database (and into a fresh, temporary PostgreSQL database on the server of
--database-url, dropped afterwards), re-imports it (nothing must change), then times the
`customers match` code over generated queries against that data. Prints figures only.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from bench.common import percentile
from bench.customer_names import generate_customers, queries, write_csv


def _counts(db_url: str) -> dict[str, int]:
    from models.db import get_engine

    with get_engine(db_url).connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("customer", "customer_alias", "operation_log")}


def _planted(customers, db_url: str, clusters) -> tuple[int, int, int]:
    """(planted duplicates, found in one cluster with their original, clusters holding no
    planted pair)."""
    from models.db import get_engine
    from models.names import normalize_name

    with get_engine(db_url).connect() as conn:
        ids = dict(conn.execute(sa.text("SELECT name_key, id FROM customer")).all())
    cluster_of = {cid: c.number for c in clusters for cid in c.members}
    planted = found = 0
    explained = set()
    for c in customers:
        if c.kind.startswith("dup:") and c.in_file:
            planted += 1
            a = ids.get(normalize_name(c.legal_name))
            b = ids.get(normalize_name(customers[c.of].legal_name))
            if a is not None and cluster_of.get(a) is not None \
                    and cluster_of.get(a) == cluster_of.get(b):
                found += 1
                explained.add(cluster_of[a])
    return planted, found, sum(1 for c in clusters if c.number not in explained)


def run_import(db_url: str, csv_path: Path, customers, label: str) -> dict:
    from deployments.seed import seed_sample_data
    from flows.customer_import import import_customers
    from models.db import migrate

    migrate(db_url)
    seed_sample_data(db_url)
    review = csv_path.with_name(f"{csv_path.stem}.{label}.duplicates.xlsx")
    report = import_customers(db_url, csv_path, actor="ops-01", review_out=review)
    counts = _counts(db_url)
    planted, found, unexplained = _planted(customers, db_url, report.clusters)
    again = import_customers(db_url, csv_path, actor="ops-01", review_out=review)
    unchanged = _counts(db_url) == counts
    out = {
        "database": label, "rows": report.rows, "seconds": round(report.seconds, 1),
        "rows_per_s": round(report.rows / report.seconds), "created": report.created,
        "aliases_added": report.aliases_added, "branches_linked": report.branches_linked,
        "branches_without_parent": report.branches_without_parent,
        "uscc_flagged": report.uscc_flagged, "clusters": len(report.clusters),
        "clustered_customers": sum(len(c.members) for c in report.clusters),
        "planted_duplicates": planted, "planted_found": found,
        "clusters_without_planted_pair": unexplained, "tables": counts,
        "reimport_seconds": round(again.seconds, 1), "reimport_changed_nothing": unchanged,
        "phases": {k: round(v, 1) for k, v in report.phases.items()},
        "reimport_phases": {k: round(v, 1) for k, v in again.phases.items()},
    }
    print(f"[{label}] import {out['rows']} rows in {out['seconds']} s = "
          f"{out['rows_per_s']} rows/s; "
          f"created {out['created']}, aliases {out['aliases_added']}, branches linked "
          f"{out['branches_linked']} (no parent {out['branches_without_parent']}), USCC flagged "
          f"{out['uscc_flagged']}")
    print(f"[{label}] clusters {out['clusters']} ({out['clustered_customers']} customers); planted "
          f"duplicates found {found}/{planted}; clusters without a planted pair {unexplained}")
    print(f"[{label}] seconds by step: {out['phases']}")
    print(f"[{label}] re-import {out['reimport_seconds']} s, database unchanged: {unchanged}; "
          f"tables {counts}")
    print(f"[{label}] re-import seconds by step: {out['reimport_phases']}")
    return out


def run_match(db_url: str, customers, n: int, seed: int) -> dict:
    from deployments.customers_cli import match_lines
    from flows.customer_index import CustomerIndex

    index = CustomerIndex(db_url)
    t0 = time.perf_counter()
    index.current()  # built before the first query, as `salesops customers match` does
    build_s = time.perf_counter() - t0
    qs = queries(customers, n, seed)
    times, decisions = [], {"auto": 0, "suggest": 0, "unknown": 0}
    t_all = time.perf_counter()
    for q in qs:
        t = time.perf_counter()
        row = next(match_lines(index, [q]))
        json.dumps(row, ensure_ascii=False)
        times.append(time.perf_counter() - t)
        decisions[row["decision"]] += 1
    total = time.perf_counter() - t_all
    ms = [x * 1000 for x in times]
    out = {"index_build_s": round(build_s, 1), "entries": len(index.current()), "queries": len(qs),
           "queries_per_s": round(len(qs) / total), "p50_ms": round(statistics.median(ms), 2),
           "p99_ms": round(percentile(ms, 99), 2), "max_ms": round(max(ms), 1),
           "decisions": decisions,
           "slowest": [(q, round(t * 1000)) for t, q in sorted(zip(times, qs))[-3:][::-1]]}
    print(f"[match] index of {out['entries']} names built in {out['index_build_s']} s; "
          f"{out['queries']} queries: {out['queries_per_s']} queries/s, p50 {out['p50_ms']} ms, "
          f"p99 {out['p99_ms']} ms, max {out['max_ms']} ms; decisions {decisions}")
    print(f"[match] slowest (ms; a refresh of the index lands on the query that triggers it): "
          f"{out['slowest']}")
    return out


def _fresh_postgres(url: str):
    """A temporary database on the server of `url` (never touches the database in the URL)."""
    base = sa.make_url(url)
    name = f"bench_import_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        from models.db import dispose_engines

        dispose_engines()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description="customer import / batch match bench")
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--database-url", default=None,
                    help="PostgreSQL server to bench on too (a temporary database is created)")
    ap.add_argument("--keep", default=None, help="keep the CSV, databases and workbooks here")
    args = ap.parse_args(argv)

    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        return _run(Path(args.keep), args)
    with tempfile.TemporaryDirectory(prefix="bench-import-") as work:
        try:
            return _run(Path(work), args)
        finally:
            from models.db import dispose_engines

            dispose_engines()


def _run(work: Path, args) -> dict:
    t0 = time.perf_counter()
    customers = generate_customers(args.customers, args.seed)
    csv_path = work / "customers.csv"
    rows = write_csv(customers, csv_path)
    print(f"generated {rows} rows ({sum(1 for c in customers if c.kind == 'branch')} branches, "
          f"{sum(1 for c in customers if c.kind == 'orphan-branch')} without their head office, "
          f"{sum(1 for c in customers if c.kind.startswith('dup:'))} planted duplicates) in "
          f"{time.perf_counter() - t0:.1f} s: {csv_path} ({csv_path.stat().st_size / 1e6:.1f} MB)")
    results = {}
    sqlite_url = f"sqlite:///{work / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    results["sqlite"] = run_import(sqlite_url, csv_path, customers, "sqlite")
    results["match"] = run_match(sqlite_url, customers, args.queries, args.seed + 1)
    if args.database_url:
        url, drop = _fresh_postgres(args.database_url)
        try:
            results["postgresql"] = run_import(url, csv_path, customers, "postgresql")
        finally:
            drop()
    return results

if __name__ == "__main__":
    main()
