"""Rebate engine: hand-computed scenarios (the arithmetic is in the comments)."""
from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal

import pytest

from models.rebates.engine import (
    BucketKey, CustomerProfile, Paid, ReturnFact, SaleLine, evaluate, item_classes, named_skus,
    preview, settle,
)
from models.rebates.payment_rate import (
    InvoiceFact, PaymentFact, PaymentRates, trailing_months, trailing_payment_rate,
)
from models.rebates.policy import PolicyBook, PublishedVersion, parse_policy_document

D = Decimal
KANGDA = CustomerProfile(1, "A", "华东", "91320500MA1K2D3F5H", "江苏康达医疗设备有限公司")
RENHE = CustomerProfile(2, "B", "华东", "91330100MA2B7C8D9Q", "浙江仁和医疗器械有限公司")
HUABEI = CustomerProfile(3, "C", "华北", None, "北京北辰医疗器械有限公司")
CUSTOMERS = {c.customer_id: c for c in (KANGDA, RENHE, HUABEI)}
GOOD_PAYER = {(c, f"2027-{m:02d}"): D("0.95") for c in CUSTOMERS for m in range(1, 13)}


def rule(rule_id: str, tiers: str, *, measure="amount", period="quarter", style="retroactive",
         priority=10, stacking="stack", extra="") -> str:
    text = f"""\
        - id: {rule_id}
          clause: 第{rule_id}条
          measure: {measure}
          period: {period}
          style: {style}
          tiers: {tiers}
          priority: {priority}
          stacking: {stacking}
        """
    text = textwrap.dedent(text)
    if extra:
        text += textwrap.indent(textwrap.dedent(extra), "  ")
    return textwrap.indent(text, "  ")


def policy(code: str, *rules: str, start="2027-01-01", end=None, name="测试返利政策"):
    head = f"code: {code}\nname: {name}\neffective_from: {start}\n"
    if end:
        head += f"effective_to: {end}\n"
    return parse_policy_document(head + "rules:\n" + "".join(rules))


def book(*specs, versions=None) -> PolicyBook:
    published = [PublishedVersion(s.code, 1, s) for s in specs]
    return PolicyBook(published + list(versions or []))


def line(order: str, day: str, qty: int, price="1000.00", *, no=1, sku="MON-M8", pl="监护",
         customer=1) -> SaleLine:
    return SaleLine(order, no, customer, dt.date.fromisoformat(day), sku, pl, D(price), qty,
                    "rep-zhangwei")


def due_of(dues, order: str, rule_id: str | None = None):
    hits = [d for (k, o), d in dues.items() if o == order
            and (rule_id is None or d.rule_id == rule_id)]
    assert len(hits) == 1, hits
    return hits[0]


def pay(paid: dict, drafts) -> None:
    """Book a settlement's lines as paid (what the caller does with rebate_line rows)."""
    for d in drafts:
        key = (d.bucket_key, d.order_id)
        before = paid[key].amount if key in paid else D("0")
        paid[key] = Paid(before + d.amount, d.basis, d.policy_version, d.clause, d.rep_id,
                         d.region)


TWO_TIERS = "[{from: 0, to: 100000, rate: 2%}, {from: 100000, rate: 5%}]"


# --------------------------------------------------------------------------- preview

def _preview_book():
    # quarter volume: below 100,000 → 7.7 %, from 100,000 → 10 % (retroactive);
    # payment bonus 2.5 % when the trailing payment rate is at least 90 % (stacks)
    return book(policy(
        "MON-2027Q1",
        rule("quarter-volume", "[{from: 0, to: 100000, rate: 7.7%}, {from: 100000, rate: 10%}]"),
        rule("payment-bonus", "[{from: 0, rate: 2.5%}]", period="month", priority=5,
             extra="applies_to: {payment_rate: {min: 90%, no_history: fail}}\n")))


def test_preview_12_5_percent_up_2_3_points():
    jan = [line("O-JAN", "2027-01-12", 10, "8000.00")]  # 80,000 in January
    feb = [line("O-FEB", "2027-02-08", 5, "8000.00")]  # 40,000 now
    rates = {(1, "2027-01"): D("0.95"), (1, "2027-02"): D("0.92")}
    pv = preview(feb, jan, _preview_book(), CUSTOMERS, rates, last_month_lines=jan)
    # last month, as of 31 Jan: quarter volume 80,000 < 100,000 → 7.7 % + bonus 2.5 % = 10.2 %
    # now: 80,000 + 40,000 = 120,000 ≥ 100,000 → 10 % + bonus 2.5 % = 12.5 %; 12.5 − 10.2 = 2.3
    assert pv.sentence == "本次订单返利比例：12.5%，较上月提升2.3个百分点"
    (pl,) = pv.product_lines
    assert (pl.rate, pl.last_month_rate, pl.change_points) == (
        D("0.125000"), D("0.102000"), D("2.30"))
    # amounts: 40,000 × 10 % = 4,000.00; 40,000 × 2.5 % = 1,000.00; total 5,000.00
    amounts = {r.rule_id: r.amount for r in pv.rules}
    assert amounts == {"quarter-volume": D("4000.00"), "payment-bonus": D("1000.00")}
    assert (pv.amount, pv.rate, pv.order_amount) == (D("5000.00"), D("0.125000"), D("40000.00"))
    vol = next(r for r in pv.rules if r.rule_id == "quarter-volume")
    assert (vol.inputs["volume_before"], vol.inputs["volume_after"]) == ("80000.00", "120000.00")
    assert vol.inputs["tier"] == {"index": 2, "from": "100000", "to": None, "rate": "0.1"}
    assert vol.policy_version == 1 and vol.clause == "第quarter-volume条"
    # January's order moves up a tier with it: 80,000 × (10 % − 7.7 %) = 1,840.00
    assert vol.inputs["other_orders_change"] == "1840.00"
    assert "1,840.00 元" in vol.explanation
    bonus = next(r for r in pv.rules if r.rule_id == "payment-bonus")
    assert bonus.inputs["payment_rate"] == "0.920000"
    assert pv.skipped == ()
    assert '"sentence": "本次订单返利比例：12.5%' in pv.detail_json()


