"""Finance confirms a revision on its status page (/rebates/settlements/M/N): a form with a
box 已核对 to tick, posted with the page's cookie, back to the page (post/redirect/get). The
world: tests/board_support.py (September confirmed, October's revision 1 pending)."""
from __future__ import annotations

import pytest
from sqlmodel import select

from models import SettlementRun
from models.db import session_scope
from tests.api.test_rebate_board import HTML, board_world, login, page

OCTOBER = "/rebates/settlements/2026-10/1"


@pytest.fixture
def world(hub):
    return board_world(hub.db_url)


def status_of(db_url: str, month: str) -> str:
    with session_scope(db_url) as s:
        return s.exec(select(SettlementRun.status).where(SettlementRun.month == month)).one()


def test_finance_confirms_on_the_page_once_the_box_is_ticked(hub, client, world):
    login(client, hub, "finance-01")
    draft = page(client, OCTOBER)
    assert "状态：草稿（待财务确认）" in draft
    assert f'<form id="confirm-form" method="post" action="{OCTOBER}/confirm">' in draft
    assert 'name="checked" value="yes" required>已核对本版各客户金额、凭证草稿与对账单' in draft
    assert "确认第 1 版</button>" in draft
    # the box not ticked (a browser without `required`): nothing confirmed, said why
    r = client.post(f"{OCTOBER}/confirm", data={}, headers=HTML, follow_redirects=False)
    assert r.status_code == 400 and "请先勾选“已核对”，再确认本版结算。" in r.text
    assert f'<a id="back" href="{OCTOBER}">‹ 返回本版结算</a>' in r.text
    assert status_of(hub.db_url, "2026-10") == "draft"
    r = client.post(f"{OCTOBER}/confirm", data={"checked": "yes"}, headers=HTML,
                    follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, OCTOBER)
    assert status_of(hub.db_url, "2026-10") == "confirmed"
    confirmed = page(client, OCTOBER)
    assert "状态：已确认" in confirmed and 'id="confirm-form"' not in confirmed
    # a second tap (or the form posted again from history) leads to the same page
    r = client.post(f"{OCTOBER}/confirm", data={"checked": "yes"}, headers=HTML,
                    follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, OCTOBER)


def test_the_board_narrowing_is_kept_and_a_confirmed_revision_has_no_form(hub, client, world):
    login(client, hub, "finance-01")
    assert 'id="confirm-form"' not in page(client, "/rebates/settlements/2026-09/1")
    narrowed = page(client, f"{OCTOBER}?region=华东")
    assert f'action="{OCTOBER}/confirm?region=%E5%8D%8E%E4%B8%9C"' in narrowed
    r = client.post(f"{OCTOBER}/confirm?region=华东", data={"checked": "yes"}, headers=HTML,
                    follow_redirects=False)
    assert r.headers["location"] == f"{OCTOBER}?region=%E5%8D%8E%E4%B8%9C"


def test_no_one_else_confirms_and_no_other_site_posts_the_form(hub, client, world):
    login(client, hub, "rep-zhangwei")
    r = client.post(f"{OCTOBER}/confirm", data={"checked": "yes"}, headers=HTML,
                    follow_redirects=False)
    assert r.status_code == 403 and "只有财务或管理员可以确认结算" in r.text
    assert "<html" in r.text.lower()
    login(client, hub, "finance-01")
    r = client.post(f"{OCTOBER}/confirm", data={"checked": "yes"},
                    headers=HTML | {"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403 and "提交来源不是本系统页面" in r.text
    assert status_of(hub.db_url, "2026-10") == "draft"
