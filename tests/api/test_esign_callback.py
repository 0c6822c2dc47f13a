"""POST /webhooks/esign/{provider}: e签宝's callback signature, replay window, duplicates."""
from __future__ import annotations

import datetime as dt
import json
import time
from decimal import Decimal

import pytest
from pydantic import SecretStr
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from models import Customer, InboxEvent, IntentOrder, Quote
from models.db import session_scope
from tests.simulators.esign_sim import TsignSimulator

SECRET = "tsign-secret"


@pytest.fixture
def client(hub):
    settings = hub.settings.model_copy(update={"esign_app_secret": SecretStr(SECRET)})
    with session_scope(settings.db_url) as s:
        cust = s.exec(select(Customer)).first()
        s.add(IntentOrder(id="IO-T1", event_id="e1", sender_id="portal",
                          customer_name=cust.legal_name, customer_id=cust.id, status="quoted",
                          rep_id="rep-zhangwei"))
        s.flush()
        s.add(Quote(code="Q2611-AAAAAA-0", order_id="IO-T1", customer_id=cust.id,
                    total_amount=Decimal("100.00"), tax_amount=Decimal("11.50"),
                    valid_until=dt.date(2099, 1, 1), signing_provider="esign",
                    signing_ref="flow-123", status="sent"))
    with TestClient(create_app(settings, launcher=None)) as c:
        yield c, settings


def callback(flow_id="flow-123", status="2", action="SIGN_FLOW_COMPLETE", **extra) -> bytes:
    return json.dumps({"action": action, "signFlowId": flow_id, "signFlowStatus": status,
                       "timestamp": int(time.time() * 1000), **extra}).encode()


def post(client, body: bytes, *, secret=SECRET, stamp_ms=None):
    signer = TsignSimulator("app-1", secret)
    url = "http://testserver/webhooks/esign/esign"
    headers = signer.callback_headers(url, body, stamp_ms)
    return client.post("/webhooks/esign/esign", content=body, headers=headers)


def events(settings):
    with session_scope(settings.db_url) as s:
        return s.exec(select(InboxEvent)).all()


def test_signed_callback_is_stored_once(client):
    c, settings = client
    body = callback()
    assert post(c, body).json() == {"code": "200", "msg": "success"}
    assert post(c, body).status_code == 200  # e签宝 retries: nothing new
    [row] = events(settings)
    assert (row.source, row.subject_id, row.status) == ("esign:esign", "Q2611-AAAAAA-0", "pending")


def test_forged_and_stale_callbacks_are_refused(client):
    c, settings = client
    r = post(c, callback(), secret="wrong")
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
    r = post(c, callback(), stamp_ms=int((time.time() - 600) * 1000))
    assert r.status_code == 401 and r.json()["error"]["code"] == "stale_timestamp"
    r = c.post("/webhooks/esign/esign", content=callback())
    assert r.status_code == 401
    assert events(settings) == []


def test_unknown_flow_provider_and_other_actions(client):
    c, settings = client
    r = post(c, callback(flow_id="flow-unknown"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_sign_flow"
    assert post(c, callback(action="SIGN_MISSON_COMPLETE")).status_code == 200
    assert post(c, callback(flow_id="flow-unknown", status="7")).status_code == 200
    r = c.post("/webhooks/esign/docusign", content=b"{}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_provider"
    assert events(settings) == []


def test_a_refused_or_expired_signing_tells_the_rep_once(client):
    from models import Todo

    c, settings = client
    body = callback(status="7", statusDescription="价格需要重新商议")
    assert post(c, body).json() == {"code": "200", "msg": "success"}
    assert post(c, body).status_code == 200  # e签宝 retries: no second to-do
    assert post(c, callback(status="5", statusDescription="签署已过期")).status_code == 200
    with session_scope(settings.db_url) as s:
        todos = s.exec(select(Todo).where(Todo.kind == "signing_ended").order_by(Todo.id)).all()
    assert [(t.title, t.assignee_id, t.cc, t.order_id) for t in todos] == [
        ("客户拒签：报价单 Q2611-AAAAAA-0", "rep-zhangwei", "mgr-east", "IO-T1"),
        ("签署已过期：报价单 Q2611-AAAAAA-0", "rep-zhangwei", "mgr-east", "IO-T1")]
    assert "原因：价格需要重新商议" in todos[0].body and "原因" not in todos[1].body
    pushes = sorted((settings.data_dir / "pushes").glob("*.json"))
    assert len(pushes) == 2 and "客户拒签" in pushes[0].read_text(encoding="utf-8")
    assert events(settings) == []  # nothing to dispatch: the order stays quoted
