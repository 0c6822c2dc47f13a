"""Audit: the schema the migrations build (what `salesops migrate` leaves on a production
database) against what the models declare, and the migrations' ways down and up again with
data in the database. The suite's own databases are built by the migrations (conftest:
`migrate()` into a template SQLite file, or into SALESOPS_TEST_DATABASE_URL), so a model
change without its migration shows in every test; these tests cover what that does not:
partial indexes, foreign keys and constraint details compared against `create_all` on the
same backend, an interrupted `salesops migrate`, and data carried through a rollback."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from sqlmodel import SQLModel, select

import models  # noqa: F401 - registers every table
from flows.hub import current_hub
from flows.settlement import settle_month
from models import VoucherNumber
from models.db import (
    dispose_engines, downgrade, get_engine, migrate, schema_revision, schema_revisions,
    session_scope,
)
from models.vouchers import issue_voucher_numbers
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

D = dt.date
POLICY = """
code: P-SCHEMA
name: 结构测试
effective_from: 2026-10-01
rules:
  - {id: flat, measure: amount, period: month, style: retroactive,
     tiers: [{from: 0, rate: 2%}], priority: 1, stacking: stack}
"""
NAMES = ("江苏康达医疗设备有限公司", "浙江仁和医疗器械有限公司", "广州华南医药贸易有限公司")


# ---------------------------------------------------------------- helpers

def _shape(engine: sa.Engine, schema: str | None = None) -> dict[str, dict]:
    """Everything the inspector tells of each table: columns (type, length, nullability),
    primary key, indexes (unique, partial condition), unique constraints, foreign keys."""
    insp = sa.inspect(engine)
    out = {}
    for table in insp.get_table_names(schema=schema):
        if table == "alembic_version":
            continue
        shape: dict = {"pk": tuple(insp.get_pk_constraint(table, schema=schema)
                                   ["constrained_columns"])}
        for c in insp.get_columns(table, schema=schema):
            shape[f"column {c['name']}"] = (str(c["type"]), c["nullable"])
        for i in insp.get_indexes(table, schema=schema):
            options = i.get("dialect_options", {})
            where = options.get("postgresql_where", options.get("sqlite_where"))
            shape[f"index {','.join(map(str, i['column_names']))}"] = (
                bool(i["unique"]), None if where is None else " ".join(str(where).split()))
        for u in insp.get_unique_constraints(table, schema=schema):
            shape[f"unique {','.join(u['column_names'])}"] = True
        for f in insp.get_foreign_keys(table, schema=schema):
            shape[f"fk {','.join(f['constrained_columns'])}"] = (
                f["referred_table"], tuple(f["referred_columns"]),
                tuple(sorted((f.get("options") or {}).items())))
        out[table] = shape
    return out


def _differences(migrated: dict, declared: dict) -> list[str]:
    out = []
    for table in sorted(set(migrated) | set(declared)):
        a, b = migrated.get(table), declared.get(table)
        if a is None or b is None:
            out.append(f"{table}: only {'declared' if a is None else 'migrated'}")
            continue
        out += [f"{table}.{k}: migrated {a.get(k)} declared {b.get(k)}"
                for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return out


def _rows(url: str, skip: set[str] = frozenset()) -> dict[str, list]:
    """Every row of every table (Alembic's own left out), as sorted text tuples."""
    engine = get_engine(url)
    out = {}
    with engine.connect() as conn:
        for table in sa.inspect(engine).get_table_names():
            if table == "alembic_version" or table in skip:
                continue
            out[table] = sorted(tuple(sorted((k, str(v)) for k, v in r.items()))
                                for r in conn.execute(sa.text(f'SELECT * FROM "{table}"'))
                                .mappings())
    return out


def _settled_months(hub) -> dict[str, tuple[int, str]]:
    """October settled (3 vouchers, 2026-10), a correction of it made on 10 November (1
    voucher, 2026-11) and November settled (2 vouchers, 2026-11)."""
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    orders = {}
    for n, name in enumerate(NAMES, start=1):
        cid = customer_id(hub.db_url, name)
        orders[name] = (cid, signed_order(hub.db_url, cid, D(2026, 10, 9 + n), [("MON-M8", 2)]))
    settle_month(current_hub(), "2026-10")
    clock_from(D(2026, 11, 10))
    return_goods(hub.db_url, orders[NAMES[0]][1], 1, 1, D(2026, 10, 20))
    settle_month(current_hub(), "2026-10")
    clock_from(D(2026, 12, 5))
    for name in NAMES[:2]:
        signed_order(hub.db_url, orders[name][0], D(2026, 11, 3), [("MON-M8", 1)])
    settle_month(current_hub(), "2026-11")
    return orders


def _sent_numbers(hub) -> list[tuple[str, str, int, str]]:
    """(period, 凭证字, 凭证号, voucher key) of every voucher the batches went out with (the
    JSON files in finance's drop folder)."""
    out = []
    for path in sorted((hub.settings.data_dir / "finance-drop" / "vouchers").glob("*.json")):
        document = json.loads(path.read_text("utf-8"))
        batch = document.get("batch", document.get("request", document))
        out += [(v["period"], v["word"], v["number"], v["voucher_key"])
                for v in batch["vouchers"]]
    return sorted(out)


def _issued(db_url: str) -> list[tuple[str, str, int, str]]:
    with session_scope(db_url) as s:
        return sorted((n.period, n.word, n.number, n.voucher_key)
                      for n in s.exec(select(VoucherNumber)))


# ---------------------------------------------------------------- defects

def test_voucher_numbers_sent_since_0013_survive_a_rollback_and_upgrade_again(hub):
    """An operator rolls a release back past 0013 (`salesops migrate --down-to 0012 --yes`,
    told the voucher_number rows go) and later upgrades again (`salesops migrate`). Migration
    0013 promises to record "the numbers batches were sent with before, so that the period's
    next batch continues after them". The batches prepared since 0013 carry their numbers in
    the stored batch (2026-11: the October correction 记-1, November's settlement 记-2 and
    记-3), but the migration ignores them and renumbers every batch 1…n, skipping clashes:
    2026-11 is recorded as 记-1 (the correction) and 记-2 (for the voucher that went out as
    记-3); the voucher sent as 记-2 is not recorded at all. The period's next batch is then
    given 记-3 again — a 凭证号 finance's books already hold (K/3 Cloud refuses or merges it)."""
    _settled_months(hub)
    sent = _sent_numbers(hub)
    assert [(p, n) for p, _w, n, _k in sent] == [
        ("2026-10", 1), ("2026-10", 2), ("2026-10", 3),
        ("2026-11", 1), ("2026-11", 2), ("2026-11", 3)]
    assert _issued(hub.db_url) == sent
    downgrade(hub.db_url, "0012")
    migrate(hub.db_url)
    with session_scope(hub.db_url) as s:
        following = issue_voucher_numbers(s, "RB-NEXT", [("RB-NEXT-C000001", "记", "2026-11")],
                                          "test")
    assert following == {"RB-NEXT-C000001": 4}, "a 凭证号 already sent to finance given again"
    assert _issued(hub.db_url)[:-1] == sent


def test_an_interrupted_migrate_can_be_run_again(db_url, monkeypatch):
    """`salesops migrate` after an upgrade is interrupted (Ctrl+C, the service manager's stop
    timeout, the machine going down) while it rewrites a large table. The operator expects to
    run `salesops migrate` again and have it finish: an interrupted revision is undone, as
    on PostgreSQL. On SQLite (the default database) the revision's DDL was already committed
    — the driver begins no transaction before DDL, and the migrations' transaction is none on
    SQLite — so 0017's new columns stay while the schema version still says 0016, and every
    later `salesops migrate` fails with "duplicate column name: model": the hub cannot start
    (the API refuses a database not at the newest version) until someone edits the schema by
    hand."""
    downgrade(db_url, "0016")

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt  # the order lines' model and name being filled in

    with monkeypatch.context() as m:
        m.setattr(Operations, "execute", interrupted)
        with pytest.raises(KeyboardInterrupt):
            migrate(db_url)
    dispose_engines()
    assert schema_revision(db_url) == "0016"
    columns = {c["name"] for c in sa.inspect(get_engine(db_url)).get_columns("intent_order_line")}
    assert not columns & {"model", "name"}, "an interrupted revision left half its schema"
    migrate(db_url)  # run again: finishes
    assert schema_revision(db_url) == schema_revisions()[-1]


# ---------------------------------------------------------------- checked and fine

@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migrated_schema_is_the_one_the_models_declare(db_url, tmp_path, backend):
    """Tables, columns (type, length, nullability), primary keys, indexes (unique, partial),
    unique constraints and foreign keys: `migrate` and `create_all` build the same schema."""
    if not db_url.startswith(backend):
        pytest.skip(f"the test database is not {backend}")
    migrated = _shape(get_engine(db_url))
    if backend == "sqlite":
        declared_url = f"sqlite:///{tmp_path / 'declared.db'}"
        SQLModel.metadata.create_all(get_engine(declared_url))
        declared = _shape(get_engine(declared_url))
    else:
        engine = get_engine(db_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS declared CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA declared"))
        try:
            with engine.begin() as conn:
                SQLModel.metadata.create_all(conn.execution_options(
                    schema_translate_map={None: "declared"}))
            declared = _shape(engine, schema="declared")
        finally:
            with engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA declared CASCADE"))
    assert _differences(migrated, declared) == []


def test_down_to_0013_and_up_again_keeps_every_row_and_settles_on(hub):
    """0014…0020's ways back and up with settled months in the database: every row as it
    was, and the next settlement runs."""
    _settled_months(hub)
    before = _rows(hub.db_url)
    downgrade(hub.db_url, "0013")
    migrate(hub.db_url)
    assert _rows(hub.db_url) == before
    clock_from(D(2027, 1, 5))
    signed_order(hub.db_url, customer_id(hub.db_url, NAMES[2]), D(2026, 12, 2), [("MON-M8", 1)])
    result = settle_month(current_hub(), "2026-12")
    assert result.revision == 1
    assert [(p, n) for p, _w, n, _k in _issued(hub.db_url) if p == "2026-12"] == [("2026-12", 1)]
