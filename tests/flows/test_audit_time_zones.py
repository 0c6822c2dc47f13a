"""Audit (time zones): business dates are Asia/Shanghai, storage is UTC, every datetime is
aware (DESIGN.md). Shanghai is UTC+8: 00:00–07:59 in Shanghai is still the previous day in
UTC, and the first eight hours of a month in Shanghai are the previous month in UTC. Each
test puts an event in those hours (or at the last second of a day) and checks the business
day or month a person sees, on SQLite and on PostgreSQL alike."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from sqlmodel import select

from flows.hub import current_hub
from flows.settlement import settle_month, voucher_batch
from models import Delivery, Quote, RebateLine, SettlementRun, set_clock
from models.base import SHANGHAI
from models.db import session_scope
from tests.rebate_support import customer_id, publish, signed_order

D = dt.date
UTC = dt.UTC
KANGDA = "江苏康达医疗设备有限公司"

FLAT = """
code: TZ-FLAT
name: 时区测试返利
effective_from: 2026-07-01
rules:
  - id: flat
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 1
    stacking: stack
"""


def at_shanghai(day: dt.date, hour: int, minute: int = 0, second: int = 0,
                microsecond: int = 0) -> dt.datetime:
    """The business clock fixed (not running) at that time in Shanghai on `day`."""
    moment = dt.datetime.combine(day, dt.time(hour, minute, second, microsecond), SHANGHAI)
    set_clock(lambda: moment)
    return moment


def lines_of(db_url, run_id) -> dict:
    with session_scope(db_url) as s:
        rows = s.exec(select(RebateLine).where(RebateLine.run_id == run_id)).all()
    out: dict = defaultdict(Decimal)
    for ln in rows:
        out[(ln.order_id, ln.kind)] += ln.amount
    return dict(out)


# --- storage: an instant stored and read back, compared in SQL -------------------------------

def test_an_instant_in_the_first_hours_of_a_month_keeps_its_instant_and_compares_in_sql(hub):
    """A delivery recorded at 00:30 on 1 November in Shanghai (16:30 UTC on 31 October) reads
    back as the same aware instant; `recorded_at > since` finds it with `since` given in
    Shanghai or in UTC, and not with `since` one microsecond after it, on either database."""
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    oid = signed_order(db, kangda, D(2026, 10, 30), [("MON-M8", 1)], delivered_on=False)
    when = dt.datetime(2026, 11, 1, 0, 30, 0, 123456, tzinfo=SHANGHAI)
    with session_scope(db) as s:
        s.add(Delivery(delivery_no="TZ-D1", order_id=oid, line_no=1, quantity=1,
                       delivered_on=D(2026, 11, 1), recorded_at=when))
    with session_scope(db) as s:
        row = s.exec(select(Delivery).where(Delivery.delivery_no == "TZ-D1")).one()
        assert row.recorded_at == when and row.recorded_at.utcoffset() == dt.timedelta(0)
        assert row.recorded_at.date() == D(2026, 10, 31)  # the UTC date: never shown
        for since in (when - dt.timedelta(microseconds=1),
                      (when - dt.timedelta(microseconds=1)).astimezone(UTC)):
            assert s.exec(select(Delivery.delivery_no).where(
                Delivery.recorded_at > since)).all() == ["TZ-D1"]
        assert s.exec(select(Delivery.delivery_no).where(
            Delivery.recorded_at > when)).all() == []


# --- quote validity: the signing link on the quote's last day --------------------------------

TOKEN = "tok-" + "z" * 39


def quote_valid_until(settings, last_day: dt.date) -> None:
    """A quote valid until `last_day`, to sign on the built-in page with TOKEN, whose link
    expires as the quote flow sets it (flows.order_steps.quote_expiry)."""
    from flows.order_steps import quote_expiry
    from models import Customer, IntentOrder, IntentOrderLine, SigningToken
    from models.signing import token_hash

    with session_scope(settings.db_url) as s:
        cust = s.exec(select(Customer)).first()
        s.add(IntentOrder(id="IO-TZ1", event_id="e-tz1", sender_id="portal",
                          customer_name=cust.legal_name, customer_id=cust.id, status="quoted",
                          contact_name="顾晓峰"))
        s.flush()
        s.add(IntentOrderLine(order_id="IO-TZ1", line_no=1, sku="MON-M8", model="M8",
                              name="多参数监护仪", quantity=1, unit="台",
                              unit_price=Decimal("100.00"), tax_rate=Decimal("0.13")))
        quote = Quote(code="Q2610-TZTZTZ-1", order_id="IO-TZ1", customer_id=cust.id,
                      total_amount=Decimal("100.00"), tax_amount=Decimal("11.50"),
                      valid_until=last_day, status="sent", signing_provider="builtin",
                      signing_ref="Q2610-TZTZTZ-1")
        s.add(quote)
        s.flush()
        s.add(SigningToken(token_hash=token_hash(TOKEN), quote_id=quote.id,
                           expires_at=quote_expiry(quote)))


@pytest.mark.parametrize("day, hour, minute, status", [
    (D(2026, 10, 31), 0, 30, 200),   # the last day at 00:30 (16:30 UTC the day before)
    (D(2026, 10, 31), 23, 59, 200),  # its last minute
    (D(2026, 11, 1), 0, 0, 410),     # the next day (16:00 UTC on the last day)
])
def test_the_signing_link_opens_on_the_quotes_last_day_in_shanghai(seeded, day, hour, minute,
                                                                   status):
    """A quote valid until 31 October opens on 31 October in Shanghai (also at 00:30, still
    30 October in UTC), and has expired from 00:00 on 1 November in Shanghai."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    quote_valid_until(seeded, D(2026, 10, 31))
    at_shanghai(day, hour, minute)
    with TestClient(create_app(seeded, launcher=None)) as c:
        assert c.get(f"/sign/{TOKEN}").status_code == status


