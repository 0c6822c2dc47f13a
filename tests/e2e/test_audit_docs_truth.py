"""Audit: what README.md and docs/ promise the clerk, finance and the ops engineer, checked
against the code as it is now. Each test asserts the documented behaviour."""
from __future__ import annotations

import signal

import pytest

from tests.support import in_process_cli


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


# --- 1. serve starts a hub whose connectors cannot be built ---------------------------------

class _Started(Exception):
    pass


@pytest.mark.parametrize("env, named", [
    ({"SALESOPS_NOTIFY_BACKEND": "wecom"}, "SALESOPS_WECOM_ROBOT_KEY"),
    ({"SALESOPS_NOTIFY_BACKEND": "dingtalk"}, "SALESOPS_DINGTALK_ACCESS_TOKEN"),
    ({"SALESOPS_ESIGN_BACKEND": "esign"}, "SALESOPS_ESIGN_APP_SECRET"),
    ({"SALESOPS_REGISTRY_BACKEND": "tianyancha"}, "SALESOPS_TIANYANCHA_TOKEN"),
    ({"SALESOPS_INVENTORY_BACKEND": "rest"}, "SALESOPS_ERP_URL"),
    ({"SALESOPS_FINANCE_BACKEND": "rest"}, "SALESOPS_FINANCE_URL"),
], ids=["wecom", "dingtalk", "esign", "tianyancha", "erp", "finance"])
def test_serve_refuses_a_backend_chosen_without_what_it_needs(cli, monkeypatch, env, named):
    # docs/configuration.md, *Connectors*: "A provider's backend chosen without what it needs
    # is refused when the hub starts, naming the variables (`tianyancha` needs
    # SALESOPS_TIANYANCHA_TOKEN; `esign` the app id and secret; `wecom` the robot key;
    # `dingtalk` the access token; a `rest` backend its URL)". The check lives in
    # flows/hub.py (build_hub: _credentials, _remote_url), and `salesops serve`
    # (deployments/cli.py: cmd_serve) never builds the hub: it migrates and starts the
    # Prefect server, the served deployments and the API. The hub then accepts every
    # webhook (202) while each intent-order and inbox-sweeper run fails at current_hub() —
    # no order is ever quoted, no to-do told, and nobody is told why but the Prefect UI.
    from connectors.settings import get_settings
    from deployments import cli as cli_module, stack

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    started = []

    class FakeStack:
        def __init__(self, *a, **kw):
            self.logs = kw.get("data_dir") or a[0]

        def start(self):
            started.append(True)
            raise _Started("the stack was started")

        def stop(self):
            pass

    monkeypatch.setattr(stack, "LocalStack", FakeStack)
    monkeypatch.setattr(cli_module, "_port_taken", lambda host, port: False)
    monkeypatch.setattr(signal, "pthread_sigmask", lambda *a: set())
    try:
        code, _out, err = cli("serve")
    except _Started:
        code, err = None, ""
    assert not started, f"`salesops serve` started the hub with {env} and no {named}"
    assert code not in (0, None), (code, err)
    assert named in err, err


# --- 2. an assignee setting naming nobody: only purchasing's is said in words ----------------

@pytest.fixture
def client(hub):
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(hub.settings, launcher=None)) as c:
        yield c


def _no_retry_waits(monkeypatch) -> None:
    """The steps' own Prefect retries, without their 2/10/30 s waits."""
    from flows import intent_order, signing

    monkeypatch.setattr(intent_order, "STEPS", [step.with_options(retry_delay_seconds=0)
                                                for step in intent_order.STEPS])
    for name in ("archive_signed_quotes", "request_invoices", "mail_signed_quotes"):
        monkeypatch.setattr(signing, name,
                            getattr(signing, name).with_options(retry_delay_seconds=0))


