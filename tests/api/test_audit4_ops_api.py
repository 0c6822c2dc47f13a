"""Audit round 4, operations: the API when its database cannot be reached (PostgreSQL down or
restarting) answers a 503 the sender retries, in Chinese, not a 500."""
from __future__ import annotations

import json
import socket

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from models import db as dbmod
from tests.support import signed_headers


def test_a_webhook_while_the_database_is_down_is_a_503_to_retry(tmp_path):
    from connectors.settings import Settings

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(_env_file=None, data_dir=tmp_path / "data",
                        database_url=f"postgresql+psycopg://hub:pw@127.0.0.1:{port}/salesops",
                        webhook_senders={"portal": "test-secret-portal"})
    body = json.dumps({"event_id": "down-1", "customer": {"name": "江苏康达医疗设备有限公司"},
                       "rep_id": "rep-zhangwei", "lines": [{"sku": "MON-M8", "quantity": 1}]},
                      ensure_ascii=False).encode()
    try:
        client = TestClient(create_app(settings, launcher=None), raise_server_exceptions=False)
        r = client.post("/webhooks/intent-orders", content=body, headers=signed_headers(body))
    finally:
        dbmod.dispose_engines()
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"]
    error = r.json()["error"]
    assert error["code"] == "database_unavailable" and "稍后重试" in error["message"]
    assert "pw" not in error["message"]


def test_a_defect_answers_in_chinese_and_is_still_logged(settings):
    """A 500 (a defect) reaches a rep's phone or a sender's log: Chinese words and the error
    body every other answer has, a page for a browser; the traceback still goes to the log."""
    app = create_app(settings, launcher=None)

    @app.get("/boom-for-test")
    def boom():
        raise ZeroDivisionError("defect")

    client = TestClient(app, raise_server_exceptions=False)
    r = client.get("/boom-for-test")
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["code"] == "internal_error" and "服务器内部错误" in error["message"]
    page = client.get("/boom-for-test", headers={"Accept": "text/html"})
    assert page.status_code == 500 and "服务器内部错误" in page.text
    assert "text/html" in page.headers["content-type"]
    # the error still reaches the server (uvicorn logs it with its traceback)
    with pytest.raises(ZeroDivisionError):
        TestClient(app).get("/boom-for-test")
