"""POST /webhooks/intent-orders: verification, validation, one transaction, duplicates."""
from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from models.db import get_engine
from tests.support import order_payload, post_order, run_together, signed_headers

BUSINESS_TABLES = ["inbox_event", "intent_order", "intent_order_line", "opportunity",
                   "operation_log", "customer", "quote", "todo", "effect"]


@pytest.fixture
def client(seeded):
    with TestClient(create_app(seeded, launcher=None)) as c:
        yield c


def counts(db_url) -> dict[str, int]:
    with get_engine(db_url).connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in BUSINESS_TABLES}


def assert_refused(client, seeded, response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]  # a Chinese explanation for the integrator


@pytest.fixture
def baseline(seeded):
    return counts(seeded.db_url)


def test_accepts_signed_order_with_202_and_order_id(client, seeded, baseline):
    r = post_order(client, order_payload())
    assert r.status_code == 202
    assert r.json()["order_id"].startswith("IO") and r.json()["status"] == "accepted"
    after = counts(seeded.db_url)
    assert after["inbox_event"] == 1 and after["intent_order"] == 1
    assert after["intent_order_line"] == 1 and after["opportunity"] == 1


def test_duplicate_delivery_returns_first_answer_and_writes_nothing(client, seeded):
    payload = order_payload()
    first = post_order(client, payload)
    before = counts(seeded.db_url)
    again = post_order(client, payload)
    assert again.status_code == 202 and again.json() == first.json()
    assert again.headers["X-Salesops-Duplicate"] == "1"
    assert counts(seeded.db_url) == before


def test_concurrent_duplicates_make_one_order(client, seeded):
    payload = order_payload()
    answers, errors = run_together(lambda: post_order(client, payload).json()["order_id"], 6)
    assert not errors and len(answers) == 6
    assert len(set(answers)) == 1
    assert counts(seeded.db_url)["intent_order"] == 1


def test_event_id_reused_with_other_content_is_409(client, seeded):
    payload = order_payload()
    post_order(client, payload)
    other = dict(payload, note="改了内容")
    before = counts(seeded.db_url)
    assert_refused(client, seeded, post_order(client, other), 409, "event_id_reused")
    assert counts(seeded.db_url) == before


def test_forged_signature(client, seeded, baseline):
    r = post_order(client, order_payload(), secret="not-the-secret")
    assert_refused(client, seeded, r, 401, "bad_signature")
    assert counts(seeded.db_url) == baseline


def test_body_changed_after_signing(client, seeded, baseline):
    body = json.dumps(order_payload()).encode()
    headers = signed_headers(body)
    r = client.post("/webhooks/intent-orders", content=body.replace(b"MON-M8", b"MON-M12"),
                    headers=headers)
    assert_refused(client, seeded, r, 401, "bad_signature")
    assert counts(seeded.db_url) == baseline


def test_stale_timestamp(client, seeded, baseline):
    r = post_order(client, order_payload(), stamp=int(time.time()) - 301)
    assert_refused(client, seeded, r, 401, "stale_timestamp")
    r = post_order(client, order_payload(), stamp=int(time.time()) + 600)
    assert_refused(client, seeded, r, 401, "stale_timestamp")
    assert counts(seeded.db_url) == baseline


def test_unknown_sender_and_missing_headers(client, seeded, baseline):
    assert_refused(client, seeded, post_order(client, order_payload(), sender="intruder"),
                   401, "unknown_sender")
    r = client.post("/webhooks/intent-orders", content=b"{}")
    assert_refused(client, seeded, r, 401, "missing_signature_headers")
    assert counts(seeded.db_url) == baseline


def test_malformed_json(client, seeded, baseline):
    body = b'{"event_id": "x", "customer": '
    r = client.post("/webhooks/intent-orders", content=body, headers=signed_headers(body))
    assert_refused(client, seeded, r, 400, "malformed_json")
    body = b'["not", "an", "object"]'
    r = client.post("/webhooks/intent-orders", content=body, headers=signed_headers(body))
    assert_refused(client, seeded, r, 400, "malformed_json")
    assert counts(seeded.db_url) == baseline


def test_missing_fields_name_the_field(client, seeded, baseline):
    payload = order_payload()
    del payload["lines"]
    r = post_order(client, payload)
    assert_refused(client, seeded, r, 422, "missing_field")
    assert {"field": "lines", "problem": "missing"}.items() <= r.json()["error"]["details"][0].items()
    payload = order_payload()
    del payload["customer"]["name"]
    r = post_order(client, payload)
    assert_refused(client, seeded, r, 422, "missing_field")
    assert r.json()["error"]["details"][0]["field"] == "customer.name"
    assert counts(seeded.db_url) == baseline


def test_unknown_sku(client, seeded, baseline):
    r = post_order(client, order_payload(lines=[("MON-M8", 1), ("NO-SUCH-SKU", 2)]))
    assert_refused(client, seeded, r, 422, "unknown_sku")
    assert r.json()["error"]["details"] == [
        {"field": "lines.sku", "problem": "unknown", "value": "NO-SUCH-SKU"}]
    assert counts(seeded.db_url) == baseline


@pytest.mark.parametrize("quantity", [0, -3, 1.5, "三", True])
def test_zero_negative_or_fractional_quantity(client, seeded, baseline, quantity):
    payload = order_payload()
    payload["lines"][0]["quantity"] = quantity
    r = post_order(client, payload)
    assert_refused(client, seeded, r, 422, "invalid_quantity")
    assert r.json()["error"]["details"][0]["field"] == "lines.0.quantity"
    assert counts(seeded.db_url) == baseline


def test_a_customer_id_of_true_is_not_customer_1(client, seeded, baseline):
    payload = order_payload()
    payload["customer"] = {"id": True}
    r = post_order(client, payload)
    assert r.status_code == 422
    (detail,) = r.json()["error"]["details"]
    assert (detail["field"], detail["message"]) == ("customer.id", "应为整数")
    assert counts(seeded.db_url) == baseline


def test_one_megabyte_body_is_413(client, seeded, baseline):
    payload = order_payload(note="x" * (1024 * 1024))
    r = post_order(client, payload)
    assert_refused(client, seeded, r, 413, "body_too_large")
    assert counts(seeded.db_url) == baseline


def test_control_characters_and_unknown_rep(client, seeded, baseline):
    r = post_order(client, order_payload(name="江苏康达\x00医疗"))
    assert_refused(client, seeded, r, 422, "invalid_field")
    r = post_order(client, order_payload(rep_id="rep-nobody"))
    assert_refused(client, seeded, r, 422, "unknown_rep")
    assert counts(seeded.db_url) == baseline


def test_openapi_is_published(client):
    spec = client.get("/openapi.json").json()
    assert "/webhooks/intent-orders" in spec["paths"]
    assert "/sign/{token}" in spec["paths"]
