"""`salesops … --json | head`: when the reader stops before the hub has written everything, the
command ends quietly with 141 (128 + SIGPIPE, as `cat` killed by SIGPIPE would), not with a
Python BrokenPipeError traceback — whether Python buffers its output or not."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from tests.flows.test_rebate_replay import DRAFT, PUBLISHED, ROOT
from tests.rebate_support import customer_id, publish, signed_order


@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "unbuffered"])
def test_replay_json_into_a_pipe_closed_early_ends_quietly(hub, tmp_path, unbuffered):
    publish(hub.db_url, PUBLISHED)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, dt.date(2026, 10, 10), [("MON-M8", 5)])
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT, encoding="utf-8")
    env = {"SALESOPS_DATABASE_URL": hub.db_url, "SALESOPS_DATA_DIR": str(tmp_path / "d"),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": unbuffered}
    run = subprocess.Popen([sys.executable, "-m", "deployments.cli", "rebates", "replay",
                            "--policy", str(draft), "--from", "2026-10", "--to", "2026-10",
                            "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    # the reader is gone (`| head -c 0`) before the command writes: it starts up for seconds
    run.stdout.close()
    try:
        err = run.stderr.read().decode("utf-8", "replace")
        code = run.wait(timeout=120)
    finally:
        run.kill()
        run.stderr.close()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert err == "" and code == 141
