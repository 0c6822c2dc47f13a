"""A settled order is evaluated with its customer's tier and region as they were on its order
date (Asia/Shanghai), read back from the operation log: a re-rating or a region move recorded
just before the settlement of the previous month runs does not change what that month's
orders earn, nor the region their lines are booked to. Computed by hand."""
from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal

import pytest
from sqlmodel import select

from flows.customer_import import import_customers
from flows.hub import current_hub
from flows.rebate_data import customer_profiles, customers_of_region, profile_changes
from flows.rebate_data import policy_book
from flows.rebate_replay import replay
from flows.settlement import compute_month, month_inputs, settle_month
from models import Customer, IntentOrder, IntentOrderLine, RebateLine
from models.db import session_scope
from models.oplog import apply_changes
from models.rebates.engine import CustomerProfile, evaluate
from models.rebates.policy import parse_policy_document
from tests.flows.test_settlement import POLICY as SETTLEMENT_POLICY
from tests.rebate_support import clock_from, customer_id, publish, signed_order

D = dt.date
KANGDA, RENHE = "江苏康达医疗设备有限公司", "浙江仁和医疗器械有限公司"

# tier A customers only: 3 % of each month's amount, and a quarterly tier (1 %, 2 % from
# 100,000 yuan) of the quarter's amount
TIER_POLICY = """
code: T-TIER-A
name: A级客户返利政策
effective_from: 2026-07-01
text: 一、A级客户基础返利3%；二、A级客户季度销售额满10万元全额按2%，否则按1%。
rules:
  - id: flat
    name: A级基础返利
    clause: 第一条
    applies_to: {product_lines: [监护], customer_tiers: [A]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 3%}]
    priority: 10
    stacking: stack
  - id: quarter
    name: A级季度阶梯
    clause: 第二条
    applies_to: {product_lines: [监护], customer_tiers: [A]}
    measure: amount
    period: quarter
    style: retroactive
    tiers:
      - {from: 0, to: 100000, rate: 1%}
      - {from: 100000, rate: 2%}
    priority: 5
    stacking: stack
"""


def set_profile(db_url: str, customer: int, **fields) -> None:
    """The customer's file as it stood before these tests (no operation-log entry)."""
    with session_scope(db_url) as s:
        c = s.get(Customer, customer)
        for name, value in fields.items():
            setattr(c, name, value)


def change_profile(db_url: str, customer: int, on: dt.date, **fields) -> None:
    """Sales-ops changes the file at 10:00 Shanghai time on `on`, logged as every change of a
    customer file is (models.oplog.apply_changes)."""
    clock_from(on)
    with session_scope(db_url) as s:
        assert apply_changes(s, s.get(Customer, customer), "staff:ops-01", **fields)


def amounts(drafts) -> dict:
    out: dict = defaultdict(Decimal)
    for d in drafts:
        out[(d.order_id, d.rule_id)] += d.amount
    return dict(out)


def booked(db_url: str) -> dict:
    with session_scope(db_url) as s:
        lines = s.exec(select(RebateLine)).all()
    out: dict = defaultdict(Decimal)
    for ln in lines:
        out[(ln.order_id, ln.rule_id, ln.region)] += ln.amount
    return dict(out)


def test_a_re_rating_on_the_first_of_october_does_not_pay_septembers_orders_the_new_rate(hub):
    db = hub.db_url
    kangda, renhe = customer_id(db, KANGDA), customer_id(db, RENHE)
    set_profile(db, kangda, tier="B")
    set_profile(db, renhe, tier="A")  # tier A throughout: no change
    clock_from(D(2026, 7, 1))
    publish(db, TIER_POLICY)
    # September: 康达 (tier B) 2 × 12,800 = 25,600; 仁和 (tier A) 1 × 12,800
    k9 = signed_order(db, kangda, D(2026, 9, 15), [("MON-M8", 2)])
    r9 = signed_order(db, renhe, D(2026, 9, 20), [("MON-M8", 1)])
    # 1 October (the quarterly re-rating): 康达 becomes tier A
    change_profile(db, kangda, D(2026, 10, 1), tier="A")
    # October: 康达 (tier A since the 1st) 1 × 12,800
    k10 = signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 1)])

    # September is settled on 5 October: 康达's order was a tier-B order, nothing is due; 仁和
    # is paid 3 % = 384.00 and its Q3 quarter 1 % of 12,800 = 128.00
    clock_from(D(2026, 10, 5))
    assert amounts(compute_month(db, "2026-09").drafts) == {
        (r9, "flat"): Decimal("384.00"), (r9, "quarter"): Decimal("128.00")}
    settle_month(current_hub(), "2026-09", documents=False)
    # October on 5 November: 康达's October order is a tier-A order: 384.00 + Q4 1 % 128.00
    # (September's order, in Q3, stays out)
    clock_from(D(2026, 11, 5))
    assert amounts(compute_month(db, "2026-10").drafts) == {
        (k10, "flat"): Decimal("384.00"), (k10, "quarter"): Decimal("128.00")}
    settle_month(current_hub(), "2026-10", documents=False)
    assert not {k for k in booked(db) if k[0] == k9}