def test_preview_drop_flat_and_no_order_last_month():
    jan = [line("O-JAN", "2027-01-12", 15, "8000.00")]  # 120,000: 10 % + 2.5 % = 12.5 %
    rates = {(1, "2027-01"): D("0.95"), (1, "2027-02"): D("0.80")}
    feb = [line("O-FEB", "2027-02-08", 1, "8000.00")]
    pv = preview(feb, jan, _preview_book(), CUSTOMERS, rates, last_month_lines=jan)
    # February: 10 % only (payment rate 80 % < 90 %): 12.5 − 10 = 2.5 points down
    assert pv.sentence == "本次订单返利比例：10%，较上月下降2.5个百分点"
    assert [(s.rule_id, s.reason) for s in pv.skipped] == [
        ("payment-bonus", "近3个月回款率 80% 低于 90%")]
    rates[(1, "2027-02")] = D("0.95")
    pv = preview(feb, jan, _preview_book(), CUSTOMERS, rates, last_month_lines=jan)
    assert pv.sentence == "本次订单返利比例：12.5%，与上月持平"
    pv = preview(feb, [], _preview_book(), CUSTOMERS, rates, last_month_lines=[])
    # alone: 8,000 < 100,000 → 7.7 % + 2.5 % = 10.2 %
    assert pv.sentence == "本次订单返利比例：10.2%，上月无该产品线订单"


def test_preview_per_product_line_and_reasons_for_rules_that_do_not_apply():
    b = book(policy("P", rule("monitors", "[{from: 0, rate: 3%}]", extra="""\
        applies_to: {product_lines: [监护], customer_tiers: [A, B]}
        """), rule("pumps", "[{from: 0, rate: 2%}]", extra="""\
        applies_to: {product_lines: [输注], regions: [华南]}
        """)))
    order = [line("O9", "2027-03-02", 1, "10000.00", no=1),
             line("O9", "2027-03-02", 2, "5000.00", no=2, sku="PUMP-SP3", pl="输注")]
    last = [line("O5", "2027-02-10", 1, "10000.00")]
    pv = preview(order, [], b, CUSTOMERS, GOOD_PAYER, last_month_lines=last)
    # 监护: 3 % now and in February; 输注: nothing (customer is 华东), no order in February
    assert pv.sentence == ("【监护】本次订单返利比例：3%，与上月持平；"
                           "【输注】本次订单返利比例：0%，上月无该产品线订单")
    assert [(s.rule_id, s.reason) for s in pv.skipped] == [
        ("pumps", "客户大区 华东 不在适用范围（华南）")]
    # total rate = 300 / 20,000 = 1.5 % (not 3 % + 0 %: the rules have different bases)
    assert (pv.amount, pv.rate) == (D("300.00"), D("0.015000"))
    # no rule applies at all: said so, as the quote says it, not "0%"
    pumps_only = [line("O9", "2027-03-02", 2, "5000.00", sku="PUMP-SP3", pl="输注")]
    pv = preview(pumps_only, [], b, CUSTOMERS, GOOD_PAYER, last_month_lines=[])
    assert not pv.rules and pv.sentence == "本订单暂无适用的返利政策"


def test_a_rule_without_name_or_clause_is_cited_once():
    spec = parse_policy_document("""
code: BARE
name: 无名条款测试
effective_from: 2027-01-01
rules:
  - id: r1
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 1%}]
    priority: 1
    stacking: stack
  - id: r2
    name: 季度阶梯
    clause: 第二条
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 1%}]
    priority: 2
    stacking: stack
""")
    assert [r.citation for r in spec.rules] == ["规则 r1", "第二条「季度阶梯」"]


# --------------------------------------------------------------------------- tiers over a quarter

def test_retroactive_tier_crossing_mid_quarter_pays_the_difference():
    b = book(policy("P", rule("vol", TWO_TIERS)))
    paid: dict = {}
    # January: O1 60,000 → volume 60,000 < 100,000 → 2 %: 1,200.00
    jan = [line("O1", "2027-01-10", 60)]
    drafts = settle(evaluate(jan, b, CUSTOMERS, GOOD_PAYER), paid, rerun=False)
    assert [(d.order_id, d.kind, d.amount) for d in drafts] == [("O1", "rebate", D("1200.00"))]
    pay(paid, drafts)
    # February: O2 50,000 → volume 110,000 ≥ 100,000 → 5 % for the whole quarter:
    #   O1 due 60,000 × 5 % = 3,000.00, paid 1,200.00 → tier difference 1,800.00
    #   O2 due 50,000 × 5 % = 2,500.00 → first rebate
    feb = jan + [line("O2", "2027-02-20", 50)]
    dues = evaluate(feb, b, CUSTOMERS, GOOD_PAYER)
    drafts = settle(dues, paid, rerun=False)
    assert [(d.order_id, d.kind, d.amount, d.due, d.paid_before) for d in drafts] == [
        ("O1", "tier_difference", D("1800.00"), D("3000.00"), D("1200.00")),
        ("O2", "rebate", D("2500.00"), D("2500.00"), D("0.00"))]
    o1 = drafts[0]
    assert o1.explanation.startswith(
        "阶梯补差：应返 3,000.00 元，已返 1,200.00 元，本次 1,800.00 元。")
    assert "达到第2档" in o1.explanation
    assert o1.inputs["bucket_volume"] == "110000.00"
    assert o1.inputs["tier"]["index"] == 2
    assert o1.bucket == BucketKey("P", "vol", 1, "2027Q1")
    assert o1.bucket_key == "P|vol|1|2027Q1"
    pay(paid, drafts)
    assert settle(dues, paid, rerun=False) == []


