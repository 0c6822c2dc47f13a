"""Audit round 4 (customer master data): what a demanding rep, manager, risk officer or
clerk would still hit — revoked companies learned the first time, branches opened without
their head office, names refused after they got a file."""
from __future__ import annotations

import dataclasses
import json

import pytest
from sqlmodel import select

from connectors.registry import EmbeddedRegistry, RegistryRecord
from flows.hub import current_hub, use_hub
from flows.registry_watch import refresh_customer
from models import Customer, RegistryChange, Todo
from models.customer_files import create_customer
from models.db import session_scope

IMPORTED = "苏州恒信医疗器械有限公司"
IMPORTED_USCC = "91320500MA1X9Y8Z7Q"


@pytest.fixture
def registry_file(hub, tmp_path):
    """The hub reads a registry dataset this test writes (the sample plus its own records)."""
    from flows.hub import SAMPLE_REGISTRY

    path = tmp_path / "registry.jsonl"
    path.write_text(SAMPLE_REGISTRY.read_text(encoding="utf-8"), encoding="utf-8")

    def add(**fields) -> None:
        record = RegistryRecord(**{"uscc": None, "status": "存续", "registered_capital": None,
                                   "legal_representative": None, "established_on": None,
                                   **fields})
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")

    use_hub(dataclasses.replace(hub, registry=EmbeddedRegistry(path)))
    yield add
    use_hub(hub)


def _imported_file(db_url, legal_name=IMPORTED, **fields) -> int:
    with session_scope(db_url) as s:
        c = create_customer(s, legal_name=legal_name, actor="test", origin="imported",
                            owner_rep_id="rep-zhangwei", **fields)
        s.flush()
        return c.id


def test_a_revoked_company_learned_the_first_time_reaches_the_risk_role(hub, registry_file):
    """An imported file has no registry facts yet; the watch reads it first (never checked)
    and the registry says 吊销. That is the one news risk must hear, not a silent fill-in."""
    registry_file(legal_name=IMPORTED, uscc=None, status="吊销", legal_representative="钱峰")
    cid = _imported_file(hub.db_url)
    refresh_customer(current_hub(), cid)
    with session_scope(hub.db_url) as s:
        assert s.get(Customer, cid).status == "吊销"
        changes = s.exec(select(RegistryChange)).all()
        todos = s.exec(select(Todo).where(Todo.kind == "registry_change")).all()
    assert [(c.field, c.old_value, c.new_value) for c in changes] == [("status", None, "吊销")]
    assert len(todos) == 1 and todos[0].assignee_id == "risk-01"
    assert "登记状态：（空） → 吊销" in todos[0].body and todos[0].cc == "rep-zhangwei"


def test_a_living_company_learned_the_first_time_is_no_alert(hub, registry_file):
    registry_file(legal_name=IMPORTED, status="存续", legal_representative="钱峰")
    cid = _imported_file(hub.db_url)
    refresh_customer(current_hub(), cid)
    with session_scope(hub.db_url) as s:
        assert s.get(Customer, cid).legal_representative == "钱峰"
        assert s.exec(select(RegistryChange)).all() == []
        assert s.exec(select(Todo).where(Todo.kind == "registry_change")).all() == []


# --- a branch opened from an order or a decision sits under its head office --------------

KANGDA = "江苏康达医疗设备有限公司"
BRANCH = "江苏康达医疗设备有限公司南京分公司"


def _run_pending(hub) -> None:
    from flows.dispatch import dispatch_pending
    from tests.support import InlineLauncher

    while dispatch_pending(hub.db_url, InlineLauncher(), batch_size=50):
        pass


@pytest.mark.usefixtures("prefect_harness")
def test_a_registered_branch_typed_in_an_order_is_filed_under_its_head_office(hub, registry_file):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from models import IntentOrder
    from tests.support import order_payload, post_order

    registry_file(legal_name=BRANCH, uscc="91320100MA1Y2K3L4M", status="存续",
                  legal_representative="顾建平")
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        r = post_order(client, order_payload(name=BRANCH))
        assert r.status_code == 202, r.text
        _run_pending(hub)
        order_id = r.json()["order_id"]
        with session_scope(hub.db_url) as s:
            order = s.get(IntentOrder, order_id)
            branch = s.get(Customer, order.customer_id)
            head = s.exec(select(Customer).where(Customer.legal_name == KANGDA)).one()
            assert branch.legal_name == BRANCH and branch.id != head.id
            assert branch.parent_id == head.id
        from tests.flows.test_audit4_customers import _token
        view = client.get(f"/customers/{head.id}", headers=_token(hub)).json()
    assert [b["legal_name"] for b in view["branches"]] == [BRANCH]


