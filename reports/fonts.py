"""Fonts for generated documents, registered with reportlab once per process.

The shipped CJK font (Droid Sans Fallback, Apache-2.0, see
fonts/LICENSE-DroidSansFallback.txt) has NO Latin glyphs: digits, ASCII letters
and most punctuation are missing from its cmap. Text is therefore split into
runs: characters the CJK font has go to it, everything else goes to Bitstream
Vera, a TrueType font that ships inside the reportlab package itself (so no
extra file or system font is needed). Both are TrueType, so reportlab embeds
them as subsets and the PDF renders on machines without Chinese fonts.

Neither has every character a legal name or a contract can hold: Droid Sans Fallback
stops at U+FFFF (no 𠀾 𫄨 𬍛 of CJK Extension B and later), and neither has ① or Ⅱ.
For those, optional fallback TrueType fonts are used per character: the files listed
in SALESOPS_PDF_FALLBACK_FONTS (os.pathsep-separated), then well-known system fonts
(fonts-hanazono's HanaMinA/HanaMinB, Windows' SimSun-ExtB). They are parsed only
when a document needs a character the shipped fonts lack. A character no font has
is never printed blank: it gets a readable substitute (Ⅱ → II, ① → (1)) or the
visible placeholder 〓, and a warning names the code point so ops can install a font.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

import reportlab
from reportlab.pdfbase import pdfmetrics, ttfonts
from reportlab.pdfbase.ttfonts import TTFont

FONT_DIR = Path(__file__).resolve().parent / "fonts"
CJK_FONT_PATH = FONT_DIR / "DroidSansFallbackFull.ttf"
_VERA_DIR = Path(reportlab.__file__).resolve().parent / "fonts"

CJK_FONT_NAME = "DroidSansFallback"
LATIN_FONT_NAME = "SalesopsVera"
LATIN_BOLD_FONT_NAME = "SalesopsVera-Bold"

FALLBACK_FONTS_ENV = "SALESOPS_PDF_FALLBACK_FONTS"
# Tried after the configured files, in this order; missing files are skipped quietly.
# (fonts-noto-cjk is no use here: its outlines are CFF, which reportlab's TTFont refuses.)
SYSTEM_FALLBACK_FONTS = (
    "/usr/share/fonts/truetype/hanazono/HanaMinA.ttf",  # Debian/Ubuntu fonts-hanazono
    "/usr/share/fonts/truetype/hanazono/HanaMinB.ttf",
    "C:/Windows/Fonts/simsunb.ttf",  # SimSun-ExtB
)
# Printed for a character no font has: visible, and the embedded CJK font has it.
PLACEHOLDER = "\u3013"  # 〓 (geta mark), the customary mark for a missing character

log = logging.getLogger(__name__)
_lock = threading.Lock()


def _utf16_to_unicode_cmap(make_cmap):
    """reportlab's ToUnicode CMap writes a code point above U+FFFF as five hex digits
    (<2003E>); PDF wants UTF-16BE there (<D840DC3E>), else text extraction and search read
    another character (pdftotext turns 𫄨 into ⬒). Rewrite just those entries."""
    def make(fontname, subset):
        cmap = make_cmap(fontname, subset)
        for i, cp in enumerate(subset):
            if cp > 0xFFFF:
                utf16 = chr(cp).encode("utf-16-be").hex().upper()
                cmap = cmap.replace("<%02X> <%04X>\n" % (i, cp), f"<{i:02X}> <{utf16}>\n")
        return cmap
    make.salesops_utf16 = True
    return make


if not getattr(ttfonts.makeToUnicodeCMap, "salesops_utf16", False) and \
        "<2003E>" in ttfonts.makeToUnicodeCMap("probe", [0x2003E, 0]):
    ttfonts.makeToUnicodeCMap = _utf16_to_unicode_cmap(ttfonts.makeToUnicodeCMap)


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


class FallbackFonts:
    """Extra TrueType fonts for characters the shipped fonts lack, parsed lazily (a CJK
    Extension font is 20–30 MB: only a document that needs one pays for it), and what to
    print for a character no font has. One per process; thread-safe."""

    def __init__(self, configured: Iterable[str | Path] = (),
                 system: Iterable[str | Path] = ()) -> None:
        self._configured = {Path(p) for p in configured}
        self._pending = list(dict.fromkeys(Path(p) for p in (*configured, *system)))
        self._loaded: list[tuple[str, frozenset[int]]] = []
        self._font_of: dict[int, str | None] = {}
        self._printed: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> FallbackFonts:
        configured = os.environ.get(FALLBACK_FONTS_ENV, "").split(os.pathsep)
        return cls([p.strip() for p in configured if p.strip()], SYSTEM_FALLBACK_FONTS)

    def font_for(self, cp: int) -> str | None:
        """Name of the first fallback font with a glyph for code point cp, or None."""
        try:
            return self._font_of[cp]
        except KeyError:
            pass
        with self._lock:
            found = next((name for name, chars in self._loaded if cp in chars), None)
            while found is None and self._pending:
                loaded = self._load(self._pending.pop(0))
                if loaded and cp in loaded[1]:
                    found = loaded[0]
            self._font_of[cp] = found
        return found

    def _load(self, path: Path) -> tuple[str, frozenset[int]] | None:
        if not path.is_file():
            if path in self._configured:
                log.warning("%s: no font file at %s; ignored", FALLBACK_FONTS_ENV, path)
            return None
        # reportlab's font registry is process-wide: one name per file, never reused
        name = f"SalesopsFallback-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"
        try:
            font = TTFont(name, str(path))
        except Exception as exc:  # TTFError (e.g. CFF outlines), unreadable file
            log.warning("PDF fallback font %s not usable (%s); ignored", path, exc)
            return None
        pdfmetrics.registerFont(font)
        self._loaded.append((name, frozenset(font.face.charToGlyph)))
        return self._loaded[-1]

    def substitute(self, ch: str, printable) -> str:
        """What to print for ch, which no font has: its compatibility form (Ⅱ → II), a
        circled figure in brackets (① → (1)), else the placeholder 〓; `printable(c)` says
        whether some font has c. Logged once per character (the code point only)."""
        try:
            return self._printed[ch]
        except KeyError:
            pass
        plain = unicodedata.normalize("NFKC", ch)
        if unicodedata.decomposition(ch).startswith("<circle>"):
            plain = f"({plain})"
        shown = plain if plain != ch and all(printable(c) for c in plain) else PLACEHOLDER
        self._printed[ch] = shown
        log.warning("PDF text: no font has U+%04X, printed as %r; install fonts-hanazono or "
                    "list a TrueType font with it in %s", ord(ch), shown, FALLBACK_FONTS_ENV)
        return shown


_fallbacks = FallbackFonts.from_environment()


def _font_key(ch: str, cjk_chars: frozenset[int], latin_chars: frozenset[int]) -> str | None:
    """"latin", "cjk", a fallback font's name, or None when no font has ch."""
    cp = ord(ch)
    if cp in latin_chars and (cp < 0x2E80 or cp not in cjk_chars):
        return "latin"  # Latin, digits, ¥ and Western punctuation
    if cp in cjk_chars:
        return "cjk"
    return _fallbacks.font_for(cp)


