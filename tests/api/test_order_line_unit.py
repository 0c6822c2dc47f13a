"""An order line keeps the unit it was ordered in, like its price: the catalogue moving a
product from 台 to 套 (or electrodes from 盒 to 箱) changes neither the signing page nor the
quote of an order taken before; an order taken after the change is in the new unit."""
from __future__ import annotations

import pytest
from sqlmodel import select

from flows.order_steps import order_lines, quote_document, signing_link
from models import IntentOrder, Product, Quote
from models.db import session_scope
from models.oplog import apply_changes
from tests.support import order_payload, post_order, run_pending

pytestmark = pytest.mark.usefixtures("prefect_harness")

LINES = (("MON-M8", 2), ("CONS-ECG10", 30))


def quoted_order(hub, client) -> str:
    oid = post_order(client, order_payload(lines=LINES)).json()["order_id"]
    run_pending(hub)
    return oid


def change_units(db_url: str, units: dict[str, str]) -> None:
    """The catalogue's unit of each SKU changed (as a product master update would)."""
    with session_scope(db_url) as s:
        for sku, unit in units.items():
            apply_changes(s, s.get(Product, sku), "test", unit=unit)


def signing_page(hub, client, order_id: str) -> str:
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == order_id)).one()
        link = signing_link(hub.settings, quote).removeprefix("http://testserver")
    r = client.get(link)
    assert r.status_code == 200
    return r.text


def quoted_units(hub, order_id: str) -> list[tuple[int, str]]:
    """(quantity, unit) of the quote's lines as the quote PDF is built from them."""
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
        quote = s.exec(select(Quote).where(Quote.order_id == order_id)).one()
        doc = quote_document(hub.settings, s, order, quote, order_lines(s, order_id), "link")
        return [(ln.quantity, ln.unit) for ln in doc.lines]


def test_the_signing_page_and_quote_keep_the_ordered_unit_after_a_catalogue_change(hub, client):
    before = quoted_order(hub, client)
    page = signing_page(hub, client, before)
    assert "<td class='num'>2台</td>" in page and "<td class='num'>30盒</td>" in page

    change_units(hub.db_url, {"MON-M8": "套", "CONS-ECG10": "箱"})
    page = signing_page(hub, client, before)
    assert "<td class='num'>2台</td>" in page and "<td class='num'>30盒</td>" in page
    assert "2套" not in page and "30箱" not in page
    assert quoted_units(hub, before) == [(2, "台"), (30, "盒")]

    # an order taken after the change is in the catalogue's new units
    after = quoted_order(hub, client)
    page = signing_page(hub, client, after)
    assert "<td class='num'>2套</td>" in page and "<td class='num'>30箱</td>" in page
    assert quoted_units(hub, after) == [(2, "套"), (30, "箱")]
    with session_scope(hub.db_url) as s:
        assert [ln.unit for ln in order_lines(s, before)] == ["台", "盒"]
