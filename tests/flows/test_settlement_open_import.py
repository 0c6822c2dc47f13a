"""An import of deliveries or returns still open (not committed) while a settlement reads the
facts: its rows are stamped from the import's start but the settlement cannot see them. The
settlement takes as what it knew the moment before that import started, so the next settlement
takes the rows as news instead of missing them for good."""
from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlmodel import select

from flows import sales_facts
from flows.hub import current_hub
from flows.sales_facts import ImportRefused
from flows.settlement import compute_month, settle_month, store_settlement
from models import MovementImport, SettlementRun, utcnow
from models.db import get_engine, session_scope
from models.fulfilment import OPEN_IMPORT_LIFETIME, news_horizon
from tests.flows.test_movement_corrections import KANGDA, POLICY, paid, send
from tests.rebate_support import clock_from, customer_id, publish, signed_order

D = dt.date


def tickets(db_url: str) -> list[tuple[str, str, str | None, bool]]:
    with session_scope(db_url) as s:
        return [(t.kind, t.source, t.outcome, t.finished_at is not None)
                for t in s.exec(select(MovementImport).order_by(MovementImport.id))]


def horizon(db_url: str, now: dt.datetime) -> dt.datetime:
    with get_engine(db_url).connect() as conn:
        return news_horizon(conn, now)


def test_a_correction_imported_while_the_settlement_reads_is_clawed_back_next_month(
        hub, tmp_path, monkeypatch):
    """5 monitors delivered on 3 September, paid on 5 October (5 × 12,800 × 2 % = 1,280). On
    5 November the ERP's correction to 3 units is being imported (written, not yet committed)
    while October's settlement reads: October cannot see it and pays nothing. December's run
    takes 2 × 256 = 512 back. Before, October's run counted as knowing everything recorded up
    to its own start, after the correction's stamp, and the correction was never settled."""
    db = hub.db_url
    clock_from(D(2026, 9, 1))
    publish(db, POLICY)
    order = signed_order(db, customer_id(db, KANGDA), D(2026, 9, 2), [("MON-M8", 5)],
                         delivered_on=False)
    clock_from(D(2026, 9, 3))  # imported the day it shipped, not before (a date after today)
    send(db, tmp_path / "d.csv", f"FH-1,{order},1,5,2026-09-03\n")
    clock_from(D(2026, 10, 5))
    settle_month(current_hub(), "2026-09", documents=False)

    clock_from(D(2026, 11, 5))
    written, go_on = threading.Event(), threading.Event()
    checks = sales_facts._quantity_problems

    def held(*args, **kwargs):  # the rows are flushed, the transaction is still open
        problems = checks(*args, **kwargs)
        written.set()
        assert go_on.wait(60)
        return problems

    monkeypatch.setattr(sales_facts, "_quantity_problems", held)
    done: dict = {}
    worker = threading.Thread(target=lambda: done.update(
        summary=send(db, tmp_path / "d.csv", f"FH-1,{order},1,3,2026-09-03\n")))
    worker.start()
    try:
        assert written.wait(60)
        assert tickets(db)[-1] == ("deliveries", "d.csv", None, False)
        october = compute_month(db, "2026-10")
    finally:
        go_on.set()
        worker.join(60)
    assert done["summary"].updated == 1
    assert tickets(db)[-1] == ("deliveries", "d.csv", "stored", True)
    assert october.drafts == []  # the correction was not visible to it
    store_settlement(db, october, "test")

    clock_from(D(2026, 12, 5))
    settle_month(current_hub(), "2026-11", documents=False)
    assert paid(db, order) == [("2026-09", "rebate", Decimal("1280.00")),
                               ("2026-11", "clawback", Decimal("-512.00"))]
    with session_scope(db) as s:
        run = s.exec(select(SettlementRun).where(SettlementRun.month == "2026-10")).one()
        held_back = s.exec(select(MovementImport).order_by(MovementImport.id.desc())).first()
    assert run.as_of < held_back.started_at  # it knew what was recorded before the import


def test_an_import_closes_its_registration_stored_or_refused(hub, tmp_path):
    db = hub.db_url
    clock_from(D(2026, 10, 1))
    order = signed_order(db, customer_id(db, KANGDA), D(2026, 9, 20), [("MON-M8", 3)],
                         delivered_on=False)
    send(db, tmp_path / "a.csv", f"FH-1,{order},1,2,2026-09-22\n")
    with pytest.raises(ImportRefused, match="超过订购数量 3"):
        send(db, tmp_path / "b.csv", f"FH-2,{order},1,4,2026-09-22\n")
    with pytest.raises(ImportRefused, match="意向单不存在：NOPE"):
        send(db, tmp_path / "c.csv", "TH-1,NOPE,1,1,2026-09-25,退货,\n", returns=True)
    assert tickets(db) == [("deliveries", "a.csv", "stored", True),
                           ("deliveries", "b.csv", "refused", True),
                           ("returns", "c.csv", "refused", True)]
    now = utcnow()
    assert horizon(db, now) == now  # nothing open: a settlement knows everything up to now


def test_an_open_import_holds_the_horizon_back_until_it_is_taken_for_dead(hub):
    db = hub.db_url
    clock_from(D(2026, 11, 5))
    now = utcnow()
    with session_scope(db) as s:
        s.add(MovementImport(kind="deliveries", source="x.csv", actor="cli:erp",
                             started_at=now - dt.timedelta(minutes=3)))
        s.add(MovementImport(kind="returns", source="y.csv", actor="cli:erp",
                             started_at=now - dt.timedelta(minutes=1)))
        s.add(MovementImport(kind="returns", source="z.csv", actor="cli:erp",
                             started_at=now - dt.timedelta(minutes=10),
                             finished_at=now - dt.timedelta(minutes=9), outcome="stored"))
    assert horizon(db, now) == now - dt.timedelta(minutes=3, microseconds=1)
    # six hours on, the process that opened them is gone and its transaction rolled back
    later = now + OPEN_IMPORT_LIFETIME
    assert horizon(db, later) == later
