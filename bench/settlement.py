"""Monthly settlement and order preview over a year of business: 100,000 signed orders,
1,000,000 order lines (bench/rebate_world.py).

    python -m bench.settlement [--database-url URL] [--month 2026-09] [--previews 1000]
                               [--no-history]

First settles every month before the measured one, untimed, as the monthly cron would have
(`--no-history`: the measured month is the first settlement ever and pays the whole quarter's
unsettled orders). Prints, for the measured month: a bare aggregate scan of the same rows (the
settlement's own line query wrapped in COUNT/SUM, in the same database), the settlement split
into its steps and its ratio to the scan, the re-run, the documents; then the rebate board
over the year's lines (a rep, a region, finance) and the preview latency."""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import random
import statistics
import time
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import select

from bench.common import fresh_database, percentile, scratch_dir
from bench.rebate_world import FIRST_DAY, build, publish_policies
from connectors.settings import Settings
from flows import rebate_board
from flows.hub import build_hub, use_hub
from flows.rebate_board import Scope, board, figure_orders
from flows.rebate_data import (
    DELIVERED_NET, add_months, lines_query, lines_sql, named_products, shanghai_midnight_after,
    summed_lines_sql, summed_sale_lines, window_filter,
)
from flows.rebate_preview import ItemIn, preview_items
from flows.settlement import (
    _LINE_COLUMNS, _insert_lines, _paid, _touched_windows, compute_month, month_inputs,
    parse_month, send_vouchers, settle_month, store_settlement, summarize, write_documents,
)
from models import Customer, Product, RebateLine, SettlementRun
from models.db import get_engine, session_scope
from models.rebates.engine import evaluate, item_classes, settle


def bare_scan(url: str, month: str) -> tuple[float, int]:
    """The settlement's line query, same windows and joins, reduced to COUNT and SUM in the
    database: what reading those rows costs without any rebate work."""
    first, last = parse_month(month)
    engine = get_engine(url)
    with engine.connect() as conn:
        windows = _touched_windows(conn, first, last, None)
        t0 = time.perf_counter()
        rows = 0
        for window in windows:
            ids = sorted(window.customer_ids) if window.customer_ids else None
            where, params = window_filter(window, ids)
            sql = lines_query(f"SELECT COUNT(*), SUM(net * unit_price) FROM "
                              f"({lines_sql(DELIVERED_NET, where)}) AS x")
            count, _ = conn.execute(sql, {**params, "cut": last, "signed_before":
                                          shanghai_midnight_after(last).replace(tzinfo=None)}
                                    ).one()
            rows += count
        return time.perf_counter() - t0, rows


@dataclasses.dataclass
class Floor:
    read: float  # the rows summed per order and item class, into Python
    rows: int
    insert: float  # as many lines as the settlement wrote, with no text, from Python
    in_database: float  # one line per summed row, INSERT … SELECT: no row leaves the database
    in_database_rows: int


