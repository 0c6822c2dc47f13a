"""The board's 本月预计 against what the settlements then pay, nothing changing in between.
Each scenario looks at the board (finance, the regions, the reps, reps narrowed to a region),
then settles the months the board expected, and compares per order and in total. Figures by
hand. Found by an audit; wrong before the fixes:
- an order dated before the board's window (flows/rebate_board.orders_window_start) that the
  settlement pays now (delivered late) was missing from its rep's board, and from its
  region's when the customer left before the window; 华东's manager could not narrow to such
  a rep. An older quarter with news is now read for every customer it names;
- before last month is settled, a (bucket, order) whose rep changed after it was paid was
  counted twice: last month's line to the new rep and this month's claw-back from the old.
  This month's computation of a (bucket, order) now stands for all of last month's lines.
(Known and left: a partly delivered order of last month whose rest comes this month is listed
under this month with both parts: the amount is right, the month of the first part is not.)"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import sqlalchemy as sa

from flows import rebate_board
from flows.hub import current_hub
from flows.rebate_board import Scope, board, board_scope, expected_lines, figure_orders
from flows.settlement import settle_month
from models import Customer, Delivery, IntentOrder, Staff
from models.db import get_engine, session_scope
from models.oplog import apply_changes
from tests.board_support import at
from tests.flows.test_settlement import POLICY as QUARTER_POLICY  # 2 % a month, 3 % from 100k
from tests.rebate_support import customer_id, publish, return_goods, signed_order

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"
RENHE = "浙江仁和医疗器械有限公司"
HUANAN = "广州华南医药贸易有限公司"

SCOPES = {
    "finance": Scope(None, None, ""),
    "华东": Scope(None, "华东", ""),
    "华南": Scope(None, "华南", ""),
    "rep-zhangwei": Scope("rep-zhangwei", None, ""),
    "rep-lina": Scope("rep-lina", None, ""),
    "rep-zhangwei@华东": Scope("rep-zhangwei", "华东", ""),
    "rep-lina@华东": Scope("rep-lina", "华东", ""),
    "rep-lina@华南": Scope("rep-lina", "华南", ""),
    "rep-zhangwei@华南": Scope("rep-zhangwei", "华南", ""),
}


def look(db: str, today: dt.date) -> dict[str, dict[tuple[str, str], Decimal]]:
    """Every scope's expected lines as {(month, order): amount}, as the board shows them."""
    at(today)
    out = {}
    for name, scope in SCOPES.items():
        rebate_board._EXPECTED.clear()
        got: dict = defaultdict(Decimal)
        for month, d in expected_lines(db, scope, today):
            got[(month, d.order_id)] += d.amount
        out[name] = {k: v for k, v in got.items() if v}
    return out


def paid(db: str, months: list[str]) -> dict[str, dict[tuple[str, str], Decimal]]:
    """What the settlements of `months` stored, per scope, as {(month, order): amount}."""
    with get_engine(db).connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT month, order_id, rep_id, region, CAST(ROUND(amount*100) AS INTEGER) "
            "FROM rebate_line WHERE month IN (" + ",".join(f"'{m}'" for m in months) + ")")
        ).all()
    out = {}
    for name, scope in SCOPES.items():
        got: dict = defaultdict(Decimal)
        for month, oid, rep, region, fen in rows:
            if scope.rep_id in (None, rep) and scope.region in (None, region):
                got[(month, oid)] += Decimal(fen).scaleb(-2)
        out[name] = {k: v for k, v in got.items() if v}
    return out


def settle(db: str, *months: str) -> None:
    for m in months:
        first = dt.date.fromisoformat(m + "-01")
        nxt = (first + dt.timedelta(days=32)).replace(day=5)
        at(nxt)
        settle_month(current_hub(), m, documents=False)


def per_order(x: dict) -> dict:
    out = {}
    for name, lines in x.items():
        got: dict = defaultdict(Decimal)
        for (_, oid), v in lines.items():
            got[oid] += v
        out[name] = {k: v for k, v in got.items() if v}
    return out


