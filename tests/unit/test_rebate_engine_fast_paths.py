"""The settlement's fast paths give what the plain computation gives: amounts and rates
remembered per integer, drafts and bucket keys made past the dataclass __init__, tier texts
written once per rule, paid amounts converted in integers."""
from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from models.rebates import engine
from models.rebates.engine import BucketKey, LineDraft, evaluate, settle
from models.rebates.formatting import Memo, fen_text, fen_to_yuan, money_fen
from tests.unit.test_rebate_engine import (
    CUSTOMERS,
    GOOD_PAYER,
    book,
    line,
    policy,
    rule,
)

D = Decimal


def _yuan(fen: int, grouping: str) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:{grouping}}.{cents:02d}"


BOUNDARIES = [0, 1, -1, 5, -5, 99, 100, 99_999, 100_000, 100_001, -99_999, -100_000,
              123_456_789, -123_456_789]


@given(st.lists(st.one_of(st.sampled_from(BOUNDARIES), st.integers(-10**15, 10**15)),
                min_size=1, max_size=20))
def test_amounts_as_written_whatever_was_asked_before(fens):
    for _ in range(2):  # first made, then remembered
        for fen in fens:
            assert money_fen(fen) == _yuan(fen, ",") + " 元"
            assert fen_text(fen) == _yuan(fen, "")
            yuan = fen_to_yuan(fen)
            assert yuan == Decimal(fen) / 100 and str(yuan) == _yuan(fen, "")


def test_memo_stays_within_its_limit_and_right():
    made = []
    memo = Memo(lambda k: made.append(k) or k * 2, limit=3)
    for k in [1, 2, 3, 4, 5, 1, 1]:
        assert memo[k] == k * 2
        assert len(memo) <= 3
    assert made.count(1) == 2  # forgotten once full, made again; remembered after that


@given(st.integers(0, 10**9))
def test_rates_by_millionths(n):
    exact = Decimal(n).scaleb(-6)
    assert engine._RATES[n] == exact and str(engine._RATES[n]) == str(exact)
    assert engine._RATE_TEXTS[n] == format(exact, "f")


def test_payment_rate_input_rounds_down_whatever_the_writing():
    assert engine._payment_rate_input(D("0.9")) == "0.900000"
    assert engine._payment_rate_input(D("0.90")) == "0.900000"
    assert engine._payment_rate_input(D("0.8999999")) == "0.899999"
    assert engine._payment_rate_input(None) is None
    rate = D("0.12345678")
    assert engine._payment_rate_input(rate) == format(
        rate.quantize(D("0.000001"), rounding=ROUND_FLOOR), "f")


@given(st.decimals(min_value=-10**9, max_value=10**9, places=4, allow_nan=False,
                   allow_infinity=False))
def test_paid_amounts_to_fen_half_up(amount):
    assert engine._to_fen(amount) == int(
        amount.scaleb(2).to_integral_value(rounding=ROUND_HALF_UP))


def _settled():
    b = book(policy("P", rule("1", "[{from: 0, to: 100000, rate: 0.02}, "
                                   "{from: 100000, rate: 0.03}]",
                              extra="cap: {amount_per_period: 2500}\n")))
    jan = [line("SO-1", "2027-01-05", 30), line("SO-2", "2027-01-20", 90),
           line("SO-3", "2027-01-25", 2, no=2)]
    dues = evaluate(jan, b, CUSTOMERS, GOOD_PAYER)
    return dues, settle(dues, {}, rerun=False)


def test_drafts_have_every_field_as_the_dataclass_makes_them():
    _, drafts = _settled()
    assert drafts
    names = {f.name for f in dataclasses.fields(LineDraft)}
    for d in drafts:
        assert set(vars(d)) == names
        assert LineDraft(**{name: getattr(d, name) for name in names}) == d


def test_bucket_keys_as_the_dataclass_makes_them():
    dues, _ = _settled()
    for key, o in dues:
        made = dues[(key, o)].bucket
        plain = BucketKey(made.policy_code, made.rule_id, made.customer_id, made.period)
        assert made == plain and hash(made) == hash(plain) and made.key == plain.key == key
        assert BucketKey.parse(key) == made


def test_a_tier_read_from_inputs_is_a_copy():
    """Tier descriptions are written once per rule; each bucket gets its own copy."""
    b = book(policy("P", rule("1", "[{from: 0, to: 100000, rate: 0.02}, "
                                   "{from: 100000, rate: 0.03}]")))
    dues = evaluate([line("SO-1", "2027-01-05", 120), line("SO-2", "2027-01-05", 130,
                                                           customer=2)], b, CUSTOMERS, GOOD_PAYER)
    first, second = dues.values()
    assert first.bucket != second.bucket
    first.inputs["tier"]["index"] = 99
    settle(dues, {}, rerun=False)[0].bucket_inputs["tier"]["rate"] = "0.5"
    assert second.inputs["tier"] == {"index": 2, "from": "100000", "to": None, "rate": "0.03"}
    r = first._acc[engine._RULE]
    assert r.describe_tier(1) == {"index": 2, "from": "100000", "to": None, "rate": "0.03"}


def test_settled_texts_read_as_before():
    """Retroactive tier with a cap that bites: the explanation and the inputs in full."""
    _, drafts = _settled()
    d = next(x for x in drafts if x.order_id == "SO-2")
    # 120 + 2 units × 1000 = 122,000 yuan → tier 2 (3 %); uncapped SO-2: 90,000 × 3 % = 2,700,
    # all orders 3,660 → cap 2,500 shared: 2,700 × 2,500 / 3,660 = 1,844.26…
    assert d.own_inputs["rate"] == format(d.rate, "f")
    assert d.own_inputs["basis"] == "90000.00" and d.own_inputs["uncapped_due"] == "2700.00"
    assert d.own_inputs["order_date"] == "2027-01-20"
    assert "本单计返基数 90,000.00 元 × 3% = 2,700.00 元。" in d.explanation
    assert "本期封顶 2,500.00 元，未封顶合计 3,660.00 元" in d.explanation
    assert d.explanation.startswith(f"返利：应返 {money_fen(int(d.due * 100))}，已返 0.00 元")
    assert dt.date.fromisoformat(d.own_inputs["order_date"]).month == 1
