"""Audit 5 (intent-order pipeline): webhook bodies a sender can sign but nobody can read."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from models.db import get_engine
from tests.support import signed_headers


@pytest.fixture
def client(seeded):
    with TestClient(create_app(seeded, launcher=None), raise_server_exceptions=False) as c:
        yield c


def stored(db_url) -> int:
    with get_engine(db_url).connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM inbox_event")).scalar()


@pytest.mark.parametrize("body", [
    b"[" * 50_000 + b"]" * 50_000,
    b'{"event_id": "e1", "note": ' + b'{"a": ' * 30_000 + b"1" + b"}" * 30_001,
], ids=["arrays", "objects"])
def test_json_nested_too_deep_is_a_400_naming_the_problem_not_a_500(client, seeded, body):
    r = client.post("/webhooks/intent-orders", content=body, headers=signed_headers(body))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "malformed_json" and "嵌套" in error["message"]
    assert stored(seeded.db_url) == 0