def compare(db: str, today: dt.date, months: list[str]) -> tuple[dict, dict]:
    """The board on `today` and what the settlements of `months` then pay, per scope, as
    {order: amount} (the months an order's lines are shown under are compared apart)."""
    shown = look(db, today)
    settle(db, *months)
    return per_order(shown), per_order(paid(db, months))


def hand_over(db: str, order: str) -> None:
    """On 10 November the order is handed over to 李娜 (its rep changes)."""
    at(D(2026, 11, 10))
    with session_scope(db) as s:
        s.get(IntentOrder, order).rep_id = "rep-lina"


def quarter_base(db, *, rep="rep-zhangwei", name=KANGDA, units=5):
    """Policy T-2026Q4 (2 % a month; the quarter 3 % from 100,000); `rep` sells `units` × M8
    to `name` on 10 October, and October is settled (5 units: 64,000, 1,280 paid)."""
    at(D(2026, 10, 1))
    publish(db, QUARTER_POLICY)
    cid = customer_id(db, name)
    oct_ = signed_order(db, cid, D(2026, 10, 10), [("MON-M8", units)], rep_id=rep)
    settle(db, "2026-10")
    return cid, oct_


def test_a_quarter_tier_reached_late_by_another_rep_on_3_december(hub):
    """Right: each figure, its drill-down a row a page, and the two runs agree."""
    db = hub.db_url
    kangda, oct_ = quarter_base(db)
    nov = signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 3)], rep_id="rep-lina")
    # October 64,000 paid 1,280 (2 %); November 38,400 lifts the quarter to 102,400 (3 %):
    # November's order 768 + 1,152 = 1,920 to 李娜, October's difference 1,920 to 张伟
    at(D(2026, 12, 3))
    for who, want in (("finance", "3840.00"), ("华东", "3840.00"), ("rep-zhangwei", "1920.00"),
                      ("rep-lina", "1920.00"), ("rep-lina@华东", "1920.00")):
        rebate_board._EXPECTED.clear()
        figs = {f["status"]: f for f in board(db, SCOPES[who], D(2026, 12, 3))["figures"]}
        assert figs["expected"]["amount"] == want, who
        rows, offset = [], 0
        while True:  # the drill-down, a row a page, adds up to the figure
            page = figure_orders(db, SCOPES[who], "expected", D(2026, 12, 3),
                                 offset=offset, limit=1)
            assert (page["amount"], page["count"]) == (want, figs["expected"]["orders"])
            if not page["orders"]:
                break
            rows += page["orders"]
            offset += 1
        assert sum(Decimal(r["amount"]) for r in rows) == Decimal(want), who
    shown, got = compare(db, D(2026, 12, 3), ["2026-11", "2026-12"])
    assert shown == got
    assert got["finance"] == {nov: Decimal("1920.00"), oct_: Decimal("1920.00")}


def test_a_customer_moved_region_and_owner_mid_quarter(hub):
    db = hub.db_url
    renhe, oct_ = quarter_base(db, name=RENHE)
    at(D(2026, 11, 10))
    with session_scope(db) as s:
        apply_changes(s, s.get(Customer, renhe), "staff:ops-01", region="华南",
                      owner_rep_id="rep-lina")
    signed_order(db, renhe, D(2026, 11, 20), [("MON-M8", 3)], rep_id="rep-lina")
    shown, got = compare(db, D(2026, 12, 3), ["2026-11", "2026-12"])
    assert shown == got


def test_a_rep_change_on_a_paid_order_then_a_late_tier_on_30_november(hub):
    db = hub.db_url
    kangda, oct_ = quarter_base(db)
    hand_over(db, oct_)
    signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 3)])
    shown, got = compare(db, D(2026, 11, 30), ["2026-11"])
    assert shown == got


def test_a_return_of_a_paid_order_whose_rep_changed(hub):
    db = hub.db_url
    kangda, oct_ = quarter_base(db)
    hand_over(db, oct_)
    return_goods(db, oct_, 1, 2, D(2026, 11, 15))
    shown, got = compare(db, D(2026, 12, 3), ["2026-11", "2026-12"])
    assert shown == got


