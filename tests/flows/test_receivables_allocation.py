"""What a payment row and an invoice row are worth, read so that the payment rate (which feeds
rebate conditions such as payment_rate ≥ 90 %) is not inflated:

- a 收款核销 export lists a receipt once per invoice it settles, with the receipt's total
  (收款金额) on each row and the invoice's share in 本次核销金额: the share is the amount;
  the same 收款金额 on several invoices without that column is refused (ambiguous);
- a receipt's rows may not allocate more than its 收款金额, wherever in the file they are;
  less is fine (the rest is unapplied, 预收);
- the same 收款金额 on several invoices without 核销金额 is ambiguous across a workbook's sheets;
- money allocated to a blue invoice beyond what is due on it is refused (file and REST); a
  blue invoice marked 已红冲 is due nothing, so money on it is refused until its red-letter
  invoice and the refund (or the move to another invoice) are imported;
- an invoice's due is 价税合计, or 金额 + 税额 on a VAT export without it (金额 is before tax);
- a payment or an invoice dated after today is refused (a mistyped year).

Window of an order in February 2027: invoices due 2026-11 … 2027-01 (康达 has none in the
sample data). By hand: FP-A 6,000.00 and FP-B 8,000.00 due in December, receipt SK-1 of
10,000.00 settling 6,000.00 of FP-A and 4,000.00 of FP-B on time: 10,000 ÷ 14,000 = 71.43 %
(read as 10,000 on each, both capped at their amount: 100 %). FP-V of 金额 10,000.00 + 税额
1,300.00, 10,000.00 paid on time: 10,000 ÷ 11,300 = 88.50 % (read as 10,000 due: 100 %)."""
from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import openpyxl
import pytest
from pydantic import SecretStr
from sqlmodel import select

from connectors.finance import RestFinance
from flows.sales_facts import ImportRefused, import_receivables_file, sync_receivables
from models import Payment, ReceivableInvoice
from models.db import session_scope
from tests.flows.test_audit5_receivables import KANGDA, allocations, write
from tests.flows.test_receivables_red_letter import invoice, rate
from tests.rebate_support import clock_from
from tests.simulators.erp_sim import ErpSimulator

D = dt.date
TODAY = D(2027, 2, 15)
INVOICES = "发票号码,客户名称,开票日期,到期日,价税合计\n"
TWO = (f"FP-A,{KANGDA},2026-11-01,2026-12-15,6000.00\n"
       f"FP-B,{KANGDA},2026-11-01,2026-12-20,8000.00\n")
# K/3 Cloud's 收款核销记录 as finance exports it: the receipt's total on each invoice's row
RECEIPT = "收款单号,收款日期,收款金额,发票号,{}\n"
SPLIT = "SK-1,2026-12-10,10000.00,FP-A,6000.00\nSK-1,2026-12-10,10000.00,FP-B,4000.00\n"
PAYMENTS = "回款单号,发票号,回款日期,金额\n"
OVER = "超过该发票金额"


@pytest.fixture(autouse=True)
def _today():
    clock_from(TODAY)


@pytest.fixture
def two_invoices(seeded, tmp_path):
    assert import_receivables_file(seeded.db_url, write(tmp_path / "应收.csv", INVOICES + TWO),
                                   "t").created == 2
    return seeded.db_url


def stored_payments(db_url: str) -> list[tuple]:
    with session_scope(db_url) as s:
        return [(p.payment_no, p.invoice_no, p.amount) for p in s.exec(
            select(Payment).order_by(Payment.payment_no, Payment.invoice_no)).all()]


def rounded(found):
    amounts, value = found
    return amounts, None if value is None else value.quantize(Decimal("0.0001"))


# --- a receipt settling several invoices -----------------------------------------------------

@pytest.mark.parametrize("column", ["本次核销金额", "核销金额", "本次核销", "核销金额（本位币）"])
def test_a_receipt_settling_two_invoices_counts_each_its_share(two_invoices, tmp_path, column):
    db = two_invoices
    done = import_receivables_file(db, write(tmp_path / "收款核销.csv",
                                             RECEIPT.format(column) + SPLIT), "t")
    assert done.created == 2
    assert allocations(db, "SK-1") == [("FP-A", Decimal("6000.00")),
                                       ("FP-B", Decimal("4000.00"))]
    assert rounded(rate(db)) == ((1_400_000, 1_000_000), Decimal("0.7143"))


