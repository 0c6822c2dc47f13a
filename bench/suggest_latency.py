"""Matcher latency at customer-file scale (suggest-as-you-type and intake matching).

Builds a NameIndex over generated customers (legal names) and aliases (short names, former
names, names as reps typed them), prints build time and memory, then times search() for a mix
of queries: full legal names, short names, typo'd legal names, keystroke prefixes of 1–6
characters and names of companies not on file. Prints p50/p99/max per query type and overall.

    python -m bench.suggest_latency [--customers 100000 --aliases 300000 --queries 1000]

Figures only; targets: p99 ≤ 5 ms per query at the matcher, build ≤ 15 s.
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import time

from bench.names_gen import NameGenerator, generate_companies, typo
from models.matching import NameEntry, NameIndex


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_entries(n_customers: int, n_aliases: int, seed: int):
    companies = generate_companies(n_customers, seed)
    rng = random.Random(seed + 1)
    entries = [NameEntry(f"c:{c.customer_id}", c.customer_id, c.legal_name, "legal")
               for c in companies]
    aliases: list[NameEntry] = []
    for c in companies:
        for k, name in enumerate(c.short_names):
            aliases.append(NameEntry(f"a:{c.customer_id}:s{k}", c.customer_id, name, "short"))
        for k, name in enumerate(c.former_names):
            aliases.append(NameEntry(f"a:{c.customer_id}:f{k}", c.customer_id, name, "former"))
    k = 0
    while len(aliases) < n_aliases:  # names as reps typed them, kept as aliases
        c = companies[rng.randrange(len(companies))]
        base = c.legal_name if rng.random() < 0.6 or not c.short_names else rng.choice(c.short_names)
        aliases.append(NameEntry(f"a:{c.customer_id}:t{k}", c.customer_id, typo(base, rng), "typed"))
        k += 1
    return companies, entries + aliases[:n_aliases]


def make_queries(companies, n: int, seed: int) -> dict[str, list[tuple[str, int | None]]]:
    """Queries per type, each with the customer it means (None: not on file / a prefix)."""
    rng = random.Random(seed + 2)
    picks = [rng.choice(companies) for _ in range(n)]
    with_short = [c for c in picks if c.short_names] or picks
    strangers = NameGenerator(seed + 99).companies(n, branch_share=0.0)
    queries = {
        "legal": [(c.legal_name, c.customer_id) for c in picks],
        "short": [(rng.choice(c.short_names), c.customer_id) for c in with_short],
        "typo": [(typo(c.legal_name, rng), c.customer_id) for c in picks],
        "unknown": [(c.legal_name if rng.random() < 0.5 else (c.short_names or (c.legal_name,))[0],
                     None) for c in strangers],
    }
    for k in range(1, 7):
        source = [rng.choice(c.short_names) if c.short_names and rng.random() < 0.5 else c.legal_name
                  for c in picks]
        queries[f"prefix{k}"] = [(s[:k], None) for s in source]
    return queries


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--aliases", type=int, default=300_000)
    ap.add_argument("--queries", type=int, default=1000, help="queries per type")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-gc-freeze", action="store_true",
                    help="leave the built index in the collector's young generations")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    companies, entries = make_entries(args.customers, args.aliases, args.seed)
    print(f"generated {args.customers} customers + {len(entries) - args.customers} aliases "
          f"in {time.perf_counter() - t0:.1f} s")
    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    c0 = time.process_time()
    index = NameIndex.build(entries)
    build_s = time.perf_counter() - t0
    build_cpu = time.process_time() - c0
    gc.collect()
    after = rss_mb()
    if not args.no_gc_freeze:
        gc.freeze()  # what a serving process should do after building: no GC scans of the index
    print(f"index build: {build_s:.2f} s wall, {build_cpu:.2f} s CPU for {len(index)} names "
          f"({len(index) / build_s:,.0f} names/s); memory +{after - before:.0f} MB RSS "
          f"(process {after:.0f} MB)")

    queries = make_queries(companies, args.queries, args.seed)
    for q, _ in queries["short"][:50]:  # warm-up
        index.search(q)
    gc_ms: list[float] = []

    def on_gc(phase: str, info: dict) -> None:  # CPU time the cyclic collector takes
        if phase == "start":
            on_gc.t = time.thread_time()
        else:
            gc_ms.append((time.thread_time() - on_gc.t) * 1000)

    gc.callbacks.append(on_gc)
    all_ms: list[float] = []
    all_cpu: list[float] = []
    load = os.getloadavg()
    print(f"\nload average before timing: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"on {os.cpu_count()} CPUs (wall time includes waiting for a CPU; cpu = this thread's "
          f"CPU time)")
    print(f"{'query type':<10}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'cpu p50':>9}"
          f"{'cpu p99':>9}   decisions   (top-1 = meant customer ranked first)")
    for kind, qs in queries.items():
        times = []
        cpu = []
        counts = {"auto": 0, "suggest": 0, "unknown": 0}
        top1 = known = 0
        for q, meant in qs:
            c = time.thread_time()
            t = time.perf_counter()
            res = index.search(q, limit=5)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.thread_time() - c) * 1000)
            counts[res.decision] += 1
            if meant is not None:
                known += 1
                top1 += bool(res.candidates) and res.candidates[0].customer_id == meant
        all_ms += times
        all_cpu += cpu
        extra = f"   top-1 {top1 / known * 100:.1f}%" if known else ""
        print(f"{kind:<10}{len(times):>6}{statistics.median(times):>9.2f}{pct(times, 99):>9.2f}"
              f"{max(times):>9.2f}{statistics.median(cpu):>9.2f}{pct(cpu, 99):>9.2f}   "
              + " ".join(f"{k} {v}" for k, v in counts.items()) + extra)
    print(f"{'overall':<10}{len(all_ms):>6}{statistics.median(all_ms):>9.2f}{pct(all_ms, 99):>9.2f}"
          f"{max(all_ms):>9.2f}{statistics.median(all_cpu):>9.2f}{pct(all_cpu, 99):>9.2f}")
    gc.callbacks.remove(on_gc)
    load = os.getloadavg()
    print(f"load average after timing: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; cyclic GC ran "
          f"{len(gc_ms)} times during the queries, longest {max(gc_ms, default=0):.1f} ms CPU "
          f"(the max column's usual cause)")


if __name__ == "__main__":
    main()
