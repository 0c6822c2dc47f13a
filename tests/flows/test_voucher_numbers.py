"""凭证号 continue within (凭证字, accounting period) across voucher batches: a month's first
settlement is booked at the month's end, a correction revision in the period it is made, so
October's corrections made in November and November's settlement share 2026-11, and finance's
books (K/3 Cloud, U8) refuse a second 记-1 there. Numbers are issued once per voucher: a batch
sent again (a retry, a crash before its result was stored) carries the numbers it was first
given. The detail workbook's 引入凭证号 and the revision's status (per customer, with the
对账单号) say the same as the import workbook and the JSON."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import openpyxl
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlmodel import select

from connectors.base import TransientError
from flows.hub import build_hub, current_hub, use_hub
from flows.rebate_board import board_scope, order_detail
from flows.settlement import (
    confirm_settlement, number_vouchers, revision_status, send_vouchers, settle_month,
    voucher_batch,
)
from models import SettlementRun, Staff, VoucherNumber
from models.db import downgrade, get_engine, migrate, session_scope
from models.vouchers import issue_voucher_numbers
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order
from tests.simulators.erp_sim import ErpSimulator

D = dt.date
POLICY = """
code: P-VOUCHERS
name: 凭证号测试
effective_from: 2026-10-01
rules:
  - {id: flat, measure: amount, period: month, style: retroactive,
     tiers: [{from: 0, rate: 2%}], priority: 1, stacking: stack}
"""
KANGDA, RENHE, HUANAN = "江苏康达医疗设备有限公司", "浙江仁和医疗器械有限公司", "广州华南医药贸易有限公司"


def drop(hub, batch_id: str, suffix: str):
    return hub.settings.data_dir / "finance-drop" / "vouchers" / f"{batch_id}{suffix}"


def json_numbers(hub, batch_id: str) -> list[tuple[str, str, int]]:
    """(voucher key, period, 凭证号) of the batch's JSON, in its order."""
    document = json.loads(drop(hub, batch_id, ".json").read_text("utf-8"))
    return [(v["voucher_key"], v["period"], v["number"]) for v in document["batch"]["vouchers"]]


def import_numbers(hub, batch_id: str) -> list[tuple[str, int, str, int]]:
    """(payable entry's customer code, FPERIOD, FVOUCHERGROUPNO, 单据头序号) per voucher of the
    K/3 Cloud import workbook."""
    sheet = openpyxl.load_workbook(drop(hub, batch_id, ".xlsx")).worksheets[0]
    keys = [c.value for c in sheet[1]]
    out, head = [], None
    for row in sheet.iter_rows(min_row=3, values_only=True):
        if row[keys.index("FVOUCHERGROUPNO")] is not None:
            head = (row[keys.index("FPERIOD")], row[keys.index("FVOUCHERGROUPID#Name")],
                    row[keys.index("FVOUCHERGROUPNO")], row[keys.index("FBillHead(GL_VOUCHER)")])
        if row[keys.index("FDetailID#FFlex6")]:
            period, word, number, sequence = head
            out.append((row[keys.index("FDetailID#FFlex6")], period, word, number, sequence))
    return out


def detail_numbers(workbook: str) -> dict[str, int]:
    """The settlement workbook's 凭证 sheet: customer code → 引入凭证号."""
    head, *rows = openpyxl.load_workbook(workbook)["凭证"].iter_rows(values_only=True)
    return {row[head.index("客户编码")]: row[head.index("引入凭证号")] for row in rows
            if row[head.index("客户编码")] and row[head.index("凭证编号")] != "无凭证"}


def run_of(db_url: str, month: str, revision: int) -> SettlementRun:
    with session_scope(db_url) as s:
        return s.exec(select(SettlementRun).where(SettlementRun.month == month,
                                                  SettlementRun.revision == revision)).one()


def issued(db_url: str) -> list[tuple[str, str, int, str]]:
    with session_scope(db_url) as s:
        return [(n.period, n.word, n.number, n.voucher_key) for n in s.exec(
            select(VoucherNumber).order_by(VoucherNumber.period, VoucherNumber.number))]


def october(hub) -> dict[str, tuple[int, str]]:
    """Three customers' October orders; returns name → (customer id, order id)."""
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    out = {}
    for n, name in enumerate((KANGDA, RENHE, HUANAN), start=1):
        cid = customer_id(hub.db_url, name)
        out[name] = (cid, signed_order(hub.db_url, cid, D(2026, 10, 9 + n), [("MON-M8", 2)]))
    return out


