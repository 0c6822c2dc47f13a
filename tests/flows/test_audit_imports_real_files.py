"""Audit (imports of real export files): deliveries, returns, invoices and payments as the
sales-ops clerk and finance feed them from ERP / Excel exports — title blocks, several
worksheets, merged cells, date-times, duplicated rows, corrected re-exports.

Each test here fails on the current code and shows a defect (see the report of the
audit-imports branch)."""
from __future__ import annotations

import datetime as dt

import openpyxl

from flows.sales_facts import (
    ImportRefused,
    import_movements,
    import_receivables_file,
    sync_receivables,
)
from tests.flows.test_audit5_receivables import INVOICES, PAYMENTS, allocations, write
from tests.flows.test_movement_shipped_quantities import (  # noqa: F401 (fixtures)
    KANGDA,
    order,
    stored,
)

D = dt.date
DELIVERY_HEADER = ["发货单号", "意向单号", "行号", "实发数量", "发货日期"]

# a report-style title block as ERP list exports write it above the table: a title, the
# filter the report ran with and who printed it, with blank spacer rows between (7 non-empty
# rows, the header is the 8th, on line 14: within the "first 10 non-empty rows" docs/operations.md says
# are searched for the header)
TITLE_BLOCK = [["销售出库单明细表"], [], ["公司：江苏康达医疗设备有限公司"], [],
               ["日期：2026-10-01 至 2026-11-30"], [], ["客户：全部"], ["仓库：全部"], [],
               ["物料：全部"], [], ["制表：张三"], []]


def workbook(path, *sheets: tuple[str, list[list]]):
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


# --- several worksheets ----------------------------------------------------------------------

def test_a_second_worksheet_under_a_title_block_is_not_dropped_in_silence(seeded, order,  # noqa: F811
                                                                          tmp_path):
    """A workbook of two months: 10月 with its header on row 1, 11月 as the ERP exported it,
    under its report title block (the header on line 14, the 8th non-empty row). Alone, the
    11月 sheet is read (`Sheet.table` searches the first 10 non-empty rows). Beside 10月 it
    is skipped without a word: `_read_movements` decides whether a sheet holds deliveries
    from its first 10 *lines* (blank ones counted), finds no 发货单号 there and drops the
    sheet — the summary says 1 created, nothing skipped. The 40 boxes shipped on FH-2 never
    reach the settlement: their rebate is never paid, and nobody is told."""
    db = seeded.db_url
    path = workbook(tmp_path / "发货.xlsx",
                    ("10月", [DELIVERY_HEADER, ["FH-1", order, 1, 3, "2026-10-12"]]),
                    ("11月", [*TITLE_BLOCK, DELIVERY_HEADER, ["FH-2", order, 2, 40, "2026-11-12"]]))
    try:
        summary = import_movements(db, path, "test", returns=False)
    except ImportRefused:
        return  # refusing the workbook (naming the sheet) would be fine too: nothing lost
    # what a correct import stores: both sheets, as each is read on its own
    assert stored(db) == [("FH-1", 1, 3), ("FH-2", 2, 40)], summary.as_dict()


def test_a_receivables_export_under_a_title_block_is_read_as_the_header_rule_says(seeded,
                                                                                 tmp_path):
    """docs/finance.md: "The header may sit below a title block", and docs/operations.md: "the
    first 10 non-empty rows are searched". An invoice export under a report title block with
    blank spacer rows (header on line 14, the 8th non-empty row) is refused as a whole with
    「无法判断是应收发票表还是回款表」: `_sheet_kind` looks for the header words in the first
    12 *lines*, blank ones counted, so it never sees the header the table reader would find.
    Finance is told the file is neither an invoice nor a payment table, which it plainly
    is; in the drop folder the daily sync stops on it every day until someone deletes rows
    by trial and error."""
    db = seeded.db_url
    rows = [*TITLE_BLOCK, ["发票号", "客户名称", "开票日期", "到期日", "金额"],
            ["FP-T1", KANGDA, "2026-10-01", "2026-11-01", "1000.00"]]
    path = workbook(tmp_path / "应收.xlsx", ("Sheet1", rows))
    summary = import_receivables_file(db, path, "test")
    assert summary.created == 1


# --- dates -----------------------------------------------------------------------------------

