"""The customer's statement (对账单) says whether it is a draft or confirmed, and its dates are
the ones that go with that: a draft is issued the day the settlement ran and says it awaits
finance's confirmation; the statement issued on confirmation carries the confirmation date as
its 出具日期 (and the seller's date, and the PDF's creation date), not the draft's."""
from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlmodel import select

from flows.hub import current_hub
from flows.settlement import confirm_settlement, finish_revision, settle_month
from models import SettlementRun, Staff
from models.db import session_scope
from tests.rebate_support import clock_from, customer_id, publish, signed_order

D = dt.date
POLICY = """
code: P-DATES
name: 对账单日期测试
effective_from: 2026-10-01
rules:
  - {id: flat, measure: amount, period: month, style: retroactive,
     tiers: [{from: 0, rate: 2%}], priority: 1, stacking: stack}
"""

pytestmark = pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler not installed")


def text_of(pdf: str) -> str:
    return subprocess.run(["pdftotext", "-layout", pdf, "-"], capture_output=True, text=True,
                          check=True).stdout


def created_on(pdf: str) -> str:
    info = subprocess.run(["pdfinfo", "-isodates", pdf], capture_output=True, text=True,
                          check=True).stdout
    return re.search(r"CreationDate:\s+(\S{10})", info).group(1)


def test_a_confirmed_statement_is_issued_on_its_confirmation_date(hub):
    clock_from(D(2026, 10, 1))
    publish(hub.db_url, POLICY)
    signed_order(hub.db_url, customer_id(hub.db_url, "江苏康达医疗设备有限公司"),
                 D(2026, 10, 10), [("MON-M8", 5)])
    clock_from(D(2026, 11, 5))  # the cron's run: the draft
    [draft] = settle_month(current_hub(), "2026-10").documents["statements"]
    clock_from(D(2026, 11, 12))  # finance confirms a week later
    with session_scope(hub.db_url) as s:
        finance = s.get(Staff, "finance-01")
    run = confirm_settlement(hub.db_url, "2026-10", 1, finance)
    [confirmed] = finish_revision(current_hub(), run.id)["statements"]
    assert Path(confirmed).parent.name == "r1-confirmed"

    text = text_of(draft)
    assert re.search(r"出具日期\s+2026年11月5日", text)
    assert re.search(r"状态\s+草稿（待财务确认）", text) and "已确认" not in text
    assert created_on(draft) == "2026-11-05"

    text = text_of(confirmed)
    assert re.search(r"出具日期\s+2026年11月12日", text)
    assert re.search(r"状态\s+供方已确认（2026年11月12日）", text)
    assert "日期：2026年11月12日" in text  # the seller's block
    assert "草稿" not in text and "2026年11月5日" not in text
    assert created_on(confirmed) == "2026-11-12"

    # written again later (a run finishing an unsent confirmation): the same document
    clock_from(D(2026, 11, 20))
    with session_scope(hub.db_url) as s:
        assert s.exec(select(SettlementRun.status)).one() == "confirmed"
    from flows.settlement import write_documents
    again = write_documents(current_hub(), run.id)["statements"][0]
    assert Path(again).read_bytes() == Path(confirmed).read_bytes()