def database_floor(url: str, month: str, book, comp, run_id: int) -> Floor:
    """What the database alone costs a settlement that reads these rows and writes one line
    per (order, rule), before any rebate work (each best of 2): reading the rows summed per
    order and item class; inserting as many rebate lines with no explanation and no inputs;
    and, for a settlement that would never take the rows out of the database, one line per
    summed row written by INSERT … SELECT. Writes go to the stored run in transactions rolled
    back (no commit)."""
    first, last = parse_month(month)
    with session_scope(url) as s:
        classes = item_classes(book, named_products(s, book))
    engine = get_engine(url)
    reads, inserts, in_db = [], [], []
    with engine.connect() as conn:
        windows = _touched_windows(conn, first, last, None)
        for _ in range(2):
            (rows, _), t = timed(summed_sale_lines, conn, windows, last, classes)
            reads.append(t)
    bare = dataclasses.replace(comp, drafts=[
        dataclasses.replace(d, explanation="", own_inputs={}, bucket_inputs={}, bucket_json="")
        for d in comp.drafts])
    signed_before = shanghai_midnight_after(last).replace(tzinfo=None)
    for _ in range(2):
        with engine.connect() as conn:
            with conn.begin() as tx:
                inserts.append(timed(_insert_lines, conn, run_id, bare)[1])
                tx.rollback()
        with engine.connect() as conn:
            with conn.begin() as tx:
                t0, written = time.perf_counter(), 0
                for window in windows:
                    ids = sorted(window.customer_ids) if window.customer_ids else None
                    where, params = window_filter(window, ids)
                    summed, class_params = summed_lines_sql(DELIVERED_NET, where, conn.dialect,
                                                            classes)
                    written += conn.execute(lines_query(
                        f"INSERT INTO rebate_line ({', '.join(_LINE_COLUMNS)}) SELECT :run, "
                        "m.month, s.order_id, s.customer_id, s.customer_id, s.rep_id, NULL, "
                        "'FLOOR', 0, 'class' || s.class_no, '', m.month, "
                        "'FLOOR|class' || s.class_no || '|' "
                        "|| s.customer_id || '|' || m.month, s.amount_fen / 100.0, 0, 0, 0, "
                        f"'rebate', '', '' FROM ({summed}) s, "
                        "(SELECT CAST(:month AS VARCHAR(7)) AS month) m"),
                        {**params, **class_params, "cut": last, "signed_before": signed_before,
                         "run": run_id, "month": month}).rowcount
                in_db.append(time.perf_counter() - t0)
                tx.rollback()
    return Floor(min(reads), len(rows), min(inserts), min(in_db), written)


def history(hub, first_day, month: str) -> None:
    """Settle each month from the world's first up to the one before `month` (statements
    aside), as the cron would have on the 5th of each."""
    months = []
    while (m := f"{first_day:%Y-%m}") < month:
        months.append(m)
        first_day = add_months(first_day, 1)
    if not months:
        return
    t0 = time.perf_counter()
    lines = sum(settle_month(hub, m, "bench", documents=False).lines for m in months)
    print(f"history: {months[0]} … {months[-1]} settled ({len(months)} months, {lines:,} rebate "
          f"lines) in {time.perf_counter() - t0:.0f}s, untimed below")


def summary_lines(url: str) -> int:
    with session_scope(url) as s:
        return s.exec(select(sa.func.count()).select_from(RebateLine)).one()


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--database-url", default="")
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--month", default="2026-09", help="a quarter's last month reads 3 months")
    ap.add_argument("--previews", type=int, default=1000)
    ap.add_argument("--no-history", action="store_true",
                    help="do not settle the months before: the month is the first settlement")
    args = ap.parse_args(argv)
    with scratch_dir("salesops-settle-bench-") as work:
        measure(args, work)