def test_a_quarter_straddling_a_re_rating_counts_only_the_orders_placed_as_tier_a(hub):
    """The engine keeps an order out of a bucket whose rule its customer did not meet on the
    order date: the quarter's volume is that of the qualifying orders only."""
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    set_profile(db, kangda, tier="B")
    clock_from(D(2026, 7, 1))
    publish(db, TIER_POLICY)
    # July, tier B: 8 × 12,800 = 102,400 (on its own above the quarter's 100,000)
    k7 = signed_order(db, kangda, D(2026, 7, 10), [("MON-M8", 8)])
    clock_from(D(2026, 8, 5))
    assert compute_month(db, "2026-07").drafts == []
    settle_month(current_hub(), "2026-07", documents=False)
    # re-rated A on 15 August (recorded at 10:00 that day: the day's orders are tier A)
    change_profile(db, kangda, D(2026, 8, 15), tier="A")
    k8 = signed_order(db, kangda, D(2026, 8, 15), [("MON-M8", 1)])
    # August, settled on 5 September: the Q3 bucket holds August's 12,800 only (1 %), not
    # 115,200 (2 %); July's order earns nothing
    clock_from(D(2026, 9, 5))
    comp = compute_month(db, "2026-08")
    assert amounts(comp.drafts) == {(k8, "flat"): Decimal("384.00"),
                                    (k8, "quarter"): Decimal("128.00")}
    quarter = next(d for d in comp.drafts if d.rule_id == "quarter")
    assert quarter.bucket_inputs["bucket_volume"] == "12800.00"
    assert quarter.bucket_inputs["customer_tier"] == "A"
    settle_month(current_hub(), "2026-08", documents=False)
    assert not {k for k in booked(db) if k[0] == k7}


def test_lines_of_orders_before_a_region_move_are_booked_to_the_old_region(hub):
    db = hub.db_url
    renhe = customer_id(db, RENHE)  # 华东
    clock_from(D(2026, 10, 1))
    publish(db, SETTLEMENT_POLICY)  # 2 % a month; the quarter 3 % from 100,000, else 0 %
    # October: O1 5 × 12,800 = 64,000
    o1 = signed_order(db, renhe, D(2026, 10, 10), [("MON-M8", 5)])
    # moved to 华南 on 1 November, before October is settled
    change_profile(db, renhe, D(2026, 11, 1), region="华南")
    # November: O2 4 × 12,800 = 51,200
    o2 = signed_order(db, renhe, D(2026, 11, 5), [("MON-M8", 4)])
    # October settled on 5 November: O1's 1,280.00 to 华东, where it was ordered
    clock_from(D(2026, 11, 5))
    comp = compute_month(db, "2026-10")
    assert [(d.order_id, d.region, d.amount) for d in comp.drafts] == [
        (o1, "华东", Decimal("1280.00"))]
    settle_month(current_hub(), "2026-10", documents=False)
    # November on 5 December: the quarter reaches 115,200 (3 %): O1's 1,920.00 is still
    # 华东's; O2's 1,024.00 and 1,536.00 华南's
    clock_from(D(2026, 12, 5))
    comp = compute_month(db, "2026-11")
    quarter = {d.order_id: d for d in comp.drafts if d.rule_id == "quarter"}
    # the bucket's inputs are its latest order's; an order of another profile says its own
    assert quarter[o1].bucket_inputs["region"] == "华南"
    assert quarter[o1].own_inputs["region"] == "华东"
    assert quarter[o1].inputs["region"] == "华东"
    assert "region" not in quarter[o2].own_inputs
    settle_month(current_hub(), "2026-11", documents=False)
    assert booked(db) == {
        (o1, "flat", "华东"): Decimal("1280.00"), (o1, "quarter", "华东"): Decimal("1920.00"),
        (o2, "flat", "华南"): Decimal("1024.00"), (o2, "quarter", "华南"): Decimal("1536.00")}


