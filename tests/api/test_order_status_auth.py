"""GET /orders/{id} (the progress JSON: customer, quote amount, to-dos) answers only staff who
may open the order and the system that sent it, signed as its webhook is; nobody else."""
from __future__ import annotations

import datetime as dt
import json
import re
import time

from api.auth import issue_token
from api.webhooks import request_line, signature_headers
from models import IntentOrder, OrderRebate
from models.db import session_scope
from tests.support import SECRET, SENDER, order_payload, order_status, post_order

NAME = "江苏康达医疗设备有限公司"


def sent(client, payload: dict | None = None) -> str:
    r = post_order(client, payload or order_payload(name=NAME))  # 张伟's, sent by the portal
    assert r.status_code == 202, r.text
    return r.json()["order_id"]


def bearer(hub, staff_id: str) -> dict:
    return {"Authorization": f"Bearer {issue_token(hub.settings, staff_id)}"}


def refused(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and re.search(r"[\u4e00-\u9fff]", error["message"])
    assert NAME not in r.text and "MON-M8" not in r.text


def test_without_a_token_or_a_signature_the_progress_is_refused(hub, client):
    order_id = sent(client)
    r = client.get(f"/orders/{order_id}")
    refused(r, 401, "unauthenticated")
    assert "Authorization" in r.json()["error"]["message"]
    assert "GET /orders/<意向单号>" in r.json()["error"]["message"]
    # an unknown order is no different: nobody learns which ids exist
    refused(client.get("/orders/IO-NOPE"), 401, "unauthenticated")


def test_the_sending_system_reads_its_order_with_a_signed_request(hub, client):
    order_id = sent(client)
    r = order_status(client, order_id)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["order_id"] == order_id and view["status"] == "received"
    assert set(view) == {"order_id", "status", "error", "customer", "stock_short", "stage",
                         "stage_label", "quote", "todos", "rebate", "last_flow_run_id"}
    # Java's printHexBinary writes the signature in capitals: the same signature
    headers = signature_headers(SENDER, SECRET, request_line("GET", f"/orders/{order_id}"))
    headers["X-Salesops-Signature"] = headers["X-Salesops-Signature"].upper().replace(
        "SHA256=", "sha256=")
    assert client.get(f"/orders/{order_id}", headers=headers).status_code == 200


def test_a_signature_opens_only_that_order_now(hub, client):
    payload = order_payload(name=NAME)
    order_id, other = sent(client, payload), sent(client)
    # the wrong secret
    refused(order_status(client, order_id, secret="not-the-secret"), 401, "bad_signature")
    # a signature made for another order (or another address) replayed on this one
    refused(order_status(client, order_id, signed_path=f"/orders/{other}"), 401,
            "bad_signature")
    refused(order_status(client, order_id, signed_path=f"/orders/{order_id}/quote.pdf"), 401,
            "bad_signature")
    # the same request signed for another method
    post_signed = signature_headers(SENDER, SECRET, request_line("POST", f"/orders/{order_id}"))
    refused(client.get(f"/orders/{order_id}", headers=post_signed), 401, "bad_signature")
    # the webhook's own signature of the order's body: not a signature of this request
    body_signed = signature_headers(SENDER, SECRET,
                                    json.dumps(payload, ensure_ascii=False).encode())
    refused(client.get(f"/orders/{order_id}", headers=body_signed), 401, "bad_signature")
    # older than the webhook's window (5 minutes), or from the future
    window = hub.settings.replay_window_seconds
    refused(order_status(client, order_id, stamp=int(time.time()) - window - 60), 401,
            "stale_timestamp")
    refused(order_status(client, order_id, stamp=int(time.time()) + window + 60), 401,
            "stale_timestamp")
    # a sender nobody registered, or half the headers
    refused(order_status(client, order_id, sender="stranger"), 401, "unknown_sender")
    half = signature_headers(SENDER, SECRET, request_line("GET", f"/orders/{order_id}"))
    del half["X-Salesops-Signature"]
    refused(client.get(f"/orders/{order_id}", headers=half), 401, "missing_signature_headers")
    # inside the window the same signature still reads the order it was made for
    assert order_status(client, order_id, stamp=int(time.time()) - window + 30
                        ).status_code == 200


def test_a_sender_does_not_read_another_senders_order(hub, client):
    order_id = sent(client)
    with session_scope(hub.db_url) as s:
        s.get(IntentOrder, order_id).sender_id = "erp"
    refused(order_status(client, order_id), 403, "forbidden")


def test_the_sender_still_gets_no_rebate(hub, client):
    order_id = sent(client)
    with session_scope(hub.db_url) as s:
        s.add(OrderRebate(order_id=order_id, rate="0.102", amount="3916.80",
                          sentence="本次订单返利比例：10.2%（预计返利 ¥3,916.80）", detail="{}",
                          computed_at=dt.datetime(2026, 10, 10, tzinfo=dt.timezone.utc)))
    r = order_status(client, order_id)
    assert r.status_code == 200 and r.json()["rebate"] is None
    assert "3916.80" not in r.text
    mine = client.get(f"/orders/{order_id}", headers=bearer(hub, "rep-zhangwei"))
    assert mine.status_code == 200 and mine.json()["rebate"]["amount"] == "3916.80"


def test_staff_read_the_orders_they_may_open(hub, client):
    order_id = sent(client)
    for who in ("rep-zhangwei", "mgr-east", "legal-01", "ops-01"):  # his rep, his manager,
        r = client.get(f"/orders/{order_id}", headers=bearer(hub, who))  # roles on every order
        assert r.status_code == 200 and r.json()["order_id"] == order_id, who
    for who in ("rep-lina", "mgr-south"):  # another region's rep and manager
        r = client.get(f"/orders/{order_id}", headers=bearer(hub, who))
        refused(r, 403, "forbidden")
        assert "此意向单属于其他销售代表" in r.json()["error"]["message"]
    # a token that is not one is refused
    forged = {"Authorization": "Bearer forged.1.x"}
    refused(client.get(f"/orders/{order_id}", headers=forged), 401, "invalid_token")
    # an unknown order, for staff: 404
    r = client.get("/orders/IO-NOPE", headers=bearer(hub, "rep-zhangwei"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_order"
