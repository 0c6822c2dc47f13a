"""Hand-over to Prefect: idempotency keys, Prefect being down, the sweeper."""
from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from flows.dispatch import PrefectLauncher, batch_key, dispatch_pending, retry_delay
from flows.intent_order import process_intent_orders
from flows.sweeper import sweep
from models import InboxEvent, IntentOrder, utcnow
from models.db import session_scope
from tests.support import InlineLauncher, order_payload, post_order

pytestmark = pytest.mark.usefixtures("prefect_harness")


class PrefectDown:
    def __init__(self):
        self.calls = 0

    def launch(self, deployment, parameters, idempotency_key):
        self.calls += 1
        raise ConnectionError("Prefect API unreachable")


def inbox(db_url) -> list[InboxEvent]:
    with session_scope(db_url) as s:
        return list(s.exec(select(InboxEvent)))


def test_order_waits_in_the_inbox_while_prefect_is_down_then_the_sweeper_runs_it(hub):
    down = PrefectDown()
    app = create_app(hub.settings, launcher=down)
    app.state.dispatcher.interval = 0.05
    with TestClient(app) as client:
        oid = post_order(client, order_payload()).json()["order_id"]
        assert app.state.dispatcher.idle.wait(10)  # it tried, and failed
    assert down.calls >= 1
    [row] = inbox(hub.db_url)
    assert row.status == "pending" and row.flow_run_id is None
    # Prefect is back: the sweeper's pass starts the run, the order is processed
    result = sweep(hub, InlineLauncher(), min_age_seconds=0)
    assert result["dispatched"] == 1
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, oid).status == "quoted"
    [row] = inbox(hub.db_url)
    assert row.status == "done" and row.flow_run_id


def test_lone_event_runs_under_its_event_id_and_prefect_keeps_it_once(hub):
    """Against the real Prefect API: creating the run twice with the event's key gives one
    flow run."""
    deployment = process_intent_orders.to_deployment(name="intent-order")
    deployment.apply()
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        post_order(client, order_payload(event_id="portal-42"))
    [row] = inbox(hub.db_url)
    key = batch_key([row])
    assert key == "intent-order:portal:portal-42"
    launcher = PrefectLauncher()
    first = launcher.launch("intent-order/intent-order", {"order_ids": [row.subject_id]}, key)
    second = launcher.launch("intent-order/intent-order", {"order_ids": [row.subject_id]}, key)
    assert first == second


def test_a_burst_coalesces_into_batches(hub):
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        for _ in range(7):
            post_order(client, order_payload())
    launcher = InlineLauncher()
    assert dispatch_pending(hub.db_url, launcher, batch_size=3) == 7
    assert [len(p["order_ids"]) for _, p, _ in launcher.launched] == [3, 3, 1]
    assert all(k.startswith("batch:") for _, p, k in launcher.launched if len(p["order_ids"]) > 1)
    assert dispatch_pending(hub.db_url, launcher, batch_size=3) == 0  # nothing twice


def failed_order(hub, attempts: int, ago: dt.timedelta) -> str:
    """An order whose attempt number `attempts` failed `ago`."""
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        oid = post_order(client, order_payload()).json()["order_id"]
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        order.status, order.error = "failed", "邮件服务器暂时不可用"
        order.attempts, order.updated_at = attempts, utcnow() - ago
        s.add(order)
        for row in s.exec(select(InboxEvent)):
            row.status = "dispatched"
            s.add(row)
    return oid


def test_a_failed_order_is_picked_up_again(hub):
    oid = failed_order(hub, 1, dt.timedelta(minutes=1, seconds=1))
    result = sweep(hub, InlineLauncher(), min_age_seconds=0)
    assert result["requeued"] == 1
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, oid).status == "quoted"


def test_a_failed_order_waits_twice_as_long_after_each_attempt(hub):
    """With the default 60 s: after its first failed attempt an order waits a minute, after
    its third four minutes, so a provider down for a quarter of an hour does not use up its
    five attempts (before, the sweeper started one every minute)."""
    assert [retry_delay(dt.timedelta(seconds=60), n).total_seconds() for n in range(1, 9)] == [
        60, 120, 240, 480, 960, 1920, 3600, 3600]
    oid = failed_order(hub, 3, dt.timedelta(minutes=3, seconds=50))
    assert sweep(hub, InlineLauncher(), min_age_seconds=0)["requeued"] == 0
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, oid).status == "failed"
        s.get(IntentOrder, oid).updated_at = utcnow() - dt.timedelta(minutes=4, seconds=1)
    assert sweep(hub, InlineLauncher(), min_age_seconds=0)["requeued"] == 1
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, oid).status == "quoted"
