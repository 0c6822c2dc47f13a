"""Sales facts, the audit's cases: corrections are late news, exchanges are shipped again,
the daily sync loses no invoice of a customer filed later, and a bad receivables file is
reported whole in one pass."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.finance import last_file_read
from connectors.tabular import MAX_PROBLEMS
from flows.rebate_data import Window, sale_lines
from flows.sales_facts import (
    SYNC_RETRY, ImportRefused, import_movements, import_receivables_file, sync_receivables,
)
from models import ConnectorCursor, Customer, ReceivableInvoice, SalesReturn
from models.db import get_engine, session_scope
from tests.rebate_support import customer_id, signed_order

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"
RETURNS = "退货单号,意向单号,行号,数量,退货日期,类型,原因\n"
DELIVERIES = "发货单号,意向单号,行号,数量,发货日期\n"
INVOICES = "发票号,客户名称,统一社会信用代码,开票日期,到期日,金额\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def recorded_at(db_url: str, return_no: str) -> dt.datetime:
    with session_scope(db_url) as s:
        return s.exec(sa.select(SalesReturn.recorded_at)
                      .where(SalesReturn.return_no == return_no)).scalar_one()


@pytest.fixture
def delivered(seeded):
    """An order of 3 monitors, signed and delivered in full on 2026-09-20."""
    return signed_order(seeded.db_url, customer_id(seeded.db_url, KANGDA), D(2026, 9, 20),
                        [("MON-M8", 3)])


# --- a corrected return or delivery is recorded anew -----------------------------------------

def test_a_corrected_return_counts_as_recorded_now(seeded, delivered, tmp_path):
    db = seeded.db_url
    first = write(tmp_path / "r_a.csv", RETURNS + f"R-1,{delivered},1,1,2026-09-25,退货,质量问题\n")
    assert import_movements(db, first, "t", returns=True).created == 1
    before = recorded_at(db, "R-1")

    again = import_movements(db, first, "t", returns=True)
    assert again.unchanged == 1 and recorded_at(db, "R-1") == before

    fixed = write(tmp_path / "r_b.csv", RETURNS + f"R-1,{delivered},1,3,2026-09-25,退货,质量问题\n")
    assert import_movements(db, fixed, "t", returns=True).updated == 1
    assert recorded_at(db, "R-1") > before


def test_a_corrected_delivery_counts_as_recorded_now(seeded, tmp_path):
    db = seeded.db_url
    order = signed_order(db, customer_id(db, KANGDA), D(2026, 9, 20), [("MON-M8", 3)],
                         delivered_on=False)
    path = write(tmp_path / "d.csv", DELIVERIES + f"FH-1,{order},1,2,2026-09-22\n")
    import_movements(db, path, "t", returns=False)

    def stamp():
        with get_engine(db).connect() as conn:
            return conn.execute(sa.text("SELECT recorded_at FROM delivery "
                                        "WHERE delivery_no = 'FH-1'")).scalar_one()

    before = stamp()
    write(path, DELIVERIES + f"FH-1,{order},1,2,2026-09-23\n")  # only the date corrected
    assert import_movements(db, path, "t", returns=False).updated == 1
    assert stamp() > before


# --- an exchange's replacement may be shipped ---------------------------------------------

def test_the_replacement_of_an_exchange_is_accepted_and_not_counted_twice(seeded, delivered,
                                                                           tmp_path):
    db = seeded.db_url
    exchange = write(tmp_path / "x.csv", RETURNS + f"X-1,{delivered},1,1,2026-10-20,换货,屏幕故障\n")
    import_movements(db, exchange, "t", returns=True)
    replacement = write(tmp_path / "xd.csv", DELIVERIES + f"D-X1,{delivered},1,1,2026-10-22\n")
    assert import_movements(db, replacement, "t", returns=False).created == 1

    # what the rebates count: delivered 4 − returned 1 = the 3 ordered, not 4
    with get_engine(db).connect() as conn:
        window = Window(D(2026, 7, 1), D(2026, 9, 30))
        nets = {cut: [ln.net_quantity for ln in sale_lines(conn, [window], cut)
                      if ln.order_id == delivered] for cut in (D(2026, 10, 21), D(2026, 10, 31))}
    assert nets == {D(2026, 10, 21): [2], D(2026, 10, 31): [3]}

    # one replacement per exchanged unit: a second one is too many
    more = write(tmp_path / "xd2.csv", DELIVERIES + f"D-X2,{delivered},1,1,2026-10-23\n")
    with pytest.raises(ImportRefused, match="超过订购数量 3 与截至该日的换货数量 1 之和"):
        import_movements(db, more, "t", returns=False)


@pytest.mark.parametrize("kind, on", [("退货", "2026-10-20"),    # a plain return: not again
                                      ("换货", "2026-10-25")])   # exchanged after the shipment
def test_no_replacement_without_an_exchange_by_then(seeded, delivered, tmp_path, kind, on):
    db = seeded.db_url
    back = write(tmp_path / "r.csv", RETURNS + f"X-1,{delivered},1,1,{on},{kind},\n")
    import_movements(db, back, "t", returns=True)
    replacement = write(tmp_path / "xd.csv", DELIVERIES + f"D-X1,{delivered},1,1,2026-10-22\n")
    with pytest.raises(ImportRefused, match="截至 2026-10-22 累计发货 4，超过订购数量 3") as refused:
        import_movements(db, replacement, "t", returns=False)
    # at the file's row; an exchange whose goods came back later is named
    hint = ("；换货单 X-1 的退回日期 2026-10-25 晚于该日：换货的补发须在货物退回之后，请核对补发或"
            "退回日期") if kind == "换货" else ""
    assert [str(p) for p in refused.value.problems] == [
        f"xd.csv 第2行「数量」：意向单 {delivered} 第 1 行截至 2026-10-22 累计发货 4，超过订购数量 3"
        + hint]


# --- the daily sync picks up what it skipped once the customer is filed ---------------------

def test_sync_reads_skipped_invoices_again_once_the_customer_exists(hub):
    db = hub.db_url
    inbound = hub.settings.path("finance-drop") / "receivables-inbound"
    write(inbound / "2026-11-01.csv", INVOICES
          + f"FP-1,{KANGDA},,2026-10-01,2026-11-01,100.00\n"
          + "FP-2,苏州同济康复器械有限公司,,2026-10-02,2026-11-02,200.00\n")
    write(inbound / "2026-11-02.csv", INVOICES + f"FP-3,{KANGDA},,2026-10-03,2026-11-03,300.00\n")
    name = f"receivables:{hub.finance.__class__.__name__}"

    first = sync_receivables(hub)
    assert (first.created, first.unchanged) == (2, 0)
    assert first.skipped == [f"发票 FP-2：客户“苏州同济康复器械有限公司”未建档{SYNC_RETRY}"]
    with session_scope(db) as s:
        assert s.get(ConnectorCursor, name) is None  # held before the page that skipped

    again = sync_receivables(hub)  # nothing new, the customer still unknown: said again
    assert (again.created, again.unchanged, len(again.skipped)) == (0, 2, 1)

    with session_scope(db) as s:
        s.add(Customer(legal_name="苏州同济康复器械有限公司", name_key="苏州同济康复器械有限公司"))
    done = sync_receivables(hub)
    assert (done.created, done.unchanged, done.skipped) == (1, 2, [])
    with session_scope(db) as s:
        assert last_file_read(s.get(ConnectorCursor, name).cursor) == "2026-11-02.csv"
        assert s.exec(sa.select(ReceivableInvoice.amount)
                      .where(ReceivableInvoice.invoice_no == "FP-2")).scalar_one() == 200
    assert sync_receivables(hub).as_dict() == {"created": 0, "updated": 0, "unchanged": 0,
                                               "skipped": [], "removed": 0, "moved": [],
                                               "notes": []}


# --- a bad receivables file: every problem at once ----------------------------------------

def test_every_problem_of_a_receivables_file_in_one_pass(seeded, tmp_path):
    path = write(tmp_path / "inv_bad.csv", INVOICES
                 + f"INV-001,{KANGDA},91320500MA1K2D3F5H,2026-07-15,2026-08-15,\"¥51,960.00\"\n"
                 "INV-002,广州华南医药贸易有限公司,,2026/07/20,2026-13-01,\"74,400.00\"\n"
                 f"INV-001,{KANGDA},91320500MA1K2D3F5H,2026-07-15,2026-08-15,100.00\n"
                 "INV-003,不存在的医疗公司,,2026-08-01,2026-09-01,5000\n"
                 "INV-004,浙江仁和医疗器械有限公司,,2026-08-01,2026-07-01,12.345\n"
                 "INV-005,上海申康医疗科技有限公司,,31/08/2026,2026-09-30,1e5\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, path, "t")
    assert [(p.row, p.column) for p in refused.value.problems] == [
        (3, "到期日"), (4, "发票号"), (5, "客户名称"), (6, "到期日"), (6, "金额"),
        (7, "开票日期"), (7, "金额")]
    text = str(refused.value)
    assert "第4行「发票号」：与第2行重复" in text
    assert "第5行「客户名称」：发票 INV-003：客户“不存在的医疗公司”未建档" in text
    with get_engine(seeded.db_url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM receivable_invoice")).scalar() == 0

    # skipping unknown customers: they are no problem, the rest still is
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, path, "t", skip_unknown=True)
    assert (5, "客户名称") not in [(p.row, p.column) for p in refused.value.problems]


def test_payments_of_unknown_invoices_come_with_the_bad_cells(seeded, tmp_path):
    path = write(tmp_path / "回款.csv", "回款单号,发票号,回款日期,金额\n"
                 "HK-1,FP-404,2026-09-30,10.00\nHK-1,FP-404,2026-10-01,坏\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, path, "t")
    assert [(p.row, p.column) for p in refused.value.problems] == [
        (2, "发票号"), (3, "金额"), (3, "回款单号"), (3, "发票号")]
    assert "回款 HK-1：发票 FP-404 不存在" in str(refused.value)


def test_long_problem_lists_are_capped_with_a_count(seeded, delivered, tmp_path):
    body = "".join(f"FH-{n},{delivered},1,坏,坏\n" for n in range(30))
    path = write(tmp_path / "d.csv", DELIVERIES + body)
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "t", returns=False)
    assert len(refused.value.problems) == MAX_PROBLEMS + 1 and refused.value.more == 10
    assert refused.value.problems[-1] == "……另有 10 处问题未列出"


def test_an_invoice_number_excel_stored_as_a_number_is_refused(seeded, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["发票号", "客户名称", "开票日期", "到期日", "金额"])
    wb.active.append([24322000000012345678.0, KANGDA, dt.datetime(2026, 10, 1),
                      dt.datetime(2026, 11, 1), 100.0])
    wb.active.append([4419876.0, KANGDA, dt.datetime(2026, 10, 1), dt.datetime(2026, 11, 1),
                      12345.6])
    wb.save(tmp_path / "应收.xlsx")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, tmp_path / "应收.xlsx", "t")
    assert [(p.row, p.column) for p in refused.value.problems] == [(2, "发票号")]
    assert "2.432200000001235e+19" in str(refused.value)
    assert "设为“文本”格式" in str(refused.value)


def test_the_cli_counts_every_problem_of_a_long_refusal():
    from deployments.rebates_cli import _refused
    from flows.sales_facts import ImportRefused

    refused = _refused(ImportRefused([f"第{n}行「金额」：不能为空" for n in range(2, 62)]))
    assert "共 60 处问题" in str(refused) and "……另有 10 处问题未列出" in str(refused)