def test_marginal_tier_crossing_mid_quarter_and_falling_back():
    b = book(policy("P", rule("vol", TWO_TIERS, style="marginal")))
    paid: dict = {}
    jan = [line("O1", "2027-01-10", 60)]
    pay(paid, settle(evaluate(jan, b, CUSTOMERS, GOOD_PAYER), paid, rerun=False))
    # January: O1 occupies [0, 60,000): 60,000 × 2 % = 1,200.00
    assert paid[("P|vol|1|2027Q1", "O1")].amount == D("1200.00")
    # February: O2 occupies [60,000, 110,000): 40,000 × 2 % + 10,000 × 5 % = 800 + 500
    # = 1,300.00; O1 does not move (marginal: no tier difference for earlier orders)
    feb = jan + [line("O2", "2027-02-20", 50)]
    dues = evaluate(feb, b, CUSTOMERS, GOOD_PAYER)
    drafts = settle(dues, paid, rerun=False)
    assert [(d.order_id, d.kind, d.amount) for d in drafts] == [("O2", "rebate", D("1300.00"))]
    assert [p["part"] for p in drafts[0].inputs["marginal_parts"]] == ["40000.00", "10000.00"]
    assert "40,000.00 元 按第1档 2%、10,000.00 元 按第2档 5%" in drafts[0].explanation
    pay(paid, drafts)
    # March: 20 units of O1 come back → O1 [0, 40,000) = 800.00 (claw back 400.00);
    # O2 slides to [40,000, 90,000) = 50,000 × 2 % = 1,000.00 (−300.00, fell back)
    mar = [line("O1", "2027-01-10", 40), line("O2", "2027-02-20", 50)]
    drafts = settle(evaluate(mar, b, CUSTOMERS, GOOD_PAYER), paid, rerun=False)
    assert [(d.order_id, d.kind, d.amount) for d in drafts] == [
        ("O1", "clawback", D("-400.00")), ("O2", "tier_difference", D("-300.00"))]


def test_marginal_by_quantity_uses_each_line_price_at_its_place():
    b = book(policy("P", rule("units", "[{from: 0, to: 10, rate: 1%}, {from: 10, rate: 2%}]",
                              measure="quantity", style="marginal")))
    order = [line("O1", "2027-01-10", 8, "1000.00", no=1),
             line("O1", "2027-01-10", 4, "500.00", no=2, sku="MON-M12")]
    d = due_of(evaluate(order, b, CUSTOMERS, GOOD_PAYER), "O1")
    # line 1: units [0, 8) at 1,000: 8 × 1,000 × 1 % = 80
    # line 2: units [8, 12) at 500: 2 × 500 × 1 % + 2 × 500 × 2 % = 10 + 20 = 30 → 110.00
    assert (d.due, d.basis) == (D("110.00"), D("10000.00"))
    assert d.inputs["bucket_volume"] == 12


def test_closed_last_tier_retroactive_keeps_it_marginal_pays_nothing_beyond():
    tiers = "[{from: 10000, to: 50000, rate: 2%}, {from: 50000, to: 80000, rate: 3%}]"
    retro = book(policy("P", rule("r", tiers)))
    marg = book(policy("P", rule("r", tiers, style="marginal")))
    lines = [line("O1", "2027-01-10", 100)]  # 100,000
    # retroactive: 100,000 ≥ 80,000 stays at the last tier: 100,000 × 3 % = 3,000.00
    assert due_of(evaluate(lines, retro, CUSTOMERS, GOOD_PAYER), "O1").due == D("3000.00")
    # marginal: [0, 10,000) nothing; 40,000 × 2 % + 30,000 × 3 % = 800 + 900; beyond 80,000
    # nothing → 1,700.00
    assert due_of(evaluate(lines, marg, CUSTOMERS, GOOD_PAYER), "O1").due == D("1700.00")
    # below the first tier: nothing
    small = [line("O1", "2027-01-10", 5)]
    d = due_of(evaluate(small, retro, CUSTOMERS, GOOD_PAYER), "O1")
    assert d.due == D("0.00") and "未达到最低档" in d.explanation


# --------------------------------------------------------------------------- returns

