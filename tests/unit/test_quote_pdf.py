"""Quote PDF renderer: numbers, text, embedded fonts and what actually gets painted.

The poppler checks matter because the shipped CJK font has no Latin glyphs and
the Latin font has no CJK glyphs: text can extract fine from a PDF that shows
blanks or tofu boxes, so glyph ink is checked on rendered pixels as well.
"""
from __future__ import annotations

import hashlib
import html
import io
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest

from reports.quote_pdf import (
    QuoteDocument,
    QuoteLine,
    format_money,
    format_rate,
    quote_pdf_bytes,
    render_quote_pdf,
)

POPPLER = ("pdftotext", "pdftoppm", "pdffonts")
_missing = [b for b in POPPLER if shutil.which(b) is None]
needs_poppler = pytest.mark.skipif(
    bool(_missing), reason=f"poppler-utils binaries missing: {', '.join(_missing)}"
)

CODE = "QT-20261111-0042"
LEGAL_NAME = "苏州华创智能装备股份有限公司"


def _doc(lines: tuple[QuoteLine, ...] | None = None, **kw) -> QuoteDocument:
    fields = dict(
        code=CODE,
        issued_on=date(2026, 11, 11),
        valid_until=date(2026, 12, 11),
        seller_name="宁波恒远精密机械有限公司",
        seller_uscc="91330201MA2H3K4L5X",
        seller_address="浙江省宁波市北仑区新碶街道明州路 188 号",
        seller_phone="0574-8688 1234",
        seller_bank="中国工商银行宁波北仑支行 3901 1100 0920 0123 456",
        customer_legal_name=LEGAL_NAME,
        customer_uscc="91320594MA1N2P3Q4R",
        contact_name="李明",
        contact_phone="138 1234 5678",
        rep_name="王芳",
        lines=lines or (
            QuoteLine("XJ-200A", "立式加工中心主轴组件", 3, "套", D("1299.00"), D("0.13")),
            QuoteLine("HV-15800", "高压变频控制柜（含安装调试服务）", 2, "台", D("15800.00"), D("0.13")),
        ),
        signing_url=f"https://hub.example.cn/q/sign/{CODE}?t=8f3a9c2d71e54b06",
        wanted_delivery_date=date(2026, 12, 1),
        note="价格含运费至客户苏州工厂。",
    )
    fields.update(kw)
    return QuoteDocument(**fields)


def _many_lines(n: int) -> tuple[QuoteLine, ...]:
    return tuple(
        QuoteLine(f"PN-{i:04d}-S", f"不锈钢紧固件 M{i % 20 + 4}×{i % 5 * 10 + 20}", i + 1, "件",
                  D("3.45") + i, D("0.13"))
        for i in range(n)
    )


def _run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def _squash(text: str) -> str:
    # pdftotext spacing between font runs is geometry-driven; compare without it.
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("quote") / "quote.pdf"
    return path, render_quote_pdf(_doc(), path)


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("quote40") / "quote40.pdf"
    render_quote_pdf(_doc(_many_lines(40)), path)
    return path


# ----------------------------------------------------------------- pure numbers


def test_line_amount_and_tax_half_up():
    line = QuoteLine("A", "甲", 3, "套", D("1299.00"), D("0.13"))
    assert line.amount == D("3897.00")
    assert line.tax == D("448.33")  # 3897 - 3897/1.13 = 448.3274…
    assert QuoteLine("B", "乙", 3, "件", D("0.335"), D("0.13")).amount == D("1.01")  # 1.005 → up


def test_document_totals_hand_computed():
    doc = _doc()
    assert doc.total == D("35497.00")
    assert doc.tax_total == D("448.33") + D("3635.40")  # 31600 - 31600/1.13 = 3635.398…
    assert all(isinstance(x, D) for x in (doc.total, doc.tax_total))


def test_float_money_is_refused():
    with pytest.raises(TypeError):
        QuoteLine("A", "甲", 1, "件", 12.5, D("0.13"))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        replace(_doc(), lines=())


def test_formatting_helpers():
    assert format_money(D("12345.6"), symbol=True) == "¥12,345.60"
    assert format_money(D("1234567.005")) == "1,234,567.01"
    assert format_money(D("-1000"), symbol=True) == "-¥1,000.00"
    assert format_rate(D("0.13")) == "13%"
    assert format_rate(D("0.065")) == "6.5%"
    assert format_rate(D("0.10")) == "10%"


# ----------------------------------------------------------------- files


