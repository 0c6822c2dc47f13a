"""Red-letter invoices (红字发票 / 红冲) through every receivables path: a 红字发票 carries a
negative amount and names its 原蓝字发票 (代码 + 号码); a blue invoice may be marked 已红冲.
A reversed invoice is due no more in the customer's trailing payment rate, a partial one is
due what is left. Inconsistent exports are refused with the row; nothing is written.

Window of an order in February 2027: invoices due 2026-11 … 2027-01 (康达 has none in the
sample data). By hand: FP-A 10,000.00 paid on time; FP-B 5,000.00 reversed in full, unpaid;
FP-C 8,000.00 reversed by 2,000.00, paid 5,000.00 on time.
Due 10,000 + 0 + 6,000 = 16,000, on time 15,000: 93.75 % (65.22 % if FP-B and all of FP-C
stayed due)."""
from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import openpyxl
import pytest
from pydantic import SecretStr
from sqlmodel import select

from connectors.base import PermanentError
from connectors.finance import RestFinance, parse_receivables_page
from flows.rebate_data import payment_rates
from flows.sales_facts import ImportRefused, import_receivables_file, sync_receivables
from models import ReceivableInvoice
from models.db import session_scope
from tests.flows.test_audit5_receivables import CODE_1, KANGDA, PAYMENTS, RENHE, write
from tests.rebate_support import clock_from, customer_id
from tests.simulators.erp_sim import ErpSimulator


@pytest.fixture(autouse=True)
def _after_the_files_dates():
    """Today is after every date these files give (a payment or invoice dated after today is
    refused)."""
    clock_from(dt.date(2028, 1, 1))

D = dt.date
HEADER = "发票号码,客户名称,开票日期,到期日,价税合计,红冲状态,原蓝字发票号码\n"
BLUES = (f"FP-A,{KANGDA},2026-10-01,2026-11-15,10000.00,,\n"
         f"FP-B,{KANGDA},2026-10-01,2026-12-10,5000.00,已红冲,\n"
         f"FP-C,{KANGDA},2026-11-01,2027-01-10,8000.00,部分红冲,\n")
PAID = PAYMENTS + "SK-1,FP-A,2026-11-10,10000.00\nSK-2,FP-C,2027-01-05,5000.00\n"


def rate(db_url: str) -> tuple[tuple[int, int], Decimal | None]:
    kangda = customer_id(db_url, KANGDA)
    with session_scope(db_url) as s:
        rates = payment_rates(s, [kangda], D(2027, 2, 1), D(2027, 2, 1))
        return rates.amounts(kangda, "2027-02"), rates.rate(kangda, "2027-02")


def test_a_csv_export_with_red_letter_invoices_gives_the_hand_computed_rate(seeded, tmp_path):
    db = seeded.db_url
    assert rate(db) == ((0, 0), None)
    # the red invoice of FP-C comes in February, "due" in March: outside the window
    write(tmp_path / "应收.csv", HEADER + BLUES + f"HP-C,{KANGDA},2027-02-20,2027-03-01,"
                                                 "-2000.00,,FP-C\n")
    assert import_receivables_file(db, tmp_path / "应收.csv", "t").created == 4
    import_receivables_file(db, write(tmp_path / "回款.csv", PAID), "t")
    assert rate(db) == ((1_600_000, 1_500_000), Decimal("0.9375"))
    with session_scope(db) as s:
        red = s.get(ReceivableInvoice, _id(s, "HP-C"))
        assert (red.reverses, red.amount) == ("FP-C", Decimal("-2000.00"))


def _id(s, number: str) -> int:
    return s.exec(select(ReceivableInvoice.id).where(ReceivableInvoice.invoice_no == number)).one()


