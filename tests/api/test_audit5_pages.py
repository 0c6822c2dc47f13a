"""Audit round 5 (H7): 我的待办's form as a phone uses it. A done to-do's form leads to the
page by a redirect (post/redirect/get), so reloading it or going back does not post again and
say 「已办结」 as an error; a login that ran out while a long reason was typed shows the
reason to copy instead of losing it."""
from __future__ import annotations

import re
import time

from sqlmodel import select

from api.auth import COOKIE, _b64, _mac, issue_token
from flows.notices import open_todo
from models import Customer, Todo
from models.db import session_scope

HTML = {"Accept": "text/html"}
KANGDA = "江苏康达医疗设备有限公司"


def review(hub, key: str = "audit5") -> int:
    """An open qualification review of 康达, legal's."""
    with session_scope(hub.db_url) as s:
        customer = s.exec(select(Customer).where(Customer.legal_name == KANGDA)).one()
        todo = open_todo(s, kind="legal_review", key=key, title=f"新客户资质初审：{KANGDA}",
                         body="请核对营业执照与医疗器械经营许可证。", assignee_id="legal-01",
                         customer_id=customer.id)
        s.flush()
        return todo.id


def status_of(hub, todo_id: int) -> str:
    with session_scope(hub.db_url) as s:
        return s.get(Todo, todo_id).status


def test_a_done_form_redirects_so_a_reload_does_not_post_again(hub, client):
    todo_id = review(hub)
    client.cookies.set(COOKIE, issue_token(hub.settings, "legal-01"))
    r = client.post(f"/todos/{todo_id}/done", data={"outcome": "approved", "note": "齐全"},
                    headers=HTML, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/todos?done={todo_id}#notice"
    assert r.headers["cache-control"] == "no-store"
    assert status_of(hub, todo_id) == "done"
    # the page it leads to (and reloads as often as one likes): said once, no error
    for _ in range(2):
        page = client.get(f"/todos?done={todo_id}", headers=HTML)
        assert page.status_code == 200
        assert f'<p id="notice">已办结：新客户资质初审：{KANGDA}（通过）</p>' in page.text
        assert 'id="err"' not in page.text
    # the address does not make anyone else (or a made-up number) seem to have done it
    client.cookies.set(COOKIE, issue_token(hub.settings, "admin"))
    for done in (str(todo_id), "999999", "abc", "9" * 40):
        page = client.get(f"/todos?done={done}", headers=HTML)
        assert page.status_code == 200 and 'id="notice"' not in page.text, done


def expired_token(hub, staff_id: str) -> str:
    payload = f"{_b64(staff_id.encode())}.{int(time.time()) - 60}"
    return f"{payload}.{_mac(hub.settings, payload)}"


def test_a_login_run_out_while_typing_keeps_the_typed_reason(hub, client):
    todo_id = review(hub)
    reason = "营业执照经营范围不含第三类医疗器械，<许可证>已于2026年10月过期 & 未续期。"
    client.cookies.set(COOKIE, expired_token(hub, "legal-01"))
    r = client.post(f"/todos/{todo_id}/done", data={"outcome": "rejected", "note": reason},
                    headers=HTML)
    assert r.status_code == 401
    assert "链接已失效" in r.text and "请回到企业微信或钉钉" in r.text
    typed = re.search(r'<textarea id="typed" readonly rows="4">(.*?)</textarea>', r.text, re.S)
    assert typed and typed.group(1) == ("营业执照经营范围不含第三类医疗器械，&lt;许可证&gt;已于2026年10月"
                                         "过期 &amp; 未续期。")
    assert '<label class="field" for="typed">' in r.text
    assert status_of(hub, todo_id) == "open"
    # nothing typed: the plain page
    r = client.post(f"/todos/{todo_id}/done", data={"outcome": "approved", "note": " "},
                    headers=HTML)
    assert r.status_code == 401 and 'id="typed"' not in r.text


def test_the_address_of_a_sent_back_form_opened_again_leads_to_the_todo(hub, client):
    todo_id = review(hub)
    client.cookies.set(COOKIE, issue_token(hub.settings, "legal-01"))
    r = client.post(f"/todos/{todo_id}/done", data={"outcome": "rejected"}, headers=HTML)
    assert r.status_code == 422
    # the page stands at /todos/<id>/done: a phone restoring the tab opens it with a GET
    r = client.get(f"/todos/{todo_id}/done", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/todos#todo-{todo_id}"
    page = client.get(f"/todos/{todo_id}/done", headers=HTML)
    assert page.status_code == 200 and f'id="form-{todo_id}"' in page.text
    r = client.get("/todos/x1/done", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/todos"


def test_a_todo_in_copy_says_who_does_it(hub, client):
    with session_scope(hub.db_url) as s:
        open_todo(s, kind="settlement_review", key="audit5-cc", title="2026年10月返利结算待复核",
                  body="请复核。", assignee_id="finance-01", cc=["mgr-east"])
    client.cookies.set(COOKIE, issue_token(hub.settings, "mgr-east"))
    page = client.get("/todos", headers=HTML).text
    copied = page[page.index('id="copied"'):page.index("最近已办结")]
    assert "2026年10月返利结算待复核" in copied and "由 孙丽 处理" in copied


def test_a_double_tap_on_the_form_says_done_not_already_done(hub, client):
    todo_id = review(hub)
    client.cookies.set(COOKIE, issue_token(hub.settings, "legal-01"))
    form = {"outcome": "approved", "note": "齐全"}
    first = client.post(f"/todos/{todo_id}/done", data=form, headers=HTML,
                        follow_redirects=False)
    # the second post of the same form (a double tap, a slow network's retry): the same page
    second = client.post(f"/todos/{todo_id}/done", data=form, headers=HTML,
                         follow_redirects=False)
    assert first.status_code == second.status_code == 303, second.text
    assert second.headers["location"] == first.headers["location"]
    # another answer than the one stored, or another person: still refused, said why
    r = client.post(f"/todos/{todo_id}/done", data={"outcome": "rejected", "note": "缺证"},
                    headers=HTML)
    assert r.status_code == 409 and "该待办已于" in r.text and "由 刘洋 办结" in r.text
    client.cookies.set(COOKIE, issue_token(hub.settings, "admin"))
    r = client.post(f"/todos/{todo_id}/done", data=form, headers=HTML)
    assert r.status_code == 409 and "由 刘洋 办结" in r.text


def test_a_note_of_several_lines_counts_as_the_page_counted_it(hub, client):
    todo_id = review(hub)
    client.cookies.set(COOKIE, issue_token(hub.settings, "legal-01"))
    # a browser sends a textarea's line breaks as CRLF, while its maxlength (500) counted
    # each as one character: 250 lines of "缺\n" are 500 on the page, 750 as sent
    typed = "缺\r\n" * 250
    r = client.post(f"/todos/{todo_id}/done", data={"outcome": "rejected", "note": typed},
                    headers=HTML, follow_redirects=False)
    assert r.status_code == 303, re.findall(r'id="err"[^>]*>([^<]*)', r.text)
    with session_scope(hub.db_url) as s:
        assert s.get(Todo, todo_id).note == ("缺\n" * 250).strip()
