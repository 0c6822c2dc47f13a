"""The staff pages behind the pushes: GET /customers/suspects/{id} and GET /orders/{id} answer
JSON to programs and a phone page to browsers; a link's ?token= becomes a cookie; the forms
decide (merge / create) and pick an order's customer, with Chinese errors and nothing
half-written."""
from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from api.auth import COOKIE, _b64, _mac, issue_token
from api.staff_pages import time_left
from models import ORDER_STATUS_LABELS, OrderRebate
from connectors.base import PermanentError, TransientError
from models import (
    Customer,
    CustomerAlias,
    InboxEvent,
    IntentOrder,
    OrderStatus,
    SuspectName,
    Todo,
)
from models.db import get_engine, session_scope
from tests.flows.test_suspects import UNKNOWN, Clock, run_pending, submit
from tests.support import order_status

pytestmark = pytest.mark.usefixtures("prefect_harness")

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
HTML = {"Accept": BROWSER}


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def client(hub):
    app = create_app(hub.settings, launcher=None)
    app.state.pokes = 0

    def poke():
        app.state.pokes += 1
    app.state.dispatcher.poke = poke
    with TestClient(app) as c:
        yield c


def token(hub, staff_id: str) -> str:
    return issue_token(hub.settings, staff_id)


def bearer(hub, staff_id: str) -> dict:
    return {"Authorization": f"Bearer {token(hub, staff_id)}"}


def login(client, hub, staff_id: str) -> None:
    """As a browser that opened a pushed link: the cookie the link's token became."""
    client.cookies.clear()
    client.cookies.set(COOKIE, token(hub, staff_id))


def escalated(hub, client, name=UNKNOWN) -> list[str]:
    """Three orders carrying an unknown name: suspect 1, escalated to mgr-east."""
    orders = [submit(hub, client, name=name) for _ in range(3)]
    with session_scope(hub.db_url) as s:
        assert s.get(SuspectName, 1).status == "escalated"
    client.app.state.pokes = 0  # the webhook intake pokes too: count the decisions' only
    return orders


def kangda_id(hub) -> int:
    with session_scope(hub.db_url) as s:
        return s.exec(select(Customer).where(
            Customer.legal_name == "江苏康达医疗设备有限公司")).one().id


def counts(db_url) -> dict[str, int]:
    tables = ["customer", "customer_alias", "todo", "operation_log", "suspect_name"]
    with get_engine(db_url).connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}


def suspect_status(hub) -> str:
    with session_scope(hub.db_url) as s:
        return s.get(SuspectName, 1).status


def post_form(client, url: str, data: dict, **headers):
    return client.post(url, data=data, headers={"Accept": BROWSER, **headers})


# --- JSON or page --------------------------------------------------------------------------

def test_suspect_answers_json_to_programs_and_a_page_to_browsers(hub, client, clock):
    waiting = escalated(hub, client)
    listed = client.get("/customers/suspects", headers=bearer(hub, "mgr-east")).json()
    for accept in (None, "application/json", "*/*", "application/json, text/html;q=0.5"):
        headers = bearer(hub, "mgr-east") | ({"Accept": accept} if accept else {})
        r = client.get("/customers/suspects/1", headers=headers)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json", accept
        assert r.json() == listed[0] and r.headers["vary"] == "Accept"
    assert sorted(o["order_id"] for o in listed[0]["orders"]) == sorted(waiting)
    # JSON errors stay JSON
    assert client.get("/customers/suspects/1").json()["error"]["code"] == "unauthenticated"
    assert client.get("/customers/suspects/99", headers=bearer(hub, "mgr-east")
                      ).json()["error"]["code"] == "unknown_suspect"
    stranger = client.get("/customers/suspects/1", headers=bearer(hub, "rep-lina"))
    assert stranger.status_code == 403 and stranger.json()["error"]["code"] == "forbidden"

    clock.advance(hours=1, minutes=30)
    login(client, hub, "mgr-east")
    page = client.get("/customers/suspects/1", headers=HTML)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store" and "Accept" in page.headers["vary"]
    text = page.text
    assert f'<h1 id="suspect-name">{UNKNOWN}</h1>' in text and "待经理确认" in text
    # escalated at 02:00 UTC + 24 h = 10:00 in Shanghai the next day; 22 h 30 min left
    assert "2026-11-28 10:00（北京时间）" in text
    assert '<dd id="time-left"><span>22 小时 30 分</span></dd>' in text
    assert "王强（mgr-east）" in text
    for order_id in waiting:
        assert f'<a href="/orders/{order_id}">{order_id}</a>' in text
    assert text.count("张伟（rep-zhangwei）") == 3 and f"写作“{UNKNOWN}”" in text
    # the suggestions to pick, the search box, the create form with the name prefilled
    assert f'name="customer_id" value="{kangda_id(hub)}"' in text
    assert 'id="search"' in text and "并入所选客户" in text
    assert f'name="legal_name" maxlength="100" value="{UNKNOWN}"' in text
    assert "新建客户档案" in text and "/customers/suggest" in text

    clock.advance(hours=23)
    late = client.get("/customers/suspects/1", headers=HTML).text
    assert '<span class="overdue">已逾期</span>' in late


