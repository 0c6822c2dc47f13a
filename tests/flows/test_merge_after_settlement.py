"""A customer merged into another after a month is settled: the revision stays as it was sent.
Its vouchers were fixed when first prepared (one per customer); its statements, finance's
status, the summary and the board's statement numbers read the customer each line was booked
to, not the file the merge moved it to. What was paid still follows the order into the
surviving file: a later return claws back once, booked to the survivor in the new revision."""
from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlmodel import select

from connectors.finance import VoucherBatch
from flows.effects import effect_result
from flows.hub import current_hub
from flows.rebate_board import board_scope, order_detail
from flows.settlement import (
    confirm_settlement, finish_revision, revision_status, settle_month, summarize,
)
from models import RebateLine, SettlementRun, Staff
from models.customer_files import merge_customers
from models.db import session_scope
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

D = dt.date
POLICY = """
code: P-MERGED
name: 合并后对账测试
effective_from: 2026-10-01
rules:
  - {id: flat, measure: amount, period: month, style: retroactive,
     tiers: [{from: 0, rate: 2%}], priority: 1, stacking: stack}
"""
KANGDA, SHENKANG = "江苏康达医疗设备有限公司", "上海申康医疗科技有限公司"


def run_of(db_url: str, revision: int) -> SettlementRun:
    with session_scope(db_url) as s:
        return s.exec(select(SettlementRun).where(SettlementRun.month == "2026-10",
                                                  SettlementRun.revision == revision)).one()


def status_of(db_url: str, revision: int) -> dict[str, tuple]:
    """Finance's status: customer code → (name, amount, 对账单号, 凭证号); it counts the
    customers it lists."""
    status = revision_status(db_url, run_of(db_url, revision))
    assert status["customers_total"] == len(status["customers"])
    return {c["customer_code"]: (c["customer"], c["amount"], c["statement_no"],
                                 f"{c['voucher_word']}-{c['voucher_no']}")
            for c in status["customers"]}


def vouchers_sent(hub, revision: int) -> dict[str, tuple]:
    """The batch as sent to finance: customer code → (name, net payable, 凭证号)."""
    sent = effect_result(hub.db_url, "rebate_vouchers", f"RB-2026-10-r{revision}")
    out = {}
    for v in VoucherBatch.from_json_dict(sent["batch"]).numbered():
        [payable] = [e for e in v.entries
                     if e.account_code == hub.settings.rebate_payable_account]
        out[payable.customer_code] = (payable.customer_name,
                                      str(payable.credit - payable.debit), f"{v.word}-{v.number}")
    return out


def statements(paths: list[str]) -> dict[str, tuple]:
    """Each statement PDF: its number → (customer name, customer code, 本期合计)."""
    out = {}
    for path in paths:
        text = subprocess.run(["pdftotext", path, "-"], capture_output=True, text=True,
                              check=True).stdout
        flat = re.sub(r"\s+", "", text)
        number = re.search(r"对账单号：(RSQ?-[0-9]{6}-r[0-9]+-C[0-9]+(?:-草稿)?)", flat)[1]
        total = re.search(r"本期合计金额(-?¥[0-9,.]+)", flat)[1]
        name = next(n for n in (KANGDA, SHENKANG) if n in flat)
        code = re.search(r"客户编码(C[0-9]{6})", flat)[1]
        out[number] = (name, code, total)
    return out