def test_numbers_continue_in_a_period_across_revisions_and_months_and_restart_in_a_new_one(hub):
    orders = october(hub)
    first = settle_month(current_hub(), "2026-10")
    # a correction made on 10 November: a return of an October order, entered late
    clock_from(D(2026, 11, 10))
    return_goods(hub.db_url, orders[KANGDA][1], 1, 1, D(2026, 10, 20))
    second = settle_month(current_hub(), "2026-10")
    clock_from(D(2026, 11, 12))
    return_goods(hub.db_url, orders[RENHE][1], 1, 1, D(2026, 10, 25))
    third = settle_month(current_hub(), "2026-10")
    assert (second.revision, third.revision) == (2, 3)
    # November's settlement is booked on 30 November: the same period as the corrections
    clock_from(D(2026, 12, 5))
    for name, day in ((KANGDA, 3), (HUANAN, 4)):
        signed_order(hub.db_url, orders[name][0], D(2026, 11, day), [("MON-M8", 1)])
    november = settle_month(current_hub(), "2026-11")
    clock_from(D(2027, 1, 5))
    signed_order(hub.db_url, orders[RENHE][0], D(2026, 12, 2), [("MON-M8", 1)])
    december = settle_month(current_hub(), "2026-12")

    code = {name: f"C{cid:06d}" for name, (cid, _) in orders.items()}
    key = {name: lambda batch, name=name: f"{batch}-{code[name]}" for name in orders}
    assert json_numbers(hub, "RB-2026-10-r1") == [
        (key[KANGDA]("RB-2026-10-r1"), "2026-10", 1), (key[RENHE]("RB-2026-10-r1"), "2026-10", 2),
        (key[HUANAN]("RB-2026-10-r1"), "2026-10", 3)]
    # 2026-11: October's corrections 1 and 2, November's settlement 3 and 4
    assert json_numbers(hub, "RB-2026-10-r2") == [(key[KANGDA]("RB-2026-10-r2"), "2026-11", 1)]
    assert json_numbers(hub, "RB-2026-10-r3") == [(key[RENHE]("RB-2026-10-r3"), "2026-11", 2)]
    assert json_numbers(hub, "RB-2026-11-r1") == [
        (key[KANGDA]("RB-2026-11-r1"), "2026-11", 3), (key[HUANAN]("RB-2026-11-r1"), "2026-11", 4)]
    # a new period starts at 1
    assert json_numbers(hub, "RB-2026-12-r1") == [(key[RENHE]("RB-2026-12-r1"), "2026-12", 1)]

    # the import workbooks say the same; 单据头序号 is the head's row key within its file
    assert import_numbers(hub, "RB-2026-10-r2") == [(code[KANGDA], 11, "记", 1, "1")]
    assert import_numbers(hub, "RB-2026-10-r3") == [(code[RENHE], 11, "记", 2, "1")]
    assert import_numbers(hub, "RB-2026-11-r1") == [(code[KANGDA], 11, "记", 3, "1"),
                                                    (code[HUANAN], 11, "记", 4, "2")]
    assert import_numbers(hub, "RB-2026-12-r1") == [(code[RENHE], 12, "记", 1, "1")]
    # and so do the detail workbooks' 引入凭证号
    for result, batch in ((first, "RB-2026-10-r1"), (second, "RB-2026-10-r2"),
                          (third, "RB-2026-10-r3"), (november, "RB-2026-11-r1"),
                          (december, "RB-2026-12-r1")):
        assert detail_numbers(result.documents["workbook"]) == {
            customer: number for customer, _, _, number, _ in import_numbers(hub, batch)}, batch
    # no 凭证字 + 凭证号 twice in a period
    numbers = [(period, word, number) for period, word, number, _ in issued(hub.db_url)]
    assert len(numbers) == len(set(numbers)) == 8

    # the revision's status, per customer: its statement and its voucher
    status = revision_status(hub.db_url, run_of(hub.db_url, "2026-11", 1))
    assert [(c["customer_id"], c["statement_no"], c["voucher_word"], c["voucher_no"],
             c["amount"]) for c in status["customers"]] == [
        (orders[KANGDA][0], f"RS-202611-r1-{code[KANGDA]}-草稿", "记", 3, "256.00"),
        (orders[HUANAN][0], f"RS-202611-r1-{code[HUANAN]}-草稿", "记", 4, "256.00")]