def has_glyph(ch: str) -> bool:
    """Whether a shipped or fallback font can print ch (then it is printed as itself)."""
    _, cjk_chars, latin_chars = _registered()
    return _font_key(ch, cjk_chars, latin_chars) is not None


def _printed(text: str, cjk_chars: frozenset[int], latin_chars: frozenset[int]):
    """(font key, character) for every character as it will be printed."""
    for ch in text:
        key = _font_key(ch, cjk_chars, latin_chars)
        if key is not None:
            yield key, ch
        elif unicodedata.category(ch) == "Cc":
            yield ("latin" if ord(ch) < 0x2E80 else "cjk"), ch  # layout's business, not ours
        elif unicodedata.category(ch) == "Cf" or "VARIATION SELECTOR" in unicodedata.name(ch, ""):
            continue  # invisible by definition (zero-width space, glyph variant selectors)
        else:
            for sub in _fallbacks.substitute(ch, has_glyph):
                yield _font_key(sub, cjk_chars, latin_chars) or "cjk", sub


def font_runs(text: str, *, bold: bool = False) -> list[tuple[str, str]]:
    """Split text into (font name, segment) runs so every glyph has a font.

    Spaces stick to the current run, so CJK text with a space does not bounce
    between fonts. A character no font has is replaced by its substitute here, so
    drawing and measuring (string_width) see the same text.
    """
    fonts, cjk_chars, latin_chars = _registered()
    latin = fonts.latin_bold if bold else fonts.latin
    names = {"latin": latin, "cjk": fonts.cjk}
    runs: list[tuple[str, str]] = []
    current: str | None = None
    buf: list[str] = []
    for key, ch in _printed(text, cjk_chars, latin_chars):
        if ch == " " and current is not None:
            buf.append(ch)
            continue
        font = names.get(key, key)
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
    "CJK_FONT_NAME", "CJK_FONT_PATH", "FALLBACK_FONTS_ENV", "FallbackFonts", "FontSet",
    "LATIN_BOLD_FONT_NAME", "LATIN_FONT_NAME", "PLACEHOLDER", "SYSTEM_FALLBACK_FONTS",
    "cjk_font_name", "draw_string", "font_runs", "has_glyph", "latin_font_name", "markup",
    "register_fonts", "string_width",
]
