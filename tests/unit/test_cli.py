"""The `salesops` command line speaks Chinese to its users and fails clearly."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    return subprocess.run([sys.executable, "-m", "deployments.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_help_is_in_chinese():
    out = run("--help")
    assert out.returncode == 0
    assert "销售运营中台命令行" in out.stdout and "演示" in out.stdout
    assert "最后一行输出 JSON" in run("demo", "--help").stdout


def test_unknown_command_exits_non_zero_with_a_message():
    out = run("frobnicate")
    assert out.returncode == 2 and "frobnicate" in out.stderr
