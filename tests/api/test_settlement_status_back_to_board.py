"""Finance reaches a revision's status page (/rebates/settlements/M/N) from a month row of the
board; like the board's other pages it leads back to the board — as narrowed when it was
left (a region picked), kept across the page's search, its pages and 重新发送. The world:
tests/board_support.py (September confirmed, its statements failing to be written here;
October pending)."""
from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.api.test_board_settlement_status import september_fails
from tests.api.test_rebate_board import HTML, bearer, board_world, login, page

EAST = quote("华东")


@pytest.fixture
def world(hub):
    return board_world(hub.db_url)


def _status_link(board: str, month: str) -> str:
    return re.search(rf'id="delivery-{month}-r1">[^<]*<a href="([^"]+)"', board).group(1)


def test_the_status_page_leads_back_to_the_board(hub, client, world):
    login(client, hub, "finance-01")
    link = _status_link(page(client, "/rebates/board"), "2026-10")
    assert link == "/rebates/settlements/2026-10/1"
    assert '<p><a id="back" href="/rebates/board">‹ 返回返利看板</a></p>' in page(client, link)


def test_the_way_back_keeps_the_boards_narrowing(hub, client, world, monkeypatch):
    september_fails(hub, monkeypatch)
    login(client, hub, "finance-01")
    link = _status_link(page(client, "/rebates/board?region=华东"), "2026-09")
    assert link == f"/rebates/settlements/2026-09/1?region={EAST}"
    status = page(client, link.replace("&amp;", "&"))
    assert f'<a id="back" href="/rebates/board?region={EAST}">' in status
    # the search, the pages and 重新发送 keep it
    assert '<input type="hidden" name="region" value="华东">' in status
    action = re.search(r'<form id="send-form" method="post" action="([^"]+)"', status).group(1)
    assert action == f"/rebates/settlements/2026-09/1/send?region={EAST}"
    searched = page(client, f"/rebates/settlements/2026-09/1?q=康达&region={EAST}")
    assert f'<a id="back" href="/rebates/board?region={EAST}">' in searched
    paged = page(client, f"/rebates/settlements/2026-10/1?limit=1&region={EAST}")
    assert f'<a id="next" href="/rebates/settlements/2026-10/1?offset=1&amp;limit=1&amp;' \
        f'region={EAST}">' in paged
    again = client.post(action, headers=bearer(hub, "finance-01") | HTML,
                        follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"] == f"/rebates/settlements/2026-09/1?region={EAST}"