def test_sha256_matches_file_and_write_is_atomic(rendered):
    path, digest = rendered
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.read_bytes().startswith(b"%PDF-")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_same_document_renders_identical_bytes():
    assert quote_pdf_bytes(_doc()) == quote_pdf_bytes(_doc())


# ----------------------------------------------------------------- poppler


@needs_poppler
def test_text_has_customer_code_and_totals(rendered):
    path, _ = rendered
    text = _squash(_run("pdftotext", str(path), "-"))
    for needle in (
        LEGAL_NAME, CODE, "报价单", "91320594MA1N2P3Q4R",
        "合计金额（大写）", "叁万伍仟肆佰玖拾柒元整", "¥35,497.00",
        "3,897.00", "31,600.00", "1,299.00", "15,800.00", "448.33", "3,635.40", "4,083.73",
        "本报价有效期至2026年12月11日", "期望交货日期：2026年12月1日",
        "扫码在线签署", "hub.example.cn", "第1页/共1页",
        "序号", "型号", "品名", "数量", "单位", "含税单价", "金额", "税率", "税额",
    ):
        assert needle in text, needle


@needs_poppler
def test_all_fonts_embedded(rendered):
    path, _ = rendered
    out = _run("pdffonts", str(path)).splitlines()
    # Slice columns by the dashed ruler: names may contain spaces, columns never overlap.
    spans = [m.span() for m in re.finditer(r"-+", out[1])]
    header = [out[0][a:b].strip() for a, b in spans]
    rows = [{h: line[a:b].strip() for h, (a, b) in zip(header, spans)} for line in out[2:]]
    cjk = [r for r in rows if "DroidSansFallback" in r["name"]]
    assert cjk, out
    assert all(r["emb"] == "yes" for r in cjk), out
    assert all(r["sub"] == "yes" for r in cjk), out  # subset, not the whole 4 MB
    assert all(r["emb"] == "yes" for r in rows), out  # nothing relies on viewer fonts


