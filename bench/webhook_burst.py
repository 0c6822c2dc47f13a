"""Webhook accept latency at a steady 200 req/s, and end-to-end time of a 1,000-order burst,
on the full embedded stack (local Prefect server, served deployments, API, SQLite).

    .venv/bin/python -m bench.webhook_burst [--rate 200] [--seconds 5] [--burst 1000]
"""
from __future__ import annotations

import argparse
import json
import random
import secrets
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import post_signed, random_order, summary_ms, wait_processed
from connectors.settings import Settings
from deployments.seed import seed_sample_data
from deployments.stack import LocalStack
from models.db import migrate

SENDER = "bench"


def steady_rate(api_url: str, secret: str, rate: int, seconds: float, rng) -> list[float]:
    """Open loop: request i is sent at t0 + i/rate whatever the earlier answers do, and its
    latency counts from that scheduled instant (no coordinated omission)."""
    total = int(rate * seconds)
    latencies: list[float] = [0.0] * total
    local = threading.local()
    payloads = [random_order(rng, i, "steady") for i in range(total)]
    t0 = time.perf_counter() + 0.2

    def one(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=api_url, timeout=30)
        due = t0 + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        r = post_signed(client, SENDER, secret, payloads[i])
        latencies[i] = time.perf_counter() - due
        if r.status_code != 202:
            raise RuntimeError(f"{r.status_code} {r.text}")

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(one, range(total)))
    return latencies


def burst(api_url: str, secret: str, n: int, rng) -> float:
    payloads = [random_order(rng, i, "burst") for i in range(n)]
    local = threading.local()

    def one(p):
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=api_url, timeout=60)
        r = post_signed(client, SENDER, secret, p)
        if r.status_code != 202:
            raise RuntimeError(f"{r.status_code} {r.text}")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, payloads))
    return time.perf_counter() - start


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--data-dir", default="var/bench-webhook")
    args = ap.parse_args(argv)
    data_dir = Path(args.data_dir).resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    secret = secrets.token_hex(16)
    db_url = f"sqlite:///{data_dir / 'salesops.db'}"
    env = {"SALESOPS_DATA_DIR": str(data_dir), "SALESOPS_DATABASE_URL": db_url,
           "SALESOPS_WEBHOOK_SENDERS": json.dumps({SENDER: secret})}
    migrate(db_url)
    seed_sample_data(db_url)
    rng = random.Random(20261126)
    with LocalStack(data_dir, env) as stack:
        # warm-up: first requests pay imports and connection set-up
        with httpx.Client(base_url=stack.api_url, timeout=30) as c:
            for i in range(20):
                post_signed(c, SENDER, secret, random_order(rng, i, "warm"))
        wait_processed(db_url, 20, 180)

        lat = steady_rate(stack.api_url, secret, args.rate, args.seconds, rng)
        accept = summary_ms(lat)
        steady_total = 20 + len(lat)
        steady_done = wait_processed(db_url, steady_total, 600)

        send_s = burst(stack.api_url, secret, args.burst, rng)
        t0 = time.perf_counter() - send_s
        wait_processed(db_url, steady_total + args.burst, 900)
        burst_s = time.perf_counter() - t0
    result = {
        "accept_latency": {**accept, "rate_per_s": args.rate},
        "steady_drain_after_last_request_s": round(steady_done, 1),
        "burst": {"orders": args.burst, "send_s": round(send_s, 1),
                  "all_quoted_s": round(burst_s, 1),
                  "orders_per_s": round(args.burst / burst_s, 1)},
        "settings": Settings().model_dump(include={"dispatch_batch_size",
                                                   "dispatch_interval_seconds"}),
    }
    print(f"webhook accept at {args.rate} req/s ({accept['n']} requests): "
          f"p50 {accept['p50_ms']} ms, p99 {accept['p99_ms']} ms, max {accept['max_ms']} ms")
    print(f"burst of {args.burst} orders: sent in {send_s:.1f} s, all quoted after "
          f"{burst_s:.1f} s ({args.burst / burst_s:.1f} orders/s)")
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
