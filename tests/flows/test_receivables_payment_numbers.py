"""Two 回款单 of one number (two 账套 or bank accounts numbering 收款单 each from SK-0001, or
numbering restarting every year): the second must not silently replace the first's
allocations (the first customer's payment rate would drop). What cannot be one payment is
refused with the rows (and the stored payment) named; nothing is written."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from pydantic import SecretStr
from sqlmodel import select

from connectors.finance import RestFinance
from flows.sales_facts import ImportRefused, import_receivables_file, sync_receivables
from models import Payment
from models.db import session_scope
from tests.flows.test_audit5_receivables import (
    INVOICES, KANGDA, PAYMENTS, RENHE, VOID_PAYMENTS, allocations, paid_on_time, write,
)
from tests.rebate_support import clock_from, customer_id
from tests.simulators.erp_sim import ErpSimulator


@pytest.fixture(autouse=True)
def _after_the_files_dates():
    """Today is after every date these files give (a payment or invoice dated after today is
    refused)."""
    clock_from(dt.date(2028, 1, 1))


@pytest.fixture
def invoices_of_two_customers(seeded, tmp_path):
    """FP-A of 康达 and FP-R of 仁和, 1000.00 each, due 2026-11-01; FP-N of 康达 due 2027-11-01."""
    write(tmp_path / "应收.csv", INVOICES + f"FP-A,{KANGDA},2026-10-01,2026-11-01,1000.00\n"
                                           f"FP-R,{RENHE},2026-10-01,2026-11-01,1000.00\n"
                                           f"FP-N,{KANGDA},2027-10-01,2027-11-01,1000.00\n")
    assert import_receivables_file(seeded.db_url, tmp_path / "应收.csv", "t").created == 3
    return seeded.db_url


def test_one_file_giving_one_number_to_two_customers_is_refused_naming_both_rows(
        invoices_of_two_customers, tmp_path):
    db = invoices_of_two_customers
    both = write(tmp_path / "回款.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n"
                                                 "SK-1,FP-R,2026-10-20,500.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, both, "t")
    assert [str(p) for p in refused.value.problems] == [
        f"回款.csv 第3行「回款单号」：回款单号 SK-1 在本表第2行是客户“{KANGDA}”的回款，此行是"
        f"客户“{RENHE}”的：一张回款单只属于一个客户。若是两个账套（或银行账户）各自编号的两张"
        "收款单，请在导出时给回款单号加上账套前缀（如 A-SK-1、B-SK-1）后再导入"]
    assert allocations(db, "SK-1") == []


def test_one_file_giving_one_number_dates_in_two_years_is_refused_naming_both_rows(
        invoices_of_two_customers, tmp_path):
    db = invoices_of_two_customers
    both = write(tmp_path / "回款.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n"
                                                 "SK-1,FP-N,2027-10-20,500.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, both, "t")
    assert [str(p) for p in refused.value.problems] == [
        "回款.csv 第3行「回款日期」：回款单号 SK-1 在本表第2行的回款日期是 2026-10-20，此行是 "
        "2027-10-20，不在同一年：不是同一张回款单。若是两张收款单（不同账套、银行账户或年度各自编号），"
        "请在导出时给回款单号加上账套或年度前缀（如 A-SK-1、2027-SK-1）后再导入"]
    assert allocations(db, "SK-1") == []


def test_another_customers_payment_of_a_stored_number_does_not_replace_it(
        invoices_of_two_customers, tmp_path):
    """Today's silent overwrite: 仁和's SK-1 (another 账套) took 康达's SK-1 off FP-A."""
    db = invoices_of_two_customers
    kangda = customer_id(db, KANGDA)
    import_receivables_file(db, write(tmp_path / "回款A.csv",
                                      PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n"), "t")
    assert paid_on_time(db, kangda) == 60000
    other = write(tmp_path / "回款B.csv", PAYMENTS + "SK-1,FP-R,2026-10-25,500.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, other, "t")
    assert [str(p) for p in refused.value.problems] == [
        f"回款B.csv 第2行「回款单号」：回款单号 SK-1 已登记为客户“{KANGDA}”2026-10-20 的回款"
        f"（核销发票 FP-A），此行是客户“{RENHE}”2026-10-25 的：不是同一张回款单。若是两个账套（或银行账户）"
        "各自编号的收款单，请在导出时给回款单号加上账套前缀（如 A-SK-1、B-SK-1）后再导入"]
    assert allocations(db, "SK-1") == [("FP-A", 600)]
    assert paid_on_time(db, kangda) == 60000


def test_the_same_number_a_year_later_does_not_replace_the_stored_payment(
        invoices_of_two_customers, tmp_path):
    db = invoices_of_two_customers
    import_receivables_file(db, write(tmp_path / "回款2026.csv",
                                      PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n"), "t")
    later = write(tmp_path / "回款2027.csv", PAYMENTS + "SK-1,FP-N,2027-10-20,1000.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, later, "t")
    assert [str(p) for p in refused.value.problems] == [
        f"回款2027.csv 第2行「回款日期」：回款单号 SK-1 已登记为客户“{KANGDA}”2026-10-20 的回款"
        "（核销发票 FP-A），此行的回款日期是 2027-10-20，不在同一年：不是同一张回款单。若收款单号"
        "按年度重新编号，请在导出时给回款单号加上年度前缀（如 2027-SK-1）后再导入"]
    assert allocations(db, "SK-1") == [("FP-A", 600)]


def test_a_payment_moved_or_its_date_corrected_in_the_year_is_still_one_payment(
        invoices_of_two_customers, tmp_path):
    db = invoices_of_two_customers
    write(tmp_path / "应收2.csv", INVOICES + f"FP-B,{KANGDA},2026-10-01,2026-11-01,1000.00\n")
    import_receivables_file(db, tmp_path / "应收2.csv", "t")
    import_receivables_file(db, write(tmp_path / "回款1.csv",
                                      PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n"), "t")
    done = import_receivables_file(db, write(tmp_path / "回款2.csv",
                                             PAYMENTS + "SK-1,FP-B,2026-10-22,600.00\n"), "t")
    assert done.removed == 1
    assert allocations(db, "SK-1") == [("FP-B", 600)]
    with session_scope(db) as s:  # the date finance corrected is the one stored
        assert s.exec(select(Payment.paid_on).where(Payment.payment_no == "SK-1")).all() == [
            dt.date(2026, 10, 22)]


# --- voiding (作废) a number: only the payment it names ---------------------------------------
# The hub keeps no 账套: a stored 回款单号 is one payment of one customer in one year (the
# import refuses a second). A voided row of another customer on another day, or of another
# year, is another 账套's (or year's) 回款单: it must not take the stored one's money away.

@pytest.fixture
def kangdas_payment(invoices_of_two_customers, tmp_path):
    """SK-1 of 康达 (账套 A), 600.00 on FP-A, 2026-10-20: 60,000 fen on time."""
    db = invoices_of_two_customers
    import_receivables_file(db, write(tmp_path / "回款A.csv",
                                      PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n"), "t")
    assert paid_on_time(db, customer_id(db, KANGDA)) == 60000
    return db


def test_voiding_another_customers_payment_of_the_number_leaves_the_stored_one(
        kangdas_payment, tmp_path):
    """账套 B voids its own SK-1 (仁和, FP-R, another day): 康达's SK-1 was removed."""
    db = kangdas_payment
    voided = write(tmp_path / "回款B.csv", VOID_PAYMENTS + "SK-1,FP-R,2026-10-25,500.00,已作废\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, voided, "t")
    assert [str(p) for p in refused.value.problems] == [
        f"回款B.csv 第2行「回款单号」：回款单号 SK-1 已登记为客户“{KANGDA}”2026-10-20 的回款"
        f"（核销发票 FP-A），此作废行是客户“{RENHE}”2026-10-25 的：不是同一张回款单。若是两个账套"
        "（或银行账户）各自编号的收款单，请在导出时给回款单号加上账套前缀（如 A-SK-1、B-SK-1）后再导入"]
    with pytest.raises(ImportRefused):  # the sync's leniency is for unknown records only
        import_receivables_file(db, voided, "t", skip_unknown=True)
    assert allocations(db, "SK-1") == [("FP-A", 600)]
    assert paid_on_time(db, customer_id(db, KANGDA)) == 60000

    # with its 账套 prefix it is a number of its own, never stored: nothing to take back
    done = import_receivables_file(db, write(tmp_path / "回款B2.csv", VOID_PAYMENTS
                                             + "B-SK-1,FP-R,2026-10-25,500.00,已作废\n"), "t")
    assert (done.removed, done.moved, done.skipped) == (0, [], [])
    assert allocations(db, "SK-1") == [("FP-A", 600)]


def test_voiding_the_number_of_another_year_leaves_the_stored_payment(kangdas_payment, tmp_path):
    db = kangdas_payment
    voided = write(tmp_path / "回款2027.csv",
                   VOID_PAYMENTS + "SK-1,FP-N,2027-10-20,1000.00,已作废\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, voided, "t")
    assert [str(p) for p in refused.value.problems] == [
        f"回款2027.csv 第2行「回款日期」：回款单号 SK-1 已登记为客户“{KANGDA}”2026-10-20 的回款"
        "（核销发票 FP-A），此作废行的回款日期是 2027-10-20，不在同一年：不是同一张回款单。若收款单号"
        "按年度重新编号，请在导出时给回款单号加上年度前缀（如 2027-SK-1）后再导入"]
    assert allocations(db, "SK-1") == [("FP-A", 600)]


def test_a_void_that_cannot_be_told_from_another_payment_waits_for_its_invoice(
        kangdas_payment, tmp_path):
    """A voided SK-1 on an invoice not on file, another day: no customer to compare."""
    db = kangdas_payment
    voided = write(tmp_path / "回款B.csv", VOID_PAYMENTS + "SK-1,FP-X,2026-10-25,500.00,已作废\n")
    said = (f"回款 SK-1：已作废，但所列发票 FP-X 不存在，无法确认它就是已登记的回款单 SK-1"
            f"（客户“{KANGDA}”2026-10-20 的回款，核销发票 FP-A；此作废行的回款日期是 2026-10-25）")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, voided, "t")
    assert [str(p) for p in refused.value.problems] == [
        f"回款B.csv 第2行「发票号」：{said}：请先导入该发票；若是两个账套（或银行账户）各自编号的"
        "收款单，请在导出时给回款单号加上账套前缀（如 A-SK-1、B-SK-1）后再导入"]
    done = import_receivables_file(db, voided, "t", skip_unknown=True)
    assert (done.removed, done.skipped) == (0, [f"{said}，暂不撤销"])
    assert allocations(db, "SK-1") == [("FP-A", 600)]


def test_one_export_voiding_one_number_for_two_customers_is_refused(kangdas_payment, tmp_path):
    db = kangdas_payment
    both = write(tmp_path / "回款.csv", VOID_PAYMENTS + "SK-1,FP-A,2026-10-20,600.00,已作废\n"
                                                      "SK-1,FP-R,2026-10-20,500.00,已作废\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, both, "t")
    assert "回款.csv 第3行「回款单号」：回款单号 SK-1 在本表第2行是客户" in str(refused.value)
    assert allocations(db, "SK-1") == [("FP-A", 600)]


@pytest.mark.parametrize("row", [
    "SK-1,FP-A,2026-10-28,600.00",  # its date corrected in the year, then voided
    "SK-1,FP-R,2026-10-20,600.00",  # re-booked to 仁和 on its own day (one payment), voided
    "SK-1,FP-X,2026-10-20,600.00",  # moved to an invoice not on file, the same day
])
def test_voiding_the_stored_payment_itself_takes_it_back(kangdas_payment, tmp_path, row):
    db = kangdas_payment
    done = import_receivables_file(db, write(tmp_path / "回款.csv",
                                             VOID_PAYMENTS + row + ",已作废\n"), "t")
    assert (done.removed, done.moved) == (1, ["回款 SK-1：已作废，撤销对发票 FP-A 的核销"])
    assert allocations(db, "SK-1") == []
    assert paid_on_time(db, customer_id(db, KANGDA)) == 0


def test_the_rest_sync_voids_only_the_payment_it_names(hub):
    def invoice(number: str, customer: str) -> dict:
        return {"invoice_no": number, "customer_uscc": None, "customer_name": customer,
                "issued_on": "2026-10-01", "due_on": "2026-11-01", "amount": "1000.00"}

    def payment(number: str, day: str, **extra) -> dict:
        return {"payment_no": "SK-1", "invoice_no": number, "paid_on": day, "amount": "600.00",
                **extra}

    db = hub.db_url
    with ErpSimulator("token", page_size=10) as sim, RestFinance(
            sim.url, SecretStr("token"), 2.0, 2) as finance:
        rest_hub = dataclasses.replace(hub, finance=finance)
        sim.record_receivables(invoices=[invoice("FP-A", KANGDA), invoice("FP-R", RENHE)],
                               payments=[payment("FP-A", "2026-10-20")])
        assert sync_receivables(rest_hub).created == 3
        # 账套 B's SK-1, voided: refused as its payment in force would be, SK-1 of 康达 stays
        sim.record_receivables(payments=[payment("FP-R", "2026-10-25", voided=True)])
        with pytest.raises(ImportRefused) as refused:
            sync_receivables(rest_hub)
        assert "此作废行是客户“浙江仁和医疗器械有限公司”2026-10-25 的：不是同一张回款单" in str(
            refused.value)
        assert allocations(db, "SK-1") == [("FP-A", 600)]
        assert paid_on_time(db, customer_id(db, KANGDA)) == 60000
