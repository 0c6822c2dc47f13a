"""A page of the finance sync refused, as the finance clerk at `salesops receivables sync` and
the ops engineer looking at the `receivables-sync` flow run read it: in Chinese, every problem
under its field path and record, that nothing of the page was written (the pages before it
are kept) and how to go on; the CLI exits 2. Finance is its REST simulator, two records a
page: the first page is good, the second is refused."""
from __future__ import annotations

import datetime as dt

import pytest
from pydantic import SecretStr

from flows.hub import build_hub, use_hub
from flows.sales_facts import sync_receivables_flow
from models import ConnectorCursor
from models.db import session_scope
from tests.flows.test_rebate_cli_guards import count
from tests.flows.test_receivables_rest_guards import invoice, payment
from tests.rebate_support import clock_from
from tests.simulators.erp_sim import ErpSimulator
from tests.support import in_process_cli

TOKEN = "finance-token-restzh"
GO_ON = ("本页未写入任何数据，此前读取的页（如有）已保存。请财务系统更正上述记录后重新同步"
         "（salesops receivables sync，或重新运行 receivables-sync 流程）：会重新读取本页，"
         "已保存的记录不会重复。")
# the second page: an amount below the fen, and an amount as a JSON number
UNREADABLE = [invoice("FP-C", "12.345"), {**invoice("FP-D"), "amount": 12.5}]
UNREADABLE_SAID = (
    "应收/回款同步未完成：财务系统应收/回款接口返回的数据（游标 rcv-00000002 之后的一页）有 2 处"
    "问题，本页未导入：\n"
    "  - invoices[0].amount（发票 FP-C）：金额须精确到分：'12.345'\n"
    "  - invoices[1].amount（发票 FP-D）：不是有效金额：12.5（应为 JSON 字符串，写作 \"1234.50\"，"
    "不用数字类型，以免小数失真）\n" + GO_ON)
# the second page: a payment received next year (read, then refused by the hub)
FUTURE_SAID = (
    "应收/回款同步未完成：财务系统发来的一页记录有 1 处问题，本页未导入：\n"
    "  - 回款 SK-1（发票 FP-A）：回款日期 2027-10-20 晚于今天（2026-12-01）：尚未收到的款项不能"
    "登记为回款，请核对年份后再导入\n" + GO_ON)
CASES = [([invoice("FP-C")], [{**payment("SK-1", "FP-A"), "paid_on": "2027-10-20"}],
          FUTURE_SAID),
         (UNREADABLE, [], UNREADABLE_SAID)]


@pytest.fixture
def sim():
    with ErpSimulator(TOKEN, page_size=2) as finance:
        yield finance


@pytest.fixture
def rest_hub(seeded, sim):
    settings = seeded.model_copy(update=dict(
        finance_backend="rest", finance_url=sim.url, finance_token=SecretStr(TOKEN),
        connector_attempts=2, connector_timeout_seconds=1.0))
    hub = build_hub(settings)
    use_hub(hub)
    clock_from(dt.date(2026, 12, 1))
    yield hub
    use_hub(None)


def first_page_good_second_refused(sim, invoices: list, payments: list) -> None:
    sim.record_receivables(invoices=[invoice("FP-A"), invoice("FP-B")])
    sim.record_receivables(invoices=invoices, payments=payments)


def stored(db_url: str) -> tuple:
    with session_scope(db_url) as s:
        cursor = s.get(ConnectorCursor, "receivables:RestFinance")
    return (count(db_url, "receivable_invoice"), count(db_url, "payment"),
            cursor.cursor if cursor else None)


@pytest.mark.parametrize("invoices, payments, said", CASES, ids=["refused", "unreadable"])
def test_the_cli_says_in_chinese_why_the_sync_stopped_and_exits_2(
        rest_hub, sim, monkeypatch, capsys, invoices, payments, said):
    first_page_good_second_refused(sim, invoices, payments)
    cli = in_process_cli(monkeypatch, capsys, rest_hub.db_url, rest_hub.settings.data_dir)
    run = next(cli)
    try:
        code, out, err = run("receivables", "sync")
        # the first page is kept, nothing of the second: run again, the same
        assert stored(rest_hub.db_url) == (2, 0, "rcv-00000002")
        assert run("receivables", "sync") == (code, out, err)
    finally:
        cli.close()
    assert (code, out) == (2, ""), err
    assert err == f"错误：{said}\n"
    assert stored(rest_hub.db_url) == (2, 0, "rcv-00000002")


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("invoices, payments, said", CASES, ids=["refused", "unreadable"])
def test_the_failed_flow_run_says_it_in_chinese(rest_hub, sim, invoices, payments, said):
    first_page_good_second_refused(sim, invoices, payments)
    state = sync_receivables_flow(return_state=True)
    assert state.is_failed()
    assert state.message == f"Flow run encountered an exception: SyncUnfinished: {said}"
    assert stored(rest_hub.db_url) == (2, 0, "rcv-00000002")


def test_a_refused_token_says_which_setting_to_check(seeded, sim, monkeypatch, capsys):
    """Finance answers 401 (the token is wrong or expired): the clerk reads, in Chinese, which
    setting to check — the connector's own words only in brackets — and the CLI exits 2
    with nothing written."""
    hub = build_hub(seeded.model_copy(update=dict(
        finance_backend="rest", finance_url=sim.url, finance_token=SecretStr("expired"),
        connector_attempts=2, connector_timeout_seconds=1.0)))
    use_hub(hub)
    cli = in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)
    run = next(cli)
    try:
        code, out, err = run("receivables", "sync")
    finally:
        cli.close()
        use_hub(None)
    assert (code, out) == (2, "")
    assert err.startswith(
        "错误：「salesops receivables sync」未完成：外部系统（finance）拒绝了请求，重试无效，"
        "对方系统未通过身份认证（HTTP 401）：请检查 SALESOPS_FINANCE_TOKEN 是否正确、是否已过期"
        "（原始信息：finance refused the request (401): "), err
    assert "expired" not in err  # the secret itself is never shown
    assert stored(hub.db_url) == (0, 0, None)
