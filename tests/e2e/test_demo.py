"""`salesops demo --json` end to end: local Prefect server, served deployments, the API,
seven webhooks (a new customer, a shortage, a short name the matcher links, a name held as a
suspected new customer), quotes with their expected rebate, one signature through the built-in
page, last month settled by the served settle-month deployment; nothing left running."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("SALESOPS_TEST_DATABASE_URL")),
    reason="the demo runs on its own SQLite database; covered by the SQLite run")


def test_demo_json_summary(tmp_path):
    data_dir = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "deployments.cli", "demo", "--json",
                          "--data-dir", str(data_dir)], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    orders = summary["orders"]
    assert len(orders) == 7
    assert sum(o["new_customer"] for o in orders) == 1
    assert sum(o["stock_short"] for o in orders) == 1
    assert [o["stage"] for o in orders].count("开票中") == 1
    quoted = [o for o in orders if not o["held"]]
    assert len(quoted) == 6 and all(Path(o["quote_pdf"]).exists() for o in quoted)
    assert all("本次订单返利比例" in o["rebate"] for o in quoted)
    linked = next(o for o in orders if o["typed_name"] == "沪申康医疗")
    assert linked["customer"] == "上海申康医疗科技有限公司"
    held = [o for o in orders if o["held"]]
    assert [o["typed_name"] for o in held] == ["苏州同济康复器械"] and held[0]["status"] == "on_hold"
    settlement = summary["settlement"]
    assert settlement["total"] == "1259.60" and settlement["lines"] == 2
    assert settlement["voucher_ref"] and len(settlement["documents"]["statements"]) == 2
    assert all(Path(p).exists() for p in settlement["documents"]["statements"])
    assert summary["duplicate_delivery"] == {"status": 202, "same_order": True}
    assert len(summary["invoice_requests"]) == 1
    kinds = sorted(t["kind"] for t in summary["todos"])
    assert kinds == ["invoice_preparation", "legal_review", "purchase_alert"]
    # the API and the Prefect server it started are gone
    for url in (summary["api"] + "/healthz", summary["prefect_ui"] + "/api/health"):
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=5)
