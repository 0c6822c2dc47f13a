"""The settlement bench runs end to end on a small world (its figures are for docs/, not for
tests: nothing here depends on timing)."""
from __future__ import annotations

import re

from bench.settlement import main


def test_settlement_bench_prints_every_figure(capsys):
    main(["--orders", "400", "--lines", "4000", "--previews", "5"])
    out = capsys.readouterr().out
    assert "history: 2025-11 … 2026-08 settled (10 months" in out
    assert "month 2026-09 (the months before settled)" in out
    assert re.search(r"→  [\d.]+× the bare scan", out)
    floor = re.search(r"in the database \(INSERT … SELECT of ([\d,]+) lines\)", out)
    summed = re.search(r"reading the rows \(([\d,]+), summed per order", out)
    assert floor and summed and floor.group(1) == summed.group(1) != "0"
    assert re.search(r"re-run: 0 new lines", out)
    assert re.search(r"preview \(5 orders.*p99 [\d.]+ ms", out)
    boards = re.findall(r"  (rep-07|华东|finance): [\d.]+s · [\d.]+s · [\d.]+s \(([\d,]+) pending",
                        out)
    assert [scope for scope, _ in boards] == ["rep-07", "华东", "finance"]
    assert int(boards[-1][1].replace(",", "")) > int(boards[1][1].replace(",", "")) > 0