def test_a_december_order_lifts_the_quarter_before_november_is_settled(hub):
    db = hub.db_url
    kangda, oct_ = quarter_base(db)
    signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 1)])
    at(D(2026, 12, 2))
    signed_order(db, kangda, D(2026, 12, 2), [("MON-M8", 2)])
    shown, got = compare(db, D(2026, 12, 3), ["2026-11", "2026-12"])
    assert shown == got


def test_an_order_signed_in_the_last_hour_of_november_beijing_time(hub):
    db = hub.db_url
    kangda, oct_ = quarter_base(db)
    o = signed_order(db, kangda, D(2026, 11, 30), [("MON-M8", 1)])
    with get_engine(db).begin() as conn:
        conn.execute(sa.text("UPDATE quote SET signed_at = :t WHERE order_id = :o"),
                     {"t": dt.datetime(2026, 11, 30, 15, 30, tzinfo=dt.UTC), "o": o})
    shown, got = compare(db, D(2026, 12, 3), ["2026-11", "2026-12"])
    assert shown == got


def test_a_partial_delivery_across_the_month_end(hub):
    db = hub.db_url
    kangda, oct_ = quarter_base(db)
    o = signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 3)], delivered_on=False)
    with session_scope(db) as s:
        s.add(Delivery(delivery_no="DA", order_id=o, line_no=1, quantity=1,
                       delivered_on=D(2026, 11, 25)))
        s.add(Delivery(delivery_no="DB", order_id=o, line_no=1, quantity=2,
                       delivered_on=D(2026, 12, 2)))
    shown, got = compare(db, D(2026, 12, 3), ["2026-11", "2026-12"])
    assert shown == got


def test_a_december_return_of_an_order_whose_rep_changed_after_a_late_tier(hub):
    db = hub.db_url
    kangda, oct_ = quarter_base(db)
    hand_over(db, oct_)
    signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 3)])
    at(D(2026, 12, 2))
    return_goods(db, oct_, 1, 2, D(2026, 12, 2))
    shown, got = compare(db, D(2026, 12, 3), ["2026-11", "2026-12"])
    assert shown == got


def test_a_december_return_of_part_of_a_november_order(hub):
    db = hub.db_url
    kangda, oct_ = quarter_base(db)
    nov = signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 3)])
    at(D(2026, 12, 2))
    return_goods(db, nov, 1, 1, D(2026, 12, 2))
    shown, got = compare(db, D(2026, 12, 3), ["2026-11", "2026-12"])
    assert shown == got


def test_a_customer_moved_region_on_1_december_with_a_return_and_a_new_order(hub):
    db = hub.db_url
    renhe, oct_ = quarter_base(db, name=RENHE)
    signed_order(db, renhe, D(2026, 11, 20), [("MON-M8", 3)])
    at(D(2026, 12, 1))
    with session_scope(db) as s:
        apply_changes(s, s.get(Customer, renhe), "staff:ops-01", region="华南")
    at(D(2026, 12, 2))
    return_goods(db, oct_, 1, 1, D(2026, 12, 2))
    signed_order(db, renhe, D(2026, 12, 2), [("MON-M8", 1)], rep_id="rep-lina")
    shown, got = compare(db, D(2026, 12, 3), ["2026-11", "2026-12"])
    assert shown == got


CAP_POLICY = """
code: T-CAP
name: 封顶测试政策
effective_from: 2026-10-01
text: 基础返利5%，每月封顶1000元。
rules:
  - id: flat
    name: 基础返利
    clause: 第一条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 5%}]
    cap: {amount_per_period: 1000}
    priority: 10
    stacking: stack
"""


def test_a_capped_policy_superseded_mid_month(hub):
    db = hub.db_url
    at(D(2026, 10, 1))
    publish(db, CAP_POLICY)
    kangda = customer_id(db, KANGDA)
    signed_order(db, kangda, D(2026, 11, 5), [("MON-M8", 1)])  # 640 under v1
    at(D(2026, 11, 10))
    publish(db, CAP_POLICY.replace("effective_from: 2026-10-01", "effective_from: 2026-11-16")
            .replace("5%", "6%").replace("1000", "1500"))
    signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 2)], rep_id="rep-lina")
    signed_order(db, kangda, D(2026, 11, 30), [("MON-M8", 1)])
    shown, got = compare(db, D(2026, 12, 3), ["2026-11", "2026-12"])
    assert shown == got