@pytest.mark.usefixtures("prefect_harness")
def test_legal_assignee_naming_nobody_blocks_the_new_customers_order_naming_the_setting(
        hub, client, monkeypatch):
    # docs/operations.md (Running) and docs/configuration.md (*The seller and the people*):
    # the assignee settings must name staff on file; `serve` only warns, and "their to-dos
    # could not be stored (a short order would be blocked for it)": for
    # SALESOPS_PURCHASING_ASSIGNEE the order is `blocked` at once with `库存检查：采购预警的
    # 接收人 SALESOPS_PURCHASING_ASSIGNEE=… 不在员工名单中…` and the table of *When something
    # goes wrong* says what to do. SALESOPS_LEGAL_ASSIGNEE naming nobody (the clerk left,
    # a typo) is not checked (flows/customer_registry.py: open_legal_review passes
    # hub.settings.legal_assignee straight to open_todo): the to-do's foreign key fails, the
    # order of every new customer is `failed` with 客户核验：系统内部错误（详情已记入运行日志）,
    # retried by the sweeper for a quarter of an hour (5 runs × 4 task tries, each making the
    # customer file again in a rolled-back transaction) and finally blocked with the same
    # words — nobody is told what to fix.
    from models import IntentOrder
    from models.db import session_scope
    from tests.support import order_payload, post_order, run_pending

    _no_retry_waits(monkeypatch)
    hub.settings.legal_assignee = "legal-99"  # nobody on file
    oid = post_order(client, order_payload(name="安徽济民医疗器械有限责任公司",
                                           lines=[("PUMP-VP5", 4)])).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        status, error = order.status, order.error or ""
    if status == "quoted":  # or the review went to someone on file, who was told why
        return
    assert "SALESOPS_LEGAL_ASSIGNEE" in error, (status, error)
    assert status == "blocked", (status, error)


@pytest.mark.usefixtures("prefect_harness")
def test_finance_assignee_naming_nobody_says_so_on_the_signed_order(hub, client, monkeypatch):
    # Same for SALESOPS_FINANCE_ASSIGNEE (flows/signing.py: request_invoice and the
    # signing_blocked to-do both pass hub.settings.finance_assignee to open_todo unchecked).
    # A customer signs; signing-completed sends the invoice request to finance, then fails to
    # store the 开票准备 to-do (foreign key): the order stays 已签约, its error says
    # 系统内部错误 or nothing, and the sweeper starts the completion again every lease, for
    # ever — the to-do that would tell someone (signing_blocked) goes to the same nobody.
    from models import IntentOrder
    from models.db import session_scope
    from tests.support import run_pending, sign_on_the_builtin_page

    oid, _quote, page = sign_on_the_builtin_page(hub, client)
    assert page.status_code == 200, page.text
    _no_retry_waits(monkeypatch)
    hub.settings.finance_assignee = "finance-99"  # nobody on file
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        status, error = order.status, order.error or ""
    if status == "invoicing":  # or the to-do went to someone on file, who was told why
        return
    assert "SALESOPS_FINANCE_ASSIGNEE" in error, (status, error)
    # and somebody on file is told: the signing_blocked to-do, saying which setting to fix
    from models import Staff, Todo
    from sqlmodel import select

    with session_scope(hub.db_url) as s:
        todos = s.exec(select(Todo).where(Todo.order_id == oid,
                                          Todo.kind == "signing_blocked")).all()
        assert todos and all(s.get(Staff, t.assignee_id) for t in todos), todos
        assert all("SALESOPS_FINANCE_ASSIGNEE=finance-99" in t.body for t in todos), todos


# --- 3. an order without a rep that is blocked: its to-do goes to a literal "admin" ----------

def _no_admin_called_admin(hub) -> None:
    """A company's staff as imported: its administrator's id is not the literal "admin"
    (the sample data's). The seeded admin gets another id."""
    import sqlalchemy as sa

    from models.db import get_engine

    with get_engine(hub.db_url).begin() as conn:
        conn.execute(sa.text("DELETE FROM staff WHERE id = 'admin'"))


