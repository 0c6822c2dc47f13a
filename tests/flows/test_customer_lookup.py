"""Exact customer lookups: legal names and aliases, whatever the spelling of widths and spaces."""
from __future__ import annotations

import pytest

from models import Customer
from models.customer_files import exact_matches
from models.db import session_scope


@pytest.mark.parametrize("typed", [
    "江苏康达医疗设备有限公司", " 江苏康达医疗设备 有限公司 ", "江苏康达医械", "康达医疗",
])
def test_known_spellings_find_the_customer(seeded, typed):
    with session_scope(seeded.db_url) as s:
        assert [c.legal_name for c in exact_matches(s, typed)] == ["江苏康达医疗设备有限公司"]


def test_brackets_of_either_width(seeded):
    with session_scope(seeded.db_url) as s:
        s.add(Customer(legal_name="康达医疗（苏州）有限公司"))
    with session_scope(seeded.db_url) as s:
        assert [c.legal_name for c in exact_matches(s, "康达医疗(苏州)有限公司")] == \
            ["康达医疗（苏州）有限公司"]
        assert exact_matches(s, "完全不认识的公司") == []


@pytest.mark.parametrize("typed", ["91320500MA1K2D3F5H", " 91320500ma1k2d3f5h ",
                                   "９１３２０５００ＭＡ１Ｋ２Ｄ３Ｆ５Ｈ"])
def test_the_credit_code_of_a_file_finds_it(seeded, typed):
    """A system that sends the USCC instead of a name finds the file without asking the
    registry (which may not know the company) and without the code becoming a name."""
    with session_scope(seeded.db_url) as s:
        assert [c.legal_name for c in exact_matches(s, typed)] == ["江苏康达医疗设备有限公司"]


def test_a_code_failing_its_check_finds_nothing(seeded):
    with session_scope(seeded.db_url) as s:
        assert exact_matches(s, "91320500MA1K2D3F5J") == []  # check character mistyped


def test_only_a_credit_code_or_a_registered_form_is_worth_a_registry_call():
    """Every 天眼查 call is billed: 18 Chinese characters are a description, not a USCC."""
    from flows.customer_registry import looks_registered
    described = "华东区那家做监护仪耗材的老客户张总家"
    assert len(described) == 18 and not looks_registered(described)
    assert looks_registered("９１３２０５００ＭＡ１Ｋ２Ｄ３Ｆ５Ｈ")
    assert looks_registered("江苏康达医疗设备有限公司")
