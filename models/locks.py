"""The hub's named transaction locks (`models.db.lock_transaction`: PostgreSQL advisory
locks, SQLite's one write lock), each taken first in the transactions it serializes.

One order, so that two transactions never wait for each other: a transaction that takes
more than one takes them as listed, and never takes one listed above a lock it holds.

1. settlements — storing a settlement, confirming one, issuing 凭证号, publishing a policy
   version, merging customer files;
2. receivables — every receivables import (a file, a page of the sync);
3. customer files — a merge (exclusive: after the settlements lock), and shared by writers
   of rows that a merge moves to the surviving file (the receivables imports: after their
   receivables lock, before their first write; the intent-order flow putting an order on a
   file, writing its quote or its to-dos; a manager's or rep's choice of a customer);
4. movements — every deliveries or returns import.
"""
from __future__ import annotations

from sqlmodel import Session

from models.db import lock_transaction


def lock_settlements(s: Session) -> None:
    """Until the transaction ends, no other settlement can be stored (any process). Publishing
    a policy version takes it too: a settlement computed before the version is refused when
    stored (SettlementConflict), one stored before it is seen by the publication's review. So
    does a customer merge (`lock_customer_merge`)."""
    lock_transaction(s, 5077001, "settlement_run")


def lock_receivables(s: Session) -> None:
    """Taken first in the transaction of every receivables import (a file, a page of the sync):
    until it ends no other one writes (any process), and what it reads after taking it —
    stored invoices, payments, the sync's cursor — is what it writes against. Two imports of
    the same new invoices at once (the daily sync and a clerk's `salesops receivables sync`,
    two clerks' overlapping exports) would otherwise both find them missing and both insert
    them: the second would fail on the unique key instead of finding them stored."""
    lock_transaction(s, 5077002, "receivable_invoice")


def lock_customer_files(s: Session) -> None:
    """Shared, by a transaction about to write rows that carry a customer id a merge moves
    (invoices, payments, orders, quotes, to-dos), taken before its first write: no merge commits until it does, and
    one that committed before it holds the lock is seen (a file it looked up before may be
    merged by then: it writes to the survivor, `models.customer_files.active_id`)."""
    lock_transaction(s, 5077003, "customer", shared=True)


def lock_customer_merge(s: Session) -> None:
    """Taken first in a merge's transaction: the settlements lock (no settlement is stored
    while the files' rebate lines are re-keyed; one computed before the merge is refused when
    stored, as the merge changed the count of merged files it compares), then the customer
    files lock, exclusively (a receivables import writing meanwhile finishes first, and its
    rows are moved with the others; one that writes later finds the survivor)."""
    lock_settlements(s)
    lock_transaction(s, 5077003, "customer")


def lock_movements(s: Session) -> None:
    """Taken first in the transaction of every deliveries or returns import: until it ends no
    other one writes (any process), so the quantity checks (delivered ≤ ordered, returned ≤
    delivered) read every other import's rows committed. Two return notes of one order line
    imported at once would otherwise each see only its own rows, and both be stored."""
    lock_transaction(s, 5077004, "delivery")
