"""Audit: people and flows acting at the same time as a settlement (threads or processes
against one database). Each test makes the interleaving deterministic by hooking a function
boundary (monkeypatch), then compares the stored result with a sequential order of events."""
from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlmodel import select

from flows import settlement
from flows.hub import current_hub
from flows.settlement import settle_month
from models import RebateLine, SettlementRun
from models.customer_files import merge_customers
from models.db import session_scope
from tests.rebate_support import clock_from, customer_id, publish, signed_order

D = dt.date
POLICY = """
code: P-CONC
name: 并发审计测试政策
effective_from: 2026-10-01
rules:
  - {id: flat, measure: amount, period: month, style: retroactive,
     tiers: [{from: 0, rate: 2%}], priority: 1, stacking: stack}
"""
KANGDA, SHENKANG = "江苏康达医疗设备有限公司", "上海申康医疗科技有限公司"


@pytest.fixture(autouse=True)
def months_over():
    clock_from(D(2026, 11, 5))


def paid_for(db_url: str, order: str) -> Decimal:
    with session_scope(db_url) as s:
        return s.exec(select(sa.func.coalesce(sa.func.sum(RebateLine.amount), 0)).where(
            RebateLine.order_id == order)).one()


def revisions(db_url: str, month: str = "2026-10") -> list[tuple[int, int, Decimal]]:
    with session_scope(db_url) as s:
        return [(r.revision, r.line_count, r.total_amount) for r in s.exec(
            select(SettlementRun).where(SettlementRun.month == month)
            .order_by(SettlementRun.revision))]


# --- a customer merge while the month is settled ------------------------------------------

def test_a_merge_committed_while_the_month_is_computed_never_pays_an_order_twice(
        hub, monkeypatch):
    """The clerk merges 申康 into 康达 while the cron's settlement of October is computing
    (after it read the order lines and what was paid, before it stores). In either
    sequential order (merge first, or settlement first) 申康's order is paid ¥512 once and a
    re-run of October finds nothing new. The merge takes no settlement lock and changes
    nothing store_settlement checks, so the lines are stored under the merged file's bucket
    key after the merge re-keyed the others: the next run stores a correction r2 paying the
    order again to 康达 (+¥512) and clawing ¥512 back from 申康's merged file ("订单已改属其他客户"):
    two vouchers moving money between the customers' accounts at finance."""
    publish(hub.db_url, POLICY)
    kangda, shenkang = customer_id(hub.db_url, KANGDA), customer_id(hub.db_url, SHENKANG)
    order = signed_order(hub.db_url, shenkang, D(2026, 10, 12), [("MON-M8", 2)])
    store = settlement.store_settlement

    def merge_then_store(*args, **kwargs):
        with session_scope(hub.db_url) as s:  # the clerk's merge commits now
            merge_customers(s, kangda, shenkang, "ops-01")
        monkeypatch.setattr(settlement, "store_settlement", store)
        return store(*args, **kwargs)

    monkeypatch.setattr(settlement, "store_settlement", merge_then_store)
    first = settle_month(current_hub(), "2026-10", documents=False)
    assert first.total == Decimal("512.00")
    again = settle_month(current_hub(), "2026-10", documents=False)
    # nothing new stored (the result shows r1 again: its documents were left to this run)
    assert again.run_id is None, revisions(hub.db_url)
    assert revisions(hub.db_url) == [(1, 1, Decimal("512.00"))]
    assert paid_for(hub.db_url, order) == Decimal("512.00")


# --- two returns (or deliveries) imports at once ------------------------------------------

RETURNS = "退货单号,意向单号,行号,实退数量,退货日期\n"


def together_in_the_check(monkeypatch, parties: int = 2) -> None:
    """Each import waits in its quantity check, inside its transaction (its rows written,
    not committed), until the other is there too; a database that lets only one writer in
    (SQLite) makes the other wait for the commit instead: the first goes on after 5 s."""
    from flows import sales_facts

    check = sales_facts._quantity_problems
    meet = threading.Barrier(parties, timeout=5)

    def checked(*args, **kwargs):
        try:
            meet.wait()
        except threading.BrokenBarrierError:
            pass
        return check(*args, **kwargs)

    monkeypatch.setattr(sales_facts, "_quantity_problems", checked)


