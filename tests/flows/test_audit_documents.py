"""Audit: the settlement's documents (statements, finance's detail workbook) against the
stored lines and the vouchers."""
from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from decimal import Decimal

import openpyxl
import pytest
from sqlmodel import select

from connectors.finance import VoucherBatch
from flows.effects import effect_result
from flows.hub import current_hub
from flows.settlement import VouchersHeld, confirm_settlement, finish_revision, settle_month
from models import Customer, SettlementRun, Staff
from models.customer_files import merge_customers
from models.db import session_scope
from tests.rebate_support import clock_from, customer_id, publish, signed_order

D = dt.date
POLICY = """
code: P-DOCS
name: 对账单审计政策
effective_from: 2026-10-01
rules:
  - {id: flat, measure: amount, period: month, style: retroactive,
     tiers: [{from: 0, rate: 2%}], priority: 1, stacking: stack}
"""
KANGDA, SHENKANG = "江苏康达医疗设备有限公司", "上海申康医疗科技有限公司"


def run_of(db_url: str, month: str, revision: int) -> SettlementRun:
    with session_scope(db_url) as s:
        return s.exec(select(SettlementRun).where(SettlementRun.month == month,
                                                  SettlementRun.revision == revision)).one()


def pdf_text(path: str) -> str:
    return re.sub(r"\s+", "", subprocess.run(["pdftotext", path, "-"], capture_output=True,
                                             text=True, check=True).stdout)


def sheet(book, name: str) -> list[dict]:
    ws = book[name]
    heads = [c.value for c in ws[1]]
    return [dict(zip(heads, (c.value for c in row))) for row in ws.iter_rows(min_row=2)]


@pytest.fixture
def merged_with_a_finance_code(hub):
    """October settled (vouchers sent, statements not written yet) for 康达 (no finance code:
    its voucher carries the hub's C000001, ¥1,280) and 申康 (finance code 001234, ¥512); then
    申康 merged into 康达, which takes over the code 001234 (康达 had none), 申康 keeping it.
    Finance then confirms the revision: the confirmed statements and workbook are written now.
    Returns (康达's id, 申康's id, what finish_revision wrote)."""
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda, shenkang = customer_id(hub.db_url, KANGDA), customer_id(hub.db_url, SHENKANG)
    with session_scope(hub.db_url) as s:
        c = s.get(Customer, shenkang)
        c.finance_code = "001234"
        s.add(c)
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    signed_order(hub.db_url, shenkang, D(2026, 10, 12), [("MON-M8", 2)])
    settle_month(current_hub(), "2026-10", documents=False)
    with session_scope(hub.db_url) as s:
        merge_customers(s, kangda, shenkang, "ops-01")
    with session_scope(hub.db_url) as db:
        confirm_settlement(hub.db_url, "2026-10", 1, db.get(Staff, "finance-01"))
    made = finish_revision(current_hub(), run_of(hub.db_url, "2026-10", 1).id)
    return kangda, shenkang, made


def test_the_workbook_names_each_customers_own_statement_after_a_merge_shared_a_finance_code(
        hub, merged_with_a_finance_code):
    """A merge gives the survivor the merged file's 财务客户编码 when it had none, and the merged
    file keeps it: the revision's two booked customers now share one code. The workbook keys
    the statement numbers and the customer count by that code, so 按客户 names 申康's statement
    (RSQ-…-C000004) on 康达's row too, and 按大区 / 按销售 count one customer where there are
    two statements and two vouchers. Finance files and chases the customers' signed
    statements by the number 按客户 gives: 康达's ¥1,280 row points at 申康's ¥512 statement."""
    kangda, shenkang, made = merged_with_a_finance_code
    book = openpyxl.load_workbook(made["workbook"])
    rows = {r["客户"]: r for r in sheet(book, "按客户") if r["客户"]}
    assert rows[KANGDA]["对账单号"] == f"RSQ-202610-r1-C{kangda:06d}"
    assert rows[SHENKANG]["对账单号"] == f"RSQ-202610-r1-C{shenkang:06d}"
    # two customers, two statements, two vouchers
    assert len(made["statements"]) == 2
    assert [r["客户数"] for r in sheet(book, "按大区") if r["大区"] != "合计"] == [2]
    assert [r["客户数"] for r in sheet(book, "按销售") if r["销售"] != "合计"] == [2]


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="reads the statements")
def test_a_merge_after_settling_does_not_give_the_survivors_statement_the_merged_files_code(
        hub, merged_with_a_finance_code):
    """docs/rebates.md: the revision's statements (their customer, name, code and finance
    code) read the customer each line was booked to, "so a customer merge after settling
    changes none of them". 康达's voucher of this revision went to finance under C000001; its
    confirmed statement, written after the merge, prints 客户编码 001234 — 申康's code in
    finance's books — so both customers' statements carry the same code, and 康达's matches
    neither its own voucher nor the 明细 of the voucher batch. The customer (and finance
    matching a returned, stamped statement to its voucher) reads another company's code."""
    kangda, _shenkang, made = merged_with_a_finance_code
    codes = {}
    for path in made["statements"]:
        text = pdf_text(path)
        name = next(n for n in (KANGDA, SHENKANG) if f"客户名称{n}" in text)
        codes[name] = re.search(r"客户编码([0-9A-Z]+)状态", text)[1]
    # as the revision's vouchers carry them (fixed when first prepared, before the merge)
    assert codes == {KANGDA: f"C{kangda:06d}", SHENKANG: "001234"}
    book = openpyxl.load_workbook(made["workbook"])
    detail = {r["订单号"]: (r["客户"], r["客户编码"]) for r in sheet(book, "明细")}
    voucher_codes = {r["客户名称"]: r["客户编码"] for r in sheet(book, "凭证")
                     if r["客户名称"]}
    assert {name: code for name, code in detail.values()} == voucher_codes