def test_time_left_reads_in_days_hours_minutes():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert time_left(now + dt.timedelta(hours=30), now) == "1 天 6 小时"
    assert time_left(now + dt.timedelta(hours=5, minutes=12), now) == "5 小时 12 分"
    assert time_left(now + dt.timedelta(seconds=30), now) == "1 分钟"
    assert time_left(now, now) == "已逾期"
    assert time_left(now - dt.timedelta(minutes=1), now) == "已逾期"


def test_every_order_status_has_a_chinese_label():
    assert set(ORDER_STATUS_LABELS) == set(OrderStatus)
    assert all(re.search(r"[\u4e00-\u9fff]", label) for label in ORDER_STATUS_LABELS.values())


def test_order_json_keeps_its_shape_and_the_page_needs_a_login(hub, client):
    order_id = submit(hub, client, name="江苏康达医疗设备有限公司")
    r = order_status(client, order_id)  # the sending system, signed as its webhook
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert set(r.json()) == {"order_id", "status", "error", "customer", "stock_short", "stage",
                             "stage_label", "quote", "todos", "rebate", "last_flow_run_id"}
    assert r.json()["status"] == "quoted" and r.headers["vary"] == "Accept"
    assert client.get(f"/orders/{order_id}").status_code == 401  # no token, no signature
    missing = order_status(client, "IO-NOPE")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_order"

    page = client.get(f"/orders/{order_id}", headers=HTML)
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert "需要登录" in page.text and "从推送消息中重新打开此链接" in page.text

    login(client, hub, "rep-zhangwei")
    page = client.get(f"/orders/{order_id}", headers=HTML)
    assert page.status_code == 200
    quote = r.json()["quote"]
    assert "已报价，待客户签署" in page.text and "江苏康达医疗设备有限公司" in page.text
    assert quote["code"] in page.text
    assert f"¥{float(quote['total_amount']):,.2f}" in page.text
    assert f'href="/orders/{order_id}/quote.pdf"' in page.text
    pdf = client.get(f"/orders/{order_id}/quote.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    client.cookies.clear()
    assert client.get(f"/orders/{order_id}/quote.pdf", headers=HTML).status_code == 401
    assert client.get("/orders/IO-NOPE", headers=HTML | bearer(hub, "rep-zhangwei")
                      ).status_code == 404



def test_a_quote_that_prints_a_rebate_is_only_for_who_may_see_the_rebate(hub, client):
    """The quote PDF prints the order's expected rebate (返利：…): with one it follows the
    rebate board's rule; a quote without one is for whoever may open the order."""
    order_id = submit(hub, client, name="江苏康达医疗设备有限公司")  # rep 张伟, 华东
    url = f"/orders/{order_id}/quote.pdf"
    with session_scope(hub.db_url) as s:  # as if no policy had applied to it
        rebate = s.get(OrderRebate, order_id)
        if rebate is not None:
            s.delete(rebate)
    for who in ("rep-zhangwei", "legal-01"):  # no rebate printed: who may open the order
        assert client.get(url, headers=HTML | bearer(hub, who)).status_code == 200
    with session_scope(hub.db_url) as s:
        s.add(OrderRebate(order_id=order_id, rate="0.102", amount="3916.80",
                          sentence="本次订单返利比例：10.2%（预计返利 ¥3,916.80）", detail="{}",
                          computed_at=dt.datetime(2026, 10, 10, tzinfo=dt.timezone.utc)))
    for who, may in (("rep-zhangwei", True), ("mgr-east", True), ("finance-01", True),
                     ("legal-01", False)):
        pdf = client.get(url, headers=HTML | bearer(hub, who))
        assert (pdf.status_code == 200) is may, who
        page = client.get(f"/orders/{order_id}", headers=HTML | bearer(hub, who)).text
        assert (f'href="{url}"' in page) is may, who
        if not may:
            assert pdf.status_code == 403 and "载有本单的预计返利" in pdf.text
            assert 'id="quote-pdf-withheld"' in page


def test_an_order_page_is_for_its_rep_his_manager_and_those_who_work_on_it(hub, client):
    """张伟's order for 康达 (华东): another region's rep and manager get 403 on the page and
    the quote, whatever the rebate; 张伟, 华东's manager and the roles working on every order
    open it; a to-do given on it opens it to its assignee."""
    order_id = submit(hub, client, name="江苏康达医疗设备有限公司")
    page, pdf = f"/orders/{order_id}", f"/orders/{order_id}/quote.pdf"
    for who in ("rep-zhangwei", "mgr-east", "legal-01", "finance-01"):
        assert client.get(page, headers=HTML | bearer(hub, who)).status_code == 200, who
    for who in ("rep-lina", "mgr-south"):
        refused = client.get(page, headers=HTML | bearer(hub, who))
        assert refused.status_code == 403, who
        assert "无权查看此意向单" in refused.text and "此意向单属于其他销售代表" in refused.text
        assert "江苏康达医疗设备有限公司" not in refused.text
        quote = client.get(pdf, headers=HTML | bearer(hub, who))
        assert quote.status_code == 403 and "此意向单属于其他销售代表" in quote.text
    with session_scope(hub.db_url) as s:  # 李娜 is asked to help with it, 陈静 in copy
        s.add(Todo(kind="follow_up", business_key=f"help:{order_id}", title="协助跟进康达订单",
                   assignee_id="rep-lina", cc="ops-01,mgr-south", order_id=order_id,
                   due_at=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)))
    for who in ("rep-lina", "mgr-south"):
        assert client.get(page, headers=HTML | bearer(hub, who)).status_code == 200, who

