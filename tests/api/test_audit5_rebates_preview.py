"""The preview at order entry as a rep meets it (audit round 5): who may see a customer's
volumes and payment rate — an unowned customer only in the rep's own region, and a rep
whose account has no region has none."""
from __future__ import annotations

import datetime as dt


from api.auth import issue_token
from models import Customer, Staff
from models.db import session_scope
from tests.rebate_support import customer_id, publish

POLICY = """
code: T-ACCESS
name: 测试监护返利
effective_from: 2026-10-01
rules:
  - id: flat
    clause: 第一条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 1
    stacking: stack
"""


def preview(hub, client, who: str, customer: int):
    body = {"customer_id": customer, "order_date": "2026-11-20",
            "lines": [{"sku": "MON-M8", "quantity": 1}]}
    return client.post("/rebates/preview", json=body,
                       headers={"Authorization": f"Bearer {issue_token(hub.settings, who)}"})


def test_an_unowned_customer_is_previewed_only_by_a_rep_of_its_region(hub, client):
    """A customer with no owner and no region (an order that came without a rep) was open to
    every rep whose account had no region set either: None matched None."""
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    with session_scope(hub.db_url) as s:
        s.add(Staff(id="rep-noregion", name="未设大区的销售", role="rep",
                    email="noregion@example.com", region=None))
        customer = s.get(Customer, kangda)
        customer.owner_rep_id, customer.region = None, None
        s.add(customer)
    r = preview(hub, client, "rep-noregion", kangda)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    assert "不在您的负责范围内" in r.json()["error"]["message"]
    # an unowned customer of a region: its region's reps may, the others may not
    with session_scope(hub.db_url) as s:
        customer = s.get(Customer, kangda)
        customer.region = "华东"
        s.add(customer)
    assert preview(hub, client, "rep-zhangwei", kangda).status_code == 200  # 华东
    assert preview(hub, client, "rep-lina", kangda).status_code == 403  # 华南
    assert preview(hub, client, "rep-noregion", kangda).status_code == 403
    r = preview(hub, client, "rep-zhangwei", kangda)
    assert (r.json()["amount"], r.json()["rules"][0]["clause"]) == ("256.00", "第一条")
    assert r.json()["order_date"] == dt.date(2026, 11, 20).isoformat()
