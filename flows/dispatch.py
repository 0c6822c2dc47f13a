"""Hands accepted events to Prefect: pending inbox rows → flow runs of the right deployment.

Used by the API right after it accepts an event, and by the sweeper deployment for anything
left behind (Prefect was down, a run crashed, an order failed and must be retried).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import select

from models import InboxEvent, IntentOrder, OrderStatus, Quote, QuoteStatus, utcnow
from models.db import get_engine, session_scope

log = logging.getLogger("salesops.dispatch")

# inbox source prefix → (deployment, parameter that takes the subject ids)
ROUTES = {
    "intent-order": ("intent-order/intent-order", "order_ids"),
    "esign": ("signing-completed/signing-completed", "quote_codes"),
}


class Launcher(Protocol):
    def launch(self, deployment: str, parameters: dict, idempotency_key: str) -> str:
        """Start a flow run; return its id. Raise when the orchestrator is unreachable."""


class PrefectLauncher:
    """Creates flow runs of served/deployed deployments through the Prefect API."""

    def launch(self, deployment: str, parameters: dict, idempotency_key: str) -> str:
        from prefect.deployments import run_deployment

        run = run_deployment(deployment, parameters=parameters,
                             idempotency_key=idempotency_key, timeout=0)
        return str(run.id)


def _route(source: str) -> tuple[str, str]:
    return ROUTES[source.split(":", 1)[0]]


def batch_key(rows) -> str:
    """A lone event's run is keyed by its event id; a coalesced batch by all of them. An event
    handed over before (its run failed or vanished and the sweeper set it pending again) gets
    a key of its own per hand-over: under the first key Prefect would answer the old run."""
    keys = sorted(f"{r.source}:{r.sender_id}:{r.event_id}"
                  + (f"#{r.dispatch_attempts}" if r.dispatch_attempts else "") for r in rows)
    if len(keys) == 1:
        return keys[0]
    return "batch:" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:40]


def dispatch_pending(db_url: str, launcher: Launcher, batch_size: int = 250,
                     older_than: dt.timedelta | None = None, limit: int = 5000) -> int:
    """Start runs for pending inbox rows; returns how many rows were dispatched."""
    # only the columns needed (never the payloads): this runs inside the API process
    query = sa.select(InboxEvent.id, InboxEvent.source, InboxEvent.sender_id,
                      InboxEvent.event_id, InboxEvent.subject_id,
                      InboxEvent.dispatch_attempts).where(
        InboxEvent.status == "pending")
    if older_than:
        query = query.where(InboxEvent.received_at < utcnow() - older_than)
    with get_engine(db_url).connect() as conn:
        rows = conn.execute(query.order_by(InboxEvent.id).limit(limit)).all()
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for row in rows:
        groups[_route(row.source)].append(row)
    dispatched = 0
    for (deployment, param), members in groups.items():
        for start in range(0, len(members), batch_size):
            chunk, claim = _take(db_url, members[start:start + batch_size])
            if not chunk:
                continue
            subjects = list(dict.fromkeys(r.subject_id for r in chunk if r.subject_id))
            try:
                run_id = launcher.launch(deployment, {param: subjects}, batch_key(chunk))
            except Exception as exc:  # orchestrator down: the rows wait in the inbox again
                log.warning("could not start %s (%d events wait in the inbox): %s",
                            deployment, len(chunk), exc)
                with session_scope(db_url) as s:
                    s.exec(sa.update(InboxEvent).where(
                        InboxEvent.id.in_([r.id for r in chunk]),
                        InboxEvent.status == "dispatched", InboxEvent.flow_run_id == claim)
                        .values(status="pending", flow_run_id=None, dispatched_at=None))
                return dispatched
            with session_scope(db_url) as s:
                # a fast run may already have marked its events done: keep that status
                s.exec(sa.update(InboxEvent).where(InboxEvent.id.in_([r.id for r in chunk]))
                       .values(flow_run_id=run_id, dispatched_at=utcnow(),
                               dispatch_attempts=InboxEvent.dispatch_attempts + 1))
            dispatched += len(chunk)
    return dispatched


def take(session, model, ids, free, owner, claim: str, **values) -> set:
    """The rows of `ids` this caller wins: one conditional UPDATE marks those still `free`
    with `owner = claim` (the lock: of two callers racing for a row the second finds it no
    longer free), then the rows carrying the claim are read back."""
    ids = list(ids)
    session.exec(sa.update(model).where(model.id.in_(ids), free)
                 .values({owner: claim, **values}))
    return set(session.execute(sa.select(model.id).where(
        model.id.in_(ids), owner == claim)).scalars())


def order_lease_free(run_id: str, now: dt.datetime):
    """An order no other run holds: never claimed, given back, its lease run out, or this
    run's own (a retried run takes its orders again)."""
    return sa.or_(IntentOrder.claimed_until.is_(None), IntentOrder.claimed_until < now,
                  IntentOrder.claimed_by == run_id)


