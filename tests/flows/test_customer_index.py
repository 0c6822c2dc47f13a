"""The matcher's index of a process follows the database without making searches wait: changes
are read in the background and applied between searches; a bulk change is indexed into a fresh
copy that replaces the old one when ready; merged files leave it."""
from __future__ import annotations

import time

import pytest

from flows import customer_index as module
from flows.customer_index import CustomerIndex
from models.customer_files import create_customer, merge_customers
from models.db import session_scope


def wait_for(index: CustomerIndex, query: str, customer_id: int, present: bool = True) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [c.customer_id for c in index.search(query).candidates]
        if (customer_id in found) == present:
            return
        time.sleep(0.05)
    raise AssertionError(f"{query!r}: customer {customer_id} {'not ' if present else ''}found")


def new_customer(db_url: str, name: str) -> int:
    with session_scope(db_url) as s:
        return create_customer(s, legal_name=name, actor="test", origin="manual").id


def test_changes_reach_the_index_in_the_background(seeded):
    index = CustomerIndex(seeded.db_url, refresh_seconds=0.05)
    assert index.search("江苏康达医疗设备有限公司").decision == "auto"
    cid = new_customer(seeded.db_url, "湖南湘雅康复器械有限公司")
    wait_for(index, "湘雅康复器械", cid)
    with session_scope(seeded.db_url) as s:
        survivor = new_customer(seeded.db_url, "湖南湘雅康复器械股份有限公司")
        merge_customers(s, survivor, cid, "test")
    wait_for(index, "湖南湘雅康复器械有限公司", survivor)
    wait_for(index, "湘雅康复器械", cid, present=False)


def test_a_bulk_change_is_indexed_into_a_fresh_copy(seeded, monkeypatch):
    monkeypatch.setattr(module, "REBUILD_AT", 3)
    index = CustomerIndex(seeded.db_url, refresh_seconds=0.05)
    before = index.current()
    ids = [new_customer(seeded.db_url, f"四川{name}医疗科技有限公司")
           for name in ("蜀康", "天府", "锦官", "峨眉", "青城")]
    wait_for(index, "四川青城医疗科技有限公司", ids[-1])
    assert index.current() is not before  # swapped, not patched in place
    for cid, name in zip(ids, ("蜀康", "天府", "锦官", "峨眉", "青城")):
        assert index.search(f"四川{name}医疗科技有限公司").candidates[0].customer_id == cid


@pytest.mark.parametrize("seconds", [0.0])
def test_tests_see_their_changes_at_once(seeded, seconds):
    index = CustomerIndex(seeded.db_url, refresh_seconds=seconds)
    index.current()
    cid = new_customer(seeded.db_url, "江西赣康医疗器械有限公司")
    assert index.search("江西赣康医疗器械有限公司").candidates[0].customer_id == cid
