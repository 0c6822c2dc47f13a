"""Audit: "bad input gets a clear, specific error and nothing half-written: one transaction per
command", checked by fault injection. A write statement of a command is made to fail as a busy
database fails it ("database is locked" on SQLite, lock_not_available on PostgreSQL: another
writer held the lock past the timeout), and the command's answer is compared with what the
database holds afterwards. Both doors answer such a failure with 「数据库正忙……本次操作未保存，请稍后
重试」 (CLI exit 3, API 503 `database_busy`): each test here shows a command for which that answer
is false — part of the command was committed in a transaction of its own before the failing
statement — and the person, told that nothing was kept, retries into a refusal or is left with a
record he was told does not exist. Each test fails on the code as audited."""
from __future__ import annotations

import contextlib
import datetime as dt
import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from api.auth import issue_token
from models import SettlementRun, SuspectName, Todo
from models.db import get_engine, session_scope
from tests.flows.test_settlement import POLICY
from tests.rebate_support import clock_from, customer_id, publish, signed_order
from tests.support import in_process_cli, order_payload, post_order, run_pending

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"
UNSAVED = "本次操作未保存"


# --- fault injection ----------------------------------------------------------------------

def _busy_error(db_url: str) -> Exception:
    """What the driver raises when another writer held the lock past the timeout."""
    if db_url.startswith("postgresql"):
        import psycopg.errors

        return psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")
    import sqlite3

    return sqlite3.OperationalError("database is locked")


@contextlib.contextmanager
def busy_at(db_url: str, statement: str, k: int = 1):
    """The k-th statement sent through the engine that starts with `statement` (a regex)
    fails as a busy database fails it (SQLAlchemy wraps the driver's error as for a real one).
    Yields a dict whose `fired` says whether it did."""
    engine = get_engine(db_url)
    pattern = re.compile(r"\s*" + statement, re.I)
    state = {"seen": 0, "fired": False}

    def hook(conn, cursor, sql, parameters, context, executemany):
        if pattern.match(sql):
            state["seen"] += 1
            if state["seen"] == k:
                state["fired"] = True
                raise _busy_error(db_url)

    sa.event.listen(engine, "before_cursor_execute", hook)
    try:
        yield state
    finally:
        sa.event.remove(engine, "before_cursor_execute", hook)


def table_rows(db_url: str, *tables: str) -> dict[str, list]:
    """The rows of `tables`, each table's as a sorted list of reprs (contents, not counts)."""
    with get_engine(db_url).connect() as conn:
        return {t: sorted(repr(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {t}")))
                for t in tables}


# --- the command line ---------------------------------------------------------------------

@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


@pytest.fixture
def november(hub, cli):
    """November 2026 of 康达 under the test policy, clock in January 2027."""
    clock_from(D(2027, 1, 5))
    publish(hub.db_url, POLICY)
    signed_order(hub.db_url, customer_id(hub.db_url, KANGDA), D(2026, 11, 10), [("MON-M8", 5)])
    return "2026-11"


def test_a_confirmation_stored_then_stopped_by_a_busy_database_is_not_said_unsaved(
        hub, cli, november):
    """`salesops settle --month 2026-11 --confirm 1 --by finance-01` commits the confirmation
    (confirm_settlement, its own transaction), then finishes the revision (finish_revision:
    effects, documents). The database is busy at the first write of that second part: the
    command says 「数据库正忙……本次操作未保存，请稍后重试」. The finance person does as told, runs the
    same command again — and is refused 「2026-11 第 1 版已于 … 由 孙丽 确认」 (exit 2), with the
    confirmed statements still not written. For an outside system's failure at the same
    point the command says 「第 1 版的确认已保存，无需再次确认；已确认的对账单尚未生成」 and what to
    run (rebates_cli.cmd_settle): a database failure there deserves the same words."""
    assert cli("settle", "--month", november)[0] == 0
    with busy_at(hub.db_url, "INSERT INTO effect") as fault:
        code, _, err = cli("settle", "--month", november, "--confirm", "1", "--by", "finance-01")
    assert fault["fired"]
    with session_scope(hub.db_url) as s:
        run = s.exec(select(SettlementRun).where(SettlementRun.month == november)).one()
        assert run.status == "confirmed"  # what the database holds after the failure
        # what finance's status page says of it: the database was busy, not a class name
        assert run.delivery_error.startswith("数据库正忙"), run.delivery_error
    assert code != 0
    assert UNSAVED not in err, (
        f"the confirmation is stored, yet the command says nothing was saved: {err!r}; "
        f"running it again as told: {cli('settle', '--month', november, '--confirm', '1', '--by', 'finance-01')}")
    assert "确认已保存" in err, err


def test_a_settlement_stored_then_stopped_by_a_busy_database_is_not_said_unsaved(
        hub, cli, november):
    """`salesops settle --month 2026-11` stores revision 1 (store_settlement commits), then
    sends its vouchers (effects in transactions of their own). The database is busy at the
    first of those: the command says 「本次操作未保存」 though revision 1 with its lines is stored
    and counted as paid from now on. (Running it again does finish it, once — the message is
    what is wrong: for an outside failure at the same point, `_unfinished` says what is stored
    and that running again finishes it.)"""
    with busy_at(hub.db_url, "INSERT INTO effect") as fault:
        code, _, err = cli("settle", "--month", november)
    assert fault["fired"] and code != 0
    with session_scope(hub.db_url) as s:
        stored = s.exec(select(SettlementRun).where(SettlementRun.month == november)).all()
    assert [r.revision for r in stored] == [1]
    assert UNSAVED not in err, f"revision 1 is stored, yet: {err!r}"
    # what the person needs: that it is stored and that running again finishes it
    assert "第 1 版" in err or "已保存" in err, err


# --- the API --------------------------------------------------------------------------------

@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None), raise_server_exceptions=False) as c:
        yield c