def import_together(calls) -> tuple[list, list[Exception]]:
    answers, errors = [], []

    def run(call):
        try:
            answers.append(call())
        except Exception as exc:  # noqa: BLE001 - asserted by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers, errors


def test_two_return_notes_imported_at_once_never_return_more_than_was_delivered(
        hub, monkeypatch, tmp_path):
    """5 monitors delivered and paid (¥1,280). Two clerks import two return notes of the
    same order line at the same moment (TH-A: 5, TH-B: 5). One after the other, the second
    is refused (returned 10 > delivered 5); at once (PostgreSQL: each check reads only its
    own uncommitted rows) both are stored, and the re-run claws back twice what was paid."""
    from flows.sales_facts import ImportRefused, import_movements

    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, KANGDA)
    order = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    assert settle_month(current_hub(), "2026-10").total == Decimal("1280.00")
    files = []
    for number in ("TH-A", "TH-B"):
        path = tmp_path / f"{number}.csv"
        path.write_text(RETURNS + f"{number},{order},1,5,2026-10-25\n", encoding="utf-8")
        files.append(path)
    together_in_the_check(monkeypatch)
    answers, errors = import_together(
        [lambda p=p: import_movements(hub.db_url, p, "ops-01", returns=True) for p in files])
    assert len(answers) == 1 and [type(e) for e in errors] == [ImportRefused], (answers, errors)
    fix = settle_month(current_hub(), "2026-10", documents=False)
    assert fix.total == Decimal("-1280.00")
    assert paid_for(hub.db_url, order) == Decimal("0.00")


DELIVERIES = "发货单号,意向单号,行号,实发数量,发货日期\n"


def test_two_delivery_notes_imported_at_once_never_deliver_more_than_was_ordered(
        hub, monkeypatch, tmp_path):
    """An order of 5 monitors, nothing delivered yet. The ERP export of FH-A (5) and a
    clerk's file with FH-B (5, the same goods keyed again under another note) are imported
    at the same moment. One after the other, the second is refused (delivered 10 > ordered
    5); at once (PostgreSQL) both are stored and October pays the rebate on 10 monitors
    (¥2,560 instead of ¥1,280)."""
    from flows.sales_facts import ImportRefused, import_movements

    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, KANGDA)
    order = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)],
                         delivered_on=False)
    files = []
    for number in ("FH-A", "FH-B"):
        path = tmp_path / f"{number}.csv"
        path.write_text(DELIVERIES + f"{number},{order},1,5,2026-10-20\n", encoding="utf-8")
        files.append(path)
    together_in_the_check(monkeypatch)
    answers, errors = import_together(
        [lambda p=p: import_movements(hub.db_url, p, "ops-01", returns=False) for p in files])
    settled = settle_month(current_hub(), "2026-10", documents=False)
    assert (len(answers), [type(e) for e in errors], settled.total) == (
        1, [ImportRefused], Decimal("1280.00"))


# --- 重新发送 twice at once -----------------------------------------------------------------

def test_two_resends_at_once_submit_the_voucher_batch_once(hub, monkeypatch):
    """October's vouchers failed (finance unreachable). Two finance people press 重新发送
    on the status page at once (each POST …/send runs deliver_revision after answering).
    The batch must go to finance once: the second press finds it being sent. `once()` is
    no lock (flows/effects.py: work that two runs may do at once must hold a claim first),
    and finish_revision holds none: the second press, arriving while the first waits for
    finance's answer, takes the attempt over and submits the same batch again."""
    from connectors.base import TransientError
    from flows.settlement import deliver_revision

    publish(hub.db_url, POLICY)
    signed_order(hub.db_url, customer_id(hub.db_url, KANGDA), D(2026, 10, 10), [("MON-M8", 5)])
    finance = current_hub().finance
    submit = finance.submit_vouchers

    def down(batch):
        raise TransientError("finance unreachable", provider="finance")

    monkeypatch.setattr(finance, "submit_vouchers", down)
    with pytest.raises(TransientError):
        settle_month(current_hub(), "2026-10")
    with session_scope(hub.db_url) as s:
        run = s.exec(select(SettlementRun)).one()
    calls, in_call, second_done = [], threading.Event(), threading.Event()

    def slow(batch):  # the first submission waits for finance's answer until the second ends
        calls.append(batch.batch_id)
        if len(calls) == 1:
            in_call.set()
            second_done.wait(5)
        return submit(batch)

    monkeypatch.setattr(finance, "submit_vouchers", slow)
    first = threading.Thread(target=deliver_revision, args=(current_hub(), run.id))
    first.start()
    assert in_call.wait(10)
    deliver_revision(current_hub(), run.id)  # the second press
    second_done.set()
    first.join(60)
    assert calls == ["RB-2026-10-r1"]