def _erp_refuses(hub, monkeypatch) -> None:
    from connectors.base import PermanentError

    def refuse(skus):
        raise PermanentError("erp refused the request (401): token expired", provider="erp",
                             code="401")
    monkeypatch.setattr(hub.inventory, "availability", refuse)


@pytest.mark.usefixtures("prefect_harness")
def test_an_order_without_a_rep_that_is_blocked_is_blocked_with_a_todo(hub, client,
                                                                       monkeypatch):
    # docs/operations.md, *When something goes wrong*: a provider that refuses (the ERP's 401)
    # → "every order of the batch is `blocked` at once ... and a to-do"; docs/customers.md:
    # an order sent without a rep (by a system) is for `suspect_fallback_decider`.
    # flows/intent_order.py: settle_outcome gives the order_blocked to-do to
    # `(rep.manager_id if rep and rep.manager_id else order.rep_id) or "admin"` — a literal
    # staff id of the sample data. On a hub whose staff has no one with the id "admin", the
    # to-do's foreign key fails inside settle_outcome: the run dies after its steps, the
    # order stays `processing`, claimed, without an error or a to-do; the sweeper takes it
    # again every lease (10 min) until its attempts are used up, and then block_abandoned
    # dies the same way (next test).
    from models import IntentOrder, Todo
    from models.db import session_scope
    from sqlmodel import select
    from tests.support import order_payload, post_order, run_pending

    _no_retry_waits(monkeypatch)
    _no_admin_called_admin(hub)
    _erp_refuses(hub, monkeypatch)
    payload = order_payload()
    payload.pop("rep_id", None)  # a system's order: no rep
    oid = post_order(client, payload).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        todos = s.exec(select(Todo).where(Todo.order_id == oid,
                                          Todo.kind == "order_blocked")).all()
        status, error = order.status, order.error
    assert status == "blocked", (status, error)
    assert todos, "nobody was given the blocked order"


def test_the_sweeper_goes_on_when_an_abandoned_order_cannot_be_blocked(hub, client):
    # docs/operations.md: the inbox-sweeper, every minute, dispatches what waited, retries
    # failed orders and tells the untold to-dos; "an order whose 5th attempt crashed is
    # `blocked` with a to-do". flows/sweeper.py: sweep() calls block_abandoned first and
    # nothing guards it: one rep-less order out of attempts (its to-do for the literal
    # "admin", previous test) makes every sweeper run fail before dispatch_pending,
    # requeue_stalled and tell_untold — every webhook accepted while Prefect was down waits
    # for ever, no failed order is retried, no failed to-do mail is sent again.
    import datetime as dt

    from flows.sweeper import sweep
    from models import InboxEvent, IntentOrder, utcnow
    from models.db import session_scope
    from sqlmodel import select
    from tests.support import InlineLauncher, order_payload, post_order

    _no_admin_called_admin(hub)
    payload = order_payload()
    payload.pop("rep_id", None)
    stuck = post_order(client, payload).json()["order_id"]
    waiting = post_order(client, order_payload()).json()["order_id"]
    long_ago = utcnow() - dt.timedelta(hours=1)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, stuck)  # its 5th run vanished (crashed) an hour ago
        order.status, order.attempts = "processing", hub.settings.order_max_attempts
        order.claimed_by, order.claimed_until = "crashed-run", long_ago
        s.add(order)
        for event in s.exec(select(InboxEvent)):
            event.received_at = long_ago
            event.status = "done" if event.subject_id == stuck else "pending"
            s.add(event)

    class Recorder(InlineLauncher):
        def launch(self, deployment, parameters, idempotency_key):
            self.launched.append((deployment, parameters, idempotency_key))
            return f"run-{len(self.launched)}"

    launcher = Recorder()
    try:
        sweep(hub, launcher)
    except Exception as exc:  # noqa: BLE001 - that is the finding
        pytest.fail(f"the sweeper run fails ({type(exc).__name__}: {str(exc)[:200]}) and "
                    "dispatches nothing")
    launched = [oid for _, params, _ in launcher.launched for oid in params.get("order_ids", [])]
    assert waiting in launched, launcher.launched


