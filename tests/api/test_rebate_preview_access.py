"""The sales-ops clerk previews order rebates (round 13): he writes the policies and checks
them on real orders, so the preview is open to him for any customer."""
from __future__ import annotations


from api.auth import issue_token
from tests.rebate_support import customer_id, publish

POLICY = """
code: T-OPS
name: 测试监护返利
effective_from: 2026-10-01
rules:
  - id: flat
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 1
    stacking: stack
"""


def test_the_sales_ops_clerk_may_preview_any_customer(hub, client):
    publish(hub.db_url, POLICY)
    for name in ("江苏康达医疗设备有限公司", "广州华南医药贸易有限公司"):
        body = {"customer_id": customer_id(hub.db_url, name), "order_date": "2026-11-20",
                "lines": [{"sku": "MON-M8", "quantity": 1}]}
        auth = {"Authorization": f"Bearer {issue_token(hub.settings, 'ops-01')}"}
        r = client.post("/rebates/preview", json=body, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["amount"] == "256.00"  # 12,800 × 2 %
        # other back-office roles still may not
        other = {"Authorization": f"Bearer {issue_token(hub.settings, 'legal-01')}"}
        assert client.post("/rebates/preview", json=body, headers=other).status_code == 403
