"""Shared bench helpers: figures, signed deliveries, waiting on the database."""
from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

from api.webhooks import signature_headers
from models.db import get_engine

KNOWN = ["江苏康达医疗设备有限公司", "康达医疗", "浙江仁和医疗器械有限公司", "仁和医疗",
         "广州华南医药贸易有限公司", "华南医贸", "上海申康医疗科技有限公司", "申康医疗"]
NEW = ["安徽济民医疗器械有限责任公司", "重庆渝康医疗器械有限公司"]
SKUS = ["MON-M8", "PUMP-SP3", "PUMP-VP5", "CONS-ECG10", "MON-M12"]


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder for a bench's database and files, removed when the bench ends
    (a settlement bench leaves a 1M-line database); SALESOPS_BENCH_KEEP=1 keeps it (said)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        if os.environ.get("SALESOPS_BENCH_KEEP") == "1":
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def fresh_database(url: str | None, work: Path) -> str:
    """The bench's database: `url` (PostgreSQL: its public schema emptied first, the bench
    builds it whole), else a SQLite file in `work`; printed without its credentials."""
    import sqlalchemy as sa

    from models.db import get_engine

    url = url or f"sqlite:///{work / 'bench.db'}"
    if url.startswith("postgresql"):
        with get_engine(url).begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    print(f"database: {url.split('@')[-1]}")
    return url


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(values: list[float]) -> dict:
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1),
            "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1)}


def random_order(rng: random.Random, n: int, tag: str) -> dict:
    name = rng.choice(NEW) if rng.random() < 0.02 else rng.choice(KNOWN)
    lines = [{"sku": sku, "quantity": rng.randint(1, 8)}
             for sku in rng.sample(SKUS, rng.randint(1, 3))]
    return {"event_id": f"bench-{tag}-{n}", "customer": {"name": name, "contact_name": "采购部"},
            "rep_id": rng.choice(["rep-zhangwei", "rep-lina"]), "lines": lines}


def post_signed(client: httpx.Client, sender: str, secret: str, payload: dict) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return client.post("/webhooks/intent-orders", content=body, headers={
        "Content-Type": "application/json", **signature_headers(sender, secret, body)})


def count_status(db_url: str, statuses: tuple[str, ...]) -> int:
    with get_engine(db_url).connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM intent_order WHERE status IN :s").bindparams(
            sa.bindparam("s", expanding=True)), {"s": list(statuses)}).scalar()


def wait_processed(db_url: str, total: int, timeout: float) -> float:
    """Seconds until `total` orders reached a final state (quoted/blocked)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if count_status(db_url, ("quoted", "blocked")) >= total:
            return time.monotonic() - start
        time.sleep(0.25)
    raise TimeoutError(f"only {count_status(db_url, ('quoted', 'blocked'))}/{total} processed")
