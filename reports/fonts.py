"""Fonts for generated documents, registered with reportlab once per process.

The shipped CJK font (Droid Sans Fallback, Apache-2.0, see
fonts/LICENSE-DroidSansFallback.txt) has NO Latin glyphs: digits, ASCII letters
and most punctuation are missing from its cmap. Text is therefore split into
runs: characters the CJK font has go to it, everything else goes to Bitstream
Vera, a TrueType font that ships inside the reportlab package itself (so no
extra file or system font is needed). Both are TrueType, so reportlab embeds
them as subsets and the PDF renders on machines without Chinese fonts.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

import reportlab
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT_DIR = Path(__file__).resolve().parent / "fonts"
CJK_FONT_PATH = FONT_DIR / "DroidSansFallbackFull.ttf"
_VERA_DIR = Path(reportlab.__file__).resolve().parent / "fonts"

CJK_FONT_NAME = "DroidSansFallback"
LATIN_FONT_NAME = "SalesopsVera"
LATIN_BOLD_FONT_NAME = "SalesopsVera-Bold"

_lock = threading.Lock()


@dataclass(frozen=True)
class FontSet:
    cjk: str
    latin: str
    latin_bold: str


@lru_cache(maxsize=1)
def _registered() -> tuple[FontSet, frozenset[int], frozenset[int]]:
    # Parsing the 4 MB TTF takes ~0.1 s; lru_cache + lock make it once per process.
    with _lock:
        cjk = TTFont(CJK_FONT_NAME, str(CJK_FONT_PATH))  # subset-embedded by default
        latin = TTFont(LATIN_FONT_NAME, str(_VERA_DIR / "Vera.ttf"))
        latin_bold = TTFont(LATIN_BOLD_FONT_NAME, str(_VERA_DIR / "VeraBd.ttf"))
        for font in (cjk, latin, latin_bold):
            pdfmetrics.registerFont(font)
        cjk_chars = frozenset(cjk.face.charToGlyph)
        latin_chars = frozenset(latin.face.charToGlyph)
    return FontSet(CJK_FONT_NAME, LATIN_FONT_NAME, LATIN_BOLD_FONT_NAME), cjk_chars, latin_chars


def register_fonts() -> FontSet:
    """Register the document fonts (idempotent, cached) and return their names."""
    return _registered()[0]


def cjk_font_name() -> str:
    """Name of the embedded CJK font, registered on first call."""
    return register_fonts().cjk


def latin_font_name() -> str:
    return register_fonts().latin


def font_runs(text: str, *, bold: bool = False) -> list[tuple[str, str]]:
    """Split text into (font name, segment) runs so every glyph has a font.

    Spaces stick to the current run, so CJK text with a space does not bounce
    between fonts. A character neither font knows goes to the CJK font (it will
    show the .notdef box, which at least is visible).
    """
    fonts, cjk_chars, latin_chars = _registered()
    latin = fonts.latin_bold if bold else fonts.latin
    runs: list[tuple[str, str]] = []
    current: str | None = None
    buf: list[str] = []
    for ch in text:
        cp = ord(ch)
        if ch == " " and current is not None:
            buf.append(ch)
            continue
        if cp in latin_chars and (cp < 0x2E80 or cp not in cjk_chars):
            font = latin  # Latin, digits, ¥ and Western punctuation
        elif cp in cjk_chars:
            font = fonts.cjk
        else:
            font = latin if cp < 0x2E80 else fonts.cjk
        if font != current and buf:
            runs.append((current, "".join(buf)))  # type: ignore[arg-type]
            buf = []
        current = font
        buf.append(ch)
    if buf:
        runs.append((current or latin, "".join(buf)))
    return runs


def markup(text: str, *, bold: bool = False) -> str:
    """Paragraph markup for text with each run in a font that has its glyphs."""
    return "".join(
        f'<font name="{font}">{escape(seg)}</font>' for font, seg in font_runs(text, bold=bold)
    )


def string_width(text: str, size: float, *, bold: bool = False) -> float:
    return sum(pdfmetrics.stringWidth(seg, font, size) for font, seg in font_runs(text, bold=bold))


def draw_string(canvas, x: float, y: float, text: str, size: float, *,
                anchor: str = "left", bold: bool = False, render_mode: int = 0) -> None:
    """canvas.drawString for mixed CJK/Latin text; anchor is left, right or centre.

    render_mode 2 (fill + stroke) fakes bold for the CJK font, which has no bold face.
    """
    runs = font_runs(text, bold=bold)
    if anchor != "left":
        width = sum(pdfmetrics.stringWidth(seg, font, size) for font, seg in runs)
        x -= width if anchor == "right" else width / 2
    t = canvas.beginText(x, y)
    if render_mode:
        t.setTextRenderMode(render_mode)
    for font, seg in runs:
        t.setFont(font, size)
        t.textOut(seg)
    if render_mode:
        t.setTextRenderMode(0)  # Tr outlives ET; don't leak it into later text
    canvas.drawText(t)


__all__ = [
    "CJK_FONT_NAME", "CJK_FONT_PATH", "FontSet", "LATIN_BOLD_FONT_NAME", "LATIN_FONT_NAME",
    "cjk_font_name", "draw_string", "font_runs", "latin_font_name", "markup", "register_fonts",
    "string_width",
]