def test_a_region_condition_holds_for_orders_placed_before_the_move(hub):
    db = hub.db_url
    renhe = customer_id(db, RENHE)  # 华东
    clock_from(D(2026, 10, 1))
    publish(db, SETTLEMENT_POLICY.replace("applies_to: {product_lines: [监护]}",
                                          "applies_to: {product_lines: [监护], regions: [华东]}"))
    o1 = signed_order(db, renhe, D(2026, 10, 31), [("MON-M8", 5)])
    change_profile(db, renhe, D(2026, 11, 1), region="华南")
    o2 = signed_order(db, renhe, D(2026, 11, 1), [("MON-M8", 4)])
    clock_from(D(2026, 12, 5))
    # O1 (华东 on its date): 2 % of 64,000; the quarter holds O1 alone (64,000 < 100,000: 0 %)
    assert amounts(compute_month(db, "2026-10").drafts) == {(o1, "flat"): Decimal("1280.00")}
    # O2 (华南 on its date) is taken by no rule
    assert [d for d in compute_month(db, "2026-11").drafts if d.order_id == o2] == []


def test_a_region_filled_in_by_the_customer_import_counts_from_the_day_it_was_imported(
        hub, tmp_path):
    """The import fills a file's empty region (logged through apply_changes): orders placed
    before had no region — booked to none, as the preview showed them — and later ones to
    the imported region."""
    db = hub.db_url
    renhe = customer_id(db, RENHE)
    set_profile(db, renhe, region=None)
    clock_from(D(2026, 10, 1))
    publish(db, SETTLEMENT_POLICY)
    o1 = signed_order(db, renhe, D(2026, 10, 10), [("MON-M8", 1)])
    clock_from(D(2026, 10, 20))
    table = tmp_path / "customers.csv"
    table.write_text(f"工商全称,大区\n{RENHE},华南\n", encoding="utf-8")
    assert import_customers(db, table, actor="ops-01").updated == 1
    o2 = signed_order(db, renhe, D(2026, 10, 25), [("MON-M8", 1)])
    clock_from(D(2026, 11, 5))
    assert sorted((d.order_id, d.region, d.amount) for d in compute_month(db, "2026-10").drafts
                  ) == [(o1, None, Decimal("256.00")), (o2, "华南", Decimal("256.00"))]


def test_a_replay_evaluates_past_orders_with_the_tier_on_their_dates(hub):
    """The what-if replay settles each month as the settlement does: a draft for tier-A
    customers pays 康达's September order nothing (tier B then), its October order 3 %."""
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    set_profile(db, kangda, tier="B")
    clock_from(D(2026, 9, 1))
    signed_order(db, kangda, D(2026, 9, 15), [("MON-M8", 2)])
    change_profile(db, kangda, D(2026, 10, 1), tier="A")
    signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 1)])
    clock_from(D(2026, 11, 20))
    draft = parse_policy_document(TIER_POLICY.replace("effective_from: 2026-07-01",
                                                      "effective_from: 2026-09-01"))
    result = replay(db, draft, "2026-09", "2026-10")
    assert {m: r.draft for m, r in result.by_month.items()} == {
        "2026-09": Decimal("0.00"), "2026-10": Decimal("512.00")}  # 384.00 + Q4 1 % 128.00


# --- properties: random orders and changes of two customers in Q4 2026 ---------------------

FIELDS = (("tier", "ABC"), ("region", ("华东", "华北", "华南")))