def test_a_batch_sent_again_carries_the_numbers_it_was_first_given(hub, monkeypatch):
    orders = october(hub)
    settle_month(current_hub(), "2026-10")
    clock_from(D(2026, 11, 10))
    return_goods(hub.db_url, orders[KANGDA][1], 1, 1, D(2026, 10, 20))
    finance, submit = current_hub().finance, current_hub().finance.submit_vouchers
    calls = []

    def down_once(batch):
        calls.append(batch)
        if len(calls) == 1:
            raise TransientError("finance unreachable")
        return submit(batch)
    monkeypatch.setattr(finance, "submit_vouchers", down_once)
    with pytest.raises(TransientError):
        settle_month(current_hub(), "2026-10")  # r2 stored and numbered, not sent
    assert [v.number for v in calls[0].vouchers] == [1]
    # another correction of the month comes before r2 went out: it continues after r2's
    clock_from(D(2026, 11, 12))
    return_goods(hub.db_url, orders[RENHE][1], 1, 1, D(2026, 10, 25))
    settle_month(current_hub(), "2026-10")
    assert [(b.batch_id, [v.number for v in b.vouchers]) for b in calls] == [
        ("RB-2026-10-r2", [1]), ("RB-2026-10-r2", [1]), ("RB-2026-10-r3", [2])]
    assert json_numbers(hub, "RB-2026-10-r2")[0][2] == 1
    assert json_numbers(hub, "RB-2026-10-r3")[0][2] == 2
    before = issued(hub.db_url)

    # sent again (everything is out: the first answer), or numbered again (a crash between
    # issuing and storing the prepared batch): the same numbers, none issued anew
    r2 = run_of(hub.db_url, "2026-10", 2)
    assert send_vouchers(current_hub(), r2.id) == r2.voucher_ref
    again = number_vouchers(hub.db_url, voucher_batch(current_hub(), r2.id))
    assert [v.number for v in again.vouchers] == [1]
    assert issued(hub.db_url) == before


def test_rest_finance_receives_continuing_numbers(seeded):
    token = "finance-token-vouchers"
    with ErpSimulator(token) as sim:
        hub = build_hub(seeded.model_copy(update=dict(
            finance_backend="rest", finance_url=sim.url, finance_token=SecretStr(token))))
        use_hub(hub)
        try:
            orders = october(hub)
            settle_month(hub, "2026-10")
            for day, name in ((10, KANGDA), (12, RENHE)):
                clock_from(D(2026, 11, day))
                return_goods(hub.db_url, orders[name][1], 1, 1, D(2026, 10, 20))
                settle_month(hub, "2026-10")
        finally:
            use_hub(None)
        sent = {key: [(v["period"], v["word"], v["number"]) for v in body["vouchers"]]
                for key, body in sim.voucher_batches.items()}
    assert sent == {"RB-2026-10-r1": [("2026-10", "记", n) for n in (1, 2, 3)],
                    "RB-2026-10-r2": [("2026-11", "记", 1)],
                    "RB-2026-10-r3": [("2026-11", "记", 2)]}


def test_the_board_and_the_status_name_the_statement_of_a_settled_line(hub):
    orders = october(hub)
    settle_month(current_hub(), "2026-10")
    cid, order_id = orders[KANGDA]
    with session_scope(hub.db_url) as s:
        finance = s.get(Staff, "finance-01")
        rep = s.get(Staff, "rep-zhangwei")
    for person in (finance, rep):
        detail = order_detail(hub.db_url, board_scope(hub.db_url, person), order_id)
        assert [(ln["status"], ln["statement_no"]) for ln in detail["lines"]] == [
            ("pending", f"RS-202610-r1-C{cid:06d}-草稿")]
    run = confirm_settlement(hub.db_url, "2026-10", 1, finance)
    detail = order_detail(hub.db_url, board_scope(hub.db_url, rep), order_id)
    assert [ln["statement_no"] for ln in detail["lines"]] == [f"RSQ-202610-r1-C{cid:06d}"]
    customers = revision_status(hub.db_url, run)["customers"]
    assert {c["customer_id"]: (c["statement_no"], c["voucher_no"]) for c in customers} == {
        c: (f"RSQ-202610-r1-C{c:06d}", n)
        for n, (c, _) in enumerate(sorted(orders.values()), start=1)}


