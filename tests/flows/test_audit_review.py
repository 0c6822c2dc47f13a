"""Review audit of the session's changes (b7ede60..HEAD): regions normalized, migration
--down-to safeguard, import footers / zero-padded codes, settlement confirmation order."""
from __future__ import annotations

import pytest

from models import Staff
from models.db import session_scope


# --- regions: stored one way (华东), but the board's narrowing is not read that way ---------

def test_manager_asking_own_region_as_the_board_names_it_is_not_refused(hub):
    """The board names a region 华东大区 (region_label) and every input now stores 华东大区 as
    华东 (normalize_region). A 华东 manager whose link / bookmark says region=华东大区 (what
    the page calls his region) is refused with "您只能查看华东大区的返利" — his own region."""
    from flows.rebate_board import BoardAccessError, board_scope

    with session_scope(hub.db_url) as s:
        manager = s.get(Staff, "mgr-east")
    try:
        scope = board_scope(hub.db_url, manager, region="华东大区")
    except BoardAccessError as exc:
        pytest.fail(f"refused his own region: {exc}")
    assert scope.region == "华东"


def test_finance_narrowing_to_a_region_as_labelled_finds_it(hub):
    """Finance narrowing the board to 华东大区 (as the menu labels it) is told there is no such
    region (UnknownRegion, 404) although customers of 华东 exist."""
    from flows.rebate_board import board_scope

    with session_scope(hub.db_url) as s:
        finance = s.get(Staff, "finance-01")
    scope = board_scope(hub.db_url, finance, region="华东大区")
    assert scope.region == "华东"


# --- regions: checked as typed, stored after NFKC -----------------------------------------

def test_region_checked_after_normalizing_fits_its_column(hub):
    """`_region` checks the 20-character limit on the text as typed, then NFKC expands it
    (㈠ → (一)): a region of 10 characters is stored as 26 — beyond customer.region's
    VARCHAR(20), a database error (500 / traceback) on PostgreSQL instead of the Chinese
    "大区过长" refusal."""
    from flows.customer_import import ProfileRefused, set_customer_fields
    from models import Customer

    typed = "华东㈠㈡㈢㈣㈤㈥㈦㈧"
    assert len(typed) == 10
    try:
        set_customer_fields(hub.db_url, 1, "ops-01", region=typed)
    except ProfileRefused as exc:  # refused in Chinese: fine
        assert "大区" in exc.message
        return
    with session_scope(hub.db_url) as s:
        stored = s.get(Customer, 1).region
    assert len(stored) <= 20, (stored, len(stored))


# --- policy hints: a decimal comma in a rate with a space before % ------------------------

def test_rate_with_decimal_comma_and_spaced_percent_is_not_hinted_as_another_rate():
    """`{from: 10, rate: 12,5 %}` (a decimal comma, a space before %) is cut by YAML into
    rate "12" and a key "5 %". The tail is not recognised (`_CUT_TAIL` allows no space), so
    the clerk reads 未知字段 and "如指 12%，请写成 "12%"" — following the hint publishes 12 %
    where 12.5 % was meant."""
    from models.rebates.policy import PolicyDocumentError, parse_policy_document
    from tests.unit.test_policy_authoring_slips import Q2

    text = Q2.replace("- {from: 10, rate: 5%}", "- {from: 10, rate: 12,5 %}")
    with pytest.raises(PolicyDocumentError) as info:
        parse_policy_document(text)
    said = " ".join(p.message for p in info.value.problems)
    assert "请写成 \"12%\"" not in said and "12.5%" in said, said
