"""Audit 5 (intent-order pipeline): a batch that outlives its lease keeps its orders; what
ops read in the run's artifacts is Chinese."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from flows.intent_order import claim_orders
from models.db import session_scope
from tests.support import order_payload, order_status, post_order, run_pending

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def client(hub):
    app = create_app(hub.settings, launcher=None)  # the test dispatches explicitly
    with TestClient(app) as c:
        yield c


def test_a_batch_slower_than_its_lease_keeps_its_orders_from_other_runs(hub, client,
                                                                       monkeypatch):
    """The stock check waits on a slow ERP past the lease: the sweeper's next run must not
    take the order meanwhile (it would request a second envelope and mail a second quote)."""
    monkeypatch.setattr(hub.settings, "claim_lease_seconds", 1)
    oid = post_order(client, order_payload()).json()["order_id"]
    real = hub.inventory.availability
    intruder: list[list[str]] = []

    def slow_availability(skus):
        time.sleep(2.5)  # two and a half leases
        intruder.append(claim_orders(hub, [oid], 10, "another-run"))
        return real(skus)

    monkeypatch.setattr(hub.inventory, "availability", slow_availability)
    run_pending(hub)
    assert intruder == [[]]
    view = order_status(client, oid).json()
    assert view["status"] == "quoted"


def latest_artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async def read():
        async with get_client() as c:
            return (await c.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                sort=ArtifactSort.CREATED_DESC, limit=1))[0]

    return asyncio.run(read())


def test_the_batch_table_shows_each_orders_status_in_chinese(hub, client):
    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    data = latest_artifact("intent-order-batch").data
    table = json.loads(data) if isinstance(data, str) else data
    assert [(row["意向单"], row["状态"]) for row in table] == [(oid, "已报价，待客户签署")]


def test_the_runs_link_the_order_page_never_the_customers_signing_link(hub, client):
    """Whoever reads the runs in the Prefect UI must not be able to sign a customer's quote:
    the batch table and the quote's link artifact point at the order's staff page."""
    from flows.order_steps import signing_link
    from models import Quote

    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
        signing = signing_link(hub.settings, quote)
        code = quote.code
    page = f"{hub.settings.public_base_url.rstrip('/')}/orders/{oid}"
    batch = latest_artifact("intent-order-batch").data
    table = json.loads(batch) if isinstance(batch, str) else batch
    assert table[0]["意向单页面"] == page and "签署链接" not in table[0]
    link = latest_artifact(f"quote-{code.lower()}")
    assert page in str(link.data) and f"报价单 {code}" in str(link.data)
    token = signing.rsplit("/", 1)[1]
    for artifact in (batch, link.data, link.description):
        assert token not in str(artifact) and "/sign/" not in str(artifact)
