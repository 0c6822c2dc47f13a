"""A clerk publishes a policy written the way people write dates and copy text (audit round
5): through the API and `salesops rebates publish` the refusal names the field and says how
to write it, and nothing is published."""
from __future__ import annotations

import json

import pytest

from api.auth import issue_token
from tests.support import in_process_cli

POLICY = """\
code: T-CLERK
name: 华东区A类经销商专项返利
effective_from: 2026/10/1
rules:
  - id: east-a
    applies_to: {regions: [华东], customer_tiers: [A]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 1%}]
    priority: 1
    stacking: stack
"""
DATE_HINT = "（“2026/10/1”请写成 2026-10-01）"


@pytest.fixture
def cli(hub, monkeypatch, capsys, tmp_path):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, tmp_path / "data")


def auth(hub) -> dict:
    return {"Authorization": f"Bearer {issue_token(hub.settings, 'ops-01')}"}


def test_the_api_names_the_field_says_how_to_write_it_and_publishes_nothing(hub, client):
    spreadsheet = {"code": "T-SHEET", "name": "表格导出的政策", "effective_from": 46296,
                   "rules": [{"id": "flat", "measure": "amount", "period": "month",
                              "style": "retroactive", "priority": 1, "stacking": "stack",
                              "tiers": [{"from": 0, "rate": "2%"}]}]}
    for body, content_type, field, hint in (
            (POLICY.encode(), "text/plain", "effective_from", DATE_HINT),
            (json.dumps(spreadsheet).encode(), "application/json", "effective_from",
             "（像是 Excel 的日期序号，即 2026-10-01：请写成 2026-10-01）"),
            (POLICY.replace("effective_from: 2026/10/1", "effective_from: 2026-10-01")
             .replace("measure: amount", "measure: ａｍｏｕｎｔ").encode(), "text/plain",
             "rules[0].measure", "（“ａｍｏｕｎｔ”请写成 amount）")):
        r = client.post("/rebates/policies", content=body,
                        headers={**auth(hub), "Content-Type": content_type})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "invalid_policy" and error["message"] == "返利政策文档有误，未发布"
        assert [d["field"] for d in error["details"]] == [field]
        assert error["details"][0]["message"].endswith(hint)
    assert client.get("/rebates/policies", headers=auth(hub)).json() == []


def test_the_cli_refuses_with_the_hint_and_publishes_nothing(cli, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    code, out, err = cli("rebates", "publish", path, "--by", "ops-01")
    assert code == 2 and out == ""
    assert f"effective_from: 日期格式应为 YYYY-MM-DD（如 2027-01-01），实为 '2026/10/1'{DATE_HINT}" in err
    code, out, _ = cli("rebates", "list")
    assert code == 0 and out.strip() == "尚未发布任何返利政策。"
    path.write_text(POLICY.replace("effective_from: 2026/10/1", "effective_from: 2026-10-01"),
                    encoding="utf-8")
    code, out, err = cli("rebates", "publish", path, "--by", "ops-01")
    assert code == 0, err
    assert "已发布：T-CLERK《华东区A类经销商专项返利》第 1 版，2026-10-01 起生效。" in out
