"""To-dos done by people: legal's qualification review of a new customer (通过 / 不通过 with
its reason; a customer not passed gets no further quote until legal passes it), the other
to-dos marked done, who may, once; the JSON doors and the phone page 我的待办."""
from __future__ import annotations

import json

import pytest
from sqlmodel import select

from api.auth import COOKIE, issue_token
from models import Customer, IntentOrder, OperationLog, Todo
from models.db import session_scope
from tests.support import order_payload, post_order, run_pending

pytestmark = pytest.mark.usefixtures("prefect_harness")

NEW = "安徽济民医疗器械有限责任公司"
HTML = {"Accept": "text/html"}


def bearer(hub, staff_id: str) -> dict:
    return {"Authorization": f"Bearer {issue_token(hub.settings, staff_id)}"}


def new_customer_order(hub, client, name=NEW, sku="PUMP-VP5", quantity=1,
                       rep="rep-zhangwei") -> str:
    r = post_order(client, order_payload(name=name, lines=[(sku, quantity)], rep_id=rep))
    assert r.status_code == 202, r.text
    run_pending(hub)
    return r.json()["order_id"]


def review_of(hub) -> Todo:
    with session_scope(hub.db_url) as s:
        return s.exec(select(Todo).where(Todo.kind == "legal_review")).one()