def _legacy_batch(batch_id: str, period: str, customers: list[str]) -> str:
    return json.dumps({"batch_id": batch_id, "period": period, "note": None, "vouchers": [
        {"voucher_key": f"{batch_id}-{c}", "voucher_date": f"{period}-28", "period": period,
         "word": "记", "entries": [], "prepared_by": "销售运营中台", "attachments": 1}
        for c in customers]}, ensure_ascii=False)


def test_the_migration_records_the_numbers_batches_were_sent_with_before(db_url):
    """Batches prepared before numbers were issued went out numbered 1…n: the next batch of
    their period continues after them (of two that clashed, the first one's are recorded)."""
    downgrade(db_url, "0012")
    with get_engine(db_url).begin() as conn:
        for n, (batch_id, customers) in enumerate((("RB-2026-10-r2", ["C000001", "C000002"]),
                                                   ("RB-2026-09-r2", ["C000003"])), start=1):
            conn.execute(sa.text(
                "INSERT INTO effect (kind, business_key, status, attempts, result, created_at, "
                "done_at) VALUES ('rebate_voucher_batch', :key, 'done', 1, :result, :at, :at)"),
                {"key": batch_id, "result": _legacy_batch(batch_id, "2026-11", customers),
                 "at": dt.datetime(2026, 11, n, 2)})
    migrate(db_url)
    assert issued(db_url) == [("2026-11", "记", 1, "RB-2026-10-r2-C000001"),
                              ("2026-11", "记", 2, "RB-2026-10-r2-C000002")]
    with session_scope(db_url) as s:
        assert issue_voucher_numbers(s, "RB-2026-11-r1", [
            ("RB-2026-11-r1-C000001", "记", "2026-11"), ("RB-2026-11-r1-C000002", "记", "2026-10")],
            "test") == {"RB-2026-11-r1-C000001": 3, "RB-2026-11-r1-C000002": 1}


def test_a_number_is_issued_once_in_its_period(db_url):
    """The unique key refuses a second issue of a number, whatever a caller does."""
    with session_scope(db_url) as s:
        s.add(VoucherNumber(word="记", period="2026-11", number=1, batch_id="RB-A",
                            voucher_key="RB-A-C000001"))
    with pytest.raises(sa.exc.IntegrityError), session_scope(db_url) as s:
        s.add(VoucherNumber(word="记", period="2026-11", number=1, batch_id="RB-B",
                            voucher_key="RB-B-C000001"))
    with session_scope(db_url) as s:  # another word, another period: their own 1
        s.add(VoucherNumber(word="转", period="2026-11", number=1, batch_id="RB-B",
                            voucher_key="RB-B-C000001"))
        s.add(VoucherNumber(word="记", period="2026-12", number=1, batch_id="RB-C",
                            voucher_key="RB-C-C000001"))


def test_batches_numbered_at_the_same_instant_get_numbers_of_their_own(db_url):
    """Six batches of one period numbered at once (six workers): 1…18, each once, each
    batch's numbers consecutive; the same batch numbered twice at once gets one set."""
    from itertools import count

    from connectors.finance import VoucherBatch, VoucherDraft, VoucherEntry
    from tests.support import run_together

    entries = (VoucherEntry("摘要", "6601.09", "销售费用-销售返利", Decimal("1.00"), Decimal("0.00")),
               VoucherEntry("摘要", "2241.05", "其他应付款-应付返利", Decimal("0.00"), Decimal("1.00")))
    ids = count(1)

    def batch(batch_id: str) -> VoucherBatch:
        return VoucherBatch(batch_id, "2026-11", tuple(
            VoucherDraft(f"{batch_id}-C{c:06d}", D(2026, 11, 10), "2026-11", "记", entries,
                         "销售运营中台") for c in (1, 2, 3)))

    numbered, errors = run_together(lambda: number_vouchers(db_url, batch(f"RB-{next(ids)}")), 6)
    assert errors == []
    runs = sorted([v.number for v in b.vouchers] for b in numbered)
    assert runs == [[n, n + 1, n + 2] for n in range(1, 19, 3)]
    again, errors = run_together(lambda: number_vouchers(db_url, batch("RB-1")), 4)
    assert errors == [] and len({tuple(v.number for v in b.vouchers) for b in again}) == 1
    assert len(issued(db_url)) == 18
