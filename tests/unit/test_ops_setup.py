"""What the ops engineer runs: the schedules Prefect gets from deployments/prefect.yaml, the
documented way to deploy with workers, `salesops serve` on a port already taken, and the
demo starting its API on a migrated database."""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from models.base import SHANGHAI

ROOT = Path(__file__).resolve().parents[2]


def schedules() -> dict[str, list]:
    from deployments.serve import load_deployments, runner_deployments

    return {d.name: [s.schedule for s in d.schedules or ()]
            for d in runner_deployments(load_deployments())}


def next_runs(schedule, after: dt.datetime, n: int) -> list[dt.datetime]:
    from prefect.server.schemas.schedules import CronSchedule

    cron = CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
    return [d.astimezone(SHANGHAI) for d in asyncio.run(cron.get_dates(n=n, start=after))]


def test_settle_month_runs_on_the_5th_at_2_in_shanghai_and_receivables_daily_at_1():
    found = schedules()
    [settle] = found["settle-month"]
    assert (settle.cron, settle.timezone) == ("0 2 5 * *", "Asia/Shanghai")
    # 31 January 16:30 UTC is already 1 February 00:30 in Shanghai
    after = dt.datetime(2026, 1, 31, 16, 30, tzinfo=dt.UTC)
    runs = next_runs(settle, after, 3)
    assert [r.replace(tzinfo=None) for r in runs] == [
        dt.datetime(2026, 2, 5, 2), dt.datetime(2026, 3, 5, 2), dt.datetime(2026, 4, 5, 2)]
    assert runs[0].astimezone(dt.UTC) == dt.datetime(2026, 2, 4, 18, tzinfo=dt.UTC)
    [sync] = found["receivables-sync"]
    assert [r.replace(tzinfo=None) for r in next_runs(sync, after, 2)] == [
        dt.datetime(2026, 2, 1, 1), dt.datetime(2026, 2, 2, 1)]
    assert found["intent-order"] == [] and found["signing-completed"] == []


def test_the_documented_worker_deploy_names_the_file_and_the_pool_of_prefect_yaml():
    import yaml

    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    deploy = re.search(r"`prefect deploy --all --prefect-file (\S+)`", text)
    assert deploy, "operations.md must say where prefect.yaml is"
    spec = yaml.safe_load((ROOT / deploy.group(1)).read_text(encoding="utf-8"))
    pools = {d["work_pool"]["name"] for d in spec["deployments"]}
    assert pools == {"salesops"} and "`prefect work-pool create salesops" in text
    assert "{{ $SALESOPS_HOME }}" in str(spec["pull"]) and "`SALESOPS_HOME`" in text


def test_serve_on_a_port_already_taken_says_so_before_starting_anything(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "SALESOPS_DATA_DIR": str(tmp_path / "data"),
               "SALESOPS_API_PORT": str(port)}
        env.pop("PREFECT_API_URL", None)
        run = subprocess.run([sys.executable, "-m", "deployments.cli", "serve"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith(f"错误：API 端口 127.0.0.1:{port} 已被占用")
    assert not (tmp_path / "data" / "logs").exists()  # no Prefect server was started


def test_the_demo_starts_its_api_on_a_migrated_database(tmp_path, monkeypatch):
    import deployments.demo as demo
    from models.db import schema_revision, schema_revisions

    seen = {}

    class Stack:
        def __init__(self, data_dir, env):
            seen["url"] = env["SALESOPS_DATABASE_URL"]

        def __enter__(self):
            seen["revision"] = schema_revision(seen["url"])
            raise RuntimeError("stop before starting anything")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(demo, "LocalStack", Stack)
    with pytest.raises(RuntimeError, match="stop before"):
        demo.run_demo(tmp_path / "demo")
    assert seen["revision"] == schema_revisions()[-1]


@pytest.mark.parametrize("backend, variable", [("finance", "SALESOPS_FINANCE_URL"),
                                               ("inventory", "SALESOPS_ERP_URL")])
def test_a_rest_backend_without_its_address_is_refused_in_words(tmp_path, backend, variable):
    """`salesops settle` with SALESOPS_FINANCE_BACKEND=rest and no URL: a Chinese message and
    exit 2 before anything is computed, not an httpx traceback after the lines are stored."""
    env = {**os.environ, "SALESOPS_DATA_DIR": str(tmp_path / "data"),
           f"SALESOPS_{backend.upper()}_BACKEND": "rest"}
    for name in ("SALESOPS_FINANCE_URL", "SALESOPS_ERP_URL"):
        env.pop(name, None)
    run = subprocess.run([sys.executable, "-m", "deployments.cli", "settle", "--month", "2026-10"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"{backend.upper()}_BACKEND=rest 时须设置 {variable}" in run.stderr
