"""Audit round 4: `salesops customers match` with a limit that cannot be one."""
from __future__ import annotations

import gc

import pytest

from tests.support import in_process_cli


@pytest.fixture
def cli(seeded, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, seeded.db_url, seeded.data_dir)
    gc.unfreeze()  # `customers match` freezes what its process holds


@pytest.mark.parametrize("limit", ["0", "-1", "21"])
def test_a_limit_out_of_range_is_refused_in_chinese(cli, tmp_path, limit):
    queries = tmp_path / "q.txt"
    queries.write_text("康达医疗\n", encoding="utf-8")
    code, out, err = cli("customers", "match", "--file", queries, "--json", "--limit", limit)
    assert code == 2 and out == ""
    assert "候选数" in err and "1" in err and "20" in err


def test_a_limit_in_range_gives_that_many_candidates_at_most(cli, tmp_path):
    import json

    queries = tmp_path / "q.txt"
    queries.write_text("康达医疗\n", encoding="utf-8")
    code, out, _ = cli("customers", "match", "--file", queries, "--json", "--limit", "1")
    assert code == 0 and len(json.loads(out)["candidates"]) == 1
