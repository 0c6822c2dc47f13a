"""Deliveries, returns and receivables come in from files: checked against the orders, one
transaction per file (a bad row → nothing written, the row named), re-imports change nothing."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.sales_facts import ImportRefused, import_movements, import_receivables_file
from models.db import get_engine
from tests.rebate_support import customer_id, signed_order

ROOT = Path(__file__).resolve().parents[2]
D = dt.date


def counts(db_url) -> dict[str, int]:
    with get_engine(db_url).connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("delivery", "sales_return", "receivable_invoice", "payment")}


@pytest.fixture
def order(seeded):
    kangda = customer_id(seeded.db_url, "江苏康达医疗设备有限公司")
    return signed_order(seeded.db_url, kangda, D(2026, 10, 10),
                        [("MON-M8", 5), ("CONS-ECG10", 100)], delivered_on=False)


def write(path: Path, text: str, encoding="utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def test_deliveries_and_returns_import_once(seeded, order, tmp_path):
    deliveries = write(tmp_path / "发货.csv",
                       "发货单号,意向单号,行号,物料编码,数量,发货日期\n"
                       f"FH-001,{order},1,,3,2026-10-12\n"
                       f"FH-002,{order},,MON-M8,2,2026-10-20\n"
                       f"FH-001,{order},2,CONS-ECG10,100,2026-10-12\n", encoding="gb18030")
    summary = import_movements(seeded.db_url, deliveries, "test", returns=False)
    assert (summary.created, summary.updated) == (3, 0)
    again = import_movements(seeded.db_url, deliveries, "test", returns=False)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    returns = write(tmp_path / "退货.csv",
                    "退货单号,意向单号,行号,数量,退货日期,类型,原因\n"
                    f"TH-01,{order},1,1,2026-11-02,换货,屏幕坏点\n")
    assert import_movements(seeded.db_url, returns, "test", returns=True).created == 1
    with get_engine(seeded.db_url).connect() as conn:
        assert conn.execute(sa.text("SELECT kind FROM sales_return")).scalar() == "exchange"


@pytest.mark.parametrize("body, problem", [
    ("{order},1,,6,2026-10-12", "超过订购数量 5"),
    ("{order},9,,1,2026-10-12", "没有第 9 行"),
    ("IO000000-NOPE,1,,1,2026-10-12", "意向单不存在"),
    ("{order},1,,0,2026-10-12", "数量"),
    ("{order},1,,1,2026-13-40", "发货日期"),
    ("{order},,,1,2026-10-12", "须填写行号或物料编码"),
])
def test_a_bad_delivery_row_writes_nothing(seeded, order, tmp_path, body, problem):
    good = f"FH-9,{order},2,,10,2026-10-12"
    path = write(tmp_path / "发货.csv", "发货单号,意向单号,行号,物料编码,数量,发货日期\n"
                 f"{good}\nFH-1,{body.format(order=order)}\n")
    before = counts(seeded.db_url)
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=False)
    assert problem in str(refused.value)
    assert counts(seeded.db_url) == before


def test_returns_beyond_what_was_delivered_are_refused(seeded, order, tmp_path):
    import_movements(seeded.db_url, write(tmp_path / "d.csv",
                                          "发货单号,意向单号,行号,数量,发货日期\n"
                                          f"FH-1,{order},1,2,2026-10-12\n"), "t", returns=False)
    path = write(tmp_path / "r.csv", "退货单号,意向单号,行号,数量,退货日期\n"
                 f"TH-1,{order},1,3,2026-10-20\n")
    with pytest.raises(ImportRefused, match="超过已发货 2"):
        import_movements(seeded.db_url, path, "t", returns=True)


def test_unsigned_orders_take_no_deliveries(seeded, tmp_path):
    from models import IntentOrder, Quote
    from models.db import session_scope

    kangda = customer_id(seeded.db_url, "江苏康达医疗设备有限公司")
    oid = signed_order(seeded.db_url, kangda, D(2026, 10, 10), [("MON-M8", 1)],
                       delivered_on=False)
    with session_scope(seeded.db_url) as s:
        quote = s.exec(sa.select(Quote).where(Quote.order_id == oid)).scalar_one()
        quote.signed_at, quote.status = None, "sent"
        s.add(quote)
        assert s.get(IntentOrder, oid)
    path = write(tmp_path / "d.csv", f"发货单号,意向单号,行号,数量,发货日期\nFH-1,{oid},1,1,2026-10-12\n")
    with pytest.raises(ImportRefused, match="尚未签署"):
        import_movements(seeded.db_url, path, "t", returns=False)


def test_receivables_import_and_unknown_customers(seeded, tmp_path):
    invoices = write(tmp_path / "应收.csv",
                     "发票号,客户名称,统一社会信用代码,开票日期,到期日,金额\n"
                     "FP-1,江苏康达医疗设备有限公司,91320500MA1K2D3F5H,2026-09-01,2026-10-01,38400.00\n"
                     "FP-2,康达医疗,,2026-09-05,2026-10-05,1000.00\n"
                     "FP-3,不认识的公司,,2026-09-05,2026-10-05,1.00\n")
    before = counts(seeded.db_url)
    with pytest.raises(ImportRefused, match="不认识的公司"):
        import_receivables_file(seeded.db_url, invoices, "t")
    assert counts(seeded.db_url) == before
    summary = import_receivables_file(seeded.db_url, invoices, "t", skip_unknown=True)
    assert summary.created == 2 and len(summary.skipped) == 1
    payments = write(tmp_path / "回款.csv", "回款单号,发票号,回款日期,金额\n"
                     "HK-1,FP-1,2026-09-30,38400.00\nHK-1,FP-2,2026-10-08,1000.00\n")
    assert import_receivables_file(seeded.db_url, payments, "t").created == 2
    assert import_receivables_file(seeded.db_url, payments, "t").unchanged == 2
    assert counts(seeded.db_url)["payment"] == 2


def test_cli_import_refusal_names_the_row_and_exits_non_zero(seeded, order, tmp_path):
    path = write(tmp_path / "发货.csv", "发货单号,意向单号,行号,数量,发货日期\n"
                 f"FH-1,{order},1,99,2026-10-12\n")
    env = {"SALESOPS_DATABASE_URL": seeded.db_url, "SALESOPS_DATA_DIR": str(tmp_path / "d"),
           "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "deployments.cli", "deliveries", "import",
                          str(path)], cwd=ROOT, capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 2
    assert "未写入任何数据" in run.stderr and "超过订购数量 5" in run.stderr


def test_erp_quantities_written_with_decimals_are_read_as_whole_units(seeded, order, tmp_path):
    """U8 and Kingdee export 数量 with the unit's precision: `3.00` is 3 units, not an error."""
    deliveries = write(tmp_path / "发货.csv",
                       "发货单号,意向单号,行号,物料编码,数量,发货日期\n"
                       f"FH-001,{order},1,MON-M8,3.00,2026/10/12\n"
                       f"FH-001,{order},2,CONS-ECG10,\"100.0000000000\",2026/10/12\n",
                       encoding="gb18030")
    assert import_movements(seeded.db_url, deliveries, "test", returns=False).created == 2
    with get_engine(seeded.db_url).connect() as conn:
        assert conn.execute(sa.text(
            "SELECT sum(quantity) FROM delivery")).scalar() == 103
    half = write(tmp_path / "退货.csv", "退货单号,意向单号,行号,数量,退货日期\n"
                                      f"TH-01,{order},1,1.50,2026-11-02\n")
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, half, "test", returns=True)
    assert "退货.csv 第2行「数量」：不是整数：'1.50'" in str(refused.value)


