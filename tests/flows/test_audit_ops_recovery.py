"""Audit: what the ops engineer sees when a settlement or an intent-order batch dies part-way
(a process killed at a step boundary, simulated by SystemExit raised once there), and whether
the next run (cron, `salesops settle --month`, the sweeper) finishes the job exactly once and
says so honestly."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from flows import settlement
from flows.settlement import (
    delivery_status,
    settle_month,
    unfinished_revisions,
)
from models import Effect, IntentOrder, Todo, utcnow
from models.base import SHANGHAI
from models.db import session_scope
from tests.flows.test_audit_settle_flow import clock_at, revision
from tests.flows.test_settlement import POLICY
from tests.rebate_support import clock_from, customer_id, publish, signed_order
from tests.support import (
    InlineLauncher,
    in_process_cli,
    order_payload,
    post_order,
    run_pending,
)

D = dt.date


class Killed(SystemExit):
    """The process dies here (kill -9, the machine restarting): nothing after it runs."""


@pytest.fixture
def kangda(hub):
    clock_from(D(2027, 1, 5))
    publish(hub.db_url, POLICY)
    return customer_id(hub.db_url, "江苏康达医疗设备有限公司")


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


def drop_files(hub) -> list[str]:
    return sorted(p.name for p in (hub.settings.data_dir / "finance-drop" / "vouchers")
                  .glob("*.json"))


def pdfs(hub, month: str) -> list[str]:
    return sorted(p.name for p in (hub.settings.data_dir / "settlements" / month).rglob("*.pdf"))


def once_then(fn, exc=Killed):
    """`fn`, but its first call dies before doing anything."""
    calls = []

    def wrapped(*a, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise exc(1)
        return fn(*a, **kw)
    return wrapped


# --- the settlement ---------------------------------------------------------------------------

def test_killed_between_store_and_vouchers_the_cli_finishes_it_once(hub, kangda, cli,
                                                                  monkeypatch):
    """The cron run is killed right after storing October r1, before its vouchers go out. The
    clerk runs `salesops settle --month 2026-10`: r1 is sent once, its statement written, the
    command says it finished the stored revision; a third run has nothing to do."""
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    monkeypatch.setattr(hub.finance, "submit_vouchers", once_then(hub.finance.submit_vouchers))
    with pytest.raises(Killed):
        settle_month(hub, "2026-10")
    r1 = revision(hub.db_url, "2026-10", 1)
    assert r1.voucher_ref is None and drop_files(hub) == []
    assert delivery_status(hub.db_url, r1)["state"] == "sending"
    code, out, err = cli("settle", "--month", "2026-10")
    assert code == 0, err
    assert out.splitlines()[0].startswith(
        "2026-10 返利结算第 1 版（此前已保存，本次补齐凭证草稿与对账单）：1 行，合计 ¥1,280.00"), out
    assert drop_files(hub) == ["RB-2026-10-r1.json"]
    assert len(pdfs(hub, "2026-10")) == 1
    assert delivery_status(hub.db_url, revision(hub.db_url, "2026-10", 1))["state"] == "sent"
    code, out, err = cli("settle", "--month", "2026-10")
    assert code == 0 and out.startswith("无新增变动"), out
    assert drop_files(hub) == ["RB-2026-10-r1.json"] and len(pdfs(hub, "2026-10")) == 1


def test_killed_after_finance_booked_the_batch_the_rerun_sends_the_same_once(hub, kangda, cli,
                                                                          monkeypatch):
    """Finance took RB-2026-10-r1, then the run died before recording it. The rerun sends
    the same batch under the same id (finance answers the same reference), no second batch,
    and the documents show that reference."""
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    real = hub.finance.submit_vouchers
    sent = []

    def booked_then_killed(batch):
        sent.append(batch.to_json_dict())
        reference = real(batch)
        if len(sent) == 1:
            raise Killed(1)
        return reference

    monkeypatch.setattr(hub.finance, "submit_vouchers", booked_then_killed)
    with pytest.raises(Killed):
        settle_month(hub, "2026-10")
    with session_scope(hub.db_url) as s:
        effect = s.exec(select(Effect).where(Effect.kind == "rebate_vouchers")).one()
        assert effect.status == "started"
    code, out, err = cli("settle", "--month", "2026-10")
    assert code == 0, err
    assert "凭证草稿已提交财务：DRAFT-RB-2026-10-r1" in out
    assert drop_files(hub) == ["RB-2026-10-r1.json"]
    stored = json.loads((hub.settings.data_dir / "finance-drop" / "vouchers"
                         / "RB-2026-10-r1.json").read_text(encoding="utf-8"))
    assert stored["batch"] == sent[0]


def test_killed_while_writing_statements_the_next_run_writes_them_and_sends_nothing(
        hub, kangda, cli, monkeypatch):
    """The run died while laying out the statements (vouchers out). The revision's status
    says the vouchers are out and the statements not yet; the next run writes them, sends no
    second batch, and the status then says 凭证已发送."""
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    monkeypatch.setattr(settlement, "render_statements",
                        once_then(settlement.render_statements))
    with pytest.raises(Killed):
        settle_month(hub, "2026-10")
    r1 = revision(hub.db_url, "2026-10", 1)
    status = delivery_status(hub.db_url, r1)
    assert status["label"] == "凭证已发送，对账单生成中"
    assert unfinished_revisions(hub.db_url, "2026-10") == [r1.id]
    code, _out, err = cli("settle", "--month", "2026-10")
    assert code == 0, err
    assert drop_files(hub) == ["RB-2026-10-r1.json"] and len(pdfs(hub, "2026-10")) == 1
    assert delivery_status(hub.db_url, revision(hub.db_url, "2026-10", 1))["label"] == "凭证已发送"


@pytest.mark.usefixtures("prefect_harness")
def test_the_next_scheduled_run_says_it_wrote_a_crashed_months_statements(hub, kangda,
                                                                         monkeypatch):
    """November's run was killed while writing its statements (its vouchers were out). On
    5 January the scheduled run settles December and its statements step also writes
    November's statements and workbook — but the run's result (the table description the
    engineer reads) says nothing of November, although docs/operations.md promises that a
    later run of any month 'also sends what such revisions of other months still lack …
    and says so in its result (the run's table description …)'; `salesops settle` says
    `2026-11 第 1 版（…）：对账单与明细` in the same case."""
    signed_order(hub.db_url, kangda, D(2026, 11, 10), [("MON-M8", 5)])
    clock_at(dt.datetime(2026, 12, 5, 2, 0, tzinfo=SHANGHAI))
    monkeypatch.setattr(settlement, "render_statements",
                        once_then(settlement.render_statements))
    with pytest.raises(Killed):
        settle_month(hub, "2026-11")
    november = revision(hub.db_url, "2026-11", 1)
    assert november.voucher_ref == "DRAFT-RB-2026-11-r1" and pdfs(hub, "2026-11") == []
    signed_order(hub.db_url, kangda, D(2026, 12, 10), [("MON-M8", 1)])
    clock_at(dt.datetime(2027, 1, 5, 2, 0, tzinfo=SHANGHAI))
    result = settlement.settle_month_flow()  # the deployment's run: no month given
    assert result["month"] == "2026-12"
    assert len(pdfs(hub, "2026-11")) == 1  # the run did write November's statement …
    assert unfinished_revisions(hub.db_url, None) == []
    # … and should say so, as the CLI does
    assert "2026-11 第 1 版（1 行，合计 ¥1,280.00）：对账单与明细" in result["message"], (
        result["message"])


# --- the intent-order batch -------------------------------------------------------------------

@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None)) as c:
        yield c


def lease_runs_out(db_url: str) -> None:
    """Ten minutes pass: the dead run's leases are over."""
    with session_scope(db_url) as s:
        for order in s.exec(select(IntentOrder)):
            if order.claimed_until is not None:
                order.claimed_until = utcnow() - dt.timedelta(seconds=1)
                s.add(order)


def outbox(hub) -> list:
    return sorted((hub.settings.data_dir / "outbox").rglob("*.eml"))


def effects(db_url: str) -> dict[str, tuple[str, int]]:
    with session_scope(db_url) as s:
        return {e.kind: (e.status, e.attempts) for e in s.exec(select(Effect))}


@pytest.mark.usefixtures("prefect_harness")
def test_a_batch_killed_before_the_quote_mail_is_finished_once_by_the_sweeper(hub, client,
                                                                             monkeypatch):
    """The run dies with the quote PDF written and the signing request made, before the quote
    mail. The order stays 处理中 under the dead run's lease; once it runs out the sweeper
    runs it again: one signing request (not asked again), one mail, the order 已报价 after
    its second attempt."""
    oid = post_order(client, order_payload()).json()["order_id"]
    monkeypatch.setattr(hub.mailer, "send", once_then(hub.mailer.send))
    with pytest.raises(SystemExit):
        run_pending(hub)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        assert (order.status, order.attempts) == ("processing", 1)
    assert effects(hub.db_url) == {"signing_request": ("done", 1), "quote_email": ("started", 1)}
    from flows.sweeper import sweep
    assert sweep(hub, InlineLauncher(), min_age_seconds=0)["requeued"] == 0  # lease still held
    lease_runs_out(hub.db_url)
    assert sweep(hub, InlineLauncher(), min_age_seconds=0)["requeued"] == 1
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        assert (order.status, order.attempts, order.claimed_by) == ("quoted", 2, None)
    assert effects(hub.db_url) == {"signing_request": ("done", 1), "quote_email": ("done", 2)}
    assert len(outbox(hub)) == 1


@pytest.mark.usefixtures("prefect_harness")
def test_a_mail_sent_just_before_the_run_died_is_not_sent_again(hub, client, monkeypatch):
    """The mail went out, then the run died before recording it: the rerun sends it under
    the same key, which the outbox (as an SMTP relay by its Message-ID) collapses."""
    oid = post_order(client, order_payload()).json()["order_id"]
    real = hub.mailer.send
    calls = []

    def sent_then_killed(mail):
        calls.append(mail.idempotency_key)
        message_id = real(mail)
        if len(calls) == 1:
            raise Killed(1)
        return message_id

    monkeypatch.setattr(hub.mailer, "send", sent_then_killed)
    with pytest.raises(SystemExit):
        run_pending(hub)
    lease_runs_out(hub.db_url)
    from flows.sweeper import sweep
    sweep(hub, InlineLauncher(), min_age_seconds=0)
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, oid).status == "quoted"
    assert calls == [calls[0], calls[0]] and len(outbox(hub)) == 1


