"""`salesops rebates replay` as the clerk runs it (audit round 5): a draft that starts after
the months replayed changes nothing, and the output says why instead of a bare ¥0.00."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.flows.test_rebate_replay import DRAFT, PUBLISHED
from tests.rebate_support import customer_id, publish, signed_order
from tests.support import in_process_cli


@pytest.fixture
def cli(hub, monkeypatch, capsys, tmp_path):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, tmp_path / "data")


def test_a_draft_starting_after_the_replayed_months_says_why_nothing_changes(hub, cli, tmp_path):
    publish(hub.db_url, PUBLISHED)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, dt.date(2026, 10, 10), [("MON-M8", 5)])  # 64,000
    later = tmp_path / "draft-2027.yaml"
    later.write_text(DRAFT.replace("effective_from: 2026-10-01", "effective_from: 2027-01-01"),
                     encoding="utf-8")
    code, out, err = cli("rebates", "replay", "--policy", later, "--from", "2026-10",
                         "--to", "2026-12", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["total"] == {"published": "1280.00", "draft": "1280.00", "change": "0.00"}
    note = ("草稿自 2027-01-01 起生效，晚于回放的最后一个月 2026-12：回放期间结算的订单都不适用草稿，"
            "故无变化；如需试算，请回放生效之后的月份，或在草稿副本中把 effective_from 改到回放期间")
    assert note in result["notes"]
    code, out, _ = cli("rebates", "replay", "--policy", later, "--from", "2026-10",
                       "--to", "2026-12")
    assert code == 0 and f"  注意：{note}" in out
    # a draft in force during the months replayed has no such note, and changes the figures
    current = tmp_path / "draft.yaml"
    current.write_text(DRAFT, encoding="utf-8")
    code, out, err = cli("rebates", "replay", "--policy", current, "--from", "2026-10",
                         "--to", "2026-12", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["total"]["change"] == "640.00"
    assert not any(n.startswith("草稿自") for n in result["notes"])
