"""A delivery (发货单) or return (退货单) the ERP sends again after correcting it replaces what
was stored, also when the correction moved a line to another order line or order; an identical
re-send changes nothing; the settlement pays or takes back the difference, in the month after
one already settled."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from flows.hub import current_hub
from flows.sales_facts import ImportRefused, import_movements
from flows.settlement import settle_month
from models import OperationLog, RebateLine
from models.db import get_engine, session_scope
from tests.rebate_support import clock_from, customer_id, publish, signed_order
from tests.support import in_process_cli

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"
RENHE = "浙江仁和医疗器械有限公司"
DELIVERIES = "发货单号,意向单号,行号,数量,发货日期\n"
RETURNS = "退货单号,意向单号,行号,数量,退货日期,类型,原因\n"
POLICY = """
code: P-FIX
name: 更正测试
effective_from: 2026-07-01
rules:
  - {id: flat, measure: amount, period: month, style: retroactive,
     tiers: [{from: 0, rate: 2%}], priority: 1, stacking: stack}
"""


def send(db_url: str, path: Path, text: str, *, returns: bool = False):
    path.write_text((RETURNS if returns else DELIVERIES) + text, encoding="utf-8")
    return import_movements(db_url, path, "cli:erp", returns=returns)


def stored(db_url: str, table: str) -> list[tuple]:
    number = "return_no" if table == "sales_return" else "delivery_no"
    day = "returned_on" if table == "sales_return" else "delivered_on"
    with get_engine(db_url).connect() as conn:
        # the day as text: SQLite answers a string, PostgreSQL a date
        return [(*r[:4], str(r[4])) for r in conn.execute(sa.text(
            f"SELECT {number}, order_id, line_no, quantity, {day} FROM {table} "
            f"WHERE {number} NOT LIKE 'D%' ORDER BY {number}, order_id, line_no"))]


def deletions(db_url: str, table: str) -> list[dict]:
    with session_scope(db_url) as s:
        return [json.loads(c) for c in s.exec(select(OperationLog.changes).where(
            OperationLog.entity == table, OperationLog.action == "delete"))]


def paid(db_url: str, order_id: str) -> list[tuple[str, str, Decimal]]:
    with session_scope(db_url) as s:
        return [(ln.month, ln.kind, Decimal(str(ln.amount))) for ln in s.exec(
            select(RebateLine).where(RebateLine.order_id == order_id)
            .order_by(RebateLine.id))]


# --- the import -----------------------------------------------------------------------------

def test_a_delivery_line_moved_to_another_order_line_replaces_the_first(seeded, tmp_path):
    db = seeded.db_url
    order = signed_order(db, customer_id(db, KANGDA), D(2026, 9, 20),
                         [("MON-M8", 3), ("MON-M12", 3)], delivered_on=False)
    assert send(db, tmp_path / "a.csv", f"FH-1,{order},1,2,2026-09-22\n").created == 1

    # the warehouse picked MON-M12 (line 2), not MON-M8: the ERP re-sends FH-1 corrected
    fixed = send(db, tmp_path / "b.csv", f"FH-1,{order},2,2,2026-09-22\n")
    assert (fixed.created, fixed.updated, fixed.removed) == (1, 0, 1)
    assert fixed.moved == [f"发货单 FH-1：已不含意向单 {order} 第 1 行（原数量 2，2026-09-22），该行已删除"]
    assert stored(db, "delivery") == [("FH-1", order, 2, 2, "2026-09-22")]
    [gone] = deletions(db, "delivery")
    assert (gone["delivery_no"], gone["order_id"], gone["line_no"], gone["quantity"]) == (
        ["FH-1", None], [order, None], [1, None], [2, None])

    # the same again: nothing; a new document: added, FH-1 left as it is
    again = send(db, tmp_path / "b.csv", f"FH-1,{order},2,2,2026-09-22\n")
    assert (again.created, again.updated, again.unchanged, again.removed) == (0, 0, 1, 0)
    more = send(db, tmp_path / "c.csv", f"FH-2,{order},1,3,2026-09-25\n")
    assert (more.created, more.removed) == (1, 0)
    assert stored(db, "delivery") == [("FH-1", order, 2, 2, "2026-09-22"),
                                      ("FH-2", order, 1, 3, "2026-09-25")]


def test_a_corrected_document_of_two_lines_keeps_both_and_drops_only_what_it_lost(seeded,
                                                                                  tmp_path):
    db = seeded.db_url
    order = signed_order(db, customer_id(db, KANGDA), D(2026, 9, 20),
                         [("MON-M8", 3), ("MON-M12", 3)], delivered_on=False)
    send(db, tmp_path / "a.csv", f"FH-1,{order},1,3,2026-09-22\nFH-1,{order},2,3,2026-09-22\n")
    fixed = send(db, tmp_path / "b.csv", f"FH-1,{order},1,2,2026-09-23\n")
    assert (fixed.updated, fixed.removed) == (1, 1)
    assert stored(db, "delivery") == [("FH-1", order, 1, 2, "2026-09-23")]


def test_a_refused_correction_deletes_nothing(seeded, tmp_path):
    db = seeded.db_url
    order = signed_order(db, customer_id(db, KANGDA), D(2026, 9, 20),
                         [("MON-M8", 3), ("MON-M12", 3)], delivered_on=False)
    send(db, tmp_path / "a.csv", f"FH-1,{order},1,2,2026-09-22\n")
    with pytest.raises(ImportRefused, match="累计发货 4，超过订购数量 3"):
        send(db, tmp_path / "b.csv", f"FH-1,{order},2,4,2026-09-22\n")
    assert stored(db, "delivery") == [("FH-1", order, 1, 2, "2026-09-22")]
    assert deletions(db, "delivery") == []


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


def test_the_cli_says_which_lines_a_corrected_document_lost(hub, cli, tmp_path):
    db = hub.db_url
    order = signed_order(db, customer_id(db, KANGDA), D(2026, 9, 20),
                         [("MON-M8", 3), ("MON-M12", 3)], delivered_on=False)
    send(db, tmp_path / "a.csv", f"FH-1,{order},1,2,2026-09-22\n")
    (tmp_path / "b.csv").write_text(DELIVERIES + f"FH-1,{order},2,2,2026-09-22\n",
                                    encoding="utf-8")
    code, out, _ = cli("deliveries", "import", tmp_path / "b.csv")
    assert code == 0
    assert "发货导入完成：新增 1，更新 0，未变 0，删除单据行 1。" in out
    assert f"变更：发货单 FH-1：已不含意向单 {order} 第 1 行" in out


def test_a_return_line_moved_to_another_order_line_replaces_the_first(seeded, tmp_path):
    db = seeded.db_url
    order = signed_order(db, customer_id(db, KANGDA), D(2026, 9, 20),
                         [("MON-M8", 3), ("MON-M12", 3)])
    send(db, tmp_path / "a.csv", f"TH-1,{order},1,1,2026-10-08,退货,屏幕故障\n", returns=True)
    fixed = send(db, tmp_path / "b.csv", f"TH-1,{order},2,1,2026-10-08,退货,屏幕故障\n",
                 returns=True)
    assert (fixed.created, fixed.removed) == (1, 1)
    assert fixed.moved == [f"退货单 TH-1：已不含意向单 {order} 第 1 行（原数量 1，2026-10-08），该行已删除"]
    assert stored(db, "sales_return") == [("TH-1", order, 2, 1, "2026-10-08")]
    assert len(deletions(db, "sales_return")) == 1


# --- the settlement after a correction --------------------------------------------------------

@pytest.fixture
def policy(hub):
    clock_from(D(2026, 9, 1))
    publish(hub.db_url, POLICY)


def test_a_quantity_corrected_after_its_month_was_settled_is_clawed_back(hub, policy, tmp_path):
    """5 monitors delivered on 3 September, paid on 5 October (5 × 12,800 × 2 % = 1,280); on
    20 October the ERP corrects the delivery to 3: the October run takes 2 × 256 back. A
    return of 1 corrected to 2 in November: the November run takes 256 more back. The
    identical re-send after that changes nothing."""
    db = hub.db_url
    order = signed_order(db, customer_id(db, KANGDA), D(2026, 9, 2), [("MON-M8", 5)],
                         delivered_on=False)
    clock_from(D(2026, 9, 3))  # imported the day it shipped, not before (a date after today)
    send(db, tmp_path / "d.csv", f"FH-1,{order},1,5,2026-09-03\n")
    clock_from(D(2026, 10, 5))
    settle_month(current_hub(), "2026-09", documents=False)
    clock_from(D(2026, 10, 20))
    assert send(db, tmp_path / "d.csv", f"FH-1,{order},1,3,2026-09-03\n").updated == 1
    send(db, tmp_path / "r.csv", f"TH-1,{order},1,1,2026-09-20,退货,\n", returns=True)
    clock_from(D(2026, 11, 5))
    settle_month(current_hub(), "2026-10", documents=False)
    clock_from(D(2026, 11, 20))
    assert send(db, tmp_path / "r.csv", f"TH-1,{order},1,2,2026-09-20,退货,\n",
                returns=True).updated == 1
    clock_from(D(2026, 12, 5))
    settle_month(current_hub(), "2026-11", documents=False)
    assert send(db, tmp_path / "r.csv", f"TH-1,{order},1,2,2026-09-20,退货,\n",
                returns=True).unchanged == 1
    clock_from(D(2027, 1, 5))
    assert settle_month(current_hub(), "2026-12", documents=False).lines == 0
    assert paid(db, order) == [("2026-09", "rebate", Decimal("1280.00")),
                               ("2026-10", "clawback", Decimal("-768.00")),
                               ("2026-11", "clawback", Decimal("-256.00"))]


def test_a_delivery_moved_to_another_customer_s_order_is_taken_back_from_the_first(
        hub, policy, tmp_path):
    """FH-1 was booked to 康达's order and paid in September's settlement; in October the ERP
    corrects it to 仁和's order of the same quarter. The October run pays 仁和 and takes the
    1,280 back from 康达, whose quarter had no other news: the deleted line is the news."""
    db = hub.db_url
    wrong = signed_order(db, customer_id(db, KANGDA), D(2026, 9, 2), [("MON-M8", 5)],
                         delivered_on=False)
    right = signed_order(db, customer_id(db, RENHE), D(2026, 9, 2), [("MON-M8", 5)],
                         delivered_on=False)
    clock_from(D(2026, 9, 3))  # imported the day it shipped, not before (a date after today)
    send(db, tmp_path / "d.csv", f"FH-1,{wrong},1,5,2026-09-03\n")
    clock_from(D(2026, 10, 5))
    settle_month(current_hub(), "2026-09", documents=False)
    clock_from(D(2026, 10, 20))
    assert send(db, tmp_path / "d.csv", f"FH-1,{right},1,5,2026-09-03\n").removed == 1
    clock_from(D(2026, 11, 5))
    settle_month(current_hub(), "2026-10", documents=False)
    assert [(m, a) for m, _, a in paid(db, wrong)] == [("2026-09", Decimal("1280.00")),
                                                       ("2026-10", Decimal("-1280.00"))]
    assert [(m, a) for m, _, a in paid(db, right)] == [("2026-10", Decimal("1280.00"))]