@pytest.mark.usefixtures("prefect_harness")
def test_an_order_whose_fifth_attempt_died_is_blocked_with_a_todo_for_the_manager(hub,
                                                                                 client):
    """The fifth attempt's run vanished: nothing would retry the order, so the sweeper blocks
    it with a to-do for the rep's manager (mailed), as after a fifth failure."""
    oid = post_order(client, order_payload()).json()["order_id"]
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        order.status, order.attempts = "processing", 5
        order.claimed_by, order.claimed_until = "dead-run", utcnow() - dt.timedelta(seconds=1)
        s.add(order)
    from flows.sweeper import sweep
    launcher = InlineLauncher()
    result = sweep(hub, launcher, min_age_seconds=0)
    assert result["blocked"] == 1
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        assert order.status == "blocked" and order.claimed_by is None
        assert "5 次尝试均未完成" in order.error
        todo = s.exec(select(Todo).where(Todo.order_id == oid)).one()
        assert todo.kind == "order_blocked" and todo.assignee_id == "mgr-east"
    # the inbox event's run (still pending) does not take the blocked order up again
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, oid).status == "blocked"


def test_a_confirmation_killed_before_its_statements_is_finished_by_settle(hub, kangda, cli,
                                                                          monkeypatch):
    """Finance confirms October r1 at the CLI; the process dies before the confirmed
    statements are written. As the docs say, `salesops settle --month 2026-10` finishes them
    (confirming again is refused as made); the confirmed statement is written once."""
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    code, _, err = cli("settle", "--month", "2026-10")
    assert code == 0, err
    monkeypatch.setattr(settlement, "render_statements",
                        once_then(settlement.render_statements))
    code, _, _ = cli("settle", "--month", "2026-10", "--confirm", "1", "--by", "finance-01")
    assert code == 1  # the process died (SystemExit from the kill)
    r1 = revision(hub.db_url, "2026-10", 1)
    assert r1.status == "confirmed"
    assert delivery_status(hub.db_url, r1)["state"] == "sending"
    code, _, err = cli("settle", "--month", "2026-10", "--confirm", "1", "--by", "finance-01")
    assert code != 0 and "已" in err  # refused as made
    code, _out, err = cli("settle", "--month", "2026-10")
    assert code == 0, err
    confirmed = sorted(p.name for p in (hub.settings.data_dir / "settlements" / "2026-10"
                                        / "r1-confirmed").glob("*.pdf"))
    assert len(confirmed) == 1 and confirmed[0].startswith("RSQ-202610-r1-")
    assert drop_files(hub) == ["RB-2026-10-r1.json"]
    assert delivery_status(hub.db_url, revision(hub.db_url, "2026-10", 1))["state"] == "sent"