def _scenario(db: str, seed: int, changes_inside: bool) -> tuple[dict, list[tuple]]:
    """Ten random orders of two customers in October and November 2026 under the A-tier rules
    (narrowed to 华东 and 华北), and random tier and region changes (logged): before the
    quarter only, or on three of the order days too (before that day's order). Returns each
    customer's (tier, region) when the quarter starts and the changes made inside it
    (customer, day, field, value)."""
    rng = random.Random(seed)
    ids = [customer_id(db, KANGDA), customer_id(db, RENHE)]
    clock_from(D(2026, 9, 1))
    publish(db, TIER_POLICY.replace("effective_from: 2026-07-01", "effective_from: 2026-10-01")
            .replace("customer_tiers: [A]}", "customer_tiers: [A], regions: [华东, 华北]}"))
    for cid in ids:  # changes before the quarter: what the current row says by then
        for field, values in FIELDS:
            clock_from(D(2026, 9, rng.randint(1, 30)))
            with session_scope(db) as s:
                apply_changes(s, s.get(Customer, cid), "staff:ops-01",
                              **{field: rng.choice(values)})
    with session_scope(db) as s:
        start = {cid: (s.get(Customer, cid).tier, s.get(Customer, cid).region) for cid in ids}
    days = sorted(D(2026, 10, 1) + dt.timedelta(days=rng.randrange(61)) for _ in range(10))
    # inside: three changes of one customer, each turning it from meeting the rules (tier A
    # in 华东 or 华北) to not meeting them or back, before its order of that day: the order
    # of the second change's day met them otherwise than the current row does
    inside = set(rng.sample(range(10), 3)) if changes_inside else set()
    changed = rng.choice(ids)
    made = []
    for n, day in enumerate(days):
        buyer = rng.choice(ids)
        if n in inside:
            buyer = changed
            with session_scope(db) as s:
                c = s.get(Customer, changed)
                tier, region = c.tier, c.region
            if tier == "A" and region in ("华东", "华北"):
                field, values = rng.choice(FIELDS)
                change = {field: rng.choice([v for v in values
                                             if v not in ("A", "华东", "华北")])}
            else:
                change = {"tier": "A"} if tier != "A" else {}
                if region not in ("华东", "华北"):
                    change["region"] = rng.choice(("华东", "华北"))
            change_profile(db, changed, day, **change)
            made += [(changed, day, field, value) for field, value in change.items()]
        clock_from(day)
        signed_order(db, buyer, day, [("MON-M8", rng.randint(1, 6))])
    clock_from(D(2026, 12, 5))
    return start, made


def _dated_and_plain(db: str, month: str):
    inputs = month_inputs(db, month, compute_month(db, month).book)
    with session_scope(db) as s:
        current = customer_profiles(s, {ln.customer_id for ln in inputs.lines})
    book = policy_book_of(db)
    return (inputs, evaluate(inputs.lines, book, inputs.profiles, inputs.rates),
            evaluate(inputs.lines, book, current, inputs.rates), current)


def policy_book_of(db: str):
    with session_scope(db) as s:
        return policy_book(s)


def _seen(dues) -> dict:
    return {k: (d.due_fen, d.region, d.inputs) for k, d in dues.items()}


@pytest.mark.parametrize("seed", range(4))
def test_without_changes_in_the_quarter_the_result_is_the_old_paths(hub, seed):
    """The old path: every order evaluated with the current profiles. Changes recorded before
    the first order date read are already in the current row: nothing to undo, the same
    dues (and the one extra query found nothing)."""
    db = hub.db_url
    _scenario(db, seed, changes_inside=False)
    for month in ("2026-10", "2026-11"):
        inputs, dated, plain, current = _dated_and_plain(db, month)
        assert inputs.profiles.changes == {}
        assert dict(inputs.profiles) == current
        assert _seen(dated) == _seen(plain)


