"""Audit of the last session's fixes on the settlement / finance / API side (the settle-month
run split into store_and_send → write_documents_left → settlement_result, the settlement's
codes as its vouchers carried them, the JSON bodies the API could not read). Each test here
fails on the code as audited; what was checked and found right is in the audit report."""
from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import issue_token
from connectors.base import TransientError
from flows import settlement
from flows.hub import current_hub
from models import Customer
from models.db import session_scope
from tests.flows.test_audit_settle_flow import revision
from tests.flows.test_settlement import POLICY
from tests.rebate_support import clock_from, customer_id, publish, signed_order
from tests.support import signed_headers

D = dt.date


@pytest.fixture
def kangda(hub) -> int:
    """December over (5 January 2027), the test policy published; 康达's id (no finance
    code on file)."""
    clock_from(D(2027, 1, 5))
    publish(hub.db_url, POLICY)
    return customer_id(hub.db_url, "江苏康达医疗设备有限公司")


@pytest.fixture
def client(hub):
    """The API as a server runs it: a defect is the 500 the sender gets, not an exception."""
    with TestClient(create_app(hub.settings, launcher=None), raise_server_exceptions=False) as c:
        yield c


def fail_once(monkeypatch, owner, name: str, exc: Exception) -> list:
    """`owner.name` raising `exc` on its first call only; the calls are counted."""
    real = getattr(owner, name)
    calls: list = []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise exc
        return real(*args, **kwargs)
    monkeypatch.setattr(owner, name, failing_once)
    return calls


# --- the settle-month run, retried -----------------------------------------------------------

@pytest.mark.usefixtures("prefect_harness")
def test_a_settle_step_retried_after_finance_timed_out_once_says_it_stored_the_revision(
        hub, kangda, monkeypatch):
    """Finance drops the connection once while the flow's settle step sends December's
    vouchers; Prefect retries the step (same flow run) and it succeeds. The run stored r1
    itself, yet its result says the revision was stored by an earlier run and only finished
    now (第 1 版（此前已保存，本次补齐凭证草稿与对账单）) and its run_id is None ("nothing new
    stored by this call"): a retried step does not give the result the run would have given
    without the blip."""
    for name in ("settle_task", "documents_task"):  # retried at once, not after 10 s
        monkeypatch.setattr(settlement, name, getattr(settlement, name).with_options(
            retry_delay_seconds=0))
    signed_order(hub.db_url, kangda, D(2026, 12, 10), [("MON-M8", 1)])
    calls = fail_once(monkeypatch, current_hub().finance, "submit_vouchers",
                      TransientError("connection reset", provider="finance"))
    result = settlement.settle_month_flow("2026-12")
    assert len(calls) == 2  # the retry sent the batch, once
    drop = hub.settings.data_dir / "finance-drop" / "vouchers"
    assert sorted(p.name for p in drop.glob("*.json")) == ["RB-2026-12-r1.json"]
    assert result["documents"]["statements"] and result["documents"]["workbook"]
    # as the run says it without the blip
    assert result["message"].startswith("2026-12 返利结算第 1 版：1 行，合计 ¥256.00"), \
        result["message"]
    assert result["run_id"] == revision(hub.db_url, "2026-12", 1).id


def test_the_result_of_a_revision_sent_after_its_code_was_filled_in_says_what_its_vouchers_carry(
        hub, kangda, monkeypatch):
    """December's batch is prepared with 康达's hub number C000001 (no finance code yet) and
    finance is down; the clerk fills in 康达's finance code and runs again: the batch goes out
    as prepared, carrying C000001 (the statements and finance's status say so too), but the
    result no longer says 康达 未设财务客户编码、本批凭证的客户核算维度为系统编号: summarize's
    _missing_codes reads the code on file now, not the code the voucher carried, so finance
    is never told to map C000001 to the customer."""
    signed_order(hub.db_url, kangda, D(2026, 12, 10), [("MON-M8", 1)])

    def down(batch):
        raise TransientError("connection reset", provider="finance")
    monkeypatch.setattr(current_hub().finance, "submit_vouchers", down)
    with pytest.raises(TransientError):
        settlement.settle_month(current_hub(), "2026-12")
    monkeypatch.undo()
    with session_scope(hub.db_url) as s:
        s.get(Customer, kangda).finance_code = "K3-0001"
    result = settlement.settle_month(current_hub(), "2026-12")
    run = revision(hub.db_url, "2026-12", 1)
    assert run.voucher_ref == "DRAFT-RB-2026-12-r1"
    assert settlement.carried_codes(hub.db_url, run) == {kangda: f"C{kangda:06d}"}
    assert "江苏康达医疗设备有限公司未设财务客户编码，本批凭证的客户核算维度为系统编号" in result.message, \
        result.message


# --- bodies the API cannot read ----------------------------------------------------------------

HUGE_NUMBER = b"9" * 5000  # past Python's 4,300 digits for int(): json.loads raises ValueError


def test_a_signed_intent_order_with_a_huge_number_is_a_400_not_a_500(client):
    """The webhook reads its body itself (parse_order) and catches JSONDecodeError and
    RecursionError only: a number of 5,000 digits makes json.loads raise a plain ValueError,
    and the portal gets 500 internal_error for a body that is simply not acceptable."""
    body = b'{"event_id": "evt-huge", "rep_id": ' + HUGE_NUMBER + b"}"
    r = client.post("/webhooks/intent-orders", content=body, headers=signed_headers(body))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "malformed_json"


def test_a_json_body_with_a_huge_number_is_told_as_malformed_json_on_other_endpoints(hub, client):
    """The same body on /rebates/preview: FastAPI turns the ValueError into a bare 400 and
    api/errors.unreadable_body knows only UnicodeDecodeError and RecursionError, so the answer
    is the vague http_error 请求无法处理（400） instead of malformed_json as the webhook (and
    the commit's promise: "told so on every endpoint, as the webhook tells it")."""
    body = b'{"customer_id": ' + HUGE_NUMBER + b', "lines": []}'
    r = client.post("/rebates/preview", content=body, headers={
        "Content-Type": "application/json",
        "Authorization": f"Bearer {issue_token(hub.settings, 'rep-zhangwei')}"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "malformed_json", r.text


def test_the_documents_step_retried_after_writing_them_still_names_them(hub, kangda):
    """The settle-month run's documents step writes December's statements and workbook, then
    fails (say, on another month's revision) and is retried: the retry finds nothing left to
    write, and the run's result still names the documents of its revision, not none."""
    signed_order(hub.db_url, kangda, D(2026, 12, 10), [("MON-M8", 5)])
    stored = settlement.store_and_send(hub, "2026-12", documents=False)
    first = settlement.write_documents_left(hub, stored)
    assert first.made["statements"] and first.made["workbook"]
    again = settlement.write_documents_left(hub, stored)  # the step's retry
    assert again.made == first.made
    result = settlement.settlement_result(hub, again)
    assert result.documents == first.made
