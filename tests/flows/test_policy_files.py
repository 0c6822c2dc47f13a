"""Policy files as a clerk's Windows machine saves them (round 13): Notepad's GBK/GB18030
is read like UTF-8; a file that is no text at all is refused in Chinese."""
from __future__ import annotations

import pytest

from tests.support import in_process_cli

POLICY = """\
code: T-GBK
name: 华东区A类经销商专项返利
effective_from: 2026-10-01
rules:
  - id: east-a
    name: 华东A类叠加1%
    applies_to: {regions: [华东], customer_tiers: [A]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 1%}]
    priority: 1
    stacking: stack
"""


@pytest.fixture
def cli(hub, monkeypatch, capsys, tmp_path):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, tmp_path / "data")


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig"])
def test_a_policy_saved_by_notepad_in_gbk_is_published_as_written(cli, tmp_path, encoding):
    path = tmp_path / "policy.yaml"
    path.write_bytes(POLICY.encode(encoding))
    code, out, err = cli("rebates", "validate", path)
    assert code == 0, err
    assert "T-GBK《华东区A类经销商专项返利》" in out and "「华东A类叠加1%」" in out
    code, out, err = cli("rebates", "publish", path, "--by", "ops-01")
    assert code == 0, err
    code, out, _ = cli("rebates", "show", "T-GBK")
    assert "name: 华东区A类经销商专项返利" in out


def test_a_file_that_is_no_text_is_refused_in_chinese(cli, tmp_path):
    path = tmp_path / "policy.xlsx"
    path.write_bytes(b"PK\x03\x04\x80\xff\xfe\x00")
    code, _, err = cli("rebates", "validate", path)
    assert code == 2 and "不是文本文件" in err and "GB18030/GBK" in err