def test_the_signing_link_still_opens_in_the_last_second_of_the_quotes_last_day(seeded):
    """docs/configuration.md: "a quote and its signing link are valid to the end of that day
    (Asia/Shanghai)". The customer opens the link of a quote valid until 31 October at
    23:59:59.6 on 31 October in Shanghai and expects the quote to sign; the link expires at
    23:59:59.000 (flows.order_steps.quote_expiry), so he is told 链接已过期 and must ask for
    a new quote. The same holds for the submit (`SigningToken.expires_at > now`)."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    quote_valid_until(seeded, D(2026, 10, 31))
    at_shanghai(D(2026, 10, 31), 23, 59, 59, 600000)
    with TestClient(create_app(seeded, launcher=None)) as c:
        r = c.get(f"/sign/{TOKEN}")
    assert "链接已过期" not in r.text
    assert r.status_code == 200


# --- vouchers and statements: the month's end, the day a correction is made -----------------

def test_voucher_and_statement_dates_of_runs_in_the_first_hours_of_a_month(hub, statements):
    """November settled at 00:10 on 1 December in Shanghai (16:10 UTC on 30 November): its
    vouchers are dated 30 November (the month's end, period 2026-11), the draft statement is
    issued on 1 December. A correction made at 07:00 on 1 December in Shanghai (23:00 UTC on
    30 November) is booked on the day it is made in Shanghai: 1 December, period 2026-12."""
    db = hub.db_url
    at_shanghai(D(2026, 11, 2), 10)
    publish(db, FLAT)
    kangda = customer_id(db, KANGDA)
    o1 = signed_order(db, kangda, D(2026, 11, 10), [("MON-M8", 1)])  # 12,800 → 256.00
    at_shanghai(D(2026, 12, 1), 0, 10)
    first = settle_month(current_hub(), "2026-11")
    assert lines_of(db, first.run_id) == {(o1, "rebate"): Decimal("256.00")}
    batch = voucher_batch(current_hub(), first.run_id)
    assert batch.period == "2026-11"
    assert {v.voucher_date for v in batch.vouchers} == {D(2026, 11, 30)}
    assert [(d.month, d.issued_on) for d in statements.values()] == [("2026-11", D(2026, 12, 1))]
    # an order of November signed and delivered on 30 November, keyed in late
    at_shanghai(D(2026, 12, 1), 7, 0)
    o2 = signed_order(db, kangda, D(2026, 11, 30), [("MON-M8", 1)])
    again = settle_month(current_hub(), "2026-11")
    assert lines_of(db, again.run_id) == {(o2, "adjustment"): Decimal("256.00")}
    batch = voucher_batch(current_hub(), again.run_id)
    assert (batch.period, {v.voucher_date for v in batch.vouchers}) == \
        ("2026-12", {D(2026, 12, 1)})
    with session_scope(db) as s:
        run = s.get(SettlementRun, again.run_id)
        assert run.created_at.astimezone(SHANGHAI).date() == D(2026, 12, 1)


# --- the rep's board and the order page at 00:30 on the 1st -------------------------------------

def test_the_board_at_00_30_on_the_first_expects_each_order_in_its_shanghai_month(hub):
    """At 00:30 on 1 December in Shanghai (16:30 UTC on 30 November) the rep's board expects
    November (not settled yet) and December: an order signed on 20 November in November's
    settlement; one dated 30 November whose quote was signed at 00:20 on 1 December (16:20 UTC
    on 30 November) in December's; the board's day is 1 December and its order page says so."""
    from flows.rebate_board import Scope, board, expected_lines, order_detail

    db = hub.db_url
    at_shanghai(D(2026, 11, 2), 10)
    publish(db, FLAT)
    kangda = customer_id(db, KANGDA)
    o1 = signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 1)])
    o2 = signed_order(db, kangda, D(2026, 11, 30), [("MON-M8", 2)], delivered_on=D(2026, 11, 30))
    with session_scope(db) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == o2)).one()
        quote.signed_at = dt.datetime(2026, 12, 1, 0, 20, tzinfo=SHANGHAI)
        s.add(quote)
    at_shanghai(D(2026, 12, 1), 0, 30)
    scope = Scope("rep-zhangwei", None, "张伟的返利")
    got = sorted((m, d.order_id, d.amount) for m, d in expected_lines(db, scope))
    assert got == [("2026-11", o1, Decimal("256.00")), ("2026-12", o2, Decimal("512.00"))]
    page = board(db, scope)
    assert page["today"] == "2026-12-01"
    assert {f["status"]: f["amount"] for f in page["figures"]}["expected"] == "768.00"
    detail = order_detail(db, scope, o2)
    assert [(ln["month"], ln["status"], ln["amount"]) for ln in detail["lines"]] == \
        [("2026-12", "expected", "512.00")]
