"""A region is stored as its name without 大区 ("华东": every input and migration 0020
normalize it); the board names it with 大区 after it — once: "华东大区返利", never
"华东大区大区返利" — and a region asked for as the board names it (华东大区) is that region.
The world: tests/board_support.py."""
from __future__ import annotations

import re

import pytest

from api.board_pages import _where
from models.staff import region_label
from tests.api.test_rebate_board import board_world, login, page, visible

EAST = "华东大区"


def test_a_region_is_named_with_daqu_once():
    assert region_label("华东") == "华东大区"
    assert region_label(EAST) == EAST
    assert _where({"elsewhere": True, "region": "华南大区"}) == "（现属华南大区）"
    assert _where({"elsewhere": True, "region": "华南"}) == "（现属华南大区）"


@pytest.fixture
def east_named_in_full(hub):
    return board_world(hub.db_url)


def _shown(text: str) -> str:
    return visible(text.split("<main>")[-1])


def test_the_managers_board_and_refusals_say_daqu_once(hub, client, east_named_in_full):
    login(client, hub, "mgr-east")
    board = page(client, "/rebates/board")
    assert re.search(r'<h1 id="scope">([^<]*)</h1>', board).group(1) == "华东大区返利"
    assert "全部（华东大区）" in _shown(board)
    narrowed = page(client, "/rebates/board?rep=rep-zhangwei")
    assert "张伟在华东大区的返利" in _shown(narrowed)
    refused = _shown(page(client, "/rebates/board?region=华南", status=403))
    assert "您只能查看华东大区的返利" in refused
    refused = _shown(page(client, "/rebates/board?rep=rep-lina", status=403))
    assert "李娜不在华东大区" in refused
    for text in (board, narrowed, refused):
        assert "大区大区" not in visible(text)


def test_finances_region_menu_and_narrowed_board_say_daqu_once(hub, client, east_named_in_full):
    login(client, hub, "finance-01")
    board = page(client, "/rebates/board")
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>',
                         board.split('id="region"')[1].split("</select>")[0])
    assert ("华东", EAST) in options and ("华南", "华南大区") in options
    narrowed = page(client, f"/rebates/board?region={EAST}")
    assert re.search(r'<h1 id="scope">([^<]*)</h1>', narrowed).group(1) == "华东大区返利"
    assert "大区大区" not in visible(board) + visible(narrowed)
