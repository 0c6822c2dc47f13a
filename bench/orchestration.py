"""Orchestration overhead: the intent-order flow under Prefect vs. the same steps as plain
function calls, on the same embedded connectors and the same kind of orders.

    .venv/bin/python -m bench.orchestration [--orders 300]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import time
from pathlib import Path

from sqlmodel import select

from api.schemas import IntentOrderIn
from api.webhooks import store_intent_order
from bench.common import random_order
from connectors.settings import Settings
from deployments.seed import seed_sample_data
from flows import order_steps
from flows.hub import build_hub, use_hub
from flows.intent_order import claim_orders
from models import IntentOrderLine
from models.db import migrate, session_scope


def make_orders(db_url: str, n: int, tag: str, rng) -> list[str]:
    ids = []
    for i in range(n):
        payload = random_order(rng, i, tag)
        body = json.dumps(payload, ensure_ascii=False).encode()
        _, answer, _ = store_intent_order(db_url, "bench", body,
                                          IntentOrderIn.model_validate(payload))
        ids.append(answer["order_id"])
    return ids


def plain_calls(hub, ids: list[str]) -> None:
    """The flow's work without Prefect: same claim, same steps, same order."""
    claimed = claim_orders(hub, ids, len(ids), "plain")
    for oid in claimed:
        order_steps.check_customer(hub, oid)
    with session_scope(hub.db_url) as s:
        skus = sorted(set(s.exec(select(IntentOrderLine.sku).where(
            IntentOrderLine.order_id.in_(claimed)))))
    available = hub.inventory.availability(skus)
    for oid in claimed:
        order_steps.check_stock(hub, oid, available)
    for step in (order_steps.render_quote, order_steps.request_signature,
                 order_steps.send_quote_mail):
        for oid in claimed:
            step(hub, oid)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--data-dir", default="var/bench-orchestration")
    args = ap.parse_args(argv)
    data_dir = Path(args.data_dir).resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    db_url = f"sqlite:///{data_dir / 'salesops.db'}"
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=db_url,
                        public_base_url="http://127.0.0.1:8000")
    migrate(db_url)
    seed_sample_data(db_url)
    hub = build_hub(settings)
    use_hub(hub)
    rng = random.Random(7)
    # warm both paths (imports, font, signing identity) before measuring
    plain_calls(hub, make_orders(db_url, 3, "warm", rng))

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect.testing.utilities import prefect_test_harness

    from flows.intent_order import process_intent_orders

    results = {}
    with prefect_test_harness(server_startup_timeout=120):
        process_intent_orders(order_ids=make_orders(db_url, 3, "warm-flow", rng))
        for n in (1, args.orders):
            ids = make_orders(db_url, n, f"plain-{n}", rng)
            t = time.perf_counter()
            plain_calls(hub, ids)
            plain = time.perf_counter() - t
            ids = make_orders(db_url, n, f"flow-{n}", rng)
            t = time.perf_counter()
            summary = process_intent_orders(order_ids=ids)
            flow = time.perf_counter() - t
            assert summary["quoted"] == n, summary
            results[n] = {"orders": n, "plain_s": round(plain, 2), "flow_s": round(flow, 2),
                          "overhead_s": round(flow - plain, 2),
                          "overhead_per_order_ms": round((flow - plain) / n * 1000, 1)}
            print(f"{n:>4} order(s): plain calls {plain:.2f} s, flow {flow:.2f} s, "
                  f"overhead {flow - plain:.2f} s ({(flow - plain) / n * 1000:.1f} ms/order)")
    use_hub(None)
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