def test_a_red_invoice_in_a_later_xlsx_export_reduces_its_stored_blue_invoice(seeded, tmp_path):
    """FP-C is an old-style invoice here (发票代码 + 8-digit 发票号码): its 红字发票 names it
    by 原发票代码 + 原发票号码, typed in full width."""
    db = seeded.db_url
    write(tmp_path / "应收1.csv", "发票代码," + HEADER
          + "".join("," + line for line in BLUES.splitlines(keepends=True)[:2])
          + f"{CODE_1},04419876,{KANGDA},2026-11-01,2027-01-10,8000.00,部分红冲,\n")
    import_receivables_file(db, tmp_path / "应收1.csv", "t")
    import_receivables_file(db, write(tmp_path / "回款.csv", "发票代码," + PAYMENTS
                                      + ",SK-1,FP-A,2026-11-10,10000.00\n"
                                      + f"{CODE_1},SK-2,04419876,2027-01-05,5000.00\n"), "t")
    # FP-B marked 已红冲 is due nothing already; all of FP-C is due until its red invoice
    assert rate(db)[0] == (1_800_000, 1_500_000)
    book = tmp_path / "应收2.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "红字发票"
    ws.append(["销项发票明细"])
    ws.append(["发票号码", "购买方名称", "开票日期", "到期日", "价税合计", "对应蓝字发票代码",
               "对应蓝字发票号码"])
    ws.append(["HP-C", KANGDA, D(2027, 2, 20), D(2027, 3, 1), -2000, CODE_1, "０４４１９８７６"])
    wb.save(book)
    assert import_receivables_file(db, book, "t").created == 1
    assert rate(db) == ((1_600_000, 1_500_000), Decimal("0.9375"))


def test_inconsistent_red_letter_rows_are_refused_by_row(seeded, tmp_path):
    db = seeded.db_url
    write(tmp_path / "应收.csv", HEADER + BLUES
          + f"HP-X,{KANGDA},2027-02-20,2027-03-01,-100.00,,FP-X\n"        # unknown blue
          + f"HP-C1,{KANGDA},2027-02-20,2027-03-01,-5000.00,,FP-C\n"      # 5,000 + 4,000 >
          + f"HP-C2,{KANGDA},2027-02-21,2027-03-01,-4000.00,,FP-C\n"      # 8,000
          + f"HP-R,{RENHE},2027-02-20,2027-03-01,-100.00,,FP-A\n")       # another customer
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, tmp_path / "应收.csv", "t")
    assert [str(p) for p in refused.value.problems] == [
        "应收.csv 第5行「原发票号码」：红字发票 HP-X：冲销的蓝字发票 FP-X 未找到（请先导入该蓝字发票，"
        "或把它与红字发票放在同一文件中）",
        f"应收.csv 第8行「原发票号码」：红字发票 HP-R 的客户“{RENHE}”与蓝字发票 FP-A 的客户"
        f"“{KANGDA}”不同",
        "应收.csv 第7行「价税合计」：红字发票 HP-C1、HP-C2 冲销蓝字发票 FP-C 合计 ¥9,000.00，超过该发票"
        "金额 ¥8,000.00：红冲金额不能超过原蓝字发票金额"]
    with session_scope(db) as s:  # nothing written
        assert s.exec(select(ReceivableInvoice.id).where(
            ReceivableInvoice.invoice_no == "FP-A")).first() is None


