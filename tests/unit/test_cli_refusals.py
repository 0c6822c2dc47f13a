"""A connector's permanent failure (a file or a voucher finance refuses) ends a `salesops`
command with a Chinese message naming what did not finish, exit code 2, no traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connectors.base import PermanentError
from deployments import cli, rebates_cli

ROOT = Path(__file__).resolve().parents[2]


def test_settle_with_the_vouchers_refused(monkeypatch, capsys):
    def refused(args):
        raise PermanentError("voucher batch 'RB-2026-11-r1' refused: voucher 'C1': unbalanced",
                             provider="finance", code="bad-request")

    monkeypatch.setattr(rebates_cli, "cmd_settle", refused)
    with pytest.raises(SystemExit) as done:
        cli.main(["settle", "--month", "2026-11"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("错误：「salesops settle」未完成：外部系统（finance）拒绝了请求，重试无效")
    assert "voucher batch 'RB-2026-11-r1' refused" in err and "Traceback" not in err


def test_a_chinese_refusal_is_shown_as_it_is(monkeypatch, capsys):
    def refused(args):
        raise PermanentError("应收/回款导出文件 a.csv 无法导入：\na.csv 第3行「到期日」：不是有效日期",
                             provider="embedded-finance", code="bad-file")

    monkeypatch.setattr(rebates_cli, "cmd_receivables", refused)
    with pytest.raises(SystemExit) as done:
        cli.main(["receivables", "sync"])
    assert done.value.code == 2
    assert capsys.readouterr().err == ("错误：「salesops receivables sync」未完成：应收/回款导出文件 "
                                       "a.csv 无法导入：\na.csv 第3行「到期日」：不是有效日期\n")


def test_receivables_sync_with_a_bad_file_in_the_drop_folder(seeded, tmp_path):
    inbound = seeded.path("finance-drop") / "receivables-inbound"
    inbound.mkdir(parents=True)
    (inbound / "2026-11-01.csv").write_text(
        "发票号,客户名称,统一社会信用代码,开票日期,到期日,金额\n"
        "INV-002,广州华南医药贸易有限公司,,2026/07/20,2026-13-01,\"74,400.00\"\n",
        encoding="utf-8")
    env = {"SALESOPS_DATABASE_URL": seeded.db_url, "SALESOPS_DATA_DIR": str(seeded.data_dir),
           "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "deployments.cli", "receivables", "sync"],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("错误：「salesops receivables sync」未完成：应收/回款导出文件 "
                                 "2026-11-01.csv 无法导入")
    assert "第2行「到期日」：不是有效日期：'2026-13-01'" in run.stderr


@pytest.mark.parametrize("provider, status, said", [
    ("erp", "403", "对方系统认为无权执行此操作（HTTP 403）：请联系对方系统管理员为所用凭据"
                   "（SALESOPS_ERP_TOKEN）开通权限"),
    ("tianyancha", "404", "对方系统找不到所请求的地址或记录（HTTP 404）：请检查 "
                          "SALESOPS_TIANYANCHA_URL 是否指向正确的接口地址"),
    ("finance", "400", "请人工处理后再运行"),
])
def test_an_http_refusal_says_what_to_check(monkeypatch, capsys, provider, status, said):
    def refused(args):
        raise PermanentError(f"{provider} refused the request ({status}): {{}}",
                             provider=provider, code=status)

    monkeypatch.setattr(rebates_cli, "cmd_settle", refused)
    with pytest.raises(SystemExit) as done:
        cli.main(["settle", "--month", "2026-11"])
    assert done.value.code == 2
    assert capsys.readouterr().err == (
        f"错误：「salesops settle」未完成：外部系统（{provider}）拒绝了请求，重试无效，{said}"
        f"（原始信息：{provider} refused the request ({status}): {{}}）\n")


def test_a_database_error_of_no_known_kind_is_said_not_a_traceback(monkeypatch, capsys):
    """The disk under SQLite is full: the command says the database failed and what to look
    at, in Chinese, exit 1 — not a Python traceback; nothing claims the work was saved."""
    import sqlite3

    import sqlalchemy as sa

    def full(args):
        raise sa.exc.OperationalError("INSERT INTO rebate_line …", {},
                                      sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(rebates_cli, "cmd_settle", full)
    with pytest.raises(SystemExit) as done:
        cli.main(["settle", "--month", "2026-11"])
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert err == ("错误：数据库出错，本次操作未完成（原始信息：database or disk is full）。"
                   "请系统管理员检查数据库（磁盘空间、文件权限、数据库日志）后重新运行\n")
