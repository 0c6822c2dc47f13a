"""What the ops engineer sees of `settle-month` when finance's REST API fails while the
vouchers go out (the finance simulator on loopback): the retry sends one voucher batch and its
run reports the revision it finished; a run that gives up says in its state what is stored and
how to finish it, and the next run finishes it once; a refusal by finance is not retried."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
from decimal import Decimal

import pytest
from pydantic import SecretStr

import flows.settlement as settlement
from connectors.base import PermanentError, TransientError
from flows.hub import build_hub, use_hub
from flows.settlement import settle_month
from tests.flows.test_settlement import POLICY
from models import IntentOrder
from models.db import session_scope
from sqlmodel import select
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order
from tests.simulators.base import Faults
from tests.simulators.erp_sim import VOUCHER_PATH, ErpSimulator

TOKEN = "finance-token-r13"
pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def finance_sim():
    with ErpSimulator(TOKEN, faults=Faults(only_paths=(VOUCHER_PATH,))) as sim:
        yield sim


@pytest.fixture
def rest_hub(seeded, finance_sim):
    settings = seeded.model_copy(update=dict(
        finance_backend="rest", finance_url=finance_sim.url, finance_token=SecretStr(TOKEN),
        connector_attempts=2, connector_timeout_seconds=1.0))
    hub = build_hub(settings)
    use_hub(hub)
    clock_from(dt.date(2027, 1, 5))
    publish(settings.db_url, POLICY)
    kangda = customer_id(settings.db_url, "江苏康达医疗设备有限公司")
    signed_order(settings.db_url, kangda, dt.date(2026, 10, 10), [("MON-M8", 5)])
    yield hub
    use_hub(None)


@pytest.fixture
def quick_retries(monkeypatch):
    """The flow's own retries (2), without waiting 10 s and 60 s between them."""
    monkeypatch.setattr(settlement, "settle_task",
                        settlement.settle_task.with_options(retry_delay_seconds=0))


def run_artifacts(flow_run_id) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))

    return {a.key: a for a in asyncio.run(read())}


def table_of(artifact) -> list[dict]:
    return json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data


def statements(hub) -> list:
    return sorted((hub.settings.data_dir / "settlements").rglob("*.pdf"))


def test_the_retry_after_finance_failed_reports_the_revision_it_sent(rest_hub, finance_sim,
                                                                      quick_retries,
                                                                      monkeypatch):
    finance_sim.faults.rate = 1.0  # finance answers 503 …
    submit = rest_hub.finance.submit_vouchers

    def first_attempt_fails(batch):
        try:
            return submit(batch)
        finally:
            finance_sim.faults.rate = 0.0  # … until the task's first attempt has given up

    monkeypatch.setattr(rest_hub.finance, "submit_vouchers", first_attempt_fails)
    state = settlement.settle_month_flow(month="2026-10", return_state=True)
    assert state.is_completed(), state.message
    assert finance_sim.injected["5xx"] == 2  # both connector attempts of the first task try
    assert dict(finance_sim.voucher_effects) == {"RB-2026-10-r1": 1}
    result = state.result()
    assert result["revision"] == 1 and result["total"] == "1280.00"
    assert result["voucher_ref"] == "VCH-000001"
    # the run stored revision 1 itself (its retry only sent it): said as without the 503
    assert "第 1 版：1 行，合计 ¥1,280.00" in result["message"], result["message"]
    assert result["run_id"] == settlement.stored_by(rest_hub.db_url, "2026-10",
                                                    str(state.state_details.flow_run_id))
    artifacts = run_artifacts(state.state_details.flow_run_id)
    table = table_of(artifacts["settle-month"])
    assert {"维度": "合计", "名称": "1 行", "金额": "¥1,280.00"} in table
    assert "无新增变动" not in artifacts["settle-month"].description
    assert len(statements(rest_hub)) == 1


