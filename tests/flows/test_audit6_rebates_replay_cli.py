"""`salesops rebates replay` with a draft that has problems (audit round 6): the clerk only
asked for a what-if, yet was told the draft was 未发布 — as if publishing had been tried."""
from __future__ import annotations

import pytest

from tests.flows.test_rebate_replay import DRAFT
from tests.support import in_process_cli


@pytest.fixture
def cli(hub, monkeypatch, capsys, tmp_path):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, tmp_path / "data")


def test_a_draft_with_problems_is_not_replayed_and_says_so(hub, cli, tmp_path):
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT.replace("period: ", "period: 季度  # ", 1), encoding="utf-8")
    code, out, err = cli("rebates", "replay", "--policy", draft, "--from", "2026-10",
                         "--to", "2026-10")
    assert code == 2 and out == ""
    assert "无法回放" in err and "未发布" not in err, err
    assert "period" in err, err


def test_sections_without_rows_say_so(hub, cli, tmp_path):
    """With no signed orders in the months, the rep and customer sections printed a bare
    heading, which reads as if the output had been cut off."""
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT, encoding="utf-8")
    code, out, _ = cli("rebates", "replay", "--policy", draft, "--from", "2026-10",
                       "--to", "2026-10")
    assert code == 0, out
    assert "按销售（变化大的在前）：\n  （无返利）" in out, out
    assert "按客户（变化大的在前）：\n  （无返利）" in out, out
