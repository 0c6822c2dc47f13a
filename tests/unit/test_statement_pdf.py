"""Settlement statement PDF: figures, text poppler extracts, embedded fonts, painted glyphs,
pagination with the table header repeated."""
from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest

from reports.statement_pdf import (
    StatementDocument,
    StatementLine,
    StatementPolicy,
    format_percent,
    render_statement_pdf,
    statement_pdf_bytes,
)
from tests.unit.test_quote_pdf import (
    _looks_like_glyphs,
    _png,
    _run,
    _squash,
    _word_boxes,
    needs_poppler,
)

NUMBER = "RBS-2026-10-r1-C000123"
CUSTOMER = "江苏康达医疗设备有限公司"
USCC = "91320500MA1K2D3F5H"


def line(order_id="IO261008-4D8KQ2WZ", amount="1234.56", kind="rebate", **kw) -> StatementLine:
    fields = dict(order_id=order_id, order_date=date(2026, 10, 8), product_line="监护",
                  policy_code="MON-2026Q4", policy_version=2, clause="第二条",
                  basis_amount=D("24691.20"), rate=D("0.05"), amount=D(amount), kind=kind,
                  explanation="季度累计销售额 24,691.20 元，处于第1档（5%），首次结算。",
                  rule_name="季度销售额阶梯返利", period="2026Q4", due_amount=D("1234.56"))
    fields.update(kw)
    return StatementLine(**fields)


LINES = (
    line(),
    line("IO260915-7K3M9P2A", "987.65", "tier_difference", order_date=date(2026, 9, 15),
         rate=D("0.03"), basis_amount=D("32921.67"),
         explanation="本季累计达到第2档（8%），9月订单已按5%返利，补差3个百分点。"),
    line("IO260920-2B6C8D4E", "-120.10", "clawback", product_line="耗材",
         policy_code="CONS-2026", policy_version=1, clause="第三条",
         explanation="10月12日退货 2 台，冲回已返金额。"),
    line("IO260801-9X8Y7Z6W", "265.96", "adjustment", rate=D("0.054321"),
         explanation="9月结算后补录的交付，更正9月金额。"),
)
POLICIES = (
    StatementPolicy("MON-2026Q4", 2, "2026年第四季度监护产品返利政策", date(2026, 10, 1),
                    date(2026, 12, 31)),
    StatementPolicy("CONS-2026", 1, "2026年度耗材返利政策", date(2026, 1, 1)),
)


def _doc(lines=LINES, **kw) -> StatementDocument:
    fields = dict(
        statement_no=NUMBER, month="2026-10", revision=1, status="draft",
        issued_on=date(2026, 11, 5), seller_name="宁波恒远精密机械有限公司",
        seller_uscc="91330201MA2H3K4L5X", seller_address="浙江省宁波市北仑区新碶街道明州路 188 号",
        seller_phone="0574-8688 1234", customer_legal_name=CUSTOMER, customer_uscc=USCC,
        lines=lines, policies=POLICIES, customer_code="C000123", region="华东", rep_name="张伟",
        note="返利金额将冲抵下月货款。")
    fields.update(kw)
    return StatementDocument(**fields)


def _many(n: int) -> tuple[StatementLine, ...]:
    return tuple(line(f"IO2610{i:02d}-{i:04d}ABCD", f"{100 + i}.{i % 100:02d}",
                      ("rebate", "tier_difference", "clawback", "adjustment")[i % 4]
                      if i % 4 != 2 else "clawback",
                      # explanations of varying length, so page breaks fall anywhere
                      explanation=f"第{i}笔说明：" + "季度累计销售额达到第2档，按8%返利。" * (i % 7 + 1))
                 for i in range(n))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("statement") / "statement.pdf"
    return path, render_statement_pdf(_doc(), path)


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("statement65") / "statement65.pdf"
    render_statement_pdf(_doc(_many(65), status="confirmed", confirmed_on=date(2026, 11, 9)),
                         path)
    return path


# ----------------------------------------------------------------- data and figures


def test_totals_and_subtotals_hand_computed():
    doc = _doc()
    assert doc.total == D("2368.07")  # 1234.56 + 987.65 - 120.10 + 265.96
    assert doc.subtotals() == {"rebate": (1, D("1234.56")), "tier_difference": (1, D("987.65")),
                               "clawback": (1, D("-120.10")), "adjustment": (1, D("265.96"))}
    assert doc.period_label == "2026年10月"


def test_percent_shows_up_to_four_decimals():
    assert format_percent(D("0.05")) == "5%"
    assert format_percent(D("0.054321")) == "5.4321%"
    assert format_percent(D("0.125")) == "12.5%"
    assert format_percent(D("0")) == "0%"


@pytest.mark.parametrize("bad", [
    lambda: replace(line(), amount=12.5),            # float money
    lambda: replace(line(), rate=0.05),
    lambda: line(kind="bonus"),
    lambda: _doc(lines=()),
    lambda: _doc(status="sent"),
    lambda: _doc(month="2026-13"),
], ids=["float-amount", "float-rate", "kind", "no-lines", "status", "month"])
def test_documents_that_cannot_be_stated_are_refused(bad):
    with pytest.raises((TypeError, ValueError)):
        bad()


def test_sha256_matches_file_and_bytes_are_deterministic(rendered):
    path, digest = rendered
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    assert statement_pdf_bytes(_doc()) == path.read_bytes()
    assert statement_pdf_bytes(_doc(status="confirmed")) != path.read_bytes()


# ----------------------------------------------------------------- poppler


