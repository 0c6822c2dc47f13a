"""Inventory: our own stock table in one query, and the REST ERP client against its simulator."""
from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import SecretStr
from sqlalchemy import event
from sqlmodel import SQLModel

import models  # noqa: F401 - registers every table for create_all
from connectors.base import PermanentError
from connectors.inventory import EmbeddedInventory, Inventory, RestErpInventory
from models.catalog import Product, StockLevel
from models.db import get_engine, session_scope
from tests.simulators.base import Faults, Reply
from tests.simulators.erp_sim import STOCK_PATH, ErpSimulator

TOKEN = "erp-secret-token"
CALL = f"POST {STOCK_PATH}"


# --- embedded ------------------------------------------------------------------------------

@pytest.fixture
def db_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    SQLModel.metadata.create_all(get_engine(url))
    with session_scope(url) as s:
        for n in range(600):
            sku = f"SKU-{n:04d}"
            s.add(Product(sku=sku, model=f"HR-{n}", name=f"精密减速机 {n} 型",
                          product_line="减速机", list_price=Decimal("1280.00")))
            s.add(StockLevel(sku=sku, on_hand=n, reserved=n % 7))
        s.add(Product(sku="泵-离心-01", model="IS50", name="离心泵", product_line="泵",
                      list_price=Decimal("860.50")))
        s.add(StockLevel(sku="泵-离心-01", warehouse="苏州仓", on_hand=3, reserved=5))
    return url


def count_selects(url):
    statements = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(get_engine(url), "before_cursor_execute", before)
    return statements, lambda: event.remove(get_engine(url), "before_cursor_execute", before)


def test_embedded_availability_is_on_hand_minus_reserved(db_url):
    inventory = EmbeddedInventory(db_url)
    assert isinstance(inventory, Inventory)
    assert inventory.availability(["SKU-0010", "SKU-0100", "不存在-SKU"]) == {
        "SKU-0010": 10 - 3, "SKU-0100": 100 - 2, "不存在-SKU": 0}


def test_embedded_reports_over_reservation_as_negative(db_url):
    # a shortage the purchase alert must see, not hide behind 0
    assert EmbeddedInventory(db_url).availability(["泵-离心-01"]) == {"泵-离心-01": -2}


def test_embedded_answers_a_large_batch_in_one_query(db_url):
    skus = [f"SKU-{n:04d}" for n in range(0, 1200, 1)]  # 600 known, 600 unknown
    statements, stop = count_selects(db_url)
    try:
        result = EmbeddedInventory(db_url).availability(skus + skus[:10])  # duplicates too
    finally:
        stop()
    assert len(statements) == 1
    assert list(result) == skus
    assert result["SKU-0599"] == 599 - 599 % 7
    assert result["SKU-0600"] == 0 and result["SKU-1199"] == 0


def test_embedded_empty_batch_asks_nothing(db_url):
    statements, stop = count_selects(db_url)
    try:
        assert EmbeddedInventory(db_url).availability([]) == {}
    finally:
        stop()
    assert statements == []


# --- REST ERP ------------------------------------------------------------------------------

STOCK = {f"M-{n:04d}": n * 3 for n in range(450)} | {"泵-离心-01": 12, "阀门/DN50": 0}


@pytest.fixture
def sim():
    with ErpSimulator(TOKEN, STOCK) as simulator:
        yield simulator


def client(sim, token=TOKEN, attempts=4, timeout=2.0):
    return RestErpInventory(sim.url, SecretStr(token), timeout, attempts)


def test_erp_happy_path_with_chinese_skus(sim):
    with client(sim) as inventory:
        assert isinstance(inventory, Inventory)
        assert inventory.availability(["泵-离心-01", "阀门/DN50", "M-0002", "无此物料"]) == {
            "泵-离心-01": 12, "阀门/DN50": 0, "M-0002": 6, "无此物料": 0}
    assert sim.calls[CALL] == 1


def test_erp_batches_at_most_200_skus_per_call(sim):
    skus = [f"M-{n:04d}" for n in range(450)] + ["无此物料"]
    with client(sim) as inventory:
        result = inventory.availability(skus)
    assert sim.stock_batches == [200, 200, 51]
    assert result == {**{s: STOCK[s] for s in skus[:-1]}, "无此物料": 0}


def test_erp_empty_batch_makes_no_call(sim):
    with client(sim) as inventory:
        assert inventory.availability([]) == {}
    assert sim.calls[CALL] == 0


def test_erp_refused_token_is_permanent_and_not_retried(sim):
    with client(sim, token="expired", attempts=5) as inventory:
        with pytest.raises(PermanentError) as info:
            inventory.availability(["M-0001"])
    assert info.value.code == "401"
    assert sim.calls[CALL] == 1


def test_erp_answer_that_breaks_the_contract_is_permanent(sim):
    sim.handle = lambda request: Reply(200, {"items": [{"sku": "M-0001", "available": 2.5}]})
    with client(sim) as inventory, pytest.raises(PermanentError):
        inventory.availability(["M-0001"])
    assert sim.calls[CALL] == 1


def test_erp_survives_injected_5xx_and_timeouts():
    faults = Faults(rate=0.2, hang_seconds=1.5, seed=11)
    skus = list(STOCK)
    with ErpSimulator(TOKEN, STOCK, faults=faults) as sim:
        with client(sim, attempts=6, timeout=0.5) as inventory:
            for _ in range(4):
                assert inventory.availability(skus) == STOCK
        assert sim.injected["5xx"] > 0 and sim.injected["hang"] > 0
        assert max(sim.stock_batches) <= 200  # 452 SKUs → 3 batches per call
        assert len(sim.stock_batches) >= 4 * 3