@pytest.mark.usefixtures("prefect_harness")
def test_a_failing_sweeper_part_does_not_stop_the_others_and_the_run_says_so(
        hub, client, monkeypatch, caplog):
    # whatever part fails (here block_abandoned, on a defect nobody foresaw), the others are
    # done: the waiting webhook is dispatched; the failure is logged with its traceback and
    # the inbox-sweeper run ends failed, naming the part (ops see it in the Prefect UI)
    import datetime as dt

    from flows import sweeper
    from models import InboxEvent, utcnow
    from models.db import session_scope
    from sqlmodel import select
    from tests.support import InlineLauncher, order_payload, post_order

    waiting = post_order(client, order_payload()).json()["order_id"]
    with session_scope(hub.db_url) as s:
        for event in s.exec(select(InboxEvent)):
            event.received_at = utcnow() - dt.timedelta(hours=1)
            s.add(event)

    def defect(hub):
        raise ZeroDivisionError("a defect nobody foresaw")

    class Recorder(InlineLauncher):
        launched_here: list = []

        def launch(self, deployment, parameters, idempotency_key):
            self.launched_here.append(parameters)
            return f"run-{len(self.launched_here)}"

    monkeypatch.setattr(sweeper, "block_abandoned", defect)
    result = sweeper.sweep(hub, Recorder())
    assert result["failed"] == ["block_abandoned"], result
    assert [waiting] == [oid for p in Recorder.launched_here for oid in p.get("order_ids", [])]
    assert "a defect nobody foresaw" in caplog.text  # the traceback, for the engineer
    monkeypatch.setattr(sweeper, "PrefectLauncher", Recorder)
    with pytest.raises(RuntimeError, match="block_abandoned"):
        sweeper.sweep_inbox(min_age_seconds=0)


@pytest.mark.usefixtures("prefect_harness")
def test_a_registry_change_with_a_risk_assignee_naming_nobody_goes_to_sales_ops(hub):
    # docs/configuration.md: SALESOPS_RISK_ASSIGNEE gets the registry changes of customers.
    # Naming nobody on file (the clerk left), the daily registry-watch must not fail on the
    # to-do's foreign key (the file would not be refreshed, the revocation not kept, every
    # day): the change is kept and its alert goes to sales-ops (SALESOPS_SUSPECT_FALLBACK_
    # DECIDER), told which setting to correct, as a notice refused for good is.
    import dataclasses

    from flows.registry_watch import watch_registry
    from models import Customer, Todo
    from models.db import session_scope
    from sqlmodel import select

    class Revoked:  # the registry now says 康达 is revoked
        def __init__(self, registry):
            self.registry = registry

        def lookup(self, keyword):
            record = self.registry.lookup(keyword)
            if record and record.legal_name == "江苏康达医疗设备有限公司":
                return dataclasses.replace(record, status="吊销")
            return record

    hub.settings.risk_assignee = "risk-99"  # nobody on file
    hub.registry = Revoked(hub.registry)
    summary = watch_registry(limit=10)
    assert summary["changes"] == 1 and not summary["failed"] and not summary["blocked"], summary
    with session_scope(hub.db_url) as s:
        customer = s.exec(select(Customer).where(
            Customer.legal_name == "江苏康达医疗设备有限公司")).one()
        todo = s.exec(select(Todo).where(Todo.kind == "registry_change")).one()
    assert customer.status == "吊销"
    assert todo.assignee_id == hub.settings.suspect_fallback_decider, todo.assignee_id
    assert "SALESOPS_RISK_ASSIGNEE=risk-99" in todo.body and "吊销" in todo.body, todo.body