@pytest.mark.parametrize(("row", "needle"), [
    (f"HP-1,{KANGDA},2027-02-20,2027-03-01,100.00,,FP-A",
     "第2行「价税合计」：填写了原发票号码的是红字发票，金额须为负数：100.00"),
    (f"HP-1,{KANGDA},2027-02-20,2027-03-01,-100.00,,04419876",
     "第2行「原发票代码」：原发票号码 04419876 是8位的旧版发票号码，须同时填写原发票代码"),
    (f"FP-Z,{KANGDA},2027-02-20,2027-03-01,100.00,红冲了,",
     "第2行「红冲状态」：无法识别的红冲状态：'红冲了'"),
    (f"HP-1,{KANGDA},2027-02-20,2027-03-01,-100.00,,HP-1",
     "第2行「原发票号码」：红字发票的原发票号码不能是它自己的号码"),
])
def test_bad_red_letter_cells_are_named(seeded, tmp_path, row, needle):
    write(tmp_path / "应收.csv", HEADER + row + "\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, tmp_path / "应收.csv", "t")
    assert needle in str(refused.value), str(refused.value)


def invoice(number: str, due: str, amount: str, **extra) -> dict:
    return {"invoice_no": number, "customer_uscc": None, "customer_name": KANGDA,
            "issued_on": "2026-10-01", "due_on": due, "amount": amount, **extra}


def test_the_rest_sync_reads_red_letter_invoices(hub):
    with ErpSimulator("token", page_size=10) as sim, RestFinance(
            sim.url, SecretStr("token"), 2.0, 2) as finance:
        rest_hub = dataclasses.replace(hub, finance=finance)
        # the red invoice first, its blue invoice on a later page: skipped until then
        sim.record_receivables(invoices=[
            invoice("HP-C", "2027-03-01", "-2000.00", original_invoice_no="FP-C")])
        done = sync_receivables(rest_hub)
        assert done.skipped and "冲销的蓝字发票 FP-C 未找到" in done.skipped[0]
        sim.record_receivables(
            invoices=[invoice("FP-A", "2026-11-15", "10000.00"),
                      invoice("FP-B", "2026-12-10", "5000.00", reversed_in_full=True),
                      invoice("FP-C", "2027-01-10", "8000.00")],
            payments=[{"payment_no": "SK-1", "invoice_no": "FP-A", "paid_on": "2026-11-10",
                       "amount": "10000.00"},
                      {"payment_no": "SK-2", "invoice_no": "FP-C", "paid_on": "2027-01-05",
                       "amount": "5000.00"}])
        done = sync_receivables(rest_hub)
        assert done.skipped == []
    assert rate(hub.db_url) == ((1_600_000, 1_500_000), Decimal("0.9375"))


@pytest.mark.parametrize(("item", "needle"), [
    (invoice("HP-1", "2027-03-01", "100.00", original_invoice_no="FP-A"),
     "invoices[0].amount（发票 HP-1）：给出了原发票号码（original_invoice_no）的是红字发票，金额须为负数"),
    (invoice("HP-1", "2027-03-01", "-100.00", original_invoice_no="04419876"),
     "invoices[0].original_invoice_code（发票 HP-1）：original_invoice_no 04419876 是8位的旧版"),
    (invoice("HP-1", "2027-03-01", "-100.00", reversed_in_full=True),
     "invoices[0].reversed_in_full（发票 HP-1）：只有蓝字发票（金额为正）才能整张红冲"),
    (invoice("HP-1", "2027-03-01", "-100.00", reversed_in_full="yes"),
     "invoices[0].reversed_in_full（发票 HP-1）：须为 true 或 false"),
    (invoice("HP-1", "2027-03-01", "-100.00"),
     "invoices[0].original_invoice_no（发票 HP-1）：金额为负数（-100.00）的是红字发票"),
])
def test_rest_pages_refuse_bad_red_letter_invoices(item, needle):
    with pytest.raises(PermanentError) as refused:
        parse_receivables_page({"invoices": [item], "payments": [], "next_cursor": "1"})
    assert needle in str(refused.value)


def test_the_payment_rate_finds_red_letter_invoices_by_index_after_analyze(seeded):
    """With thousands of blue invoices and no red one, SQLite's statistics once said that a
    plain index on `reverses` (all NULL) matched every row: the rate's lookup of each blue
    invoice's red ones scanned the whole table per invoice (quadratic: a year of invoices
    took minutes). Every table the rate's query reads is searched by an index."""
    from models.db import get_engine
    from tests.support import query_plans

    db_url = seeded.db_url
    engine = get_engine(db_url)
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    kangda = customer_id(db_url, KANGDA)
    with session_scope(db_url) as s:
        s.add_all(ReceivableInvoice(invoice_no=f"FP-{i:05d}", customer_id=kangda,
                                    issued_on=D(2026, 10, 1), due_on=D(2026, 11, 1 + i % 28),
                                    amount=Decimal("100.00")) for i in range(3000))
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    plans = query_plans(engine, "receivable_invoice", lambda: rate(db_url))
    assert plans
    for plan in plans:
        assert not [step for step in plan if step.startswith("SCAN")], plan


# --- money allocated to a red-letter invoice: a refund of its blue invoice --------------------
# FP-C (8,000.00 due 2027-01-10, 5,000.00 paid on 2027-01-05) is reversed by 2,000.00 on
# 2027-01-06 (HP-C), and finance gives the customer 2,000.00 back on 2027-01-08: a 收款单
# 核销 against HP-C. By hand, due 10,000 + 0 + 6,000 = 16,000 (as above); on time before the
# refund 10,000 + 5,000 = 15,000 (93.75 %), after it 10,000 + 3,000 = 13,000: 81.25 %. Before
# the fix the refund counted nowhere (93.75 % stayed).
EARLY_RED = f"HP-C,{KANGDA},2027-01-06,2027-01-06,-2000.00,,FP-C\n"


def test_a_refund_on_a_red_letter_invoice_in_an_xlsx_export_lowers_the_rate(seeded, tmp_path):
    db = seeded.db_url
    import_receivables_file(db, write(tmp_path / "应收.csv", HEADER + BLUES + EARLY_RED), "t")
    import_receivables_file(db, write(tmp_path / "回款.csv", PAID), "t")
    assert rate(db) == ((1_600_000, 1_500_000), Decimal("0.9375"))
    book = tmp_path / "回款2.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["收款单号", "发票号码", "到账日期", "收款金额"])
    wb.active.append(["SK-3", "HP-C", D(2027, 1, 8), 2000])
    wb.save(book)
    assert import_receivables_file(db, book, "t").created == 1
    assert rate(db) == ((1_600_000, 1_300_000), Decimal("0.8125"))

    # finance dates the refund after FP-C's due date: the 5,000 stays paid on time
    import_receivables_file(db, write(tmp_path / "回款3.csv",
                                      PAYMENTS + "SK-3,HP-C,2027-01-20,2000.00\n"), "t")
    assert rate(db) == ((1_600_000, 1_500_000), Decimal("0.9375"))


def test_the_rest_sync_counts_a_refund_on_a_red_letter_invoice_alike(hub):
    def paid(number: str, invoice_no: str, day: str, amount: str) -> dict:
        return {"payment_no": number, "invoice_no": invoice_no, "paid_on": day, "amount": amount}

    with ErpSimulator("token", page_size=10) as sim, RestFinance(
            sim.url, SecretStr("token"), 2.0, 2) as finance:
        rest_hub = dataclasses.replace(hub, finance=finance)
        sim.record_receivables(
            invoices=[invoice("FP-A", "2026-11-15", "10000.00"),
                      invoice("FP-B", "2026-12-10", "5000.00", reversed_in_full=True),
                      invoice("FP-C", "2027-01-10", "8000.00"),
                      invoice("HP-C", "2027-01-10", "-2000.00", original_invoice_no="FP-C")],
            payments=[paid("SK-1", "FP-A", "2026-11-10", "10000.00"),
                      paid("SK-2", "FP-C", "2027-01-05", "5000.00")])
        assert sync_receivables(rest_hub).skipped == []
        assert rate(hub.db_url) == ((1_600_000, 1_500_000), Decimal("0.9375"))
        sim.record_receivables(payments=[paid("SK-3", "HP-C", "2027-01-08", "2000.00")])
        assert sync_receivables(rest_hub).created == 1
    assert rate(hub.db_url) == ((1_600_000, 1_300_000), Decimal("0.8125"))


# --- a red-letter invoice naming no blue invoice -------------------------------------------
# Every 红字发票 is issued against a 红字发票信息表 / 红字确认单 naming the blue invoice it
# reverses: a negative row without 原发票号码 is an export lacking that column, or a wrong row.
# Before, a file import refused it only by accident, with a message about a blue invoice that
# no clerk could act on (the check of red totals took the negative row for a blue invoice:
# "红字发票  冲销蓝字发票 HP-9 合计 ¥0.00，超过该发票金额 -¥2,000.00"), and a REST page the same;
# the page reader let it through. Now the row is refused naming the missing 原发票号码.
NO_BLUE = f"HP-9,{KANGDA},2026-12-20,2026-12-20,-2000.00,,\n"
SAID = ("金额为负数（-2000.00）的是红字发票，须填写它冲销的蓝字发票的原发票号码（旧版发票另填"
        "原发票代码），以红字发票信息表（红字确认单）上的蓝字发票为准")


def test_a_red_invoice_naming_no_blue_invoice_is_refused_and_nothing_is_stored(seeded, tmp_path):
    db = seeded.db_url
    write(tmp_path / "应收.csv", HEADER + BLUES + NO_BLUE)
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, tmp_path / "应收.csv", "t")
    assert [str(p) for p in refused.value.problems] == [
        f"应收.csv 第5行「原发票号码」：{SAID}：此行的原发票号码为空"]
    with session_scope(db) as s:  # not even the blue invoices of the file
        assert s.exec(select(ReceivableInvoice.id)).first() is None
    # the row with its blue invoice goes in
    write(tmp_path / "应收.csv", HEADER + BLUES + NO_BLUE.replace(",,\n", ",,FP-C\n"))
    assert import_receivables_file(db, tmp_path / "应收.csv", "t").created == 4