def test_return_after_settlement_claws_back_never_more_than_paid():
    b = book(policy("P", rule("vol", TWO_TIERS)))
    paid: dict = {}
    # January: 10 × 10,000 = 100,000 → 5 %: 5,000.00
    pay(paid, settle(evaluate([line("O1", "2027-01-10", 10, "10000.00")], b, CUSTOMERS,
                              GOOD_PAYER), paid, rerun=False))
    key = ("P|vol|1|2027Q1", "O1")
    assert paid[key].amount == D("5000.00")
    # February: 2 units back → 80,000 < 100,000 → 2 %: 1,600.00 → claw back 3,400.00
    feb = [line("O1", "2027-01-10", 8, "10000.00")]
    drafts = settle(evaluate(feb, b, CUSTOMERS, GOOD_PAYER), paid, rerun=False)
    assert [(d.kind, d.amount, d.basis) for d in drafts] == [
        ("clawback", D("-3400.00"), D("80000.00"))]
    assert "计返基数由 100,000.00 元 降至 80,000.00 元" in drafts[0].explanation
    pay(paid, drafts)
    # March: everything back; the loader passes the line with net 0 …
    mar = [line("O1", "2027-01-10", 0, "10000.00")]
    drafts = settle(evaluate(mar, b, CUSTOMERS, GOOD_PAYER), paid, rerun=False)
    assert [(d.kind, d.amount, d.due) for d in drafts] == [
        ("clawback", D("-1600.00"), D("0.00"))]
    # … or no line at all: the same claw-back, from what was paid
    drafts_gone = settle(evaluate([], b, CUSTOMERS, GOOD_PAYER), paid, rerun=False)
    assert [(d.kind, d.amount, d.policy_version, d.clause) for d in drafts_gone] == [
        ("clawback", D("-1600.00"), 1, "第vol条")]
    assert "冲回已返金额" in drafts_gone[0].explanation
    pay(paid, drafts)
    assert paid[key].amount == D("0.00")
    # nothing more can be taken back: a second run finds nothing
    assert settle(evaluate(mar, b, CUSTOMERS, GOOD_PAYER), paid, rerun=False) == []
    assert settle(evaluate([], b, CUSTOMERS, GOOD_PAYER), paid, rerun=False) == []


def test_rerun_of_a_settled_month_gives_adjustments_only_for_changes():
    b = book(policy("P", rule("vol", TWO_TIERS)))
    paid: dict = {}
    lines = [line("O1", "2027-01-10", 60), line("O2", "2027-01-12", 10)]
    pay(paid, settle(evaluate(lines, b, CUSTOMERS, GOOD_PAYER), paid, rerun=False))
    assert settle(evaluate(lines, b, CUSTOMERS, GOOD_PAYER), paid, rerun=True) == []
    # a late return of 5 units on O2: 5,000 × 2 % = 100.00 less
    late = [line("O1", "2027-01-10", 60), line("O2", "2027-01-12", 5)]
    drafts = settle(evaluate(late, b, CUSTOMERS, GOOD_PAYER), paid, rerun=True)
    assert [(d.order_id, d.kind, d.amount) for d in drafts] == [
        ("O2", "adjustment", D("-100.00"))]
    assert drafts[0].explanation.startswith("更正：应返 100.00 元，已返 200.00 元，本次 -100.00 元。")



def test_a_claw_back_names_the_returns_its_lookup_gives_and_nothing_else_changes():
    b = book(policy("P", rule("vol", TWO_TIERS)))
    paid: dict = {}
    # January: O1 10 × 10,000 = 100,000 and O2 1 × 10,000: the quarter is 110,000 → 5 %:
    # O1 5,000.00, O2 500.00
    jan = [line("O1", "2027-01-10", 10, "10000.00"), line("O2", "2027-01-12", 1, "10000.00")]
    asked: list = []

    def lookup(keys):
        asked.append(keys)
        return {}
    pay(paid, settle(evaluate(jan, b, CUSTOMERS, GOOD_PAYER), paid, rerun=False,
                     returns=lookup))
    assert asked == []  # no basis fell: nothing asked
    # February: 4 of O1's units back on five returns and an exchange: 60,000 + 10,000 =
    # 70,000 < 100,000 → 2 %: O1 1,200.00 (−3,800.00, its basis fell), O2 200.00 (−300.00,
    # the tier only: its basis did not fall, nothing to name)
    feb = [line("O1", "2027-01-10", 6, "10000.00"), line("O2", "2027-01-12", 1, "10000.00")]
    facts = [ReturnFact("TH-5", dt.date(2027, 2, 20)), ReturnFact("TH-2", dt.date(2027, 2, 3)),
             ReturnFact("TH-1", dt.date(2027, 2, 3)), ReturnFact("HH-9", dt.date(2027, 2, 3),
                                                                  "exchange"),
             ReturnFact("TH-3", dt.date(2027, 2, 9))]
    dues = evaluate(feb, b, CUSTOMERS, GOOD_PAYER)
    plain = settle(dues, paid, rerun=False)
    drafts = settle(dues, paid, rerun=False,
                    returns=lambda keys: asked.append(keys) or {("P|vol|1|2027Q1", "O1"): facts})
    assert asked == [[(("P|vol|1|2027Q1", "O1"), 1)]]
    assert [(d.order_id, d.kind, d.amount, d.basis, d.due) for d in drafts] == [
        ("O1", "clawback", D("-3800.00"), D("60000.00"), D("1200.00")),
        ("O2", "tier_difference", D("-300.00"), D("10000.00"), D("200.00"))]
    # every column but the explanation (and the returns in the inputs) as without the lookup
    same = [(d.bucket, d.order_id, d.kind, d.basis, d.due, d.paid_before, d.amount, d.rate,
             d.policy_version, d.clause, d.rep_id, d.region, d.bucket_inputs) for d in drafts]
    assert same == [(d.bucket, d.order_id, d.kind, d.basis, d.due, d.paid_before, d.amount,
                     d.rate, d.policy_version, d.clause, d.rep_id, d.region, d.bucket_inputs)
                    for d in plain]
    o1, o2 = drafts
    assert {k: v for k, v in o1.own_inputs.items() if k != "returns"} == plain[0].own_inputs
    assert o2 == plain[1]
    # the first three by date and number, one day's of a kind together, then how many
    assert o1.explanation == plain[0].explanation.replace(
        "本单退货/换货后计返基数由 100,000.00 元 降至 60,000.00 元。",
        "因 2027-02-03 换货（换货单号 HH-9）、2027-02-03 退货（退货单号 TH-1、TH-2）等 5 笔退货/换货，"
        "本单计返基数由 100,000.00 元 降至 60,000.00 元。")
    assert [r["return_no"] for r in o1.own_inputs["returns"]] == [
        "HH-9", "TH-1", "TH-2", "TH-3", "TH-5"]
    pay(paid, drafts)
    # March: everything back, the order gone from the evaluation: named as well
    drafts = settle(evaluate([line("O2", "2027-01-12", 1, "10000.00")], b, CUSTOMERS,
                             GOOD_PAYER), paid, rerun=False,
                    returns=lambda keys: {key: [ReturnFact("TH-7", dt.date(2027, 3, 1))]
                                          for key, _ in keys})
    assert [(d.order_id, d.kind, d.amount) for d in drafts] == [("O1", "clawback", D("-1200.00"))]
    assert "因 2027-03-01 退货（退货单号 TH-7），本单在该条款下已无计返数量" in drafts[0].explanation


