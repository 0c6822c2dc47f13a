"""`salesops demo --json` end to end: local Prefect server, served deployments, the API,
five webhooks, one signature through the built-in page; nothing left running."""
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
    assert len(orders) == 5
    assert sum(o["new_customer"] for o in orders) == 1
    assert sum(o["stock_short"] for o in orders) == 1
    assert [o["stage"] for o in orders].count("开票中") == 1
    assert all(Path(o["quote_pdf"]).exists() for o in orders)
    assert summary["duplicate_delivery"] == {"status": 202, "same_order": True}
    assert len(summary["invoice_requests"]) == 1
    kinds = sorted(t["kind"] for t in summary["todos"])
    assert kinds == ["invoice_preparation", "legal_review", "purchase_alert"]
    # the API and the Prefect server it started are gone
    for url in (summary["api"] + "/healthz", summary["prefect_ui"] + "/api/health"):
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=5)