def test_an_xlsx_export_without_the_original_invoice_column_is_refused_naming_it(seeded,
                                                                               tmp_path):
    book = tmp_path / "应收.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "销项"
    wb.active.append(["发票号码", "购买方名称", "开票日期", "到期日", "价税合计"])
    wb.active.append(["FP-A", KANGDA, D(2026, 10, 1), D(2026, 11, 15), 10000])
    wb.active.append(["HP-9", KANGDA, D(2026, 12, 20), D(2026, 12, 20), -2000])
    wb.save(book)
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, book, "t")
    assert [str(p) for p in refused.value.problems] == [
        f"应收.xlsx 第3行「原发票号码」：{SAID}：此表没有「原发票号码」列（也可写作：原蓝字发票号码、"
        "蓝字发票号码、对应蓝字发票号码、原发票号、被红冲发票号码），请导出时带上该列（旧版发票还有"
        "「原发票代码」列），或开票软件写明蓝字发票的「备注」列后再导入"]
    assert rate(seeded.db_url) == ((0, 0), None)


def test_a_voided_red_invoice_needs_no_blue_invoice(seeded, tmp_path):
    """A voided row counts nowhere (a stored one is deleted): what it reversed does not matter."""
    write(tmp_path / "应收.csv", "发票号码,客户名称,开票日期,到期日,价税合计,作废状态\n"
                                 f"FP-A,{KANGDA},2026-10-01,2026-11-15,10000.00,\n"
                                 f"HP-9,{KANGDA},2026-12-20,2026-12-20,-2000.00,已作废\n")
    assert import_receivables_file(seeded.db_url, tmp_path / "应收.csv", "t").created == 1