@pytest.mark.parametrize("seed", range(4))
def test_with_changes_in_the_quarter_each_order_meets_the_rules_on_its_date(hub, seed):
    """Every due is of an order whose customer was tier A in 华东 or 华北 on its order date,
    booked to that region; every such order of the month is paid the flat 3 %; the quarter's
    volume is the sum of its qualifying orders'."""
    db = hub.db_url
    start, made = _scenario(db, seed, changes_inside=True)

    def on(cid: int, day: dt.date) -> dict:
        profile = dict(zip(("tier", "region"), start[cid]))
        for who, when, field, value in made:  # recorded at 10:00 on `when`: counts that day
            if who == cid and when <= day:
                profile[field] = value
        return profile

    with session_scope(db) as s:
        orders = {o.id: (o.customer_id, o.order_date) for o in s.exec(select(IntentOrder))}
    with session_scope(db) as s:
        amounts_of = {oid: sum(ln.quantity * ln.unit_price for ln in s.exec(
            select(IntentOrderLine).where(IntentOrderLine.order_id == oid))) for oid in orders}

    def qualifies(oid: str) -> bool:
        p = on(*orders[oid])
        return p["tier"] == "A" and p["region"] in ("华东", "华北")

    for month in ("2026-10", "2026-11"):
        inputs, dated, _, _ = _dated_and_plain(db, month)
        for d in dated.values():
            assert qualifies(d.order_id), d.order_id
            assert d.region == on(*orders[d.order_id])["region"]
        flat = {d.order_id for d in dated.values() if d.rule_id == "flat"}
        read = {ln.order_id for ln in inputs.lines}
        assert {oid for oid, (_, day) in orders.items() if f"{day:%Y-%m}" == month} <= read
        assert flat == {oid for oid in read if qualifies(oid)}
        for d in dated.values():
            if d.rule_id == "quarter":
                assert Decimal(d.inputs["bucket_volume"]) == sum(
                    amounts_of[oid] for oid, (cid, day) in orders.items()
                    if cid == orders[d.order_id][0] and f"{day:%Y-%m}" <= month
                    and qualifies(oid))


@pytest.mark.parametrize("seed", range(3))
def test_the_log_is_read_alike_for_a_few_customers_and_for_many(hub, seed):
    """A preview's one customer has its log entries looked up by customer, a settlement's
    thousands read all at once: the same histories. And a region's customers on the board
    are those of the region now and those that were in it on some day since."""
    db = hub.db_url
    start, made = _scenario(db, seed, changes_inside=True)
    since = D(2026, 9, 30)  # `start` is the profile then; every change of `made` is later
    with session_scope(db) as s:
        few = customer_profiles(s, [c for c, _ in start.items()], since=since)
        conn = s.connection()
        others = {-n: CustomerProfile(-n, "A", "华东", None, f"客户{n}") for n in range(1, 61)}
        assert len(others) > 50  # past rebate_data._FEW
        assert profile_changes(conn, {**few, **others}, since) == few.changes
        [changed] = {cid for cid, *_ in made}
        assert set(few.changes) == {changed}
        # the log entries of a customer not asked for are left out
        unchanged = {cid: p for cid, p in few.items() if cid != changed}
        assert profile_changes(conn, {**unchanged, **others}, since) == {}
        for region in ("华东", "华北", "华南"):
            picked = set(s.exec(select(Customer.id).where(
                customers_of_region(conn, region, since))))
            was_there = set()
            for cid, (_, region_then) in start.items():
                regions = [region_then] + [v for who, _, field, v in made
                                           if who == cid and field == "region"]
                if region in regions:
                    was_there.add(cid)
            assert picked & set(start) == was_there, region


@pytest.mark.parametrize("analyzed", [False, True])
def test_the_log_is_read_by_entity_and_time_whatever_the_statistics(seeded, analyzed):
    """The dated profiles read the customer files' changes recorded since a day: every file's
    (a settlement, a region's board) by (entity, at); one file's (a preview) by (entity,
    entity_id, at). Without statistics (SQLite is not ANALYZEd in service) the planner once
    took the plain entity index and read every customer log row ever written."""
    from flows.rebate_data import _profile_log
    from models import OperationLog
    from models.db import get_engine
    from tests.support import query_plans

    engine = get_engine(seeded.db_url)
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    with session_scope(seeded.db_url) as s:
        s.add_all(OperationLog(at=start + dt.timedelta(hours=i), actor="t",
                               entity="customer" if i % 3 else "quote", entity_id=str(i % 400),
                               action="update", changes='{"tier": ["A", "B"]}')
                  for i in range(6000))
    if analyzed:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    found = {}

    def read() -> None:
        with engine.connect() as conn:
            found["every"] = _profile_log(conn, dt.date(2025, 8, 1))  # a settlement's
            found["one"] = _profile_log(conn, dt.date(2025, 8, 1), [7])  # a preview's
    plans = query_plans(engine, "operation_log", read)
    assert set(found["one"]) == {7} and len(found["every"]) > 100
    assert [plan[0] for plan in plans] == [
        "SEARCH operation_log USING INDEX ix_operation_log_entity_at (entity=? AND at>?)",
        "SEARCH operation_log USING INDEX ix_operation_log_entity_record_at "
        "(entity=? AND entity_id=? AND at>?)"], plans
