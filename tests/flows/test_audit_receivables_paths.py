"""Audit (receivables paths): the same invoices and payments sent as export files
(`salesops receivables import`, the drop folder's daily sync) and over the finance REST sync
end in the same stored rows and the same payment rate; a re-run changes nothing.

Each test here that fails shows a defect (see the report of the audit-recv branch)."""
from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from pydantic import SecretStr

from connectors.finance import RestFinance
from flows.rebate_data import payment_rates
from flows.sales_facts import import_receivables_file, sync_receivables
from models.db import get_engine, session_scope
from tests.flows.test_audit5_receivables import INVOICES, PAYMENTS, allocations, write
from tests.rebate_support import customer_id
from tests.simulators.erp_sim import ErpSimulator

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"
UNKNOWN = "未建档的某公司"


def invoices_of(db_url: str, customer: int) -> list[tuple]:
    with get_engine(db_url).connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT invoice_no, amount FROM receivable_invoice WHERE customer_id = :c "
            "AND issued_on >= '2026-10-01' ORDER BY invoice_no"), {"c": customer})]


def december_amounts(db_url: str, customer: int) -> tuple[int, int]:
    """(due, paid on time) in fen of the window the December 2026 payment rate reads."""
    with session_scope(db_url) as s:
        return payment_rates(s, [customer], D(2026, 12, 1), D(2026, 12, 1)).amounts(
            customer, "2026-12")


def rest(hub, sim: ErpSimulator):
    finance = RestFinance(sim.url, SecretStr("token"), 2.0, 2)
    return finance, dataclasses.replace(hub, finance=finance)


def invoice(number: str, customer: str = KANGDA, amount: str = "1000.00", **more) -> dict:
    return {"invoice_no": number, "customer_uscc": None, "customer_name": customer,
            "issued_on": "2026-10-01", "due_on": "2026-11-01", "amount": amount, **more}


def payment(payment_no: str, invoice_no: str, amount: str, paid_on: str = "2026-10-20") -> dict:
    return {"payment_no": payment_no, "invoice_no": invoice_no, "paid_on": paid_on,
            "amount": amount}


# --- the sync re-reading pages behind a held cursor --------------------------------------------

def test_the_drop_folder_sync_is_not_stuck_re_reading_a_page_behind_its_held_cursor(hub):
    """A held cursor (an invoice of a customer not on file yet) makes every sync read the
    later exports again, in order. Re-read, an older export puts a payment back on the
    invoice a later export moved it from — while another payment filled that invoice since:
    the over-allocation check refuses the old page, and the sync stops there at every run,
    although each export was accepted when first read and the final state is consistent."""
    inbound = hub.settings.path("finance-drop") / "receivables-inbound"
    write(inbound / "20261101-应收.csv", INVOICES
          + f"FP-A,{KANGDA},2026-10-01,2026-11-01,1000.00\n"
            f"FP-B,{KANGDA},2026-10-01,2026-11-01,1000.00\n"
            f"FP-U,{UNKNOWN},2026-10-01,2026-11-01,500.00\n")
    write(inbound / "20261102-回款.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n")
    # finance moved SK-1 to FP-B, and SK-2 settles FP-A in full
    write(inbound / "20261103-回款.csv", PAYMENTS + "SK-1,FP-B,2026-10-20,600.00\n"
                                                   "SK-2,FP-A,2026-10-25,1000.00\n")
    done = sync_receivables(hub)  # observed: ImportRefused at 20261102-回款.csv (FP-A ¥1,600)
    assert done.skipped and "FP-U" in done.skipped[0]
    assert allocations(hub.db_url, "SK-1") == [("FP-B", 600)]
    assert allocations(hub.db_url, "SK-2") == [("FP-A", 1000)]


