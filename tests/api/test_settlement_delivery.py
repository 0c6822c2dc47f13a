"""Finance confirms a settlement through the API while its vouchers are not out (finance's
REST simulator on loopback refused the batch when the month was settled: it already holds
other vouchers under that batch id and answers 422). The confirmation answers 200 (confirmed) with a
status address; that address — JSON, or finance's page — says 发送失败 with finance's
reason in Chinese, not only a log line; 重新发送 once finance cleared its side sends the batch
once, and a second 重新发送 sends nothing."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from flows.settlement import VouchersRefused, settle_month
from tests.api.test_rebate_board import bearer, login
from tests.flows.test_settlement_failures import (  # noqa: F401 - fixtures
    TOKEN, finance_sim, rest_hub,
)
from tests.flows.test_settlement_vouchers_refused import (  # noqa: F401 - fixtures
    BATCH, finance_holds_another_batch,
)

STATUS = "/rebates/settlements/2026-10/1"
REFUSED = ("发送失败：财务系统拒收凭证草稿（批次 RB-2026-10-r1）：凭证草稿未通过财务系统的校验。"
           "财务系统原始信息：finance refused the request (422)")


@pytest.fixture
def client(rest_hub):  # noqa: F811
    with TestClient(create_app(rest_hub.settings, launcher=None),
                    raise_server_exceptions=False) as c:
        yield c


def finance_clears_its_batch(sim) -> None:
    """Finance deletes the vouchers it had booked by hand under the hub's batch id."""
    sim._voucher_answers.pop(BATCH)
    sim.voucher_batches.pop(BATCH)
    sim.voucher_effects.clear()


def test_a_refusal_by_finance_is_shown_to_the_person_who_confirmed_and_can_be_sent_again(
        rest_hub, finance_sim, finance_holds_another_batch, client):  # noqa: F811
    with pytest.raises(VouchersRefused):
        settle_month(rest_hub, "2026-10")  # the revision is stored, its vouchers refused
    finance = bearer(rest_hub, "finance-01")
    r = client.post(STATUS + "/confirm", headers=finance)
    assert r.status_code == 200, r.text
    assert r.headers["location"] == STATUS
    assert r.json()["status"] == "confirmed" and r.json()["status_url"] == STATUS
    assert r.json()["delivery"]["label"] == "发送中"
    # the background attempt was refused again: the status says so, in Chinese
    status = client.get(STATUS, headers=finance).json()
    assert status["delivery"]["state"] == "failed"
    assert status["delivery"]["label"].startswith(REFUSED), status
    assert status["delivery"]["voucher_ref"] is None
    login(client, rest_hub, "finance-01")
    page = client.get(STATUS, headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "凭证与对账单：发送失败：财务系统拒收凭证草稿（批次 RB-2026-10-r1）" in page.text
    assert f'<form id="send-form" method="post" action="{STATUS}/send">' in page.text
    client.cookies.clear()

    finance_clears_its_batch(finance_sim)
    again = client.post(STATUS + "/send", headers=finance)
    assert again.status_code == 202, again.text
    status = client.get(STATUS, headers=finance).json()
    assert status["delivery"]["state"] == "sent", status
    assert status["delivery"]["label"] == "凭证已发送"
    assert status["delivery"]["voucher_ref"].startswith("VCH-")
    assert status["delivery"]["error"] is None
    assert finance_sim.voucher_effects[BATCH] == 1
    # everything is out: sending again sends nothing
    once_more = client.post(STATUS + "/send", headers=finance)
    assert once_more.status_code == 200 and once_more.json()["delivery"]["state"] == "sent"
    assert finance_sim.voucher_effects[BATCH] == 1 and not finance_sim.voucher_replays[BATCH]
    assert (rest_hub.settings.data_dir / "settlements" / "2026-10" / "r1-confirmed").is_dir()


def test_a_confirmation_whose_vouchers_went_out_says_so(
        rest_hub, finance_sim, client):  # noqa: F811
    settle_month(rest_hub, "2026-10")
    finance = bearer(rest_hub, "finance-01")
    r = client.post(STATUS + "/confirm", headers=finance)
    assert r.status_code == 200
    status = client.get(STATUS, headers=finance).json()
    assert (status["delivery"]["state"], status["delivery"]["label"]) == ("sent", "凭证已发送")
    assert finance_sim.voucher_effects[BATCH] == 1


def test_only_finance_reads_the_status_and_a_missing_revision_is_404(
        rest_hub, client):  # noqa: F811
    settle_month(rest_hub, "2026-10")
    r = client.get(STATUS, headers=bearer(rest_hub, "rep-zhangwei"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = client.post(STATUS + "/send", headers=bearer(rest_hub, "rep-zhangwei"))
    assert r.status_code == 403
    r = client.get("/rebates/settlements/2026-10/7", headers=bearer(rest_hub, "finance-01"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_settlement"


def test_finance_unreachable_is_said_in_chinese_on_the_status(rest_hub, finance_sim,  # noqa: F811
                                                              client, monkeypatch):
    """Finance answering 503 (or not at all): the status says why in Chinese; the connector's
    own words ("finance answered 503: …", "ConnectError(…)") are for the log."""
    from connectors.base import TransientError

    finance = bearer(rest_hub, "finance-01")
    for error, cause in ((TransientError('finance answered 503: {"error": "down"}',
                                         provider="finance", code="503"),
                          "财务系统返回错误 503"),
                         (TransientError("finance unreachable: ConnectError('[Errno 111] "
                                         "Connection refused')", provider="finance",
                                         code="network"), "网络不通或连接超时")):
        def down(batch, error=error):
            raise error

        monkeypatch.setattr(rest_hub.finance, "submit_vouchers", down)
        with pytest.raises(TransientError):
            settle_month(rest_hub, "2026-10")
        label = client.get(STATUS, headers=finance).json()["delivery"]["label"]
        assert label == (f"发送失败：财务系统暂时无法连接，凭证草稿未能提交（{cause}），"
                         "请稍后重新发送"), label
