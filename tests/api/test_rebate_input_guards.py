"""The rebate doors against what a person mistypes: a misspelt field of the preview is
refused (not previewed at list price or for today), a mistyped rep id on finance's board is
"no such rep" (404, not a permission problem) while a rep or a manager is refused it as any
other rep, spaces around a pasted rep or region are not part of it, and a policy document's
`%YAML 2.0` line or `null:` key is explained in Chinese, named as written."""
from __future__ import annotations


import pytest

from tests.api.test_rebates import POLICY, token
from tests.board_support import board_world
from tests.rebate_support import customer_id, publish
from tests.support import order_payload, post_order


@pytest.fixture
def world(hub):
    return board_world(hub.db_url)


@pytest.fixture
def kangda(hub):
    publish(hub.db_url, POLICY)
    return customer_id(hub.db_url, "江苏康达医疗设备有限公司")


@pytest.mark.parametrize("change, field", [
    ({"lines": [{"sku": "MON-M8", "quantity": 10, "price": "9000"}]}, "body.lines.0.price"),
    ({"date": "2027-01-15"}, "body.date"),
])
def test_a_misspelt_preview_field_is_a_422_naming_it(hub, client, kangda, change, field):
    body = {"customer_id": kangda, "lines": [{"sku": "MON-M8", "quantity": 10}], **change}
    r = client.post("/rebates/preview", json=body, headers=token(hub, "rep-zhangwei"))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"] == [{"field": field, "problem": "extra_forbidden",
                                 "message": "未知字段"}]
    # spelt right, the same preview answers
    body = {"customer_id": kangda, "order_date": "2026-11-20",
            "lines": [{"sku": "MON-M8", "quantity": 10, "unit_price": "9000"}]}
    assert client.post("/rebates/preview", json=body,
                       headers=token(hub, "rep-zhangwei")).status_code == 200


def test_the_webhook_still_takes_lines_with_fields_it_does_not_read(hub, client):
    """The preview's strict line is its own: senders of intent orders are not broken."""
    payload = order_payload()
    payload["lines"][0]["remark"] = "门户系统的备注"
    assert post_order(client, payload).status_code == 202
