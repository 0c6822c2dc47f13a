"""What-if replay of a draft policy over past orders, per customer and rep, before publishing."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from flows.rebate_replay import replay
from models.rebates.policy import parse_policy_document
from tests.rebate_support import customer_id, publish, signed_order

ROOT = Path(__file__).resolve().parents[2]
D = dt.date
PUBLISHED = """
code: T-REPLAY
name: 现行基础返利
effective_from: 2026-10-01
rules:
  - id: flat
    name: 基础返利
    clause: 第一条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 1
    stacking: stack
"""
DRAFT = PUBLISHED.replace("name: 现行基础返利", "name: 提高后的基础返利").replace(
    "rate: 2%", "rate: 3%")


def test_replay_compares_the_draft_with_what_is_published(hub):
    publish(hub.db_url, PUBLISHED)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    huanan = customer_id(hub.db_url, "广州华南医药贸易有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])  # 64,000
    signed_order(hub.db_url, huanan, D(2026, 11, 3), [("MON-M12", 2)],  # 37,200
                 rep_id="rep-lina")
    signed_order(hub.db_url, huanan, D(2026, 11, 4), [("PUMP-SP3", 2)],  # not 监护
                 rep_id="rep-lina")
    result = replay(hub.db_url, parse_policy_document(DRAFT), "2026-10", "2026-11")
    assert result.version == 2  # it would be published as version 2
    rows = {k: (r.published, r.draft) for k, r in result.customers.items()}
    assert rows == {"江苏康达医疗设备有限公司": (Decimal("1280.00"), Decimal("1920.00")),
                    "广州华南医药贸易有限公司": (Decimal("744.00"), Decimal("1116.00"))}
    assert {k: r.change for k, r in result.reps.items()} == {
        "张伟（rep-zhangwei）": Decimal("640.00"), "李娜（rep-lina）": Decimal("372.00")}
    assert result.total.change == Decimal("1012.00")
    assert [m for m in result.by_month] == ["2026-10", "2026-11"]


def test_replay_from_the_command_line(hub, tmp_path):
    publish(hub.db_url, PUBLISHED)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT, encoding="utf-8")
    env = {"SALESOPS_DATABASE_URL": hub.db_url, "SALESOPS_DATA_DIR": str(tmp_path / "d"),
           "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "deployments.cli", "rebates", "replay",
                          "--policy", str(draft), "--from", "2026-10", "--to", "2026-10",
                          "--json"], cwd=ROOT, capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["total"] == {"published": "1280.00", "draft": "1920.00", "change": "640.00"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(DRAFT.replace("tiers:", "tires:"), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "deployments.cli", "rebates", "replay",
                          "--policy", str(bad), "--from", "2026-10", "--to", "2026-10"],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2 and "tires" in run.stderr