# --------------------------------------------------------------------------- payment rate

def _invoices_for_89_99():
    # due in the 3 months before February 2027 (Nov, Dec, Jan): 100,000.00 in total;
    # on time 89,990.00 (the 10,010.00 paid a day late does not count) → 89.99 %
    invoices = [InvoiceFact("INV-1", 1, dt.date(2027, 1, 10), D("60000.00")),
                InvoiceFact("INV-2", 1, dt.date(2026, 11, 30), D("40000.00")),
                InvoiceFact("INV-OLD", 1, dt.date(2026, 10, 31), D("50000.00")),  # outside
                InvoiceFact("INV-FEB", 1, dt.date(2027, 2, 1), D("50000.00"))]  # outside
    payments = [PaymentFact("INV-1", dt.date(2027, 1, 10), D("49990.00")),
                PaymentFact("INV-1", dt.date(2027, 1, 11), D("10010.00")),
                PaymentFact("INV-2", dt.date(2026, 11, 20), D("40000.00"))]
    return invoices, payments


def test_trailing_payment_rate_window_and_on_time_only():
    invoices, payments = _invoices_for_89_99()
    assert trailing_months("2027-02") == ("2026-11", "2026-12", "2027-01")
    assert trailing_payment_rate(invoices, payments, "2027-02") == D("0.8999")
    # paying more than the invoice on time is capped at the invoice amount:
    # INV-2 40,000 + 5,000 extra still counts 40,000
    extra = payments + [PaymentFact("INV-2", dt.date(2026, 11, 21), D("5000.00"))]
    assert trailing_payment_rate(invoices, extra, "2027-02") == D("0.8999")
    # no invoice due in the window: no history
    assert trailing_payment_rate(invoices, payments, "2026-09") is None
    rates = PaymentRates(invoices + [InvoiceFact("X-1", 2, dt.date(2027, 1, 5), D("100.00"))],
                         payments + [PaymentFact("X-1", dt.date(2027, 1, 5), D("100.00"))])
    assert rates(1, "2027-02") == D("0.8999")
    assert rates(2, "2027-02") == D("1")
    assert rates(2, dt.date(2027, 2, 17)) == D("1")
    assert rates(3, "2027-02") is None
    assert rates.amounts(1, "2027-02") == (10_000_000, 8_999_000)


def test_payment_rate_just_under_the_threshold_gives_no_bonus_and_says_why():
    invoices, payments = _invoices_for_89_99()
    rates = PaymentRates(invoices, payments)
    b = book(policy("P", rule("bonus", "[{from: 0, rate: 2.5%}]", period="month",
                              extra="applies_to: {payment_rate: {min: 90%}}\n")))
    feb = [line("O1", "2027-02-03", 10)]
    assert evaluate(feb, b, CUSTOMERS, rates) == {}
    pv = preview(feb, [], b, CUSTOMERS, rates, [])
    assert [(s.rule_id, s.reason) for s in pv.skipped] == [
        ("bonus", "近3个月回款率 89.99% 低于 90%")]
    # exactly 90 % passes (the minimum is inclusive): 10 more yuan on time
    on_time = payments + [PaymentFact("INV-1", dt.date(2027, 1, 9), D("10.00"))]
    d = due_of(evaluate(feb, b, CUSTOMERS, PaymentRates(invoices, on_time)), "O1")
    assert d.due == D("250.00")  # 10,000 × 2.5 %
    assert "近3个月回款率 90%（要求不低于 90%）" in d.explanation


def test_no_payment_history_follows_the_rule():
    b_fail = book(policy("P", rule("bonus", "[{from: 0, rate: 1%}]",
                                   extra="applies_to: {payment_rate: {min: 90%}}\n")))
    b_pass = book(policy("P", rule("bonus", "[{from: 0, rate: 1%}]", extra=(
        "applies_to: {payment_rate: {min: 90%, no_history: pass}}\n"))))
    lines = [line("O1", "2027-02-03", 10)]
    assert evaluate(lines, b_fail, CUSTOMERS, {}) == {}
    assert due_of(evaluate(lines, b_pass, CUSTOMERS, {}), "O1").due == D("100.00")
    pv = preview(lines, [], b_fail, CUSTOMERS, {}, [])
    assert "近3个月无到期应收（无到期发票，或均已红冲）" in pv.skipped[0].reason


# --------------------------------------------------------------------------- versions