@pytest.fixture
def cli(seeded, monkeypatch, capsys, tmp_path):
    from tests.support import in_process_cli

    yield from in_process_cli(monkeypatch, capsys, seeded.db_url, tmp_path / "data")


def test_the_cli_refuses_a_red_invoice_naming_no_blue_invoice(cli, seeded, tmp_path):
    write(tmp_path / "应收.csv", HEADER + BLUES + NO_BLUE)
    code, out, err = cli("receivables", "import", tmp_path / "应收.csv")
    assert (code, out) == (2, "")
    assert err == (f"错误：导入未执行（未写入任何数据），共 1 处问题：\n"
                   f"  - 应收.csv 第5行「原发票号码」：{SAID}：此行的原发票号码为空\n")
    assert rate(seeded.db_url) == ((0, 0), None)


def test_a_rest_page_with_a_red_invoice_naming_no_blue_invoice_is_refused(hub):
    with ErpSimulator("token", page_size=10) as sim, RestFinance(
            sim.url, SecretStr("token"), 2.0, 2) as finance:
        rest_hub = dataclasses.replace(hub, finance=finance)
        sim.record_receivables(invoices=[invoice("FP-C", "2027-01-10", "8000.00"),
                                         invoice("HP-9", "2026-12-20", "-2000.00")])
        with pytest.raises(PermanentError) as refused:
            sync_receivables(rest_hub)
    assert ("invoices[1].original_invoice_no（发票 HP-9）：金额为负数（-2000.00）的是红字发票，须给出"
            "它冲销的蓝字发票的原发票号码") in str(refused.value)
    assert rate(hub.db_url) == ((0, 0), None)
    # voided, it needs none
    page = parse_receivables_page({"invoices": [invoice("HP-9", "2026-12-20", "-2000.00",
                                                        voided=True)],
                                   "payments": [], "next_cursor": "1"})
    assert page.invoices[0].voided


