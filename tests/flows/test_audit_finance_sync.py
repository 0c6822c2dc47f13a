"""Audit (finance): receivables sync from the drop folder, voucher drafts, and the finance
CLI. Each test here that fails shows a defect (see the report of the audit-finance branch)."""
from __future__ import annotations

import pytest

from flows.sales_facts import ImportRefused, SyncUnfinished, sync_receivables
from tests.flows.test_audit5_receivables import (
    INVOICES,
    KANGDA,
    PAYMENTS,
    RENHE,
    allocations,
    write,
)


def inbound(hub):
    return hub.settings.path("finance-drop") / "receivables-inbound"


# --- one 回款单号, two payments, read by one sync ----------------------------------------------

def test_one_sync_does_not_drop_a_payment_whose_number_a_later_export_reuses_in_another_year(hub):
    """Read in two syncs, the second export's SK-1 (another customer, another year: another
    账套's or year's 收款单) is refused against the stored SK-1 and nothing is lost. Read by
    one sync (both exports dropped the same day, or the cursor held), the sync keeps only the
    'last version' of each 回款单号: the 2025 receipt of 康达 is silently never stored, and
    康达's payment rate loses 600.00 without a word."""
    folder = inbound(hub)
    write(folder / "20261101-应收.csv", INVOICES
          + f"FP-A,{KANGDA},2025-12-01,2025-12-31,1000.00\n"
            f"FP-B,{RENHE},2026-10-01,2026-11-01,1000.00\n")
    write(folder / "20261102-回款.csv", PAYMENTS + "SK-1,FP-A,2025-12-20,600.00\n")
    write(folder / "20261103-回款.csv", PAYMENTS + "SK-1,FP-B,2026-10-20,500.00\n")
    try:
        sync_receivables(hub)
    except (ImportRefused, SyncUnfinished):
        pass  # refusing the reused number (as two syncs do) is fine
    stored = [(n, float(a)) for n, a in allocations(hub.db_url, "SK-1")]
    assert ("FP-A", 600.0) in stored  # observed: [("FP-B", 500.0)], 康达's receipt gone


# --- two imports at once ----------------------------------------------------------------------

def _together(calls):
    """Run each of `calls` in its own thread, released at once: their exceptions."""
    import threading

    from tests.support import run_together

    pending, lock = list(calls), threading.Lock()

    def one():
        with lock:
            call = pending.pop()
        return call()

    return run_together(one, len(calls))[1]


def _said_in_chinese(exc: Exception) -> bool:
    """What `salesops` turns into a Chinese message and an exit code (not a traceback)."""
    import sqlalchemy as sa

    from connectors.base import PermanentError, TransientError
    from models.db import database_busy

    if isinstance(exc, (ImportRefused, SyncUnfinished, TransientError, PermanentError)):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and database_busy(exc)


def test_a_manual_sync_while_the_daily_sync_runs_does_not_crash_on_a_unique_key(hub):
    """The scheduled receivables-sync and a clerk's `salesops receivables sync` at the same
    time read the same new export: both insert the same invoices, and the second dies with a
    raw `IntegrityError: UNIQUE constraint failed: receivable_invoice.invoice_no` (a Python
    traceback at the CLI, a crashed flow run) instead of waiting, or storing nothing new."""
    from flows.hub import build_hub

    folder = inbound(hub)
    write(folder / "20261101-应收.csv", INVOICES + "".join(
        f"FP-{i},{KANGDA},2026-10-01,2026-11-01,100.00\n" for i in range(300)))
    other = build_hub(hub.settings)
    errors = _together([lambda: sync_receivables(hub), lambda: sync_receivables(other)])
    assert all(_said_in_chinese(e) for e in errors), errors  # observed: IntegrityError


def test_two_clerks_importing_overlapping_exports_at_once_do_not_crash(seeded, tmp_path):
    """Two `salesops receivables import` runs of exports listing the same invoices (a clerk
    and a colleague, or the import and the daily sync): the second crashes with a traceback
    (`sqlite3.IntegrityError` / `psycopg.errors.UniqueViolation`), not a Chinese message."""
    from flows.sales_facts import import_receivables_file

    rows = "".join(f"FP-{i},{KANGDA},2026-10-01,2026-11-01,100.00\n" for i in range(300))
    a = write(tmp_path / "a.csv", INVOICES + rows)
    b = write(tmp_path / "b.csv", INVOICES + rows)
    errors = _together([lambda: import_receivables_file(seeded.db_url, a, "t"),
                        lambda: import_receivables_file(seeded.db_url, b, "t")])
    assert all(_said_in_chinese(e) for e in errors), errors  # observed: IntegrityError


# --- an invoice moved to another customer -----------------------------------------------------

def test_a_receipt_re_dated_after_its_invoice_moved_to_another_customer_is_the_same_receipt(
        seeded, tmp_path):
    """Finance booked FP-A to the wrong customer and moved it to 仁和; the receipt SK-1 on it
    keeps the old customer in `payment.customer_id` (only the invoice row is updated). When
    finance then corrects SK-1's date within the year, the import compares the stale stored
    customer (康达) with the invoice's (仁和) on another day and refuses the export as 'not the
    same 回款单', telling the clerk to prefix 账套 numbers: the correction cannot be imported."""
    from flows.sales_facts import import_receivables_file

    db = seeded.db_url
    first = write(tmp_path / "1.csv", INVOICES + f"FP-A,{KANGDA},2026-10-01,2026-11-01,1000.00\n")
    import_receivables_file(db, first, "t")
    paid = write(tmp_path / "2.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n")
    import_receivables_file(db, paid, "t")
    moved = write(tmp_path / "3.csv", INVOICES + f"FP-A,{RENHE},2026-10-01,2026-11-01,1000.00\n")
    import_receivables_file(db, moved, "t")
    redated = write(tmp_path / "4.csv", PAYMENTS + "SK-1,FP-A,2026-10-21,600.00\n")
    try:
        import_receivables_file(db, redated, "t")
    except ImportRefused as exc:  # observed: 已登记为客户“江苏康达…”…的回款…不是同一张回款单
        pytest.fail(f"the date correction was refused: {exc.problems}")
    assert [(n, float(a)) for n, a in allocations(db, "SK-1")] == [("FP-A", 600.0)]


def test_an_invoice_moved_to_another_customer_takes_its_payments_along(seeded, tmp_path):
    """The payments on an invoice moved to another customer follow it in the same import,
    each change in the operation log, and the summary says so."""
    from flows.sales_facts import import_receivables_file
    from tests.flows.test_audit5_receivables import log_entries
    from tests.rebate_support import customer_id

    db = seeded.db_url
    invoice = "FP-A,{},2026-10-01,2026-11-01,1000.00\n"
    import_receivables_file(db, write(tmp_path / "1.csv", INVOICES + invoice.format(KANGDA)), "t")
    import_receivables_file(db, write(tmp_path / "2.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n"),
                            "t")
    moved = write(tmp_path / "3.csv", INVOICES + invoice.format(RENHE))
    summary = import_receivables_file(db, moved, "t")
    assert any("SK-1" in m and RENHE in m for m in summary.moved), summary.moved
    kangda, renhe = customer_id(db, KANGDA), customer_id(db, RENHE)
    assert {"customer_id": [kangda, renhe]} in log_entries(db, "payment", "update")