def _word_boxes(pdf: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
    out = _run("pdftotext", "-f", "1", "-l", "1", "-bbox", str(pdf), "-")
    return [
        (html.unescape(m.group(5)), tuple(float(m.group(i)) for i in range(1, 5)))
        for m in re.finditer(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', out)
    ]


def _png(pdf: Path, dpi: int, box: tuple[float, float, float, float] | None = None):
    from PIL import Image

    args = ["pdftoppm", "-r", str(dpi), "-png", "-f", "1", "-l", "1"]
    if box:
        s = dpi / 72  # bbox is in points from the top-left, as pdftoppm crops
        x0, y0, x1, y1 = box
        args += ["-x", str(int(x0 * s)), "-y", str(int(y0 * s)),
                 "-W", str(int((x1 - x0) * s) + 1), "-H", str(int((y1 - y0) * s) + 1)]
    png = subprocess.run([*args, str(pdf)], capture_output=True, check=True).stdout
    return Image.open(io.BytesIO(png)).convert("L")


def _dark_fraction(im) -> float:
    hist = im.histogram()
    return sum(hist[:160]) / (im.width * im.height)


def _max_runs(im) -> int:
    """Most separate dark strokes crossed by one scanline."""
    px, best = im.load(), 0
    for y in range(im.height):
        runs, prev = 0, False
        for x in range(im.width):
            dark = px[x, y] < 160
            runs += dark and not prev
            prev = dark
        best = max(best, runs)
    return best


def _looks_like_glyphs(im, n_chars: int) -> bool:
    # A missing glyph paints nothing or a hollow box: a scanline then crosses at
    # most 2 edges per character horizontally and 2 vertically. Real CJK glyphs
    # have several strokes in both directions.
    from PIL import Image

    return (
        _dark_fraction(im) > 0.08
        and _max_runs(im) > 2 * n_chars
        and _max_runs(im.transpose(Image.Transpose.ROTATE_90)) > 2
    )


@needs_poppler
def test_page_renders_with_real_glyphs(rendered, tmp_path):
    pytest.importorskip("PIL")
    path, _ = rendered
    page = _png(path, 60)
    assert page.width > 400 and page.height > 600
    assert 0.01 < _dark_fraction(page) < 0.5  # not blank, not a black slab

    words = dict(_word_boxes(path))
    assert "报价单" in words and "¥35,497.00" in words, sorted(words)
    title = _png(path, 100, words["报价单"])
    assert _looks_like_glyphs(title, 3)
    total = _png(path, 100, words["¥35,497.00"])  # Latin run: a different font
    assert _dark_fraction(total) > 0.08

    # Negative control: the same check must reject tofu boxes (CJK text in the
    # Latin font) and blanks (CJK font asked for glyphs it lacks).
    from reportlab.pdfgen.canvas import Canvas

    from reports.fonts import register_fonts

    fonts = register_fonts()
    ctl = tmp_path / "control.pdf"
    c = Canvas(str(ctl), pagesize=(200, 100))
    c.setFont(fonts.latin, 22)
    c.drawString(10, 60, "报价单")
    c.setFont(fonts.cjk, 22)
    c.drawString(10, 20, "QTX")
    c.save()
    tofu = _png(ctl, 100, (10, 100 - 60 - 20, 76, 100 - 60 + 5))
    blank = _png(ctl, 100, (10, 100 - 20 - 20, 76, 100 - 20 + 5))
    assert not _looks_like_glyphs(tofu, 3)
    assert not _looks_like_glyphs(blank, 3)


@needs_poppler
def test_qr_code_paints_the_encoded_signing_url(rendered):
    """No QR decoder is installed, so check module by module that the painted
    code is exactly reportlab's encoding of signing_url (level M)."""
    pytest.importorskip("PIL")
    from reportlab.graphics.barcode.qr import QrCodeWidget

    path, _ = rendered
    x0, y0, x1, _y1 = dict(_word_boxes(path))["扫码在线签署"]
    cx, mm = (x0 + x1) / 2, 72 / 25.4
    # The 34 mm code (its quiet zone included) sits centred just above its caption.
    dpi = 300
    region = _png(path, dpi, (cx - 20 * mm, y0 - 35.5 * mm, cx + 20 * mm, y0 - 0.5 * mm))
    dark = region.point(lambda v: 255 if v < 128 else 0)
    left, top, right, bottom = dark.getbbox()
    assert abs((right - left) - (bottom - top)) <= 2  # square

    qr = QrCodeWidget(_doc().signing_url, barLevel="M").qr
    qr.make()
    n = qr.getModuleCount()
    step = (right - left) / n
    px = region.load()
    painted = [[px[int(left + (c + 0.5) * step), int(top + (r + 0.5) * step)] < 128
                for c in range(n)] for r in range(n)]
    assert painted == [[bool(m) for m in row] for row in qr.modules]


@needs_poppler
def test_long_quote_flows_onto_pages_with_header_and_footer(long_pdf):
    text = _run("pdftotext", str(long_pdf), "-")
    pages = [p for p in text.split("\f") if p.strip()]
    assert len(pages) >= 2
    footers = [int(n) for n in re.findall(r"共\s*(\d+)\s*页", text)]
    assert footers and all(n == len(pages) for n in footers)
    for number, page in enumerate(pages, start=1):
        flat = _squash(page)
        assert "含税单价" in flat  # table header repeated on every page
        assert f"第{number}页/共{len(pages)}页" in flat
    flat = _squash(text)
    assert "PN-0000-S" in flat and "PN-0039-S" in flat
    doc = _doc(_many_lines(40))
    assert format_money(doc.total, symbol=True) in flat


@needs_poppler
def test_markup_characters_big_figures_and_missing_optionals(tmp_path):
    big = QuoteLine("ZK-9000-ULTRA-HIGHSPEED-SPINDLE-V2", "数控龙门加工中心配套高精度电主轴（含冷却机组、变频器及三年质保服务）",
                    1200, "套", D("128888.88"), D("0.13"))
    doc = _doc(
        (big,),
        customer_legal_name="R&D <深圳> 科技有限公司",
        customer_uscc=None, contact_name=None, contact_phone=None, rep_name=None,
        wanted_delivery_date=None, note="第一行\n第二行 & 更多",
    )
    path = tmp_path / "q.pdf"
    render_quote_pdf(doc, path)
    flat = _squash(_run("pdftotext", str(path), "-"))
    assert "R&D<深圳>科技有限公司" in flat
    # Figures too wide for their column shrink instead of wrapping mid-number.
    assert big.amount == D("154666656.00")
    for figure in ("154,666,656.00", "17,793,509.10", "¥154,666,656.00"):
        assert figure in flat, figure
    assert "壹亿伍仟肆佰陆拾陆万陆仟陆佰伍拾陆元整" in flat
    assert "第一行" in flat and "第二行&更多" in flat
    assert "期望交货日期" not in flat
    assert "统一社会信用代码" in flat  # seller's, still shown
    assert flat.count("统一社会信用代码") == 1  # customer's row dropped when unknown


def test_replace_keeps_lines_tuple():
    doc = replace(_doc(), lines=list(_many_lines(2)))
    assert isinstance(doc.lines, tuple)
