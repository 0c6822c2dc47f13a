"""The rebate as the quote PDF prints it (read back with pdftotext) and as the order stores
it (a long sentence shortened by whole product lines), and percentages of exact fractions
rounded as Decimal rounds them whatever their sign (audit round 5)."""
from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from models.rebates.engine import NO_POLICY_SENTENCE
from models.rebates.formatting import percent, percent_value
from reports.quote_pdf import render_quote_pdf
from tests.unit.test_quote_pdf import _doc, _run, needs_poppler


def _text(tmp_path, rebate: str) -> str:
    path = tmp_path / "quote.pdf"
    render_quote_pdf(_doc(rebate=rebate), path)
    return re.sub(r"\s+", "", _run("pdftotext", str(path), "-"))


@needs_poppler
def test_a_quote_without_an_applicable_policy_promises_no_settlement(tmp_path):
    """"本订单暂无适用的返利政策，以月度结算为准" told the customer a rebate of nothing was
    subject to a monthly settlement."""
    text = _text(tmp_path, NO_POLICY_SENTENCE)
    assert "返利：本订单暂无适用的返利政策。" in text
    assert "以月度结算为准" not in text


@needs_poppler
def test_a_quote_with_an_expected_rebate_is_subject_to_the_monthly_settlement(tmp_path):
    sentence = "本次订单返利比例：12.5%，较上月提升2.3个百分点（预计返利 ¥8,000.00）"
    assert re.sub(r"\s+", "", f"返利：{sentence}，以月度结算为准。") in _text(tmp_path, sentence)


def test_a_negative_fraction_rounds_like_the_same_decimal():
    """Half up is away from zero and down is towards zero for a negative rate too (the exact
    fraction path used to floor: −2/3 read −66.67 % rounded down, −1/8 % half up −0.12 %)."""
    for f in (Fraction(-2, 3), Fraction(-1, 800), Fraction(-1, 8000), Fraction(2, 3),
              Fraction(1, 800), Fraction(-123456789, 10**9)):
        d = Decimal(f.numerator) / Decimal(f.denominator)
        assert percent_value(f) == percent_value(d), f
        assert percent_value(f, 2, ROUND_DOWN) == percent_value(d, 2, ROUND_DOWN), f
    assert percent(Fraction(-2, 3), 2, ROUND_DOWN) == "-66.66%"
    assert percent(Fraction(-1, 800)) == "-0.13%"


def test_a_long_rebate_sentence_is_shortened_by_whole_product_lines():
    """The stored sentence (order_rebate.sentence, at most 300 characters) of an order of many
    product lines used to be cut anywhere — inside a rate, 12.35% read 12.3…"""
    import datetime as dt

    from flows.rebate_preview import SENTENCE_MAX, rebate_sentence
    from models.rebates.engine import Preview

    parts = [f"【产品线{n:02d}】本次订单返利比例：12.35%，较上月提升2.35个百分点" for n in range(9)]
    long = "；".join(parts)
    assert len(long) > SENTENCE_MAX
    result = Preview(order_id="IO-1", customer_id=1, order_date=dt.date(2026, 11, 20),
                     order_amount=Decimal("100000.00"), amount=Decimal("12350.00"),
                     rate=Decimal("0.123500"), rules=(object(),), skipped=(), product_lines=(),
                     sentence=long)
    text = rebate_sentence(result)
    assert len(text) <= SENTENCE_MAX
    assert text.endswith("…（预计返利 ¥12,350.00）")
    kept = text.removesuffix("…（预计返利 ¥12,350.00）").split("；")
    assert kept == parts[:len(kept)] and len(kept) >= 5


@settings(max_examples=300, deadline=None)
@given(st.integers(-10**9, 10**9), st.integers(1, 10**6), st.integers(0, 4))
def test_exact_fractions_round_like_decimals_property(numerator, denominator, places):
    """Property: for any rate, positive or negative, the exact-fraction path of percent_value
    gives what Decimal's own rounding of the same value gives (half up, and down)."""
    f = Fraction(numerator, denominator)
    d = Decimal(f.numerator) / Decimal(f.denominator)
    assert percent_value(f, places) == percent_value(d, places)
    assert percent_value(f, places, ROUND_DOWN) == percent_value(d, places, ROUND_DOWN)