def test_a_retry_sends_the_revision_it_stored_and_computes_nothing_again(
        rest_hub, finance_sim, quick_retries, monkeypatch):
    """Finance answers 503 to the first attempt; a return of the settled order is keyed while
    the run waits for its retry. The retry sends revision 1 as stored (no second computation,
    no revision 2 behind the run's back: its table would name only that one) and the run
    reports revision 1; the return is news for the next settlement, which claws it back."""
    computed = []
    compute = settlement.compute_month

    def counting(db_url, month, **kw):
        computed.append(month)
        return compute(db_url, month, **kw)

    monkeypatch.setattr(settlement, "compute_month", counting)
    finance_sim.faults.rate = 1.0
    submit = rest_hub.finance.submit_vouchers
    with session_scope(rest_hub.db_url) as s:
        order = s.exec(select(IntentOrder.id)).one()

    def first_attempt_fails(batch):
        try:
            return submit(batch)
        finally:
            if finance_sim.faults.rate:
                finance_sim.faults.rate = 0.0
                return_goods(rest_hub.db_url, order, 1, 1, dt.date(2026, 10, 20))

    monkeypatch.setattr(rest_hub.finance, "submit_vouchers", first_attempt_fails)
    state = settlement.settle_month_flow(month="2026-10", return_state=True)
    assert state.is_completed(), state.message
    assert computed == ["2026-10"]
    assert dict(finance_sim.voucher_effects) == {"RB-2026-10-r1": 1}
    result = state.result()
    assert result["revision"] == 1 and result["total"] == "1280.00"
    assert "第 1 版：1 行，合计 ¥1,280.00" in result["message"]  # its own, as without the 503

    again = settle_month(rest_hub, "2026-10", documents=False)
    assert (again.revision, again.total) == (2, Decimal("-256.00"))
    assert dict(finance_sim.voucher_effects) == {"RB-2026-10-r1": 1, "RB-2026-10-r2": 1}


def test_a_run_that_gives_up_says_what_is_stored_and_the_next_finishes_it_once(
        rest_hub, finance_sim, quick_retries):
    finance_sim.faults.rate = 1.0  # finance down for the whole run
    state = settlement.settle_month_flow(month="2026-10", return_state=True)
    assert state.is_failed()
    assert finance_sim.injected["5xx"] == 6  # 3 task attempts × 2 connector attempts
    assert ("2026-10 返利结算未完成：第 1 版（1 行，合计 ¥1,280.00）已保存，凭证草稿尚未提交财务"
            in state.message)
    assert "财务系统暂时无法连接（财务系统返回错误 503）" in state.message
    assert "重新运行 settle-month（参数 month=2026-10）" in state.message
    assert TOKEN not in state.message and statements(rest_hub) == []

    finance_sim.faults.rate = 0.0  # finance is back; the engineer runs the month again
    again = settlement.settle_month_flow(month="2026-10", return_state=True)
    assert again.is_completed(), again.message
    assert dict(finance_sim.voucher_effects) == {"RB-2026-10-r1": 1}
    result = again.result()
    assert result["revision"] == 1 and "此前已保存" in result["message"]
    assert len(statements(rest_hub)) == 1
    table = table_of(run_artifacts(again.state_details.flow_run_id)["settle-month"])
    assert {"维度": "合计", "名称": "1 行", "金额": "¥1,280.00"} in table
    # and a third run has nothing left to do
    third = settlement.settle_month_flow(month="2026-10", return_state=True).result()
    assert "无新增变动" in third["message"] and len(statements(rest_hub)) == 1
    assert dict(finance_sim.voucher_effects) == {"RB-2026-10-r1": 1}


def test_finance_refusing_the_vouchers_is_not_retried(rest_hub, quick_retries, monkeypatch):
    calls = []

    def refused(batch):
        calls.append(batch.batch_id)
        raise PermanentError("finance refused the request (422): unbalanced", provider="finance",
                             code="422")

    monkeypatch.setattr(rest_hub.finance, "submit_vouchers", refused)
    state = settlement.settle_month_flow(month="2026-10", return_state=True)
    assert state.is_failed() and calls == ["RB-2026-10-r1"]
    assert "第 1 版（1 行，合计 ¥1,280.00）已保存，凭证草稿尚未提交财务" in state.message


def test_settling_again_after_a_stopped_run_names_the_revision_it_finished(rest_hub,
                                                                           finance_sim):
    finance_sim.faults.rate = 1.0
    with pytest.raises(TransientError):
        settle_month(rest_hub, "2026-10")
    finance_sim.faults.rate = 0.0
    result = settle_month(rest_hub, "2026-10")
    assert (result.revision, result.lines, result.voucher_ref) == (1, 1, "VCH-000001")
    assert result.message.startswith("2026-10 返利结算第 1 版（此前已保存，本次补齐凭证草稿与对账单）")
    assert len(result.documents["statements"]) == 1


