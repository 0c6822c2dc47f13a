"""Audit round 4 (finance): ERP movement files whose rows name the same document line twice."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.sales_facts import ImportRefused, import_movements
from models.db import get_engine
from tests.rebate_support import customer_id, signed_order

D = dt.date


@pytest.fixture
def order(seeded):
    kangda = customer_id(seeded.db_url, "江苏康达医疗设备有限公司")
    return signed_order(seeded.db_url, kangda, D(2026, 10, 10),
                        [("MON-M8", 5), ("CONS-ECG10", 100)], delivered_on=False)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _delivered(db_url: str, order: str) -> list[tuple]:
    with get_engine(db_url).connect() as conn:
        return conn.execute(sa.text(
            "SELECT delivery_no, line_no, quantity FROM delivery WHERE order_id = :o "
            "ORDER BY delivery_no, line_no"), {"o": order}).all()


def test_a_delivery_line_given_twice_in_a_file_is_refused_not_overwritten(seeded, order,
                                                                           tmp_path):
    # an ERP delivery note shipping one order line in two lots: two rows, same note and line;
    # keeping only the last row's quantity would silently under-count what was delivered
    path = _write(tmp_path / "发货.csv",
                  "发货单号,意向单号,行号,物料编码,数量,发货日期\n"
                  f"FH-001,{order},2,,60,2026-10-12\n"
                  f"FH-001,{order},,CONS-ECG10,40,2026-10-12\n")
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=False)
    text = str(refused.value)
    assert "第3行" in text and "与第2行重复" in text, text
    assert _delivered(seeded.db_url, order) == []


def test_a_return_line_given_twice_in_a_file_is_refused(seeded, order, tmp_path):
    import_movements(seeded.db_url, _write(tmp_path / "d.csv",
                                           "发货单号,意向单号,行号,数量,发货日期\n"
                                           f"FH-1,{order},2,100,2026-10-12\n"),
                     "t", returns=False)
    path = _write(tmp_path / "r.csv", "退货单号,意向单号,行号,数量,退货日期\n"
                  f"TH-1,{order},2,5,2026-10-20\nTH-1,{order},2,3,2026-10-21\n")
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "t", returns=True)
    assert "与第2行重复" in str(refused.value)
    with get_engine(seeded.db_url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sales_return")).scalar() == 0


def test_the_same_note_on_two_lines_of_the_order_is_fine(seeded, order, tmp_path):
    path = _write(tmp_path / "发货.csv",
                  "发货单号,意向单号,行号,数量,发货日期\n"
                  f"FH-001,{order},1,5,2026-10-12\nFH-001,{order},2,100,2026-10-12\n")
    assert import_movements(seeded.db_url, path, "test", returns=False).created == 2
    assert _delivered(seeded.db_url, order) == [("FH-001", 1, 5), ("FH-001", 2, 100)]


def test_numbers_longer_than_the_database_keeps_are_refused_with_their_cell(seeded, tmp_path):
    # PostgreSQL refuses a value over VARCHAR(40) with a traceback and no row named
    from flows.sales_facts import import_receivables_file

    long_no = "FP" + "1" * 39
    path = _write(tmp_path / "应收.csv",
                  "发票号,客户名称,开票日期,到期日,金额\n"
                  f"{long_no},江苏康达医疗设备有限公司,2026-10-01,2026-10-31,100.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, path, "test")
    assert "第2行「发票号」" in str(refused.value) and "40" in str(refused.value)
    path = _write(tmp_path / "回款.csv",
                  "回款单号,发票号,回款日期,金额\n"
                  f"{'SK' + '9' * 40},FP-1,2026-10-20,100.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, path, "test")
    assert "第2行「回款单号」" in str(refused.value)


def test_a_return_reason_longer_than_kept_is_refused(seeded, order, tmp_path):
    import_movements(seeded.db_url, _write(tmp_path / "d.csv",
                                           "发货单号,意向单号,行号,数量,发货日期\n"
                                           f"FH-1,{order},2,100,2026-10-12\n"),
                     "t", returns=False)
    path = _write(tmp_path / "r.csv", "退货单号,意向单号,行号,数量,退货日期,原因\n"
                  f"TH-1,{order},2,5,2026-10-20,{'包装破损' * 51}\n")
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "t", returns=True)
    assert "第2行「原因」" in str(refused.value) and "200" in str(refused.value)


def test_a_rest_page_with_an_over_long_number_is_refused():
    from connectors.base import PermanentError
    from connectors.finance import parse_receivables_page

    body = {"invoices": [], "payments": [{"payment_no": "P" * 41, "invoice_no": "FP-1",
                                          "paid_on": "2026-10-20", "amount": "1.00"}],
            "next_cursor": "c1"}
    with pytest.raises(PermanentError, match=r"payments\[0\]\.payment_no"):
        parse_receivables_page(body)


def test_a_receivables_file_with_many_bad_rows_counts_the_ones_not_listed(seeded, tmp_path):
    from flows.sales_facts import import_receivables_file

    body = "".join(f"SK-{n},FP-{n},坏日期,100.00\n" for n in range(80))
    path = _write(tmp_path / "回款.csv", "回款单号,发票号,回款日期,金额\n" + body)
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, path, "test")
    # 80 bad dates; the payments of unknown invoices are problems too (80 more)
    assert refused.value.more == 160 - 50, refused.value.problems[-1]
    assert refused.value.problems[-1] == f"……另有 {160 - 50} 处问题未列出"


def test_the_sync_names_how_many_problems_a_refused_export_has(tmp_path):
    from connectors.base import PermanentError
    from connectors.finance import RECEIVABLES_DIR, EmbeddedFinance

    inbound = tmp_path / RECEIVABLES_DIR
    inbound.mkdir()
    body = "".join(f"SK-{n},FP-{n},坏日期,100.00\n" for n in range(80))
    _write(inbound / "20261101-回款.csv", "回款单号,发票号,回款日期,金额\n" + body)
    with pytest.raises(PermanentError) as refused:
        EmbeddedFinance(tmp_path).fetch_receivables(None)
    assert "另有 30 处问题未列出" in str(refused.value)


def test_invoice_numbers_excel_turned_into_scientific_notation_in_a_csv_are_refused(
        seeded, tmp_path):
    # Excel opening and re-saving a CSV writes a 20-digit 数电发票号 as 2.4322E+19: two
    # different invoices would become one number and the second would overwrite the first
    from flows.sales_facts import import_receivables_file

    path = _write(tmp_path / "应收.csv",
                  "发票号,客户名称,开票日期,到期日,金额\n"
                  "2.4322E+19,江苏康达医疗设备有限公司,2026-10-01,2026-10-31,100.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, path, "test")
    assert "第2行「发票号」" in str(refused.value) and "科学计数" in str(refused.value)
    path = _write(tmp_path / "回款.csv", "回款单号,发票号,回款日期,金额\n"
                  "SK-1,2.4322E+19,2026-10-20,100.00\n")
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, path, "test")
    assert "第2行「发票号」" in str(refused.value) and "科学计数" in str(refused.value)


def test_payments_read_before_their_invoices_in_one_sync_are_stored_by_it(hub):
    # the same day's exports sort 回款 before 应收 (回 U+56DE < 应 U+5E94): the payments of
    # that day's invoices must not wait for tomorrow's sync (or miss the settlement run)
    from flows.sales_facts import sync_receivables
    from connectors.finance import last_file_read
    from models import ConnectorCursor

    inbound = hub.settings.path("finance-drop") / "receivables-inbound"
    inbound.mkdir(parents=True, exist_ok=True)
    _write(inbound / "20261102-回款.csv", "回款单号,发票号,回款日期,金额\n"
           "SK-1,FP-9,2026-11-02,300.00\n")
    _write(inbound / "20261102-应收.csv", "发票号,客户名称,开票日期,到期日,金额\n"
           "FP-9,江苏康达医疗设备有限公司,2026-11-02,2026-12-02,300.00\n")
    done = sync_receivables(hub)
    assert (done.created, done.skipped) == (2, []), done
    with get_engine(hub.db_url).connect() as conn:
        assert conn.execute(sa.text("SELECT invoice_no, amount FROM payment")).all() == [
            ("FP-9", 300)]
    from models.db import session_scope
    with session_scope(hub.db_url) as s:
        name = f"receivables:{hub.finance.__class__.__name__}"
        assert last_file_read(s.get(ConnectorCursor, name).cursor) == "20261102-应收.csv"
    assert sync_receivables(hub).as_dict() == {"created": 0, "updated": 0, "unchanged": 0,
                                               "skipped": [], "removed": 0, "moved": [],
                                               "notes": []}


def test_an_old_excel_export_in_the_drop_folder_is_refused_not_ignored(tmp_path):
    # U8 and older finance software export .xls: skipping it silently loses its payments
    from connectors.base import PermanentError
    from connectors.finance import RECEIVABLES_DIR, EmbeddedFinance

    inbound = tmp_path / RECEIVABLES_DIR
    inbound.mkdir()
    (inbound / "20261101-回款.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)
    with pytest.raises(PermanentError) as refused:
        EmbeddedFinance(tmp_path).fetch_receivables(None)
    assert "20261101-回款.xls" in str(refused.value) and "另存为 .xlsx 或 CSV" in str(refused.value)


def test_macro_workbooks_in_the_drop_folder_are_read(tmp_path):
    from openpyxl import Workbook

    from connectors.finance import RECEIVABLES_DIR, EmbeddedFinance

    inbound = tmp_path / RECEIVABLES_DIR
    inbound.mkdir()
    (inbound / "20261101-回款.csv").write_text(
        "回款单号\t发票号\t回款日期\t金额\nSK-1\tFP-1\t2026-11-01\t100.00\n", encoding="utf-16")
    wb = Workbook()
    wb.active.append(["回款单号", "发票号", "回款日期", "金额"])
    wb.active.append(["SK-2", "FP-2", "2026-11-02", "200.00"])
    wb.save(inbound / "20261102-回款.xlsm")
    finance = EmbeddedFinance(tmp_path)
    first = finance.fetch_receivables(None)
    second = finance.fetch_receivables(first.cursor)
    assert [p.payment_no for p in first.payments + second.payments] == ["SK-1", "SK-2"]


@pytest.fixture
def cli(seeded, monkeypatch, capsys, tmp_path):
    from tests.support import in_process_cli

    yield from in_process_cli(monkeypatch, capsys, seeded.db_url, tmp_path / "data")


def test_sync_given_a_file_says_to_import_it_instead(cli, tmp_path):
    # `receivables sync 回款.csv` read the drop folder and said 导入完成 without the file
    path = _write(tmp_path / "回款.csv", "回款单号,发票号,回款日期,金额\nSK-1,FP-1,2026-10-20,1.00\n")
    code, out, err = cli("receivables", "sync", path)
    assert code != 0 and "导入完成" not in out
    assert "salesops receivables import" in err


def test_the_cli_says_how_many_skipped_records_it_did_not_list(cli, tmp_path):
    body = "".join(f"FP-{n},未建档客户{n}有限公司,2026-10-01,2026-10-31,100.00\n" for n in range(25))
    path = _write(tmp_path / "应收.csv", "发票号,客户名称,开票日期,到期日,金额\n" + body)
    code, out, err = cli("receivables", "import", path, "--skip-unknown")
    assert code == 0 and "跳过 25" in out
    assert err.count("跳过：") == 20 and "另有 5 条未列出" in err