def old_order_delivered_now(db: str, name: str, rep: str) -> str:
    """Policy from 2025 (2 % a month; quarter 3 % from 100,000). `rep` sells 1 × M8 (12,800)
    to `name` on 15 August 2025; the goods come only on 15 November 2026 (a backorder). August
    2025 is settled (nothing delivered: nothing paid). Returns the order."""
    at(D(2025, 1, 2))
    publish(db, QUARTER_POLICY.replace("effective_from: 2026-10-01",
                                       "effective_from: 2025-01-01"))
    order = signed_order(db, customer_id(db, name), D(2025, 8, 15), [("MON-M8", 1)],
                         rep_id=rep, delivered_on=False)
    settle(db, "2025-08")
    at(D(2026, 11, 15))
    with session_scope(db) as s:
        s.add(Delivery(delivery_no="DL-1", order_id=order, line_no=1, quantity=1,
                       delivered_on=D(2026, 11, 15)))
    return order


def test_a_reps_board_expects_the_rebate_of_his_old_order_delivered_now(hub):
    """李娜 sold to 康达 (华东) in August 2025; delivered 15 November 2026, November's
    settlement pays her 12,800 × 2 % = 256.00 (quarter Q3 2025: 12,800 < 100,000, 0 %). On 30
    November finance's and 华东's boards expect 256.00, 李娜's own board 0.00 (her customers are
    those of her orders since 2025-09-30, or paid to her before: neither), and 华东's manager
    may not even narrow to her (李娜不在华东大区). Settled on 5 December: 256.00 to 李娜."""
    db = hub.db_url
    order = old_order_delivered_now(db, KANGDA, "rep-lina")
    shown, got = compare(db, D(2026, 11, 30), ["2026-11"])
    assert got["finance"] == got["华东"] == got["rep-lina"] == {order: Decimal("256.00")}
    assert shown["finance"] == shown["华东"] == {order: Decimal("256.00")}
    assert shown["rep-lina"] == {order: Decimal("256.00")}


def test_a_managers_view_of_the_rep_of_an_old_order_delivered_now(hub):
    """华东's 本月预计 holds 李娜's 256.00 but 王强 cannot narrow to
    her: region_sellers looks at orders since the same window."""
    db = hub.db_url
    old_order_delivered_now(db, KANGDA, "rep-lina")
    at(D(2026, 11, 30))
    with session_scope(db) as s:
        manager = s.get(Staff, "mgr-east")
    scope = board_scope(db, manager, rep="rep-lina")
    rebate_board._EXPECTED.clear()
    figures = {f["status"]: f["amount"] for f in board(db, scope, D(2026, 11, 30))["figures"]}
    assert figures["expected"] == "256.00"


def test_an_old_order_of_a_customer_moved_since_delivered_now(hub):
    """张伟's August 2025 order of 仁和 (华东 then; moved to 华南 on 1
    December 2025) delivered 15 November 2026: 256.00 booked to 张伟 in 华东. 华东's board
    expects it (the move is within the window), 张伟's does not."""
    db = hub.db_url
    renhe = customer_id(db, RENHE)
    at(D(2025, 1, 2))
    publish(db, QUARTER_POLICY.replace("effective_from: 2026-10-01",
                                       "effective_from: 2025-01-01"))
    order = signed_order(db, renhe, D(2025, 8, 15), [("MON-M8", 1)], delivered_on=False)
    settle(db, "2025-08")
    at(D(2025, 12, 1))
    with session_scope(db) as s:
        apply_changes(s, s.get(Customer, renhe), "staff:ops-01", region="华南")
    at(D(2026, 11, 15))
    with session_scope(db) as s:
        s.add(Delivery(delivery_no="DL-1", order_id=order, line_no=1, quantity=1,
                       delivered_on=D(2026, 11, 15)))
    shown, got = compare(db, D(2026, 11, 30), ["2026-11"])
    assert got["rep-zhangwei"] == got["华东"] == {order: Decimal("256.00")}
    assert shown["华东"] == {order: Decimal("256.00")}
    assert shown["rep-zhangwei"] == {order: Decimal("256.00")}


