"""reports/fonts.py: fallback fonts for characters the shipped fonts lack, and what is
printed when no font has one (never a blank)."""
from __future__ import annotations

import logging
import os

import pytest

from reports import fonts


@pytest.fixture
def no_fallback(monkeypatch):
    monkeypatch.setattr(fonts, "_fallbacks", fonts.FallbackFonts())


def test_a_character_no_font_has_is_printed_as_a_readable_substitute(no_fallback, caplog):
    with caplog.at_level(logging.WARNING, logger="reports.fonts"):
        runs = fonts.font_runs("第①项Ⅱ类𫄨⑳")
    assert "".join(seg for _, seg in runs) == "第(1)项II类〓(20)"
    assert [font for font, seg in runs if "〓" in seg] == [fonts.CJK_FONT_NAME]
    assert "U+2B128" in caplog.text and "U+2460" in caplog.text
    # measured as drawn, so layout keeps the substitute's width
    assert fonts.string_width("①", 10) == fonts.string_width("(1)", 10)


def test_invisible_characters_are_dropped_not_replaced(no_fallback, caplog):
    with caplog.at_level(logging.WARNING, logger="reports.fonts"):
        runs = fonts.font_runs("江苏\u200b康达\ufe00")
    assert "".join(seg for _, seg in runs) == "江苏康达"
    assert not caplog.text


def test_a_configured_font_that_is_missing_or_not_truetype_is_named_and_skipped(
        tmp_path, monkeypatch, caplog):
    otf = tmp_path / "NotoSansCJK.otf"
    otf.write_bytes(b"OTTO" + bytes(200))  # CFF outlines: reportlab's TTFont refuses them
    monkeypatch.setenv(fonts.FALLBACK_FONTS_ENV, f"{tmp_path / 'gone.ttf'}{os.pathsep}{otf}")
    monkeypatch.setattr(fonts, "SYSTEM_FALLBACK_FONTS", ())
    monkeypatch.setattr(fonts, "_fallbacks", fonts.FallbackFonts.from_environment())
    with caplog.at_level(logging.WARNING, logger="reports.fonts"):
        assert fonts.font_runs("Ⅱ") == [(fonts.LATIN_FONT_NAME, "II")]
    assert "gone.ttf" in caplog.text and "NotoSansCJK.otf" in caplog.text


def test_a_character_beyond_u_ffff_is_extracted_as_itself():
    """reportlab writes such code points into the ToUnicode map as five hex digits; the fix
    writes UTF-16 surrogates, which PDF readers understand."""
    from reportlab.pdfbase import ttfonts

    cmap = ttfonts.makeToUnicodeCMap("probe", [0, 0x4E59, 0x2B128])
    assert "<01> <4E59>\n" in cmap and "<02> <D86CDD28>\n" in cmap