def measure(args: argparse.Namespace, work: Path) -> None:
    url = fresh_database(args.database_url, work)
    world = build(url, args.orders, args.lines)
    publish_policies(url)
    hub = build_hub(Settings(_env_file=None, data_dir=work / "data", database_url=url))
    use_hub(hub)
    if not args.no_history:
        history(hub, FIRST_DAY, args.month)

    scans = [bare_scan(url, args.month) for _ in range(3)]
    scan = min(t for t, _ in scans)
    rows = scans[0][1]
    scenario = "first settlement ever" if args.no_history else "the months before settled"
    print(f"\nmonth {args.month} ({scenario}): {rows:,} order lines read "
          f"(of {world['lines']:,}); bare aggregate scan {scan:.2f}s (best of 3)")

    # the settlement, step by step (what settle_month does)
    with session_scope(url) as s:
        from flows.rebate_data import policy_book
        book = policy_book(s)
    inputs, t_load = timed(month_inputs, url, args.month, book)
    with get_engine(url).connect() as conn:
        paid, t_paid = timed(_paid, conn, inputs.windows, args.month)
    dues, t_eval = timed(evaluate, inputs.lines, book, inputs.profiles, inputs.rates)
    drafts, t_settle = timed(settle, dues, paid, rerun=inputs.rerun)
    # the steps' results let go first: the flow's settlement has no such heap beside it
    # (hundreds of thousands of live objects the garbage collector would walk again)
    del inputs, paid, dues, drafts
    gc.collect()
    comp, t_compute = timed(compute_month, url, args.month)
    run_id, t_store = timed(store_settlement, url, comp, "bench")
    ref, t_vouchers = timed(send_vouchers, hub, run_id)
    core = t_compute + t_store + t_vouchers
    print(f"  settlement: {len(comp.drafts):,} rebate lines, total "
          f"¥{sum((d.amount for d in comp.drafts), Decimal(0)):,.2f}")
    print(f"    read lines {t_load:.2f}s · read paid {t_paid:.2f}s · evaluate {t_eval:.2f}s · "
          f"settle {t_settle:.2f}s")
    print(f"    compute {t_compute:.2f}s + store {t_store:.2f}s + vouchers {t_vouchers:.2f}s "
          f"= {core:.2f}s  →  {core / scan:.2f}× the bare scan")
    floor = database_floor(url, args.month, book, comp, run_id)
    print(f"    the database's floor: reading the rows ({floor.rows:,}, summed per order and "
          f"item class) {floor.read:.2f}s + inserting {len(comp.drafts):,} lines with no text "
          f"{floor.insert:.2f}s = {(floor.read + floor.insert) / scan:.2f}× the bare scan; "
          f"in the database (INSERT … SELECT of {floor.in_database_rows:,} lines) "
          f"{floor.in_database:.2f}s = {floor.in_database / scan:.2f}×")
    docs, t_docs = timed(write_documents, hub, run_id)
    print(f"    documents: {len(docs['statements']):,} statement PDFs + workbook {t_docs:.1f}s")
    again, t_rerun = timed(compute_month, url, args.month)
    print(f"  re-run: {len(again.drafts)} new lines in {t_rerun:.2f}s (nothing stored)")
    with session_scope(url) as s:
        assert s.get(SettlementRun, run_id).line_count == len(comp.drafts)
    summary = summarize(url, args.month, run_id)
    print(f"  totals: {len(summary.by_customer):,} customers, {len(summary.by_rep)} reps, "
          f"{len(summary.by_region)} regions")

    # the board over the year's settled lines: a rep, a region, everyone (finance); the first
    # look computes "expected this month", which is then reused for a few minutes
    today = dt.date(2026, 10, 20)
    print(f"\nboard on {today} over {summary_lines(url):,} settled lines "
          "(first look · again · first page of 50 pending orders):")
    for scope in (Scope("rep-07", None, "rep-07"), Scope(None, "华东", "华东"),
                  Scope(None, None, "finance")):
        rebate_board._EXPECTED.clear()
        figures, t_first = timed(board, url, scope, today)
        _, t_again = timed(board, url, scope, today)
        page, t_page = timed(figure_orders, url, scope, "pending", today, limit=50)
        pending = {f["status"]: f for f in figures["figures"]}["pending"]
        print(f"  {scope.label}: {t_first:.2f}s · {t_again:.2f}s · {t_page:.2f}s "
              f"({pending['orders']:,} pending orders, ¥{Decimal(pending['amount']):,.2f})")

    # previews: a customer drawn uniformly (the large ones make the p99) and a typical order,
    # in a process holding what a server would: the bench's own results let go first
    del comp, again, docs, summary, figures, page
    gc.collect()
    rng = random.Random(5)
    with session_scope(url) as s:
        ids = list(s.exec(select(Customer.id)))
        skus = list(s.exec(select(Product.sku)))
    timings = []
    for _ in range(args.previews):
        items = [ItemIn(sku, rng.randint(1, 8)) for sku in rng.sample(skus, rng.randint(1, 12))]
        t0 = time.perf_counter()
        preview_items(url, rng.choice(ids), items)
        timings.append(time.perf_counter() - t0)
    ms = [t * 1000 for t in timings]
    print(f"\npreview ({args.previews} orders, 1–12 lines, {world['lines']:,} historical lines): "
          f"p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
          f"max {max(ms):.1f} ms")
    use_hub(None)


if __name__ == "__main__":
    main()
