"""An order line keeps the model (型号) and name (品名) it was ordered under, like its unit and
price: the catalogue renaming a product after the order came in changes neither the quote PDF,
nor the signing page, nor the invoice request to finance; they all say what the order said."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from flows.order_steps import order_lines, signing_link
from models import Product, Quote
from models.db import session_scope
from models.oplog import apply_changes
from tests.support import order_payload, post_order, run_pending, sign_the_quote_of
from tests.unit.test_quote_pdf import _run, _squash, needs_poppler

pytestmark = pytest.mark.usefixtures("prefect_harness")

ORDERED = [("MON-M8", "M8", "多参数监护仪"), ("PUMP-SP3", "SP3", "注射泵")]
RENAMED = {"MON-M8": ("M9Pro", "便携式监护仪"), "PUMP-SP3": ("SP7X", "微量输液泵")}


def rename(db_url: str) -> None:
    """The catalogue's model and name of each SKU changed (as a product master update would)."""
    with session_scope(db_url) as s:
        for sku, (model, name) in RENAMED.items():
            apply_changes(s, s.get(Product, sku), "test", model=model, name=name)


@needs_poppler
def test_quote_signing_page_and_invoice_keep_the_ordered_model_and_name(hub, client):
    oid = post_order(client, order_payload(lines=(("MON-M8", 2), ("PUMP-SP3", 1)))).json()[
        "order_id"]
    rename(hub.db_url)  # after the order came in, before its quote
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        assert [(ln.sku, ln.model, ln.name) for ln in order_lines(s, oid)] == ORDERED
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
        link = signing_link(hub.settings, quote).removeprefix("http://testserver")
    renamed = [word for pair in RENAMED.values() for word in pair]

    text = _squash(_run("pdftotext", quote.pdf_path, "-"))
    for _, model, name in ORDERED:
        assert model in text and name in text
    assert not [word for word in renamed if word in text]

    page = client.get(link).text
    for _, model, name in ORDERED:
        assert f"<td>{model}<div class='muted'>{name}</div></td>" in page
    assert not [word for word in renamed if word in page]

    quote, answer = sign_the_quote_of(hub, client, oid)
    assert answer.status_code == 200
    run_pending(hub)  # signing completed: the invoice request goes to finance
    drop = Path(hub.settings.data_dir) / "finance-drop"
    sent = json.loads((drop / f"INV-{quote.code}.json").read_text(encoding="utf-8"))["request"]
    assert [(ln["sku"], ln["model"], ln["name"]) for ln in sent["lines"]] == ORDERED

    # an order taken after the rename is under the catalogue's new model and name
    later = post_order(client, order_payload(lines=(("MON-M8", 1),))).json()["order_id"]
    with session_scope(hub.db_url) as s:
        assert [(ln.model, ln.name) for ln in order_lines(s, later)] == [RENAMED["MON-M8"]]
