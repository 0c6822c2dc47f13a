"""Re-rating through the API (`PATCH /customers/{id}`): sales-ops or an admin changes a
file's tier, region or owner; every change logged old → new as the CLI's are (the settlement's
dated profiles read the log); everyone else 403; bad input 4xx with nothing written."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from api.auth import issue_token
from models import Customer, OperationLog
from models.customer_files import create_customer, merge_customers
from models.db import session_scope
from tests.rebate_support import customer_id

KANGDA = "江苏康达医疗设备有限公司"  # seeded: tier A, 华东, rep-zhangwei


@pytest.fixture
def client(seeded):
    with TestClient(create_app(seeded, launcher=None)) as c:
        yield c


def auth(settings, staff_id: str) -> dict:
    return {"Authorization": f"Bearer {issue_token(settings, staff_id)}"}


def profile(db_url: str, cid: int) -> tuple:
    with session_scope(db_url) as s:
        c = s.get(Customer, cid)
        return c.tier, c.region, c.owner_rep_id


def logs(db_url: str, cid: int) -> list[tuple[str, dict]]:
    with session_scope(db_url) as s:
        rows = s.exec(select(OperationLog).where(
            OperationLog.entity == "customer", OperationLog.entity_id == str(cid),
            OperationLog.action == "update").order_by(OperationLog.id)).all()
        return [(r.actor, {k: v for k, v in json.loads(r.changes).items() if k != "updated_at"})
                for r in rows]


def test_sales_ops_re_rates_a_customer_and_the_change_is_logged(client, seeded):
    cid = customer_id(seeded.db_url, KANGDA)
    r = client.patch(f"/customers/{cid}", json={"tier": " b ", "region": "华南",
                                                "owner": "rep-lina"},
                     headers=auth(seeded, "ops-01"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(c["field"], c["label"], c["old"], c["new"]) for c in body["changes"]] == [
        ("tier", "客户等级", "A", "B"), ("region", "大区", "华东", "华南"),
        ("owner_rep_id", "负责销售", "rep-zhangwei", "rep-lina")]
    assert (body["customer"]["tier"], body["customer"]["region"],
            body["customer"]["owner_rep_id"]) == ("B", "华南", "rep-lina")
    assert profile(seeded.db_url, cid) == ("B", "华南", "rep-lina")
    assert ("staff:ops-01", {"tier": ["A", "B"], "region": ["华东", "华南"],
                             "owner_rep_id": ["rep-zhangwei", "rep-lina"]}) in logs(
        seeded.db_url, cid)
    # the same values again: nothing changes, nothing logged, still 200
    before = logs(seeded.db_url, cid)
    again = client.patch(f"/customers/{cid}", json={"tier": "B"}, headers=auth(seeded, "admin"))
    assert again.status_code == 200 and again.json()["changes"] == []
    assert logs(seeded.db_url, cid) == before


@pytest.mark.parametrize("who", ["rep-zhangwei", "mgr-east", "finance-01", "legal-01"])
def test_only_sales_ops_and_admins_re_rate(client, seeded, who):
    cid = customer_id(seeded.db_url, KANGDA)
    r = client.patch(f"/customers/{cid}", json={"tier": "C"}, headers=auth(seeded, who))
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "forbidden" and "销售运营或管理员" in error["message"]
    assert profile(seeded.db_url, cid) == ("A", "华东", "rep-zhangwei")


def test_without_a_token_the_answer_is_401(client, seeded):
    cid = customer_id(seeded.db_url, KANGDA)
    assert client.patch(f"/customers/{cid}", json={"tier": "C"}).status_code == 401
    assert profile(seeded.db_url, cid) == ("A", "华东", "rep-zhangwei")


@pytest.mark.parametrize("body, status, code, field, words", [
    ({"tier": "S"}, 422, "invalid_field", "tier", "客户等级“S”无效"),
    ({"tier": "B", "owner": "nobody"}, 422, "invalid_field", "owner", "不是系统中的人员编号"),
    ({"tier": "B", "owner": "finance-01"}, 422, "invalid_field", "owner",
     "负责销售须为销售代表或区域经理"),
    ({"region": "   "}, 422, "invalid_field", "region", "大区不能为空"),
    ({}, 422, "nothing_to_set", None, "请至少填写 tier、region、owner 中的一项"),
    ({"grade": "B"}, 422, None, None, "未知字段"),
])
def test_bad_input_is_refused_by_field_and_nothing_is_written(client, seeded, body, status,
                                                             code, field, words):
    cid = customer_id(seeded.db_url, KANGDA)
    before = logs(seeded.db_url, cid)
    r = client.patch(f"/customers/{cid}", json=body, headers=auth(seeded, "ops-01"))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert words in json.dumps(error, ensure_ascii=False)
    if code:
        assert error["code"] == code
    if field:
        assert error["details"] == [{"field": field, "problem": code}]
    # one transaction: a good tier beside a bad owner is not written either
    assert profile(seeded.db_url, cid) == ("A", "华东", "rep-zhangwei")
    assert logs(seeded.db_url, cid) == before


def test_unknown_and_merged_files(client, seeded):
    r = client.patch("/customers/999999", json={"tier": "B"}, headers=auth(seeded, "ops-01"))
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_customer")
    survivor = customer_id(seeded.db_url, KANGDA)
    with session_scope(seeded.db_url) as s:
        twin = create_customer(s, legal_name="苏州康达医疗器械有限公司", actor="test",
                               origin="standard").id
        merge_customers(s, survivor, twin, "test")
    r = client.patch(f"/customers/{twin}", json={"tier": "B"}, headers=auth(seeded, "ops-01"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "merged_customer"
    assert f"请修改客户 {survivor}" in r.json()["error"]["message"]
