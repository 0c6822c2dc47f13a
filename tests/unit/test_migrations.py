"""The Alembic migrations build exactly the schema the models describe."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import models  # noqa: F401 - registers every table
from deployments.seed import customer_id, record_signed_order
from models.db import downgrade, get_engine, migrate


def test_migrations_match_the_models(db_url):
    with get_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_the_lines_of_earlier_orders_take_their_products_unit(seeded):
    """Migration 0016: lines stored before it get their product's unit (台 for the monitor,
    盒 for the electrodes), and the column is required from then on."""
    db_url = seeded.db_url
    order = record_signed_order(db_url, customer_id(db_url, "江苏康达医疗设备有限公司"),
                                dt.date(2026, 10, 10), [("MON-M8", 5), ("CONS-ECG10", 100)],
                                delivered_on=False)
    downgrade(db_url, "0015")
    engine = get_engine(db_url)
    assert "unit" not in {c["name"] for c in sa.inspect(engine).get_columns("intent_order_line")}
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO intent_order_line (order_id, line_no, sku, quantity, unit_price, "
            "tax_rate) VALUES (:order, 3, 'PUMP-SP3', 2, 100, 0.13)"), {"order": order})
    migrate(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT line_no, unit FROM intent_order_line WHERE order_id = :order "
            "ORDER BY line_no"), {"order": order}).all() == [(1, "台"), (2, "盒"), (3, "台")]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO intent_order_line (order_id, line_no, sku, quantity, unit_price, "
            "tax_rate) VALUES (:order, 4, 'PUMP-SP3', 2, 100, 0.13)"), {"order": order})


def test_the_lines_of_earlier_orders_take_their_products_model_and_name(seeded):
    """Migration 0017: lines stored before it get their product's model (型号) and name (品名),
    and both columns are required from then on."""
    db_url = seeded.db_url
    order = record_signed_order(db_url, customer_id(db_url, "江苏康达医疗设备有限公司"),
                                dt.date(2026, 10, 10), [("MON-M8", 5), ("CONS-ECG10", 100)],
                                delivered_on=False)
    downgrade(db_url, "0016")
    engine = get_engine(db_url)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("intent_order_line")}
    assert "unit" in columns and not columns & {"model", "name"}
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO intent_order_line (order_id, line_no, sku, quantity, unit, unit_price, "
            "tax_rate) VALUES (:order, 3, 'PUMP-SP3', 2, '台', 100, 0.13)"), {"order": order})
    migrate(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT line_no, model, name FROM intent_order_line WHERE order_id = :order "
            "ORDER BY line_no"), {"order": order}).all() == [
            (1, "M8", "多参数监护仪"), (2, "ECG10", "心电电极片（100片/盒）"), (3, "SP3", "注射泵")]
    for given in ("model", "name"):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.text(
                f"INSERT INTO intent_order_line (order_id, line_no, sku, {given}, quantity, unit, "
                "unit_price, tax_rate) VALUES (:order, 4, 'PUMP-SP3', 'SP3', 2, '台', 100, 0.13)"),
                {"order": order})


def test_settled_lines_stay_booked_to_the_customer_they_were_stored_under(seeded):
    """Migration 0018: lines stored before it are booked to their customer_id (the customer
    whose statement and voucher they are on), and every line is booked from then on."""
    from flows.hub import build_hub
    from flows.settlement import settle_month
    from tests.rebate_support import clock_from, publish

    db_url = seeded.db_url
    clock_from(dt.date(2026, 11, 5))
    publish(db_url, """
code: P-BOOKED
name: 入账客户
effective_from: 2026-10-01
rules:
  - {id: flat, measure: amount, period: month, style: retroactive,
     tiers: [{from: 0, rate: 2%}], priority: 1, stacking: stack}
""")
    kangda = customer_id(db_url, "江苏康达医疗设备有限公司")
    shenkang = customer_id(db_url, "上海申康医疗科技有限公司")
    for cid in (kangda, shenkang):
        record_signed_order(db_url, cid, dt.date(2026, 10, 10), [("MON-M8", 1)])
    settle_month(build_hub(seeded), "2026-10", documents=False)
    downgrade(db_url, "0017")
    engine = get_engine(db_url)
    assert "booked_customer_id" not in {
        c["name"] for c in sa.inspect(engine).get_columns("rebate_line")}
    migrate(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT customer_id, booked_customer_id FROM rebate_line ORDER BY customer_id")
        ).all() == [(kangda, kangda), (shenkang, shenkang)]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO rebate_line (run_id, month, order_id, customer_id, policy_code, "
            "policy_version, rule_id, clause, period, bucket_key, basis_amount, due_amount, "
            "amount, rate, kind, explanation, inputs) SELECT run_id, month, order_id, "
            "customer_id, policy_code, policy_version, rule_id, clause, period, bucket_key, "
            "basis_amount, due_amount, amount, rate, kind, explanation, inputs "
            "FROM rebate_line"))


def test_quotes_rendered_before_0021_take_their_orders_shortage_flag(seeded):
    """Migration 0021: a quote rendered before it was rendered with the shortage note exactly
    when its order was flagged short; one not rendered yet has no note to record."""
    db_url = seeded.db_url
    kangda = customer_id(db_url, "江苏康达医疗设备有限公司")
    short, enough, unrendered = (record_signed_order(db_url, kangda, dt.date(2026, 10, 10),
                                                     [("MON-M8", 1)], delivered_on=False)
                                 for _ in range(3))
    downgrade(db_url, "0020")
    engine = get_engine(db_url)
    assert "pdf_stock_note" not in {c["name"] for c in sa.inspect(engine).get_columns("quote")}
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE intent_order SET stock_short = (id <> :enough) "
                             "WHERE id IN (:short, :enough, :unrendered)"),
                     {"short": short, "enough": enough, "unrendered": unrendered})
        conn.execute(sa.text("UPDATE quote SET pdf_path = '/q.pdf' WHERE order_id <> :order"),
                     {"order": unrendered})
    migrate(db_url)
    with engine.connect() as conn:
        flags = dict(conn.execute(sa.text(
            "SELECT order_id, pdf_stock_note FROM quote WHERE order_id IN "
            "(:short, :enough, :unrendered)"),
            {"short": short, "enough": enough, "unrendered": unrendered}).all())
    assert flags == {short: True, enough: False, unrendered: False}
