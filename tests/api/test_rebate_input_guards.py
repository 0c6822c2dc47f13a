"""The rebate doors against what a person mistypes: a misspelt field of the preview is
refused (not previewed at list price or for today), a mistyped rep id on finance's board is
"no such rep" (404, not a permission problem) while a rep or a manager is refused it as any
other rep, spaces around a pasted rep or region are not part of it, and a policy document's
`%YAML 2.0` line or `null:` key is explained in Chinese, named as written."""
from __future__ import annotations

import html

import pytest

from tests.api.test_rebate_board import HTML, bearer
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


def test_a_mistyped_rep_is_no_such_rep_for_those_who_may_see_every_rep(hub, client, world):
    for who in ("finance-01", "admin"):
        for url in ("/rebates/board/data", "/rebates/board/orders?status=pending"):
            r = client.get(f"{url}{'&' if '?' in url else '?'}rep=rep-zhangwie",
                           headers=bearer(hub, who))
            assert r.status_code == 404, (who, url, r.text)
            assert r.json()["error"] == {"code": "unknown_rep",
                                         "message": "没有编号为 rep-zhangwie 的销售"}
        page = client.get("/rebates/board?rep=rep-zhangwie", headers=bearer(hub, who) | HTML)
        assert page.status_code == 404
        assert "未找到" in page.text and "无权查看" not in page.text
        assert html.escape("没有编号为 rep-zhangwie 的销售") in page.text
        assert "请联系系统管理员" not in page.text  # not a permission to ask for
    # those who may not see every rep are refused an unknown one as any other (nothing told
    # about who exists): a rep as for a colleague, a manager as for one of another region
    for who, why in (("rep-zhangwei", "销售只能查看本人的返利"),
                     ("mgr-east", "rep-zhangwie不在华东大区")):
        r = client.get("/rebates/board/data?rep=rep-zhangwie", headers=bearer(hub, who))
        assert r.status_code == 403 and r.json()["error"] == {"code": "forbidden",
                                                              "message": why}


def test_spaces_around_an_asked_for_rep_or_region_are_not_part_of_it(hub, client, world):
    auth = bearer(hub, "finance-01")
    plain = client.get("/rebates/board/data?rep=rep-zhangwei", headers=auth).json()
    spaced = client.get("/rebates/board/data?rep=%20rep-zhangwei%20", headers=auth)
    assert spaced.status_code == 200, spaced.text
    assert spaced.json() == plain
    east = client.get("/rebates/board/data?region=华东", headers=auth).json()
    spaced = client.get("/rebates/board/data?region=%20华东%E3%80%80", headers=auth)
    assert spaced.status_code == 200, spaced.text
    assert spaced.json() == east
    blank = client.get("/rebates/board/data?rep=%20%20", headers=auth)  # nothing asked for
    assert blank.status_code == 200 and blank.json()["scope"]["label"] == "全部返利"
    # a rep's own id pasted with spaces is his own board, not someone else's
    r = client.get("/rebates/board/data?rep=%20rep-zhangwei", headers=bearer(hub, "rep-zhangwei"))
    assert r.status_code == 200, r.text


def _published(client, hub, document: str):
    return client.post("/rebates/policies", content=document.encode(), headers={
        **token(hub, "ops-01"), "Content-Type": "text/plain"})


def test_a_yaml_version_line_is_explained_in_chinese(hub, client):
    r = _published(client, hub, "%YAML 2.0\n---\n" + POLICY.lstrip())
    assert r.status_code == 422
    [problem] = r.json()["error"]["details"]
    assert problem["message"] == ("YAML 格式错误，第 1 行第 1 列：不支持的 YAML 版本："
                                  "只能读取 YAML 1.x，请删去开头的“%YAML …”一行")
    r = _published(client, hub, "%YAML 1.1\n%YAML 1.1\n---\n" + POLICY.lstrip())
    [problem] = r.json()["error"]["details"]
    assert "“%”指令重复" in problem["message"] and "YAML directive" not in problem["message"]


@pytest.mark.parametrize("key", ["null", "~", "Null"])
def test_a_null_key_is_named_as_written(hub, client, key):
    r = _published(client, hub, POLICY.replace("name: 测试监护返利政策", f"{key}: 测试监护返利政策"))
    assert r.status_code == 422
    fields = {d["field"]: d["message"] for d in r.json()["error"]["details"]}
    assert "None" not in fields and fields[key].startswith("未知字段")


def test_an_empty_key_is_said_to_be_empty(hub, client):
    r = _published(client, hub, POLICY.replace("name: 测试监护返利政策", '"": 测试监护返利政策'))
    assert r.status_code == 422
    messages = [d["message"] for d in r.json()["error"]["details"]]
    assert "键不能为空：冒号前须写字段名" in messages


@pytest.mark.parametrize("day", ["2027-02-29", "2027-13-01", "2026-04-31"])
def test_a_day_the_calendar_lacks_is_said_so_not_a_format_problem(hub, client, kangda, day):
    body = {"customer_id": kangda, "order_date": day,
            "lines": [{"sku": "MON-M8", "quantity": 10}]}
    r = client.post("/rebates/preview", json=body, headers=token(hub, "rep-zhangwei"))
    assert r.status_code == 422, r.text
    [detail] = r.json()["error"]["details"]
    assert detail["field"] == "body.order_date"
    assert detail["message"] == f"不是有效日期：{day}（格式正确，但日历上没有这一天）"
    body["order_date"] = "2027/02/28"  # the format itself: said as before
    r = client.post("/rebates/preview", json=body, headers=token(hub, "rep-zhangwei"))
    assert r.json()["error"]["details"][0]["message"] == "日期格式应为 YYYY-MM-DD"