def _token(hub, staff_id="rep-zhangwei") -> dict:
    from api.auth import issue_token

    return {"Authorization": f"Bearer {issue_token(hub.settings, staff_id)}"}


def test_a_head_office_filed_after_its_branch_gathers_it(hub):
    """The branch came first (an order); the head office's file opened later takes it."""
    with session_scope(hub.db_url) as s:
        branch = create_customer(s, legal_name="浙江华东精工有限公司杭州分公司", actor="test",
                                 origin="standard")
        s.flush()
        branch_id = branch.id
        assert branch.parent_id is None
        head = create_customer(s, legal_name="浙江华东精工有限公司", actor="test",
                               origin="standard")
        s.flush()
        assert s.get(Customer, branch_id).parent_id == head.id
        # a name that merely starts like the head office is not its branch
        other = create_customer(s, legal_name="浙江华东精工有限公司杭州", actor="test",
                                origin="standard")
        s.flush()
        assert other.parent_id is None


# --- a name that got a file by other means is no longer refused -------------------------

def _overdue_suspect(db_url, name: str) -> int:
    import datetime as dt

    from models import SuspectName, utcnow
    from models.names import normalize_name

    with session_scope(db_url) as s:
        suspect = SuspectName(key=normalize_name(name), display_name=name, status="overdue",
                              sightings=3, decider_id="mgr-east",
                              escalated_at=utcnow() - dt.timedelta(hours=30),
                              deadline_at=utcnow() - dt.timedelta(hours=6))
        s.add(suspect)
        s.flush()
        return suspect.id


