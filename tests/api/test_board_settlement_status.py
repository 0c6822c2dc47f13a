"""The board's month table says, under each settled month, how each revision's vouchers and
statements went — 凭证已发送 / 发送中 / 发送失败：<reason>, as the revision's status page
(GET /rebates/settlements/{month}/{revision}) says — and finance gets a link to that page,
where a failed one is sent again. Whoever else sees the month (a rep, a manager) reads the
same words without a link to a page he may not open. The world: tests/board_support.py
(September confirmed, its confirmed statements not written yet; October pending, sent)."""
from __future__ import annotations

import re

import pytest
from sqlmodel import select

from flows import settlement
from flows.hub import current_hub
from flows.settlement import deliver_revision
from models import SettlementRun
from models.db import session_scope
from tests.api.test_rebate_board import bearer, login, page, visible
from tests.board_support import board_world

FAILED = ("发送失败：对账单或明细表生成失败（OSError），请联系系统管理员查看日志后重新发送")


@pytest.fixture
def world(hub):
    return board_world(hub.db_url)


def run_of(db_url: str, month: str) -> SettlementRun:
    with session_scope(db_url) as s:
        return s.exec(select(SettlementRun).where(SettlementRun.month == month)).one()


def september_fails(hub, monkeypatch) -> None:
    """Finance confirmed September; writing its confirmed statements fails (a full disk)."""
    def full_disk(hub, run_id):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(settlement, "write_documents", full_disk)
    deliver_revision(current_hub(), run_of(hub.db_url, "2026-09").id)
    monkeypatch.undo()


def delivery_rows(text: str) -> dict[str, str]:
    """{'2026-09-r1': what the row under the month says} of a board page."""
    return {key: visible(body) for key, body in re.findall(
        r'<div class="delivery-\w+" id="delivery-([\d-]+-r\d+)">(.*?)</div>', text)}


def test_finance_sees_each_settled_months_voucher_status_with_a_link(hub, client, world,
                                                                      monkeypatch):
    september_fails(hub, monkeypatch)
    data = client.get("/rebates/board/data", headers=bearer(hub, "finance-01")).json()
    assert {m["month"]: m["settlements"] for m in data["months"]} == {
        "2026-10": [{"revision": 1, "status": "pending", "status_label": "待复核",
                     "delivery": {"state": "sent", "label": "凭证已发送"},
                     "status_url": "/rebates/settlements/2026-10/1"}],
        "2026-09": [{"revision": 1, "status": "confirmed", "status_label": "已确认",
                     "delivery": {"state": "failed", "label": FAILED},
                     "status_url": "/rebates/settlements/2026-09/1"}]}

    login(client, hub, "finance-01")
    text = page(client, "/rebates/board")
    assert delivery_rows(text) == {"2026-10-r1": "第 1 版（待复核）：凭证已发送 ›",
                                   "2026-09-r1": f"第 1 版（已确认）：{FAILED} ›"}
    # the row sits right under its month, and links to the revision's status page
    assert re.search(r'<tr id="month-2026-09">.*?</tr><tr class="delivery" '
                     r'id="delivery-2026-09"><td colspan="3"><div class="delivery-failed"', text)
    link = re.search(r'id="delivery-2026-09-r1">[^<]*<a href="([^"]+)"', text).group(1)
    assert link == "/rebates/settlements/2026-09/1"
    status_page = page(client, link)
    assert f"凭证与对账单：{FAILED}" in visible(status_page) and 'id="send-form"' in status_page

    # sent again, and out: the board says so
    deliver_revision(current_hub(), run_of(hub.db_url, "2026-09").id)
    text = page(client, "/rebates/board")
    assert delivery_rows(text)["2026-09-r1"] == "第 1 版（已确认）：凭证已发送 ›"


def test_a_confirmation_whose_statements_are_not_out_yet_says_so(hub, client, world):
    """September was confirmed and nothing has written its confirmed statements yet."""
    login(client, hub, "finance-01")
    assert delivery_rows(page(client, "/rebates/board"))["2026-09-r1"] == \
        "第 1 版（已确认）：凭证已发送，对账单生成中 ›"


def test_reps_and_managers_read_the_status_of_their_months_without_a_link(
        hub, client, world, monkeypatch):
    september_fails(hub, monkeypatch)
    for who, months in (("rep-zhangwei", {"2026-10-r1": "第 1 版（待复核）：凭证已发送",
                                          "2026-09-r1": f"第 1 版（已确认）：{FAILED}"}),
                        ("mgr-east", {"2026-10-r1": "第 1 版（待复核）：凭证已发送",
                                      "2026-09-r1": f"第 1 版（已确认）：{FAILED}"}),
                        # 华南 had nothing settled in September
                        ("mgr-south", {"2026-10-r1": "第 1 版（待复核）：凭证已发送"})):
        login(client, hub, who)
        text = page(client, "/rebates/board")
        assert delivery_rows(text) == months, who
        assert "/rebates/settlements/" not in text, who  # finance's page: not his to open
        data = client.get("/rebates/board/data", headers=bearer(hub, who)).json()
        assert [m["month"] for m in data["months"]] == [k[:7] for k in months], who


def test_the_statement_number_is_on_the_status_and_on_the_orders_settled_lines(hub, client,
                                                                               world):
    """Finance finds a customer's 对账单号 and 凭证号 in the revision's status; the rep sees
    the 对账单号 on his order's settled line: the draft's, or the confirmed one's."""
    kangda = world["kangda"]
    status = client.get("/rebates/settlements/2026-10/1",
                        headers=bearer(hub, "finance-01")).json()
    mine = [c for c in status["customers"] if c["customer_id"] == kangda]
    assert [(c["statement_no"], c["voucher_word"]) for c in mine] == [
        (f"RS-202610-r1-C{kangda:06d}-草稿", "记")]
    assert sorted(c["voucher_no"] for c in status["customers"]) == list(
        range(1, len(status["customers"]) + 1))  # October's only batch: 记-1 …
    # finance's page lists them too
    login(client, hub, "finance-01")
    row = re.search(rf'<tr id="customer-{kangda}">(.*?)</tr>',
                    page(client, "/rebates/settlements/2026-10/1")).group(1)
    assert f"RS-202610-r1-C{kangda:06d}-草稿" in visible(row)
    assert f"记-{mine[0]['voucher_no']}" in visible(row)

    login(client, hub, "rep-zhangwei")
    text = page(client, f"/rebates/orders/{world['o1']}")
    assert re.search(r'<dt>对账单号</dt><dd id="statement-\d+">RS-202610-r1-C'
                     rf'{kangda:06d}-草稿</dd>', text), text
    september = page(client, f"/rebates/orders/{world['sep']}")
    assert f"RSQ-202609-r1-C{kangda:06d}" in visible(september)
    assert "对账单号" not in visible(page(client, f"/rebates/orders/{world['nov']}"))  # expected
