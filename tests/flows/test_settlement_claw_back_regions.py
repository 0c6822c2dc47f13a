"""Money taken back after a customer moved region, when the same order and rule was paid in
both regions: each region gives back at most what it was paid, newest payments first
(found by seeded random month sequences checking the settlement's invariants)."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from sqlmodel import select

from flows.hub import current_hub
from flows.rebate_board import Scope, board
from flows.settlement import compute_month, settle_month, voucher_batch
from models import Customer, RebateLine
from models.db import session_scope
from tests.flows.test_settlement import POLICY as SETTLEMENT_POLICY
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

D = dt.date
# the settlement tests' policy, its quarter's first tier paying 1 %
POLICY = SETTLEMENT_POLICY.replace("{from: 0, to: 100000, rate: 0%}",
                                   "{from: 0, to: 100000, rate: 1%}")
assert POLICY != SETTLEMENT_POLICY


@pytest.fixture(autouse=True)
def months_over():
    clock_from(D(2027, 1, 5))


def move(db_url: str, customer: int, region: str) -> None:
    with session_scope(db_url) as s:
        s.get(Customer, customer).region = region


def booked(db_url: str, run_id: int | None = None) -> dict:
    with session_scope(db_url) as s:
        query = select(RebateLine)
        if run_id is not None:
            query = query.where(RebateLine.run_id == run_id)
        lines = s.exec(query).all()
    out: dict = defaultdict(Decimal)
    for ln in lines:
        out[(ln.order_id, ln.rule_id, ln.region)] += ln.amount
    return dict(out)


def test_a_claw_back_of_an_order_paid_in_two_regions_gives_back_where_it_was_paid(hub):
    publish(hub.db_url, POLICY)
    renhe = customer_id(hub.db_url, "浙江仁和医疗器械有限公司")  # 华东
    # October under 华东: O1 5 × 12,800 = 64,000: flat 1,280.00, quarter 1 % = 640.00
    o1 = signed_order(hub.db_url, renhe, D(2026, 10, 10), [("MON-M8", 5)])
    settle_month(current_hub(), "2026-10", documents=False)
    move(hub.db_url, renhe, "华南")
    # November under 华南: O2 51,200 lifts the quarter to 115,200 ≥ 100,000 (3 %): O1's
    # quarter due 1,920.00, so 华南 is paid O1's tier difference of 1,280.00
    o2 = signed_order(hub.db_url, renhe, D(2026, 11, 5), [("MON-M8", 4)])
    settle_month(current_hub(), "2026-11", documents=False)
    assert booked(hub.db_url)[(o1, "quarter", "华南")] == Decimal("1280.00")
    # December: 3 of O1's 5 units come back. The quarter falls to 76,800 (1 %): O1's quarter
    # due is 256.00 of the 1,920.00 paid: −1,664.00, of which 华南 gives back all it got
    # (1,280.00) and 华东 the rest (384.00); O1's flat −768.00 (paid under 华东); O2's
    # quarter 512.00 of 1,536.00 paid under 华南: −1,024.00
    return_goods(hub.db_url, o1, 1, 3, D(2026, 12, 10))
    # before December is settled, the board expects every part of the split claw-back
    for scope, amount in ((Scope(None, None, "finance"), "-3456.00"),
                          (Scope(None, "华东", "华东"), "-1152.00"),
                          (Scope(None, "华南", "华南"), "-2304.00")):
        figures = {f["status"]: f for f in board(hub.db_url, scope, D(2026, 12, 20))["figures"]}
        assert figures["expected"]["amount"] == amount, scope
    result = settle_month(current_hub(), "2026-12", documents=False)
    assert booked(hub.db_url, result.run_id) == {
        (o1, "flat", "华东"): Decimal("-768.00"),
        (o1, "quarter", "华南"): Decimal("-1280.00"),
        (o1, "quarter", "华东"): Decimal("-384.00"),
        (o2, "quarter", "华南"): Decimal("-1024.00")}
    assert result.by_region == {"华东": "-1152.00", "华南": "-2304.00"}
    assert result.total == Decimal("-3456.00") and result.lines == 4
    # no region ever gives back more than it was paid for an order and rule
    assert booked(hub.db_url) == {
        (o1, "flat", "华东"): Decimal("512.00"),
        (o1, "quarter", "华东"): Decimal("256.00"), (o1, "quarter", "华南"): Decimal("0.00"),
        (o2, "flat", "华南"): Decimal("1024.00"), (o2, "quarter", "华南"): Decimal("512.00")}
    with session_scope(hub.db_url) as s:
        split = s.exec(select(RebateLine).where(RebateLine.run_id == result.run_id,
                                                RebateLine.order_id == o1,
                                                RebateLine.rule_id == "quarter")).all()
    assert all("本次共 -1,664.00 元，按原入账销售与大区冲回（华南（张伟）-1,280.00 元、"
               "华东（张伟）-384.00 元）" in ln.explanation for ln in split)
    (voucher,) = voucher_batch(current_hub(), result.run_id).vouchers
    assert sum(e.debit for e in voucher.entries) == sum(e.credit for e in voucher.entries) \
        == Decimal("3456.00")
    # the split lines are one claw-back: nothing is left to settle
    assert compute_month(hub.db_url, "2026-12").drafts == []
    assert settle_month(current_hub(), "2026-12", documents=False).run_id is None
