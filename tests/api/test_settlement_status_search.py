"""Finance finds a customer in a revision's status (1,700 and more customers a month):
`GET /rebates/settlements/{month}/{revision}` takes `q` (legal name in part, customer code, or
exactly the 对账单号 / 凭证号), `limit` and `offset`, and says how many customers `q` finds
(`customers_total`); finance's page has the search box and 上一页/下一页 over the same
parameters. Bad parameters are refused with the machine-readable error body."""
from __future__ import annotations

import html

import pytest

from flows.hub import current_hub
from flows.settlement import confirm_settlement, settle_month
from models import Customer, Staff
from models.customer_files import add_alias
from models.db import session_scope
from tests.api.test_rebate_board import HTML, bearer, login
from tests.flows.test_voucher_numbers import HUANAN, KANGDA, RENHE, october

STATUS = "/rebates/settlements/2026-10/1"


@pytest.fixture
def settled(hub) -> dict[str, int]:
    """October settled for 康达, 仁和 and 华南 (vouchers 记-1, 记-2, 记-3 in customer-id
    order); 仁和 has finance's code K3-0042. Returns name → customer id."""
    ids = {name: cid for name, (cid, _) in october(hub).items()}
    with session_scope(hub.db_url) as s:
        s.get(Customer, ids[RENHE]).finance_code = "K3-0042"
    settle_month(current_hub(), "2026-10", documents=False)
    return ids


def status(client, hub, **params) -> dict:
    r = client.get(STATUS, params=params, headers=bearer(hub, "finance-01"))
    assert r.status_code == 200, r.text
    return r.json()


def found(client, hub, q: str) -> list[int]:
    body = status(client, hub, q=q)
    assert body["customers_total"] == len(body["customers"])
    return [c["customer_id"] for c in body["customers"]]


def test_the_status_pages_its_customers_and_keeps_its_fields(hub, client, settled):
    body = status(client, hub)
    assert {"month", "revision", "status", "confirmed_by", "lines", "total", "delivery",
            "status_url"} <= set(body)
    assert (body["customers_total"], body["limit"], body["offset"]) == (3, 100, 0)
    everyone = [c["customer_id"] for c in body["customers"]]
    assert everyone == sorted(settled.values())
    assert [c["voucher_no"] for c in body["customers"]] == [1, 2, 3]

    first = status(client, hub, limit=2)
    second = status(client, hub, limit=2, offset=2)
    assert (first["customers_total"], first["limit"], first["offset"]) == (3, 2, 0)
    assert (second["customers_total"], second["limit"], second["offset"]) == (3, 2, 2)
    # in the same order, without overlap or gap
    assert [c["customer_id"] for c in first["customers"] + second["customers"]] == everyone
    for offset in (3, 2**31 - 1):  # past the end: nothing, the total as it is
        past = status(client, hub, offset=offset, limit=500)
        assert (past["customers"], past["customers_total"]) == ([], 3)


def test_finance_finds_a_customer_by_name_code_statement_or_voucher_number(
        hub, client, settled):
    kangda, renhe, huanan = settled[KANGDA], settled[RENHE], settled[HUANAN]
    assert found(client, hub, "康达") == [kangda]
    assert found(client, hub, " 医疗 ") == sorted([kangda, renhe])  # part of the name
    assert found(client, hub, "k3-0042") == [renhe]  # finance's code
    assert found(client, hub, f"c{huanan:06d}") == [huanan]  # the hub's code
    draft = f"RS-202610-r1-C{huanan:06d}-草稿"
    assert found(client, hub, draft) == [huanan]
    assert found(client, hub, f"RS-202610-r2-C{huanan:06d}-草稿") == []  # another revision's
    assert found(client, hub, "RS-202610-r1") == []  # numbers match whole, not in part
    number = {c["customer_id"]: c["voucher_no"] for c in status(client, hub)["customers"]}
    assert found(client, hub, f"记-{number[renhe]}") == [renhe]
    assert found(client, hub, str(number[huanan])) == [huanan]
    assert found(client, hub, f"收-{number[huanan]}") == []  # another 凭证字
    assert found(client, hub, "99") == []
    assert found(client, hub, "100%") == []  # % and _ are text, not patterns
    body = status(client, hub, q="nobody")
    assert (body["customers"], body["customers_total"]) == ([], 0)
    # confirmed: the statement's number is the confirmed one (the draft's still finds it)
    with session_scope(hub.db_url) as s:
        confirm_settlement(hub.db_url, "2026-10", 1, s.get(Staff, "finance-01"))
    assert found(client, hub, f"RSQ-202610-r1-C{huanan:06d}") == [huanan]
    assert found(client, hub, draft) == [huanan]


def test_finance_finds_a_customer_by_another_name_it_is_known_by(hub, client, settled):
    """Finance knows customers by their short and former names too, and a customer merged
    into another by its own legal name (kept as the survivor's alias): the search finds the
    customer whose name it is, and a name nobody has finds nobody."""
    huanan, renhe = settled[HUANAN], settled[RENHE]
    with session_scope(hub.db_url) as s:
        add_alias(s, s.get(Customer, huanan), "粤港药通贸易公司", "former", "manual", "test")
        add_alias(s, s.get(Customer, renhe), "宁波申康医疗器械有限公司", "merged", "merge", "test")
    assert found(client, hub, "药通") == [huanan]
    assert found(client, hub, "申康") == [renhe]
    assert found(client, hub, "医疗器械") == [renhe]  # its legal name and an alias: once
    assert found(client, hub, "康达药通") == []