def test_a_delivery_date_with_its_time_of_day_is_read_by_its_date(seeded, order, tmp_path):  # noqa: F811
    """Warehouse and e-commerce ERPs export the 出库日期 / 发货日期 with the time the goods left
    (an Excel date-time cell, or `2026/10/12 14:35` in a CSV). The receivables import reads
    such a cell by its date (docs/finance.md, *Dates*: local Beijing time, dropped); the
    deliveries and returns imports refuse it (`不是有效日期：'2026-10-12 14:35:22'`), so the
    clerk has to retype every date by hand before the month's deliveries can count. Both
    imports read facts of the same kind from the same kind of export: they should agree."""
    db = seeded.db_url
    path = workbook(tmp_path / "出库.xlsx", ("Sheet1", [
        DELIVERY_HEADER,
        ["FH-1", order, 1, 3, dt.datetime(2026, 10, 12, 14, 35, 22)],
    ]))
    csv = tmp_path / "出库.csv"
    csv.write_text(",".join(DELIVERY_HEADER) + f"\nFH-2,{order},2,40,2026/10/13 9:05\n",
                   encoding="utf-8-sig")
    import_movements(db, path, "test", returns=False)
    import_movements(db, csv, "test", returns=False)
    assert stored(db) == [("FH-1", 1, 3), ("FH-2", 2, 40)]


# --- duplicated rows -------------------------------------------------------------------------

def test_an_identical_row_given_twice_is_not_to_be_added_up(seeded, order, tmp_path):  # noqa: F811
    """An export appended twice, or two overlapping exports pasted into one sheet, repeat a
    delivery row exactly (same 发货单号, line, quantity, date). The refusal tells the clerk
    "同一单据的同一行请合并为一行（数量相加）后再导入": following it, he books 80 boxes for the 40
    that shipped — the ceiling check only stops it beyond the order (100 here) — and the
    rebate is paid on goods that never left. Two identical rows are one row given twice: the
    import should say so (delete the repeated row), or take it once; adding quantities is
    advice for two lots of one line, which differ."""
    db = seeded.db_url
    row = f"FH-1,{order},2,40,2026-10-12\n"
    path = tmp_path / "发货.csv"
    path.write_text(",".join(DELIVERY_HEADER) + "\n" + row + row, encoding="utf-8")
    try:
        import_movements(db, path, "test", returns=False)
    except ImportRefused as refused:
        said = str(refused)
        assert "数量相加" not in said, said
        return
    assert stored(db) == [("FH-1", 2, 40)]


# --- merged cells ----------------------------------------------------------------------------

def test_a_document_merged_over_its_lines_is_read_as_the_clerk_sees_it(seeded, order,  # noqa: F811
                                                                       tmp_path):
    """Report-style exports (and clerks tidying a sheet) merge a document's own cells — 发货单号,
    意向单号, 发货日期 — over its lines. The clerk sees FH-1, the order and the date on both
    lines; the import (openpyxl read-only: a merged range's other cells are empty) refuses
    the second line with 「发货单号」：不能为空, 「意向单号」：不能为空, 「发货日期」：不能为空 —
    cells he can see are filled. Either the merged value is read for every row it spans, or
    the refusal says the cells are merged (取消合并单元格); "不能为空" sends him looking for a
    blank that is not there."""
    db = seeded.db_url
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(DELIVERY_HEADER)
    ws.append(["FH-1", order, 1, 3, "2026-10-12"])
    ws.append([None, None, 2, 40, None])
    for column in "ABE":
        ws.merge_cells(f"{column}2:{column}3")
    path = tmp_path / "发货.xlsx"
    wb.save(path)
    try:
        import_movements(db, path, "test", returns=False)
    except ImportRefused as refused:
        said = str(refused)
        assert "合并" in said, said
        return
    assert stored(db) == [("FH-1", 1, 3), ("FH-1", 2, 40)]


# --- the drop folder -------------------------------------------------------------------------

def test_a_corrected_export_dropped_again_under_its_name_is_read(hub):
    """Finance names the exports by day as docs/finance.md asks (`20261102-回款.csv`). The
    morning's export allocated receipt SK-1 to FP-A by mistake; finance corrects it to FP-B
    and exports the day's payments again — the same name, the file replaced. The daily sync
    has read the first version already: its cursor is that file name, and it only reads
    names *after* the cursor, so the corrected file is never read. Nothing says so (the
    sync reports 0 records), SK-1 stays on FP-A for good, and FP-A/FP-B's payment rates (so
    the customer's rebate) are computed from a receipt finance has corrected. The same file
    given to `salesops receivables import` moves the payment: the two paths disagree."""
    inbound = hub.settings.path("finance-drop") / "receivables-inbound"
    write(inbound / "20261101-应收.csv", INVOICES
          + f"FP-A,{KANGDA},2026-10-01,2026-11-01,1000.00\n"
            f"FP-B,{KANGDA},2026-10-01,2026-11-15,1000.00\n")
    write(inbound / "20261102-回款.csv", PAYMENTS + "SK-1,FP-A,2026-10-20,600.00\n")
    sync_receivables(hub)
    assert allocations(hub.db_url, "SK-1") == [("FP-A", 600)]

    write(inbound / "20261102-回款.csv", PAYMENTS + "SK-1,FP-B,2026-10-20,600.00\n")
    sync_receivables(hub)
    assert allocations(hub.db_url, "SK-1") == [("FP-B", 600)]
