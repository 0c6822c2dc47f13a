"""Rebate engine speed: evaluate() and settle() over a quarter of sale lines (pure Python,
no database). `python -m bench.rebate_engine [--lines 250000] [--customers 2000]`."""
from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from decimal import Decimal
from pathlib import Path

from models.rebates.engine import CustomerProfile, SaleLine, evaluate, settle
from models.rebates.policy import PolicyBook, PublishedVersion, parse_policy_document

POLICIES = Path(__file__).resolve().parent.parent / "deployments" / "sample_data" / "policies"
CATALOG = [("MON-M8", "监护", "12800.00"), ("MON-M12", "监护", "18600.00"),
           ("PUMP-SP3", "输注", "4980.00"), ("PUMP-VP5", "输注", "6580.00"),
           ("STER-AC60", "消毒", "86000.00"), ("CONS-ECG10", "耗材", "68.00")]


def sample_book() -> PolicyBook:
    return PolicyBook(PublishedVersion(s.code, 1, s) for s in (
        parse_policy_document(p.read_text(encoding="utf-8"))
        for p in sorted(POLICIES.glob("*.yaml"))))


def quarter_lines(n_lines: int, n_customers: int, seed: int = 7):
    rng = random.Random(seed)
    customers = {c: CustomerProfile(c, rng.choice("ABBCC"), rng.choice(["华东", "华南", "华北"]),
                                    f"9132{c:014d}", f"客户{c}有限公司")
                 for c in range(1, n_customers + 1)}
    start = dt.date(2027, 1, 1)
    prices = [(sku, pl, Decimal(p)) for sku, pl, p in CATALOG]
    lines, order_no = [], 0
    while len(lines) < n_lines:
        order_no += 1
        cid = rng.randint(1, n_customers)
        day = start + dt.timedelta(days=rng.randrange(90))
        for line_no, (sku, pl, price) in enumerate(rng.sample(prices, rng.randint(1, 4)), 1):
            qty = rng.randint(1, 400) if pl == "耗材" else rng.randint(1, 6)
            lines.append(SaleLine(f"O{order_no:07d}", line_no, cid, day, sku, pl, price,
                                  qty - (1 if rng.random() < 0.03 else 0), "rep-zhangwei"))
    rates = {(c, m): Decimal(rng.randint(80, 100)) / 100 for c in customers
             for m in ("2027-01", "2027-02", "2027-03")}
    return lines[:n_lines], customers, rates


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=250_000)
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    lines, customers, rates = quarter_lines(args.lines, args.customers)
    book = sample_book()
    best = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        dues = evaluate(lines, book, customers, rates)
        t1 = time.perf_counter()
        best = t1 - t0 if best is None else min(best, t1 - t0)
    t0 = time.perf_counter()
    drafts = settle(dues, {}, rerun=False)
    t_settle = time.perf_counter() - t0
    paid = {(d.bucket_key, d.order_id): (d.amount, d.basis) for d in drafts}
    t0 = time.perf_counter()
    again = settle(dues, paid, rerun=True)
    t_resettle = time.perf_counter() - t0
    total = sum(d.amount for d in drafts)
    print(f"evaluate: {len(lines):,} lines, {args.customers:,} customers → {len(dues):,} "
          f"(bucket, order) dues in {best:.3f} s (best of {args.repeat})")
    print(f"settle (first, every line written with its explanation): {len(drafts):,} lines, "
          f"{total:,} 元 in {t_settle:.3f} s")
    print(f"settle (re-run, nothing new): {len(again)} lines in {t_resettle:.3f} s")


if __name__ == "__main__":
    main()
