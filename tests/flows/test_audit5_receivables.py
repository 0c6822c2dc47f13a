"""Audit round 5 (receivables keys): a 回款 that finance moved to another invoice is counted
once, on the invoice it settles now, through every import path; old-style invoices are keyed
by 发票代码 and 发票号码 together. A 回款单 finance voided (作废) counts no more, through every
path too."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from connectors.base import PermanentError
from connectors.finance import RestFinance, parse_receivables_page
from flows.rebate_data import payment_rates
from flows.sales_facts import ImportRefused, import_receivables_file, sync_receivables
from models import Payment, ReceivableInvoice
from models.db import get_engine, session_scope
from tests.rebate_support import customer_id
from tests.simulators.erp_sim import ErpSimulator

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"
RENHE = "浙江仁和医疗器械有限公司"
INVOICES = "发票号,客户名称,开票日期,到期日,金额\n"
PAYMENTS = "回款单号,发票号,回款日期,金额\n"
CODED_INVOICES = "发票代码,发票号码,客户名称,开票日期,到期日,价税合计\n"
CODED_PAYMENTS = "收款单号,发票代码,发票号码,到账日期,收款金额\n"
CODE_1, CODE_2 = "044001900111", "3200191130"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def allocations(db_url: str, payment_no: str) -> list[tuple]:
    with get_engine(db_url).connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT invoice_no, amount FROM payment WHERE payment_no = :p ORDER BY invoice_no"),
            {"p": payment_no})]


def log_entries(db_url: str, entity: str, action: str) -> list[dict]:
    with get_engine(db_url).connect() as conn:
        return [json.loads(c) for c, in conn.execute(sa.text(
            "SELECT changes FROM operation_log WHERE entity = :e AND action = :a ORDER BY id"),
            {"e": entity, "a": action})]


def paid_on_time(db_url: str, customer: int) -> int:
    """Fen paid on time that the December 2026 payment rate counts for the customer."""
    with session_scope(db_url) as s:
        return payment_rates(s, [customer], D(2026, 12, 1), D(2026, 12, 1)).amounts(
            customer, "2026-12")[1]


@pytest.fixture
def two_invoices(seeded, tmp_path):
    """FP-A and FP-B of 康达, 1000.00 each, due 2026-11-01."""
    write(tmp_path / "应收.csv", INVOICES + f"FP-A,{KANGDA},2026-10-01,2026-11-01,1000.00\n"
                                           f"FP-B,{KANGDA},2026-10-01,2026-11-01,1000.00\n")
    assert import_receivables_file(seeded.db_url, tmp_path / "应收.csv", "t").created == 2
    return seeded.db_url


# --- a payment moved to another invoice ------------------------------------------------------

def test_a_payment_moved_to_another_invoice_counts_once(two_invoices, tmp_path):
    db = two_invoices
    kangda = customer_id(db, KANGDA)
    before = paid_on_time(db, kangda)
    first = write(tmp_path / "回款1.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n")
    assert import_receivables_file(db, first, "t").created == 1
    assert paid_on_time(db, kangda) - before == 60000

    moved = write(tmp_path / "回款2.csv", PAYMENTS + "SK-1,FP-B,2026-10-20,600.00\n")
    done = import_receivables_file(db, moved, "clerk")
    assert (done.created, done.removed) == (1, 1)
    assert done.moved == ["回款 SK-1：不再核销发票 FP-A，现核销发票 FP-B"]
    assert allocations(db, "SK-1") == [("FP-B", 600)]
    assert paid_on_time(db, kangda) - before == 60000  # once, not 1200.00
    deleted = log_entries(db, "payment", "delete")
    assert [(e["payment_no"], e["invoice_no"], e["amount"]) for e in deleted] == [
        (["SK-1", None], ["FP-A", None], ["600.00", None])]

    again = import_receivables_file(db, moved, "clerk")  # the same file again: nothing moves
    assert (again.unchanged, again.removed, again.moved) == (1, 0, [])


def test_a_split_payment_keeps_every_invoice_it_lists(two_invoices, tmp_path):
    db = two_invoices
    write(tmp_path / "回款1.csv", PAYMENTS + "SK-2,FP-A,2026-10-20,300.00\n"
                                          "SK-2,FP-B,2026-10-20,300.00\n"
                                          "SK-3,FP-A,2026-10-21,100.00\n")
    assert import_receivables_file(db, tmp_path / "回款1.csv", "t").created == 3
    assert allocations(db, "SK-2") == [("FP-A", 300), ("FP-B", 300)]

    # finance books all of SK-2 on FP-A now; SK-3, not in this file, is left as it is
    write(tmp_path / "回款2.csv", PAYMENTS + "SK-2,FP-A,2026-10-20,600.00\n")
    done = import_receivables_file(db, tmp_path / "回款2.csv", "t")
    assert (done.updated, done.removed) == (1, 1)
    assert done.moved == ["回款 SK-2：不再核销发票 FP-B，现核销发票 FP-A"]
    assert allocations(db, "SK-2") == [("FP-A", 600)]
    assert allocations(db, "SK-3") == [("FP-A", 100)]


def test_a_payment_moved_to_an_unknown_invoice_stays_where_it_was(two_invoices, tmp_path):
    db = two_invoices
    import_receivables_file(db, write(tmp_path / "回款1.csv",
                                      PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n"), "t")
    moved = write(tmp_path / "回款2.csv", PAYMENTS + "SK-1,FP-B,2026-10-20,300.00\n"
                                                   "SK-1,FP-X,2026-10-20,300.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, moved, "t")
    assert "回款 SK-1：发票 FP-X 不存在" in str(refused.value)
    assert allocations(db, "SK-1") == [("FP-A", 600)]  # nothing written

    # skipped: the whole payment waits for FP-X, neither lost nor counted on two invoices
    done = import_receivables_file(db, moved, "t", skip_unknown=True)
    assert (done.created, done.removed) == (0, 0)
    assert done.skipped == ["回款 SK-1：发票 FP-X 不存在（该回款单其余各行一并暂不登记）"]
    assert allocations(db, "SK-1") == [("FP-A", 600)]


def test_the_daily_sync_moves_a_payment_as_the_file_import_does(hub):
    inbound = hub.settings.path("finance-drop") / "receivables-inbound"
    write(inbound / "20261101-应收.csv", INVOICES
          + f"FP-A,{KANGDA},2026-10-01,2026-11-01,1000.00\n"
            f"FP-B,{KANGDA},2026-10-01,2026-11-01,1000.00\n")
    write(inbound / "20261102-回款.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n")
    assert sync_receivables(hub).created == 3
    write(inbound / "20261103-回款.csv", PAYMENTS + "SK-1,FP-B,2026-10-20,600.00\n")
    done = sync_receivables(hub)
    assert (done.created, done.removed, done.skipped) == (1, 1, [])
    assert done.moved == ["回款 SK-1：不再核销发票 FP-A，现核销发票 FP-B"]
    assert allocations(hub.db_url, "SK-1") == [("FP-B", 600)]
    assert done.as_dict()["removed"] == 1
    # both exports read by one sync: only the receipt's last version is stored, no move
    write(inbound / "20261104-回款.csv", PAYMENTS + "SK-2,FP-A,2026-10-21,100.00\n")
    write(inbound / "20261105-回款.csv", PAYMENTS + "SK-2,FP-B,2026-10-21,100.00\n")
    done = sync_receivables(hub)
    assert (done.created, done.removed, done.moved) == (1, 0, [])
    assert allocations(hub.db_url, "SK-2") == [("FP-B", 100)]


# --- old-style invoices: 发票代码 + 发票号码 ---------------------------------------------------

def test_old_style_invoices_of_one_number_under_two_codes_are_two_invoices(seeded, tmp_path):
    db = seeded.db_url
    write(tmp_path / "应收.csv", CODED_INVOICES
          + f"{CODE_1},04419876,{KANGDA},2026-10-01,2026-11-01,1000.00\n"
            f"{CODE_2},04419876,{RENHE},2026-10-02,2026-11-02,2000.00\n"
            f",24322000000012345678,{RENHE},2026-10-03,2026-11-03,300.00\n")
    assert import_receivables_file(db, tmp_path / "应收.csv", "t").created == 3
    write(tmp_path / "回款.csv", CODED_PAYMENTS + f"SK-7,{CODE_2},04419876,2026-10-30,2000.00\n"
                                               "SK-8,,24322000000012345678,2026-10-30,300\n")
    assert import_receivables_file(db, tmp_path / "回款.csv", "t").created == 2
    with session_scope(db) as s:
        stored = {i.invoice_no: (i.customer_id, i.amount) for i in s.exec(
            sa.select(ReceivableInvoice).where(ReceivableInvoice.issued_on >= D(2026, 10, 1)
                                               )).scalars()}
        assert stored == {f"{CODE_1}-04419876": (customer_id(db, KANGDA), 1000),
                          f"{CODE_2}-04419876": (customer_id(db, RENHE), 2000),
                          "24322000000012345678": (customer_id(db, RENHE), 300)}
        paid = s.exec(sa.select(Payment).where(Payment.payment_no == "SK-7")).scalars().one()
        assert (paid.invoice_no, paid.customer_id) == (f"{CODE_2}-04419876",
                                                       customer_id(db, RENHE))


@pytest.mark.parametrize("text, needle", [
    (INVOICES + f"04419876,{KANGDA},2026-10-01,2026-11-01,1000.00\n",
     "第2行「发票代码」：发票号码 04419876 是8位的旧版发票号码，须同时填写发票代码"),
    (PAYMENTS + "SK-1,04419876,2026-10-20,600.00\n",
     "第2行「发票代码」：发票号码 04419876 是8位的旧版发票号码，须同时填写发票代码"),
    (CODED_INVOICES + f"44001900111,04419876,{KANGDA},2026-10-01,2026-11-01,1000.00\n",
     "第2行「发票代码」：发票代码须为10位或12位数字：'44001900111'"),
    (CODED_INVOICES + f"{CODE_1},4419876,{KANGDA},2026-10-01,2026-11-01,1000.00\n",
     "第2行「发票号」：填写了发票代码时，发票号码须为8位数字：'4419876'"),
    (CODED_PAYMENTS + f"SK-1,{CODE_1},24322000000012345678,2026-10-20,600.00\n",
     "第2行「发票号」：填写了发票代码时，发票号码须为8位数字"),
])
def test_an_invoice_number_without_its_code_is_refused_naming_row_and_field(
        seeded, tmp_path, text, needle):
    db = seeded.db_url
    with get_engine(db).connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM receivable_invoice")).scalar()
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, write(tmp_path / "导出.csv", text), "t")
    assert needle in str(refused.value), str(refused.value)
    assert "不存在" not in str(refused.value)  # the key's problem, said once
    with get_engine(db).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM receivable_invoice")).scalar() == before


def test_rest_pages_key_old_style_invoices_by_code_and_number():
    def page(invoice: dict, payment: dict) -> dict:
        return {"invoices": [{"customer_uscc": None, "customer_name": KANGDA,
                              "issued_on": "2026-10-01", "due_on": "2026-11-01",
                              "amount": "1000.00", **invoice}],
                "payments": [{"payment_no": "SK-1", "paid_on": "2026-10-20",
                              "amount": "600.00", **payment}],
                "next_cursor": "c1"}

    read = parse_receivables_page(page({"invoice_no": "04419876", "invoice_code": CODE_1},
                                       {"invoice_no": "04419876", "invoice_code": CODE_1}))
    assert read.invoices[0].key == read.payments[0].invoice_key == f"{CODE_1}-04419876"
    with pytest.raises(PermanentError) as refused:
        parse_receivables_page(page({"invoice_no": "04419876"},
                                    {"invoice_no": "04419876", "invoice_code": "123"}))
    assert ("invoices[0].invoice_code（发票 04419876）：invoice_no 04419876 是8位的旧版发票号码，"
            "须同时给出 invoice_code") in str(refused.value)
    assert ("payments[0].invoice_code（回款 SK-1）：发票代码须为10位或12位数字：'123'"
            in str(refused.value))


def test_an_invoice_stored_by_its_number_alone_is_adopted_with_its_code(seeded, tmp_path):
    # stored before codes were read: 04419876 of 康达 (paid 600.00), 04419877 of 仁和
    db = seeded.db_url
    kangda, renhe = customer_id(db, KANGDA), customer_id(db, RENHE)
    with session_scope(db) as s:
        for number, customer in (("04419876", kangda), ("04419877", renhe)):
            s.add(ReceivableInvoice(invoice_no=number, customer_id=customer,
                                    issued_on=D(2026, 10, 1), due_on=D(2026, 11, 1),
                                    amount=1000))
        s.flush()
        s.add(Payment(payment_no="SK-9", invoice_no="04419876", customer_id=kangda,
                      paid_on=D(2026, 10, 20), amount=600))
    before = paid_on_time(db, kangda)
    write(tmp_path / "应收.csv", CODED_INVOICES
          + f"{CODE_1},04419876,{KANGDA},2026-10-01,2026-11-01,1000.00\n"
            f"{CODE_1},04419877,{KANGDA},2026-10-01,2026-11-01,500.00\n")
    done = import_receivables_file(db, tmp_path / "应收.csv", "t")
    assert done.moved == [f"发票 04419876：补记发票代码 {CODE_1}"
                          "（此前按号码登记，已改按发票代码+号码登记，其回款随之转入）"]
    with session_scope(db) as s:
        numbers = set(s.exec(sa.select(ReceivableInvoice.invoice_no).where(
            ReceivableInvoice.invoice_no.like("%0441987%"))).scalars())
    # 仁和's 04419877 is another invoice (another customer): left for its own code
    assert numbers == {f"{CODE_1}-04419876", f"{CODE_1}-04419877", "04419877"}
    assert allocations(db, "SK-9") == [(f"{CODE_1}-04419876", 600)]
    assert paid_on_time(db, kangda) - before == 0  # the same money, on the same invoice
    assert [e["invoice_no"][0] for e in log_entries(db, "receivable_invoice", "delete")] == [
        "04419876"]


def test_the_rest_sync_keys_by_code_and_moves_a_payment(hub):
    def invoice(code: str, customer: str) -> dict:
        return {"invoice_no": "04419876", "invoice_code": code, "customer_uscc": None,
                "customer_name": customer, "issued_on": "2026-10-01", "due_on": "2026-11-01",
                "amount": "1000.00"}

    def payment(code: str) -> dict:
        return {"payment_no": "SK-1", "invoice_no": "04419876", "invoice_code": code,
                "paid_on": "2026-10-20", "amount": "600.00"}

    with ErpSimulator("token", page_size=2) as sim, RestFinance(
            sim.url, SecretStr("token"), 2.0, 2) as finance:
        rest_hub = dataclasses.replace(hub, finance=finance)
        sim.record_receivables(invoices=[invoice(CODE_1, KANGDA), invoice(CODE_2, RENHE)],
                               payments=[payment(CODE_1)])
        assert sync_receivables(rest_hub).created == 3
        sim.record_receivables(payments=[payment(CODE_2)])  # finance re-allocated SK-1
        done = sync_receivables(rest_hub)
    assert (done.created, done.removed) == (1, 1)
    assert done.moved == [f"回款 SK-1：不再核销发票 04419876（发票代码 {CODE_1}），"
                          f"现核销发票 04419876（发票代码 {CODE_2}）"]
    assert allocations(hub.db_url, "SK-1") == [(f"{CODE_2}-04419876", 600)]
    with session_scope(hub.db_url) as s:
        assert s.exec(sa.select(Payment.customer_id).where(
            Payment.payment_no == "SK-1")).scalars().one() == customer_id(hub.db_url, RENHE)


@pytest.fixture
def cli(two_invoices, monkeypatch, capsys, tmp_path):
    from tests.support import in_process_cli

    yield from in_process_cli(monkeypatch, capsys, two_invoices, tmp_path / "data")


def test_the_cli_says_which_payment_moved(cli, tmp_path):
    write(tmp_path / "回款1.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n")
    assert cli("receivables", "import", tmp_path / "回款1.csv")[0] == 0
    write(tmp_path / "回款2.csv", PAYMENTS + "SK-1,FP-B,2026-10-20,600.00\n")
    code, out, _ = cli("receivables", "import", tmp_path / "回款2.csv")
    assert code == 0
    assert "新增 1，更新 0，未变 0，移除核销 1。" in out
    assert "  变更：回款 SK-1：不再核销发票 FP-A，现核销发票 FP-B" in out


# --- a voided payment (作废) -----------------------------------------------------------------

VOID_PAYMENTS = "回款单号,发票号,回款日期,金额,作废状态\n"


def test_a_voided_payment_no_longer_counts(two_invoices, tmp_path):
    db = two_invoices
    kangda = customer_id(db, KANGDA)
    before = paid_on_time(db, kangda)
    import_receivables_file(db, write(tmp_path / "回款1.csv", PAYMENTS
                                      + "SK-1,FP-A,2026-10-20,300.00\n"
                                        "SK-1,FP-B,2026-10-20,300.00\n"
                                        "SK-2,FP-A,2026-10-21,100.00\n"), "t")
    assert paid_on_time(db, kangda) - before == 70000

    # finance voided SK-1 (its export lists it with its state; SK-2 stays in force)
    voided = write(tmp_path / "回款2.csv", VOID_PAYMENTS + "SK-1,FP-A,2026-10-20,300.00,已作废\n"
                                                         "SK-1,FP-B,2026-10-20,300.00,已作废\n"
                                                         "SK-2,FP-A,2026-10-21,100.00,正常\n")
    done = import_receivables_file(db, voided, "clerk")
    assert (done.created, done.updated, done.unchanged, done.removed) == (0, 0, 1, 2)
    assert done.moved == ["回款 SK-1：已作废，撤销对发票 FP-A、FP-B 的核销"]
    assert allocations(db, "SK-1") == []
    assert allocations(db, "SK-2") == [("FP-A", 100)]
    assert paid_on_time(db, kangda) - before == 10000
    deleted = log_entries(db, "payment", "delete")
    assert [(e["payment_no"][0], e["invoice_no"][0]) for e in deleted] == [
        ("SK-1", "FP-A"), ("SK-1", "FP-B")]

    again = import_receivables_file(db, voided, "clerk")  # nothing left to void
    assert (again.removed, again.moved, again.unchanged) == (0, [], 1)


def test_a_voided_payment_of_an_unknown_invoice_is_not_refused(two_invoices, tmp_path):
    """Its invoices do not matter: none of its money counts. The rows it had are removed
    even when the void names another invoice (finance re-allocated it before voiding)."""
    db = two_invoices
    import_receivables_file(db, write(tmp_path / "回款1.csv",
                                      PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n"), "t")
    done = import_receivables_file(db, write(tmp_path / "回款2.csv", VOID_PAYMENTS
                                             + "SK-1,FP-X,2026-10-20,600.00,作废\n"
                                               "SK-9,FP-Y,2026-10-20,50.00,作废\n"), "t")
    assert (done.removed, done.skipped) == (1, [])
    assert done.moved == ["回款 SK-1：已作废，撤销对发票 FP-A 的核销"]
    assert allocations(db, "SK-1") == [] and allocations(db, "SK-9") == []

    # finance restores it (the void was a mistake): listed in force, it counts again
    done = import_receivables_file(db, write(tmp_path / "回款3.csv", VOID_PAYMENTS
                                             + "SK-1,FP-A,2026-10-20,600.00,\n"), "t")
    assert done.created == 1 and allocations(db, "SK-1") == [("FP-A", 600)]


def test_a_payment_voided_on_some_rows_only_is_refused(two_invoices, tmp_path):
    db = two_invoices
    import_receivables_file(db, write(tmp_path / "回款1.csv", PAYMENTS
                                      + "SK-1,FP-A,2026-10-20,300.00\n"
                                        "SK-1,FP-B,2026-10-20,300.00\n"), "t")
    mixed = write(tmp_path / "回款2.csv", VOID_PAYMENTS + "SK-1,FP-A,2026-10-20,300.00,已作废\n"
                                                        "SK-1,FP-B,2026-10-20,300.00,\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, mixed, "t")
    assert ("回款2.csv 第3行「作废状态」：回款单 SK-1 在本表第2行已作废，此行却未作废：回款单须整单作废"
            in str(refused.value)), str(refused.value)
    unknown = write(tmp_path / "回款3.csv", VOID_PAYMENTS + "SK-1,FP-A,2026-10-20,300.00,审核中\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, unknown, "t")
    assert "回款3.csv 第2行「作废状态」：无法识别的作废状态：'审核中'" in str(refused.value)
    assert allocations(db, "SK-1") == [("FP-A", 300), ("FP-B", 300)]  # nothing written


def test_the_rest_sync_voids_a_payment(hub):
    invoice = {"invoice_no": "FP-A", "customer_uscc": None, "customer_name": KANGDA,
               "issued_on": "2026-10-01", "due_on": "2026-11-01", "amount": "1000.00"}
    payment = {"payment_no": "SK-1", "invoice_no": "FP-A", "paid_on": "2026-10-20",
               "amount": "600.00"}
    with ErpSimulator("token", page_size=2) as sim, RestFinance(
            sim.url, SecretStr("token"), 2.0, 2) as finance:
        rest_hub = dataclasses.replace(hub, finance=finance)
        sim.record_receivables(invoices=[invoice], payments=[payment])
        assert sync_receivables(rest_hub).created == 2
        sim.record_receivables(payments=[{**payment, "voided": True}])
        done = sync_receivables(rest_hub)
    assert (done.removed, done.moved) == (1, ["回款 SK-1：已作废，撤销对发票 FP-A 的核销"])
    assert allocations(hub.db_url, "SK-1") == []


@pytest.mark.parametrize("payments, needle", [
    ([{"voided": "yes"}], "payments[0].voided（回款 SK-1）：须为 true 或 false（或不填），读到 'yes'"),
    ([{"voided": True}, {"invoice_no": "FP-B"}],
     "payments[1].voided（回款 SK-1）：回款单在 payments[0] 已作废，此条却未作废：回款单须整单作废"),
])
def test_rest_pages_refuse_a_bad_or_partial_void(payments, needle):
    base = {"payment_no": "SK-1", "invoice_no": "FP-A", "paid_on": "2026-10-20",
            "amount": "600.00"}
    with pytest.raises(PermanentError) as refused:
        parse_receivables_page({"invoices": [], "payments": [{**base, **p} for p in payments],
                                "next_cursor": "c1"})
    assert needle in str(refused.value)


def test_the_cli_says_which_payment_was_voided(cli, tmp_path):
    write(tmp_path / "回款1.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n")
    assert cli("receivables", "import", tmp_path / "回款1.csv")[0] == 0
    write(tmp_path / "回款2.csv", "收款单号,发票号码,到账日期,收款金额,作废标志\n"
                                 "SK-1,FP-A,2026-10-20,600.00,是\n")
    code, out, _ = cli("receivables", "import", tmp_path / "回款2.csv")
    assert code == 0
    assert "移除核销 1" in out
    assert "  变更：回款 SK-1：已作废，撤销对发票 FP-A 的核销" in out


# --- a voided invoice (作废发票) --------------------------------------------------------------

def amount_due(db_url: str, customer: int) -> int:
    """Fen due that the December 2026 payment rate counts for the customer."""
    with session_scope(db_url) as s:
        return payment_rates(s, [customer], D(2026, 12, 1), D(2026, 12, 1)).amounts(
            customer, "2026-12")[0]


def test_an_invoice_the_export_marks_voided_is_due_no_more(two_invoices, tmp_path):
    """Tax-system and Kingdee invoice exports list voided invoices with 作废标志 作废: such an
    invoice is not money the customer owes, so it must not lower the payment rate."""
    db = two_invoices
    kangda = customer_id(db, KANGDA)
    before = amount_due(db, kangda)
    export = write(tmp_path / "应收2.csv",
                   "发票号码,客户名称,开票日期,到期日,价税合计,作废标志\n"
                   f"FP-A,{KANGDA},2026-10-01,2026-11-01,1000.00,正常\n"
                   f"FP-B,{KANGDA},2026-10-01,2026-11-01,1000.00,作废\n"
                   f"FP-V,{KANGDA},2026-10-02,2026-11-02,500.00,作废\n"
                   "FP-W,未建档的某公司,2026-10-02,2026-11-02,800.00,作废\n")
    done = import_receivables_file(db, export, "clerk")
    assert (done.created, done.unchanged) == (0, 1)
    assert done.moved == ["发票 FP-B：已作废，不再计入应收"]
    assert amount_due(db, kangda) == before - 100000
    with session_scope(db) as s:
        assert s.exec(sa.select(ReceivableInvoice.invoice_no).order_by(
            ReceivableInvoice.invoice_no)).scalars().all() == ["FP-A"]
    assert [e["invoice_no"][0] for e in log_entries(db, "receivable_invoice", "delete")] == [
        "FP-B"]
    again = import_receivables_file(db, export, "clerk")
    assert (again.created, again.unchanged, again.moved) == (0, 1, [])


def test_a_voided_invoice_that_still_has_payments_is_refused(two_invoices, tmp_path):
    db = two_invoices
    import_receivables_file(db, write(tmp_path / "回款1.csv",
                                      PAYMENTS + "SK-1,FP-B,2026-10-20,600.00\n"), "t")
    voided = write(tmp_path / "应收2.csv", "发票号,客户名称,开票日期,到期日,金额,作废状态\n"
                                          f"FP-B,{KANGDA},2026-10-01,2026-11-01,1000.00,已作废\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, voided, "t")
    assert "发票 FP-B：已作废，但回款 SK-1 仍核销在该发票上" in str(refused.value)
    assert allocations(db, "SK-1") == [("FP-B", 600)]
    # once finance moved the payment to another invoice, the void goes through
    import_receivables_file(db, write(tmp_path / "回款2.csv",
                                      PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n"), "t")
    assert import_receivables_file(db, voided, "t").moved == ["发票 FP-B：已作废，不再计入应收"]


def test_rest_pages_carry_voided_invoices():
    invoice = {"invoice_no": "FP-A", "customer_uscc": None, "customer_name": KANGDA,
               "issued_on": "2026-10-01", "due_on": "2026-11-01", "amount": "1000.00"}
    page = parse_receivables_page({"invoices": [{**invoice, "voided": True}], "payments": [],
                                   "next_cursor": "c1"})
    assert page.invoices[0].voided
    with pytest.raises(PermanentError) as refused:
        parse_receivables_page({"invoices": [{**invoice, "voided": "Y"}], "payments": [],
                                "next_cursor": "c1"})
    assert "invoices[0].voided（发票 FP-A）：须为 true 或 false（或不填），读到 'Y'" in str(refused.value)


def test_the_daily_sync_waits_for_the_payments_of_a_voided_invoice_to_move(hub):
    """The void arrives before the export that moves its payment: the sync must not stop at
    it for good (a refused page is never passed), it waits and reads on."""
    inbound = hub.settings.path("finance-drop") / "receivables-inbound"
    write(inbound / "20261101-应收.csv", INVOICES
          + f"FP-A,{KANGDA},2026-10-01,2026-11-01,1000.00\n"
            f"FP-B,{KANGDA},2026-10-01,2026-11-01,1000.00\n")
    write(inbound / "20261101-回款.csv", PAYMENTS + "SK-1,FP-B,2026-10-20,600.00\n")
    assert sync_receivables(hub).created == 3
    write(inbound / "20261102-应收.csv", "发票号,客户名称,开票日期,到期日,金额,作废状态\n"
          f"FP-B,{KANGDA},2026-10-01,2026-11-01,1000.00,已作废\n")
    done = sync_receivables(hub)
    assert done.skipped == ["发票 FP-B：已作废，但回款 SK-1 仍核销在该发票上，暂不撤销该发票"
                            "（下次同步会重新读取，客户建档、发票到达或回款改核销后即补录）"], done
    write(inbound / "20261103-回款.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n")
    done = sync_receivables(hub)
    assert done.skipped == [] and "发票 FP-B：已作废，不再计入应收" in done.moved, done
    assert allocations(hub.db_url, "SK-1") == [("FP-A", 600)]
    with session_scope(hub.db_url) as s:
        assert s.exec(sa.select(ReceivableInvoice.invoice_no)).scalars().all() == ["FP-A"]


def test_unknown_customers_and_invoices_of_a_clean_file_are_named_by_row(two_invoices,
                                                                        tmp_path):
    """A file whose cells are all good is refused for its unknown customer or invoice with
    the same file, row and column as a file with bad cells besides (not a bare sentence the
    clerk has to search a 2,000-row export for)."""
    db = two_invoices
    payments = write(tmp_path / "回款.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,300.00\n"
                                                      "SK-2,FP-A,2026-10-20,100.00\n"
                                                      "SK-2,FP-X,2026-10-20,100.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, payments, "t")
    assert [str(p) for p in refused.value.problems] == [
        "回款.csv 第4行「发票号」：回款 SK-2：发票 FP-X 不存在"]
    invoices = tmp_path / "应收.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "11月"
    wb.active.append(["应收发票明细"])
    wb.active.append(["发票号", "客户名称", "开票日期", "到期日", "金额"])
    wb.active.append(["FP-C", KANGDA, D(2026, 11, 1), D(2026, 12, 1), 10])
    wb.active.append(["FP-D", "未建档的某公司", D(2026, 11, 1), D(2026, 12, 1), 10])
    wb.save(invoices)
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, invoices, "t")
    assert [str(p) for p in refused.value.problems] == [
        "应收.xlsx 第4行「客户名称」：发票 FP-D：客户“未建档的某公司”未建档"]
    assert allocations(db, "SK-1") == []  # nothing written


def test_numbers_typed_in_full_width_are_the_same_invoice_and_payment(seeded, tmp_path):
    """A clerk's sheet typed in Chinese input mode (ＦＰ－Ａ, ０４４…) names the invoice the
    finance system writes in half-width: one invoice, not two (due counted twice), and its
    payment finds it."""
    db = seeded.db_url
    kangda = customer_id(db, KANGDA)
    before = amount_due(db, kangda)
    import_receivables_file(db, write(tmp_path / "应收1.csv", CODED_INVOICES
                                      + f"{CODE_1},04419876,{KANGDA},2026-10-01,2026-11-01,500.00\n"
                                        f",FP-A,{KANGDA},2026-10-01,2026-11-01,1000.00\n"), "t")
    typed = write(tmp_path / "应收2.csv", CODED_INVOICES
                  + f"０４４００１９００１１１,０４４１９８７６,{KANGDA},2026-10-01,2026-11-01,500.00\n"
                    f",ＦＰ－Ａ,{KANGDA},2026-10-01,2026-11-01,1000.00\n")
    done = import_receivables_file(db, typed, "t")
    assert (done.created, done.unchanged) == (0, 2)
    assert amount_due(db, kangda) - before == 150000
    paid = import_receivables_file(db, write(tmp_path / "回款.csv", CODED_PAYMENTS
                                             + "ＳＫ－１,０４４００１９００１１１,０４４１９８７６,"
                                               "2026-10-20,500.00\n"), "t")
    assert paid.created == 1 and allocations(db, "SK-1") == [(f"{CODE_1}-04419876", 500)]


def test_exports_with_the_time_of_day_are_read_by_their_date(seeded, tmp_path):
    """The tax platform's invoice export writes 开票日期 with its time (a date-time cell), bank
    receipts 到账时间 likewise: the date is the business date, the export is not refused."""
    db = seeded.db_url
    kangda = customer_id(db, KANGDA)
    before = paid_on_time(db, kangda)
    wb = openpyxl.Workbook()
    wb.active.append(["发票号码", "购买方名称", "开票日期", "到期日", "价税合计"])
    wb.active.append(["26322000000012345678", KANGDA, dt.datetime(2026, 10, 1, 14, 35, 22),
                      dt.datetime(2026, 11, 1), 1130.0])
    wb.save(tmp_path / "数电发票.xlsx")
    assert import_receivables_file(db, tmp_path / "数电发票.xlsx", "t").created == 1
    paid = write(tmp_path / "回款.csv", "收款单号,发票号码,到账日期,收款金额\n"
                                       "SK-1,26322000000012345678,2026/11/1 16:20,1130.00\n")
    assert import_receivables_file(db, paid, "t").created == 1
    assert paid_on_time(db, kangda) - before == 113000  # paid on the due date: on time


def test_a_payment_given_twice_on_one_invoice_says_to_merge_the_rows(two_invoices, tmp_path):
    """Kingdee lists a 收款单 paid partly by 电汇, partly by 承兑汇票 as two lines on one
    invoice: refused (the second would overwrite the first), saying what to do about it."""
    split = write(tmp_path / "回款.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,300.00\n"
                                                   "SK-1,FP-A,2026-10-20,200.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(two_invoices, split, "t")
    assert [str(p) for p in refused.value.problems] == [
        "回款.csv 第3行「回款单号」：与第2行重复：同一回款单对同一张发票只能有一行，若按结算方式等分成了"
        "多行，请合并为一行（金额相加）后再导入"]
