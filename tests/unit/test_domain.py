"""Pure domain logic: 大写 amounts, quote codes, quote arithmetic, signing tokens, names."""
from __future__ import annotations

from decimal import Decimal

import pytest

from models.codes import ALPHABET, check_char, new_quote_code, quote_code_is_valid
from models.money import capital_amount
from models.names import normalize_name
from models.quoting import line_amount, line_tax, quote_totals
from models.signing import derive_signing_token, token_hash


@pytest.mark.parametrize("amount, words", [
    ("0", "零元整"),
    ("0.05", "伍分"),
    ("0.50", "伍角整"),
    ("1.10", "壹元壹角整"),
    ("10", "壹拾元整"),
    ("100", "壹佰元整"),
    ("1001", "壹仟零壹元整"),
    ("1234.50", "壹仟贰佰叁拾肆元伍角整"),
    ("10010.01", "壹万零壹拾元零壹分"),
    ("35497.00", "叁万伍仟肆佰玖拾柒元整"),
    ("100000", "壹拾万元整"),
    ("1050000", "壹佰零伍万元整"),
    ("20000000", "贰仟万元整"),
    ("100200300.40", "壹亿零贰拾万零叁佰元肆角整"),
    ("-12.30", "负壹拾贰元叁角整"),
])
def test_capital_amount(amount, words):
    assert capital_amount(Decimal(amount)) == words


def test_quote_code_check_character_catches_typos():
    code = new_quote_code("2611")
    assert quote_code_is_valid(code)
    prefix, body, check = code.split("-")
    for i, ch in enumerate(body):
        for other in ALPHABET:
            if other != ch:
                typo = f"{prefix}-{body[:i]}{other}{body[i + 1:]}-{check}"
                assert not quote_code_is_valid(typo)
    assert not quote_code_is_valid("Q2611-ABC")
    assert check_char("2611" + body) == check


def test_quote_arithmetic_is_decimal_and_rounds_half_up():
    assert line_amount(Decimal("1299.00"), 3) == Decimal("3897.00")
    assert line_tax(Decimal("3897.00"), Decimal("0.13")) == Decimal("448.33")

    class Line:
        def __init__(self, price, qty):
            self.unit_price, self.quantity, self.tax_rate = Decimal(price), qty, Decimal("0.13")

    total, tax = quote_totals([Line("1299.00", 3), Line("15800.00", 2)])
    assert (total, tax) == (Decimal("35497.00"), Decimal("4083.73"))
    assert isinstance(total, Decimal)


def test_signing_tokens_are_keyed_and_only_hashes_are_comparable():
    a = derive_signing_token(b"k1", "Q2611-AAAAAA-0", 1)
    assert a == derive_signing_token(b"k1", "Q2611-AAAAAA-0", 1)
    assert a != derive_signing_token(b"k2", "Q2611-AAAAAA-0", 1)
    assert len(a) >= 43 and "=" not in a
    assert token_hash(a) != a and len(token_hash(a)) == 64


def test_name_normalisation_folds_width_and_brackets():
    assert normalize_name("江苏康达（苏州）医疗 设备有限公司") == normalize_name("江苏康达(苏州)医疗设备有限公司")
    assert normalize_name("ＡＢＣ医疗") == "abc医疗"