def test_an_overdue_name_that_now_has_a_file_is_not_refused(hub):
    """The manager let the deadline pass, then sales-ops imported the company (or merged the
    name by hand): the name is a customer on file now, and its orders must come in."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from models.customer_files import overdue_refusal
    from tests.support import order_payload, post_order

    name = "康达新材料科技有限公司"
    _overdue_suspect(hub.db_url, name)
    with session_scope(hub.db_url) as s:
        assert overdue_refusal(s, name)  # still nobody's customer: refused
    _imported_file(hub.db_url, legal_name=name)
    with session_scope(hub.db_url) as s:
        assert overdue_refusal(s, name) is None
        assert overdue_refusal(s, " 康达新材料科技有限公司 ") is None
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        r = post_order(client, order_payload(name=name))
    assert r.status_code == 202, r.text


@pytest.mark.usefixtures("prefect_harness")
def test_the_hourly_sweep_lets_orders_go_on_once_their_name_has_a_file(hub):
    """Nobody decided; the orders were blocked. Then sales-ops imported the company: the
    name is decided by its file, and the blocked orders go on (not stay blocked forever)."""
    import datetime as dt

    from fastapi.testclient import TestClient

    from api.app import create_app
    from flows.suspects import escalate_and_enforce
    from models import IntentOrder, SuspectName, set_clock
    from tests.support import order_payload, post_order

    name = "康达新材料科技有限公司"
    now = [dt.datetime.now(dt.timezone.utc)]
    set_clock(lambda: now[0])
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        waiting = []
        for _ in range(3):
            r = post_order(client, order_payload(name=name))
            assert r.status_code == 202, r.text
            waiting.append(r.json()["order_id"])
            _run_pending(hub)
    now[0] += dt.timedelta(hours=30)
    assert escalate_and_enforce(hub).overdue == [1]
    cid = _imported_file(hub.db_url, legal_name=name)
    result = escalate_and_enforce(hub)
    assert result.resolved == [1] and result.overdue == []
    with session_scope(hub.db_url) as s:
        suspect = s.get(SuspectName, 1)
        assert (suspect.status, suspect.customer_id) == ("merged", cid)
        assert {(s.get(IntentOrder, o).status, s.get(IntentOrder, o).customer_id)
                for o in waiting} == {("received", cid)}
        todo = s.get(Todo, suspect.todo_id)
        assert todo.status == "done"
    _run_pending(hub)
    with session_scope(hub.db_url) as s:
        assert {s.get(IntentOrder, o).status for o in waiting} == {"quoted"}
    # the manager's page says the system decided it, not an internal flow name
    from api.auth import COOKIE
    from tests.api.test_staff_pages import HTML, token

    with TestClient(create_app(hub.settings, launcher=None)) as client:
        client.cookies.set(COOKIE, token(hub, "mgr-east"))
        page = client.get("/customers/suspects/1", headers=HTML)
    assert page.status_code == 200 and "已处理" in page.text
    assert "flow:" not in page.text and "系统（该名称已有客户档案）" in page.text


# --- the daily watch: a retry asks the registry only for what it has not read yet ---------

from tests.flows.test_registry_watch import tianyancha  # noqa: E402,F401 - the fixture


@pytest.mark.usefixtures("prefect_harness")
def test_a_watch_retry_does_not_pay_again_for_the_customers_already_read(hub, tianyancha):
    """Every 天眼查 call is billed. One customer's lookup is rate-limited (twice, so the
    client's own retry gives up); the task's retry reads that one again, not all four."""
    from flows.registry_watch import watch_registry

    tianyancha.fail_next(300004, 300004)
    summary = watch_registry(limit=10)
    assert summary["checked"] == 4 and summary["failed"] == []
    assert tianyancha.lookup_count == 2 + 3 + 1, dict(tianyancha.lookups)


def test_a_watch_stops_asking_once_the_registry_refuses_the_account(hub, tianyancha):
    """余额不足: every further call would be refused alike (and may be billed). The rest of
    the day's files are not asked about; they stay first in line for the next run."""
    from flows.registry_watch import watch_registry

    tianyancha.fail_next(*[300006] * 10)
    summary = watch_registry(limit=10)
    assert tianyancha.lookup_count == 1, dict(tianyancha.lookups)
    assert summary["checked"] == 0 and len(summary["blocked"]) == 4


def test_an_overdue_name_of_two_files_is_still_refused(hub):
    """A short name two files share was the reason it went to a manager: it stays refused
    until he says which customer it is."""
    from models.customer_files import add_alias, overdue_refusal

    name = "康达新材料"
    _overdue_suspect(hub.db_url, name)
    one = _imported_file(hub.db_url, legal_name="苏州康达新材料有限公司")
    two = _imported_file(hub.db_url, legal_name="无锡康达新材料科技有限公司")
    with session_scope(hub.db_url) as s:
        for cid in (one, two):
            add_alias(s, s.get(Customer, cid), name, "short", "import", "test")
    with session_scope(hub.db_url) as s:
        assert overdue_refusal(s, name)


