"""`GET /customers/suggest` end to end: 100,000 customers and 300,000 aliases in the hub's
database, the API under uvicorn on loopback, one keep-alive client typing queries.

    python -m bench.suggest_api [--customers 100000] [--aliases 300000] [--queries 300]

Prints the index build at API start and p50/p99/max per query type over HTTP (token check,
validation, matcher, JSON). The matcher alone is `python -m bench.suggest_latency`."""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import statistics
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from api.app import create_app
from api.auth import issue_token
from bench.common import percentile, scratch_dir
from bench.suggest_latency import make_entries, make_queries
from connectors.settings import Settings
from deployments.seed import seed_sample_data
from flows.customer_index import customer_index
from models import Customer, CustomerAlias
from models.db import get_engine, migrate
from models.names import normalize_name


def load(url: str, companies, entries) -> None:
    """Customers and aliases written as the import would (keys computed here)."""
    now = dt.datetime.now(dt.timezone.utc)
    customers, aliases, seen = [], [], set()
    for e in entries:
        if e.kind == "legal":
            customers.append({"id": e.customer_id, "legal_name": e.name,
                              "name_key": normalize_name(e.name), "tier": "C",
                              "origin": "imported", "qualification": "approved",
                              "created_at": now, "updated_at": now})
        elif (e.customer_id, e.name) not in seen:
            seen.add((e.customer_id, e.name))
            aliases.append({"customer_id": e.customer_id, "name": e.name,
                            "key": normalize_name(e.name), "kind": e.kind, "source": "import",
                            "created_at": now, "updated_at": now})
    keys = set()
    customers = [c for c in customers if not (c["name_key"] in keys or keys.add(c["name_key"]))]
    with get_engine(url).begin() as conn:
        for table, rows in ((Customer, customers), (CustomerAlias, aliases)):
            for start in range(0, len(rows), 20000):
                conn.execute(sa.insert(table.__table__), rows[start:start + 20000])
    print(f"database: {len(customers):,} customers, {len(aliases):,} aliases")


def run(client: httpx.Client, queries: dict, label: str) -> None:
    overall = []
    print(f"\n{label}\n{'query':10} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, items in queries.items():
        times = []
        for text, _ in items:
            t = time.perf_counter()
            r = client.get("/customers/suggest", params={"q": text})
            times.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"{text!r}: {r.status_code} {r.text[:200]}")
        overall += times
        print(f"{kind:10} {len(times):5} {statistics.median(times):8.2f} "
              f"{percentile(times, 99):8.2f} {max(times):8.2f}")
    print(f"{'overall':10} {len(overall):5} {statistics.median(overall):8.2f} "
          f"{percentile(overall, 99):8.2f} {max(overall):8.2f}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--aliases", type=int, default=300_000)
    ap.add_argument("--queries", type=int, default=300, help="per query type")
    args = ap.parse_args(argv)
    with scratch_dir("salesops-suggest-bench-") as work:
        measure(args, work)


def measure(args: argparse.Namespace, work: Path) -> None:
    url = f"sqlite:///{work / 'salesops.db'}"
    migrate(url)
    seed_sample_data(url)
    companies, entries = make_entries(args.customers, args.aliases, seed=11)
    # the sample customers keep their ids: shift the generated ones past them
    shift = 100
    entries = [dataclasses.replace(e, customer_id=e.customer_id + shift) for e in entries]
    load(url, companies, entries)
    settings = Settings(_env_file=None, data_dir=work / "data", database_url=url)
    app = create_app(settings, launcher=None)
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    t0 = time.perf_counter()
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    customer_index(url).current()  # the start-up build (already running in the background)
    print(f"API up and index built in {time.perf_counter() - t0:.1f}s")
    token = issue_token(settings, "rep-zhangwei")
    queries = make_queries(companies, args.queries, seed=11)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        run(client, queries, "right after the bulk load (the index still re-checks its rows)")
        # an index trusts a row to have committed 30 s after its stamp (customer_index._MARGIN)
        time.sleep(max(0.0, 35 - (time.perf_counter() - t0)))
        run(client, queries, "steady state")
    server.should_exit = True
    thread.join(timeout=10)


if __name__ == "__main__":
    main()