def test_a_red_ink_delivery_row_says_to_import_it_as_a_return(seeded, order, tmp_path):
    """U8 lists returns among deliveries as 红字 rows with a negative 数量: the clerk is told
    where they belong, not only that -2 is below 1."""
    deliveries = write(tmp_path / "发货.csv", "发货单号,意向单号,行号,数量,发货日期\n"
                                            f"FH-001,{order},1,3,2026-10-12\n"
                                            f"FH-002,{order},1,-2,2026-10-20\n")
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, deliveries, "test", returns=False)
    assert ("发货.csv 第3行「数量」：发货数量须大于零：'-2'（负数是红字发货单/退货：请从 ERP 导出退货单，"
            "用 salesops returns import 导入）") in str(refused.value)
    assert counts(seeded.db_url)["delivery"] == 0
    returns = write(tmp_path / "退货.csv", "退货单号,意向单号,行号,数量,退货日期\n"
                                         f"TH-01,{order},1,-1,2026-11-02\n")
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, returns, "test", returns=True)
    assert "退货.csv 第2行「数量」：退货数量请填正数（退回的数量）：'-1'" in str(refused.value)


def test_every_worksheet_of_a_delivery_workbook_is_read(seeded, order, tmp_path):
    """An ERP export with one worksheet per month (and a notes sheet): the deliveries of the
    second month were silently left out, and the order's rebate with them."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in (("10月", [("FH-001", 1, 3, dt.datetime(2026, 10, 12))]),
                        ("11月", [("FH-002", 1, 2, dt.datetime(2026, 11, 3)),
                                  ("FH-003", 2, 100, dt.datetime(2026, 11, 4))])):
        ws = wb.create_sheet(title)
        ws.append(["发货明细"])
        ws.append(["发货单号", "意向单号", "行号", "数量", "发货日期"])
        for number, line, qty, day in rows:
            ws.append([number, order, line, qty, day])
    wb.create_sheet("说明").append(["本文件由 ERP 导出，请勿修改表头"])
    path = tmp_path / "发货.xlsx"
    wb.save(path)
    assert import_movements(seeded.db_url, path, "test", returns=False).created == 3
    assert counts(seeded.db_url)["delivery"] == 3
    assert import_movements(seeded.db_url, path, "test", returns=False).unchanged == 3
    # the same delivery line on two sheets is named with its sheet
    wb["11月"].append(["FH-001", order, 1, 1, dt.datetime(2026, 10, 12)])
    wb.save(path)
    with pytest.raises(ImportRefused) as refused:
        import_movements(seeded.db_url, path, "test", returns=False)
    assert ("发货.xlsx[11月] 第5行「发货单号」：与发货.xlsx[10月] 第3行重复" in str(refused.value)), \
        str(refused.value)