def test_the_rest_sync_is_not_stuck_re_reading_a_page_behind_its_held_cursor(hub):
    """The same over REST: page 2 holds the cursor (a customer not on file), page 3 moves
    SK-1 and fills FP-A with SK-2; the next sync reads page 2 again and is refused, every
    day, so nothing finance records after it is read any more."""
    with ErpSimulator("token", page_size=2) as sim:
        finance, rest_hub = rest(hub, sim)
        with finance:
            sim.record_receivables(invoices=[invoice("FP-A"), invoice("FP-B"),
                                             invoice("FP-U", UNKNOWN, "500.00")],
                                   payments=[payment("SK-1", "FP-A", "600.00")])
            first = sync_receivables(rest_hub)
            assert first.skipped and allocations(hub.db_url, "SK-1") == [("FP-A", 600)]
            sim.record_receivables(payments=[payment("SK-1", "FP-B", "600.00"),
                                             payment("SK-2", "FP-A", "1000.00", "2026-10-25")])
            sync_receivables(rest_hub)  # observed: refused at page 2 (FP-A ¥1,600 > ¥1,000)
            sim.record_receivables(payments=[payment("SK-3", "FP-B", "400.00", "2026-10-28")])
            sync_receivables(rest_hub)
    assert allocations(hub.db_url, "SK-1") == [("FP-B", 600)]
    assert allocations(hub.db_url, "SK-2") == [("FP-A", 1000)]
    assert allocations(hub.db_url, "SK-3") == [("FP-B", 400)]


# --- identifiers: one document, one key, whichever path ----------------------------------------

def test_a_rest_page_keys_full_width_numbers_as_the_file_import_does(hub, tmp_path):
    """docs/finance.md: identifiers are read with full-width letters and digits made
    half-width (`ＦＰ－Ａ` is the `FP-A` finance's system writes). The file import does so;
    the REST page keeps `ＦＰ－Ａ` as it is: the invoice a file stored is stored a second time
    (due counted twice), and a payment naming it lands on the copy."""
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    import_receivables_file(db, write(tmp_path / "应收.csv", INVOICES
                                      + f"FP-A,{KANGDA},2026-10-01,2026-11-01,1000.00\n"), "t")
    before = december_amounts(db, kangda)
    with ErpSimulator("token", page_size=10) as sim:
        finance, rest_hub = rest(hub, sim)
        with finance:
            sim.record_receivables(invoices=[invoice("ＦＰ－Ａ")],
                                   payments=[payment("ＳＫ－１", "ＦＰ－Ａ", "1000.00")])
            sync_receivables(rest_hub)
    assert invoices_of(db, kangda) == [("FP-A", 1000)]  # observed: FP-A and ＦＰ－Ａ
    assert allocations(db, "SK-1") == [("FP-A", 1000)]
    assert december_amounts(db, kangda) == (before[0], before[1] + 100000)


# --- the same facts both ways: nothing new the second time -------------------------------------

KANGDA_USCC = "91320500MA1K2D3F5H"


def oplog_count(db_url: str) -> int:
    with get_engine(db_url).connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM operation_log WHERE entity IN "
            "('receivable_invoice', 'payment')")).scalar()


