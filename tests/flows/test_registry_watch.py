"""Registry facts stay fresh: the daily watch (and every order with a stale file) re-reads the
registry — here the 天眼查 client against its simulator — and a change of legal representative,
status, name or capital reaches the owning rep and the risk role, old → new, and the log."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from api.app import create_app
from connectors.registry import EmbeddedRegistry, TianyanchaRegistry
from flows.dispatch import dispatch_pending
from flows.hub import use_hub
from flows.registry_watch import due_customers, refresh_customer, watch_registry
from models import Customer, CustomerAlias, IntentOrder, OperationLog, RegistryChange, Todo
from models.db import session_scope
from tests.simulators.registry_sim import TianyanchaSimulator
from tests.support import InlineLauncher, order_payload, post_order

TOKEN = "tyc-watch-token"
KANGDA = "江苏康达医疗设备有限公司"


@pytest.fixture
def tianyancha(hub):
    """The hub's registry is 天眼查 (simulated), holding the sample companies."""
    sim = TianyanchaSimulator(TOKEN).start()
    for record in EmbeddedRegistry(hub.settings.registry_dataset or _sample()).records():
        sim.add(record)
    remote = TianyanchaRegistry(sim.url, SecretStr(TOKEN), timeout=2.0, attempts=2)
    use_hub(dataclasses.replace(hub, registry=remote))
    yield sim
    remote.close()
    sim.stop()
    use_hub(hub)


def _sample():
    from flows.hub import SAMPLE_REGISTRY
    return SAMPLE_REGISTRY


def kangda(db_url) -> Customer:
    with session_scope(db_url) as s:
        return s.exec(select(Customer).where(Customer.legal_name == KANGDA)).one()


def test_changed_legal_representative_alerts_rep_and_risk(hub, tianyancha):
    from flows.hub import current_hub
    tianyancha.change(KANGDA, legalPersonName="顾晓东", regCapital="8000万人民币")
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    with session_scope(hub.db_url) as s:
        customer = s.exec(select(Customer).where(Customer.legal_name == KANGDA)).one()
        changes = s.exec(select(RegistryChange).order_by(RegistryChange.id)).all()
        todo = s.exec(select(Todo).where(Todo.kind == "registry_change")).one()
        log = [json.loads(x.changes) for x in s.exec(select(OperationLog).where(
            OperationLog.entity == "customer", OperationLog.action == "update"))]
    assert customer.legal_representative == "顾晓东"
    assert [(c.field, c.old_value, c.new_value) for c in changes] == [
        ("legal_representative", "顾建国", "顾晓东"),
        ("registered_capital", "5000万人民币", "8000万人民币")]
    assert todo.assignee_id == "risk-01" and todo.cc == "rep-zhangwei"
    assert "法定代表人：顾建国 → 顾晓东" in todo.body and "注册资本：5000万人民币 → 8000万人民币" in todo.body
    assert {"legal_representative": ["顾建国", "顾晓东"]}.items() <= log[-1].items()
    pushes = [json.loads(p.read_text(encoding="utf-8"))
              for p in (hub.settings.data_dir / "pushes").glob("*.json")]
    assert any({"risk-01", "rep-zhangwei"} <= set(p["recipients"]) for p in pushes)
    # reading it again finds nothing new and alerts nothing more
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    with session_scope(hub.db_url) as s:
        assert len(s.exec(select(RegistryChange)).all()) == 2
        assert len(s.exec(select(Todo).where(Todo.kind == "registry_change")).all()) == 1


def test_a_renamed_company_keeps_its_old_name_as_an_alias(hub, tianyancha):
    from flows.hub import current_hub
    tianyancha.change(KANGDA, name="江苏康达医疗科技集团有限公司",
                      historyNames=f"苏州康达医疗器材有限公司;{KANGDA};",
                      historyNameList=["苏州康达医疗器材有限公司", KANGDA])
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    with session_scope(hub.db_url) as s:
        customer = s.exec(select(Customer).where(Customer.uscc == "91320500MA1K2D3F5H")).one()
        names = {a.name: a.kind for a in s.exec(select(CustomerAlias).where(
            CustomerAlias.customer_id == customer.id))}
        change = s.exec(select(RegistryChange)).one()
    assert customer.legal_name == "江苏康达医疗科技集团有限公司"
    assert names[KANGDA] == "former"
    assert (change.field, change.old_value) == ("legal_name", KANGDA)