def bearer(hub, staff_id: str) -> dict:
    return {"Authorization": f"Bearer {issue_token(hub.settings, staff_id)}"}


def submit(hub, client, name: str) -> str:
    r = post_order(client, order_payload(name=name, rep_id="rep-zhangwei"))
    assert r.status_code == 202, r.text
    run_pending(hub)
    return r.json()["order_id"]


@pytest.mark.usefixtures("prefect_harness")
def test_a_qualification_review_answered_busy_leaves_no_review_behind(hub, client):
    """POST /customers/{id}/qualification on a customer passed before (资质复审): the hub opens
    a new review to-do and commits it (flows.todos.review_qualification), then completes it in
    a second transaction (complete_todo). The database is busy in the second: the answer is
    503 `database_busy` 「本次操作未保存」, yet an open to-do 「客户资质复审（第 2 次）」 and its
    operation-log row stay on file (on legal's 我的待办, mailed by the sweeper as untold)."""
    submit(hub, client, "安徽济民医疗器械有限责任公司")
    with session_scope(hub.db_url) as s:
        review = s.exec(select(Todo).where(Todo.kind == "legal_review")).one()
        review_id, customer = review.id, review.customer_id
    legal = bearer(hub, "legal-01")
    assert client.post(f"/todos/{review_id}/complete", json={"outcome": "approved"},
                       headers=legal).status_code == 200
    before = table_rows(hub.db_url, "todo", "operation_log", "customer", "effect")
    with busy_at(hub.db_url, "UPDATE todo SET status") as fault:
        r = client.post(f"/customers/{customer}/qualification",
                        json={"outcome": "rejected", "note": "医疗器械经营许可证过期"}, headers=legal)
    assert fault["fired"]
    assert r.status_code == 503 and r.json()["error"]["code"] == "database_busy", r.text
    after = table_rows(hub.db_url, "todo", "operation_log", "customer", "effect")
    left = {t: sorted(set(after[t]) - set(before[t])) for t in after if after[t] != before[t]}
    assert left == {}, f"answered {r.json()['error']['message']!r}, but written: {left}"


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("decision", ["merge", "create"])
def test_a_suspect_decision_stored_is_not_answered_unsaved(hub, client, decision):
    """A manager's decision on a suspected new customer commits (decide_merge / decide_create:
    alias, suspect decided, orders released, file and review opened), then the hub tells the
    people (push / to-do mail, effects recorded in transactions of their own). The database is
    busy at the first effect: the answer is 503 `database_busy` 「本次操作未保存，请稍后重试」 —
    but the decision is stored and the orders released; the manager's retry is refused 409
    `already_decided` 「已由 系统管理员（admin） 于 … 处理」, his own decision. (flows.todos._tell
    keeps a notice's failure from undoing the answer of a completed to-do; the suspect
    decisions do not.)"""
    oid = submit(hub, client, "康达新材料")
    with session_scope(hub.db_url) as s:
        suspect = s.exec(select(SuspectName)).one().id
    body, path = (({"customer_id": customer_id(hub.db_url, KANGDA)}, "merge")
                  if decision == "merge" else ({"legal_name": "康达新材料科技有限公司"}, "create"))
    with busy_at(hub.db_url, "INSERT INTO effect") as fault:
        r = client.post(f"/customers/suspects/{suspect}/{path}", json=body,
                        headers=bearer(hub, "admin"))
    assert fault["fired"]
    with session_scope(hub.db_url) as s:
        status = s.get(SuspectName, suspect).status
        order_status = s.exec(sa.text("SELECT status FROM intent_order WHERE id = :i"),
                              params={"i": oid}).scalar()
    assert (status, order_status) == ({"merge": "merged", "create": "created"}[decision],
                                      "received")  # stored, and the order released
    again = client.post(f"/customers/suspects/{suspect}/{path}", json=body,
                        headers=bearer(hub, "admin"))
    assert r.status_code == 200, (
        f"the decision is stored, yet answered {r.status_code} {r.text}; "
        f"the retry: {again.status_code} {again.text}")
