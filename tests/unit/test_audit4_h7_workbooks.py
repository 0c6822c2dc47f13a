"""Workbooks finance opens never carry a live formula: text that begins with "=" (a clause the
clerk typed, a staff name an admin typed, a summary) is written as text, not as a formula
Excel would evaluate (=HYPERLINK to a phishing site, =WEBSERVICE sending the sheet away)."""
from __future__ import annotations

import dataclasses
import io
import zipfile
from decimal import Decimal

from openpyxl import load_workbook

from connectors.finance import EmbeddedFinance, build_voucher_workbook, build_workbook
from reports.settlement_workbook import build_settlement_workbook
from tests.connectors.test_finance import invoice_request
from tests.connectors.test_finance_vouchers import batch, voucher
from tests.unit.test_settlement_workbook import KANGDA, line, report, voucher_for

LINK = '=HYPERLINK("http://evil.example/login","点此核对")'
SUM = "=1+2"


def _saved(wb) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _formulas(data: bytes) -> list[str]:
    """The sheets' XML parts that hold a formula element."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [n for n in z.namelist() if n.startswith("xl/worksheets/")
                and (b"<f>" in z.read(n) or b"<f " in z.read(n))]


def _texts(data: bytes) -> set:
    wb = load_workbook(io.BytesIO(data))
    return {c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row
            if isinstance(c.value, str)}


def test_settlement_workbook_writes_a_clause_or_name_starting_with_equals_as_text():
    lines = (line(KANGDA, "IO261008-AAAA0001", "1341.26", clause=LINK, rep_name=SUM,
                  explanation="=说明"),)
    first = voucher_for(KANGDA, Decimal("1341.26"))
    vouchers = (dataclasses.replace(first, prepared_by="=孙丽"),)
    data = _saved(build_settlement_workbook(report(lines=lines, vouchers=vouchers)))
    assert _formulas(data) == []
    assert {LINK, SUM, "=说明", "=孙丽"} <= _texts(data)


def test_invoice_request_workbook_writes_text_starting_with_equals_as_text(tmp_path):
    request = invoice_request(rep_name=SUM, note=LINK)
    data = _saved(build_workbook(request))
    assert _formulas(data) == []
    assert {LINK, SUM} <= _texts(data)
    # and the file finance picks up from the drop folder
    EmbeddedFinance(tmp_path).request_invoice(request)
    dropped = next(tmp_path.glob("*.xlsx")).read_bytes()
    assert _formulas(dropped) == []


def test_voucher_workbook_writes_text_starting_with_equals_as_text():
    first = voucher()
    entries = tuple(dataclasses.replace(e, summary=LINK) for e in first.entries)
    made = batch(vouchers=(dataclasses.replace(first, entries=entries),))
    data = _saved(build_voucher_workbook(made))
    assert _formulas(data) == []
    assert LINK in _texts(data)



def test_voucher_workbook_keeps_a_code_column_starting_with_equals_as_text():
    first = voucher()
    entries = tuple(dataclasses.replace(e, customer_code="=A1") for e in first.entries)
    data = _saved(build_voucher_workbook(batch(vouchers=(dataclasses.replace(
        first, entries=entries),))))
    assert _formulas(data) == []
    assert "=A1" in _texts(data)


def test_duplicate_review_workbook_writes_imported_text_starting_with_equals_as_text():
    from reports.duplicate_review import ConflictLine, FlaggedUscc, build_review_workbook

    data = _saved(build_review_workbook(
        [], [ConflictLine(2, 7, "江苏康达医疗设备有限公司", "城市", "苏州", LINK)],
        [FlaggedUscc(3, 8, "苏州恒润精密机械有限公司", SUM, "格式不正确")], source="客户.csv"))
    assert _formulas(data) == []