@pytest.mark.usefixtures("prefect_harness")
def test_the_daily_flow_reads_the_oldest_first_and_reports(hub, tianyancha):
    with session_scope(hub.db_url) as s:
        for c in s.exec(select(Customer)).all():
            c.registry_checked_at = None if c.legal_name == KANGDA else \
                dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
            s.add(c)
    assert due_customers(hub, 1) == [kangda(hub.db_url).id]
    tianyancha.change(KANGDA, regStatus="吊销")
    summary = watch_registry(limit=10)
    assert summary["checked"] == 4 and summary["changes"] == 1 and not summary["failed"]
    assert kangda(hub.db_url).status == "吊销"


@pytest.mark.usefixtures("prefect_harness")
def test_an_order_refreshes_a_stale_file_and_stops_for_a_revoked_company(hub, tianyancha):
    with session_scope(hub.db_url) as s:
        c = s.exec(select(Customer).where(Customer.legal_name == KANGDA)).one()
        c.registry_checked_at = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        s.add(c)
    tianyancha.change(KANGDA, regStatus="吊销")
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        order_id = post_order(client, order_payload(name="康达医疗")).json()["order_id"]
        while dispatch_pending(hub.db_url, InlineLauncher(), batch_size=50):
            pass
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
        assert order.status == "blocked" and "吊销" in order.error
        assert s.exec(select(RegistryChange)).one().new_value == "吊销"
    assert tianyancha.lookup_count >= 1


def test_a_file_whose_uscc_was_mistyped_is_still_watched_and_corrected(hub, tianyancha):
    """An imported code that failed the check (kept and flagged) must not hide the company
    from the watch: the registry is asked by name, its code replaces ours, and a revocation is
    noticed — otherwise orders for a revoked company would go on."""
    from flows.hub import current_hub
    from models.customer_files import uscc_flag
    mistyped = "91320500MA1K2D3F5J"  # the sample code with its check character mistyped
    with session_scope(hub.db_url) as s:
        c = s.exec(select(Customer).where(Customer.legal_name == KANGDA)).one()
        c.uscc, c.uscc_check = mistyped, uscc_flag(mistyped)
        s.add(c)
    assert kangda(hub.db_url).uscc_check == "bad_check_character"
    tianyancha.change(KANGDA, regStatus="吊销")
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    customer = kangda(hub.db_url)
    assert (customer.status, customer.uscc, customer.uscc_check) == (
        "吊销", "91320500MA1K2D3F5H", "ok")
    with session_scope(hub.db_url) as s:
        change = s.exec(select(RegistryChange)).one()
    assert (change.field, change.old_value, change.new_value) == ("status", "存续", "吊销")
    assert tianyancha.lookups[KANGDA] == 1 and not tianyancha.lookups[mistyped]


def test_a_new_name_held_by_another_file_does_not_hide_a_revocation(hub, tianyancha):
    """The registry renames the company to a name another file already carries (a probable
    duplicate, reported) and revokes it on the same day: the name waits for the merge, the
    revocation is noticed, both reach the risk role."""
    from flows.hub import current_hub
    renhe = "浙江仁和医疗器械有限公司"
    tianyancha.change(KANGDA, name=renhe, regStatus="吊销")
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    with session_scope(hub.db_url) as s:
        customer = s.exec(select(Customer).where(Customer.uscc == "91320500MA1K2D3F5H")).one()
        changes = s.exec(select(RegistryChange)).all()
        titles = sorted(t.title for t in s.exec(select(Todo).where(
            Todo.kind == "registry_change")))
    assert (customer.legal_name, customer.status) == (KANGDA, "吊销")
    assert [(c.field, c.old_value, c.new_value) for c in changes] == [("status", "存续", "吊销")]
    assert titles == [f"客户工商信息变更：{KANGDA}", f"疑似重复客户档案：{KANGDA}"]
    # the next day: the clash is still there, nothing is reported twice
    refresh_customer(current_hub(), kangda(hub.db_url).id)
    with session_scope(hub.db_url) as s:
        assert len(s.exec(select(RegistryChange)).all()) == 1
        assert len(s.exec(select(Todo).where(Todo.kind == "registry_change")).all()) == 2
