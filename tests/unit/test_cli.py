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


def test_every_commands_help_names_its_values_in_chinese():
    """Placeholders a user fills in (文件, 人员编号 …) read in Chinese in every command's help;
    only formats (YYYY-MM) and the words JSON, CSV, XLSX, YAML, URL, API stay as they are."""
    import argparse
    import re

    from deployments.cli import build_parser

    def commands(parser, path=()):
        yield path, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from commands(sub, (*path, name))

    allowed = {"YYYY", "MM", "JSON", "CSV", "XLSX", "YAML", "URL", "API", "PDF", "SKU", "USCC",
               "HTTP", "SQLITE", "ID"}
    for path, parser in commands(build_parser()):
        usage = parser.format_usage()
        caps = set(re.findall(r"\b[A-Z][A-Z_]{2,}\b", usage)) - allowed
        assert not caps, (" ".join(path), caps, usage)
