"""Webhook deliveries whose headers or body are odd in ways a sender's bug produces: each is
refused with a specific 4xx and its machine-readable body, and nothing is written."""
from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.test_webhook_intake import assert_refused, baseline, counts  # noqa: F401
from tests.support import SENDER, order_payload, signed_headers


@pytest.fixture
def client(seeded):
    with TestClient(create_app(seeded, launcher=None), raise_server_exceptions=False) as c:
        yield c


def body_of(payload) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def test_signature_with_non_ascii_characters_is_bad_signature(client, seeded, baseline):
    body = body_of(order_payload())
    headers = signed_headers(body)
    headers["X-Salesops-Signature"] = ("sha256=" + "é" * 64).encode("latin-1")
    r = client.post("/webhooks/intent-orders", content=body, headers=headers)
    assert_refused(client, seeded, r, 401, "bad_signature")
    assert counts(seeded.db_url) == baseline


def test_esign_callback_with_non_ascii_signature_is_bad_signature(seeded):
    from pydantic import SecretStr

    from tests.simulators.esign_sim import TsignSimulator

    settings = seeded.model_copy(update={"esign_app_secret": SecretStr("tsign-secret")})
    body = json.dumps({"action": "SIGN_FLOW_COMPLETE", "signFlowId": "flow-123",
                       "signFlowStatus": "2", "timestamp": int(time.time() * 1000)}).encode()
    headers = TsignSimulator("app-1", "tsign-secret").callback_headers(
        "http://testserver/webhooks/esign/esign", body)
    headers = {k: v for k, v in headers.items() if k.lower() != "x-tsign-open-signature"}
    headers["X-Tsign-Open-SIGNATURE"] = ("é" * 64).encode("latin-1")
    with TestClient(create_app(settings, launcher=None), raise_server_exceptions=False) as c:
        r = c.post("/webhooks/esign/esign", content=body, headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "bad_signature"


def test_timestamp_of_thousands_of_digits_is_bad_timestamp(client, seeded, baseline):
    body = body_of(order_payload())
    headers = signed_headers(body)
    headers["X-Salesops-Timestamp"] = "9" * 5000
    r = client.post("/webhooks/intent-orders", content=body, headers=headers)
    assert_refused(client, seeded, r, 401, "bad_timestamp")
    assert counts(seeded.db_url) == baseline


@pytest.mark.parametrize("raw", [b"\xb2", b"9" * 5000])
def test_timestamp_uvicorn_decodes_from_latin1_is_checked_before_use(seeded, raw):
    """uvicorn hands headers over as latin-1 text, where "²" passes str.isdigit."""
    from starlette.requests import Request

    from api.errors import ApiError
    from api.webhooks import verify_signature

    request = Request({"type": "http", "method": "POST", "path": "/", "headers": [
        (b"x-salesops-sender", SENDER.encode()), (b"x-salesops-timestamp", raw),
        (b"x-salesops-signature", b"sha256=00")]})
    with pytest.raises(ApiError) as refused:
        verify_signature(request, b"{}", seeded)
    assert refused.value.code == "bad_timestamp"


@pytest.mark.parametrize("stamp", ["²", "9" * 5000])
def test_esign_callback_timestamp_is_checked_before_use(stamp):
    from connectors.esign import CallbackSignatureError
    from connectors.esign_tsign import verify_tsign_callback

    with pytest.raises(CallbackSignatureError) as refused:
        verify_tsign_callback({"X-Tsign-Open-Signature": "00", "X-Tsign-Open-Timestamp": stamp},
                              "", b"{}", "tsign-secret")
    assert refused.value.reason_code == "bad_timestamp"


@pytest.mark.parametrize("body, message", [
    (b'{"event_id": "x", "customer": ', "请求体不是合法 JSON：第 1 行第 31 列有误"),
    (b'{"event_id": "\xff"}', "请求体不是合法 JSON：须为 UTF-8 编码"),
])
def test_malformed_json_is_explained_in_chinese(client, seeded, baseline, body, message):
    r = client.post("/webhooks/intent-orders", content=body, headers=signed_headers(body))
    assert_refused(client, seeded, r, 400, "malformed_json")
    assert r.json()["error"]["message"] == message
    assert counts(seeded.db_url) == baseline