def test_the_same_receipt_total_on_several_invoices_without_its_shares_is_refused(
        two_invoices, tmp_path):
    db = two_invoices
    ambiguous = write(tmp_path / "收款核销.csv", "收款单号,收款日期,收款金额,发票号\n"
                      "SK-1,2026-12-10,10000.00,FP-A\nSK-1,2026-12-10,10000.00,FP-B\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, ambiguous, "t")
    said = ("回款单 SK-1 核销 2 张发票（FP-A、FP-B），每行金额都是 ¥10,000.00：无法判断这是收款单的"
            "收款总额还是本张发票的核销金额；请导出收款核销记录时带上「本次核销金额」列后再导入（若确是"
            "每张发票各核销 ¥10,000.00，请把此列表头改为「本次核销金额」）")
    assert [str(p) for p in refused.value.problems] == [
        f"收款核销.csv 第2行「金额」：{said}", f"收款核销.csv 第3行「金额」：{said}"]
    assert stored_payments(db) == []
    # a payment of one invoice, or shares that differ, are no question
    import_receivables_file(db, write(tmp_path / "收款.csv", "收款单号,收款日期,收款金额,发票号\n"
                                      "SK-1,2026-12-10,5000.00,FP-A\n"
                                      "SK-2,2026-12-10,1000.00,FP-A\n"
                                      "SK-2,2026-12-10,4000.00,FP-B\n"), "t")
    assert len(stored_payments(db)) == 3


def workbook(path, *sheets: tuple[str, list[list]]):
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


SHARES = ["收款单号", "收款日期", "收款金额", "发票号", "本次核销金额"]
TOTALS = ["收款单号", "收款日期", "收款金额", "发票号"]


def test_a_receipt_whose_shares_add_up_to_more_than_its_total_is_refused(two_invoices,
                                                                          tmp_path):
    db = two_invoices
    # 6,000 + 6,000 of a receipt of 10,000: each share fits its invoice, the sum does not exist
    over = write(tmp_path / "收款核销.csv", RECEIPT.format("本次核销金额")
                 + "SK-1,2026-12-10,10000.00,FP-A,6000.00\nSK-1,2026-12-10,10000.00,FP-B,6000.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, over, "t")
    said = ("回款单 SK-1 第2、3行的本次核销金额合计 ¥12,000.00，超过该收款单的收款金额 ¥10,000.00："
            "核销出去的款项不能多于收到的款项，请核对各行的本次核销金额")
    assert [str(p) for p in refused.value.problems] == [
        f"收款核销.csv 第2行「核销金额」：{said}", f"收款核销.csv 第3行「核销金额」：{said}"]
    assert stored_payments(db) == []
    # less than the receipt is fine: the rest is not applied yet (预收)
    done = import_receivables_file(db, write(tmp_path / "收款核销2.csv", RECEIPT.format(
        "本次核销金额") + "SK-1,2026-12-10,10000.00,FP-A,6000.00\n"
        "SK-1,2026-12-10,10000.00,FP-B,3000.00\n"), "t")
    assert done.created == 2


def test_a_receipt_headed_huikuan_beside_its_shares_is_a_receipt_total(two_invoices, tmp_path):
    """回款金额 beside 本次核销金额 is the receipt's total, checked like 收款金额; alone it is
    what each invoice was paid, so the same amount on two invoices is no question."""
    db = two_invoices
    over = write(tmp_path / "回款核销.csv", "回款单号,回款日期,回款金额,发票号,本次核销金额\n"
                 "SK-1,2026-12-10,10000.00,FP-A,6000.00\nSK-1,2026-12-10,10000.00,FP-B,6000.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, over, "t")
    assert [p.message for p in refused.value.problems] == [
        "回款单 SK-1 第2、3行的本次核销金额合计 ¥12,000.00，超过该收款单的收款金额 ¥10,000.00："
        "核销出去的款项不能多于收到的款项，请核对各行的本次核销金额"] * 2
    assert stored_payments(db) == []
    assert import_receivables_file(db, write(tmp_path / "回款.csv", PAYMENTS.replace(
        "金额", "回款金额") + "SK-1,FP-A,2026-12-10,4000.00\nSK-1,FP-B,2026-12-10,4000.00\n"),
        "t").created == 2
    assert stored_payments(db) == [("SK-1", "FP-A", Decimal("4000.00")),
                                   ("SK-1", "FP-B", Decimal("4000.00"))]


def test_a_receipt_total_is_checked_across_the_sheets_of_a_workbook(two_invoices, tmp_path):
    db = two_invoices
    book = workbook(tmp_path / "收款核销.xlsx",
                    ("12月", [SHARES, ["SK-1", "2026-12-10", 10000, "FP-A", 6000]]),
                    ("1月", [SHARES, ["SK-1", "2026-12-10", 10000, "FP-B", 6000]]))
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, book, "t")
    said = ("回款单 SK-1 收款核销.xlsx[12月] 第2行、收款核销.xlsx[1月] 第2行的本次核销金额合计 "
            "¥12,000.00，超过该收款单的收款金额 ¥10,000.00：核销出去的款项不能多于收到的款项，"
            "请核对各行的本次核销金额")
    assert [str(p) for p in refused.value.problems] == [
        f"收款核销.xlsx[12月] 第2行「核销金额」：{said}",
        f"收款核销.xlsx[1月] 第2行「核销金额」：{said}"]
    assert stored_payments(db) == []


def test_a_receipt_with_two_totals_is_refused(two_invoices, tmp_path):
    db = two_invoices
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, write(tmp_path / "收款核销.csv", RECEIPT.format("本次核销金额")
                                          + "SK-1,2026-12-10,10000.00,FP-A,6000.00\n"
                                          + "SK-1,2026-12-10,8000.00,FP-B,2000.00\n"), "t")
    said = ("回款单 SK-1 的收款金额在第2行是 ¥10,000.00，在第3行是 ¥8,000.00：收款金额是收款单的"
            "收款总额，同一收款单的各行应相同；若是两张收款单（不同账套或年度各自编号），请在导出时给"
            "回款单号加上账套或年度前缀")
    assert [str(p) for p in refused.value.problems] == [
        f"收款核销.csv 第2行「金额」：{said}", f"收款核销.csv 第3行「金额」：{said}"]
    # a blank 收款金额 says nothing: the row's share still counts against the other rows' total
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, write(tmp_path / "收款核销2.csv", RECEIPT.format("本次核销金额")
                                          + "SK-1,2026-12-10,10000.00,FP-A,6000.00\n"
                                          + "SK-1,2026-12-10,,FP-B,6000.00\n"), "t")
    assert "第2、3行的本次核销金额合计 ¥12,000.00" in str(refused.value)
    import_receivables_file(db, write(tmp_path / "收款核销3.csv", RECEIPT.format("本次核销金额")
                                      + "SK-1,2026-12-10,,FP-A,6000.00\n"
                                      + "SK-1,2026-12-10,,FP-B,6000.00\n"), "t")
    assert len(stored_payments(db)) == 2