@pytest.fixture
def merged_after_october(hub):
    """October settled for 康达 (5 × M8: ¥1,280) and 申康 (2 × M8: ¥512), vouchers prepared
    and sent, statements not written yet; then 申康 merged into 康达. Returns (康达's id,
    申康's id, 申康's order)."""
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda, shenkang = customer_id(hub.db_url, KANGDA), customer_id(hub.db_url, SHENKANG)
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    order = signed_order(hub.db_url, shenkang, D(2026, 10, 12), [("MON-M8", 2)])
    settle_month(current_hub(), "2026-10", documents=False)
    with session_scope(hub.db_url) as s:
        merge_customers(s, kangda, shenkang, "ops-01")
    return kangda, shenkang, order


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="reads the statements")
def test_a_settled_revision_stays_booked_to_its_customers_after_a_merge(
        hub, merged_after_october):
    kangda, shenkang, order = merged_after_october
    k, s = f"C{kangda:06d}", f"C{shenkang:06d}"
    # the lines moved (later settlements find what was paid) …
    with session_scope(hub.db_url) as db:
        assert set(db.exec(select(RebateLine.customer_id, RebateLine.booked_customer_id))) == {
            (kangda, kangda), (kangda, shenkang)}
    # … and the revision reads as it was sent: one voucher, one statement per customer
    sent = {k: (KANGDA, "1280.00", "记-1"), s: (SHENKANG, "512.00", "记-2")}
    assert vouchers_sent(hub, 1) == sent
    for status, prefix, suffix in (("draft", "RS", "-草稿"), ("confirmed", "RSQ", "")):
        if status == "confirmed":
            with session_scope(hub.db_url) as db:
                confirm_settlement(hub.db_url, "2026-10", 1, db.get(Staff, "finance-01"))
        made = finish_revision(current_hub(), run_of(hub.db_url, 1).id)
        number = {c: f"{prefix}-202610-r1-{c}{suffix}" for c in (k, s)}
        assert status_of(hub.db_url, 1) == {c: (name, amount, number[c], voucher)
                                            for c, (name, amount, voucher) in sent.items()}
        assert statements(made["statements"]) == {
            number[k]: (KANGDA, k, "¥1,280.00"), number[s]: (SHENKANG, s, "¥512.00")}
        assert vouchers_sent(hub, 1) == sent
    # finance finds the merged file's statement and voucher by its own number and name
    run = run_of(hub.db_url, 1)
    for q in (s, "记-2", f"RSQ-202610-r1-{s}"):
        found = revision_status(hub.db_url, run, q=q)
        assert [c["customer_id"] for c in found["customers"]] == [shenkang], q
    # its name finds it, and the file it was merged into (which carries the name since)
    found = revision_status(hub.db_url, run, q="申康")
    assert [c["customer_id"] for c in found["customers"]] == sorted([kangda, shenkang])
    totals = summarize(hub.db_url, "2026-10", run.id)
    assert totals.by_customer == {str(kangda): "1280.00", str(shenkang): "512.00"}
    assert totals.customer_names == {str(kangda): KANGDA, str(shenkang): SHENKANG}
    # the order's page names the statement its line is on
    with session_scope(hub.db_url) as db:
        finance = db.get(Staff, "finance-01")
    detail = order_detail(hub.db_url, board_scope(hub.db_url, finance), order)
    assert [ln["statement_no"] for ln in detail["lines"]] == [f"RSQ-202610-r1-{s}"]


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="reads the statements")
def test_a_return_after_the_merge_claws_back_once_booked_to_the_survivor(
        hub, merged_after_october):
    kangda, shenkang, order = merged_after_october
    k = f"C{kangda:06d}"
    finish_revision(current_hub(), run_of(hub.db_url, 1).id)
    # one of 申康's two monitors comes back: 12,800 × 2 % = 256 of the 512 paid, once
    clock_from(D(2026, 11, 10))
    return_goods(hub.db_url, order, 1, 1, D(2026, 10, 20))
    fix = settle_month(current_hub(), "2026-10")
    assert (fix.revision, fix.lines, fix.total) == (2, 1, Decimal("-256.00"))
    assert fix.by_customer == {str(kangda): "-256.00"}
    with session_scope(hub.db_url) as db:
        assert db.exec(select(RebateLine.customer_id, RebateLine.booked_customer_id,
                              RebateLine.amount).where(
            RebateLine.run_id == fix.run_id)).all() == [(kangda, kangda, Decimal("-256.00"))]
        paid = db.exec(select(sa.func.sum(RebateLine.amount)).where(
            RebateLine.order_id == order)).one()
    assert paid == Decimal("256.00")
    assert vouchers_sent(hub, 2) == {k: (KANGDA, "-256.00", "记-1")}  # period 2026-11
    assert status_of(hub.db_url, 2) == {
        k: (KANGDA, "-256.00", f"RS-202610-r2-{k}-草稿", "记-1")}
    [pdf] = fix.documents["statements"]
    assert statements([pdf]) == {f"RS-202610-r2-{k}-草稿": (KANGDA, k, "-¥256.00")}
    # before and after, as 康达's books at finance have it: its own voucher of the first
    # revision (申康's ¥512 stays on 申康's)
    text = re.sub(r"\s+", "", subprocess.run(["pdftotext", pdf, "-"], capture_output=True,
                                              text=True, check=True).stdout)
    assert "原结算金额¥1,280.00" in text and "更正后合计¥1,024.00" in text
    # settled again, and the next month: nothing more is clawed back or paid for it
    assert settle_month(current_hub(), "2026-10").run_id is None
    clock_from(D(2026, 12, 5))
    settle_month(current_hub(), "2026-11")
    with session_scope(hub.db_url) as db:
        assert db.exec(select(sa.func.sum(RebateLine.amount)).where(
            RebateLine.order_id == order)).one() == Decimal("256.00")
    # the first revision still reads as it was sent
    assert status_of(hub.db_url, 1)[f"C{shenkang:06d}"][:2] == (SHENKANG, "512.00")
