"""What the customer reads of returns and exchanges, computed by hand. Found by an audit of
returns, exchanges and claw-backs (the money was right; these texts were not): a partly
returned order that also leaves a rule was told 本单未退货 and its return was not named; a
re-payment after an exchange's replacement was delivered had no explanation on the statement
(read as a plain first payment). The policy is the settlement tests' T-2026Q4: 第一条 flat 2 % per month, 第二条 quarter 0 % below 100,000 and
3 % (retroactive) from 100,000; MON-M8 at 12,800.00 a unit."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlmodel import select

from flows.hub import current_hub
from flows.settlement import settle_month
from models import Delivery, RebateLine
from models.db import session_scope
from tests.flows.test_settlement import POLICY
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

D = dt.date
# a back-dated second version without 第二条 (the quarter rule): same start as version 1
WITHOUT_QUARTER = POLICY.replace("text: 一、基础返利2%；二、季度销售额满10万元全额按3%。",
                                 "text: 第2版：仅基础返利2%。").split("  - id: quarter")[0]
assert "quarter" not in WITHOUT_QUARTER


@pytest.fixture(autouse=True)
def months_over():
    clock_from(D(2027, 1, 5))


def test_a_partly_returned_order_that_leaves_a_rule_is_not_told_it_had_no_return(hub):
    """O1 (10 Oct, 5 × 12,800 = 64,000) and O2 (5 Nov, 4 × 12,800 = 51,200): the quarter
    reaches 115,200 ≥ 100,000, so November pays O1 64,000 × 3 % = 1,920.00 and O2 1,536.00
    under 第二条. In December 2 of O1's 5 units come back (TH-9, 10 Dec: O1's basis 64,000 →
    38,400) and a back-dated version 2 without 第二条 governs every order from 1 October.

    December takes back O1's 1,920.00 under 第二条 (the rule no longer applies: right, as a
    tier_difference since O1 still holds 3 units). But the order DID have a return this
    month: its explanation may not say 本单未退货 (docs/rebates.md: a tier_difference whose
    basis fell through returns names the returns behind it), and its inputs should list TH-9.
    Found: 「本单未退货，但已不再适用该条款（…）」 and no `returns` in the inputs."""
    db = hub.db_url
    publish(db, POLICY)
    kangda = customer_id(db, "江苏康达医疗设备有限公司")
    o1 = signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    signed_order(db, kangda, D(2026, 11, 5), [("MON-M8", 4)])
    settle_month(current_hub(), "2026-10", documents=False)
    settle_month(current_hub(), "2026-11", documents=False)
    return_goods(db, o1, 1, 2, D(2026, 12, 10), number="TH-9")
    publish(db, WITHOUT_QUARTER)
    run = settle_month(current_hub(), "2026-12", documents=False)
    with session_scope(db) as s:
        (line,) = s.exec(select(RebateLine).where(RebateLine.run_id == run.run_id,
                                                  RebateLine.order_id == o1,
                                                  RebateLine.rule_id == "quarter")).all()
        amount, kind, text = Decimal(str(line.amount)), line.kind, line.explanation
        inputs = json.loads(line.inputs)
    # the money is right: everything paid under the rule is taken back
    assert (amount, kind) == (Decimal("-1920.00"), "tier_difference")
    # the text is not: O1 had a return (TH-9) this month
    assert "本单未退货" not in text, text
    assert "TH-9" in text, text
    assert [r["return_no"] for r in inputs.get("returns", [])] == ["TH-9"], inputs


def test_a_re_payment_after_an_exchange_s_replacement_is_explained_on_the_statement(
        hub, statements):
    """O1 (10 Oct, 5 × 12,800 = 64,000) and O2 (5 Nov, 51,200): November pays O1 its first
    1,920.00 under 第二条 (115,200 ≥ 100,000: 3 %). 10 Dec: 2 of O1's units are exchanged
    (HH-1, the goods go back): the quarter falls to 89,600 (0 %), December takes O1's 1,920.00
    back (退货冲回, naming HH-1). 8 Jan: the 2 replacements are delivered: O1 holds 5 units
    again, the quarter is 115,200, January pays O1 1,920.00 − 0.00 = 1,920.00 (kind rebate:
    its basis grew 38,400 → 64,000).

    That is not a first payment of the order (docs/rebates.md: a statement omits the
    explanation only for "a first payment of an order's whole due at the policy's one rate"),
    so the customer's January statement must say why an October order is paid 1,920.00 again
    (本单计返基数由 38,400.00 元 增至 64,000.00 元). Found: the row's explanation is empty
    (`_plain` takes any `rebate` whose amount equals its due as a first payment)."""
    db = hub.db_url
    clock_from(D(2027, 2, 5))
    publish(db, POLICY)
    kangda = customer_id(db, "江苏康达医疗设备有限公司")
    o1 = signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    signed_order(db, kangda, D(2026, 11, 5), [("MON-M8", 4)])
    settle_month(current_hub(), "2026-10", documents=False)
    settle_month(current_hub(), "2026-11", documents=False)
    return_goods(db, o1, 1, 2, D(2026, 12, 10), kind="exchange", number="HH-1")
    settle_month(current_hub(), "2026-12", documents=False)
    with session_scope(db) as s:
        s.add(Delivery(delivery_no="FH-R1", order_id=o1, line_no=1, quantity=2,
                       delivered_on=D(2027, 1, 8)))
    statements.clear()
    settle_month(current_hub(), "2027-01")
    (doc,) = statements.values()
    (row,) = [ln for ln in doc.lines if ln.order_id == o1 and ln.clause == "第二条"]
    assert (row.kind, row.amount, row.due_amount) == ("rebate", Decimal("1920.00"),
                                                       Decimal("1920.00"))
    assert "38,400.00 元 增至 64,000.00 元" in row.explanation, row
