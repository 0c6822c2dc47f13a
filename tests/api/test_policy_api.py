"""Publishing through the API as a clerk's tool sends it (round 13): a JSON policy posted as
application/json is published like the same text sent as text/plain; an empty, non-UTF-8 or
oversized body is a Chinese 422 naming the body."""
from __future__ import annotations

import json


from api.auth import issue_token

DOC = {"code": "T-JSON", "name": "JSON 返利政策", "effective_from": "2026-10-01",
       "rules": [{"id": "flat", "applies_to": {"product_lines": ["监护"]}, "measure": "amount",
                  "period": "month", "style": "retroactive", "priority": 1,
                  "stacking": "stack", "tiers": [{"from": 0, "rate": "2%"}]}]}


def auth(hub, content_type: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {issue_token(hub.settings, 'ops-01')}"}
    return {**headers, "Content-Type": content_type} if content_type else headers


def test_a_json_policy_posted_as_application_json_is_published(hub, client):
    r = client.post("/rebates/policies", json=DOC, headers=auth(hub))
    assert r.status_code == 201, r.text
    assert (r.json()["code"], r.json()["version"]) == ("T-JSON", 1)
    # the same document as text/plain is the same document: nothing new to publish
    r = client.post("/rebates/policies", content=json.dumps(DOC, ensure_ascii=False).encode(),
                    headers=auth(hub, "text/plain; charset=utf-8"))
    assert r.status_code == 409 and "内容相同" in r.json()["error"]["message"]
    # and its problems are the document's, field by field
    bad = {**DOC, "code": "T-JSON2", "rules": [{**DOC["rules"][0], "tiers": [
        {"from": 0, "rate": 0.5}]}]}
    r = client.post("/rebates/policies", json=bad, headers=auth(hub))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_policy"
    assert [d["field"] for d in r.json()["error"]["details"]] == ["rules[0].tiers[0].rate"]


def test_bodies_that_are_no_document_are_refused_in_chinese(hub, client):
    r = client.post("/rebates/policies", content=b"", headers=auth(hub, "text/plain"))
    assert r.status_code == 422 and "请求正文为空" in r.json()["error"]["message"]
    r = client.post("/rebates/policies", content="政策".encode("gbk"),
                    headers=auth(hub, "text/plain"))
    assert r.status_code == 422 and "UTF-8" in r.json()["error"]["message"]
    r = client.post("/rebates/policies", content=b"#" * 200_001, headers=auth(hub, "text/plain"))
    assert r.status_code == 422 and r.json()["error"]["details"][0]["problem"] == "string_too_long"
    assert client.post("/rebates/policies", json=DOC).status_code == 401