def test_finances_search_folds_case_and_width_alike_on_every_database(hub, client, settled):
    """Found alike on SQLite and PostgreSQL (whose lower() and upper() differ beyond ASCII):
    any case, full- or half-width, in names and in finance's code."""
    huanan, renhe = settled[HUANAN], settled[RENHE]
    with session_scope(hub.db_url) as s:
        s.get(Customer, renhe).finance_code = "ｋｄ-０１"  # keyed full-width
        add_alias(s, s.get(Customer, huanan), "德国Dräger医疗（ＧＥ）有限公司", "former", "manual",
                  "test")
    for q in ("ｋｄ-０１", "ＫＤ-０１", "kd-01", "KD-01"):
        assert found(client, hub, q) == [renhe], q
    for q in ("DRÄGER", "dräger", "ｇｅ", "(GE)", "（ｇｅ）"):
        assert found(client, hub, q) == [huanan], q
    assert found(client, hub, "drager") == []


@pytest.mark.parametrize("params, field", [
    ({"limit": 0}, "query.limit"), ({"limit": 501}, "query.limit"),
    ({"limit": "ten"}, "query.limit"), ({"offset": -1}, "query.offset"),
    ({"offset": "1.5"}, "query.offset"), ({"offset": 2**31}, "query.offset"),
    ({"q": "康" * 101}, "query.q")])
def test_bad_paging_or_search_is_refused_with_the_error_body(hub, client, settled, params,
                                                              field):
    r = client.get(STATUS, params=params, headers=bearer(hub, "finance-01"))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request" and field in error["message"]
    assert [d["field"] for d in error["details"]] == [field]


def test_finances_page_has_the_search_box_and_the_pages(hub, client, settled):
    login(client, hub, "finance-01")
    first = client.get(STATUS, params={"limit": 2}, headers=HTML)
    assert first.status_code == 200, first.text
    page = first.text
    assert '<form id="customer-search" method="get" action="/rebates/settlements/2026-10/1">' \
        in page
    assert '<label class="field" for="q">搜索客户名称/编码/对账单号/凭证号</label>' in page
    assert 'name="q"' in page and "共 3 家客户，第 1–2 家" in page
    assert '<input type="hidden" name="limit" value="2">' in page  # a search keeps the size
    assert f'href="{STATUS}?offset=2&amp;limit=2">下一页 ›</a>' in page
    assert "上一页" not in page
    assert page.count('<tr id="customer-') == 2

    last = client.get(STATUS, params={"limit": 2, "offset": 2}, headers=HTML).text
    assert f'<a id="previous" href="{STATUS}?limit=2">‹ 上一页</a>' in last
    assert "下一页" not in last and "共 3 家客户，第 3–3 家" in last
    assert last.count('<tr id="customer-') == 1

    kangda = client.get(STATUS, params={"q": "康达"}, headers=HTML).text
    assert 'name="limit"' not in kangda and 'value="康达"' in kangda and "搜索“康达”：共 1 家客户" in kangda
    assert f'<tr id="customer-{settled[KANGDA]}">' in kangda
    assert kangda.count('<tr id="customer-') == 1 and "下一页" not in kangda

    # a search carried by the links, escaped; none found says so
    odd = '<b>"x"</b>'
    nothing = client.get(STATUS, params={"q": odd}, headers=HTML).text
    assert f'value="{html.escape(odd)}"' in nothing and odd not in nothing
    assert "没有符合条件的客户" in nothing and "共 0 家客户" in nothing
    paged = client.get(STATUS, params={"q": "医疗", "limit": 1}, headers=HTML).text
    assert f'href="{STATUS}?q=%E5%8C%BB%E7%96%97&amp;offset=1&amp;limit=1">下一页 ›</a>' \
        in paged

    # a hand-made address past the end: the way back to the last page
    past = client.get(STATUS, params={"limit": 2, "offset": 9}, headers=HTML).text
    assert f'<a id="previous" href="{STATUS}?offset=1&amp;limit=2">‹ 上一页</a>' in past
    assert "本页没有客户" in past
    bad = client.get(STATUS, params={"limit": 0}, headers=HTML)
    assert bad.status_code == 400 and "链接有误" in bad.text


def test_finances_page_writes_amounts_as_everywhere_else(hub, client, settled):
    """¥1,536.00 with the thousands separator (a claw-back -¥1,200.00: the sign before the
    symbol, `models.money.yuan`), as the CLI, the statement and the other pages write them."""
    login(client, hub, "finance-01")
    body = status(client, hub)
    assert body["total"] == "1536.00"
    page = client.get(STATUS, headers=HTML).text
    assert "合计 ¥1,536.00" in page and "¥1536.00" not in page
    assert page.count('<td class="num">¥512.00</td>') == 3
