"""Which version a new one supersedes from its start (audit round 6): publishing said
"自该日起取代第 N 版" naming the latest version, also when a back-dated correction takes over
from an earlier one, or when no version is in force on the new start at all."""
from __future__ import annotations

import pytest

from tests.rebate_support import publish
from tests.support import in_process_cli

DOC = """
code: SUP-2027
name: 替代关系测试
effective_from: FROM
TO
rules:
  - id: flat
    clause: 第一条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: RATE}]
    priority: 1
    stacking: stack
"""


@pytest.fixture
def cli(hub, monkeypatch, capsys, tmp_path):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, tmp_path / "data")


def doc(start: str, end: str | None, rate: str) -> str:
    return (DOC.replace("FROM", start).replace("TO", f"effective_to: {end}" if end else "")
            .replace("RATE", rate))


def test_a_back_dated_version_supersedes_the_one_in_force_on_its_start(hub):
    assert publish(hub.db_url, doc("2027-01-01", "2027-12-31", "1%")).supersedes is None
    assert publish(hub.db_url, doc("2027-04-01", "2027-12-31", "2%")).supersedes == 1
    # from 1 February v1 was in force (v2 governs from April): v3 takes over from v1, and v2
    # goes wholly (a warning says so)
    v3 = publish(hub.db_url, doc("2027-02-01", "2027-12-31", "3%"))
    assert (v3.version, v3.supersedes) == (3, 1)
    assert any("第 2 版" in w.message and "不再适用" in w.message for w in v3.warnings)
    # starting before every version, it replaces the first one it takes over (v1: January)
    assert publish(hub.db_url, doc("2026-12-01", "2027-12-31", "4%")).supersedes == 1


def test_a_version_after_a_gap_supersedes_none(hub, cli, tmp_path):
    publish(hub.db_url, doc("2027-01-01", "2027-03-31", "1%"))
    draft = tmp_path / "q3.yaml"
    draft.write_text(doc("2027-07-01", "2027-09-30", "2%"), encoding="utf-8")
    code, out, err = cli("rebates", "publish", draft, "--by", "ops-01")
    assert code == 0, err
    assert "第 2 版，2027-07-01 起生效。" in out, out
    assert "取代" not in out, out


def test_list_names_the_publisher_as_show_does(hub, cli):
    """`rebates list` printed only the staff id (ops-01 发布) where `show` names the person."""
    publish(hub.db_url, doc("2027-01-01", None, "1%"))
    code, out, err = cli("rebates", "list")
    assert code == 0, err
    assert out.strip() == ("SUP-2027 第1版《替代关系测试》适用订单日期：2027-01-01 至 长期；"
                           "发布人：吴倩（ops-01）"), out
