"""`salesops orders retry` and `salesops staff import|set` on the database, as ops run them
(`in_process_cli`): what they write, what the operation log says, and what they refuse with
nothing written."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from connectors.base import PermanentError
from flows.dispatch import requeue_stalled
from models import IntentOrder, OperationLog, Todo, utcnow
from models.base import set_clock
from models.db import session_scope
from tests.support import InlineLauncher, in_process_cli, order_payload, post_order, run_pending

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None)) as c:
        yield c


def order(hub, oid: str) -> IntentOrder:
    with session_scope(hub.db_url) as s:
        return s.get(IntentOrder, oid)


def blocked_todos(hub, oid: str) -> list[Todo]:
    with session_scope(hub.db_url) as s:
        return list(s.exec(select(Todo).where(Todo.order_id == oid,
                                              Todo.kind == "order_blocked").order_by(Todo.id)))


def log_rows(hub, entity: str, entity_id: str) -> list[OperationLog]:
    with session_scope(hub.db_url) as s:
        return list(s.exec(select(OperationLog).where(
            OperationLog.entity == entity, OperationLog.entity_id == entity_id)
            .order_by(OperationLog.id)))


class SigningRefused:
    """While in effect, the signing provider refuses (a bad account); fixed on exit."""

    def __init__(self, hub) -> None:
        self.esign = hub.esign

    def __enter__(self):
        def refused(request):
            raise PermanentError("e签宝 refused: app not authorised", provider="esign",
                                 code="401")
        self.esign.create_signing = refused

    def __exit__(self, *exc) -> None:
        del self.esign.create_signing  # the class's own method again


def block_on_signing(hub, client) -> str:
    """An order blocked at once: the signing provider refuses; the account then fixed."""
    with SigningRefused(hub):
        oid = post_order(client, order_payload()).json()["order_id"]
        run_pending(hub)
    assert order(hub, oid).status == "blocked"
    return oid


def sweep_later(hub, seconds: float) -> InlineLauncher:
    """The sweeper's requeue pass `seconds` from now (its runs inline)."""
    st = hub.settings
    later = utcnow() + dt.timedelta(seconds=seconds)
    set_clock(lambda: later)
    launcher = InlineLauncher()
    try:
        requeue_stalled(hub.db_url, launcher, dt.timedelta(seconds=st.claim_lease_seconds),
                        st.order_max_attempts, st.dispatch_batch_size,
                        dt.timedelta(seconds=st.order_retry_base_seconds))
    finally:
        set_clock(None)
    return launcher


# --- orders retry ----------------------------------------------------------------------------

def test_a_blocked_order_retried_is_handed_over_by_the_sweeper_and_completes(
        hub, client, cli):
    oid = block_on_signing(hub, client)
    [todo] = blocked_todos(hub, oid)
    assert todo.status == "open" and todo.assignee_id == "mgr-east"

    code, out, err = cli("orders", "retry", oid, "--by", "ops-01")
    assert code == 0, err
    assert f"意向单 {oid}" in out and "已暂停，需人工处理" in out and f"待办 #{todo.id} 已办结" in out
    assert "inbox-sweeper" in out and "约 1 分钟" in out, out
    o = order(hub, oid)
    assert (o.status, o.attempts, o.claimed_by, o.claimed_until) == ("failed", 0, None, None)
    [todo] = blocked_todos(hub, oid)
    assert (todo.status, todo.done_by, todo.outcome) == ("done", "ops-01", "done")
    assert todo.note == "已由 吴倩（ops-01）重新提交处理" and todo.done_at is not None
    [*_, logged] = log_rows(hub, "intent_order", oid)
    assert logged.actor == "cli:ops-01"
    changes = json.loads(logged.changes)
    assert changes["status"] == ["blocked", "failed"] and changes["attempts"][1] == 0
    assert log_rows(hub, "todo", str(todo.id))[-1].actor == "cli:ops-01"

    # not before the base delay (attempts 0: the base), then handed over and quoted
    assert sweep_later(hub, 5).launched == []
    launcher = sweep_later(hub, hub.settings.order_retry_base_seconds + 1)
    assert [p["order_ids"] for _, p, _ in launcher.launched] == [[oid]]
    o = order(hub, oid)
    assert o.status == "quoted" and o.attempts == 1, (o.status, o.error)


def test_a_second_retry_of_the_same_order_is_a_new_hand_over(hub, client, cli):
    """Blocked, retried, blocked again, retried again: the second hand-over must not carry the
    first one's idempotency key (Prefect would answer the earlier run and start none)."""
    oid = block_on_signing(hub, client)
    assert cli("orders", "retry", oid, "--by", "ops-01")[0] == 0

    with SigningRefused(hub):  # the retry fails as before: blocked again, a new to-do
        first = sweep_later(hub, 120)
    assert order(hub, oid).status == "blocked"
    assert [t.status for t in blocked_todos(hub, oid)] == ["done", "open"]
    assert cli("orders", "retry", oid, "--by", "ops-01")[0] == 0
    assert [t.status for t in blocked_todos(hub, oid)] == ["done", "done"]
    second = sweep_later(hub, 240)
    assert first.launched[0][2] != second.launched[0][2]
    assert order(hub, oid).status == "quoted"


def test_retry_refuses_orders_in_other_states_and_writes_nothing(hub, client, cli):
    blocked = block_on_signing(hub, client)
    quoted = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    assert order(hub, quoted).status == "quoted"
    before = len(log_rows(hub, "intent_order", blocked))
    code, out, err = cli("orders", "retry", blocked, quoted, "IO000000-NOPE", "--by", "ops-01")
    assert code == 2 and out == ""
    assert f"意向单 {quoted} 的状态是「已报价，待客户签署」" in err
    assert "意向单不存在：IO000000-NOPE" in err and "未重新提交任何意向单" in err
    assert order(hub, blocked).status == "blocked"  # all or none
    assert [t.status for t in blocked_todos(hub, blocked)] == ["open"]
    assert len(log_rows(hub, "intent_order", blocked)) == before


def test_retry_is_for_sales_ops_or_an_admin(hub, client, cli):
    oid = block_on_signing(hub, client)
    code, _, err = cli("orders", "retry", oid, "--by", "rep-zhangwei")
    assert code == 2 and "须由销售运营或管理员执行" in err and "销售代表" in err
    code, _, err = cli("orders", "retry", oid, "--by", "nobody")
    assert code == 2 and "人员不存在：nobody" in err
    assert order(hub, oid).status == "blocked"
    code, out, err = cli("orders", "retry", oid, "--by", "admin", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["requeued"][0]["order_id"] == oid and answer["requeued"][0]["old_status"] == "blocked"
    assert answer["retry_within_seconds"] == hub.settings.order_retry_base_seconds
