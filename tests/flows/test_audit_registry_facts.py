"""Audit (customer master data, registry facts): what the registry says about a company —
its USCC, former names, capital, legal representative, status — kept on the right file, once."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from flows.hub import current_hub
from flows.registry_watch import refresh_customer
from models import Customer, IntentOrder, Todo
from models.customer_files import create_customer, exact_matches
from models.db import session_scope
from tests.flows.test_registry_watch import KANGDA, kangda, tianyancha  # noqa: F401
from tests.support import order_payload, post_order, run_pending

JIMIN = "安徽济民医疗器械有限责任公司"           # in the sample registry
JIMIN_FORMER = "合肥济民医疗设备有限公司"          # its 曾用名 there
JIMIN_USCC = "91340100MA2NRD6E7B"


@pytest.fixture
def client(hub):
    app = create_app(hub.settings, launcher=None)
    with TestClient(app) as c:
        yield c


@pytest.mark.usefixtures("prefect_harness")
def test_an_order_under_the_new_name_finds_the_file_kept_under_the_former_name(hub, client):
    """The customer was imported years ago under its old name 合肥济民医疗设备有限公司 (the old
    ERP had no USCC). The company has since been renamed; the registry lists the old name as
    its 曾用名. A rep's order now carries the new legal name 安徽济民医疗器械有限责任公司.
    Expected (docs/customers.md: one file per legal entity; `files_of`: "a file still under a
    former name, not yet refreshed, is the same company"): the order goes to the existing file.
    Actual: `files_of` only looks up the registry's *current* name and the USCC, so a second,
    standard file is opened for the same company with a legal review, and both files now
    answer to the old name (orders typed with it stop as ambiguous)."""
    with session_scope(hub.db_url) as s:
        old = create_customer(s, legal_name=JIMIN_FORMER, actor="test", origin="imported",
                              owner_rep_id="rep-zhangwei")
        s.flush()
        old_id = old.id
    r = post_order(client, order_payload(name=JIMIN, lines=[("PUMP-VP5", 1)]))
    assert r.status_code == 202
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, r.json()["order_id"])
        files = [(c.id, c.legal_name, c.origin) for c in s.exec(
            select(Customer).where(Customer.merged_into_id.is_(None)))]
        reviews = s.exec(select(Todo).where(Todo.kind == "legal_review")).all()
        answering_old_name = [c.id for c in exact_matches(s, JIMIN_FORMER)]
    assert answering_old_name == [old_id], (
        f"files answering to the former name: {answering_old_name} (files: {files})")
    assert order.customer_id == old_id
    assert reviews == []


def test_a_former_name_that_is_another_files_legal_name_does_not_make_it_ambiguous(
        hub, tianyancha):  # noqa: F811
    """Two files: 江苏康达医疗设备有限公司 (watched, USCC on file) and 苏州康达医疗科技有限公司,
    opened from an import. The registry now lists 苏州康达医疗科技有限公司 among 康达's 曾用名
    (the same company filed twice, or a name later taken by another company). Expected, as for
    a new legal name (docs/customers.md, Registry watch: a name that already belongs to another
    file is reported as a probable duplicate, not applied): the other file keeps answering to
    its own legal name alone and the risk role hears of it. Actual: the watch silently adds the
    name as a former-name alias of 康达, so the other file's exact legal name now matches two
    files — orders typed with it stop as ambiguous (suspected new customer) — and nobody is told."""
    other = "苏州康达医疗科技有限公司"
    with session_scope(hub.db_url) as s:
        b = create_customer(s, legal_name=other, actor="test", origin="imported")
        s.flush()
        other_id = b.id
        assert [c.id for c in exact_matches(s, other)] == [other_id]
    tianyancha.change(KANGDA, historyNames=f"苏州康达医疗器材有限公司;{other};",
                      historyNameList=["苏州康达医疗器材有限公司", other])
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    with session_scope(hub.db_url) as s:
        answering = [(c.id, c.legal_name) for c in exact_matches(s, other)]
        told = [t.body for t in s.exec(select(Todo).where(Todo.kind == "registry_change"))]
    assert [i for i, _ in answering] == [other_id], f"{other} now answers to {answering}"
    assert any(str(other_id) in body for body in told), told


def test_a_second_legal_representative_change_while_the_first_alert_is_open_is_its_own_alert(
        hub, tianyancha):  # noqa: F811
    """Checked, fine: 顾建国 → 顾晓东 is alerted; before risk closes that to-do the registry
    changes the legal representative again and the capital to 万美元. The second read alerts
    the new changes (old → new, currency kept verbatim) in a to-do of their own; a third read
    alerts nothing."""
    import time

    from models import RegistryChange
    tianyancha.change(KANGDA, legalPersonName="顾晓东")
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    time.sleep(1.1)  # the alert's key is the detection time to the second
    tianyancha.change(KANGDA, legalPersonName="顾晓明", regCapital="800万美元")
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    with session_scope(hub.db_url) as s:
        changes = [(c.field, c.old_value, c.new_value, c.todo_id)
                   for c in s.exec(select(RegistryChange).order_by(RegistryChange.id))]
        todos = s.exec(select(Todo).where(Todo.kind == "registry_change").order_by(Todo.id)).all()
    assert [c[:3] for c in changes] == [
        ("legal_representative", "顾建国", "顾晓东"),
        ("legal_representative", "顾晓东", "顾晓明"),
        ("registered_capital", "5000万人民币", "800万美元")]
    assert len(todos) == 2 and [c[3] for c in changes] == [todos[0].id, todos[1].id, todos[1].id]
    assert "法定代表人：顾晓东 → 顾晓明" in todos[1].body and "800万美元" in todos[1].body
    assert kangda(hub.db_url).registered_capital == "800万美元"


def test_two_changes_read_in_the_same_second_are_both_alerted(hub, tianyancha):  # noqa: F811
    """Two reads of 康达 land in the same second (an order's refresh of a stale file racing the
    daily watch, each with a fresh 天眼查 answer straddling a 工商变更): the first finds the
    legal representative changed, the second a revocation. Expected: the revocation reaches the
    risk role and the rep — a to-do of its own, naming 存续 → 吊销. Actual: the alert's key is
    `customer:{id}:{detection time to the second}`, so `open_todo` hands back the first to-do;
    the revocation is attached to it, its text still lists only the legal representative,
    and no mail or push goes out for it."""
    import datetime as dt

    from models import RegistryChange
    from models.base import set_clock
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ticks = iter(range(10_000))
    set_clock(lambda: at + dt.timedelta(microseconds=next(ticks)))  # both reads in one second
    tianyancha.change(KANGDA, legalPersonName="顾晓东")
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    tianyancha.change(KANGDA, regStatus="吊销")
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    with session_scope(hub.db_url) as s:
        revoked = s.exec(select(RegistryChange).where(RegistryChange.field == "status")).one()
        todo = s.get(Todo, revoked.todo_id)
    assert kangda(hub.db_url).status == "吊销"
    assert "登记状态：存续 → 吊销" in todo.body, (
        f"the revocation was filed under to-do {todo.id}, which says only: {todo.body!r}")
