"""What-if replay of a draft policy over past orders, per customer and rep, before publishing."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from flows.hub import current_hub
from flows.rebate_replay import replay
from flows.settlement import settle_month
from models.rebates.policy import parse_policy_document
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

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
    # rows keyed for scripts as `settle --json` keys them: customer id, staff id
    assert out["customers"] == [{"name": "江苏康达医疗设备有限公司", "id": kangda,
                                 "published": "1280.00", "draft": "1920.00", "change": "640.00"}]
    assert [(r["id"], r["change"]) for r in out["reps"]] == [("rep-zhangwei", "640.00")]
    assert "id" not in out["by_month"][0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(DRAFT.replace("tiers:", "tires:"), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "deployments.cli", "rebates", "replay",
                          "--policy", str(bad), "--from", "2026-10", "--to", "2026-10"],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2 and "tires" in run.stderr


def test_a_replayed_month_takes_the_late_news_its_own_settlement_took(hub):
    """5 monitors of 2 September paid in September's run (1,280); a return of 2 dated 20
    September is recorded on 20 October, so October's run took 512 back. Replaying October
    after November was settled too, the published policies must give October's −512 again:
    the replay takes as news what was recorded since the runs before October, not since the
    latest run (5 December), which would hide the return."""
    db = hub.db_url
    clock_from(D(2026, 9, 1))
    publish(db, PUBLISHED.replace("2026-10-01", "2026-07-01"))
    kangda = customer_id(db, "江苏康达医疗设备有限公司")
    order = signed_order(db, kangda, D(2026, 9, 2), [("MON-M8", 5)])  # 64,000
    clock_from(D(2026, 10, 5))
    settle_month(current_hub(), "2026-09", documents=False)
    clock_from(D(2026, 10, 20))
    return_goods(db, order, 1, 2, D(2026, 9, 20))
    clock_from(D(2026, 11, 5))
    assert settle_month(current_hub(), "2026-10", documents=False).total == Decimal("-512.00")
    clock_from(D(2026, 12, 5))
    settle_month(current_hub(), "2026-11", documents=False)

    # version 2 of the policy, 3 % from 1 October: September's order stays under version 1
    result = replay(db, parse_policy_document(DRAFT), "2026-10", "2026-10")
    assert {k: (r.published, r.draft) for k, r in result.customers.items()} == {
        "江苏康达医疗设备有限公司": (Decimal("-512.00"), Decimal("-512.00"))}