def test_a_receipt_is_checked_against_what_the_file_lists_not_what_was_stored(two_invoices,
                                                                              tmp_path):
    """A file is authoritative for the allocations of every receipt it lists: what an earlier
    import stored for SK-1 is replaced, not added to the file's rows."""
    db = two_invoices
    import_receivables_file(db, write(tmp_path / "收款核销1.csv", RECEIPT.format("本次核销金额")
                                      + "SK-1,2026-12-10,10000.00,FP-A,6000.00\n"), "t")
    done = import_receivables_file(db, write(tmp_path / "收款核销2.csv", RECEIPT.format(
        "本次核销金额") + "SK-1,2026-12-10,10000.00,FP-B,8000.00\n"), "t")
    assert (done.created, done.removed) == (1, 1)
    assert stored_payments(db) == [("SK-1", "FP-B", Decimal("8000.00"))]


def test_the_same_receipt_total_on_two_sheets_without_its_shares_is_refused(two_invoices,
                                                                            tmp_path):
    db = two_invoices
    book = workbook(tmp_path / "收款核销.xlsx",
                    ("12月", [TOTALS, ["SK-1", "2026-12-10", 5000, "FP-A"]]),
                    ("1月", [TOTALS, ["SK-1", "2026-12-10", 5000, "FP-B"]]))
    with pytest.raises(ImportRefused) as refused:  # else 5,000 on each: 10,000 received
        import_receivables_file(db, book, "t")
    said = ("回款单 SK-1 核销 2 张发票（FP-A、FP-B），每行金额都是 ¥5,000.00：无法判断这是收款单的"
            "收款总额还是本张发票的核销金额；请导出收款核销记录时带上「本次核销金额」列后再导入（若确是"
            "每张发票各核销 ¥5,000.00，请把此列表头改为「本次核销金额」）")
    assert [str(p) for p in refused.value.problems] == [
        f"收款核销.xlsx[12月] 第2行「金额」：{said}", f"收款核销.xlsx[1月] 第2行「金额」：{said}"]
    assert stored_payments(db) == []


