"""A year of a distributor business in a fresh database, for the rebate benches: 2,000
customers with a skewed share of 100,000 signed orders (1,000,000 order lines), deliveries
(some partial, some late), returns, monthly invoices and payments, and three policies.

Written with plain executemany: the point is the settlement's speed, not the inserts'."""
from __future__ import annotations

import datetime as dt
import random
import time
from decimal import Decimal
from pathlib import Path
from string import Template

import sqlalchemy as sa

from models import (
    Customer, Delivery, IntentOrder, IntentOrderLine, Payment, Product, Quote,
    ReceivableInvoice, SalesReturn, Staff,
)
from models.base import SHANGHAI
from models.db import get_engine, migrate
from models.names import normalize_name

REGIONS = ["华东", "华南", "华北", "西南"]
LINES = ["监护", "输注", "消毒", "影像", "耗材"]
FIRST_DAY = dt.date(2025, 11, 1)
DAYS = 365

POLICY_TEMPLATE = Path(__file__).resolve().parent.parent / "deployments" / "sample_data" \
    / "policies" / "demo-base.yaml.tmpl"
POLICIES = {
    "DEMO-BASE": Template(POLICY_TEMPLATE.read_text(encoding="utf-8")).substitute(
        start="2025-01-01"),
    "BENCH-CONS": """
code: BENCH-CONS
name: 耗材分段累进返利政策
effective_from: 2025-01-01
rules:
  - id: consumables
    name: 耗材月度分段累进
    clause: 第一条
    applies_to: {product_lines: [耗材]}
    measure: amount
    period: month
    style: marginal
    tiers:
      - {from: 0, to: 20000, rate: 1%}
      - {from: 20000, to: 100000, rate: 3%}
      - {from: 100000, rate: 5%}
    priority: 20
    stacking: exclusive
""",
}