def blocked_by_esign(hub, client, monkeypatch, payload=None) -> str:
    """An order whose first run e签宝 refuses (app not authorised): blocked, with a to-do for
    the rep's manager; e签宝 answers again afterwards. Its id."""
    from connectors.base import PermanentError

    oid = post_order(client, payload or order_payload()).json()["order_id"]
    real_signing = hub.esign.create_signing

    def refused(request):
        raise PermanentError("e签宝 refused: app not authorised", provider="esign", code="401")

    monkeypatch.setattr(hub.esign, "create_signing", refused)
    run_pending(hub)
    monkeypatch.setattr(hub.esign, "create_signing", real_signing)
    return oid


def quote_mail_without_address(hub, monkeypatch) -> None:
    """The customer's quote mail is refused for good (no such mailbox); staff mails go out."""
    from connectors.base import PermanentError

    real_send = hub.mailer.send

    def no_address(mail):
        if mail.idempotency_key.startswith("quote:"):
            raise PermanentError("550 mailbox unavailable", provider="smtp", code="550")
        return real_send(mail)

    monkeypatch.setattr(hub.mailer, "send", no_address)


@pytest.mark.usefixtures("prefect_harness")
def test_an_order_blocked_again_after_the_documented_rerun_tells_the_manager_again(
        hub, client, monkeypatch):
    """docs/operations.md: a provider refuses (bad account) → the order is blocked with a
    to-do; 'fix the data or account, set the order back to failed and run intent-order with
    order_ids=["IO…"]'. The manager's to-do says e签宝 refused; he gets the account fixed and
    marks it done; ops runs the order again — now the quote mail is refused (no address on
    file). The order is blocked again, for another reason, but nobody is told: the to-do
    (kind order_blocked, key order:<id>) is found done with the old reason, and its mail is an
    effect already done, so no mail goes out. The order sits blocked with every to-do done."""
    from flows.intent_order import process_intent_orders
    from flows.todos import complete_todo
    from models import Staff

    oid = blocked_by_esign(hub, client, monkeypatch)
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, oid).status == "blocked"
        todo = s.exec(select(Todo).where(Todo.order_id == oid,
                                         Todo.kind == "order_blocked")).one()
        todo_id, manager = todo.id, s.get(Staff, todo.assignee_id)
    complete_todo(hub, todo_id, manager, None, "e签宝账号已重新授权")
    # the account is fixed; the customer's mail address turns out to be missing too
    quote_mail_without_address(hub, monkeypatch)
    told_before = len(outbox(hub))
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        order.status = "failed"  # as the docs say
        s.add(order)
    process_intent_orders(order_ids=[oid])
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        assert order.status == "blocked" and "发送报价邮件" in order.error
        open_todos = s.exec(select(Todo).where(Todo.order_id == oid, Todo.status == "open",
                                               Todo.kind == "order_blocked")).all()
    assert len(outbox(hub)) > told_before, "the manager is not mailed about the new block"
    assert open_todos, "blocked again, but the manager's only to-do about it is done"
    assert "发送报价邮件" in open_todos[0].body