# --- more money on a blue invoice than is due on it ------------------------------------------

def test_more_allocated_to_an_invoice_than_its_amount_is_refused(two_invoices, tmp_path):
    db = two_invoices
    # 7,000 of a 10,000 receipt on FP-A of 6,000
    over = write(tmp_path / "收款核销.csv", RECEIPT.format("本次核销金额")
                 + "SK-1,2026-12-10,10000.00,FP-A,7000.00\nSK-1,2026-12-10,10000.00,FP-B,3000.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, over, "t")
    assert [str(p) for p in refused.value.problems] == [
        "收款核销.csv 第2行「核销金额」：回款 SK-1 核销发票 FP-A 合计 ¥7,000.00，超过该发票金额 "
        "¥6,000.00：一张收款单核销多张发票时，每张发票只计本次核销金额（请导出「本次核销金额」列），"
        "多收的款项请核销到其他发票或转预收"]
    assert stored_payments(db) == []
    # what is stored counts with the new file: 4,000 + 3,000 on FP-A
    import_receivables_file(db, write(tmp_path / "回款1.csv", PAYMENTS
                                      + "SK-1,FP-A,2026-12-10,4000.00\n"), "t")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, write(tmp_path / "回款2.csv", PAYMENTS
                                          + "SK-2,FP-B,2026-12-11,1000.00\n"
                                          + "SK-2,FP-A,2026-12-11,3000.00\n"), "t")
    assert [str(p) for p in refused.value.problems] == [
        "回款2.csv 第3行「金额」：回款 SK-1、SK-2 核销发票 FP-A 合计 ¥7,000.00，超过该发票金额 "
        "¥6,000.00：一张收款单核销多张发票时，每张发票只计本次核销金额（请导出「本次核销金额」列），"
        "多收的款项请核销到其他发票或转预收"]
    assert stored_payments(db) == [("SK-1", "FP-A", Decimal("4000.00"))]
    # exactly the amount is fine
    import_receivables_file(db, write(tmp_path / "回款3.csv", PAYMENTS
                                      + "SK-2,FP-A,2026-12-11,2000.00\n"), "t")


def test_a_blue_invoice_is_due_its_amount_less_its_red_invoices_less_refunds(two_invoices,
                                                                              tmp_path):
    db = two_invoices
    import_receivables_file(db, write(tmp_path / "红字.csv",
                                      "发票号码,客户名称,开票日期,到期日,价税合计,原发票号码\n"
                                      f"HP-B,{KANGDA},2026-12-01,2026-12-01,-2000.00,FP-B\n"), "t")
    # FP-B is due 6,000 now
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, write(tmp_path / "回款.csv", PAYMENTS
                                          + "SK-1,FP-B,2026-12-10,6500.00\n"), "t")
    assert [str(p) for p in refused.value.problems] == [
        "回款.csv 第2行「金额」：回款 SK-1 核销发票 FP-B 合计 ¥6,500.00，超过该发票金额 ¥6,000.00"
        "（蓝字发票 ¥8,000.00，扣除红字发票后）：一张收款单核销多张发票时，每张发票只计本次核销"
        "金额（请导出「本次核销金额」列），多收的款项请核销到其他发票或转预收"]
    # 8,000 paid before the red invoice, 2,000 of it given back through the red invoice
    import_receivables_file(db, write(tmp_path / "回款2.csv", PAYMENTS
                                      + "SK-1,FP-B,2026-12-10,8000.00\n"
                                      + "SK-9,HP-B,2026-12-12,2000.00\n"), "t")
    assert stored_payments(db) == [("SK-1", "FP-B", Decimal("8000.00")),
                                   ("SK-9", "HP-B", Decimal("2000.00"))]


REVERSED = "发票号码,客户名称,开票日期,到期日,价税合计,红冲状态,原发票号码\n"


