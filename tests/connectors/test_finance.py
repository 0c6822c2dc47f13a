"""Finance: invoice-preparation requests happen once, as files or over REST."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pydantic import SecretStr

from connectors.base import PermanentError
from connectors.finance import (
    SHEET_HEADERS,
    EmbeddedFinance,
    Finance,
    InvoiceLine,
    InvoiceRequest,
    RestFinance,
)
from tests.simulators.base import Faults
from tests.simulators.erp_sim import INVOICE_PATH, ErpSimulator
from tests.support import run_together

TOKEN = "finance-secret-token"
CALL = f"POST {INVOICE_PATH}"


def invoice_request(quote_code="Q2611-7K3M9P-X", **changes) -> InvoiceRequest:
    lines = (
        InvoiceLine(sku="SKU-0001", model="HR-120", name="精密行星减速机（含法兰）", unit="台",
                    quantity=3, unit_price=Decimal("1280.00"), tax_rate=Decimal("0.13"),
                    amount=Decimal("3840.00"), tax=Decimal("441.77")),
        InvoiceLine(sku="泵-离心-01", model="IS50-32-125", name="离心泵", unit="套", quantity=2,
                    unit_price=Decimal("860.50"), tax_rate=Decimal("0.09"),
                    amount=Decimal("1721.00"), tax=Decimal("142.10")),
    )
    request = InvoiceRequest(
        request_id=f"INV-{quote_code}", order_id="IO261126-4D8KQ2WZ", quote_code=quote_code,
        customer_legal_name="苏州恒润精密机械有限公司", customer_uscc="91320594MA1W8XYZ3K",
        total_amount=Decimal("5561.00"), tax_amount=Decimal("583.87"), lines=lines,
        signed_at=dt.datetime(2026, 11, 26, 2, 30, tzinfo=dt.timezone.utc),
        rep_name="张伟", signed_pdf_path=Path("/srv/salesops/signed/Q2611-7K3M9P-X.pdf"),
        note="请开具增值税专用发票",
    )
    return dataclasses.replace(request, **changes)


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


# --- embedded ------------------------------------------------------------------------------

def test_embedded_writes_json_and_workbook(tmp_path):
    finance = EmbeddedFinance(tmp_path / "drop")
    assert isinstance(finance, Finance)
    request = invoice_request()
    reference = finance.request_invoice(request)
    assert reference == "DRAFT-INV-Q2611-7K3M9P-X"
    files = sorted(p.name for p in (tmp_path / "drop").iterdir())
    assert files == ["INV-Q2611-7K3M9P-X.json", "INV-Q2611-7K3M9P-X.xlsx"]

    document = json.loads((tmp_path / "drop" / files[0]).read_text(encoding="utf-8"))
    assert document["reference"] == reference
    sent = document["request"]
    assert sent["customer_legal_name"] == "苏州恒润精密机械有限公司"
    assert sent["total_amount"] == "5561.00" and sent["tax_amount"] == "583.87"
    assert sent["lines"][0]["name"] == "精密行星减速机（含法兰）"
    assert sent["lines"][1]["unit_price"] == "860.50"
    assert [line["unit"] for line in sent["lines"]] == ["台", "套"]
    assert sent["signed_at"] == "2026-11-26T02:30:00+00:00"


def test_embedded_workbook_reads_back_exactly(tmp_path):
    request = invoice_request()
    EmbeddedFinance(tmp_path).request_invoice(request)
    wb = load_workbook(tmp_path / "INV-Q2611-7K3M9P-X.xlsx")
    ws = wb["开票申请"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == SHEET_HEADERS
    # a VAT invoice's order: 规格型号, 单位, 数量, 单价, 金额, 税率, 税额
    assert rows[0] == ("申请编号", "客户名称", "统一社会信用代码", "报价单号", "型号", "品名", "单位",
                       "数量", "含税单价", "金额", "税率", "税额", "合计")
    first, second, totals = rows[1], rows[2], rows[3]
    assert first[:8] == ("INV-Q2611-7K3M9P-X", "苏州恒润精密机械有限公司", "91320594MA1W8XYZ3K",
                         "Q2611-7K3M9P-X", "HR-120", "精密行星减速机（含法兰）", "台", 3)
    # 含税单价, 金额 (net of tax), 税率, 税额, 合计 (tax included)
    assert [money(v) for v in first[8:]] == [Decimal("1280.00"), Decimal("3398.23"),
                                             Decimal("0.13"), Decimal("441.77"),
                                             Decimal("3840.00")]
    assert second[5:8] == ("离心泵", "套", 2)
    assert [money(v) for v in (second[9], second[11], second[12])] == [
        Decimal("1578.90"), Decimal("142.10"), Decimal("1721.00")]
    assert totals[0] == "合计" and totals[6] is None and totals[7] == 5
    assert [money(v) for v in (totals[9], totals[11], totals[12])] == [
        Decimal("4977.13"), Decimal("583.87"), Decimal("5561.00")]
    assert totals[8] is None and totals[10] is None  # no 单价 or 税率 to add up
    for row in (2, 3, 4):  # the lines and the totals row
        assert [ws.cell(row, col).number_format for col in (9, 10, 12, 13)] == ["#,##0.00"] * 4
        assert ws.cell(row, 11).number_format == "0.00##%"  # 13.00%, 1.50%: as in every workbook
        assert ws.cell(row, 8).number_format == "General"  # 数量 is a count
    assert ws.column_dimensions["G"].width == 6 and ws.column_dimensions["M"].width == 14
    info = dict(wb["申请信息"].iter_rows(values_only=True))
    assert info["签署时间"] == "2026-11-26 10:30"  # Beijing time for people
    assert info["销售"] == "张伟" and info["备注"] == "请开具增值税专用发票"


def test_embedded_second_call_writes_nothing_and_returns_the_same_reference(tmp_path):
    finance = EmbeddedFinance(tmp_path)
    first = finance.request_invoice(invoice_request())
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.iterdir()}
    again = EmbeddedFinance(tmp_path).request_invoice(invoice_request(note="重试"))
    assert again == first
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.iterdir()}
    assert after == before  # no new file, no rewrite, no leftover temp file


def test_embedded_concurrent_requests_publish_once(tmp_path):
    references, errors = run_together(
        lambda: EmbeddedFinance(tmp_path).request_invoice(invoice_request()), 8)
    assert not errors
    assert set(references) == {"DRAFT-INV-Q2611-7K3M9P-X"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "INV-Q2611-7K3M9P-X.json", "INV-Q2611-7K3M9P-X.xlsx"]


def test_embedded_completes_a_request_interrupted_before_its_json(tmp_path):
    (tmp_path / "INV-Q2611-7K3M9P-X.xlsx").write_bytes(b"half written by a crashed worker")
    reference = EmbeddedFinance(tmp_path).request_invoice(invoice_request())
    assert reference == "DRAFT-INV-Q2611-7K3M9P-X"
    load_workbook(tmp_path / "INV-Q2611-7K3M9P-X.xlsx")  # replaced by a whole workbook


def test_embedded_escapes_ids_that_are_not_file_name_safe(tmp_path):
    request = invoice_request(quote_code="Q2611-7K3M9P-*")
    assert EmbeddedFinance(tmp_path).request_invoice(request) == "DRAFT-INV-Q2611-7K3M9P-*"
    assert (tmp_path / "INV-Q2611-7K3M9P-%2A.json").exists()
    with pytest.raises(PermanentError):
        EmbeddedFinance(tmp_path).request_invoice(invoice_request(request_id="../escape"))


@pytest.mark.parametrize("changes", [
    {"total_amount": 5561.0},                                  # float money
    {"tax_amount": Decimal("583.875")},                        # below a fen
    {"signed_at": dt.datetime(2026, 11, 26, 10, 30)},          # naive time
    {"lines": ()},
])
def test_requests_finance_could_not_invoice_are_refused(tmp_path, changes):
    with pytest.raises(PermanentError):
        EmbeddedFinance(tmp_path).request_invoice(invoice_request(**changes))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("unit", ["", "  "])
def test_a_line_without_its_unit_is_refused_naming_the_line(tmp_path, unit):
    request = invoice_request()
    request = dataclasses.replace(request, lines=(
        request.lines[0], dataclasses.replace(request.lines[1], unit=unit)))
    with pytest.raises(PermanentError) as info:
        EmbeddedFinance(tmp_path).request_invoice(request)
    assert info.value.code == "bad-request" and "line 2 has no unit" in str(info.value)
    assert list(tmp_path.iterdir()) == []


# --- REST ----------------------------------------------------------------------------------

@pytest.fixture
def sim():
    with ErpSimulator(TOKEN) as simulator:
        yield simulator


def client(sim, token=TOKEN, attempts=4, timeout=2.0):
    return RestFinance(sim.url, SecretStr(token), timeout, attempts)


def test_rest_posts_the_request_with_its_idempotency_key(sim):
    request = invoice_request()
    with client(sim) as finance:
        assert isinstance(finance, Finance)
        reference = finance.request_invoice(request)
    assert reference == "FIN-000001"
    body = sim.invoices[request.request_id]
    assert body["request_id"] == "INV-Q2611-7K3M9P-X"
    assert body["customer_legal_name"] == "苏州恒润精密机械有限公司"
    assert body["lines"][0]["name"] == "精密行星减速机（含法兰）"
    assert body["total_amount"] == "5561.00" and body["lines"][0]["tax_rate"] == "0.13"
    assert [line["unit"] for line in body["lines"]] == ["台", "套"]
    assert body["signed_pdf_path"] == "/srv/salesops/signed/Q2611-7K3M9P-X.pdf"
    assert sim.effects[request.request_id] == 1


def test_rest_refuses_a_line_without_its_unit_before_calling(sim):
    request = invoice_request()
    request = dataclasses.replace(request, lines=(
        dataclasses.replace(request.lines[0], unit=""),))
    with client(sim) as finance:
        with pytest.raises(PermanentError) as info:
            finance.request_invoice(request)
    assert "line 1 has no unit" in str(info.value)
    assert sim.calls[CALL] == 0


@pytest.mark.parametrize("unit", [None, "", 3])
def test_rest_finance_refuses_a_line_without_its_unit(sim, unit):
    body = invoice_request().to_json_dict()  # past our own check, as a buggy client sends it
    body["lines"][1]["unit"] = unit
    if unit is None:
        del body["lines"][1]["unit"]
    with client(sim, attempts=5) as finance:
        with pytest.raises(PermanentError) as info:
            finance._post(INVOICE_PATH, body, body["request_id"])
    assert info.value.code == "400" and "lines[1].unit" in str(info.value)
    assert sim.calls[CALL] == 1 and sim.effect_count == 0


def test_rest_repeated_request_is_a_replay_not_a_second_invoice(sim):
    request = invoice_request()
    with client(sim) as finance:
        first = finance.request_invoice(request)
        again = finance.request_invoice(request)
    assert again == first
    assert sim.effects[request.request_id] == 1
    assert sim.replays[request.request_id] == 1


def test_rest_refused_token_is_permanent_and_not_retried(sim):
    with client(sim, token="revoked", attempts=5) as finance:
        with pytest.raises(PermanentError) as info:
            finance.request_invoice(invoice_request())
    assert info.value.code == "401"
    assert sim.calls[CALL] == 1
    assert sim.effect_count == 0


def test_rest_reused_key_with_another_body_is_permanent(sim):
    with client(sim) as finance:
        finance.request_invoice(invoice_request())
        with pytest.raises(PermanentError) as info:
            finance.request_invoice(invoice_request(total_amount=Decimal("9999.00")))
    assert info.value.code == "422"
    assert sim.effect_count == 1


def test_rest_lost_answer_does_not_duplicate_the_invoice(sim):
    request = invoice_request()
    sim.lose_answers(1, hang_seconds=1.5)
    with client(sim, timeout=0.5) as finance:
        reference = finance.request_invoice(request)
    assert reference == "FIN-000001"
    # the lost answer, then the replay that recovered the first reference
    assert sim.effects[request.request_id] == 1
    assert sim.replays[request.request_id] >= 1


def test_rest_survives_injected_faults_and_lost_answers_with_one_effect_each():
    faults = Faults(rate=0.2, hang_seconds=1.5, seed=11)
    requests = [invoice_request(quote_code=f"Q2611-{n:06d}-X") for n in range(12)]
    with ErpSimulator(TOKEN, faults=faults) as sim:
        sim.lose_answers(2, hang_seconds=1.5)
        with client(sim, attempts=6, timeout=0.5) as finance:
            references = [finance.request_invoice(r) for r in requests]
        assert sim.injected["5xx"] > 0 and sim.injected["hang"] > 0
        assert len(set(references)) == len(requests)
        assert dict(sim.effects) == {r.request_id: 1 for r in requests}
        assert sum(sim.replays.values()) >= 2  # at least the two lost answers
