"""Two 回款单 of one number (two 账套 or bank accounts numbering 收款单 each from SK-0001, or
numbering restarting every year): the second must not silently replace the first's
allocations (the first customer's payment rate would drop). What cannot be one payment is
refused with the rows (and the stored payment) named; nothing is written."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from flows.sales_facts import ImportRefused, import_receivables_file
from models import Payment
from models.db import session_scope
from tests.flows.test_audit5_receivables import (
    INVOICES, KANGDA, PAYMENTS, RENHE, allocations, paid_on_time, write,
)
from tests.rebate_support import customer_id


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
