"""Audit 5 (intent-order pipeline): the quote's QR code keeps the quiet zone a reader needs."""
from __future__ import annotations

import pytest
from reportlab.graphics.barcode.qr import QrCodeWidget

from reports.quote_pdf import render_quote_pdf
from tests.unit.test_quote_pdf import _doc, _png, _word_boxes, needs_poppler


@needs_poppler
def test_the_qr_code_has_four_light_modules_on_every_side(tmp_path):
    """ISO/IEC 18004 asks for a light margin of 4 modules; the caption under the code sat
    closer than 3, which phone readers trip over on a small print."""
    pytest.importorskip("PIL")
    path = tmp_path / "quote.pdf"
    render_quote_pdf(_doc(), path)
    x0, y0, x1, y1 = dict(_word_boxes(path))["扫码在线签署"]
    cx, mm = (x0 + x1) / 2, 72 / 25.4
    dpi = 600
    region = _png(path, dpi, (cx - 22 * mm, y0 - 40 * mm, cx + 22 * mm, y1))
    px = region.load()
    dark_rows = [y for y in range(region.height)
                 if any(px[x, y] < 128 for x in range(region.width))]
    runs, start = [], dark_rows[0]  # runs of consecutive dark rows: box line, code, caption
    for a, b in zip(dark_rows, dark_rows[1:] + [None]):
        if b != a + 1:
            runs.append((start, a))
            start = b
    top, bottom = max(runs, key=lambda r: r[1] - r[0])  # the code is the tallest run
    qr = QrCodeWidget(_doc().signing_url, barLevel="M").qr
    qr.make()
    module = (bottom - top + 1) / qr.getModuleCount()
    below = [r for r in runs if r[0] > bottom]
    assert below, "the caption must follow the code"
    assert below[0][0] - bottom - 1 >= 4 * module - 1
    above = [r for r in runs if r[1] < top]
    assert not above or top - above[-1][1] - 1 >= 4 * module - 1
    cols = [x for x in range(region.width) if any(px[x, y] < 128 for y in range(top, bottom + 1))]
    assert cols[0] >= 4 * module and region.width - 1 - cols[-1] >= 4 * module