@needs_poppler
def test_text_has_customer_period_lines_and_totals(rendered):
    path, _ = rendered
    raw = _run("pdftotext", str(path), "-")
    text = _squash(raw)
    for needle in (
        "返利结算对账单", CUSTOMER, USCC, NUMBER, "2026年10月（第1版）", "草稿", "C000123",
        "华东", "张伟",
        # the table and one line in full
        "订单号", "下单日期", "产品线/条款", "计算基数", "返利比例", "本期金额", "类型",
        "IO261008-4D8KQ2WZ", "2026-10-08", "监护（2026年第四季度）", "MON-2026Q4第2版第二条", "24,691.20",
        "5%", "1,234.56", "返利", "说明：季度累计销售额24,691.20元",
        # the other kinds, a negative amount, a rate with four decimals
        "阶梯补差", "退货冲回", "更正", "-120.10", "5.4321%", "CONS-2026第1版第三条",
        # subtotals, total in figures and in 大写
        "分类小计", "笔数", "合计", "本期合计（大写）", "贰仟叁佰陆拾捌元零柒分", "¥2,368.07",
        # policies referenced
        "依据的返利政策", "2026年第四季度监护产品返利政策", "2026-10-01至2026-12-31",
        "2026年度耗材返利政策", "2026-01-01起",
        # confirmation block, footer
        "客户确认", "客户（盖章）", "签字", "日期", "返利金额将冲抵下月货款",
    ):
        assert needle in text, needle
    pages = len([p for p in raw.split("\f") if p.strip()])
    assert all(f"第{n}页/共{pages}页" in text for n in range(1, pages + 1))


@needs_poppler
def test_all_fonts_embedded(rendered):
    path, _ = rendered
    out = _run("pdffonts", str(path)).splitlines()
    spans = [m.span() for m in re.finditer(r"-+", out[1])]
    header = [out[0][a:b].strip() for a, b in spans]
    rows = [{h: row[a:b].strip() for h, (a, b) in zip(header, spans)} for row in out[2:]]
    cjk = [r for r in rows if "DroidSansFallback" in r["name"]]
    assert cjk, out
    assert all(r["emb"] == "yes" and r["sub"] == "yes" for r in cjk), out
    assert all(r["emb"] == "yes" for r in rows), out  # nothing relies on viewer fonts


@needs_poppler
def test_title_and_total_paint_real_glyphs(rendered):
    pytest.importorskip("PIL")
    path, _ = rendered
    words = dict(_word_boxes(path))
    assert "返利结算对账单" in words and "¥2,368.07" in words, sorted(words)
    assert _looks_like_glyphs(_png(path, 100, words["返利结算对账单"]), 7)
    total = _png(path, 100, words["¥2,368.07"])
    assert sum(total.histogram()[:160]) / (total.width * total.height) > 0.08


@needs_poppler
def test_long_statement_paginates_with_header_and_explanations_kept(long_pdf):
    text = _run("pdftotext", str(long_pdf), "-")
    pages = [p for p in text.split("\f") if p.strip()]
    assert len(pages) >= 3
    for number, page in enumerate(pages, start=1):
        flat = _squash(page)
        assert f"第{number}页/共{len(pages)}页" in flat
        if number > 1:
            assert "返利结算对账单（续）" in flat and CUSTOMER in flat  # running head
    flats = [_squash(p) for p in pages]
    for i in range(65):  # a line never parts from its explanation
        order = f"IO2610{i:02d}-{i:04d}ABCD"
        on = [n for n, flat in enumerate(flats) if order in flat]
        assert len(on) == 1, order
        assert f"第{i}笔说明" in flats[on[0]]
    # the table header is repeated on every page that continues the table
    table_pages = [n for n, flat in enumerate(flats) if re.search(r"IO2610\d\d-", flat)]
    assert len(table_pages) >= 2
    assert all("计算基数" in flats[n] and "本期金额" in flats[n] for n in table_pages)
    doc = _doc(_many(65))
    flat = _squash(text)
    assert "已确认（2026年11月9日）" in flat and "草稿" not in flat
    assert f"¥{doc.total:,.2f}" in flat


@needs_poppler
def test_net_clawback_and_missing_optionals(tmp_path):
    doc = _doc((line("IO260920-2B6C8D4E", "-800.05", "clawback", explanation=""),),
               customer_uscc=None, customer_code=None, region=None, rep_name=None, note=None,
               policies=())
    path = tmp_path / "s.pdf"
    render_statement_pdf(doc, path)
    flat = _squash(_run("pdftotext", str(path), "-"))
    assert "-¥800.05" in flat and "负捌佰元零伍分" in flat
    assert flat.count("统一社会信用代码") == 1  # the seller's; the customer's row dropped
    assert "说明：" not in flat and "备注：" not in flat
    assert "MON-2026Q4" in flat and "第二条" in flat  # a cited policy is listed even if undescribed


@needs_poppler
def test_a_correction_states_the_month_before_and_after_and_the_signature_names_the_total(
        tmp_path):
    def text_of(doc) -> str:
        path = tmp_path / f"{doc.status}-{doc.revision}.pdf"
        render_statement_pdf(doc, path)
        return _squash(_run("pdftotext", str(path), "-"))

    text = text_of(_doc(revision=2, settled_before=D("10000.00")))
    assert "返利结算更正" in text
    assert "原结算金额¥10,000.00" in text and "更正后合计¥12,368.07" in text
    # the confirmation block restates the total it confirms, wherever the page breaks
    assert "本期合计金额¥2,368.07（贰仟叁佰陆拾捌元零柒分）" in text
    confirmed = text_of(_doc(status="confirmed", confirmed_on=date(2026, 11, 8)))
    assert "供方已确认" in confirmed and "原结算金额" not in confirmed