@pytest.mark.usefixtures("prefect_harness")
def test_the_first_sighting_tells_the_rep_who_can_open_the_file_now(hub):
    """Below the threshold nobody has been asked: “wait for the manager” would be a wait for
    nothing. The rep is told his manager can open the file, and where."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from models import IntentOrder
    from tests.support import order_payload, post_order

    with TestClient(create_app(hub.settings, launcher=None)) as client:
        r = post_order(client, order_payload(name="渝康器械"))
        _run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, r.json()["order_id"])
    assert order.status == "on_hold"
    assert "等待销售经理确认" not in order.error
    assert "请您的销售经理在疑似新客户页面新建客户档案" in order.error
    assert "http://testserver/customers/suspects/1" in order.error


@pytest.mark.usefixtures("prefect_harness")
def test_an_order_without_a_rep_is_not_held_in_silence(hub):
    """The ERP sends orders without a rep: an unrecognised name must reach somebody who can
    act (the fallback decider, sales-ops), not a push to nobody."""
    import json as _json

    from fastapi.testclient import TestClient

    from api.app import create_app
    from models import IntentOrder
    from tests.support import order_payload, post_order

    with TestClient(create_app(hub.settings, launcher=None)) as client:
        r = post_order(client, order_payload(name="渝康器械", rep_id=None))
        assert r.status_code == 202, r.text
        _run_pending(hub)
    order_id = r.json()["order_id"]
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
    assert order.status == "on_hold" and "请销售运营" in order.error
    pushes = [_json.loads(p.read_text(encoding="utf-8"))
              for p in (hub.settings.data_dir / "pushes").glob("*.json")]
    held = [p for p in pushes if p["key"] == f"order-held:{order_id}"]
    assert len(held) == 1 and held[0]["recipients"] == ["ops-01"]


@pytest.mark.usefixtures("prefect_harness")
def test_a_decision_on_the_name_leaves_the_order_whose_rep_chose_its_customer(hub):
    """张伟 picked 浙江仁和 for his held order; it went on and was later blocked for another
    reason (a person is on it). The manager then merges the name into 江苏康达: that decision
    is about the orders still waiting, not about the one the rep already decided."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from flows.suspects import choose_customer_for_order, decide_merge
    from models import IntentOrder, Staff
    from models.oplog import apply_changes
    from tests.support import order_payload, post_order

    with TestClient(create_app(hub.settings, launcher=None)) as client:
        mine = post_order(client, order_payload(name="渝康器械")).json()["order_id"]
        other = post_order(client, order_payload(name="渝康器械")).json()["order_id"]
        _run_pending(hub)
    with session_scope(hub.db_url) as s:
        renhe = s.exec(select(Customer).where(Customer.legal_name == "浙江仁和医疗器械有限公司")).one().id
        kangda = s.exec(select(Customer).where(Customer.legal_name == KANGDA)).one().id
        rep, mgr = s.get(Staff, "rep-zhangwei"), s.get(Staff, "mgr-east")
    choose_customer_for_order(hub, mine, rep, renhe)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, mine)
        apply_changes(s, order, "test", status="blocked", error="产品已停售")
    decide_merge(hub, 1, mgr, kangda)
    with session_scope(hub.db_url) as s:
        chosen, waiting = s.get(IntentOrder, mine), s.get(IntentOrder, other)
        assert (chosen.status, chosen.customer_id) == ("blocked", renhe)
        assert (waiting.status, waiting.customer_id) == ("received", kangda)


@pytest.mark.usefixtures("prefect_harness")
def test_a_registry_refusal_blocks_the_order_with_a_reason_people_read(hub, tianyancha):
    """天眼查 refuses the account (余额不足): the order cannot go on, and the manager's to-do
    and the order say so in Chinese — not “tianyancha error 300006 …”."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from models import IntentOrder
    from tests.support import order_payload, post_order

    tianyancha.fail_next(300006)
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        r = post_order(client, order_payload(name="重庆渝康医疗器械有限公司"))
        assert r.status_code == 202, r.text
        _run_pending(hub)
    order_id = r.json()["order_id"]
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
        todo = s.exec(select(Todo).where(Todo.kind == "order_blocked")).one()
    assert order.status == "blocked"
    for text in (order.error, todo.body):
        assert "tianyancha" not in text and "error" not in text
        assert "工商信息查询失败" in text and "余额不足" in text and "300006" in text


@pytest.mark.usefixtures("prefect_harness")
def test_a_rep_less_name_escalated_while_the_fallback_decider_names_nobody(hub):
    """SALESOPS_SUSPECT_FALLBACK_DECIDER names nobody on file (the clerk left): a rep-less
    order's unrecognised name is escalated to a sales-ops clerk on file (the to-do cannot
    go to nobody), and the order waits on hold — not failed on the to-do's foreign key."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from models import IntentOrder, Staff, Todo
    from tests.support import order_payload, post_order

    hub.settings.suspect_fallback_decider = "ops-99"
    hub.settings.suspect_threshold = 1
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        r = post_order(client, order_payload(name="渝康器械", rep_id=None))
        _run_pending(hub)
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, r.json()["order_id"]).status == "on_hold"
        [todo] = s.exec(select(Todo).where(Todo.kind == "suspect_customer")).all()
        assert s.get(Staff, todo.assignee_id).role == "sales_ops"
