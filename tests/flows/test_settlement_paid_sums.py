"""What the settlement reads besides the order lines, summed by the database: what earlier
settlements paid per (bucket, order), and the payment rates. Each is held to the plain fold
over every row in Python it replaces (and to figures worked out by hand)."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlmodel import select

from flows.rebate_data import Window, customer_profiles, payment_rates
from flows.settlement import paid_in_db
from models import Customer, Payment, RebateLine, ReceivableInvoice, SettlementRun, utcnow
from models.db import get_engine, session_scope
from models.rebates.engine import CustomerProfile, Paid
from models.rebates.payment_rate import InvoiceFact, PaymentFact, PaymentRates
from tests.rebate_support import customer_id, invoice, signed_order

D = dt.date
KANGDA, RENHE = "江苏康达医疗设备有限公司", "浙江仁和医疗器械有限公司"


def run(db_url: str, month: str, revision: int) -> int:
    with session_scope(db_url) as s:
        r = SettlementRun(month=month, revision=revision, kind="initial" if revision == 1
                          else "adjustment", as_of=utcnow(), created_by="test")
        s.add(r)
        s.flush()
        return r.id


def line(db_url: str, run_id: int, month: str, order_id: str, customer: int, key: str,
         amount: str, rep: str | None, region: str | None, basis: str = "1000.00",
         version: int = 1, clause: str = "第一条") -> None:
    with session_scope(db_url) as s:
        s.add(RebateLine(run_id=run_id, month=month, order_id=order_id, customer_id=customer,
                         booked_customer_id=customer, rep_id=rep, region=region, policy_code="P", policy_version=version,
                         rule_id=key.split("|")[1], clause=clause, period=key.split("|")[3],
                         bucket_key=key, basis_amount=Decimal(basis), due_amount=Decimal(0),
                         amount=Decimal(amount), rate=Decimal("0.01"), kind="rebate",
                         explanation="", inputs="{}"))


def folded(db_url: str, order_ids: set[str], month: str) -> dict:
    """The reference: every earlier line read in id order and folded in Python (how the
    settlement read them before the database summed them)."""
    with session_scope(db_url) as s:
        lines = s.exec(select(RebateLine).where(RebateLine.month <= month)
                       .order_by(RebateLine.id)).all()
    sums: dict = defaultdict(Decimal)
    last: dict = {}
    booked: dict = defaultdict(dict)
    for ln in lines:
        if ln.order_id not in order_ids:
            continue
        pair, amount = (ln.bucket_key, ln.order_id), Decimal(str(ln.amount))
        sums[pair] += amount
        last[pair] = ln
        where = booked[pair]
        where[(ln.rep_id, ln.region)] = where.pop((ln.rep_id, ln.region), Decimal(0)) + amount
    return {pair: Paid(total, Decimal(str(last[pair].basis_amount)), last[pair].policy_version,
                       last[pair].clause, last[pair].rep_id, last[pair].region,
                       booked=tuple((rep, region, amount)
                                    for (rep, region), amount in booked[pair].items()))
            for pair, total in sums.items()}


def test_paid_sums_revisions_claw_backs_and_places_as_every_line_would(hub):
    db = hub.db_url
    kangda, renhe = customer_id(db, KANGDA), customer_id(db, RENHE)
    o1 = signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    o2 = signed_order(db, kangda, D(2026, 11, 3), [("MON-M8", 1)])
    o3 = signed_order(db, renhe, D(2026, 10, 20), [("MON-M8", 2)])
    old = signed_order(db, kangda, D(2026, 7, 1), [("MON-M8", 1)])  # before the window
    q4 = f"P|quarter|{kangda}|2026Q4"
    flat = f"P|flat|{kangda}|2026-10"
    r1, r2, r3 = run(db, "2026-10", 1), run(db, "2026-10", 2), run(db, "2026-11", 1)
    later = run(db, "2026-12", 1)
    # o1 under the quarter rule: paid under 华东, topped up under 华南 after a move, a late
    # return taking back from 华东 (booked there last), amounts that are no exact binary float
    line(db, r1, "2026-10", o1, kangda, q4, "100.29", "rep-a", "华东", basis="10029.00")
    line(db, r2, "2026-10", o1, kangda, q4, "0.01", "rep-b", "华南", basis="10030.00")
    line(db, r3, "2026-11", o1, kangda, q4, "-50.15", "rep-a", "华东", basis="5015.00",
         version=2, clause="第二条")
    line(db, later, "2026-12", o1, kangda, q4, "-7.00", "rep-b", "华南")  # a later month
    # o1 under another rule: claw-backs only, booked to nobody
    line(db, r1, "2026-10", o1, kangda, flat, "-12.34", None, None, basis="0.00")
    line(db, r3, "2026-11", o1, kangda, flat, "-0.07", None, None, basis="0.00")
    # o2: paid and taken back in full (nothing left, still a pair that was paid)
    line(db, r3, "2026-11", o2, kangda, q4, "0.30", "rep-a", "华东")
    line(db, r3, "2026-11", o2, kangda, q4, "-0.30", "rep-a", "华东", basis="0.00")
    line(db, r1, "2026-10", o3, renhe, f"P|quarter|{renhe}|2026Q4", "1234567.89", "rep-c",
         None)
    line(db, r1, "2026-10", old, kangda, f"P|quarter|{kangda}|2026Q3", "5.00", "rep-a", "华东")

    everyone = [Window(D(2026, 10, 1), D(2026, 12, 31))]
    paid = paid_in_db(db, everyone, "2026-11")
    assert paid[(q4, o1)] == Paid(Decimal("50.15"), Decimal("5015.00"), 2, "第二条", "rep-a",
                                  "华东", booked=(("rep-b", "华南", Decimal("0.01")),
                                                  ("rep-a", "华东", Decimal("50.14"))))
    assert paid[(flat, o1)] == Paid(Decimal("-12.41"), Decimal("0.00"), 1, "第一条", None, None,
                                    booked=((None, None, Decimal("-12.41")),))
    assert paid[(q4, o2)].amount == 0 and paid[(q4, o2)].booked == (
        ("rep-a", "华东", Decimal("0.00")),)
    assert paid[(f"P|quarter|{renhe}|2026Q4", o3)].amount == Decimal("1234567.89")
    assert len(paid) == 4  # nothing of the order before the window
    assert paid == folded(db, {o1, o2, o3}, "2026-11")
    # exact Decimals with two places, as finance reads them
    assert {str(p.amount) for p in paid.values()} == {"50.15", "-12.41", "0.00", "1234567.89"}
    # the later month's line counts once its month is settled
    assert paid_in_db(db, everyone, "2026-12")[(q4, o1)].amount == Decimal("43.15")
    assert paid_in_db(db, everyone, "2026-12") == folded(db, {o1, o2, o3}, "2026-12")

    # a window of some customers: theirs only, the older quarter included
    only = [Window(D(2026, 10, 1), D(2026, 12, 31), frozenset({renhe})),
            Window(D(2026, 7, 1), D(2026, 9, 30), frozenset({kangda}))]
    assert paid_in_db(db, only, "2026-11") == folded(db, {o3, old}, "2026-11")


def test_payment_rates_summed_per_invoice_are_the_rates_of_every_payment(hub):
    db = hub.db_url
    kangda, renhe = customer_id(db, KANGDA), customer_id(db, RENHE)
    invoice(db, kangda, D(2026, 7, 15), "1000.10", [(D(2026, 7, 1), "300.03"),
                                                    (D(2026, 7, 15), "200.02"),  # on the day
                                                    (D(2026, 7, 16), "500.05")])  # late
    invoice(db, kangda, D(2026, 8, 31), "500.00", [(D(2026, 8, 1), "600.00")])  # overpaid
    invoice(db, kangda, D(2026, 9, 1), "-200.00")  # a credit note
    invoice(db, kangda, D(2026, 9, 30), "0.30", [(D(2026, 9, 2), "0.10"), (D(2026, 9, 3), "0.20")])
    invoice(db, renhe, D(2026, 8, 10), "800.00", [(D(2026, 8, 1), "-100.00")])  # a refund
    invoice(db, renhe, D(2026, 6, 30), "999.00", [(D(2026, 6, 1), "999.00")])  # before
    invoice(db, renhe, D(2026, 10, 1), "999.00")  # after

    with session_scope(db) as s:
        rates = payment_rates(s, [kangda, renhe], D(2026, 10, 1), D(2026, 10, 31))
        invoices = [InvoiceFact(i.invoice_no, i.customer_id, i.due_on, Decimal(str(i.amount)))
                    for i in s.exec(select(ReceivableInvoice).where(
                        ReceivableInvoice.due_on >= D(2026, 7, 1),
                        ReceivableInvoice.due_on < D(2026, 10, 1)))]
        payments = [PaymentFact(p.invoice_no, p.paid_on, Decimal(str(p.amount)))
                    for p in s.exec(select(Payment))]
    reference = PaymentRates(invoices, payments)
    # 康达: due 1,000.10 + 500.00 − 200.00 + 0.30; on time 500.05 + 500.00 + 0 + 0.30
    assert rates.amounts(kangda, "2026-10") == (130040, 100035)
    assert rates.rate(kangda, "2026-10") == Decimal(100035) / Decimal(130040)
    assert rates.amounts(renhe, "2026-10") == (80000, 0)  # a refund pays nothing
    for customer in (kangda, renhe):
        for month in ("2026-08", "2026-09", "2026-10", "2026-11", "2026-12"):
            assert rates.amounts(customer, month) == reference.amounts(customer, month)
            assert rates.rate(customer, month) == reference.rate(customer, month)


def test_customer_profiles_read_the_columns_the_rules_read(hub):
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    with session_scope(db) as s:
        c = s.get(Customer, kangda)
        c.tier, c.region = "A", "华北"
    with session_scope(db) as s:
        profiles = customer_profiles(s, [kangda, kangda, 10 ** 9])
        uscc = s.get(Customer, kangda).uscc
    assert profiles == {kangda: CustomerProfile(kangda, "A", "华北", uscc, KANGDA)}


def test_the_page_cache_a_store_enlarges_is_back_to_its_size_in_the_pool(hub):
    from flows.settlement import compute_month, store_settlement
    from tests.flows.test_settlement import POLICY
    from tests.rebate_support import clock_from, publish

    db = hub.db_url
    if not db.startswith("sqlite"):
        pytest.skip("SQLite's page cache")
    clock_from(D(2027, 1, 5))
    publish(db, POLICY)
    signed_order(db, customer_id(db, KANGDA), D(2026, 10, 10), [("MON-M8", 5)])
    engine = get_engine(db)

    def sizes() -> set[int]:
        # every connection the pool holds (checked out at once: each a different one)
        conns = [engine.connect() for _ in range(engine.pool.checkedin() or 1)]
        try:
            return {c.exec_driver_sql("PRAGMA cache_size").scalar() for c in conns}
        finally:
            for c in conns:
                c.close()

    before = sizes()
    run_id = store_settlement(db, compute_month(db, "2026-10"), "test")
    assert run_id is not None
    with session_scope(db) as s:
        assert s.exec(select(sa.func.count(RebateLine.id))).one() > 0
    assert sizes() == before == {-2000}
