"""Audit of the monthly settlement as it runs in production (the `settle-month` flow, its
deployment and `salesops settle`): paths that must agree, shown where they do not. Each test
here fails on the code as audited; what was checked and found right is in the audit report."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from connectors.base import TransientError
from flows.hub import current_hub
from flows.settlement import (
    compute_month, settle_month, store_settlement, unfinished_revisions,
)
from models import SettlementRun
from models.base import SHANGHAI
from models.db import session_scope
from tests.flows.test_settlement import POLICY
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order
from tests.support import in_process_cli

D = dt.date


def clock_at(instant: dt.datetime) -> None:
    """The business clock at `instant`, still running."""
    from models import set_clock

    start = dt.datetime.now(dt.UTC)
    set_clock(lambda: instant + (dt.datetime.now(dt.UTC) - start))


@pytest.fixture
def kangda(hub):
    clock_from(D(2027, 1, 5))
    publish(hub.db_url, POLICY)
    return customer_id(hub.db_url, "江苏康达医疗设备有限公司")


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


def revision(db_url: str, month: str, number: int) -> SettlementRun:
    with session_scope(db_url) as s:
        return s.exec(select(SettlementRun).where(SettlementRun.month == month,
                                                  SettlementRun.revision == number)).one()


@pytest.mark.usefixtures("prefect_harness")
def test_the_next_scheduled_run_leaves_a_crashed_months_stored_vouchers_unsent_unsaid(hub, kangda):
    """November's run crashed (machine restarted) after storing its lines, before sending its
    vouchers: the hub counts November's ¥1,280.00 as paid from now on. The next scheduled run
    (2027-01-05 02:00 Asia/Shanghai, settling December) succeeds and neither sends November's
    batch nor says that November is unfinished: finance never receives RB-2026-11-r1 unless
    someone happens to look at the crashed run of a month ago."""
    from flows.settlement import settle_month_flow

    signed_order(hub.db_url, kangda, D(2026, 11, 10), [("MON-M8", 5)])
    clock_at(dt.datetime(2026, 12, 5, 2, 0, tzinfo=SHANGHAI))
    # what a run that crashed between storing the lines and sending the vouchers leaves
    store_settlement(hub.db_url, compute_month(hub.db_url, "2026-11"), "flow:settle-month",
                     "crashed-flow-run")
    signed_order(hub.db_url, kangda, D(2026, 12, 10), [("MON-M8", 1)])
    clock_at(dt.datetime(2027, 1, 5, 2, 0, tzinfo=SHANGHAI))
    result = settle_month_flow()  # the deployment's run: no month given
    assert result["month"] == "2026-12"
    november = revision(hub.db_url, "2026-11", 1)
    drop = hub.settings.data_dir / "finance-drop" / "vouchers"
    # either the run finishes what is stored (safe: one batch per month and revision), or its
    # result, which the engineer reads, says November is still unsent
    assert (november.voucher_ref is not None and (drop / "RB-2026-11-r1.json").exists()
            ) or "2026-11" in result["message"], (
        f"2026-11 r1 voucher_ref={november.voucher_ref!r}, "
        f"drop folder={sorted(p.name for p in drop.glob('*.json'))}, "
        f"message={result['message']!r}")
    # it does both: sent, its documents written by the run's documents step, and said
    assert november.voucher_ref == "DRAFT-RB-2026-11-r1"
    assert result["message"].startswith("2026-12 返利结算第 1 版：1 行，合计 ¥256.00；")
    assert result["message"].endswith(
        "。此前已保存、本次补齐的版本：2026-11 第 1 版（1 行，合计 ¥1,280.00）："
        "凭证草稿 DRAFT-RB-2026-11-r1、对账单与明细")
    assert unfinished_revisions(hub.db_url, None) == []


def test_a_run_that_also_sends_an_earlier_unsent_revision_names_only_its_own(hub, kangda, cli,
                                                                            monkeypatch):
    """October r1 (¥1,280.00) was stored but finance was down; the failed run said 第 1 版 …
    凭证草稿尚未提交财务. A late return then comes in and the clerk runs October again: r2
    (−¥256.00) is stored and BOTH batches go to finance in this run, but the command (as the
    flow's table, which is built from the same summary) names r2 only: finance finds
    RB-2026-10-r1 in its folder that nobody was told about, and the clerk is never told that
    r1 went out."""
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    finance = current_hub().finance
    real = finance.submit_vouchers

    def down(batch):
        raise TransientError("finance unreachable", provider="finance")

    monkeypatch.setattr(finance, "submit_vouchers", down)
    with pytest.raises(TransientError):
        settle_month(current_hub(), "2026-10")
    monkeypatch.setattr(finance, "submit_vouchers", real)
    return_goods(hub.db_url, o1, 1, 1, D(2026, 10, 25))
    code, out, err = cli("settle", "--month", "2026-10")
    assert code == 0, err
    drop = hub.settings.data_dir / "finance-drop" / "vouchers"
    sent = sorted(p.name for p in drop.glob("*.json"))
    assert sent == ["RB-2026-10-r1.json", "RB-2026-10-r2.json"]  # both went out in this run
    assert revision(hub.db_url, "2026-10", 1).voucher_ref == "DRAFT-RB-2026-10-r1"
    # … and what the clerk reads should say so
    first = out.splitlines()[0]
    assert first.startswith("2026-10 返利结算第 2 版：1 行，合计 -¥256.00；"), out
    assert first.endswith("。此前已保存、本次补齐的版本：2026-10 第 1 版（1 行，合计 "
                          "¥1,280.00）：凭证草稿 DRAFT-RB-2026-10-r1、对账单与明细"), out


def test_a_crashed_months_vouchers_finance_cannot_take_yet_are_said_not_sent(hub, kangda,
                                                                              monkeypatch):
    """November's stored revision (its run crashed) cannot reach finance when December is
    settled: December's own batch goes out, its result says November is still not sent and
    how to finish it, and November keeps why (the finance person's settlement page)."""
    signed_order(hub.db_url, kangda, D(2026, 11, 10), [("MON-M8", 5)])
    clock_at(dt.datetime(2026, 12, 5, 2, 0, tzinfo=SHANGHAI))
    store_settlement(hub.db_url, compute_month(hub.db_url, "2026-11"), "flow:settle-month",
                     "crashed-flow-run")
    signed_order(hub.db_url, kangda, D(2026, 12, 10), [("MON-M8", 1)])
    clock_at(dt.datetime(2027, 1, 5, 2, 0, tzinfo=SHANGHAI))
    finance = current_hub().finance
    real = finance.submit_vouchers

    def november_down(batch):
        if batch.batch_id.startswith("RB-2026-11"):
            raise TransientError("connection reset", provider="finance")
        return real(batch)

    monkeypatch.setattr(finance, "submit_vouchers", november_down)
    result = settle_month(current_hub(), "2026-12")
    assert revision(hub.db_url, "2026-12", 1).voucher_ref == "DRAFT-RB-2026-12-r1"
    november = revision(hub.db_url, "2026-11", 1)
    assert november.voucher_ref is None and november.delivery_error
    assert result.message.endswith(
        f"。此前已保存、仍未完成的版本：2026-11 第 1 版（1 行，合计 ¥1,280.00）："
        f"{november.delivery_error}，排除故障后执行 salesops settle --month 2026-11")
    assert unfinished_revisions(hub.db_url, None) == [november.id]


def test_a_revision_already_sent_is_not_said_again(hub, kangda):
    """October sent its vouchers (its documents left to the flow's next step): November's run
    has nothing of October to send, and says nothing of it."""
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    settle_month(current_hub(), "2026-10", documents=False)
    signed_order(hub.db_url, kangda, D(2026, 11, 10), [("MON-M8", 1)])
    result = settle_month(current_hub(), "2026-11", documents=False)
    assert "此前已保存" not in result.message, result.message


@pytest.mark.parametrize("due, started, month", [
    # on time: 2026-12-05 02:00 Asia/Shanghai is 2026-12-04 18:00 UTC
    ("2026-12-04T18:00:00+00:00", "2026-12-04T18:00:05+00:00", "2026-11"),
    # the worker was down and caught up on 2 January: still November
    ("2026-12-04T18:00:00+00:00", "2027-01-02T01:00:00+00:00", "2026-11"),
    ("2027-01-04T18:00:00+00:00", "2027-01-04T18:00:00+00:00", "2026-12"),
])
def test_a_scheduled_run_settles_the_month_it_was_due_for(due, started, month):
    from types import SimpleNamespace

    from flows.settlement import month_due

    clock_at(dt.datetime.fromisoformat(started))
    run = SimpleNamespace(deployment_id="d-1", expected_start_time=dt.datetime.fromisoformat(due))
    assert month_due(run) == month
    # run by hand (no deployment): last month as of today
    today = dt.datetime.fromisoformat(started).astimezone(SHANGHAI).date()
    assert month_due(SimpleNamespace(deployment_id=None, expected_start_time=None)) == \
        f"{today.replace(day=1) - dt.timedelta(days=1):%Y-%m}"
