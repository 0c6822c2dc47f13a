"""Database errors that are not defects: a write that finds the database held by another
writer for longer than the busy timeout is a 503 the caller can retry, in Chinese, with nothing
written; text PostgreSQL refuses (a NUL) is a 400. Neither is a server error."""
from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import issue_token
from models import db as dbmod
from models.db import database_busy, get_engine
from tests.api.test_rebates import POLICY


def test_a_publish_while_another_writer_holds_sqlite_is_a_503_and_writes_nothing(
        hub, monkeypatch):
    if not hub.db_url.startswith("sqlite"):
        pytest.skip("SQLite's busy timeout; PostgreSQL waits on row locks instead")
    dbmod.dispose_engines()
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 200)
    headers = {"Authorization": f"Bearer {issue_token(hub.settings, 'ops-01')}",
               "Content-Type": "text/plain"}
    holder = sqlite3.connect(hub.db_url.split("///", 1)[1], isolation_level=None)
    try:
        with TestClient(create_app(hub.settings, launcher=None),
                        raise_server_exceptions=False) as client:
            holder.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
            r = client.post("/rebates/policies", content=POLICY.encode(), headers=headers)
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"] == "5"
            error = r.json()["error"]
            assert error["code"] == "database_busy" and "请稍后重试" in error["message"]
            holder.execute("ROLLBACK")
            assert client.get("/rebates/policies", headers=headers).json() == []
            r = client.post("/rebates/policies", content=POLICY.encode(), headers=headers)
            assert r.status_code == 201 and r.json()["version"] == 1
    finally:
        holder.close()
        dbmod.dispose_engines()


def test_what_counts_as_busy(db_url):
    """Lock waits that ran out are busy; a defect (bad SQL) is not."""
    engine = get_engine(db_url)
    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError) as bad:
        conn.execute(sa.text("SELECT no_such_column FROM customer"))
    assert not database_busy(bad.value)
    if engine.dialect.name == "postgresql":
        with engine.connect() as holder, engine.connect() as waiter:
            holder.execute(sa.text("LOCK TABLE customer IN ACCESS EXCLUSIVE MODE"))
            waiter.execute(sa.text("SET lock_timeout = '100ms'"))
            with pytest.raises(sa.exc.DBAPIError) as busy:
                waiter.execute(sa.text("SELECT COUNT(*) FROM customer"))
            holder.rollback()
            waiter.rollback()
    else:
        path = db_url.split("///", 1)[1]
        holder = sqlite3.connect(path, isolation_level=None)
        waiter = sa.create_engine(db_url, connect_args={"timeout": 0.1})
        try:
            holder.execute("BEGIN IMMEDIATE")
            with waiter.connect() as conn, pytest.raises(sa.exc.DBAPIError) as busy:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            holder.close()
            waiter.dispose()
    assert database_busy(busy.value)


def test_the_cli_says_the_database_is_busy_and_exits_3(hub, monkeypatch, capsys, tmp_path):
    if not hub.db_url.startswith("sqlite"):
        pytest.skip("SQLite's busy timeout")
    from tests.support import in_process_cli

    dbmod.dispose_engines()
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 200)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    cli = in_process_cli(monkeypatch, capsys, hub.db_url, tmp_path / "data")
    run = next(cli)
    holder = sqlite3.connect(hub.db_url.split("///", 1)[1], isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        code, _, err = run("rebates", "publish", policy, "--by", "ops-01")
        assert code == 3 and "数据库正忙" in err and "Traceback" not in err
        holder.execute("ROLLBACK")
        assert run("rebates", "publish", policy, "--by", "ops-01")[0] == 0
    finally:
        holder.close()
        cli.close()
        dbmod.dispose_engines()


def test_a_nul_in_an_address_is_a_400_on_every_database(hub):
    """PostgreSQL refuses text holding NUL; an address with %00 must not become a 500."""
    with TestClient(create_app(hub.settings, launcher=None),
                    raise_server_exceptions=False) as client:
        auth = {"Authorization": f"Bearer {issue_token(hub.settings, 'rep-zhangwei')}"}
        r = client.get("/orders/IO-X%00Y", headers=auth)
        if hub.db_url.startswith("sqlite"):  # SQLite looks it up and finds nothing
            assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_order"
        else:
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_character"
            assert "空字符" in r.json()["error"]["message"]
            page = client.get("/orders/IO-X%00Y", headers={"Accept": "text/html", **auth})
            assert page.status_code == 400 and "链接中含有空字符" in page.text


def test_what_counts_as_a_unique_clash_and_what_the_cli_says(db_url, monkeypatch, capsys):
    """A unique key refusing a row another writer stored first: the CLI says so in Chinese,
    exit 3, no traceback; another integrity error (a NOT NULL) is not one."""
    from deployments import cli, rebates_cli
    from models.db import unique_clash

    engine = get_engine(db_url)
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE TABLE clash_probe (k VARCHAR(10) UNIQUE NOT NULL)"))
        conn.execute(sa.text("INSERT INTO clash_probe VALUES ('a')"))
        conn.commit()
        with pytest.raises(sa.exc.IntegrityError) as clash:
            conn.execute(sa.text("INSERT INTO clash_probe VALUES ('a')"))
        conn.rollback()
        with pytest.raises(sa.exc.IntegrityError) as null:
            conn.execute(sa.text("INSERT INTO clash_probe VALUES (NULL)"))
        conn.rollback()
        conn.execute(sa.text("DROP TABLE IF EXISTS clash_probe"))
        conn.commit()
    assert unique_clash(clash.value) and not unique_clash(null.value)

    def clashing(args):
        raise clash.value

    monkeypatch.setattr(rebates_cli, "cmd_receivables", clashing)
    with pytest.raises(SystemExit) as done:
        cli.main(["receivables", "sync"])
    assert done.value.code == 3
    err = capsys.readouterr().err
    assert err.startswith("错误：另一项操作同时写入了相同的记录，本次操作未保存，请重新运行本命令")
    assert "Traceback" not in err