# --- the link's token ----------------------------------------------------------------------

def test_a_pushed_link_trades_its_token_for_a_cookie(hub, client):
    escalated(hub, client)
    t = token(hub, "mgr-east")
    r = client.get(f"/customers/suspects/1?from=push&token={t}", headers=HTML,
                   follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/customers/suspects/1?from=push"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={t};")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))
    assert 29 * 86400 < max_age <= 30 * 86400
    page = client.get(r.headers["location"], headers=HTML)
    assert page.status_code == 200 and "并入已有客户" in page.text

    # a JSON caller keeps using ?token= as before: no redirect, no cookie
    client.cookies.clear()
    j = client.get(f"/customers/suspects/1?token={t}", follow_redirects=False)
    assert j.status_code == 200 and j.json()["suspect_id"] == 1 and "set-cookie" not in j.headers


def test_without_a_valid_token_the_page_says_to_open_the_push_again(hub, client):
    escalated(hub, client)
    forged = client.get("/customers/suspects/1?token=forged.123.abc", headers=HTML,
                        follow_redirects=False)
    assert forged.status_code == 401 and "set-cookie" not in forged.headers
    assert forged.headers["content-type"].startswith("text/html")
    assert "链接已失效" in forged.text and "请回到企业微信或钉钉" in forged.text
    # a non-ASCII token is refused the same way, not with a server error
    assert client.get("/customers/suspects/1?token=a.1.令牌", headers=HTML).status_code == 401

    payload = f"{_b64(b'mgr-east')}.{int(dt.datetime(2020, 1, 1).timestamp())}"
    expired = f"{payload}.{_mac(hub.settings, payload)}"
    client.cookies.set(COOKIE, expired)
    stale = client.get("/customers/suspects/1", headers=HTML)
    assert stale.status_code == 401 and "访问令牌无效或已过期" in stale.text
    assert stale.headers["set-cookie"].startswith(f'{COOKIE}="";')  # the stale cookie goes

    client.cookies.clear()
    client.cookies.set(COOKIE, issue_token(hub.settings, "nobody-here"))
    assert "已不在系统中" in client.get("/orders/IO-1", headers=HTML).text
    # a mistyped address opened in a browser is a page as well; programs still get JSON
    client.cookies.clear()
    typo = client.get("/customers/suspects/abc", headers=HTML)
    assert typo.status_code == 400 and "链接有误" in typo.text
    assert client.get("/customers/suspects/abc").status_code == 422


