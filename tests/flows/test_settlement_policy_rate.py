"""`reports.statement_pdf.policy_rate` read from the inputs a settlement really stores: the
rate the explanation states, where due ÷ basis is off by the fen rounding; none where a cap
share or a span across tiers leaves no single rate."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlmodel import select

from flows.hub import current_hub
from flows.settlement import line_inputs, settle_month
from models import RebateLine
from models.db import session_scope
from reports.statement_pdf import policy_rate
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

D = dt.date
POLICY = """
code: RATE-2026
name: 比例展示测试政策
effective_from: 2026-10-01
rules:
  - id: base
    name: 监护基础返利
    clause: 第一条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 1%}]
    priority: 10
    stacking: stack
  - id: pump
    name: 输注分段累进
    clause: 第二条
    applies_to: {product_lines: [输注]}
    measure: amount
    period: month
    style: marginal
    tiers:
      - {from: 0, to: 10000, rate: 1%}
      - {from: 10000, rate: 2.5%}
    priority: 5
    stacking: stack
  - id: capped
    name: 输注封顶返利
    clause: 第三条
    applies_to: {product_lines: [输注]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    cap: {amount_per_period: 100}
    priority: 4
    stacking: stack
"""


@pytest.fixture(autouse=True)
def months_over():
    clock_from(D(2027, 1, 5))


def test_policy_rate_from_stored_inputs(hub):
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    small = signed_order(hub.db_url, kangda, D(2026, 10, 8), [("MON-M8", 1, "99.99")])
    # 2 × 4,000: 8,000 inside the first tier; then 2 × 4,000 spans 8,000 … 16,000
    inside = signed_order(hub.db_url, kangda, D(2026, 10, 9), [("PUMP-SP3", 2, "4000.00")])
    across = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("PUMP-SP3", 2, "4000.00")])
    settle_month(current_hub(), "2026-10")
    return_goods(hub.db_url, small, 1, 1, D(2026, 10, 20))  # a late return: all of it
    settle_month(current_hub(), "2026-10")
    with session_scope(hub.db_url) as s:
        lines = s.exec(select(RebateLine).order_by(RebateLine.id)).all()
        got = {(ln.run_id, ln.order_id, ln.rule_id): (ln.rate, policy_rate(i))
               for ln, i in zip(lines, line_inputs(s, lines))}
    first = {key[1:]: value for key, value in got.items() if key[0] == lines[0].run_id}
    # 1 % of 99.99 = 0.9999 → 1.00: stored 1.0001 %, stated 1 %
    assert first[(small, "base")] == (Decimal("0.010001"), Decimal("0.01"))
    assert first[(inside, "pump")] == (Decimal("0.010000"), Decimal("0.01"))
    # 2,000 at 1 % + 6,000 at 2.5 % = 170.00 on 8,000: an effective 2.125 %, no single rate
    assert first[(across, "pump")] == (Decimal("0.021250"), None)
    # 2 % of 16,000 = 320 capped at 100: shared, no single rate
    assert first[(inside, "capped")][1] is None and first[(across, "capped")][1] is None
    # the correction of the returned order: basis 0, the rule's rate still stated
    second = {key[1:]: value for key, value in got.items() if key[0] != lines[0].run_id}
    assert second[(small, "base")] == (Decimal("0.000000"), Decimal("0.01"))


def test_the_statement_and_workbook_state_the_policys_rate(hub):
    """What settle-month writes: the statement's 返利比例 is the rule's 1 %, not 1.0001 %; a
    line with no single rate shows its effective rate marked *, explained under the table;
    the workbook keeps both columns."""
    import shutil
    import subprocess

    from openpyxl import load_workbook

    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 8), [("MON-M8", 1, "99.99")])
    signed_order(hub.db_url, kangda, D(2026, 10, 9), [("PUMP-SP3", 4, "4000.00")])
    result = settle_month(current_hub(), "2026-10")
    (pdf,) = result.documents["statements"]
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", pdf, "-"], capture_output=True,
                              text=True, check=True).stdout
        assert "1.0001%" not in text and "1%" in text
        assert "%*" in text and "标“*”者该行无单一政策比例" in text
    sheet = load_workbook(result.documents["workbook"])["明细"]
    head, *rows = sheet.iter_rows(values_only=True)
    rates = {row[head.index("条款")]: (row[head.index("返利比例")], row[head.index("实际比例")])
             for row in rows}
    assert rates["第一条"] == (0.01, 0.010001)  # the rule's rate beside due ÷ basis
    assert rates["第三条"] == (None, 0.00625)  # a cap share: no single rate
