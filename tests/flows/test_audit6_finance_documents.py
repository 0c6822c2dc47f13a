"""Audit round 6: what finance reads of a settlement through `salesops settle`, checked by
hand — the confirmed documents say when and by whom they were confirmed."""
from __future__ import annotations

import datetime as dt
import json

import openpyxl
import pytest

from tests.rebate_support import clock_from, customer_id, publish, signed_order
from tests.support import in_process_cli

D = dt.date
POLICY = """
code: A6-2026
name: 审计六季度返利
effective_from: 2026-10-01
rules:
  - id: quarter
    name: 季度阶梯
    clause: 第二条
    measure: amount
    period: quarter
    style: retroactive
    tiers:
      - {from: 0, to: 100000, rate: 1%}
      - {from: 100000, rate: 3%}
    priority: 5
    stacking: stack
"""


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


def test_the_confirmed_workbook_names_the_confirmation_date_and_person(hub, cli):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    code, out, err = cli("settle", "--month", "2026-10", "--json")
    assert code == 0, err
    clock_from(D(2026, 11, 9))  # finance confirms four days later
    code, out, err = cli("settle", "--month", "2026-10", "--confirm", "1", "--by",
                         "finance-01", "--json")
    assert code == 0, err
    made = json.loads(out)["documents"]
    props = openpyxl.load_workbook(made["workbook"]).properties
    # as the confirmed statement does (供方已确认（2026年11月9日）): a workbook passed on
    # without its folder still tells the confirmed figures from the draft's, and since when
    assert "已确认 2026年11月9日 孙丽（finance-01）" in props.title
    assert "状态：已确认 2026年11月9日" in props.description
    ws = openpyxl.load_workbook(made["workbook"])["明细"]
    assert "已确认 2026年11月9日" in ws.oddHeader.center.text
