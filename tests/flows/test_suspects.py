"""Suspected new customers end to end, with a controllable clock: an unknown name is collected,
escalated to the rep's sales manager on its third appearance with a 24-hour deadline, refused
at the door once the deadline passed, and released by the manager's decision (create or merge)."""
from __future__ import annotations

import datetime as dt
import email
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from api.auth import issue_token
from flows.suspects import escalate_and_enforce
from models import (
    Customer, CustomerAlias, InboxEvent, IntentOrder, OperationLog, SuspectName, Todo, set_clock,
)
from models.db import get_engine, session_scope
from tests.support import order_payload, post_order, run_pending

pytestmark = pytest.mark.usefixtures("prefect_harness")

UNKNOWN = "康达新材料"  # nothing on file, nothing in the registry


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.timezone.utc)
        set_clock(lambda: self.now)

    def advance(self, **kw) -> None:
        self.now += dt.timedelta(**kw)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None)) as c:
        yield c


def auth(hub, staff_id: str) -> dict:
    return {"Authorization": f"Bearer {issue_token(hub.settings, staff_id)}"}



def submit(hub, client, name=UNKNOWN, rep="rep-zhangwei") -> str:
    r = post_order(client, order_payload(name=name, rep_id=rep))
    assert r.status_code == 202, r.text
    run_pending(hub)
    return r.json()["order_id"]


def pushes(hub) -> list[dict]:
    folder = hub.settings.data_dir / "pushes"
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def counts(db_url) -> dict[str, int]:
    tables = ["inbox_event", "intent_order", "suspect_name", "suspect_sighting", "todo"]
    with get_engine(db_url).connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}


def test_third_sighting_escalates_to_the_sales_manager_with_a_deadline(hub, client, clock):
    first = submit(hub, client)
    second = submit(hub, client, name=" 康达新材料 ")  # the same name under its key
    with session_scope(hub.db_url) as s:
        suspect = s.exec(select(SuspectName)).one()
        assert suspect.sightings == 2 and suspect.status == "collecting"
        assert s.exec(select(Todo).where(Todo.kind == "suspect_customer")).first() is None
        held = s.get(IntentOrder, first)
        assert held.status == "on_hold" and held.customer_id is None
        assert "未能识别" in held.error
    # the rep is told each time, with what the matcher suggests
    assert any(p["key"] == f"order-held:{second}" and "rep-zhangwei" in p["recipients"]
               for p in pushes(hub))
    clock.advance(hours=1)
    submit(hub, client)
    with session_scope(hub.db_url) as s:
        suspect = s.exec(select(SuspectName)).one()
        todo = s.exec(select(Todo).where(Todo.kind == "suspect_customer")).one()
    assert suspect.sightings == 3 and suspect.status == "escalated"
    assert suspect.decider_id == "mgr-east" and todo.assignee_id == "mgr-east"
    assert suspect.deadline_at == clock.now + dt.timedelta(hours=24) == todo.due_at
    assert "3 张意向单" in todo.body and "逾期未决定" in todo.body
    push = next(p for p in pushes(hub) if p["key"] == "todo:suspect_customer:suspect:1")
    assert "mgr-east" in push["recipients"] and "13900000001" in push["mention_mobiles"]
    mails = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
             for p in (hub.settings.data_dir / "outbox").rglob("*.eml")]
    assert any("疑似新客户待确认" in m["Subject"] and "wangqiang@example.com" in m["To"]
               for m in mails)
    # a retry of the same order does not count twice
    from flows.suspects import hold_for_suspect
    hold_for_suspect(hub, first, UNKNOWN, ())
    with session_scope(hub.db_url) as s:
        assert s.exec(select(SuspectName)).one().sightings == 3