def test_version_change_inside_the_month_shares_volume_each_line_its_own_tiers():
    v1 = policy("P", rule("vol", "[{from: 0, to: 50000, rate: 1%}, {from: 50000, rate: 2%}]",
                          period="month"))
    v2 = policy("P", rule("vol", "[{from: 0, to: 50000, rate: 1.5%}, {from: 50000, rate: 3%}]",
                          period="month"), start="2027-01-16")
    b = PolicyBook([PublishedVersion("P", 1, v1), PublishedVersion("P", 2, v2)])
    lines = [line("O1", "2027-01-10", 30), line("O2", "2027-01-20", 30)]
    dues = evaluate(lines, b, CUSTOMERS, GOOD_PAYER)
    # one bucket (P, vol, customer 1, 2027-01), volume 30,000 + 30,000 = 60,000 ≥ 50,000:
    #   O1 (v1 tiers): 30,000 × 2 % = 600.00; O2 (v2 tiers): 30,000 × 3 % = 900.00
    o1, o2 = due_of(dues, "O1"), due_of(dues, "O2")
    assert (o1.policy_version, o1.due, o2.policy_version, o2.due) == (
        1, D("600.00"), 2, D("900.00"))
    assert o1.bucket == o2.bucket
    assert o1.inputs["versions_in_bucket"] == [1, 2]
    assert "本期由第1、2版共同累计，本单按第1版档位" in o1.explanation
    # alone, O1 would only reach v1's first tier: 30,000 × 1 % = 300.00
    assert due_of(evaluate(lines[:1], b, CUSTOMERS, GOOD_PAYER), "O1").due == D("300.00")


def test_a_cap_bounds_the_period_across_versions_without_reaching_back():
    """"每季度封顶" means per period, whichever versions govern its orders: the orders of a
    new version share what the cap leaves after the orders of the versions before, which keep
    what they earned (they may be settled and confirmed)."""
    v1 = policy("P", rule("vol", "[{from: 0, rate: 2%}]", period="month",
                          extra="cap: {amount_per_period: 1000}\n"))
    v2 = policy("P", rule("vol", "[{from: 0, rate: 3%}]", period="month",
                          extra="cap: {amount_per_period: 1000}\n"), start="2027-01-16")
    b = PolicyBook([PublishedVersion("P", 1, v1), PublishedVersion("P", 2, v2)])
    lines = [line("O1", "2027-01-10", 30), line("O2", "2027-01-20", 30)]
    dues = evaluate(lines, b, CUSTOMERS, GOOD_PAYER)
    # O1 (v1) 30,000 × 2 % = 600.00 ≤ 1,000; O2 (v2) 30,000 × 3 % = 900 > the 400.00 left
    assert (due_of(dues, "O1").due, due_of(dues, "O2").due) == (D("600.00"), D("400.00"))
    o2 = due_of(dues, "O2")
    assert o2.uncapped_due_fen == 90000
    assert (o2.inputs["capped"], o2.inputs["cap"], o2.inputs["cap_room"],
            o2.inputs["earned_under_earlier_versions"]) == (True, "1000.00", "400.00", "600.00")
    assert "此前版本的订单已返 600.00 元，本版订单可返 400.00 元" in o2.explanation
    assert "earned_under_earlier_versions" not in due_of(dues, "O1").inputs
    # a cap that only the new version has counts the older orders too
    v1 = policy("R", rule("vol", "[{from: 0, rate: 2%}]", period="month"))
    v2 = policy("R", rule("vol", "[{from: 0, rate: 3%}]", period="month",
                          extra="cap: {amount_per_period: 500}\n"), start="2027-01-16")
    b = PolicyBook([PublishedVersion("R", 1, v1), PublishedVersion("R", 2, v2)])
    dues = evaluate(lines, b, CUSTOMERS, GOOD_PAYER)
    assert (due_of(dues, "O1").due, due_of(dues, "O2").due) == (D("600.00"), D("0.00"))
    # a lower cap from mid-quarter leaves the January order as it was paid
    v1 = policy("Q", rule("vol", "[{from: 0, rate: 5%}]",
                          extra="cap: {amount_per_period: 5000}\n"))
    v2 = policy("Q", rule("vol", "[{from: 0, rate: 5%}]",
                          extra="cap: {amount_per_period: 2000}\n"), start="2027-02-15")
    b = PolicyBook([PublishedVersion("Q", 1, v1), PublishedVersion("Q", 2, v2)])
    lines = [line("O1", "2027-01-10", 60), line("O2", "2027-03-01", 10)]
    dues = evaluate(lines, b, CUSTOMERS, GOOD_PAYER)
    assert (due_of(dues, "O1").due, due_of(dues, "O2").due) == (D("3000.00"), D("0.00"))


# --------------------------------------------------------------------------- caps and rounding

def test_cap_shared_by_largest_remainder_adds_up_exactly():
    b = book(policy("P", rule("flat", "[{from: 0, rate: 10%}]",
                              extra="cap: {amount_per_period: 100}\n")))
    lines = [line("O1", "2027-01-05", 1), line("O2", "2027-01-06", 2),
             line("O3", "2027-01-07", 4)]
    dues = evaluate(lines, b, CUSTOMERS, GOOD_PAYER)
    # uncapped 100 + 200 + 400 = 700.00 > cap 100.00 (10,000 fen):
    #   O1 10,000 × 10,000 / 70,000 = 1,428.57 → 1,428 (remainder .57)
    #   O2 10,000 × 20,000 / 70,000 = 2,857.14 → 2,857 (.14)
    #   O3 10,000 × 40,000 / 70,000 = 5,714.29 → 5,714 (.29)
    #   9,999 given, 1 fen left → largest remainder: O1 → 14.29 + 28.57 + 57.14 = 100.00
    got = [due_of(dues, o).due for o in ("O1", "O2", "O3")]
    assert got == [D("14.29"), D("28.57"), D("57.14")]
    assert sum(got) == D("100.00")
    d = due_of(dues, "O1")
    assert d.inputs["capped"] is True and d.inputs["cap"] == "100.00"
    assert "本期封顶 100.00 元，未封顶合计 700.00 元" in d.explanation


