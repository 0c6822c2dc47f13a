"""Audit round 4 (H1): what the webhook doors answer to odd but signed deliveries."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.api.test_esign_callback import SECRET, events
from tests.api.test_esign_callback import client as esign_client  # noqa: F401 - fixture
from tests.simulators.esign_sim import TsignSimulator
from tests.support import order_payload, signed_headers

from api.app import create_app


@pytest.fixture
def client(seeded):
    with TestClient(create_app(seeded, launcher=None), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("flow_id", [["flow-123"], {"id": "flow-123"}])
def test_a_signed_callback_whose_flow_id_is_not_text_is_refused_not_a_500(esign_client,
                                                                        flow_id):
    c, settings = esign_client
    body = json.dumps({"action": "SIGN_FLOW_COMPLETE", "signFlowId": flow_id,
                       "signFlowStatus": 2}).encode()
    headers = TsignSimulator("app-1", SECRET).callback_headers(
        "http://testserver/webhooks/esign/esign", body)
    r = TestClient(c.app, raise_server_exceptions=False).post(
        "/webhooks/esign/esign", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_body"
    assert "signFlowId" in r.json()["error"]["message"]
    assert events(settings) == []


def test_a_lone_surrogate_in_a_field_is_explained_in_chinese(client):
    """JSON may escape half of a UTF-16 pair ("\\ud800"): no character at all. The sender
    reads which field and why in Chinese, not pydantic's English."""
    payload = order_payload(note="X")
    body = json.dumps(payload).encode().replace(b'"X"', b'"\\ud800"')
    r = client.post("/webhooks/intent-orders", content=body, headers=signed_headers(body))
    assert r.status_code == 422
    [detail] = r.json()["error"]["details"]
    assert detail["field"] == "note"
    assert "无法识别的字符" in detail["message"] and "Input should" not in detail["message"]


@pytest.mark.parametrize("address", ["顾晓峰@qq.com", "guxf@例子.中国", "gu,xf@example.com",
                                     "gu<xf@example.com"])
def test_a_contact_email_no_mail_server_can_deliver_to_is_refused_at_intake(client, seeded,
                                                                          address):
    """Accepted, such an address blocked the order later with an English reason
    ("non-ASCII mailbox not supported") in a manager's to-do; the sender's form is where
    it can still be corrected."""
    payload = order_payload()
    payload["customer"]["contact_email"] = address
    body = json.dumps(payload, ensure_ascii=False).encode()
    r = client.post("/webhooks/intent-orders", content=body, headers=signed_headers(body))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_field"
    [detail] = r.json()["error"]["details"]
    assert detail["field"] == "customer.contact_email" and "邮箱" in detail["message"]


def test_an_ordinary_contact_email_is_accepted(client):
    payload = order_payload()
    payload["customer"]["contact_email"] = "o'brien.gu+quotes@mail.example.com.cn"
    body = json.dumps(payload).encode()
    r = client.post("/webhooks/intent-orders", content=body, headers=signed_headers(body))
    assert r.status_code == 202, r.text


def test_a_signature_in_upper_case_hex_is_the_same_signature(client):
    """Java senders often print hex in capitals (DatatypeConverter.printHexBinary): the same
    HMAC, not a forgery."""
    body = json.dumps(order_payload()).encode()
    headers = signed_headers(body)
    prefix, hexdigest = headers["X-Salesops-Signature"].split("=", 1)
    headers["X-Salesops-Signature"] = f"{prefix}={hexdigest.upper()}"
    r = client.post("/webhooks/intent-orders", content=body, headers=headers)
    assert r.status_code == 202, r.text
    other = "1" if hexdigest[-1] != "1" else "2"
    headers["X-Salesops-Signature"] = f"{prefix}={hexdigest[:-1].upper()}{other}"
    forged = client.post("/webhooks/intent-orders", content=body, headers=headers)
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "bad_signature"


def test_no_esign_secret_configured_means_no_callback_is_believed(esign_client):
    """With SALESOPS_ESIGN_APP_SECRET unset, anybody can compute HMAC-SHA256 under the empty
    key: such a "signed" completion must not be stored."""
    c, settings = esign_client
    app = create_app(settings.model_copy(update={"esign_app_secret": SecretStr("")}),
                     launcher=None)
    body = json.dumps({"action": "SIGN_FLOW_COMPLETE", "signFlowId": "flow-123",
                       "signFlowStatus": 2}).encode()
    headers = TsignSimulator("app-1", "").callback_headers(
        "http://testserver/webhooks/esign/esign", body)
    with TestClient(app) as unconfigured:
        r = unconfigured.post("/webhooks/esign/esign", content=body, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_configured"
    assert events(settings) == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_body_in_utf16_or_utf32_is_refused_as_not_utf8(client, seeded, encoding):
    """Python's JSON parser reads UTF-16/32 bytes too; the inbox keeps UTF-8 text, so such a
    body failed later with a 500 (and the sender retried it for ever)."""
    body = json.dumps(order_payload(), ensure_ascii=False).encode(encoding)
    r = client.post("/webhooks/intent-orders", content=body, headers=signed_headers(body))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "malformed_json" and "UTF-8" in r.json()["error"]["message"]


def test_a_utf8_body_with_a_byte_order_mark_is_still_accepted(client):
    body = b"\xef\xbb\xbf" + json.dumps(order_payload(), ensure_ascii=False).encode()
    r = client.post("/webhooks/intent-orders", content=body, headers=signed_headers(body))
    assert r.status_code == 202, r.text
