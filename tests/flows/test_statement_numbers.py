"""A customer's draft statement and the statement issued once finance confirmed are two
documents with two numbers (对账单号): the draft's says it is one (…-草稿), the confirmed one
has its own (RSQ-…). Each is the same whenever its document is written again, and finance's
workbook names the number of the statements it goes with."""
from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import openpyxl
import pytest

from flows.hub import current_hub
from flows.settlement import (
    confirm_settlement, finish_revision, settle_month, statement_number, write_documents,
)
from models import Staff
from models.db import session_scope
from tests.flows.test_statement_dates import text_of
from tests.rebate_support import clock_from, customer_id, publish, signed_order

D = dt.date
POLICY = """
code: P-NUMBERS
name: 对账单号测试
effective_from: 2026-10-01
rules:
  - {id: flat, measure: amount, period: month, style: retroactive,
     tiers: [{from: 0, rate: 2%}], priority: 1, stacking: stack}
"""

pytestmark = pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler not installed")


def by_customer(workbook: str) -> dict[str, str]:
    """按客户: customer code → 对账单号."""
    rows = list(openpyxl.load_workbook(workbook)["按客户"].iter_rows(values_only=True))
    head = rows[0]
    return {dict(zip(head, r))["客户编码"]: dict(zip(head, r))["对账单号"] for r in rows[1:-1]}


def test_draft_and_confirmed_statements_have_numbers_of_their_own(hub):
    clock_from(D(2026, 10, 1))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    clock_from(D(2026, 11, 5))
    settled = settle_month(current_hub(), "2026-10")
    [draft] = settled.documents["statements"]
    code = f"C{kangda:06d}"
    draft_no = f"RS-202610-r1-{code}-草稿"
    assert statement_number("2026-10", 1, kangda, "draft") == draft_no
    assert Path(draft).name == f"{draft_no}.pdf"
    text = text_of(draft)
    assert re.search(rf"对账单号\s+{re.escape(draft_no)}", text), text
    assert f"对账单号：{draft_no}" in text  # every page's footer
    assert by_customer(settled.documents["workbook"]) == {code: draft_no}

    with session_scope(hub.db_url) as s:
        finance = s.get(Staff, "finance-01")
    run = confirm_settlement(hub.db_url, "2026-10", 1, finance)
    made = finish_revision(current_hub(), run.id)
    [confirmed] = made["statements"]
    confirmed_no = f"RSQ-202610-r1-{code}"
    assert Path(confirmed).name == f"{confirmed_no}.pdf"
    text = text_of(confirmed)
    assert re.search(rf"对账单号\s+{re.escape(confirmed_no)}\s", text), text
    assert f"对账单号：{confirmed_no}" in text and "草稿" not in text
    assert draft_no not in text and "RS-202610" not in text
    assert by_customer(made["workbook"]) == {code: confirmed_no}
    assert Path(draft).exists()  # the draft stays, under its own number

    # written again (a run finishing the confirmation): the same numbers, the same document
    again = write_documents(current_hub(), run.id)
    assert again["statements"] == [confirmed]
    assert by_customer(again["workbook"]) == {code: confirmed_no}
    assert text_of(again["statements"][0]) == text
