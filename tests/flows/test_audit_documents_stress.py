"""Audit: the documents people read (对账单, 报价单, finance's workbooks) under real-world stress —
rare characters in legal names and clauses, long names, big and negative figures."""
from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from connectors.finance import InvoiceLine, InvoiceRequest, build_workbook
from models.customer_files import create_customer
from models.db import session_scope
from models.quoting import line_amount, line_tax
from reports import fonts
from reports.quote_pdf import render_quote_pdf
from reports.statement_pdf import render_statement_pdf
from tests.rebate_support import clock_from, publish, signed_order
from tests.support import in_process_cli
from tests.unit.test_quote_pdf import _doc as quote_doc
from tests.unit.test_statement_pdf import _doc as statement_doc
from tests.unit.test_statement_pdf import _many, line

D = dt.date
pytestmark = pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler not installed")

# A legal name with characters of the 通用规范汉字表 (2013) that Unicode placed outside the
# Basic Multilingual Plane (𫄨 U+2B128, 𬍛 U+2C35B), as company names written with a person's
# name or a place name carry them, and the ones the brief names (𠀾 U+2003E, 鑫 犇 骉 燚).
RARE_NAME = "𠀾鑫犇骉燚（广州）𫄨𬍛医疗器械供应链管理与进出口贸易集团股份有限公司华南区域第一分公司（有限合伙）"
POLICY = """
code: D2-2026
name: 二〇二六年第四季度华南大区医疗影像设备及耗材经销商阶梯返利与回款激励综合政策（修订版）
effective_from: 2026-10-01
rules:
  - id: quarter
    name: 季度阶梯
    clause: 第十二条第（三）款
    measure: amount
    period: quarter
    style: retroactive
    tiers:
      - {from: 0, to: 100000, rate: 1%}
      - {from: 100000, rate: 3%}
    priority: 5
    stacking: stack
"""


# What a document shows for a character no font has (reports/fonts.py): the compatibility
# form, a circled figure in brackets, else the visible placeholder 〓 — never a blank.
SUBSTITUTES = {"①": "(1)", "Ⅱ": "II", "𠀾": "〓", "𫄨": "〓", "𬍛": "〓"}
HANAZONO = Path("/usr/share/fonts/truetype/hanazono/HanaMinA.ttf")  # CI installs it
NO_FALLBACK = "no fallback font"


@pytest.fixture(params=["fallback fonts of this machine", NO_FALLBACK])
def fallback(request, monkeypatch):
    """Each font test runs with the fallback fonts this machine has and with none, so both
    ways a rare character can be printed are exercised wherever the suite runs."""
    if request.param == NO_FALLBACK:
        monkeypatch.setattr(fonts, "_fallbacks", fonts.FallbackFonts())
    return request.param


def printed(text: str, fallback: str, caplog) -> str:
    """`text` as the PDF must show it, after asserting which way this run went: with a
    fallback font the characters themselves, without one their substitutes and a warning
    naming each code point."""
    rare = {ch for ch in text if ch in SUBSTITUTES}
    in_a_font = {ch for ch in rare if fonts.has_glyph(ch)}
    if fallback == NO_FALLBACK:
        assert not in_a_font
        for ch in rare:
            assert f"U+{ord(ch):04X}" in caplog.text, "the missing character is not logged"
    elif HANAZONO.is_file():
        assert in_a_font == rare, "fonts-hanazono is installed but not used"
    return "".join(SUBSTITUTES[ch] if ch in rare - in_a_font else ch for ch in text)


def pdf_text(path, *pages: int) -> str:
    args = ["pdftotext"]
    if pages:
        args += ["-f", str(pages[0]), "-l", str(pages[-1])]
    out = subprocess.run([*args, str(path), "-"], capture_output=True, check=True).stdout
    return re.sub(r"\s+", "", out.decode("utf-8", errors="replace"))


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


# ---------------------------------------------------------------- characters the fonts lack