# --- decisions by form ---------------------------------------------------------------------

def test_the_manager_merges_by_form_and_the_orders_go_on(hub, client):
    waiting = escalated(hub, client)
    kangda = kangda_id(hub)
    login(client, hub, "mgr-east")
    r = post_form(client, "/customers/suspects/1/decide",
                  {"action": "merge", "customer_id": str(kangda)})
    assert r.status_code == 200, r.text
    assert "已并入已有客户" in r.text and "江苏康达医疗设备有限公司" in r.text
    for order_id in waiting:
        assert f'<a href="/orders/{order_id}">{order_id}</a>' in r.text
    assert client.app.state.pokes == 1
    with session_scope(hub.db_url) as s:
        suspect = s.get(SuspectName, 1)
        assert suspect.status == "merged" and suspect.decided_by == "mgr-east"
        assert s.exec(select(CustomerAlias).where(CustomerAlias.name == UNKNOWN,
                                                  CustomerAlias.customer_id == kangda)).one()
        assert {e.status for e in s.exec(select(InboxEvent).where(
            InboxEvent.subject_id.in_(waiting)))} == {"pending"}
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        assert {(s.get(IntentOrder, o).status, s.get(IntentOrder, o).customer_id)
                for o in waiting} == {("quoted", kangda)}

    # decided: the page shows the decision, a second post is refused with the page again
    page = client.get("/customers/suspects/1", headers=HTML).text
    assert "已并入已有客户" in page and 'id="decided"' in page and 'id="pick-form"' not in page
    again = post_form(client, "/customers/suspects/1/decide",
                      {"action": "merge", "customer_id": str(kangda)})
    assert again.status_code == 409 and "已由 王强（mgr-east） 于" in again.text
    assert client.app.state.pokes == 1


def test_the_manager_creates_the_customer_by_form(hub, client):
    name, short = "重庆渝康医疗器械有限公司", "渝康器械"
    waiting = escalated(hub, client, name=short)
    login(client, hub, "mgr-east")
    before = counts(hub.db_url)
    for bad, problem in (('">&<script>alert(1)</script>', "工商全称含有不允许的字符"),
                         ("  ", "工商全称不能为空"), ("渝" * 101, "工商全称过长")):
        r = post_form(client, "/customers/suspects/1/decide",
                      {"action": "create", "legal_name": bad})
        assert r.status_code == 422 and problem in r.text, r.text
        assert "<script>alert" not in r.text
        assert counts(hub.db_url) == before and suspect_status(hub) == "escalated"
    # what was typed is kept in the field, escaped
    assert 'value="&quot;&gt;&amp;&lt;script&gt;alert(1)&lt;/script&gt;"' in post_form(
        client, "/customers/suspects/1/decide",
        {"action": "create", "legal_name": '">&<script>alert(1)</script>'}).text
    assert post_form(client, "/customers/suspects/1/decide", {"action": "drop"}
                     ).status_code == 422
    assert client.app.state.pokes == 0

    r = post_form(client, "/customers/suspects/1/decide", {"action": "create", "legal_name": name})
    assert r.status_code == 200, r.text
    assert "已新建客户档案" in r.text and name in r.text and "已按工商信息补全档案" in r.text
    assert client.app.state.pokes == 1
    with session_scope(hub.db_url) as s:
        customer = s.exec(select(Customer).where(Customer.legal_name == name)).one()
        assert customer.uscc == "91500000MA5U7H8J4A"
        assert s.exec(select(Todo).where(Todo.kind == "legal_review")).one().customer_id \
            == customer.id
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        assert {s.get(IntentOrder, o).status for o in waiting} == {"quoted"}