def test_after_the_deadline_every_submission_is_refused_naming_who_decides(hub, client, clock):
    waiting = [submit(hub, client) for _ in range(3)]
    clock.advance(hours=23, minutes=59)
    waiting.append(submit(hub, client))  # still in time: accepted, waits like the others
    clock.advance(minutes=2)
    before = counts(hub.db_url)
    r = post_order(client, order_payload(name="康达新材料"))
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "customer_decision_overdue"
    assert "王强" in error["message"] and "wangqiang@example.com" in error["message"]
    assert "一律拒收" in error["message"]
    assert counts(hub.db_url) == before  # nothing written
    # the hourly flow marks it overdue and blocks the orders that waited
    result = escalate_and_enforce(hub)
    assert result.overdue == [1] and sorted(result.blocked_orders) == sorted(waiting)
    with session_scope(hub.db_url) as s:
        assert s.get(SuspectName, 1).status == "overdue"
        assert {s.get(IntentOrder, o).status for o in waiting} == {"blocked"}
    assert any(p["key"] == "suspect-overdue:1" and "mgr-east" in p["recipients"]
               for p in pushes(hub))
    # another name is not affected
    assert post_order(client, order_payload(name="江苏康达医疗设备有限公司")).status_code == 202


def test_manager_merges_the_name_and_the_waiting_orders_go_on(hub, client, clock):
    waiting = [submit(hub, client) for _ in range(3)]
    clock.advance(hours=30)
    escalate_and_enforce(hub)  # overdue: the orders are blocked, the name refused
    with session_scope(hub.db_url) as s:
        kangda = s.exec(select(Customer).where(
            Customer.legal_name == "江苏康达医疗设备有限公司")).one()
    r = client.post("/customers/suspects/1/merge", json={"customer_id": kangda.id},
                    headers=auth(hub, "rep-lina"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = client.post("/customers/suspects/1/merge", json={"customer_id": kangda.id},
                    headers=auth(hub, "mgr-east"))
    assert r.status_code == 200, r.text
    assert sorted(r.json()["released_orders"]) == sorted(waiting)
    with session_scope(hub.db_url) as s:
        assert s.exec(select(CustomerAlias).where(CustomerAlias.name == UNKNOWN,
                                                  CustomerAlias.customer_id == kangda.id)).one()
        assert s.get(SuspectName, 1).status == "merged"
        assert s.exec(select(Todo).where(Todo.kind == "suspect_customer")).one().status == "done"
        assert {e.status for e in s.exec(select(InboxEvent).where(
            InboxEvent.subject_id.in_(waiting)))} == {"pending"}
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        orders = [s.get(IntentOrder, o) for o in waiting]
        assert {(o.status, o.customer_id) for o in orders} == {("quoted", kangda.id)}
        assert s.exec(select(OperationLog).where(OperationLog.actor == "staff:mgr-east")).first()
    # decided: the name is welcome again and finds the customer at once
    later = submit(hub, client)
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, later).customer_id == kangda.id
    again = client.post("/customers/suspects/1/merge", json={"customer_id": kangda.id},
                        headers=auth(hub, "mgr-east"))
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"


def test_manager_creates_the_customer_from_the_registry(hub, client, clock, tmp_path):
    name = "重庆渝康医疗器械有限公司"  # in the registry sample, not on file
    short = "渝康器械"
    waiting = [submit(hub, client, name=short) for _ in range(3)]
    r = client.post("/customers/suspects/1/create", json={"legal_name": name},
                    headers=auth(hub, "mgr-east"))
    assert r.status_code == 200, r.text
    assert r.json()["registry_found"] is True
    with session_scope(hub.db_url) as s:
        customer = s.get(Customer, r.json()["customer_id"])
        assert customer.legal_name == name and customer.uscc == "91500000MA5U7H8J4A"
        assert customer.legal_representative == "冉小川" and customer.origin == "standard"
        assert customer.qualification == "pending_review" and customer.owner_rep_id == "rep-zhangwei"
        assert s.exec(select(CustomerAlias).where(CustomerAlias.customer_id == customer.id,
                                                  CustomerAlias.name == short)).one()
        review = s.exec(select(Todo).where(Todo.kind == "legal_review")).one()
        assert review.customer_id == customer.id and review.assignee_id == "legal-01"
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        assert {s.get(IntentOrder, o).status for o in waiting} == {"quoted"}


def test_a_rep_picks_the_customer_of_his_own_waiting_order(hub, client):
    order_id = submit(hub, client)
    with session_scope(hub.db_url) as s:
        kangda = s.exec(select(Customer).where(
            Customer.legal_name == "江苏康达医疗设备有限公司")).one().id
    r = client.post(f"/orders/{order_id}/customer", json={"customer_id": kangda},
                    headers=auth(hub, "rep-lina"))
    assert r.status_code == 403
    r = client.post(f"/orders/{order_id}/customer", json={"customer_id": 99999},
                    headers=auth(hub, "rep-zhangwei"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_customer"
    r = client.post(f"/orders/{order_id}/customer", json={"customer_id": kangda},
                    headers=auth(hub, "rep-zhangwei"))
    assert r.status_code == 200, r.text
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
        assert order.status == "quoted" and order.customer_id == kangda
        # one order's choice does not decide the name
        assert s.get(SuspectName, 1).status == "collecting"
    again = client.post(f"/orders/{order_id}/customer", json={"customer_id": kangda},
                        headers=auth(hub, "rep-zhangwei"))
    assert again.status_code == 409 and "已报价，待客户签署" in again.json()["error"]["message"]


def test_decisions_need_a_valid_token(hub, client):
    submit(hub, client)
    assert client.post("/customers/suspects/1/merge", json={"customer_id": 1}
                       ).status_code == 401
    bad = client.post("/customers/suspects/1/merge", json={"customer_id": 1},
                      headers={"Authorization": "Bearer forged.123.abc"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_token"


def test_creating_a_company_on_file_under_its_former_name_is_refused(hub, client):
    """The registry names the company by its new legal name; our file still carries the former
    one (not refreshed yet) with the same USCC: creating would open a second file for one
    company, so the decider is sent to merge into the file on record."""
    from models.customer_files import create_customer
    with session_scope(hub.db_url) as s:
        old = create_customer(s, legal_name="合肥济民医疗设备有限公司", actor="test",
                              origin="imported", uscc="91340100MA2NRD6E7B")
        s.flush()
        old_id = old.id
    submit(hub, client)
    before = counts(hub.db_url)
    r = client.post("/customers/suspects/1/create",
                    json={"legal_name": "安徽济民医疗器械有限责任公司"}, headers=auth(hub, "ops-01"))
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "customer_exists" and f"客户编号 {old_id}" in error["message"]
    assert counts(hub.db_url) == before
    with session_scope(hub.db_url) as s:
        assert len(s.exec(select(Customer).where(
            Customer.uscc == "91340100MA2NRD6E7B")).all()) == 1


REGION_SPELLINGS = ["江苏省瑞丰新材料", "江苏瑞丰新材料", "瑞丰新材料（江苏）"]


def test_the_ways_of_writing_a_region_are_one_suspect(hub, client, clock):
    """江苏省… / 江苏… / …（江苏）: three sightings of one name, escalated once on the third,
    the manager told every spelling; the suspect keeps the first one as its name."""
    orders = [submit(hub, client, name=name) for name in REGION_SPELLINGS]
    with session_scope(hub.db_url) as s:
        suspect = s.exec(select(SuspectName)).one()
        todo = s.exec(select(Todo).where(Todo.kind == "suspect_customer")).one()
        assert {s.get(IntentOrder, o).suspect_id for o in orders} == {suspect.id}
    assert suspect.sightings == 3 and suspect.status == "escalated"
    assert suspect.display_name == "江苏省瑞丰新材料" and todo.id == suspect.todo_id
    assert f"写法：{'、'.join(REGION_SPELLINGS)}" in todo.body
    # a fourth spelling counts on the same suspect, and no second to-do
    submit(hub, client, name="瑞丰新材料(江苏省)")
    with session_scope(hub.db_url) as s:
        assert s.exec(select(SuspectName)).one().sightings == 4
        assert len(s.exec(select(Todo).where(Todo.kind == "suspect_customer")).all()) == 1
    # past the deadline every spelling is refused at the door
    clock.advance(hours=25)
    r = post_order(client, order_payload(name="瑞丰新材料（江苏）"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "customer_decision_overdue"


def test_a_city_with_or_without_its_suffix_is_one_suspect_but_not_a_word(hub, client, clock):
    """苏州市瑞丰 = 苏州瑞丰; the 市 of 苏州市场营销 may be 市场's: that name stays apart."""
    for name in ("苏州市瑞丰", "苏州瑞丰", "苏州市场营销", "苏州市市场营销"):
        submit(hub, client, name=name)
    with session_scope(hub.db_url) as s:
        suspects = s.exec(select(SuspectName).order_by(SuspectName.id)).all()
    assert [(x.display_name, x.sightings) for x in suspects] == [
        ("苏州市瑞丰", 2), ("苏州市场营销", 1), ("苏州市市场营销", 1)]


def test_the_manager_sees_one_suspect_with_its_spellings(hub, client, clock):
    orders = [submit(hub, client, name=name) for name in REGION_SPELLINGS]
    listed = client.get("/customers/suspects", headers=auth(hub, "mgr-east")).json()
    assert len(listed) == 1
    assert listed[0]["name"] == "江苏省瑞丰新材料" and listed[0]["sightings"] == 3
    assert listed[0]["spellings"] == REGION_SPELLINGS
    assert sorted(o["order_id"] for o in listed[0]["orders"]) == sorted(orders)
    page = client.get(f"/customers/suspects/{listed[0]['suspect_id']}",
                      headers={**auth(hub, "mgr-east"), "Accept": "text/html"}).text
    assert f'<dd id="spellings">{"、".join(REGION_SPELLINGS)}</dd>' in page


def test_the_migration_makes_one_suspect_of_the_spellings_collected_apart(hub, client, clock):
    """Suspects keyed by their plain normalised name before migration 0015: the spellings of
    one name become one suspect — sightings and orders together, the first spelling as its
    name, the furthest status with its to-do (the others' to-dos closed), logged; an open
    spelling of a decided name takes the decision and its orders go on with the next sweep;
    two spellings decided for two customers stay apart."""
    from models.db import downgrade, migrate

    with session_scope(hub.db_url) as s:
        kangda = s.exec(select(Customer).where(
            Customer.legal_name == "江苏康达医疗设备有限公司")).one().id
        shenkang = s.exec(select(Customer).where(
            Customer.legal_name == "上海申康医疗科技有限公司")).one().id
    # eight orders, each held on a suspect of its own (ids 1…8), rewritten below as the old
    # code had keyed them
    orders = [submit(hub, client, name=f"旧写法测试{n}号") for n in range(1, 9)]
    downgrade(hub.db_url, "0014")
    t0 = dt.datetime(2026, 11, 20, 2, 0)
    old = [  # id: key (= typed), status, first seen (days after t0), decided for
        (1, "江苏省瑞丰新材料", "collecting", 0, None),
        (2, "江苏瑞丰新材料", "escalated", 1, None),
        (3, "瑞丰新材料(江苏)", "collecting", 2, None),
        (4, "浙江省仁丰", "merged", 0, kangda),
        (5, "浙江仁丰", "collecting", 3, None),
        (6, "苏州市场营销", "collecting", 0, None),
        (7, "上海市申丰", "created", 0, shenkang),
        (8, "上海申丰", "merged", 1, kangda),
    ]
    with get_engine(hub.db_url).begin() as conn:
        for sid, key, status, days, customer in old:
            seen = t0 + dt.timedelta(days=days)
            conn.execute(sa.text(
                "UPDATE suspect_name SET key = :key, display_name = :key, status = :status, "
                "first_seen_at = :seen, last_seen_at = :seen, customer_id = :customer, "
                "decided_at = :decided, decided_by = :by WHERE id = :id"),
                {"id": sid, "key": key, "status": status, "seen": seen, "customer": customer,
                 "decided": seen if customer else None, "by": "mgr-east" if customer else None})
            conn.execute(sa.text("UPDATE suspect_sighting SET typed_name = :key, seen_at = :seen "
                                 "WHERE suspect_id = :id"), {"id": sid, "key": key, "seen": seen})
        conn.execute(sa.text(  # 4's and 7's and 8's orders went on with their decisions
            "UPDATE intent_order SET customer_id = :c, status = 'quoted' WHERE id = :o"),
            [{"c": kangda, "o": orders[3]}, {"c": shenkang, "o": orders[6]},
             {"c": kangda, "o": orders[7]}])
        for sid in (2, 3):  # 2 was escalated with its to-do; 3 (a later spelling) too, by hand
            conn.execute(sa.text(
                "INSERT INTO todo (kind, business_key, title, body, assignee_id, due_at, status, "
                "created_at) VALUES ('suspect_customer', :key, '疑似新客户待确认', '', 'mgr-east', "
                ":due, 'open', :at)"),
                {"key": f"suspect:{sid}", "due": t0 + dt.timedelta(days=2), "at": t0})
        todo_of = dict(conn.execute(sa.text(
            "SELECT business_key, id FROM todo WHERE kind = 'suspect_customer'")).all())
        for sid in (2, 3):
            conn.execute(sa.text(
                "UPDATE suspect_name SET todo_id = :t, decider_id = 'mgr-east', "
                "escalated_at = :at, deadline_at = :due, status = 'escalated' WHERE id = :id"),
                {"t": todo_of[f"suspect:{sid}"], "at": t0 + dt.timedelta(days=sid - 1),
                 "due": t0 + dt.timedelta(days=sid + 1), "id": sid})
    migrate(hub.db_url)

    with session_scope(hub.db_url) as s:
        rows = {x.id: x for x in s.exec(select(SuspectName)).all()}
        assert sorted(rows) == [3, 5, 6, 7, 8]
        ruifeng = rows[3]  # the newest row of the group is kept (SQLite reuses no id)
        assert ruifeng.key == "江苏|瑞丰新材料" and ruifeng.display_name == "江苏省瑞丰新材料"
        assert ruifeng.sightings == 3 and ruifeng.first_seen_at == t0.replace(
            tzinfo=dt.timezone.utc)
        # the furthest: 2, escalated first (its deadline, its to-do); 3's to-do is closed
        assert ruifeng.status == "escalated" and ruifeng.todo_id == todo_of["suspect:2"]
        assert ruifeng.deadline_at == (t0 + dt.timedelta(days=3)).replace(tzinfo=dt.timezone.utc)
        assert s.get(Todo, todo_of["suspect:2"]).status == "open"
        closed = s.get(Todo, todo_of["suspect:3"])
        assert closed.status == "done" and "编号 3" in closed.note
        assert {s.get(IntentOrder, o).suspect_id for o in orders[:3]} == {3}
        assert s.exec(select(OperationLog).where(
            OperationLog.entity == "suspect_name", OperationLog.entity_id == "3",
            OperationLog.action == "merge")).one()
        # the open spelling of a decided name is decided too
        renfeng = rows[5]
        assert (renfeng.key, renfeng.status, renfeng.customer_id, renfeng.sightings) == (
            "浙江|仁丰", "merged", kangda, 2)
        assert rows[6].key == "苏州市场营销"
        # decided for two customers: each keeps its own (the first decision takes the key)
        assert (rows[7].key, rows[7].customer_id) == ("上海|申丰", shenkang)
        assert (rows[8].key, rows[8].customer_id) == ("上海申丰", kangda)
    # the links mailed for 2 (its to-do) and pushed for 1 lead to the suspect that goes on
    for sid in (1, 2):
        for accept in ("application/json", "text/html"):
            r = client.get(f"/customers/suspects/{sid}?from=push", follow_redirects=False,
                           headers={**auth(hub, "mgr-east"), "Accept": accept})
            assert r.status_code == 307
            assert r.headers["location"] == "/customers/suspects/3?from=push"
    assert client.get("/customers/suspects/2", headers=auth(hub, "mgr-east")
                      ).json()["spellings"] == ["江苏省瑞丰新材料", "江苏瑞丰新材料", "瑞丰新材料(江苏)"]
    assert client.get("/customers/suspects/99", headers=auth(hub, "mgr-east")).status_code == 404
    # the next sweep sends the order that waited on 浙江仁丰 on with 江苏康达
    assert escalate_and_enforce(hub).released_orders == [orders[4]]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, orders[4])
        assert (order.status, order.customer_id) == ("quoted", kangda)
    # a new spelling finds the merged suspect: past 2's deadline, it is refused at the door
    r = post_order(client, order_payload(name="瑞丰新材料（江苏省）"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "customer_decision_overdue"
