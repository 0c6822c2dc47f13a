"""Finance refusing a voucher batch, as the clerk at `salesops settle` and the ops engineer in
the Prefect UI read it: in Chinese (财务系统拒收凭证草稿 …), with finance's own words kept as a
detail and its code unchanged for programs. Finance here is its REST simulator, which already
holds another batch under the same batch id and answers 422 in English."""
from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

import flows.settlement as settlement
from flows.settlement import VouchersRefused, send_vouchers
from models import SettlementRun
from models.db import session_scope
from tests.flows.test_settlement_failures import (  # noqa: F401 - fixtures
    TOKEN, finance_sim, quick_retries, rest_hub,
)
from tests.simulators.erp_sim import VOUCHER_PATH
from tests.support import in_process_cli

BATCH = "RB-2026-10-r1"
FINANCE_SAID = "Idempotency-Key reused with another body"
pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def finance_holds_another_batch(finance_sim):  # noqa: F811
    """Finance already booked other vouchers under the batch id the hub will send."""
    other = {"batch_id": BATCH, "vouchers": [{"voucher_key": "manual-1", "entries": [
        {"debit": "1.00", "credit": "0"}, {"debit": "0", "credit": "1.00"}]}]}
    answer = httpx.post(finance_sim.url + VOUCHER_PATH, json=other, timeout=5,
                        headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": BATCH})
    assert answer.status_code == 201, answer.text


def test_the_cli_says_in_chinese_that_finance_refused_the_vouchers(
        rest_hub, finance_holds_another_batch, monkeypatch, capsys):  # noqa: F811
    cli = in_process_cli(monkeypatch, capsys, rest_hub.db_url, rest_hub.settings.data_dir)
    run = next(cli)
    try:
        code, out, err = run("settle", "--month", "2026-10")
    finally:
        cli.close()
    assert code == 2 and out == "", err
    assert "Traceback" not in err
    # what the clerk reads first is Chinese; finance's words follow as the detail
    assert err.startswith("错误：2026-10 返利结算未完成：第 1 版（1 行，合计 ¥1,280.00）已保存，"
                          "凭证草稿尚未提交财务。原因：财务系统拒收凭证草稿（批次 RB-2026-10-r1）："
                          "凭证草稿未通过财务系统的校验。财务系统原始信息："), err
    assert FINANCE_SAID in err and "拒绝了请求" not in err, err


def test_the_failed_run_and_the_error_say_it_in_chinese_and_keep_finances_words(
        rest_hub, finance_holds_another_batch, quick_retries):  # noqa: F811
    state = settlement.settle_month_flow(month="2026-10", return_state=True)
    assert state.is_failed()
    assert ("原因：财务系统拒收凭证草稿（批次 RB-2026-10-r1）：凭证草稿未通过财务系统的校验。"
            "财务系统原始信息：finance refused the request (422)") in state.message, state.message
    assert FINANCE_SAID in state.message and "PermanentError" not in state.message
    # for programs: the connector's code and words, unchanged
    with session_scope(rest_hub.db_url) as s:
        run_id = s.exec(select(SettlementRun.id)).one()
    with pytest.raises(VouchersRefused) as refused:
        send_vouchers(rest_hub, run_id)
    assert (refused.value.provider, refused.value.code) == ("finance", "422")
    assert refused.value.detail.startswith("finance refused the request (422):")
    assert FINANCE_SAID in refused.value.detail