def test_the_statement_prints_a_legal_name_with_characters_outside_the_basic_plane(
        hub, cli, fallback, caplog):
    """The customer stamps the statement under its legal name: every character of the name
    must be printed. The embedded CJK font (Droid Sans Fallback) has no glyph beyond U+FFFF,
    so 𠀾, 𫄨 and 𬍛 were painted as nothing (pdftotext found no text there, the page showed a
    gap). A fallback font prints them; without one each shows as 〓, never as a gap."""
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    with session_scope(hub.db_url) as s:
        customer = create_customer(s, legal_name=RARE_NAME, actor="test", origin="manual",
                                   region="华南", owner_rep_id="rep-lina")
        s.flush()
        cid = customer.id
    for day in (3, 10, 17):
        signed_order(hub.db_url, cid, D(2026, 10, day), [("MON-M8", 4)], rep_id="rep-lina")
    code, out, err = cli("settle", "--month", "2026-10", "--json")
    assert code == 0, err
    made = json.loads(out)["documents"]
    [statement] = [p for p in made["statements"] if f"C{cid:06d}" in p]
    text = pdf_text(statement)
    assert "医疗器械供应链管理与进出口贸易集团股份有限公司" in text  # the statement is the customer's
    assert printed(RARE_NAME, fallback, caplog) in text
    # finance's workbook has it (a cell holds any character): the two disagree on the name
    book = openpyxl.load_workbook(made["workbook"])
    assert RARE_NAME in {row[0] for row in book["按客户"].iter_rows(min_row=2, min_col=2,
                                                                 max_col=2, values_only=True)}


def test_the_quote_prints_a_legal_name_with_characters_outside_the_basic_plane(
        tmp_path, fallback, caplog):
    """Same for the quote the customer signs: its 客户名称 lost 𠀾, 𫄨 and 𬍛."""
    path = tmp_path / "quote.pdf"
    render_quote_pdf(quote_doc(customer_legal_name=RARE_NAME), path)
    text = pdf_text(path)
    assert "医疗器械供应链管理与进出口贸易集团股份有限公司" in text
    assert printed(RARE_NAME, fallback, caplog) in text


def test_a_clause_numbered_with_a_circled_figure_is_printed(tmp_path, fallback, caplog):
    """Contracts number items ①②③ and grades Ⅰ Ⅱ Ⅲ (第十二条第（三）款第①项, Ⅱ类医疗器械):
    neither embedded font has those glyphs, so the statement showed an empty box where the
    clause and the product line say which item and which class. A fallback font prints
    them; without one they read 第(1)项 and II类."""
    doc = statement_doc((line(clause="第十二条第（三）款第①项", product_line="Ⅱ类医疗器械"),))
    path = tmp_path / "statement.pdf"
    render_statement_pdf(doc, path)
    text = pdf_text(path)
    assert "第十二条第（三）款第" in text
    assert printed("第十二条第（三）款第①项", fallback, caplog) in text
    assert printed("Ⅱ类医疗器械", fallback, caplog) in text


# ---------------------------------------------------------------- long names


def test_continuation_pages_still_name_the_customer_and_the_month_under_a_long_seller_name(
        tmp_path):
    """Pages after the first repeat the seller, 返利结算对账单（续）, the customer and the period
    so that a loose sheet stays identifiable (docs/finance.md). The left part (seller + 续) is
    never fitted: with a 47-character seller legal name the customer and period are cut down
    to「江苏…0月」— neither the customer nor the month can be read off the sheet."""
    seller = "中国医疗器械（集团）控股股份有限公司华东区域医疗设备研发制造与国际贸易营销服务中心有限责任公司"
    path = tmp_path / "statement.pdf"
    render_statement_pdf(statement_doc(_many(30), seller_name=seller), path)
    second = pdf_text(path, 2)
    assert "返利结算对账单（续）" in second
    assert "2026年10月" in second, second[:120]
    assert "江苏康达" in second, second[:120]


# ---------------------------------------------------------------- finance's workbooks


def test_the_invoice_request_workbook_shows_a_one_and_a_half_percent_rate_as_it_is(tmp_path):
    """A product taxed at 1.5 % (Numeric(5, 4) holds it; the quote prints 1.5%): the 开票申请
    sheet formats 税率 as "0%", so finance reads 2% and may invoice at the wrong rate."""
    rate = Decimal("0.015")
    amount = line_amount(Decimal("1000.00"), 3)
    request = InvoiceRequest(
        request_id="INV-QT-1", order_id="IO1", quote_code="QT-1",
        customer_legal_name="江苏康达医疗设备有限公司", customer_uscc=None,
        total_amount=amount, tax_amount=line_tax(amount, rate),
        lines=(InvoiceLine("SKU", "M1", "服务", "项", 3, Decimal("1000.00"), rate, amount,
                           line_tax(amount, rate)),),
        signed_at=dt.datetime(2026, 11, 5, 10, tzinfo=dt.UTC), rep_name=None,
        signed_pdf_path=None)
    buf = io.BytesIO()
    build_workbook(request).save(buf)
    cell = openpyxl.load_workbook(io.BytesIO(buf.getvalue()))["开票申请"]["K2"]
    assert cell.value == pytest.approx(0.015)
    # the shown figure: a "0%" format rounds to whole percent
    decimals = cell.number_format.split("%")[0].partition(".")[2]
    assert len(decimals) >= 1, f"税率格式 {cell.number_format!r} 把 1.5% 显示为 2%"

