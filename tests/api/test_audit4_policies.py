"""Audit round 4 (policies, the clerk): the publishing door."""
from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from api.errors import ApiError
from api.rebates import MAX_DOCUMENT, _document


def _request(chunks: list[bytes]) -> Request:
    """A request whose body arrives in `chunks`, as a server hands it over (64 KiB pieces
    cut wherever they fall, also inside a character)."""
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]

    async def receive():
        return messages.pop(0)

    return Request({"type": "http", "method": "POST", "path": "/rebates/policies",
                    "headers": []}, receive)


def test_an_oversized_chinese_document_is_called_too_long_not_badly_encoded():
    data = ("政策" * MAX_DOCUMENT).encode("utf-8")  # 1.2 MB, valid UTF-8
    chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    with pytest.raises(ApiError) as info:
        asyncio.run(_document(_request(chunks)))
    assert "过长" in info.value.message


def test_a_document_with_a_broken_escape_is_a_422_not_a_500(hub):
    """`\\ud800` (half of a UTF-16 pair, as a buggy exporter writes it) parsed into a string
    that cannot be stored or answered: the publication failed with a 500."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.auth import issue_token

    doc = ('{"code": "T-SURROGATE", "name": "坏\\ud800", "effective_from": "2027-01-01", '
           '"rules": [{"id": "r", "measure": "amount", "period": "month", '
           '"style": "retroactive", "tiers": [{"from": 0, "rate": "1%"}], "priority": 1, '
           '"stacking": "stack", "\\udc80": 1}]}')
    headers = {"Authorization": f"Bearer {issue_token(hub.settings, 'ops-01')}",
               "Content-Type": "application/json"}
    with TestClient(create_app(hub.settings, launcher=None),
                    raise_server_exceptions=False) as client:
        r = client.post("/rebates/policies", content=doc.encode(), headers=headers)
        assert r.status_code == 422, r.text
        assert "\\ud800" in r.json()["error"]["details"][0]["message"]
        yaml_doc = doc.replace("T-SURROGATE", "T-SURROGATE-Y").encode()
        r = client.post("/rebates/policies", content=b"# YAML\n" + yaml_doc,
                        headers={**headers, "Content-Type": "text/plain"})
        assert r.status_code == 422, r.text