def test_money_on_a_blue_invoice_marked_reversed_in_full_is_refused(two_invoices, tmp_path):
    """FP-B marked 已红冲 is due nothing (the payment rate counts it so): money left on it would
    count nowhere. Accepted once its red-letter invoice is there with the money given back."""
    db = two_invoices
    import_receivables_file(db, write(tmp_path / "应收.csv", REVERSED
                                      + f"FP-B,{KANGDA},2026-11-01,2026-12-20,8000.00,已红冲,\n"),
                            "t")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, write(tmp_path / "回款.csv", PAYMENTS
                                          + "SK-1,FP-A,2026-12-10,6000.00\n"
                                          + "SK-2,FP-B,2026-12-10,8000.00\n"), "t")
    assert [str(p) for p in refused.value.problems] == [
        "回款.csv 第3行「金额」：回款 SK-2 核销发票 FP-B 合计 ¥8,000.00，超过该发票金额 ¥0.00"
        "（蓝字发票 ¥8,000.00 已红冲）：已红冲的发票不再应收，其上的回款请改核销到其他发票，"
        "或与红字发票及退回款项的核销（收款退款单）一并导入"]
    assert stored_payments(db) == []
    # its red-letter invoice with the refund on it: nothing left on FP-B
    import_receivables_file(db, write(tmp_path / "红字.csv", REVERSED
                                      + f"HP-B,{KANGDA},2026-12-15,2026-12-15,-8000.00,,FP-B\n"),
                            "t")
    import_receivables_file(db, write(tmp_path / "回款2.csv", PAYMENTS
                                      + "SK-2,FP-B,2026-12-10,8000.00\n"
                                      + "SK-9,HP-B,2026-12-16,8000.00\n"), "t")
    assert rate(db)[0] == (600_000, 0)


def test_the_rest_sync_refuses_more_allocated_to_an_invoice_than_its_amount(hub):
    with ErpSimulator("token", page_size=10) as sim, RestFinance(
            sim.url, SecretStr("token"), 2.0, 2) as finance:
        rest_hub = dataclasses.replace(hub, finance=finance)
        sim.record_receivables(
            invoices=[invoice("FP-A", "2026-12-15", "6000.00"),
                      invoice("FP-B", "2026-12-20", "8000.00")],
            payments=[{"payment_no": "SK-1", "invoice_no": invoice_no, "paid_on": "2026-12-10",
                       "amount": "10000.00"} for invoice_no in ("FP-A", "FP-B")])
        with pytest.raises(ImportRefused) as refused:
            sync_receivables(rest_hub)
    assert [str(p) for p in refused.value.problems] == [
        "回款 SK-1 核销发票 FP-A 合计 ¥10,000.00，超过该发票金额 ¥6,000.00：一张收款单核销多张发票"
        "时，每张发票只计本次核销金额（请导出「本次核销金额」列），多收的款项请核销到其他发票或转预收",
        "回款 SK-1 核销发票 FP-B 合计 ¥10,000.00，超过该发票金额 ¥8,000.00：一张收款单核销多张发票"
        "时，每张发票只计本次核销金额（请导出「本次核销金额」列），多收的款项请核销到其他发票或转预收"]
    assert rate(hub.db_url) == ((0, 0), None)  # nothing stored, not even the invoices


# --- 金额, 税额 and 价税合计 --------------------------------------------------------------------

VAT = "发票号码,购买方名称,开票日期,到期日,金额,税额{}\n"


def due_on(db_url: str, number: str) -> Decimal:
    with session_scope(db_url) as s:
        return s.exec(select(ReceivableInvoice.amount)
                      .where(ReceivableInvoice.invoice_no == number)).one()


def test_tax_included_beside_amount_and_tax_is_what_is_due(seeded, tmp_path):
    db = seeded.db_url
    done = import_receivables_file(db, write(
        tmp_path / "应收.csv", VAT.format(",价税合计")
        + f"FP-V,{KANGDA},2026-11-01,2026-12-15,10000.00,1300.00,11300.00\n"), "t")
    assert (done.created, done.notes) == (1, [])
    assert due_on(db, "FP-V") == Decimal("11300.00")


def test_amount_and_tax_without_tax_included_are_added_and_said(seeded, tmp_path):
    db = seeded.db_url
    done = import_receivables_file(db, write(
        tmp_path / "应收.csv", VAT.format("")
        + f"FP-V,{KANGDA},2026-11-01,2026-12-15,10000.00,1300.00\n"), "t")
    assert done.created == 1
    assert done.notes == ["应收.csv：没有「价税合计」列，1 张发票的应收金额按「金额」（不含税）+「税额」计算"]
    assert due_on(db, "FP-V") == Decimal("11300.00")
    import_receivables_file(db, write(tmp_path / "回款.csv", PAYMENTS
                                      + "SK-1,FP-V,2026-12-10,10000.00\n"), "t")
    assert rounded(rate(db)) == ((1_130_000, 1_000_000), Decimal("0.8850"))


