"""The rebate commands against what a person mistypes: a revision or version number no
column can hold is "no such revision" (not a database error or an overflow traceback), and
`--by` of every rebate command taking it names a person on file (人员不存在 otherwise, nothing
written), who is then the actor of what the command stores."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from models.db import get_engine
from tests.api.test_rebates import POLICY
from tests.rebate_support import publish
from tests.support import in_process_cli


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


def actors(db_url: str, entity: str) -> set[str]:
    with get_engine(db_url).connect() as conn:
        return set(conn.execute(sa.text("SELECT actor FROM operation_log WHERE entity = :e"),
                                {"e": entity}).scalars())


def count(db_url: str, table: str) -> int:
    with get_engine(db_url).connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


@pytest.mark.parametrize("revision", [2**31, 2**63, 10**30, 0, -1])
def test_confirming_a_revision_beyond_any_stored_is_no_such_revision(cli, revision):
    code, out, err = cli("settle", "--month", "2026-10", "--confirm", revision,
                         "--by", "finance-01")
    assert (code, out) == (2, "")
    assert err == f"错误：2026-10 没有第 {revision} 版结算\n"


def test_showing_a_version_beyond_any_published_is_no_such_version(hub, cli):
    publish(hub.db_url, POLICY)
    for version in (2**31, 10**30, 0):
        code, _, err = cli("rebates", "show", "T-PREVIEW", "--version", version)
        assert code == 2 and f"T-PREVIEW 没有第 {version} 版（已发布：第 1 版）" in err


RECEIVABLES = ("发票号,客户名称,开票日期,到期日,金额\n"
               "FP-1,江苏康达医疗设备有限公司,2026-10-01,2026-10-31,100.00\n")


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_imports_name_only_people_on_file(hub, cli, tmp_path):
    path = _write(tmp_path / "应收.csv", RECEIVABLES)
    code, out, err = cli("receivables", "import", path, "--by", "nobody-at-all")
    assert (code, out) == (2, "") and "人员不存在：nobody-at-all" in err
    assert count(hub.db_url, "receivable_invoice") == 0  # nothing written
    for kind in ("deliveries", "returns"):
        code, out, err = cli(kind, "import", tmp_path / "无此文件.csv", "--by", "nobody-at-all")
        assert (code, out) == (2, "") and "人员不存在：nobody-at-all" in err, kind
    assert count(hub.db_url, "movement_import") == 0
    # a person on file is the actor of what the import stores
    assert cli("receivables", "import", path, "--by", "finance-01")[0] == 0
    assert actors(hub.db_url, "receivable_invoice") == {"cli:finance-01"}


def test_sync_names_only_people_on_file_and_logs_who_ran_it(hub, cli):
    inbound = hub.settings.path("finance-drop") / "receivables-inbound"
    inbound.mkdir(parents=True, exist_ok=True)
    _write(inbound / "20261101-应收.csv", RECEIVABLES)
    code, out, err = cli("receivables", "sync", "--by", "nobody-at-all")
    assert (code, out) == (2, "") and "人员不存在：nobody-at-all" in err
    assert count(hub.db_url, "receivable_invoice") == 0
    code, out, _ = cli("receivables", "sync", "--by", "finance-01")
    assert code == 0 and "新增 1" in out
    assert actors(hub.db_url, "receivable_invoice") == {"cli:finance-01"}