def test_cap_remainder_ties_go_to_the_earlier_order():
    b = book(policy("P", rule("flat", "[{from: 0, rate: 10%}]",
                              extra="cap: {amount_per_period: 100}\n")))
    lines = [line("O3", "2027-01-05", 1), line("O1", "2027-01-06", 1),
             line("O2", "2027-01-06", 1)]
    dues = evaluate(lines, b, CUSTOMERS, GOOD_PAYER)
    # 10,000 / 3 = 3,333.33 each; 1 fen left → the earliest order date (O3)
    assert [due_of(dues, o).due for o in ("O3", "O1", "O2")] == [
        D("33.34"), D("33.33"), D("33.33")]


def test_rounding_once_per_order_and_rule_half_up():
    b = book(policy("P", rule("flat", "[{from: 0, rate: 1%}]")))
    three = [line("O1", "2027-01-05", 1, "33.30", no=n) for n in (1, 2, 3)]
    # 3 × 33.30 × 1 % = 0.999 → 1.00 (three roundings of 0.333 would give 0.99)
    assert due_of(evaluate(three, b, CUSTOMERS, GOOD_PAYER), "O1").due == D("1.00")
    half = [line("O1", "2027-01-05", 1, "0.50")]
    # 0.50 × 1 % = 0.005 → 0.01 (half up, not to even)
    d = due_of(evaluate(half, b, CUSTOMERS, GOOD_PAYER), "O1")
    assert d.due == D("0.01") and d.rate == D("0.020000")
    # the same for marginal tiers: [0, 0.30) at 1 % + [0.30, 0.50) at 1.5 %
    # = 0.003 + 0.003 = 0.006 → 0.01; 1 × 0.20 → 0.002 → 0.00
    marginal = book(policy("P", rule("m", "[{from: 0, to: 0.3, rate: 1%}, "
                                          "{from: 0.3, rate: 1.5%}]", style="marginal")))
    assert due_of(evaluate(half, marginal, CUSTOMERS, GOOD_PAYER), "O1").due == D("0.01")
    small = [line("O1", "2027-01-05", 1, "0.20")]
    assert due_of(evaluate(small, marginal, CUSTOMERS, GOOD_PAYER), "O1").due == D("0.00")


# --------------------------------------------------------------------------- stacking

def test_exclusive_highest_priority_wins_alone_stack_rules_add_up():
    b = book(
        policy("BASE", rule("base", "[{from: 0, rate: 1%}]", priority=50),
               rule("bonus", "[{from: 0, rate: 0.5%}]", priority=1)),
        policy("SPECIAL", rule("promo", "[{from: 0, rate: 3%}]", priority=5,
                               stacking="exclusive", extra="""\
            applies_to: {product_lines: [输注]}
            """), rule("m12", "[{from: 0, rate: 4%}]", priority=8, stacking="exclusive",
                       extra="""\
            applies_to: {skus: [PUMP-VP5]}
            """)))
    lines = [line("O1", "2027-01-05", 1, "1000.00", no=1),                       # 监护
             line("O1", "2027-01-05", 1, "1000.00", no=2, sku="PUMP-SP3", pl="输注"),
             line("O1", "2027-01-05", 1, "1000.00", no=3, sku="PUMP-VP5", pl="输注")]
    dues = evaluate(lines, b, CUSTOMERS, GOOD_PAYER)
    got = {d.rule_id: (d.basis, d.due) for d in dues.values()}
    # line 1: no exclusive rule applies → base 1 % + bonus 0.5 % (stack)
    # line 2: promo (exclusive, 3 %) alone, although base has the higher priority
    # line 3: promo (5) and m12 (8) are both exclusive → m12 alone: 4 %
    assert got == {"base": (D("1000.00"), D("10.00")), "bonus": (D("1000.00"), D("5.00")),
                   "promo": (D("1000.00"), D("30.00")), "m12": (D("1000.00"), D("40.00"))}
    pv = preview(lines[2:], [], b, CUSTOMERS, GOOD_PAYER, [])
    reasons = {s.rule_id: s.reason for s in pv.skipped}
    assert reasons["promo"].startswith("与互斥条款《测试返利政策》第m12条不叠加")
    assert reasons["base"].startswith("与互斥条款")


def test_exclusive_tie_goes_to_the_policy_code_alphabetically():
    b = book(policy("ZETA", rule("z", "[{from: 0, rate: 3%}]", stacking="exclusive")),
             policy("ALPHA", rule("a", "[{from: 0, rate: 2%}]", stacking="exclusive")))
    dues = evaluate([line("O1", "2027-01-05", 1)], b, CUSTOMERS, GOOD_PAYER)
    assert [d.policy_code for d in dues.values()] == ["ALPHA"]


def test_lines_taken_by_an_exclusive_rule_do_not_count_in_other_buckets():
    b = book(policy("P", rule("vol", TWO_TIERS, priority=1),
                    rule("promo", "[{from: 0, rate: 6%}]", priority=9, stacking="exclusive",
                         extra="applies_to: {skus: [MON-M12]}\n")))
    lines = [line("O1", "2027-01-05", 60), line("O2", "2027-01-06", 60, sku="MON-M12")]
    dues = evaluate(lines, b, CUSTOMERS, GOOD_PAYER)
    # vol sees O1 only: 60,000 < 100,000 → 2 %; O2 is promo's alone: 6 %
    assert due_of(dues, "O1", "vol").inputs["bucket_volume"] == "60000.00"
    assert due_of(dues, "O1", "vol").due == D("1200.00")
    assert due_of(dues, "O2").rule_id == "promo" and due_of(dues, "O2").due == D("3600.00")