@pytest.mark.usefixtures("prefect_harness")
def test_an_order_blocked_again_while_its_to_do_is_open_mails_the_new_reason(
        hub, client, monkeypatch):
    """e签宝 refuses (the manager is mailed the to-do); before he has done it, ops fixes the
    account and runs the order again — now the customer's quote mail is refused. The open
    to-do's text says the new reason, and the manager is mailed that news (a mail of its
    own): a to-do that only changed on the page would leave him chasing the old cause."""
    from flows.intent_order import process_intent_orders

    oid = blocked_by_esign(hub, client, monkeypatch)
    quote_mail_without_address(hub, monkeypatch)
    told_before = len(outbox(hub))
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        order.status = "failed"  # as docs/operations.md says
        s.add(order)
    process_intent_orders(order_ids=[oid])
    with session_scope(hub.db_url) as s:
        [todo] = s.exec(select(Todo).where(Todo.order_id == oid,
                                           Todo.kind == "order_blocked")).all()
        assert todo.status == "open" and "发送报价邮件" in todo.body
    mails = outbox(hub)[told_before:]
    assert len(mails) == 1, "the manager is mailed the new reason, once"
    process_intent_orders(order_ids=[oid])  # a run finding it blocked for the same reason
    assert len(outbox(hub)) == told_before + 1
