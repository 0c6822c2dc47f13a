"""Webhook accept latency at a steady 200 req/s, and end-to-end time of a 1,000-order burst,
on the full embedded stack (local Prefect server, served deployments, API, SQLite).

    .venv/bin/python -m bench.webhook_burst [--rate 200] [--seconds 5] [--burst 1000]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from api.webhooks import signature_headers
from bench.common import post_signed, random_order, summary_ms, wait_processed
from deployments.seed import seed_sample_data
from deployments.stack import LocalStack
from models.db import migrate

SENDER = "bench"


def raw_request(host: str, port: int, secret: str, payload: dict) -> bytes:
    """A complete, signed HTTP/1.1 request, built before the clock starts so that the
    measuring client spends almost no CPU per request."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    signed = "".join(f"{name}: {value}\r\n"
                     for name, value in signature_headers(SENDER, secret, body).items())
    head = (f"POST /webhooks/intent-orders HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{signed}\r\n")
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, float]]:
    """Status and the Server-Timing durations (seconds) of one response."""
    status_line = await reader.readline()
    length, timing = 0, {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "server-timing":
            for part in value.split(","):
                metric, _, dur = part.strip().partition(";dur=")
                timing[metric] = float(dur) / 1000
    await reader.readexactly(length)
    return int(status_line.split()[1]), timing


def steady_rate(api_url: str, secret: str, rate: int, seconds: float, rng, tag: str,
                connections: int = 32) -> list[float]:
    """Open loop over keep-alive connections: request i is due at t0 + i/rate whatever the
    earlier answers do, and its latency counts from that instant (no coordinated omission)."""
    host, port = api_url.removeprefix("http://").split(":")
    total = int(rate * seconds)
    requests = [raw_request(host, int(port), secret, random_order(rng, i, tag))
                for i in range(total)]
    latencies = [0.0] * total
    server: dict[str, list[float]] = {"db": [], "total": []}

    async def run():
        queue: asyncio.Queue[int] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.2

        async def worker():
            reader, writer = await asyncio.open_connection(host, int(port))
            while True:
                i = await queue.get()
                if i < 0:
                    writer.close()
                    return
                writer.write(requests[i])
                status, timing = await _read_response(reader)
                latencies[i] = loop.time() - (t0 + i / rate)
                for metric in server:
                    server[metric].append(timing.get(metric, 0.0))
                if status != 202:
                    raise RuntimeError(f"request {i}: HTTP {status}")

        workers = [asyncio.create_task(worker()) for _ in range(connections)]
        for i in range(total):
            delay = t0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(i)
        for _ in workers:
            queue.put_nowait(-1)
        await asyncio.gather(*workers)

    asyncio.run(run())
    return latencies, server


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


def reset_database(db_url: str) -> None:
    import sqlalchemy as sa

    from models.db import get_engine

    with get_engine(db_url).begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--data-dir", default="var/bench-webhook")
    ap.add_argument("--database-url", default="",
                    help="default: a fresh SQLite file; a PostgreSQL URL is emptied first")
    args = ap.parse_args(argv)
    data_dir = Path(args.data_dir).resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    secret = secrets.token_hex(16)
    db_url = args.database_url or f"sqlite:///{data_dir / 'salesops.db'}"
    if args.database_url:
        reset_database(db_url)
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

        # A: 200 req/s for 5 s into an idle hub (the batch runs start as it ends)
        lat, server = steady_rate(stack.api_url, secret, args.rate, args.seconds, rng, "A")
        accept, in_handler, in_db = (summary_ms(lat), summary_ms(server["total"]),
                                     summary_ms(server["db"]))
        total = 20 + len(lat)
        wait_processed(db_url, total, 600)
        # B: 200 req/s for 4x as long: intake shares the 2 cores and the database with the
        # runs that work off the growing backlog
        lat_b, server_b = steady_rate(stack.api_url, secret, args.rate, args.seconds * 4, rng,
                                    "B")
        sustained, sustained_db = summary_ms(lat_b), summary_ms(server_b["db"])
        total += len(lat_b)
        wait_processed(db_url, total, 900)
        # C: a burst of 1,000 orders as fast as 16 senders go, until every quote is out
        send_s = burst(stack.api_url, secret, args.burst, rng)
        t0 = time.perf_counter() - send_s
        wait_processed(db_url, total + args.burst, 900)
        burst_s = time.perf_counter() - t0
    result = {
        "accept_latency": {**accept, "rate_per_s": args.rate,
                           "handler": in_handler, "database": in_db},
        "sustained_with_processing": {**sustained, "database": sustained_db},
        "burst": {"orders": args.burst, "send_s": round(send_s, 1),
                  "all_quoted_s": round(burst_s, 1),
                  "orders_per_s": round(args.burst / burst_s, 1)},
    }
    print(f"A  webhook accept at {args.rate} req/s ({accept['n']} requests): "
          f"p50 {accept['p50_ms']} ms, p99 {accept['p99_ms']} ms, max {accept['max_ms']} ms "
          f"(in the handler p99 {in_handler['p99_ms']} ms, database p99 {in_db['p99_ms']} ms)")
    print(f"B  sustained {args.rate} req/s while the backlog is processed ({sustained['n']} "
          f"requests): p50 {sustained['p50_ms']} ms, p99 {sustained['p99_ms']} ms "
          f"(database p99 {sustained_db['p99_ms']} ms)")
    print(f"C  burst of {args.burst} orders: sent in {send_s:.1f} s, all quoted after "
          f"{burst_s:.1f} s ({args.burst / burst_s:.1f} orders/s)")
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