# --------------------------------------------------------------------------- conditions

def test_customer_conditions_and_exclusions():
    b = book(policy("P", rule("r", "[{from: 0, rate: 1%}]", extra="""\
        applies_to: {customer_tiers: [A, B], regions: [华东], order_dates: {to: 2027-01-31}}
        exclude: {customers: [浙江仁和医疗器械有限公司], skus: [CONS-ECG10]}
        """)))
    lines = [line("K1", "2027-01-05", 1, customer=1),
             line("K2", "2027-02-05", 1, customer=1),   # after the order-date window
             line("R1", "2027-01-05", 1, customer=2),   # excluded by legal name
             line("H1", "2027-01-05", 1, customer=3),   # tier C, 华北
             line("K3", "2027-01-05", 1, sku="CONS-ECG10", pl="耗材", customer=1)]
    dues = evaluate(lines, b, CUSTOMERS, GOOD_PAYER)
    assert sorted(o for _, o in dues) == ["K1"]
    # a USCC excludes too; names match whatever the width of the characters
    b2 = book(policy("P", rule("r", "[{from: 0, rate: 1%}]", extra="""\
        exclude: {customers: [91320500ma1k2d3f5h, "浙江仁和 医疗器械有限公司"]}
        """)))
    assert sorted(o for _, o in evaluate(lines, b2, CUSTOMERS, GOOD_PAYER)) == ["H1"]
    pv = preview([line("H2", "2027-01-05", 1, customer=3)], [], b, CUSTOMERS, GOOD_PAYER, [])
    assert pv.skipped[0].reasons == ("客户等级 C 不在适用范围（A、B）",
                                     "客户大区 华北 不在适用范围（华东）")


def test_due_types_and_rate_places():
    b = book(policy("P", rule("r", "[{from: 0, rate: 2.345%}]")))
    d = due_of(evaluate([line("O1", "2027-01-05", 3, "333.33")], b, CUSTOMERS, GOOD_PAYER),
               "O1")
    # 999.99 × 2.345 % = 23.4497655 → 23.45; rate 23.45 / 999.99 = 0.0234502…
    assert (d.basis, d.due, d.rate) == (D("999.99"), D("23.45"), D("0.023450"))
    assert d.period == "2027Q1" and d.customer_id == 1 and d.style == "retroactive"
    assert d.inputs["tier"]["rate"] == "0.02345"


def test_unknown_customer_and_bad_price_are_refused():
    b = book(policy("P", rule("r", "[{from: 0, rate: 1%}]")))
    with pytest.raises(KeyError):
        evaluate([line("O1", "2027-01-05", 1, customer=99)], b, CUSTOMERS, GOOD_PAYER)
    with pytest.raises(ValueError):
        evaluate([line("O1", "2027-01-05", 1, "1.005")], b, CUSTOMERS, GOOD_PAYER)
    # no policy in force that day: nothing, and no profile needed
    assert evaluate([line("O1", "2026-12-31", 1, customer=99)], b, CUSTOMERS, GOOD_PAYER) == {}


def test_preview_accepts_iterators_and_ignores_the_order_in_period_lines():
    jan = [line("O-JAN", "2027-01-12", 10, "8000.00")]
    feb = [line("O-FEB", "2027-02-08", 5, "8000.00")]
    rates = {(1, "2027-01"): D("0.95"), (1, "2027-02"): D("0.92")}
    # the loader may hand over generators, and the period's lines may already hold the order
    pv = preview(iter(feb), iter(jan + feb), _preview_book(), CUSTOMERS, rates,
                 last_month_lines=iter(jan))
    assert pv.sentence == "本次订单返利比例：12.5%，较上月提升2.3个百分点"
    assert pv.amount == D("5000.00")


def test_item_classes_from_the_rules_alone():
    """Products are classed by a SKU some rule names, else by their product line, so the
    catalogue is never read: 监护 and 输注 are alike to every rule (one class for a
    settlement), MON-M12 is excluded by name (its own class), 耗材 no rule takes (left out of
    a settlement), and the marginal rule by quantity keeps 消毒's lines apart."""
    b = book(policy("P1",
                    rule("flat", "[{from: 0, rate: 1%}]", period="month",
                         extra="applies_to: {product_lines: [监护, 输注]}\n"
                               "exclude: {skus: [MON-M12]}\n"),
                    rule("units", "[{from: 0, to: 10, rate: 1%}, {from: 10, rate: 2%}]",
                         measure="quantity", style="marginal",
                         extra="applies_to: {product_lines: [消毒]}\n")))
    assert named_skus(b) == {"MON-M12"}
    settle_classes = item_classes(b, [("MON-M12", "监护")])
    monitor = settle_classes.number("MON-M8", "监护")
    assert monitor is not None and settle_classes.number("PUMP-SP3", "输注") == monitor
    assert settle_classes.number("MON-M12", "监护") is None  # taken by no rule
    assert settle_classes.number("CONS-ECG10", "耗材") is None
    assert settle_classes.number("NEW-SKU", "新产品线") is None
    assert settle_classes.number("DIS-1", "消毒") in settle_classes.per_line
    assert monitor not in settle_classes.per_line
    # a preview keeps product lines apart and leaves nothing out
    preview_classes = item_classes(b, [("MON-M12", "监护")], apart={"耗材"})
    numbers = {preview_classes.number(sku, pl) for sku, pl in (
        ("MON-M8", "监护"), ("PUMP-SP3", "输注"), ("MON-M12", "监护"), ("CONS-ECG10", "耗材"),
        ("DIS-1", "消毒"), ("NEW-SKU", "新产品线"))}
    assert None not in numbers and len(numbers) == 6