def test_a_revision_netting_to_zero_is_finished_and_a_rerun_changes_nothing(hub):
    """October re-run with a one-unit return of one order and a new one-unit order of the same
    customer: +256 and −256, no voucher due. Once its documents are out it is done: the next
    run reports nothing new instead of finishing it again, every time."""
    from flows.settlement import unfinished_revisions
    from tests.rebate_support import return_goods

    clock_from(dt.date(2027, 1, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    first = signed_order(hub.db_url, kangda, dt.date(2026, 10, 10), [("MON-M8", 5)])
    settle_month(hub, "2026-10")
    return_goods(hub.db_url, first, 1, 1, dt.date(2026, 10, 20))
    signed_order(hub.db_url, kangda, dt.date(2026, 10, 12), [("MON-M8", 1)])
    second = settle_month(hub, "2026-10")
    assert (second.revision, second.lines, second.total, second.voucher_ref) == (
        2, 2, Decimal("0.00"), None)
    assert "未设财务客户编码" not in second.message  # no voucher, nothing to import
    assert len(second.documents["statements"]) == 1
    assert unfinished_revisions(hub.db_url, "2026-10") == []
    again = settle_month(hub, "2026-10")
    assert again.run_id is None and again.message.startswith("无新增变动")


def test_a_retry_after_a_lost_answer_sends_the_batch_as_first_sent(hub, monkeypatch):
    """Finance booked the vouchers but its answer was lost; before the retry, the customer's
    finance code is filled in (as the settlement's message asks) and a day passes (the
    correction's voucher date is the day it is sent). The retry must send the same content
    under the same batch id — finance refuses a batch id with other content — so the run
    finishes with the first reference instead of sticking on a conflict."""
    from flows.settlement import send_vouchers
    from models import Customer, SettlementRun
    from models.db import session_scope
    from tests.rebate_support import return_goods

    clock_from(dt.date(2027, 1, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    order = signed_order(hub.db_url, kangda, dt.date(2026, 10, 10), [("MON-M8", 5)])
    settle_month(hub, "2026-10")
    return_goods(hub.db_url, order, 1, 1, dt.date(2026, 10, 20))  # a correction: dated today
    real = hub.finance.submit_vouchers
    sent = []

    def answer_lost(batch):
        sent.append(batch.to_json_dict())
        real(batch)
        raise TransientError("read timed out after the batch was booked", provider="finance")

    monkeypatch.setattr(hub.finance, "submit_vouchers", answer_lost)
    with pytest.raises(TransientError):
        settle_month(hub, "2026-10")
    with session_scope(hub.db_url) as s:
        s.get(Customer, kangda).finance_code = "1122.0345"
        (run,) = s.exec(settlement.select(SettlementRun).where(
            SettlementRun.revision == 2)).all()
    clock_from(dt.date(2027, 1, 6))
    monkeypatch.setattr(hub.finance, "submit_vouchers",
                        lambda batch: sent.append(batch.to_json_dict()) or real(batch))
    reference = send_vouchers(hub, run.id)
    assert reference and sent[0] == sent[1]  # the very batch of the first attempt
    assert "C%06d" % kangda in json.dumps(sent[1], ensure_ascii=False)


def test_the_cli_says_what_is_stored_when_finance_is_down(hub, monkeypatch, capsys):
    """`salesops settle` with finance unreachable: exit 3, and the clerk reads that revision 1
    is stored with its vouchers not yet sent and that running again is safe."""
    from tests.support import in_process_cli

    clock_from(dt.date(2027, 1, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, dt.date(2026, 10, 10), [("MON-M8", 5)])

    def down(batch):
        raise TransientError("connection refused", provider="finance")

    monkeypatch.setattr(hub.finance, "submit_vouchers", down)
    cli = in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)
    run = next(cli)
    try:
        code, _, err = run("settle", "--month", "2026-10")
        assert code == 3
        assert ("2026-10 返利结算未完成：第 1 版（1 行，合计 ¥1,280.00）已保存，凭证草稿尚未提交财务。"
                "原因：外部系统暂不可用（finance）") in err
        assert "salesops settle --month 2026-10" in err and "Traceback" not in err
    finally:
        cli.close()