# --- the board read while a settlement is stored ------------------------------------------

def test_the_board_read_while_october_is_stored_still_shows_october(hub, monkeypatch):
    """A rep opens 返利看板 on 5 November at the moment the cron stores October's revision.
    Before the store the board shows October's ¥1,280 as 预计 (expected), after it as 待确认
    (pending). The board reads the settled lines in one transaction and computes the
    expected figure afterwards in others: a store committed in between leaves October in
    neither figure, and the board shows ¥0 for it."""
    from flows import rebate_board
    from flows.rebate_board import Scope, board

    publish(hub.db_url, POLICY)
    signed_order(hub.db_url, customer_id(hub.db_url, KANGDA), D(2026, 10, 10), [("MON-M8", 5)])
    expected = rebate_board.expected_lines

    def stored_meanwhile(*args, **kwargs):  # the cron's store commits between the two reads
        if args[1].rep_id and not stored:
            stored.append(settle_month(current_hub(), "2026-10", documents=False).run_id)
        return expected(*args, **kwargs)

    stored: list = []
    monkeypatch.setattr(rebate_board, "expected_lines", stored_meanwhile)
    figures = {f["status"]: Decimal(f["amount"]) for f in board(
        hub.db_url, Scope("rep-zhangwei", None, "张伟的返利"), D(2026, 11, 5))["figures"]}
    assert stored
    assert figures["pending"] + figures["expected"] == Decimal("1280.00"), figures


# --- the cron and a clerk's CLI settling the same month at once ----------------------------

@pytest.fixture
def cli(hub, monkeypatch, capsys):
    from tests.support import in_process_cli

    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


def test_a_clerk_settling_while_the_cron_sends_the_vouchers_is_not_told_finance_is_down(
        hub, monkeypatch, cli):
    """The cron stored October r1 and is submitting its vouchers (finance answers slowly);
    a clerk runs `salesops settle --month 2026-10` at that moment. Nothing is wrong with
    finance: the clerk should read that the revision is being sent by another run (or get
    its result). `once()` tells the second caller `in_progress` (a TransientError without
    provider) once it waited WAIT_FOR_WINNER, and the CLI reports every TransientError as
    外部系统暂不可用（未知）, exit 3, "排除故障后重新运行"."""
    from flows import effects

    publish(hub.db_url, POLICY)
    signed_order(hub.db_url, customer_id(hub.db_url, KANGDA), D(2026, 10, 10), [("MON-M8", 5)])
    monkeypatch.setattr(effects, "WAIT_FOR_WINNER", 0.3)  # finance slower than the wait
    finance_type = type(current_hub().finance)
    submit = finance_type.submit_vouchers
    clerk_done, cron_in = threading.Event(), threading.Event()

    def slow(self, batch):
        if threading.current_thread() is cron:
            clerk_done.wait(10)
        return submit(self, batch)

    start, looked = effects._start_attempt, effects._look
    clerk_looked, cron_inserted = threading.Event(), threading.Event()

    def look(db_url, kind, key):
        seen = looked(db_url, kind, key)
        if kind == "rebate_vouchers" and threading.current_thread() is not cron:
            clerk_looked.set()
        return seen

    def ordered(db_url, kind, key, seen):
        """Both found the batch not sent yet (the same instant); the cron records its attempt
        first."""
        if kind != "rebate_vouchers":
            return start(db_url, kind, key, seen)
        if threading.current_thread() is cron:
            cron_in.set()
            assert clerk_looked.wait(20)
            try:
                return start(db_url, kind, key, seen)
            finally:
                cron_inserted.set()
        assert cron_inserted.wait(20)
        return start(db_url, kind, key, seen)

    monkeypatch.setattr(finance_type, "submit_vouchers", slow)
    monkeypatch.setattr(effects, "_start_attempt", ordered)
    monkeypatch.setattr(effects, "_look", look)
    cron = threading.Thread(target=lambda: settle_month(current_hub(), "2026-10"))
    cron.start()
    assert cron_in.wait(10)
    code, out, err = cli("settle", "--month", "2026-10", "--by", "ops-01")
    clerk_done.set()
    cron.join(60)
    assert "外部系统暂不可用" not in err, (code, out, err)