# --- more money on a red-letter invoice than its amount --------------------------------------
# HP-C reverses 2,000.00 of FP-C; money allocated to it is given back to the customer for
# that part (a 收款退款单 核销 against the red 应收单), which finance's 核销 bounds by the red
# invoice. 1,500.00 + 800.00 = 2,300.00 given back on it was stored before, and the rate took
# all of it off what FP-C collected on time (5,000 − 2,300: 12,700 of 16,000, 79.375 %);
# now the file is refused.

def test_more_refunded_on_a_red_invoice_than_its_amount_is_refused(seeded, tmp_path):
    db = seeded.db_url
    import_receivables_file(db, write(tmp_path / "应收.csv", HEADER + BLUES + EARLY_RED), "t")
    import_receivables_file(db, write(tmp_path / "回款.csv", PAID), "t")
    over = write(tmp_path / "回款2.csv", PAYMENTS + "SK-3,HP-C,2027-01-08,1500.00\n"
                                                   "SK-4,HP-C,2027-01-09,800.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, over, "t")
    assert [str(p) for p in refused.value.problems] == [
        "回款2.csv 第3行「金额」：回款 SK-3、SK-4 核销红字发票 HP-C 合计 ¥2,300.00，超过该红字发票"
        "金额 ¥2,000.00：核销在红字发票上的是退给客户的款项，不能超过红字发票冲销的金额（多收的款项"
        "请核销到其他发票或转预收）"]
    assert rate(db) == ((1_600_000, 1_500_000), Decimal("0.9375"))  # nothing stored
    # all of the red invoice given back, in two payments: 10,000 + 3,000 on time
    import_receivables_file(db, write(tmp_path / "回款3.csv", PAYMENTS
                                      + "SK-3,HP-C,2027-01-08,1500.00\n"
                                        "SK-4,HP-C,2027-01-09,500.00\n"), "t")
    assert rate(db) == ((1_600_000, 1_300_000), Decimal("0.8125"))
    # the red invoice corrected to less than what was given back on it: refused at its row
    less = EARLY_RED.replace("-2000.00", "-1800.00")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, write(tmp_path / "应收2.csv", HEADER + less), "t")
    assert [str(p) for p in refused.value.problems] == [
        "应收2.csv 第2行「价税合计」：回款 SK-3、SK-4 核销红字发票 HP-C 合计 ¥2,000.00，超过该红字发票"
        "金额 ¥1,800.00：核销在红字发票上的是退给客户的款项，不能超过红字发票冲销的金额（多收的款项"
        "请核销到其他发票或转预收）"]
    assert rate(db) == ((1_600_000, 1_300_000), Decimal("0.8125"))


def test_the_rest_sync_refuses_more_refunded_on_a_red_invoice_than_its_amount(hub):
    with ErpSimulator("token", page_size=10) as sim, RestFinance(
            sim.url, SecretStr("token"), 2.0, 2) as finance:
        rest_hub = dataclasses.replace(hub, finance=finance)
        sim.record_receivables(
            invoices=[invoice("FP-C", "2027-01-10", "8000.00"),
                      invoice("HP-C", "2027-01-10", "-2000.00", original_invoice_no="FP-C")],
            payments=[{"payment_no": "SK-3", "invoice_no": "HP-C", "paid_on": "2027-01-08",
                       "amount": "2000.01"}])
        with pytest.raises(ImportRefused) as refused:
            sync_receivables(rest_hub)
    assert [str(p) for p in refused.value.problems] == [
        "回款 SK-3 核销红字发票 HP-C 合计 ¥2,000.01，超过该红字发票金额 ¥2,000.00：核销在红字发票上"
        "的是退给客户的款项，不能超过红字发票冲销的金额（多收的款项请核销到其他发票或转预收）"]
    assert rate(hub.db_url) == ((0, 0), None)
