"""Unified social credit code (GB 32100-2015) structure check."""
from __future__ import annotations

import pytest

from models.uscc import (
    BAD_CHARACTER,
    BAD_CHECK,
    BAD_DIVISION,
    BAD_LENGTH,
    BAD_ORG_CHECK,
    OK,
    UNKNOWN_AUTHORITY,
    UNKNOWN_TYPE,
    check_uscc,
    make_uscc,
    org_code_check_digit,
    uscc_check_character,
)

# publicly cited codes; each passes both the GB 11714 and the GB 32100 check
VALID = ["91350100M000100Y43", "91512081MA62K0260E", "91110107082833558H", "914403006188329255",
         "9135021359498494XQ", "91420103594531449D", "123502001549897397"]


@pytest.mark.parametrize("code", VALID)
def test_public_examples_are_valid(code):
    result = check_uscc(code)
    assert result.ok and result.problem == OK, result.message
    assert bool(result)


def test_parts_are_reported():
    r = check_uscc("91350100M000100Y43")
    assert (r.authority, r.org_type, r.division, r.org_code) == (
        "市场监管（工商）", "企业", "350100", "M000100Y4")
    assert check_uscc("123502001549897397").org_type == "事业单位"


def test_spaces_hyphen_and_lower_case_are_tolerated():
    assert check_uscc(" 91350100m000100y43 ").ok
    assert check_uscc("9135 0100 M000100Y-43").ok


def test_check_character_helper_reproduces_examples():
    for code in VALID:
        assert uscc_check_character(code[:17]) == code[17]
    # GB 11714 worked example: 59467239 → 9
    assert org_code_check_digit("59467239") == "9"


def test_make_uscc_builds_valid_codes():
    code = make_uscc("9", "1", "320500", "MA1XY2Q0")
    assert len(code) == 18 and check_uscc(code).ok


def test_bad_length():
    r = check_uscc("91350100M000100Y4")
    assert r.problem == BAD_LENGTH and "18位" in r.message


@pytest.mark.parametrize("code,char", [("91350100M000100I43", "I"), ("91350100M0001O0Y43", "O"),
                                       ("9135010#M000100Y43", "#")])
def test_bad_character(code, char):
    r = check_uscc(code)
    assert r.problem == BAD_CHARACTER and char in r.message


def test_unknown_authority_and_type():
    assert check_uscc("01350100M000100Y43").problem == UNKNOWN_AUTHORITY
    r = check_uscc("94350100M000100Y43")
    assert r.problem == UNKNOWN_TYPE and "机构类别" in r.message


def test_bad_division():
    first17 = "91990100" + "M000100Y4"   # no province has code 99
    r = check_uscc(first17 + uscc_check_character(first17))
    assert r.problem == BAD_DIVISION and "行政区划码" in r.message


def test_wrong_check_character():
    r = check_uscc("91350100M000100Y44")
    assert r.problem == BAD_CHECK
    assert "应为“3”" in r.message and not r.ok


def test_wrong_embedded_organisation_code_digit():
    # change the organisation code's own check digit and recompute the final character, so
    # only the embedded GB 11714 digit is wrong
    first17 = "91350100M000100Y5"
    code = first17 + uscc_check_character(first17)
    r = check_uscc(code)
    assert r.problem == BAD_ORG_CHECK
    assert "组织机构代码" in r.message and "应为“4”" in r.message


def test_early_pilot_codes_fail_the_check_as_documented():
    # some early pilot codes do not follow the rules (documented in models/uscc.py)
    assert check_uscc("91350100M0001TGQXM").problem == BAD_CHECK