# --- a receivables import while a customer is merged ---------------------------------------

@pytest.mark.skipif(not __import__("tests.conftest", fromlist=["PG_URL"]).PG_URL,
                    reason="SQLite lets one writer in: the import and the merge cannot overlap")
def test_an_invoice_imported_while_its_customer_is_merged_follows_the_merge(
        hub, monkeypatch, tmp_path):
    """Finance's export carries an invoice of 申康; the master keeper merges 申康 into 康达
    while the import runs (after it found 申康's file, before it committed). One after the
    other, the invoice ends on 康达 either way (the merge moves it, or the import finds the
    survivor: `_customer_for` → `active`). At once it stays on the merged file, where no
    payment rate, board or settlement of 康达 ever reads it."""
    from flows import sales_facts
    from flows.sales_facts import import_receivables_file
    from models import ReceivableInvoice

    kangda, shenkang = customer_id(hub.db_url, KANGDA), customer_id(hub.db_url, SHENKANG)
    path = tmp_path / "应收.csv"
    path.write_text("发票号,客户名称,开票日期,到期日,价税合计\n"
                    f"INV-M1,{SHENKANG},2026-10-01,2026-10-31,10000.00\n", encoding="utf-8")
    found = sales_facts._customer_for
    merged: list = []

    def found_then_merged(s, uscc, name):
        customer = found(s, uscc, name)
        if not merged:  # the merge commits on its own connection now
            t = threading.Thread(target=lambda: merged.append(merge_now()))
            t.start()
            t.join(30)
        return customer

    def merge_now():
        with session_scope(hub.db_url) as s:
            return merge_customers(s, kangda, shenkang, "ops-01")

    monkeypatch.setattr(sales_facts, "_customer_for", found_then_merged)
    import_receivables_file(hub.db_url, path, "ops-01")
    assert merged
    with session_scope(hub.db_url) as s:
        owner = s.exec(select(ReceivableInvoice.customer_id).where(
            ReceivableInvoice.invoice_no == "INV-M1")).one()
    assert owner == kangda


# --- a version published while the month is computed --------------------------------------

def test_a_version_published_while_the_month_is_computed_governs_what_is_stored(
        hub, monkeypatch):
    """Sales ops publish P-CONC v2 (3 %, from 1 October) while the cron computes October
    under v1 (2 %). The store is refused (SettlementConflict) and settle_month computes
    again: October is stored once, at 3 %, as if the version had been published first."""
    publish(hub.db_url, POLICY)
    order = signed_order(hub.db_url, customer_id(hub.db_url, KANGDA), D(2026, 10, 10),
                         [("MON-M8", 5)])
    store = settlement.store_settlement

    def published_then_stored(*args, **kwargs):
        monkeypatch.setattr(settlement, "store_settlement", store)
        publish(hub.db_url, POLICY.replace("2%", "3%"))
        return store(*args, **kwargs)

    monkeypatch.setattr(settlement, "store_settlement", published_then_stored)
    result = settle_month(current_hub(), "2026-10", documents=False)
    assert (result.revision, result.total) == (1, Decimal("1920.00"))
    assert revisions(hub.db_url) == [(1, 1, Decimal("1920.00"))]
    assert paid_for(hub.db_url, order) == Decimal("1920.00")