def _batches(rows, size=20000):
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def build(url: str, orders: int = 100_000, lines: int = 1_000_000, customers: int = 2000,
          seed: int = 20261127, say=print) -> dict:
    """Fill an empty database at `url`; returns what was written."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    migrate(url)
    engine = get_engine(url)
    now = dt.datetime(2026, 11, 27, tzinfo=dt.timezone.utc)
    staff, reps = [], []
    for r, region in enumerate(REGIONS):
        staff.append({"id": f"mgr-{r}", "name": f"经理{r}", "role": "sales_manager",
                      "email": f"mgr{r}@example.com", "region": region, "manager_id": None})
    for i in range(40):
        region = REGIONS[i % 4]
        reps.append((f"rep-{i:02d}", region))
        staff.append({"id": f"rep-{i:02d}", "name": f"销售{i:02d}", "role": "rep",
                      "email": f"rep{i}@example.com", "region": region,
                      "manager_id": f"mgr-{i % 4}"})
    products = []
    for i in range(60):
        line = LINES[i % len(LINES)]
        price = (Decimal(rng.randrange(2000, 30000)) / 100 if line == "耗材"
                 else Decimal(rng.randrange(300, 3000)) * 10)
        products.append({"sku": f"SKU-{i:03d}", "model": f"M{i:03d}", "name": f"产品{i:03d}",
                         "product_line": line, "unit": "台", "list_price": price,
                         "tax_rate": Decimal("0.13"), "active": True})
    customer_rows = []
    for c in range(1, customers + 1):
        region = REGIONS[c % 4]
        name = f"{region}样本{c:05d}医疗器械有限公司"
        customer_rows.append({"id": c, "legal_name": name, "name_key": normalize_name(name),
                              "tier": rng.choice("AABBBCCCCD"), "region": region,
                              "origin": "imported", "qualification": "approved",
                              "created_at": now, "updated_at": now})
    # a few big customers and a long tail (Zipf-like weights)
    weights = [1 / (rank ** 0.9) for rank in range(1, customers + 1)]
    rng.shuffle(weights)
    # lines per order: 1–19 (10 on average), then nudged so that they add up to `lines`
    counts = [rng.randint(1, 19) for _ in range(orders)]
    diff = lines - sum(counts)
    while diff:
        i = rng.randrange(orders)
        step = 1 if diff > 0 else -1
        if 1 <= counts[i] + step <= len(products):
            counts[i] += step
            diff -= step
    order_rows, line_rows, quote_rows, delivery_rows, return_rows = [], [], [], [], []
    for n in range(orders):
        cid = rng.choices(range(1, customers + 1), weights)[0] if n % 1000 else 1 + n % customers
        rep, _ = reps[cid % len(reps)]
        day = FIRST_DAY + dt.timedelta(days=rng.randrange(DAYS))
        oid = f"IOB{n:07d}"
        count = counts[n]
        created = dt.datetime.combine(day, dt.time(10), SHANGHAI)
        order_rows.append({"id": oid, "event_id": f"b{n}", "sender_id": "bench",
                           "customer_name": customer_rows[cid - 1]["legal_name"],
                           "customer_id": cid, "order_date": day, "rep_id": rep,
                           "status": "invoicing", "stock_short": False, "attempts": 0,
                           "created_at": created, "updated_at": created})
        signed_on = day + dt.timedelta(days=rng.randrange(4))
        total = Decimal("0")
        for line_no, p in enumerate(rng.sample(products, count), start=1):
            qty = rng.randint(10, 200) if p["product_line"] == "耗材" else rng.randint(1, 3)
            total += p["list_price"] * qty
            line_rows.append({"order_id": oid, "line_no": line_no, "sku": p["sku"],
                              "model": p["model"], "name": p["name"], "quantity": qty,
                              "unit": p["unit"], "unit_price": p["list_price"],
                              "tax_rate": p["tax_rate"]})
            roll = rng.random()
            if roll < 0.02:
                continue  # not delivered yet
            first_qty = qty if roll > 0.07 or qty == 1 else qty // 2
            delivered = signed_on + dt.timedelta(days=rng.randrange(12))
            delivery_rows.append({"delivery_no": f"D{n}", "order_id": oid, "line_no": line_no,
                                  "quantity": first_qty, "delivered_on": delivered,
                                  "source": "bench", "recorded_at": now})
            if first_qty < qty:
                delivery_rows.append({"delivery_no": f"D{n}b", "order_id": oid,
                                      "line_no": line_no, "quantity": qty - first_qty,
                                      "delivered_on": delivered + dt.timedelta(days=20),
                                      "source": "bench", "recorded_at": now})
            if rng.random() < 0.015:
                return_rows.append({"return_no": f"R{n}-{line_no}", "order_id": oid,
                                    "line_no": line_no, "quantity": rng.randint(1, first_qty),
                                    "returned_on": delivered + dt.timedelta(
                                        days=rng.randrange(5, 40)),
                                    "kind": rng.choice(["return", "exchange"]),
                                    "source": "bench", "recorded_at": now})
        quote_rows.append({"code": f"QB{n:07d}", "order_id": oid, "customer_id": cid,
                           "total_amount": total, "tax_amount": Decimal("0"),
                           "valid_until": day + dt.timedelta(days=15), "status": "signed",
                           "signed_at": dt.datetime.combine(signed_on, dt.time(15), SHANGHAI),
                           "created_at": created})
    invoices, payments = [], []
    for c in range(1, customers + 1):
        for m in range(13):
            due = dt.date(2025 + (10 + m) // 12, (10 + m) % 12 + 1, 15)
            number = f"INVB{c:05d}{m:02d}"
            amount = Decimal(rng.randrange(5000, 60000))
            invoices.append({"invoice_no": number, "customer_id": c,
                             "issued_on": due - dt.timedelta(days=30), "due_on": due,
                             "amount": amount, "source": "bench", "recorded_at": now})
            late = rng.random() < 0.15
            payments.append({"payment_no": f"PB{c:05d}{m:02d}", "invoice_no": number,
                             "customer_id": c, "amount": amount,
                             "paid_on": due + dt.timedelta(days=20 if late else -2),
                             "source": "bench", "recorded_at": now})
    say(f"generated {len(order_rows):,} orders, {len(line_rows):,} lines, "
        f"{len(delivery_rows):,} deliveries, {len(return_rows):,} returns "
        f"in {time.perf_counter() - t0:.1f}s")
    t1 = time.perf_counter()
    with engine.begin() as conn:
        for table, rows in ((Staff, staff), (Product, products), (Customer, customer_rows),
                            (IntentOrder, order_rows), (IntentOrderLine, line_rows),
                            (Quote, quote_rows), (Delivery, delivery_rows),
                            (SalesReturn, return_rows), (ReceivableInvoice, invoices),
                            (Payment, payments)):
            for batch in _batches(rows):
                conn.execute(sa.insert(table.__table__), batch)
    if url.startswith("sqlite"):
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    say(f"inserted in {time.perf_counter() - t1:.1f}s")
    return {"orders": len(order_rows), "lines": len(line_rows), "customers": customers,
            "deliveries": len(delivery_rows), "returns": len(return_rows)}


def publish_policies(url: str) -> None:
    from flows.policies import publish_policy

    person = Staff(id="ops-bench", name="运营", role="sales_ops", email="ops@example.com")
    for text in POLICIES.values():
        publish_policy(url, text, person)
