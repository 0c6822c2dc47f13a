"""Customer matcher accuracy on real listed-company names, as users would meet it.

Per seed: the legal names of a random 80 % of the companies are the customer file (no short
names on file); every short name is then typed as a query. Short names of imported companies
must be found; those of the 20 % left out must not be auto-linked. Then the former names of the
imported companies are put on file as aliases and typed as queries.

    python -m bench.matcher_accuracy [--data DIR] [--seeds 5] [--holdout all|tune|check]

--holdout splits the companies into two fixed halves by a hash of the legal name: tune rules on
"tune", check them on "check" (the published figures use "all"). Prints figures only.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import random
import statistics
import time
from pathlib import Path

from models.matching import NameEntry, NameIndex

FORMER_KINDS = ("former_full_name", "former_short_name", "status_period_short_name")


def default_data_dir() -> Path:
    root = Path(__file__).resolve().parents[1]
    for base in (root.parent, *root.parents):
        candidate = base / "shared" / "data" / "company-names"
        if candidate.is_dir():
            return candidate
    return root.parent / "shared" / "data" / "company-names"


def half_of(name: str) -> str:
    return "tune" if hashlib.md5(name.encode()).digest()[0] % 2 == 0 else "check"


def _find(data: Path, stem: str) -> Path | None:
    """<stem>_dev.csv, else any <stem>*.csv (a held-out set may be named differently)."""
    exact = data / f"{stem}_dev.csv"
    if exact.exists():
        return exact
    found = sorted(data.glob(f"{stem}*.csv"))
    return found[0] if found else None


def load(data: Path, holdout: str) -> tuple[list[dict], dict[str, list[tuple[str, str]]]]:
    path = _find(data, "listed_companies")
    if path is None:
        raise SystemExit(f"no listed_companies*.csv in {data}")
    with open(path, encoding="utf-8") as f:
        companies = [r for r in csv.DictReader(f) if r["full_name"] and r["short_name"]]
    if holdout != "all":
        companies = [r for r in companies if half_of(r["full_name"]) == holdout]
    former: dict[str, list[tuple[str, str]]] = {}
    path = _find(data, "former_names")
    if path is not None:
        with open(path, encoding="utf-8") as f:
            for r in csv.DictReader(f):
                if r["kind"] in FORMER_KINDS and r["former_name"]:
                    former.setdefault(r["full_name"], []).append((r["former_name"], r["kind"]))
    return companies, former


def run_seed(companies: list[dict], former: dict, seed: int, show: int) -> dict:
    rng = random.Random(seed)
    order = list(range(len(companies)))
    rng.shuffle(order)
    cut = int(len(order) * 0.8)
    imported, left_out = order[:cut], order[cut:]
    t0 = time.perf_counter()
    index = NameIndex.build(NameEntry(f"c:{i}", i, companies[i]["full_name"], "legal")
                            for i in imported)
    build_s = time.perf_counter() - t0
    top1 = rec5 = auto_imp = auto_ok = auto_all = 0
    misses: list[str] = []
    wrong_auto: list[str] = []
    t0 = time.perf_counter()
    for i in imported:
        res = index.search(companies[i]["short_name"], limit=5)
        ids = [c.customer_id for c in res.candidates]
        hit1 = bool(ids) and ids[0] == i
        top1 += hit1
        rec5 += i in ids
        if res.decision == "auto":
            auto_all += 1
            auto_imp += 1
            auto_ok += hit1
            if not hit1:
                wrong_auto.append(f"  自动错链 {companies[i]['short_name']} → {res.candidates[0].legal_name}"
                                  f"（应为 {companies[i]['full_name']}） {res.candidates[0].reasons}")
        if not hit1:
            got = res.candidates[0].legal_name if res.candidates else "—"
            misses.append(f"  {companies[i]['short_name']} → {got}（应为 {companies[i]['full_name']}，"
                          f"{'在前五' if i in ids else '不在前五'}）")
    left_auto = 0
    for i in left_out:
        res = index.search(companies[i]["short_name"], limit=5)
        if res.decision == "auto":
            auto_all += 1
            left_auto += 1
            wrong_auto.append(f"  未建档却自动链接 {companies[i]['short_name']}（{companies[i]['full_name']}）"
                              f" → {res.candidates[0].legal_name} {res.candidates[0].reasons}")
    n_queries = len(imported) + len(left_out)
    query_ms = (time.perf_counter() - t0) * 1000 / max(1, n_queries)
    # former names as aliases of the imported companies
    entries = []
    queries = []
    for i in imported:
        for k, (name, kind) in enumerate(former.get(companies[i]["full_name"], ())):
            entries.append(NameEntry(f"a:{i}:{k}", i, name, "former"))
            queries.append((name, i))
    for e in entries:
        index.add(e)
    f_top1 = f_auto = f_auto_ok = 0
    for name, i in queries:
        res = index.search(name, limit=5)
        hit1 = bool(res.candidates) and res.candidates[0].customer_id == i
        f_top1 += hit1
        if not hit1:
            got = f"{res.candidates[0].legal_name}（{res.candidates[0].matched_alias}）" if res.candidates else "—"
            misses.append(f"  曾用名 {name} → {got}（应为 {companies[i]['full_name']}）")
        if res.decision == "auto":
            f_auto += 1
            f_auto_ok += hit1
            if not hit1:
                wrong_auto.append(f"  曾用名自动错链 {name} → {res.candidates[0].legal_name}")
    n = len(imported)
    out = {
        "top1": top1 / n, "recall5": rec5 / n,
        "auto_precision": auto_ok / auto_all if auto_all else 1.0,
        "leftout_auto": left_auto / max(1, len(left_out)),
        "imported_auto": auto_imp / n,
        "former_top1": f_top1 / max(1, len(queries)),
        "former_auto": f_auto / max(1, len(queries)),
        "former_auto_precision": f_auto_ok / f_auto if f_auto else 1.0,
        "n_imported": n, "n_left_out": len(left_out), "n_former": len(queries),
        "build_ms": build_s * 1000, "query_ms": query_ms,
    }
    if show:
        print(f"  -- seed {seed}: top-1 misses ({len(misses)}, incl. former names) --")
        print("\n".join(misses[:show]))
        print(f"  -- seed {seed}: wrong auto-links ({len(wrong_auto)}) --")
        print("\n".join(wrong_auto[:show]))
    return out


METRICS = [("top1", "top-1 (imported)", ">= 97%"), ("recall5", "recall@5 (imported)", ">= 99.5%"),
           ("auto_precision", "auto-link precision", ">= 99.5%"),
           ("leftout_auto", "left-out auto-linked", "<= 0.5%"),
           ("imported_auto", "imported auto-linked", "(info)"),
           ("former_top1", "former names top-1", ">= 99.5%"),
           ("former_auto", "former names auto", "(info)"),
           ("former_auto_precision", "former auto precision", "")]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data_dir())
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--holdout", choices=("all", "tune", "check"), default="all")
    ap.add_argument("--show-errors", type=int, default=0, metavar="N",
                    help="print up to N misses and wrong auto-links per seed")
    args = ap.parse_args(argv)
    companies, former = load(args.data, args.holdout)
    print(f"matcher accuracy: {len(companies)} companies ({args.holdout}), data {args.data}")
    results = []
    for seed in range(args.seeds):
        r = run_seed(companies, former, seed, args.show_errors)
        results.append(r)
        print(f"seed {seed}: imported {r['n_imported']}, left out {r['n_left_out']}, "
              f"former names {r['n_former']}, build {r['build_ms']:.0f} ms, "
              f"{r['query_ms']:.2f} ms/query")
        print("   " + "  ".join(f"{key}={r[key] * 100:.2f}%" for key, _, _ in METRICS))
    print()
    print(f"{'metric':<26}{'mean':>9}{'min':>9}{'max':>9}   target")
    for key, label, target in METRICS:
        vals = [r[key] * 100 for r in results]
        worst = max(vals) if key == "leftout_auto" else min(vals)
        best = min(vals) if key == "leftout_auto" else max(vals)
        print(f"{label:<26}{statistics.mean(vals):>8.2f}%{worst:>8.2f}%{best:>8.2f}%   {target}"
              + ("   (min column = worst)" if key == "leftout_auto" else ""))


if __name__ == "__main__":
    main()
