"""Audit of the business CLI as the sales-ops clerk and finance use it (`salesops settle`,
`salesops rebates …`, `salesops receivables|deliveries|returns import`): what a person or a
script reads, the exit codes, and what is left in the database."""
from __future__ import annotations

import codecs
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from models import Staff
from models.customer_files import create_customer
from models.db import get_engine, session_scope
from tests.flows.test_audit6_finance_documents import POLICY
from tests.flows.test_rebate_replay import DRAFT, PUBLISHED
from tests.rebate_support import clock_from, customer_id, publish, signed_order
from tests.support import in_process_cli

ROOT = Path(__file__).resolve().parents[2]
D = dt.date


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


def count(db_url: str, table: str) -> int:
    with get_engine(db_url).connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def salesops(hub, *args) -> subprocess.CompletedProcess:
    """The real command, as the clerk runs it in a terminal."""
    env = {"SALESOPS_DATABASE_URL": hub.db_url, "SALESOPS_DATA_DIR": str(hub.settings.data_dir),
           "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "deployments.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=180)


# --- 1. a damaged "Unicode text" export crashes every import with a Python traceback --------

def _truncated_utf16(header: str, row: str) -> bytes:
    """Excel's 「Unicode 文本」 (UTF-16 LE with its BOM, tab-separated), cut one byte short: a
    copy interrupted, a mail attachment truncated, a download that stopped."""
    data = codecs.BOM_UTF16_LE + f"{header}\r\n{row}\r\n".encode("utf-16-le")
    return data[:-1]


@pytest.mark.parametrize("command, header, row", [
    (("receivables", "import"), "发票号\t客户名称\t开票日期\t到期日\t金额",
     "FP-1\t江苏康达医疗设备有限公司\t2026-10-01\t2026-10-31\t100.00"),
    (("deliveries", "import"), "发货单号\t意向单号\t行号\t数量\t发货日期",
     "D-1\tIOH261010-00001\t1\t5\t2026-10-10"),
    (("returns", "import"), "退货单号\t意向单号\t行号\t数量\t退货日期",
     "R-1\tIOH261010-00001\t1\t1\t2026-10-20"),
], ids=["receivables", "deliveries", "returns"])
def test_a_truncated_unicode_text_export_is_refused_in_words_not_with_a_traceback(
        hub, tmp_path, command, header, row):
    # decode_csv (connectors/tabular.py) turns a bad UTF-8/GB18030 file into 无法识别文件编码,
    # but a file starting with a UTF-16 BOM is decoded with no such guard: the
    # UnicodeDecodeError reaches `salesops` uncaught — a Python traceback, exit 1 (the code
    # of no refusal), no word of what is wrong with the file. `rebates validate|publish`
    # catch the same error; the imports must refuse the file as they refuse any bad
    # encoding: exit 2, 无法识别文件编码 / 导入未执行, nothing written.
    path = tmp_path / "导出.csv"
    path.write_bytes(_truncated_utf16(header, row))
    run = salesops(hub, *command, path)
    assert "Traceback" not in run.stderr, run.stderr[-600:]
    assert run.returncode == 2, run.stderr[-600:]
    assert "导入未执行" in run.stderr and "编码" in run.stderr, run.stderr
    assert count(hub.db_url, "receivable_invoice") == 0
    assert count(hub.db_url, "movement_import") == 0


# --- 2. `settle --json` of a settled month states figures no revision has -----------------