def pushes(hub) -> list[dict]:
    folder = hub.settings.data_dir / "pushes"
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def todo_mails(hub) -> list[str]:
    import email

    found = []
    for path in sorted((hub.settings.data_dir / "outbox").rglob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["Subject"].startswith("【待办】"):
            found.append(msg.get_body(("plain",)).get_content())
    return found


def test_legal_passes_a_new_customer_and_the_rep_is_told(hub, client):
    oid = new_customer_order(hub, client)
    review = review_of(hub)
    # the to-do's mail says where to do it
    link = f"{hub.settings.public_base_url.rstrip('/')}/todos"
    assert [f"办理（我的待办）：{link}" in body for body in todo_mails(hub)] == [True]
    listed = client.get("/todos", headers=bearer(hub, "legal-01")).json()
    assert [t["id"] for t in listed["open"]] == [review.id]
    assert listed["open"][0]["may_do"] and listed["open"][0]["outcomes"] == ["approved",
                                                                             "rejected"]
    # no outcome, or "done", is no answer to a review
    for body in ({}, {"outcome": "done"}):
        r = client.post(f"/todos/{review.id}/complete", json=body,
                        headers=bearer(hub, "legal-01"))
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_outcome"
    r = client.post(f"/todos/{review.id}/complete", json={"outcome": "approved",
                                                          "note": "营业执照与经营许可证齐全"},
                    headers=bearer(hub, "legal-01"))
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["outcome"], r.json()["done_by"]) == (
        "done", "approved", "legal-01")
    with session_scope(hub.db_url) as s:
        customer = s.get(Customer, s.get(IntentOrder, oid).customer_id)
        assert customer.qualification == "approved"
        logged = s.exec(select(OperationLog).where(OperationLog.entity == "todo",
                                                   OperationLog.action == "update")).all()
        assert [log.actor for log in logged] == ["staff:legal-01"]
    told = [p for p in pushes(hub) if p["title"].startswith("【资质初审通过】")]
    assert len(told) == 1 and told[0]["recipients"][0] == "rep-zhangwei"
    assert "营业执照与经营许可证齐全" in told[0]["text"]
    # done once: a second answer is refused and changes nothing
    r = client.post(f"/todos/{review.id}/complete", json={"outcome": "rejected", "note": "x"},
                    headers=bearer(hub, "legal-01"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_done"
    assert "由 " in r.json()["error"]["message"]
    assert review_of(hub).outcome == "approved"


def test_a_customer_not_passed_gets_no_further_quote_until_legal_passes_it(hub, client):
    new_customer_order(hub, client)
    review = review_of(hub)
    r = client.post(f"/todos/{review.id}/complete", json={"outcome": "rejected"},
                    headers=bearer(hub, "legal-01"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "note_required"
    r = client.post(f"/todos/{review.id}/complete",
                    json={"outcome": "rejected", "note": "医疗器械经营许可证已过期"},
                    headers=bearer(hub, "legal-01"))
    assert r.status_code == 200
    assert any(p["title"].startswith("【资质初审未通过】") and "医疗器械经营许可证已过期" in p["text"]
               for p in pushes(hub))
    second = new_customer_order(hub, client, name="济民医疗")
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, second)
    assert order.status == "blocked"
    assert "资质初审未通过（医疗器械经营许可证已过期）" in order.error
    # legal reviews it again once the licence is renewed: quotes go on (a refused answer
    # first opens no review)
    customer_id = review.customer_id
    r = client.post(f"/customers/{customer_id}/qualification", json={"outcome": "rejected"},
                    headers=bearer(hub, "legal-01"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "note_required"
    with session_scope(hub.db_url) as s:
        assert s.exec(select(Todo).where(Todo.kind == "legal_review",
                                         Todo.status == "open")).all() == []
    r = client.post(f"/customers/{customer_id}/qualification",
                    json={"outcome": "approved", "note": "许可证已换发"},
                    headers=bearer(hub, "legal-01"))
    assert r.status_code == 200 and r.json()["title"].startswith("客户资质复审（第 2 次）")
    third = new_customer_order(hub, client, name="济民医疗")
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, third).status == "quoted"
        assert s.get(Customer, customer_id).qualification == "approved"


def test_only_the_assignee_legal_or_an_admin_may_do_a_to_do(hub, client):
    new_customer_order(hub, client, name="广州华南医药贸易有限公司", sku="MON-M12", quantity=12,
                       rep="rep-lina")
    with session_scope(hub.db_url) as s:
        alert = s.exec(select(Todo).where(Todo.kind == "purchase_alert")).one()
    # the rep's manager is in copy: he sees it, may not do it
    copied = client.get("/todos", headers=bearer(hub, "mgr-south")).json()["copied"]
    assert [(t["id"], t["may_do"]) for t in copied] == [(alert.id, False)]
    for who in ("rep-lina", "mgr-south", "legal-01"):
        r = client.post(f"/todos/{alert.id}/complete", json={}, headers=bearer(hub, who))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = client.post(f"/todos/{alert.id}/complete", json={"outcome": "approved"},
                    headers=bearer(hub, alert.assignee_id))
    assert r.status_code == 422
    r = client.post(f"/todos/{alert.id}/complete", json={"note": "已下采购单 PO-2026-118"},
                    headers=bearer(hub, alert.assignee_id))
    assert r.status_code == 200 and r.json()["outcome"] == "done"
    assert client.post("/todos/999999/complete", json={},
                       headers=bearer(hub, "admin")).status_code == 404
    assert client.post("/todos/1/complete", json={"x": 1},
                       headers=bearer(hub, "admin")).status_code == 422
    assert client.post("/todos/1/complete", json={}).status_code == 401
    r = client.post(f"/customers/{alert.customer_id or 1}/qualification",
                    json={"outcome": "approved"}, headers=bearer(hub, "rep-zhangwei"))
    assert r.status_code == 403


def test_legal_does_the_review_on_the_phone_page(hub, client):
    new_customer_order(hub, client)
    review = review_of(hub)
    client.cookies.set(COOKIE, issue_token(hub.settings, "legal-01"))
    page = client.get("/todos", headers=HTML)
    assert page.status_code == 200 and "我的待办" in page.text
    assert f'id="todo-{review.id}"' in page.text and "提交初审结果" in page.text
    # not passed without a reason: the page says so and keeps nothing half-done
    r = client.post(f"/todos/{review.id}/done", data={"outcome": "rejected", "note": ""},
                    headers=HTML)
    assert r.status_code == 422 and "初审不通过时请填写原因" in r.text
    assert review_of(hub).status == "open"
    r = client.post(f"/todos/{review.id}/done", data={"outcome": "approved", "note": "齐全"},
                    headers=HTML)
    assert r.status_code == 200 and f"已办结：{review.title}（通过）" in r.text
    assert '<ul class="items" id="open"><li class="muted">（无）</li></ul>' in r.text
    # another site's form riding the cookie is refused
    r = client.post(f"/todos/{review.id}/done", data={"outcome": "approved"},
                    headers={**HTML, "Origin": "https://evil.example"})
    assert r.status_code == 403


def test_a_re_review_with_the_legal_assignee_nobody_on_file_says_what_to_fix(hub, client):
    """Legal reviews a customer again while SALESOPS_LEGAL_ASSIGNEE names nobody on file (the
    clerk who set it left): the answer names the setting to correct (503: the hub's setup,
    not the request) — not a 500 — and no review is left half-opened."""
    new_customer_order(hub, client)
    review = review_of(hub)
    assert client.post(f"/todos/{review.id}/complete", json={"outcome": "approved"},
                       headers=bearer(hub, "legal-01")).status_code == 200
    hub.settings.legal_assignee = "legal-99"
    r = client.post(f"/customers/{review.customer_id}/qualification",
                    json={"outcome": "approved"}, headers=bearer(hub, "legal-01"))
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "assignee_not_on_file"
    assert "SALESOPS_LEGAL_ASSIGNEE=legal-99" in error["message"]
    with session_scope(hub.db_url) as s:
        assert len(s.exec(select(Todo).where(Todo.kind == "legal_review")).all()) == 1