def test_a_customer_without_a_finance_code_is_not_booked_under_another_customers_code(hub):
    """A customer without a 财务客户编码 gets the hub's number as its voucher's customer
    dimension (C000004 for customer 4). Finance's own codes may have that very shape: 康达's
    code may be C000004. The batch would then carry 申康's ¥512 payable under 康达's account
    in finance's books. It is held back, saying why and what to do; once 申康 has a code,
    the next run sends it, one customer dimension per customer."""
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda, shenkang = customer_id(hub.db_url, KANGDA), customer_id(hub.db_url, SHENKANG)
    hub_code = f"C{shenkang:06d}"
    with session_scope(hub.db_url) as s:
        c = s.get(Customer, kangda)
        c.finance_code = hub_code  # finance's code for 康达, shaped like the hub's numbers
        s.add(c)
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    signed_order(hub.db_url, shenkang, D(2026, 10, 12), [("MON-M8", 2)])
    with pytest.raises(VouchersHeld) as held:
        settle_month(current_hub(), "2026-10")
    assert (f"{SHENKANG}未设财务客户编码，其系统编号 {hub_code} 恰是{KANGDA}的财务客户编码"
            in str(held.value)), held.value
    assert "salesops settle --month 2026-10" in str(held.value)
    assert effect_result(hub.db_url, "rebate_voucher_batch", "RB-2026-10-r1") is None
    run = run_of(hub.db_url, "2026-10", 1)  # the month is stored; its vouchers wait
    assert run.voucher_ref is None and str(held.value) in run.delivery_error
    with session_scope(hub.db_url) as s:
        c = s.get(Customer, shenkang)
        c.finance_code = "001234"
        s.add(c)
    result = settle_month(current_hub(), "2026-10")
    batch = VoucherBatch.from_json_dict(
        effect_result(hub.db_url, "rebate_vouchers", "RB-2026-10-r1")["batch"])
    payable = hub.settings.rebate_payable_account
    dimension = {e.customer_name: e.customer_code for v in batch.vouchers for e in v.entries
                 if e.account_code == payable}
    assert dimension == {KANGDA: hub_code, SHENKANG: "001234"}
    book = openpyxl.load_workbook(result.documents["workbook"])
    numbers = {r["客户"]: r["对账单号"] for r in sheet(book, "按客户") if r["客户"]}
    assert numbers == {KANGDA: f"RS-202610-r1-C{kangda:06d}-草稿",
                       SHENKANG: f"RS-202610-r1-C{shenkang:06d}-草稿"}


SUPERSEDED_V1 = """
code: P-SUP
name: 十月返利政策
effective_from: 2026-10-01
rules:
  - {id: flat, name: 基础返利, clause: 第一条, measure: amount, period: month,
     style: retroactive, tiers: [{from: 0, rate: 2%}], priority: 1, stacking: stack}
  - {id: extra, name: 附加返利, clause: 第二条, measure: amount, period: month,
     style: retroactive, tiers: [{from: 0, rate: 1%}], priority: 1, stacking: stack}
"""
# version 2 from the same day: the 附加返利 clause gone; version 1 governs no order date now
SUPERSEDED_V2 = SUPERSEDED_V1.split("  - {id: extra")[0].replace("十月返利政策", "十月返利政策（修订）")


def test_a_statement_does_not_show_a_wholly_superseded_version_as_still_in_force(
        hub, statements):
    """October settled under version 1 (2 % + 1 %); version 2, from the same 1 October, drops
    the 1 % clause, so version 1 governs no order date any more. The re-run claws the 1 %
    back, citing 第1版 第二条, and its explanation says 第2版 governs the order date. The
    statement's 依据的返利政策 table, though, prints version 1 with 有效期 "2026-10-01 起" —
    open-ended, in force today — because a version without a governing window falls back to
    its document's own dates (flows/settlement.py `_policies`). The customer signs a statement
    saying the very version it is being clawed back under is in force."""
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, SUPERSEDED_V1)
    kangda = customer_id(hub.db_url, KANGDA)
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    assert settle_month(current_hub(), "2026-10").total == Decimal("1920.00")
    clock_from(D(2026, 11, 10))
    publish(hub.db_url, SUPERSEDED_V2)
    fix = settle_month(current_hub(), "2026-10")
    assert (fix.revision, fix.total) == (2, Decimal("-640.00"))
    doc = statements[f"C{kangda:06d}"]
    assert doc.revision == 2
    [line] = doc.lines
    assert (line.policy_version, line.clause) == (1, "第二条")
    assert "第2版已无该条款" in line.explanation
    [v1] = [p for p in doc.policies if (p.code, p.version) == ("P-SUP", 1)]
    # version 1 governs nothing since version 2 took over from the same day: not "from
    # 2026-10-01 on, open-ended"
    assert not (v1.effective_from == D(2026, 10, 1) and v1.effective_to is None
                and v1.replaced_by is None), v1
    assert v1.replaced_by == 2
    from reports.statement_pdf import _validity
    assert _validity(v1) == "已由第2版取代（原定 2026-10-01 起）"