def test_who_may_not_decide_reads_the_page_and_cannot_post(hub, client):
    escalated(hub, client)
    kangda = kangda_id(hub)
    login(client, hub, "rep-zhangwei")  # his orders carry the name: he may look
    page = client.get("/customers/suspects/1", headers=HTML)
    assert page.status_code == 200
    assert "此名称应由王强（mgr-east）确认，您可以查看，但无权处理。" in page.text
    assert 'id="pick-form"' not in page.text and 'id="create-form"' not in page.text
    assert "江苏康达医疗设备有限公司" in page.text  # the suggestions, read-only
    before = counts(hub.db_url)
    r = post_form(client, "/customers/suspects/1/decide",
                  {"action": "merge", "customer_id": str(kangda)})
    assert r.status_code == 403 and "应由 王强（mgr-east） 确认，您无权处理" in r.text
    assert counts(hub.db_url) == before and suspect_status(hub) == "escalated"

    login(client, hub, "rep-lina")  # another region's rep: not his business
    assert client.get("/customers/suspects/1", headers=HTML).status_code == 403
    assert post_form(client, "/customers/suspects/1/decide",
                     {"action": "merge", "customer_id": str(kangda)}).status_code == 403
    client.cookies.clear()
    anonymous = post_form(client, "/customers/suspects/1/decide",
                          {"action": "merge", "customer_id": str(kangda)})
    assert anonymous.status_code == 401 and "请回到企业微信或钉钉" in anonymous.text
    assert counts(hub.db_url) == before and client.app.state.pokes == 0


def test_bad_merges_are_refused_with_the_page_again(hub, client):
    escalated(hub, client)
    login(client, hub, "mgr-east")
    before = counts(hub.db_url)
    for chosen, status, message in (("", 422, "请先选择要并入的客户"),
                                    ("abc", 422, "请先选择要并入的客户"),
                                    ("99999", 422, "客户档案不存在：99999")):
        r = post_form(client, "/customers/suspects/1/decide",
                      {"action": "merge", "customer_id": chosen})
        assert r.status_code == status and message in r.text
        assert 'id="pick-form"' in r.text  # the manager can try again
    assert post_form(client, "/customers/suspects/7/decide",
                     {"action": "merge", "customer_id": "1"}).status_code == 404
    # a form posted from another site is refused even with the cookie
    r = post_form(client, "/customers/suspects/1/decide",
                  {"action": "merge", "customer_id": str(kangda_id(hub))},
                  Origin="https://evil.example.com")
    assert r.status_code == 403 and "提交来源不是本系统页面" in r.text
    assert counts(hub.db_url) == before and suspect_status(hub) == "escalated"
    assert client.app.state.pokes == 0


@pytest.mark.parametrize("error", [TransientError("registry down"),
                                   PermanentError("account refused")])
