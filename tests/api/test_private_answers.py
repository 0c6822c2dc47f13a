"""Answers carry one person's business data: no cache keeps them; the customer's signing
page (its address is his token) is framed by no site and named in no Referer."""
from __future__ import annotations


from api.auth import issue_token


def test_json_answers_are_not_cached(client, hub):
    auth = {"Authorization": f"Bearer {issue_token(hub.settings, 'finance-01')}"}
    for path in ("/rebates/board/data", "/todos", "/rebates/policies", "/customers/suspects"):
        r = client.get(path, headers=auth)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["cache-control"] == "no-store", path


def test_the_signing_page_is_not_cached_framed_or_named_in_a_referer(client):
    r = client.get("/sign/not-a-token")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["x-frame-options"] == "DENY"


def test_a_route_that_sets_its_own_cache_policy_keeps_it(client, hub):
    r = client.get("/rebates/board", headers={"Accept": "text/html"})
    assert r.headers["cache-control"] == "no-store"  # the staff pages' own, not doubled
    assert r.headers.get_list("cache-control") == ["no-store"]