@contextmanager
def claims_kept(db_url: str, lease: float, run_id: str) -> Iterator[None]:
    """Renew the lease (`lease` seconds) on the orders `run_id` holds, every third of it,
    while the run works (the intent-order run, signing completion). A batch can outlive one
    lease (a slow provider, the tasks' retries over hundreds of orders); an order whose lease
    ran out would be claimed by the sweeper's next run while this one still calls out for
    it, and `once()` cannot tell a call in progress from a crash: two envelopes, two mails.
    A run that dies stops renewing, so its orders free up one lease later as before."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease / 3):
            try:
                with session_scope(db_url) as s:
                    s.exec(sa.update(IntentOrder).where(IntentOrder.claimed_by == run_id)
                           .values(claimed_until=utcnow() + dt.timedelta(seconds=lease)))
            except Exception:  # noqa: BLE001 - a busy database: the next tick tries again
                log.exception("could not renew the order leases of run %s", run_id)

    keeper = threading.Thread(target=renew, name=f"order-leases-{run_id}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()


def _take(db_url: str, chunk: list) -> tuple[list, str]:
    """The events of `chunk` this dispatcher hands over, marked `dispatched`: the API's
    dispatcher and the sweeper may read the same pending rows, and an event handed over in
    two differently composed batches would get two runs (each mailing the signed quote). A
    hand-over that dies before the run is created leaves its rows `dispatched`: the sweeper
    picks them up after the lease (`requeue_stalled`)."""
    claim = f"claim:{uuid.uuid4().hex}"
    with session_scope(db_url) as s:
        won = take(s, InboxEvent, [r.id for r in chunk], InboxEvent.status == "pending",
                   InboxEvent.flow_run_id, claim, status="dispatched", dispatched_at=utcnow())
    return [r for r in chunk if r.id in won], claim


# the longest a failed order waits for its next attempt
MAX_RETRY_DELAY = dt.timedelta(hours=1)


def retry_delay(base: dt.timedelta, attempts: int) -> dt.timedelta:
    """How long an order that failed after `attempts` attempts waits for the next one: `base`,
    doubled for each attempt after the first, at most MAX_RETRY_DELAY."""
    return min(base * 2 ** max(attempts - 1, 0), MAX_RETRY_DELAY)


def requeue_stalled(db_url: str, launcher: Launcher, lease: dt.timedelta,
                    max_attempts: int, batch_size: int = 250,
                    retry_base: dt.timedelta = dt.timedelta(0)) -> int:
    """Start runs for orders that failed (once their `retry_delay` has passed since the
    failure) or whose run vanished, and for signed quotes whose completion run did not
    finish. Returns the number of subjects handed over."""
    now = utcnow()
    with session_scope(db_url) as s:
        failed = OrderStatus.failed.value
        rows = s.exec(select(IntentOrder.id, IntentOrder.attempts, IntentOrder.status,
                             IntentOrder.updated_at).where(
            IntentOrder.attempts < max_attempts,
            sa.or_(sa.and_(IntentOrder.status == failed,
                           IntentOrder.updated_at <= now - retry_base),
                   sa.and_(IntentOrder.status == OrderStatus.processing.value,
                           IntentOrder.claimed_until < now),
                   sa.and_(IntentOrder.status == OrderStatus.received.value,
                           IntentOrder.created_at < now - lease))))
        # a failed order (updated_at: when its attempt failed) waits its doubled delay
        orders = [(oid, n, failed_at) for oid, n, status, failed_at in rows
                  if status != failed or failed_at <= now - retry_delay(retry_base, n)]
        stuck_signings = list(s.exec(select(InboxEvent).join(
            Quote, Quote.code == InboxEvent.subject_id).where(
            InboxEvent.source.like("esign:%"), InboxEvent.status == "dispatched",
            InboxEvent.dispatched_at < now - lease, Quote.status != QuoteStatus.expired.value)))
        for row in stuck_signings:
            row.status = "pending"
            s.add(row)
    handed = 0
    for start in range(0, len(orders), batch_size):
        chunk = orders[start:start + batch_size]
        # keyed by the orders' attempts and when they last changed: a pass finding them as
        # the last one did gets that run again from Prefect, not a second one; an order
        # requeued by hand (`salesops orders retry`: attempts 0 again) is a new hand-over
        # (under the old key Prefect would answer the run of its earlier requeue: none)
        key = "retry:" + hashlib.sha256(repr(sorted(
            (oid, n, at.isoformat()) for oid, n, at in chunk)).encode()).hexdigest()[:40]
        try:
            launcher.launch(ROUTES["intent-order"][0], {"order_ids": [o for o, _, _ in chunk]},
                            key)
        except Exception as exc:
            log.warning("could not requeue %d order(s): %s", len(chunk), exc)
            break
        handed += len(chunk)
    return handed + len(stuck_signings)