def test_registry_trouble_answers_503_and_keeps_the_name_open(hub, client, monkeypatch, error):
    escalated(hub, client)

    def fail(_name):
        raise error
    monkeypatch.setattr(hub.registry, "lookup", fail)
    login(client, hub, "mgr-east")
    before = counts(hub.db_url)
    r = post_form(client, "/customers/suspects/1/decide",
                  {"action": "create", "legal_name": "康达新材料科技有限公司"})
    assert r.status_code == 503 and "工商信息查询" in r.text
    assert 'value="康达新材料科技有限公司"' in r.text  # kept for the retry
    assert counts(hub.db_url) == before and suspect_status(hub) == "escalated"
    j = client.post("/customers/suspects/1/create", json={"legal_name": "康达新材料科技有限公司"},
                    headers=bearer(hub, "mgr-east"))
    assert j.status_code == 503 and j.json()["error"]["code"].startswith("registry_")


def test_names_are_escaped_on_the_page(hub, client):
    escalated(hub, client, name="康达&新材料")
    login(client, hub, "mgr-east")
    page = client.get("/customers/suspects/1", headers=HTML).text
    assert "康达&amp;新材料" in page and "康达&新材料" not in page


# --- the rep's order page --------------------------------------------------------------------

def test_the_rep_picks_the_customer_of_a_held_order(hub, client):
    order_id = submit(hub, client)
    client.app.state.pokes = 0
    with session_scope(hub.db_url) as s:
        renhe = s.exec(select(Customer).where(
            Customer.legal_name == "浙江仁和医疗器械有限公司")).one().id
    login(client, hub, "rep-zhangwei")
    page = client.get(f"/orders/{order_id}", headers=HTML)
    assert page.status_code == 200
    assert "待确认客户" in page.text and f"客户名称“{UNKNOWN}”未能识别" in page.text
    assert 'id="pick-form"' in page.text and 'id="search"' in page.text
    assert f'action="/orders/{order_id}/customer-choice"' in page.text
    assert f'name="customer_id" value="{kangda_id(hub)}"' in page.text  # a suggestion

    login(client, hub, "legal-01")  # works on every order: reads, cannot pick
    other = client.get(f"/orders/{order_id}", headers=HTML)
    assert other.status_code == 200 and 'id="readonly"' in other.text
    assert 'id="pick-form"' not in other.text
    refused = post_form(client, f"/orders/{order_id}/customer-choice", {"customer_id": renhe})
    assert refused.status_code == 403 and "不属于您" in refused.text

    login(client, hub, "rep-lina")  # another region's rep: neither reads nor picks
    assert client.get(f"/orders/{order_id}", headers=HTML).status_code == 403
    refused = post_form(client, f"/orders/{order_id}/customer-choice", {"customer_id": renhe})
    assert refused.status_code == 403 and "此意向单属于其他销售代表" in refused.text

    login(client, hub, "rep-zhangwei")
    assert post_form(client, f"/orders/{order_id}/customer-choice", {}).status_code == 422
    r = post_form(client, f"/orders/{order_id}/customer-choice", {"customer_id": str(renhe)})
    assert r.status_code == 200, r.text
    assert "已选择客户" in r.text and "浙江仁和医疗器械有限公司" in r.text
    assert "已接收，排队处理中" in r.text and 'id="pick-form"' not in r.text
    assert client.app.state.pokes == 1
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
        assert (order.status, order.customer_id) == ("quoted", renhe)
        assert s.get(SuspectName, 1).status == "collecting"  # the name is still undecided
    again = post_form(client, f"/orders/{order_id}/customer-choice", {"customer_id": str(renhe)})
    assert again.status_code == 409 and "不在等待确认客户" in again.text


def test_a_rep_reading_a_name_still_collected_learns_his_manager_may_act_now():
    import datetime as dt

    from api.staff_pages import suspect_page

    now = dt.datetime(2026, 11, 20, 2, tzinfo=dt.UTC)
    view = {"suspect_id": 42, "name": "苏州新锐医疗", "status": "collecting",
            "status_label": "收集中", "sightings": 1, "decider": None, "decided_by": None}
    data = {"view": view, "names": {}, "deadline_at": None, "may_decide": False, "orders": []}
    _, content, _ = suspect_page(data, [], now=now, threshold=3)
    assert "满 3 次后交由销售经理确认；您可以查看，但无权处理。如为新客户，您的销售经理现在即可在此页面处理。" \
        in content