def test_settle_json_of_a_month_with_nothing_new_does_not_misstate_its_revision(hub, cli):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])  # 64,000 × 1 % = 640
    code, out, err = cli("settle", "--month", "2026-10", "--json")
    assert code == 0, err
    first = json.loads(out)
    assert (first["revision"], first["lines"], first["total"]) == (1, 1, "640.00")
    # finance's script runs the same command again (nothing new since)
    code, out, err = cli("settle", "--month", "2026-10", "--json")
    assert code == 0, err
    again = json.loads(out)
    # It answers {"revision": 1, "lines": 0, "total": "0.00", "kind": null, ...}: revision 1
    # of 2026-10 has 1 line and ¥640.00, so a script reading revision and total records the
    # month's rebates as ¥0.00 (the only hint is run_id null, which a run that only finished
    # an earlier revision's vouchers also answers). Whatever revision the JSON names, its
    # figures must be that revision's (or it names none and says plainly nothing changed).
    if again["revision"] == 1:
        assert (again["lines"], again["total"]) == (1, "640.00"), again
    # it names no revision of its own, and the month's latest
    assert (again["revision"], again["latest_revision"], again["run_id"]) == (None, 1, None)


# --- 3. `settle --json` keys reps by a display name whose form changes ----------------------

def test_settle_json_keys_a_rep_the_same_way_every_month(hub, cli):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    code, out, err = cli("settle", "--month", "2026-10", "--json")
    assert code == 0, err
    october = json.loads(out)["by_rep"]
    # a second 张伟 is hired in November (common names are common)
    with session_scope(hub.db_url) as s:
        s.add(Staff(id="rep-zhangwei-2", name="张伟", role="rep", email="zw2@example.com",
                    region="华南"))
    clock_from(D(2026, 12, 5))
    signed_order(hub.db_url, kangda, D(2026, 11, 10), [("MON-M8", 5)])
    code, out, err = cli("settle", "--month", "2026-11", "--json")
    assert code == 0, err
    november = json.loads(out)["by_rep"]
    # The same rep (rep-zhangwei, the only rep with lines) is keyed "张伟" in October and
    # "张伟（rep-zhangwei）" in November: the key is a display name whose form depends on who
    # else is on staff, and carries no id until someone shares the name. A script summing
    # a rep's rebates over the year (commission, the rep's own board) splits him in two or
    # merges two people. --json must key reps by their id (stable), names beside it.
    assert set(october) == set(november), (october, november)
    assert "rep-zhangwei" in json.dumps(october, ensure_ascii=False), october


def test_settle_json_names_line_kinds_by_code_not_only_by_chinese_label(hub, cli):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    code, out, err = cli("settle", "--month", "2026-10", "--json")
    assert code == 0, err
    by_kind = json.loads(out)["by_kind"]
    # by_kind is {"返利": "640.00"}: the kinds every other machine-readable place names by
    # code (rebate / tier_difference / clawback / adjustment: the lines' `kind`, the API,
    # the workbook's data) are keyed here only by their Chinese label, which is wording and
    # may be reworded. A script must find the month's claw-backs under a stable code.
    assert "rebate" in by_kind, by_kind


# --- 4. output that does not fit a terminal --------------------------------------------------

def _customers_with_orders(db_url: str, n: int, day: dt.date) -> None:
    with session_scope(db_url) as s:
        for i in range(n):
            create_customer(s, legal_name=f"测试医疗器械第{i:03d}有限公司", actor="test",
                            origin="imported", tier="B", region="华东",
                            owner_rep_id="rep-zhangwei")
    for i in range(n):
        signed_order(db_url, customer_id(db_url, f"测试医疗器械第{i:03d}有限公司"), day,
                     [("MON-M8", 1)])


def test_replay_does_not_print_every_customer_without_being_asked(hub, cli, tmp_path):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, PUBLISHED)
    _customers_with_orders(hub.db_url, 60, D(2026, 10, 10))
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT, encoding="utf-8")
    code, out, err = cli("rebates", "replay", "--policy", draft, "--from", "2026-10",
                         "--to", "2026-10")
    assert code == 0, err
    section = out.split("按客户（变化大的在前）：\n", 1)[1].splitlines()
    # Every customer with a rebate gets a line: 60 here, 1,700 and more in a real month
    # (docs: finance's status pages a revision's customers 100 at a time). The clerk wants
    # the largest changes (the section is sorted by them); the imports already stop at 20
    # lines and say how many more (`……另有 N 条未列出`), --json has the full list.
    assert len(section) <= 25, f"{len(section)} lines"
    assert "另有" in out