def test_a_regions_board_expects_an_old_order_of_a_customer_that_left_before_the_window(hub):
    """张伟's order of 仁和 of 15 August 2025 (华东 then; moved to 华南 on
    1 September 2025, before the board's window of orders from 2025-09-30), delivered 15
    November 2026: November's settlement books 256.00 to 张伟 in 华东 (the region on the order
    date). On 30 November finance expects it, 华东 and 张伟 do not: finance's figure is not the
    sum of the regions' (nor of the reps')."""
    db = hub.db_url
    renhe = customer_id(db, RENHE)
    at(D(2025, 1, 2))
    publish(db, QUARTER_POLICY.replace("effective_from: 2026-10-01",
                                       "effective_from: 2025-01-01"))
    order = signed_order(db, renhe, D(2025, 8, 15), [("MON-M8", 1)], delivered_on=False)
    at(D(2025, 9, 1))
    with session_scope(db) as s:
        apply_changes(s, s.get(Customer, renhe), "staff:ops-01", region="华南")
    settle(db, "2025-08")
    at(D(2026, 11, 15))
    with session_scope(db) as s:
        s.add(Delivery(delivery_no="DL-1", order_id=order, line_no=1, quantity=1,
                       delivered_on=D(2026, 11, 15)))
    shown, got = compare(db, D(2026, 11, 30), ["2026-11"])
    assert got["finance"] == got["华东"] == got["rep-zhangwei"] == {order: Decimal("256.00")}
    assert shown["finance"] == {order: Decimal("256.00")} and shown["华南"] == {}
    assert shown["华东"] == {order: Decimal("256.00")}


TWO_TIER_QUARTER = QUARTER_POLICY.replace("{from: 0, to: 100000, rate: 0%}",
                                          "{from: 0, to: 100000, rate: 1%}")


def test_a_return_before_last_month_is_settled_of_an_order_whose_rep_changed(hub):
    """Policy: 2 % a month; the quarter 1 % below 100,000, 3 % from it.
    - 10 Oct: 张伟 sells 康达 5 × M8 = 64,000; October's run pays 张伟 1,280 + 640.
    - 10 Nov: the order O is handed over to 李娜 (its rep changes).
    - 20 Nov: 张伟 sells 3 × M8 = 38,400 (N): quarter 102,400, 3 %.
    - 2 Dec: 2 units of O come back: quarter 76,800, 1 % again.
    On 3 December (November not settled) the board expects, for O, +1,280 to 李娜 (November's
    run: O's quarter 3 % − 1 % = 1,920 − 640) beside December's −256 and −512 to 张伟, which
    December's computation made as if November's +1,280 were never paid. The runs then pay:
    November +1,280 to 李娜; December takes O's quarter back newest first: −1,280 from 李娜,
    −256 from 张伟, and −512 (O's October 2 %) from 张伟. 李娜 is shown 1,280.00 and gets 0.00;
    finance's 本月预计 is 1,664.00 and the two runs pay 384.00 together (N: 768 + 384)."""
    db = hub.db_url
    at(D(2026, 10, 1))
    publish(db, TWO_TIER_QUARTER)
    kangda = customer_id(db, KANGDA)
    o = signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    settle(db, "2026-10")
    hand_over(db, o)
    n = signed_order(db, kangda, D(2026, 11, 20), [("MON-M8", 3)])
    at(D(2026, 12, 2))
    return_goods(db, o, 1, 2, D(2026, 12, 2))
    shown, got = compare(db, D(2026, 12, 3), ["2026-11", "2026-12"])
    assert got["finance"] == {o: Decimal("-768.00"), n: Decimal("1152.00")}
    assert got["rep-lina"] == {}
    assert shown["rep-zhangwei"] == got["rep-zhangwei"]
    assert shown["rep-lina"] == {}
    assert shown["finance"] == got["finance"]
