"""A preview rates each order of the quarter on its own trailing three months, as the
settlement does: an earlier order of the quarter (two months back) is rated on invoices due
before its own month, not only on those the preview's month looks at."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flows.settlement import compute_month
from tests.api.test_rebate_board import bearer
from tests.rebate_support import clock_from, customer_id, invoice, publish, signed_order

KANGDA = "江苏康达医疗设备有限公司"
POLICY = """
code: T-P
name: 回款达标季度返利
effective_from: 2026-07-01
rules:
  - id: qpay
    applies_to: {product_lines: [监护], payment_rate: {min: 90%}}
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, to: 50000, rate: 1%}, {from: 50000, rate: 5%}]
    priority: 10
    stacking: stack
"""


def test_an_earlier_order_of_the_quarter_keeps_its_own_payment_rate(hub, client):
    """康达's invoices: ¥50,000 due 15 July paid late, ¥10,000 due 15 September paid on
    time. Its October order (¥38,400) is rated on July–September: 10,000 ÷ 60,000 = 16.67 %,
    under 90 %: it does not count. The December order (¥12,800) is rated on
    September–November: 100 %. So the quarter's qualifying volume is ¥12,800, tier 1 (1 %):
    the preview says ¥128.00, as December's settlement then pays — not 5 % of ¥51,200 with
    a tier top-up for October (the preview read only invoices from September on)."""
    clock_from(dt.date(2026, 7, 1))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, KANGDA)
    invoice(hub.db_url, kangda, dt.date(2026, 7, 15), "50000.00",
            paid=[(dt.date(2026, 8, 30), "50000.00")])
    invoice(hub.db_url, kangda, dt.date(2026, 9, 15), "10000.00",
            paid=[(dt.date(2026, 9, 10), "10000.00")])
    signed_order(hub.db_url, kangda, dt.date(2026, 10, 10), [("MON-M8", 3)])  # ¥38,400

    clock_from(dt.date(2026, 12, 20))
    r = client.post("/rebates/preview", json={
        "customer_id": kangda, "order_date": "2026-12-20",
        "lines": [{"sku": "MON-M8", "quantity": 1}]}, headers=bearer(hub, "finance-01"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["amount"] == "128.00", body
    assert "1%" in body["sentence"] and "5%" not in body["sentence"]

    signed_order(hub.db_url, kangda, dt.date(2026, 12, 20), [("MON-M8", 1)])
    clock_from(dt.date(2027, 1, 5))
    drafts = compute_month(hub.db_url, "2026-12").drafts
    assert [(d.amount, d.kind) for d in drafts] == [(Decimal("128.00"), "rebate")]
