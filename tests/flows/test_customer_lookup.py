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
