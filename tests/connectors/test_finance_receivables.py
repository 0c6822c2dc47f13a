"""Finance: receivables and payments read page by page, strictly, from export files or REST."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from openpyxl import Workbook
from pydantic import SecretStr

from connectors.base import PermanentError
from connectors.finance import (
    EmbeddedFinance,
    files_read,
    last_file_read,
    Finance,
    PaymentRecord,
    ReceivableRecord,
    RestFinance,
    parse_receivables_page,
)
from tests.simulators.base import Faults
from tests.simulators.erp_sim import RECEIVABLES_PATH, ErpSimulator

TOKEN = "finance-secret-token"
CALL = f"GET {RECEIVABLES_PATH}"
KANGDA_USCC = "91320500MA1K2D3F5H"
CODE = "044001900111"  # 发票代码 of the old-style (8-digit) invoice numbers below

INVOICES_CSV = (
    "发票代码,发票号码,客户名称,统一社会信用代码,开票日期,到期日,价税合计,业务员\r\n"
    f"{CODE},04419876,江苏康达医疗设备有限公司,{KANGDA_USCC},2026-09-05,2026-10-05,\"12,345.60\",张伟\r\n"
    f"{CODE},04419877,苏州恒润精密机械有限公司,,2026/09/20,2026/10/20,800,王芳\r\n"
    "合计,,,,,,\"13,145.60\",\r\n"
)


def invoices_csv(inbound, name="20261101-应收.csv", text=INVOICES_CSV, encoding="gb18030"):
    inbound.mkdir(parents=True, exist_ok=True)
    (inbound / name).write_bytes(text.encode(encoding))
    return inbound / name


def payments_xlsx(inbound, name="20261102-回款.xlsx", rows=None, title="回款"):
    inbound.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    ws = wb.active
    ws.title = title
    ws.append(["2026年10月回款明细"])
    ws.append(["收款单号", "发票号码", "到账日期", "回款金额", "发票代码"])
    for row in rows if rows is not None else (
            ["SK-2610-001", "04419876", dt.datetime(2026, 10, 3), 10000, CODE],
            ["SK-2610-002", "04419876", dt.datetime(2026, 10, 9), 2345.6, CODE],
            ["SK-2610-003", "04419877", "2026-10-20", "800.00", CODE]):
        ws.append(row)
    wb.save(inbound / name)
    return inbound / name


EXPECTED_INVOICES = (
    ReceivableRecord("04419876", KANGDA_USCC, "江苏康达医疗设备有限公司", dt.date(2026, 9, 5),
                     dt.date(2026, 10, 5), Decimal("12345.60"), CODE),
    ReceivableRecord("04419877", None, "苏州恒润精密机械有限公司", dt.date(2026, 9, 20),
                     dt.date(2026, 10, 20), Decimal("800.00"), CODE),
)
EXPECTED_PAYMENTS = (
    PaymentRecord("SK-2610-001", "04419876", dt.date(2026, 10, 3), Decimal("10000.00"), CODE),
    PaymentRecord("SK-2610-002", "04419876", dt.date(2026, 10, 9), Decimal("2345.60"), CODE),
    PaymentRecord("SK-2610-003", "04419877", dt.date(2026, 10, 20), Decimal("800.00"), CODE),
)


def read_all(finance, cursor=None):
    """Read to the end as the caller does; returns (pages, the cursor to keep)."""
    pages = []
    while True:
        page = finance.fetch_receivables(cursor)
        if page.cursor is None:
            assert page.invoices == () and page.payments == ()
            return pages, cursor
        pages.append(page)
        cursor = page.cursor


# --- embedded ------------------------------------------------------------------------------

def test_embedded_without_inbound_folder_has_nothing(tmp_path):
    finance = EmbeddedFinance(tmp_path)
    assert isinstance(finance, Finance)
    page = finance.fetch_receivables(None)
    assert (page.invoices, page.payments, page.cursor) == ((), (), None)


def test_embedded_reads_exports_one_file_per_page_in_name_order(tmp_path):
    inbound = tmp_path / "receivables-inbound"
    payments_xlsx(inbound)
    invoices_csv(inbound)
    # not exports (yet): a copy in progress, Excel's lock file, a note
    (inbound / ".20261103-应收.csv.part").write_bytes(b"half")
    (inbound / "~$20261102-回款.xlsx").write_bytes(b"lock")
    (inbound / "说明.txt").write_text("财务每月导出", encoding="utf-8")
    finance = EmbeddedFinance(tmp_path)

    first = finance.fetch_receivables(None)
    assert last_file_read(first.cursor) == "20261101-应收.csv"
    assert first.invoices == EXPECTED_INVOICES and first.payments == ()
    second = finance.fetch_receivables(first.cursor)
    assert last_file_read(second.cursor) == "20261102-回款.xlsx"
    assert second.payments == EXPECTED_PAYMENTS and second.invoices == ()
    done = finance.fetch_receivables(second.cursor)
    assert (done.invoices, done.payments, done.cursor) == ((), (), None)

    # next month's export is picked up from the kept cursor, nothing before it again
    invoices_csv(inbound, "20261201-应收.csv",
                 "发票号,客户名称,开票日期,到期日,金额\n24322000000012345678,江苏康达医疗设备有限公司,"
                 "2026-11-02,2026-12-02,99.99\n", encoding="utf-8-sig")
    pages, kept = read_all(finance, second.cursor)
    assert last_file_read(kept) == "20261201-应收.csv"
    assert [i.invoice_no for p in pages for i in p.invoices] == ["24322000000012345678"]


def test_a_payment_row_given_twice_is_to_be_deleted_not_added_up(tmp_path):
    """Rows of one 回款单 and invoice that differ are merged (amounts added); a row repeated
    exactly is one row given twice: adding it up would count the money twice."""
    inbound = tmp_path / "receivables-inbound"
    row = ["SK-2610-001", "04419876", dt.datetime(2026, 10, 3), 10000, CODE]
    payments_xlsx(inbound, rows=[row, row, [*row[:3], 500, CODE]])
    with pytest.raises(PermanentError) as info:
        EmbeddedFinance(tmp_path).fetch_receivables(None)
    said = str(info.value)
    assert "第4行「回款单号」：与第3行完全相同：是同一行重复出现" in said, said
    assert "第5行「回款单号」：与第3行重复：同一回款单对同一张发票只能有一行" in said, said
    assert said.count("金额相加") == 1, said


def test_embedded_reads_a_file_again_when_its_content_changed_and_the_files_after_it(tmp_path):
    """The cursor keeps a fingerprint per file read: an export replaced under its name (a
    correction) is read again, and every file after it too (what a later file says comes
    last); a file rewritten with the same content, or only listed again, is not read."""
    inbound = tmp_path / "receivables-inbound"
    invoices_csv(inbound)
    payments_xlsx(inbound)
    finance = EmbeddedFinance(tmp_path)
    pages, kept = read_all(finance)
    assert len(pages) == 2 and set(files_read(kept)) == {"20261101-应收.csv", "20261102-回款.xlsx"}
    assert read_all(finance, kept) == ([], kept)  # nothing changed: nothing read

    invoices_csv(inbound)  # the same bytes again: not a correction
    assert read_all(EmbeddedFinance(tmp_path), kept) == ([], kept)

    invoices_csv(inbound, text=INVOICES_CSV.replace("800,", "900,"))
    pages, again = read_all(EmbeddedFinance(tmp_path), kept)
    assert [len(p.invoices) + len(p.payments) for p in pages] == [2, 3]  # 1101, then 1102
    assert pages[0].invoices[1].amount == Decimal("900.00")
    assert files_read(again)["20261102-回款.xlsx"] == files_read(kept)["20261102-回款.xlsx"]
    assert files_read(again)["20261101-应收.csv"] != files_read(kept)["20261101-应收.csv"]


def test_embedded_reads_an_old_cursor_as_every_file_up_to_it_read(tmp_path):
    """A cursor stored before fingerprints were kept (the last file name read): the files up
    to it count as read as they are now, the files after it are read."""
    inbound = tmp_path / "receivables-inbound"
    invoices_csv(inbound)
    payments_xlsx(inbound)
    page = EmbeddedFinance(tmp_path).fetch_receivables("20261101-应收.csv")
    assert page.payments == EXPECTED_PAYMENTS and page.invoices == ()
    assert last_file_read(page.cursor) == "20261102-回款.xlsx"
    assert set(files_read(page.cursor)) == {"20261101-应收.csv", "20261102-回款.xlsx"}
    assert EmbeddedFinance(tmp_path).fetch_receivables(page.cursor).cursor is None
    assert EmbeddedFinance(tmp_path).fetch_receivables("20261102-回款.xlsx").cursor is None


def test_embedded_reads_a_file_dropped_behind_the_files_read(tmp_path):
    """A new export whose name sorts before files read already is read (with those after
    it), not passed over for good."""
    inbound = tmp_path / "receivables-inbound"
    payments_xlsx(inbound)
    finance = EmbeddedFinance(tmp_path)
    _, kept = read_all(finance)
    invoices_csv(inbound)  # 20261101, behind 20261102
    pages, _ = read_all(finance, kept)
    assert [p.invoices == EXPECTED_INVOICES for p in pages] == [True, False]


def test_embedded_workbook_with_an_invoice_sheet_and_a_payment_sheet(tmp_path):
    inbound = tmp_path / "receivables-inbound"
    path = payments_xlsx(inbound, "20261101-应收回款.xlsx")
    from openpyxl import load_workbook

    wb = load_workbook(path)
    ws = wb.create_sheet("应收", 0)
    ws.append(["发票号", "客户名称", "统一社会信用代码", "开票日期", "到期日", "金额", "发票代码"])
    ws.append(["04419876", "江苏康达医疗设备有限公司", KANGDA_USCC.lower(),
               dt.datetime(2026, 9, 5), dt.datetime(2026, 10, 5), 12345.6, CODE])
    wb.save(path)
    page = EmbeddedFinance(tmp_path).fetch_receivables(None)
    assert page.invoices == EXPECTED_INVOICES[:1]  # USCC upper-cased
    assert page.payments == EXPECTED_PAYMENTS


@pytest.mark.parametrize("line, needle", [
    ("04419878,某公司,,2026-09-05,2026-10-32,100", "第3行「到期日」：不是有效日期：'2026-10-32'"),
    ("04419878,某公司,,2026-09-05,2026-10-05,100.005", "第3行「金额」：金额须精确到分"),
    (",某公司,,2026-09-05,2026-10-05,100", "第3行「发票号」：不能为空"),
    ("04419878,,,2026-09-05,2026-10-05,100", "第3行「客户名称」：不能为空"),
    ("04419878,某公司,,2026-09-05,2026-10-05,", "第3行「金额」：不能为空"),
    ("04419878,某公司,,2026-09-05,2026-10-05,0", "第3行「金额」：金额不能为零"),
    ("04419878,某公司,,2026-10-05,2026-09-05,100", "第3行「到期日」：到期日 2026-09-05 早于开票日期"),
    ("04419878,某公司,9132ABC,2026-09-05,2026-10-05,100", "第3行「统一社会信用代码」"),
    ("04419876,某公司,,2026-09-05,2026-10-05,100", "第3行「发票号」：与第2行重复"),
    ("04419876,江苏康达医疗设备有限公司,,2026-09-05,2026-10-05,1.00",
     "第3行「发票号」：与第2行完全相同：是同一行重复出现（如导出内容粘贴了两次），请删除重复的这一行"),
])
def test_embedded_refuses_bad_rows_naming_file_row_and_column(tmp_path, line, needle):
    inbound = tmp_path / "receivables-inbound"
    invoices_csv(inbound, text="发票号,客户名称,统一社会信用代码,开票日期,到期日,金额,发票代码\n"
                               f"04419876,江苏康达医疗设备有限公司,,2026-09-05,2026-10-05,1,{CODE}\n"
                               f"{line},{CODE}\n")
    finance = EmbeddedFinance(tmp_path)
    with pytest.raises(PermanentError) as info:
        finance.fetch_receivables(None)
    assert "20261101-应收.csv" in str(info.value)
    assert needle in str(info.value), str(info.value)
    # the cursor did not move on: the same file is refused again until finance fixes it
    with pytest.raises(PermanentError):
        finance.fetch_receivables(None)


def test_embedded_refuses_bad_payment_rows_and_unknown_tables(tmp_path):
    inbound = tmp_path / "receivables-inbound"
    payments_xlsx(inbound, rows=[["SK-1", "04419876", "上周", 100, CODE],
                                 ["SK-2", "", dt.datetime(2026, 10, 3), 100]])
    with pytest.raises(PermanentError) as info:
        EmbeddedFinance(tmp_path).fetch_receivables(None)
    text = str(info.value)
    assert "20261102-回款.xlsx 第3行「回款日期」：不是有效日期：'上周'" in text
    assert "20261102-回款.xlsx 第4行「发票号」：不能为空" in text

    (inbound / "20261102-回款.xlsx").unlink()
    invoices_csv(inbound, "20261103-客户.csv", "客户名称,地址\n甲,乙\n", encoding="utf-8")
    with pytest.raises(PermanentError) as info:
        EmbeddedFinance(tmp_path).fetch_receivables("20261102-回款.xlsx")
    assert "无法判断是应收发票表还是回款表" in str(info.value)


def test_embedded_missing_column_is_named(tmp_path):
    inbound = tmp_path / "receivables-inbound"
    invoices_csv(inbound, text="发票号,客户名称,开票日期,金额\nFP-1,甲,2026-09-05,1\n")
    with pytest.raises(PermanentError) as info:
        EmbeddedFinance(tmp_path).fetch_receivables(None)
    assert "第1行「到期日」：缺少必填列" in str(info.value)


# --- REST ----------------------------------------------------------------------------------

def wire_invoice(n: int, **changes) -> dict:
    record = {"invoice_no": f"0442{n:04d}", "invoice_code": CODE,
              "customer_uscc": KANGDA_USCC if n % 2 else None,
              "customer_name": "江苏康达医疗设备有限公司", "issued_on": "2026-09-05",
              "due_on": "2026-10-05", "amount": f"{1000 + n}.{n % 100:02d}"}
    record.update(changes)
    return record


def wire_payment(n: int, **changes) -> dict:
    record = {"payment_no": f"SK-{n:05d}", "invoice_no": f"0442{n:04d}", "invoice_code": CODE,
              "paid_on": "2026-10-03", "amount": f"{500 + n}.00"}
    record.update(changes)
    return record


@pytest.fixture
def sim():
    with ErpSimulator(TOKEN, page_size=100) as simulator:
        yield simulator


def client(sim, attempts=4, timeout=2.0):
    return RestFinance(sim.url, SecretStr(TOKEN), timeout, attempts)


def test_rest_reads_every_record_once_page_by_page(sim):
    sim.record_receivables(invoices=[wire_invoice(n) for n in range(150)],
                           payments=[wire_payment(n) for n in range(90)])
    with client(sim) as finance:
        assert isinstance(finance, Finance)
        pages, kept = read_all(finance)
    assert len(pages) == 3  # 240 records, 100 a page
    assert sim.receivables_pages[0] is None  # the first call sends no cursor
    invoices = [i for p in pages for i in p.invoices]
    payments = [x for p in pages for x in p.payments]
    assert [i.invoice_no for i in invoices] == [f"0442{n:04d}" for n in range(150)]
    assert len(payments) == 90 and payments[89].payment_no == "SK-00089"
    assert invoices[1] == ReceivableRecord("04420001", KANGDA_USCC, "江苏康达医疗设备有限公司",
                                           dt.date(2026, 9, 5), dt.date(2026, 10, 5),
                                           Decimal("1001.01"), CODE)
    assert invoices[0].customer_uscc is None
    assert payments[0].amount == Decimal("500.00") and payments[0].paid_on == dt.date(2026, 10, 3)

    # later records come after the kept cursor, and only they
    sim.record_receivables(payments=[wire_payment(500)])
    with client(sim) as finance:
        more, kept_again = read_all(finance, kept)
    assert [x.payment_no for p in more for x in p.payments] == ["SK-00500"]
    assert kept_again != kept


def test_rest_same_records_read_the_same_as_an_export_file(sim, tmp_path):
    sim.record_receivables(invoices=[
        {"invoice_no": r.invoice_no, "customer_uscc": r.customer_uscc,
         "customer_name": r.customer_name, "issued_on": r.issued_on.isoformat(),
         "due_on": r.due_on.isoformat(), "amount": str(r.amount),
         "invoice_code": r.invoice_code} for r in EXPECTED_INVOICES])
    invoices_csv(tmp_path / "receivables-inbound")
    with client(sim) as finance:
        over_rest = finance.fetch_receivables(None).invoices
    assert over_rest == EmbeddedFinance(tmp_path).fetch_receivables(None).invoices


@pytest.mark.parametrize("record, needle", [
    (wire_invoice(1, amount="12.345"), "invoices[0].amount（发票 04420001）：金额须精确到分：'12.345'"),
    # a JSON number: not exact
    (wire_invoice(1, amount=12.5), "invoices[0].amount（发票 04420001）：不是有效金额：12.5（应为 JSON 字符串"),
    (wire_invoice(1, amount="0.00"), "invoices[0].amount（发票 04420001）：金额不能为零"),
    (wire_invoice(1, currency="USD"),
     "invoices[0].currency（发票 04420001）：只支持人民币（CNY）金额，此记录币种为 'USD'"),
    (wire_invoice(1, due_on="2026/10/05"),
     "invoices[0].due_on（发票 04420001）：不是有效日期：'2026/10/05'（应写作 \"2026-10-31\"）"),
    (wire_invoice(1, issued_on="2026-02-30"), "invoices[0].issued_on（发票 04420001）：不是有效日期"),
    (wire_invoice(1, invoice_no=""), "invoices[0].invoice_no：不能为空，须为文字（JSON 字符串），读到 ''"),
    (wire_invoice(1, customer_uscc="123"),
     "invoices[0].customer_uscc（发票 04420001）：不是有效的统一社会信用代码（18位）：'123'"),
    (wire_invoice(1, due_on="2026-09-01"), "invoices[0].due_on（发票 04420001）：到期日 2026-09-01 早于"),
])
def test_rest_refuses_malformed_records_naming_the_field(sim, record, needle):
    sim.record_receivables(invoices=[record])
    with client(sim, attempts=5) as finance:
        with pytest.raises(PermanentError) as info:
            finance.fetch_receivables(None)
    assert needle in str(info.value), str(info.value)
    assert sim.calls[CALL] == 1  # a bad record is not retried


def test_rest_refuses_a_bad_payment(sim):
    sim.record_receivables(payments=[wire_payment(1), wire_payment(2, paid_on=None)])
    with client(sim) as finance:
        with pytest.raises(PermanentError) as info:
            finance.fetch_receivables(None)
    assert "payments[1].paid_on" in str(info.value)


def test_rest_unknown_cursor_is_permanent(sim):
    with client(sim) as finance:
        with pytest.raises(PermanentError) as info:
            finance.fetch_receivables("not-a-cursor")
    assert info.value.code == "400"


def test_rest_5xx_and_timeouts_are_retried_and_nothing_is_lost_or_doubled():
    faults = Faults(rate=0.4, hang_seconds=1.5, seed=3, only_paths=(RECEIVABLES_PATH,))
    with ErpSimulator(TOKEN, faults=faults, page_size=7) as sim:
        sim.record_receivables(invoices=[wire_invoice(n) for n in range(40)],
                               payments=[wire_payment(n) for n in range(25)])
        with client(sim, attempts=10, timeout=0.5) as finance:
            pages, _ = read_all(finance)
        assert sim.injected["5xx"] > 0 and sim.injected["hang"] > 0
        assert sim.calls[CALL] > len(pages) + 1  # retried
    invoices = [i.invoice_no for p in pages for i in p.invoices]
    payments = [x.payment_no for p in pages for x in p.payments]
    assert sorted(invoices) == [f"0442{n:04d}" for n in range(40)]
    assert sorted(payments) == [f"SK-{n:05d}" for n in range(25)]


def test_token_is_not_in_errors(sim):
    with RestFinance(sim.url, SecretStr("wrong-token-abc"), 2.0, 2) as finance:
        with pytest.raises(PermanentError) as info:
            finance.fetch_receivables(None)
    assert info.value.code == "401" and "wrong-token-abc" not in str(info.value)


def test_a_red_letter_invoice_is_a_negative_invoice_and_other_currencies_are_refused(tmp_path):
    inbound = tmp_path / "receivables-inbound"
    invoices_csv(inbound, text="发票号,客户名称,统一社会信用代码,开票日期,到期日,金额,币种,原发票号码\n"
                               "FP-19876,江苏康达医疗设备有限公司,,2026-09-05,2026-10-05,1000.00,"
                               "人民币,\nFP-19877,江苏康达医疗设备有限公司,,2026-09-06,2026-10-05,"
                               "-200.00,CNY,FP-19876\n")
    page = EmbeddedFinance(tmp_path).fetch_receivables(None)
    assert [(i.amount, i.reverses) for i in page.invoices] == [(Decimal("1000.00"), None),
                                                               (Decimal("-200.00"), "FP-19876")]
    invoices_csv(inbound, name="20261102-应收.csv",
                 text="发票号,客户名称,统一社会信用代码,开票日期,到期日,金额,币种\n"
                      "FP-19878,某公司,,2026-09-05,2026-10-05,100.00,USD\n")
    with pytest.raises(PermanentError) as info:
        EmbeddedFinance(tmp_path).fetch_receivables(page.cursor)
    assert "第2行「币种」：只支持人民币（CNY）金额，此行币种为 USD" in str(info.value)


@pytest.mark.parametrize("invoices, payments, needle, said", [
    ([wire_invoice(1, customer_name="江苏康达\x00医疗")], [], "invoices[0].customer_name",
     "空字符"),
    ([wire_invoice(1, invoice_no="0442\x000001")], [], "invoices[0].invoice_no", "空字符"),
    ([wire_invoice(1, invoice_code="04400190\x000111")], [], "invoices[0].invoice_code",
     "空字符"),
    ([wire_invoice(1, amount="-10.00", original_invoice_no="FP-\x001")], [],
     "invoices[0].original_invoice_no", "空字符"),
    ([], [wire_payment(1, payment_no="SK-\x001")], "payments[0].payment_no", "空字符"),
    ([wire_invoice(1, amount="1000000000000.00")], [], "invoices[0].amount（发票 04420001）",
     "金额超出可登记的范围：'1000000000000.00'"),
    ([wire_invoice(1, amount="-1000000000000.00", original_invoice_no="FP-1")], [],
     "invoices[0].amount", "金额超出可登记的范围"),
    ([], [wire_payment(1, amount="99999999999999999999.00")], "payments[0].amount（回款 SK-00001）",
     "金额超出可登记的范围"),
])
def test_rest_refuses_nul_characters_and_amounts_no_column_keeps(sim, invoices, payments,
                                                                 needle, said):
    """A NUL character (PostgreSQL refuses the statement with a raw DataError, SQLite keeps
    it) and an amount of a trillion yuan or more (beyond Numeric(14, 2)) are refused as the
    export files refuse them, naming the record and the field."""
    sim.record_receivables(invoices=invoices, payments=payments)
    with client(sim, attempts=5) as finance:
        with pytest.raises(PermanentError) as info:
            finance.fetch_receivables(None)
    assert needle in str(info.value) and said in str(info.value), str(info.value)
    assert sim.calls[CALL] == 1  # a bad record is not retried


def test_rest_refuses_a_nul_character_in_the_next_cursor():
    """The cursor is stored (connector_cursor) and sent back: no NUL either."""
    with pytest.raises(PermanentError) as info:
        parse_receivables_page({"invoices": [], "payments": [], "next_cursor": "c\x00"})
    assert "next_cursor" in str(info.value) and "空字符" in str(info.value)


def test_a_refused_page_says_every_problem_in_chinese_under_its_field_path():
    """The finance clerk running the sync reads the refusal, finance's developers the field
    paths: every problem is one line `<field path>（<record>）：<Chinese>`, none in English;
    the code stays `bad-body` for programs."""
    body = {"invoices": [wire_invoice(1, amount="12.345", voided="Y", currency="USD"),
                         wire_invoice(2, invoice_code="123", customer_name=None),
                         wire_invoice(3, amount="-1.00", reversed_in_full=True,
                                      original_invoice_no="04420003", original_invoice_code=CODE),
                         wire_invoice(3, due_on="2026-09-01", customer_uscc="123"), 7],
            "payments": [wire_payment(1, amount="-5.00"),
                         wire_payment(1, voided=True, paid_on="2026/10/01"),
                         wire_payment(2, payment_no="P" * 41, invoice_no="")],
            "next_cursor": ""}
    with pytest.raises(PermanentError) as info:
        parse_receivables_page(body, "rcv-00000010")
    head, *lines = str(info.value).split("\n")
    assert head == f"财务系统应收/回款接口返回的数据（游标 rcv-00000010 之后的一页）有 {len(lines)} 处问题，本页未导入："
    assert (info.value.provider, info.value.code) == ("finance", "bad-body")
    path = r"(next_cursor|(invoices|payments)\[\d\](\.[a-z_]+)?(（(发票|回款) [^）]+）)?)"
    for line in lines:
        assert re.fullmatch(rf"  - {path}：[^a-z]*[\u4e00-\u9fff].*", line), line
        assert not re.search(r"\b(must|not a|got|required|twice|only)\b", line), line
    assert len(lines) >= 16, lines
