"""The clerk checking a policy on an order typed by hand (audit round 6): a product code in
lower case or with a space was refused as 未知的物料编码 with no word of the code meant."""
from __future__ import annotations


from api.auth import issue_token
from tests.rebate_support import customer_id


def test_an_unknown_sku_names_the_code_meant(hub, client):
    body = {"customer_id": customer_id(hub.db_url, "江苏康达医疗设备有限公司"),
            "order_date": "2026-11-20",
            "lines": [{"sku": "mon-m8", "quantity": 1}, {"sku": "PUMP SP3", "quantity": 1},
                      {"sku": "NOPE-1", "quantity": 1}]}
    auth = {"Authorization": f"Bearer {issue_token(hub.settings, 'ops-01')}"}
    r = client.post("/rebates/preview", json=body, headers=auth)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "unknown_sku"
    assert error["message"] == ("未知的物料编码：mon-m8（是否应为 MON-M8？）、"
                                "PUMP SP3（是否应为 PUMP-SP3？）、NOPE-1"), error
