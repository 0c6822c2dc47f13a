"""The suggest-only customer field, customer files, and bad customer names at every door:
a clear, specific error and nothing written."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from api.auth import issue_token
from models import Customer, IntentOrder
from models.customer_files import create_customer, merge_customers
from models.db import get_engine, session_scope
from tests.support import order_payload, post_order

TABLES = ["inbox_event", "intent_order", "customer", "customer_alias", "suspect_name",
          "operation_log"]
BAD_NAMES = [
    ("   ", "empty_name"),
    ("江" * 500, "name_too_long"),
    ("江苏康达\x07医疗", "control_characters"),
    ("'; DROP TABLE customer; --", "invalid_characters"),
    ("康达医疗<script>", "invalid_characters"),
    ("（）", "no_name_text"),
    (" · - ", "no_name_text"),
]


@pytest.fixture
def client(seeded):
    with TestClient(create_app(seeded, launcher=None)) as c:
        yield c


def auth(settings, staff_id="rep-zhangwei"):
    return {"Authorization": f"Bearer {issue_token(settings, staff_id)}"}


def counts(db_url):
    with get_engine(db_url).connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}


def test_suggest_finds_the_customer_by_a_short_name(client, seeded):
    r = client.get("/customers/suggest", params={"q": "康达"}, headers=auth(seeded))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == "康达" and body["decision"] in ("auto", "suggest")
    best = body["candidates"][0]
    assert best["legal_name"] == "江苏康达医疗设备有限公司"
    assert best["matched_alias"] and best["reasons"] and 0 < best["score"] <= 100
    exact = client.get("/customers/suggest", params={"q": "江苏康达医疗设备有限公司"},
                       headers=auth(seeded)).json()
    assert exact["decision"] == "auto"
    assert client.get("/customers/suggest", params={"q": "康达"}).status_code == 401


def test_suggest_shows_a_branch_with_its_parent(client, seeded):
    with session_scope(seeded.db_url) as s:
        parent = s.exec(select(Customer).where(
            Customer.legal_name == "江苏康达医疗设备有限公司")).one()
        branch = create_customer(s, legal_name="江苏康达医疗设备有限公司苏州分公司", actor="test",
                                 origin="manual", parent_id=parent.id)
        branch_id = branch.id
    r = client.get("/customers/suggest", params={"q": "康达医疗苏州分公司"},
                   headers=auth(seeded)).json()
    assert r["candidates"][0]["customer_id"] == branch_id
    assert r["candidates"][0]["parent"]["legal_name"] == "江苏康达医疗设备有限公司"
    assert r["decision"] != "auto" or r["candidates"][0]["customer_id"] == branch_id
    view = client.get(f"/customers/{branch_id}", headers=auth(seeded)).json()
    assert view["parent"]["legal_name"] == "江苏康达医疗设备有限公司"


@pytest.mark.parametrize("name, problem", BAD_NAMES)
def test_bad_suggest_queries_are_refused(client, seeded, name, problem):
    r = client.get("/customers/suggest", params={"q": name}, headers=auth(seeded))
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_query" and error["details"][0]["problem"] == problem
    assert error["message"]


@pytest.mark.parametrize("name, problem", BAD_NAMES)
def test_bad_customer_names_in_a_webhook_write_nothing(client, seeded, name, problem):
    before = counts(seeded.db_url)
    r = post_order(client, order_payload(name=name))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["message"]
    if problem == "empty_name":  # a blank name is no name: the customer is missing
        assert error["code"] == "missing_field"
    else:
        assert error["code"] == "invalid_field"
        assert error["details"] == [{"field": "customer.name", "problem": problem}]
    assert counts(seeded.db_url) == before


def test_a_form_sends_the_customer_id(client, seeded):
    with session_scope(seeded.db_url) as s:
        kangda = s.exec(select(Customer).where(
            Customer.legal_name == "江苏康达医疗设备有限公司")).one().id
        renhe = s.exec(select(Customer).where(
            Customer.legal_name == "浙江仁和医疗器械有限公司")).one().id
    payload = order_payload()
    payload["customer"] = {"id": kangda, "contact_name": "顾晓峰"}
    r = post_order(client, payload)
    assert r.status_code == 202, r.text
    with session_scope(seeded.db_url) as s:
        order = s.get(IntentOrder, r.json()["order_id"])
        assert order.customer_id == kangda and order.customer_name == "江苏康达医疗设备有限公司"
        merge_customers(s, kangda, renhe, "test")
    payload = order_payload()
    payload["customer"] = {"id": renhe}
    r = post_order(client, payload)  # a merged file answers with its survivor
    with session_scope(seeded.db_url) as s:
        assert s.get(IntentOrder, r.json()["order_id"]).customer_id == kangda
    before = counts(seeded.db_url)
    payload = order_payload()
    payload["customer"] = {"id": 99999}
    r = post_order(client, payload)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_customer"
    assert counts(seeded.db_url) == before


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/customers/99999999999999999999", None),
    ("GET", "/customers/suspects/99999999999999999999", None),
    ("POST", "/customers/suspects/99999999999999999999/merge", {"customer_id": 1}),
    ("POST", "/customers/suspects/99999999999999999999/create", {}),
])
def test_an_id_beyond_the_database_integer_is_refused_not_a_500(client, seeded, method, path,
                                                                 body):
    r = client.request(method, path, json=body, headers=auth(seeded, "ops-01"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"


def test_a_decision_naming_a_customer_id_beyond_the_database_integer_is_refused(client, seeded):
    before = counts(seeded.db_url)
    for path in ("/customers/suspects/1/merge", "/orders/o-1/customer"):
        r = client.post(path, json={"customer_id": 99999999999999999999},
                        headers=auth(seeded, "ops-01"))
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"][0]["field"] == "body.customer_id"
    assert counts(seeded.db_url) == before


def test_a_pasted_credit_code_suggests_its_customer(client, seeded):
    """The matcher indexes names; a USCC pasted into the customer field finds its file."""
    for q in ("91320500MA1K2D3F5H", "９１３２０５００ｍａ１ｋ２ｄ３ｆ５ｈ"):
        r = client.get("/customers/suggest", params={"q": q}, headers=auth(seeded))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["decision"] == "auto"
        assert [(c["legal_name"], c["matched_kind"]) for c in body["candidates"]] == [
            ("江苏康达医疗设备有限公司", "uscc")]
    # a code failing its check is not a lookup key: nothing is claimed
    r = client.get("/customers/suggest", params={"q": "91320500MA1K2D3F5J"}, headers=auth(seeded))
    assert r.json()["decision"] == "unknown"
