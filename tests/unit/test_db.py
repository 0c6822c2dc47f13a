"""Database plumbing: the API process leaves WAL checkpoints to the background runs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from models.db import get_engine, leave_checkpoints_to_others
url = sys.argv[1]
with get_engine(url).connect() as c:
    before = c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
url2 = url + "2"
leave_checkpoints_to_others()
with get_engine(url2).connect() as c:
    after = c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
print(before, after)
"""


def test_api_process_connections_do_not_checkpoint(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, f"sqlite:///{tmp_path / 'a.db'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1000", "0"]