def test_amount_and_tax_of_opposite_signs_are_refused(seeded, tmp_path):
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, write(
            tmp_path / "应收.csv", VAT.format("")
            + f"FP-V,{KANGDA},2026-11-01,2026-12-15,10000.00,-1300.00\n"), "t")
    assert [str(p) for p in refused.value.problems] == [
        "应收.csv 第2行「税额」：税额 -1300.00 与金额 10000.00 正负不一致（红字发票的金额与税额均为负数）"]


def test_an_invoice_table_without_an_amount_names_both_columns(seeded, tmp_path):
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, write(
            tmp_path / "应收.csv", "发票号码,客户名称,开票日期,到期日,税额\n"
            f"FP-V,{KANGDA},2026-11-01,2026-12-15,1300.00\n"), "t")
    assert [str(p) for p in refused.value.problems] == [
        "应收.csv 第1行「价税合计」：缺少必填列：须有「价税合计」"
        "（也可写作：含税金额、应收金额）或「金额」（也可写作：发票金额）"]


# --- dates after today --------------------------------------------------------------------------

def test_a_payment_dated_after_today_is_refused(two_invoices, tmp_path):
    db = two_invoices
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, write(tmp_path / "回款.csv", PAYMENTS
                                          + "SK-1,FP-A,2026-12-10,1000.00\n"
                                          + "SK-2,FP-B,2062-12-10,1000.00\n"), "t")
    assert [str(p) for p in refused.value.problems] == [
        "回款.csv 第3行「回款日期」：回款日期 2062-12-10 晚于今天（2027-02-15）：尚未收到的款项不能"
        "登记为回款，请核对年份后再导入"]
    assert stored_payments(db) == []
    # today itself is fine
    import_receivables_file(db, write(tmp_path / "回款2.csv", PAYMENTS
                                      + f"SK-2,FP-B,{TODAY},1000.00\n"), "t")


def test_an_invoice_issued_after_today_is_refused_one_due_later_is_not(seeded, tmp_path):
    db = seeded.db_url
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, write(tmp_path / "应收.csv", INVOICES
                                          + f"FP-A,{KANGDA},2027-02-15,2027-05-15,6000.00\n"
                                          + f"FP-B,{KANGDA},2027-02-16,2027-05-16,8000.00\n"),
                                "t")
    assert [str(p) for p in refused.value.problems] == [
        "应收.csv 第3行「开票日期」：开票日期 2027-02-16 晚于今天（2027-02-15）：发票不能在将来开具，"
        "请核对年份后再导入（到期日可以是将来的日期）"]
    with session_scope(db) as s:
        assert s.exec(select(ReceivableInvoice)).all() == []


def test_the_rest_sync_refuses_a_payment_dated_after_today(hub):
    with ErpSimulator("token", page_size=10) as sim, RestFinance(
            sim.url, SecretStr("token"), 2.0, 2) as finance:
        rest_hub = dataclasses.replace(hub, finance=finance)
        sim.record_receivables(
            invoices=[invoice("FP-A", "2026-12-15", "6000.00")],
            payments=[{"payment_no": "SK-1", "invoice_no": "FP-A", "paid_on": "2062-12-10",
                       "amount": "6000.00"}])
        with pytest.raises(ImportRefused) as refused:
            sync_receivables(rest_hub)
    assert [str(p) for p in refused.value.problems] == [
        "回款 SK-1（发票 FP-A）：回款日期 2062-12-10 晚于今天（2027-02-15）：尚未收到的款项不能登记为"
        "回款，请核对年份后再导入"]
    assert rate(hub.db_url) == ((0, 0), None)


@pytest.fixture
def cli(seeded, monkeypatch, capsys, tmp_path):
    from tests.support import in_process_cli

    yield from in_process_cli(monkeypatch, capsys, seeded.db_url, tmp_path / "data")


def test_the_cli_says_the_amount_was_taken_as_amount_plus_tax(cli, tmp_path):
    code, out, err = cli("receivables", "import", write(
        tmp_path / "应收.csv", VAT.format("")
        + f"FP-V,{KANGDA},2026-11-01,2026-12-15,10000.00,1300.00\n"))
    assert (code, err) == (0, "")
    assert out == ("应收/回款导入完成：新增 1，更新 0，未变 0。\n"
                   "  说明：应收.csv：没有「价税合计」列，1 张发票的应收金额按「金额」（不含税）+「税额」计算\n")