def test_facts_imported_from_files_then_sent_over_rest_change_nothing(hub, tmp_path):
    """Invoices (one re-sent with its due date corrected), a red-letter invoice, a receipt
    split over two invoices then moved, a payment on the due date, a voided receipt — as
    files, then the same final facts over REST naming the customer by USCC and a short name:
    REST finds every row as the files left it (nothing created, updated or removed, no
    operation log), and re-importing the files changes nothing either."""
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    base = december_amounts(db, kangda)
    files = [
        write(tmp_path / "1-应收.csv", INVOICES + f"FP-A,{KANGDA},2026-10-01,2026-11-01,1000.00\n"
                                                f"FP-B,{KANGDA},2026-10-01,2026-11-01,1000.00\n"
                                                f"FP-C,{KANGDA},2026-10-01,2026-10-15,500.00\n"),
        write(tmp_path / "2-回款.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,300.00\n"
                                                 "SK-1,FP-B,2026-10-20,300.00\n"
                                                 "SK-2,FP-B,2026-11-01,700.00\n"
                                                 "SK-3,FP-C,2026-10-10,500.00\n"),
        write(tmp_path / "3-应收.csv", "发票号,客户名称,开票日期,到期日,价税合计,原发票号码\n"
              f"FP-C,{KANGDA},2026-10-01,2026-11-15,500.00,\n"
              f"HP-A,{KANGDA},2026-10-25,2026-11-25,-200.00,FP-A\n"),
        write(tmp_path / "4-回款.csv", "回款单号,发票号,回款日期,金额,作废状态\n"
                                       "SK-1,FP-A,2026-10-20,600.00,\n"
                                       "SK-3,FP-C,2026-10-10,500.00,已作废\n"),
    ]
    for path in files:
        import_receivables_file(db, path, "t")
    due, on_time = december_amounts(db, kangda)
    # due: FP-A 1000 − 200 red, FP-B 1000, FP-C 500 (now due 11-15); on time: SK-1 600 on
    # FP-A, SK-2 700 paid on FP-B's due date; SK-3 voided
    assert (due - base[0], on_time - base[1]) == (230000, 130000)
    assert allocations(db, "SK-1") == [("FP-A", 600)] and allocations(db, "SK-3") == []
    logged = oplog_count(db)

    for path in files[2:]:  # the last exports again: nothing news
        again = import_receivables_file(db, path, "t")
        assert (again.created, again.updated, again.removed, again.moved) == (0, 0, 0, [])
    assert oplog_count(db) == logged

    by_uscc = {"customer_uscc": KANGDA_USCC, "customer_name": "康达医疗"}
    with ErpSimulator("token", page_size=20) as sim:
        finance, rest_hub = rest(hub, sim)
        with finance:
            sim.record_receivables(
                invoices=[invoice("FP-A", **by_uscc), invoice("FP-B", **by_uscc),
                          invoice("FP-C", amount="500.00", due_on="2026-11-15", **by_uscc),
                          invoice("HP-A", amount="-200.00", issued_on="2026-10-25",
                                  due_on="2026-11-25", original_invoice_no="FP-A", **by_uscc)],
                payments=[payment("SK-1", "FP-A", "600.00"),
                          payment("SK-2", "FP-B", "700.00", "2026-11-01"),
                          {**payment("SK-3", "FP-C", "500.00", "2026-10-10"), "voided": True}])
            done = sync_receivables(rest_hub)
            again = sync_receivables(rest_hub)
    assert (done.created, done.updated, done.removed, done.moved, done.skipped) == (
        0, 0, 0, [], [])
    assert again.as_dict() == {"created": 0, "updated": 0, "unchanged": 0, "skipped": [],
                               "removed": 0, "moved": [], "notes": []}
    assert oplog_count(db) == logged
    assert december_amounts(db, kangda) == (due, on_time)


SHENKANG, SHENKANG_USCC = "上海申康医疗科技有限公司", "91310000MA1FL3K7X9"


def test_an_invoice_of_a_merged_customer_lands_on_the_survivor_by_name_or_uscc(hub, tmp_path):
    """申康 merged into 康达: its invoice re-sent by file (its old legal name) or over REST (its
    USCC, or its short name) is the survivor's, unchanged; a new one is the survivor's too."""
    from models.customer_files import merge_customers

    db = hub.db_url
    kangda, shenkang = customer_id(db, KANGDA), customer_id(db, SHENKANG)
    first = write(tmp_path / "应收.csv", INVOICES + f"FP-S,{SHENKANG},2026-10-01,2026-11-01,800.00\n")
    import_receivables_file(db, first, "t")
    with session_scope(db) as s:
        merge_customers(s, kangda, shenkang, "t")
    logged = oplog_count(db)
    assert import_receivables_file(db, first, "t").unchanged == 1
    with ErpSimulator("token", page_size=20) as sim:
        finance, rest_hub = rest(hub, sim)
        with finance:
            sim.record_receivables(invoices=[
                invoice("FP-S", SHENKANG, "800.00", customer_uscc=SHENKANG_USCC),
                invoice("FP-T", "申康医疗", "300.00")])
            done = sync_receivables(rest_hub)
    assert (done.created, done.updated, done.unchanged, done.skipped) == (1, 0, 1, [])
    assert oplog_count(db) == logged + 1  # FP-T created
    assert invoices_of(db, kangda)[-2:] == [("FP-S", 800), ("FP-T", 300)]