def test_settle_does_not_print_every_customer_on_one_line(hub, cli):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, PUBLISHED)
    _customers_with_orders(hub.db_url, 60, D(2026, 10, 10))
    code, out, err = cli("settle", "--month", "2026-10")
    assert code == 0, err
    (line,) = [ln for ln in out.splitlines() if ln.startswith("按客户：")]
    # 按客户： joins every customer of the revision into one line (60 here: ~1,900
    # characters; with 1,700 customers ~55,000 characters of one wrapped line burying the
    # voucher reference and the document paths printed after it). A summary names the
    # largest few and how many more; the workbook and --json hold them all.
    assert line.count("；") < 20, f"{line.count('；') + 1} customers on one line"


# --- 5. a folder given instead of a file ------------------------------------------------------

@pytest.mark.parametrize("command", [("receivables", "import"), ("deliveries", "import"),
                                     ("returns", "import")],
                         ids=["receivables", "deliveries", "returns"])
def test_a_folder_given_as_the_file_is_called_a_folder(hub, cli, tmp_path, command):
    folder = tmp_path / "十月导出"   # the folder the ERP export was saved into
    folder.mkdir()
    code, out, err = cli(*command, folder)
    assert code == 2 and out == ""
    # It says 不支持的文件类型「」（支持 .csv、.xlsx）: the clerk reads that his file has a wrong
    # type, while he named a folder. A folder named 十月.csv is told 这是一个目录，不是文件 — as
    # `rebates validate` says of any folder; so should this one.
    assert "目录" in err, err


# --- 6. an irreversible confirmation of a month nobody named ---------------------------------

def test_confirming_without_naming_the_month_is_refused(hub, cli):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    assert cli("settle", "--month", "2026-10")[0] == 0
    clock_from(D(2026, 12, 5))
    signed_order(hub.db_url, kangda, D(2026, 11, 10), [("MON-M8", 5)])
    assert cli("settle", "--month", "2026-11")[0] == 0
    # finance, checking October's figures this week, confirms "revision 1" and leaves out
    # --month: the command takes the default of a settlement run (上月 = 2026-11) and
    # confirms November's revision 1 — for good ("from then on it never changes"), its
    # statements issued as 已确认. Every documented form (docs/rebates.md, README) and the
    # API (/rebates/settlements/{month}/{revision}/confirm) name the month; an irreversible
    # confirmation must too, as it must name --by.
    code, out, err = cli("settle", "--confirm", "1", "--by", "finance-01")
    with get_engine(hub.db_url).connect() as conn:
        confirmed = conn.execute(sa.text(
            "SELECT month FROM settlement_run WHERE status = 'confirmed'")).scalars().all()
    assert confirmed == [], f"confirmed {confirmed} (exit {code}): {out}"
    assert code == 2 and "--month" in err, err


def test_a_truncated_unicode_text_export_in_finance_drop_folder_is_refused_in_words(hub):
    # The same crash through `receivables sync` (and the scheduled receivables-sync flow,
    # which reads the same drop folder): every sync stops at this file with a traceback,
    # and the files finance drops after it are never read until someone finds it by hand.
    # A bad file is refused in words naming it (as a bad date in it is: exit 2, 未完成).
    inbound = hub.settings.path("finance-drop") / "receivables-inbound"
    inbound.mkdir(parents=True, exist_ok=True)
    (inbound / "20261101-应收.csv").write_bytes(_truncated_utf16(
        "发票号\t客户名称\t开票日期\t到期日\t金额",
        "FP-1\t江苏康达医疗设备有限公司\t2026-10-01\t2026-10-31\t100.00"))
    run = salesops(hub, "receivables", "sync")
    assert "Traceback" not in run.stderr, run.stderr[-600:]
    assert run.returncode == 2 and "20261101-应收.csv" in run.stderr, run.stderr
    assert count(hub.db_url, "receivable_invoice") == 0
