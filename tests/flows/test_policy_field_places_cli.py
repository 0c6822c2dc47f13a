"""`salesops rebates publish` refuses a policy whose fields sit at the wrong level, carry
their Chinese names or hold a decimal comma, exits non-zero with each field's path and what
to write, and publishes nothing; the corrected file (thousands separators kept) publishes."""
from __future__ import annotations

import json

import pytest

from tests.support import in_process_cli

POLICY = """\
code: T-PLACES
name: 华东区阶梯返利
生效日期: 2026-10-01
rules:
  - id: east
    applies_to:
      regions: [华东]
      rate: 1%
    measure: amount
    period: month
    style: retroactive
    tiers:
      - {from: 0, to: "1,000,000", rate: "12,5%"}
      - {from: "1,000,000", rate: 百分之十五}
    priority: 1
    stacking: stack
"""


@pytest.fixture
def cli(hub, monkeypatch, capsys, tmp_path):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, tmp_path / "data")


def test_publish_refuses_with_where_each_field_goes_and_publishes_nothing(cli, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    code, out, err = cli("rebates", "publish", path, "--by", "ops-01")
    assert code == 2 and out == "", err
    assert "有 4 处问题，未发布" in err, err
    for line in (
            "生效日期: 字段“生效日期”无法识别：请写作 effective_from",
            "rules[0].applies_to.rate: 不属于此处：rate 应写在 rules[i].tiers[j] 下（与 from、to 同级）",
            "rules[0].tiers[0].rate: 应为数字，实为 '12,5%'（逗号不能作小数点，小数点请用半角“.”："
            "如指 12.5%，请写成 12.5%）",
            "rules[0].tiers[1].rate: 应为数字，实为 '百分之十五'（“百分之十五”请写成 15%）"):
        assert f"  - {line}\n" in err, err
    assert "Traceback" not in err
    code, out, _ = cli("rebates", "list")
    assert code == 0 and out.strip() == "尚未发布任何返利政策。"

    fixed = (POLICY.replace("生效日期", "effective_from").replace("      rate: 1%\n", "")
             .replace('"12,5%"', "12.5%").replace("百分之十五", "15%"))
    path.write_text(fixed, encoding="utf-8")
    code, out, err = cli("rebates", "publish", path, "--by", "ops-01")
    assert code == 0, err
    code, out, _ = cli("rebates", "show", "T-PLACES", "--json")
    assert code == 0
    tiers = json.loads(out)["spec"]["rules"][0]["tiers"]
    # 1,000,000 read as the amount it groups, kept as exact decimal text
    assert tiers == [{"from": "0", "to": "1000000", "rate": "0.125"},
                     {"from": "1000000", "rate": "0.15"}]
