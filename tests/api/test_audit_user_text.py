"""Audit: what Chinese business users read — the rep's order page, the manager's to-do mail,
the Prefect run tables, the CLI's messages, the documents — must be Chinese, without Python
reprs, raw exception text, float artefacts or UTC instants."""
from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.auth import issue_token
from models import IntentOrder
from models.db import session_scope
from tests.support import free_port, order_payload, post_order, run_pending

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
# what a person must never read: a Python repr of an exception, an English connector message
PYTHON_REPR = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception|Timeout)\(")
ENGLISH = re.compile(r"[A-Za-z]{4,}(?: [A-Za-z]{2,}){1,}")


def bearer(hub, staff_id: str) -> dict:
    return {"Authorization": f"Bearer {issue_token(hub.settings, staff_id)}"}


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None)) as c:
        yield c


@pytest.fixture
def no_task_retries(monkeypatch):
    """The order pipeline's steps without Prefect's waits between retries."""
    from flows import intent_order

    monkeypatch.setattr(intent_order, "STEPS",
                        [t.with_options(retries=0) for t in intent_order.STEPS])


def reason_on_the_page(client, hub, order_id: str, who: str = "rep-zhangwei") -> str:
    page = client.get(f"/orders/{order_id}", headers=HTML | bearer(hub, who))
    assert page.status_code == 200
    found = re.search(r'<p id="reason">(.*?)</p>', page.text, re.S)
    assert found, "the page says why the order stopped"
    return html.unescape(found.group(1))


def order_the_erp_did_not_answer(hub, client) -> str:
    """An order posted while the ERP's stock service refuses connections: it failed at the
    stock check (to be retried)."""
    from connectors.inventory import RestErpInventory

    hub.inventory = RestErpInventory(f"http://127.0.0.1:{free_port()}", SecretStr("t"),
                                     timeout=2, attempts=1)
    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, oid).status == "failed"
    return oid


@pytest.mark.usefixtures("prefect_harness", "no_task_retries")
def test_an_erp_that_does_not_answer_is_said_in_chinese_on_the_reps_order_page(hub, client):
    """The ERP's stock service is down (connection refused): the rep's order page says in
    Chinese that the stock system cannot be reached and that it is retried — not the
    connector's `erp unreachable: ConnectError('[Errno 111] Connection refused')`."""
    oid = order_the_erp_did_not_answer(hub, client)
    reason = reason_on_the_page(client, hub, oid)
    assert not PYTHON_REPR.search(reason), reason
    assert not ENGLISH.search(reason), reason


@pytest.mark.usefixtures("prefect_harness", "no_task_retries")
def test_the_batch_table_in_prefect_says_in_chinese_why_an_order_waits(hub, client):
    """The intent-order run's table (key intent-order-batch) and summary, which the
    sales-ops clerk reads in the Prefect UI: the 说明 of an order the ERP did not answer for
    is Chinese, without the connector's Python repr."""
    import json

    from tests.flows.test_audit5_pipeline import latest_artifact

    oid = order_the_erp_did_not_answer(hub, client)
    data = latest_artifact("intent-order-batch").data
    table = json.loads(data) if isinstance(data, str) else data
    why = next(row["说明"] for row in table if row["意向单"] == oid)
    summary = str(latest_artifact("intent-order-summary").data)
    for text in (why, summary):
        assert not PYTHON_REPR.search(text), text
        assert "unreachable" not in text, text


def mail_text(mail) -> str:
    return mail.message.get_body(("plain",)).get_content()


@pytest.mark.usefixtures("prefect_harness", "no_task_retries")
def test_an_erp_that_refuses_the_stock_query_is_said_in_chinese_to_rep_and_manager(hub, client):
    """The ERP refuses the hub's token (401): the order is blocked for the rep's manager. The
    to-do mail 王强 reads and the rep's order page say in Chinese what is wrong (the ERP
    refused the hub's credentials, SALESOPS_ERP_TOKEN to be checked by the administrator) —
    not `erp refused the request (401): {"error": "invalid token"}`."""
    import httpx

    from connectors.inventory import RestErpInventory

    erp = RestErpInventory("http://erp.test", SecretStr("expired"), timeout=2, attempts=1)
    erp._client = httpx.Client(base_url="http://erp.test", transport=httpx.MockTransport(
        lambda request: httpx.Response(401, json={"error": "invalid token"})))
    hub.inventory = erp
    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        assert s.get(IntentOrder, oid).status == "blocked"
    mail = next(m for m in hub.mailer.list_messages() if "需人工处理" in m.subject)
    body = mail_text(mail)
    reason = reason_on_the_page(client, hub, oid)
    for text in (body, reason):
        assert "refused the request" not in text and '{"error"' not in text, text
        assert not ENGLISH.search(text), text


# --- the command line --------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["customers", "import", "客户.csv", "--dry-run=yes"],
                                  ["settle", "--month", "2026-10", "--json=true"],
                                  ["receivables", "import", "回款.csv", "--skip-unknown=1"]])
def test_a_value_given_to_a_switch_is_refused_in_chinese(argv, capsys):
    """`--dry-run=yes` (a clerk's guess at how a switch is written) is refused with exit 2 —
    in Chinese, not argparse's `ignored explicit argument 'yes'` half translated into
    `参数 --dry-run: ignored explicit 参数 'yes'`."""
    from deployments.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "ignored" not in err and "explicit" not in err, err


def test_the_demo_summary_writes_quote_totals_as_money(capsys):
    """The demo's summary writes each quote's total as the rest of the hub writes money
    (¥39,760.00, as the rebate on the next line: ¥576.00) — not ¥39760.00."""
    from deployments.demo import print_summary

    order = {"order_id": "IO261129-2BDQ3E-R41F", "customer": "江苏康达医疗设备有限公司",
             "typed_name": "江苏康达医疗设备有限公司", "new_customer": False, "stock_short": False,
             "held": None, "quote_code": "Q2611-6H76DE-A", "total": "39760.00", "stage": "已报价",
             "rebate": None, "quote_pdf": "/tmp/q.pdf", "signing_url": "http://x/sign/t",
             "signed_pdf": None}
    print_summary({"orders": [order], "todos": [], "invoice_requests": [], "settlement": None,
                   "duplicate_delivery": None, "emails": 1, "prefect_ui": "http://x",
                   "data_dir": "var/demo"})
    out = capsys.readouterr().out
    assert "¥39,760.00" in out, out


def test_the_import_help_keeps_each_column_name_whole(monkeypatch, capsys):
    """`salesops customers import --help` on an 80-column terminal lists the file's column
    names; the clerk copies them into the sheet's header row: each must stay whole, not
    `reg` at the end of a line and `ion` at the start of the next."""
    from deployments.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(["customers", "import", "--help"])
    out = capsys.readouterr().out
    file_help = out.split("参数:", 1)[1].split("选项:", 1)[0]  # the 文件 argument's help
    for column in ("legal_name", "short_names", "former_names", "uscc", "province", "city",
                   "region", "tier", "owner", "finance_code"):
        assert re.search(rf"(?<![A-Za-z_]){column}(?![A-Za-z_])", file_help), (column, file_help)
