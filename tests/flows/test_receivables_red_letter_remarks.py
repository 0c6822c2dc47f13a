"""A red-letter invoice's blue invoice read from its 备注, where the tax software writes it
(税控开票软件: `对应正数发票代码:…号码:…`; 数电票: `被红冲蓝字数电票号码:…`), when the export has
no 原发票号码 / 原发票代码 for it. Only on a negative row; the columns win; a 备注 naming another
blue invoice than the columns is refused.

The figures are those of tests/flows/test_receivables_red_letter.py, FP-C being an old-style
invoice (发票代码 + 8-digit 号码) or a 数电票 (20 digits) here. By hand: FP-A 10,000.00 paid
on time; FP-B 5,000.00 reversed in full; FP-C 8,000.00 reversed by 2,000.00 (HP-C), 5,000.00
paid on time. Due 10,000 + 0 + 6,000 = 16,000, on time 15,000: 93.75 %. Before, HP-C was
refused for naming no blue invoice."""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
from sqlmodel import select

from flows.sales_facts import ImportRefused, import_receivables_file
from models import ReceivableInvoice
from models.db import session_scope
from tests.flows.test_audit5_receivables import CODE_1, CODE_2, KANGDA, PAYMENTS, write
from tests.flows.test_receivables_red_letter import SAID, rate
from tests.rebate_support import clock_from


@pytest.fixture(autouse=True)
def _after_the_files_dates():
    """Today is after every date these files give (a payment or invoice dated after today is
    refused)."""
    clock_from(dt.date(2028, 1, 1))

D = dt.date
DIGITAL = "24322000000012345678"  # a 数电票's 20-digit number
FORMS = ("（如税控开票软件写的“对应正数发票代码:…号码:…”、数电票的“被红冲蓝字数电票号码:…”）")


def invoices(blue: tuple[str, str], red: list, *, remark: str = "备注",
             original: bool = False) -> list[list]:
    """FP-A, FP-B (已红冲) and FP-C = `blue` (代码, 号码) as an export lists them, then the
    `red` rows (号码, 金额, 备注[, 原发票代码, 原发票号码]); dates as in the red-letter tests."""
    head = ["发票代码", "发票号码", "客户名称", "开票日期", "到期日", "价税合计", "红冲状态", remark]
    if original:
        head += ["原发票代码", "原发票号码"]
    pad = [""] * (len(head) - 8)
    rows = [head,
            ["", "FP-A", KANGDA, "2026-10-01", "2026-11-15", "10000.00", "", ""] + pad,
            ["", "FP-B", KANGDA, "2026-10-01", "2026-12-10", "5000.00", "已红冲", ""] + pad,
            [*blue, KANGDA, "2026-11-01", "2027-01-10", "8000.00", "部分红冲", ""] + pad]
    for number, amount, note, *named in red:
        rows.append(["", number, KANGDA, "2027-02-20", "2027-03-01", amount, "", note, *named]
                    + [""] * (len(head) - 8 - len(named)))
    return rows


def as_csv(path, rows: list[list]):
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return write(path, text.getvalue())


def as_xlsx(path, rows: list[list]):
    wb = openpyxl.Workbook()
    wb.active.title = "销项发票"
    wb.active.append(["发票查询导出"])  # the title block above the header
    for row in rows:
        # amounts and dates as cells of their kind, as the tax platform's export has them
        wb.active.append([Decimal(c) if n == 5 and c and c != "价税合计" else
                          dt.date.fromisoformat(c) if n in (3, 4) and c[:1] == "2" else c
                          for n, c in enumerate(row)])
    wb.save(path)
    return path


def paid(blue: tuple[str, str]) -> str:
    code, number = blue
    return ("发票代码," + PAYMENTS + ",SK-1,FP-A,2026-11-10,10000.00\n"
            f"{code},SK-2,{number},2027-01-05,5000.00\n")


def reverses(db: str, number: str) -> str | None:
    with session_scope(db) as s:
        return s.exec(select(ReceivableInvoice.reverses)
                      .where(ReceivableInvoice.invoice_no == number)).one()


@pytest.mark.parametrize(("blue", "note"), [
    ((CODE_1, "04419876"), "对应正数发票代码:044001900111号码:04419876"),
    # full-width colons, a space, a 10-digit 专票 code
    ((CODE_2, "01234567"), "对应正数发票代码：3200191130 号码：01234567"),
    # after the 信息表编号 of a 红字专票, other remark text after it
    ((CODE_2, "01234567"), "开具红字增值税专用发票信息表编号3201102611000123 "
                           "对应正数发票代码:3200191130号码:01234567 退货2台"),
    # typed in full-width digits
    ((CODE_1, "04419876"), "对应正数发票代码：０４４００１９００１１１号码：０４４１９８７６"),
    # a 数电票: no code, the 红字发票信息确认单 after it
    (("", DIGITAL), f"被红冲蓝字数电票号码：{DIGITAL} 红字发票信息确认单编号：32011026110001234567"),
])
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_red_invoice_names_its_blue_invoice_in_its_remark(seeded, tmp_path, blue, note, kind):
    db = seeded.db_url
    rows = invoices(blue, [("HP-C", "-2000.00", note)],
                    remark="备注" if kind == "csv" else "发票备注")
    export = (as_csv(tmp_path / "应收.csv", rows) if kind == "csv"
              else as_xlsx(tmp_path / "应收.xlsx", rows))
    assert import_receivables_file(db, export, "t").created == 4
    import_receivables_file(db, write(tmp_path / "回款.csv", paid(blue)), "t")
    assert reverses(db, "HP-C") == "-".join(filter(None, blue))
    assert rate(db) == ((1_600_000, 1_500_000), Decimal("0.9375"))


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_an_export_with_two_remark_columns_reads_both(seeded, tmp_path, kind):
    """ERP invoice lists often carry the document's 备注 and the line's 备注 under one header:
    both are read (the blue invoice is in the second here), not refused as a repeated column."""
    db = seeded.db_url
    blue = (CODE_1, "04419876")
    rows = invoices(blue, [("HP-C", "-2000.00", "退货2台")])
    rows[0].append("备注")
    for row, extra in zip(rows[1:], ["", "", "", "对应正数发票代码:044001900111号码:04419876"]):
        row.append(extra)
    export = (as_csv(tmp_path / "应收.csv", rows) if kind == "csv"
              else as_xlsx(tmp_path / "应收.xlsx", rows))
    assert import_receivables_file(db, export, "t").created == 4
    import_receivables_file(db, write(tmp_path / "回款.csv", paid(blue)), "t")
    assert reverses(db, "HP-C") == f"{CODE_1}-04419876"
    assert rate(db) == ((1_600_000, 1_500_000), Decimal("0.9375"))


def test_the_columns_win_and_a_positive_row_s_remark_is_ignored(seeded, tmp_path):
    """HP-C names FP-C in 原发票代码/原发票号码 and its 备注 says the same; HP-D names it in the
    columns, its 备注 only the 信息表编号. FP-D, positive, is a blue invoice re-issued for
    the goods kept, its 备注 quoting the reversed one: it reverses nothing (by hand: due
    10,000 + 0 + (8,000 − 1,500 − 500) + 0 (FP-D is due in March), on time 15,000 of 16,000)."""
    db = seeded.db_url
    blue = (CODE_1, "04419876")
    rows = invoices(blue, [("HP-C", "-1500.00", "对应正数发票代码:044001900111号码:04419876",
                            CODE_1, "04419876"),
                           ("HP-D", "-500.00", "开具红字增值税专用发票信息表编号3201102611000123",
                            CODE_1, "04419876"),
                           ("FP-D", "1500.00", "对应正数发票代码:044001900111号码:04419876")],
                    original=True)
    assert import_receivables_file(db, as_csv(tmp_path / "应收.csv", rows), "t").created == 6
    import_receivables_file(db, write(tmp_path / "回款.csv", paid(blue)), "t")
    blue_key = f"{CODE_1}-04419876"
    assert [reverses(db, n) for n in ("HP-C", "HP-D", "FP-D")] == [blue_key, blue_key, None]
    assert rate(db) == ((1_600_000, 1_500_000), Decimal("0.9375"))


def test_a_remark_naming_another_blue_invoice_than_the_columns_is_refused(seeded, tmp_path):
    db = seeded.db_url
    rows = invoices((CODE_1, "04419876"),
                    [("HP-C", "-2000.00", "对应正数发票代码:044001900111号码:04419877",
                      CODE_1, "04419876")], original=True)
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, as_csv(tmp_path / "应收.csv", rows), "t")
    assert [str(p) for p in refused.value.problems] == [
        "应收.csv 第5行「原发票号码」：原发票号码 04419876（发票代码 044001900111） 与「备注」写明的"
        "蓝字发票 04419877（发票代码 044001900111） 不同：请按红字发票信息表（红字确认单）核对，"
        "改正其一后再导入"]
    with session_scope(db) as s:  # nothing written, not even the blue invoices
        assert s.exec(select(ReceivableInvoice.id)).first() is None


def test_a_remark_naming_no_blue_invoice_is_refused_saying_it_was_read(seeded, tmp_path):
    db = seeded.db_url
    rows = invoices(("", "FP-C"), [("HP-C", "-2000.00", "开具红字增值税专用发票信息表编号"
                                                       "3201102611000123"),
                                   ("HP-E", "-100.00", "")], original=True)
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, as_csv(tmp_path / "应收.csv", rows), "t")
    minus = SAID.replace("-2000.00", "-100.00")
    assert [str(p) for p in refused.value.problems] == [
        f"应收.csv 第5行「原发票号码」：{SAID}：此行的原发票号码为空，「备注」中也没有写明蓝字发票{FORMS}",
        f"应收.csv 第6行「原发票号码」：{minus}：此行的原发票号码为空，「备注」中也没有写明蓝字发票{FORMS}"]
    # a table without 原发票号码, with both remark columns
    book = tmp_path / "应收.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["发票号码", "购买方名称", "开票日期", "到期日", "价税合计", "备注", "发票备注"])
    wb.active.append(["HP-9", KANGDA, D(2026, 12, 20), D(2026, 12, 20), -2000, "退货", None])
    wb.save(book)
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(db, book, "t")
    assert [str(p) for p in refused.value.problems] == [
        f"应收.xlsx 第2行「原发票号码」：{SAID}：此表没有「原发票号码」列（也可写作：原蓝字发票号码、"
        f"蓝字发票号码、对应蓝字发票号码、原发票号、被红冲发票号码），「备注」「发票备注」中也没有写明"
        f"蓝字发票{FORMS}，请导出时带上该列（旧版发票还有「原发票代码」列）后再导入"]
    assert rate(db) == ((0, 0), None)


@pytest.mark.parametrize(("note", "said"), [
    # the code checked as 原发票代码 is: 11 digits
    ("对应正数发票代码:04400190011号码:04419876",
     "第5行「备注」：「备注」中的原发票代码须为10位或12位数字：'04400190011'"),
    # a code with a 数电票's 20 digits
    (f"被红冲蓝字发票代码:044001900111号码:{DIGITAL}",
     f"第5行「备注」：「备注」写有原发票代码时，原发票号码须为8位数字：'{DIGITAL}'"),
    # an 8-digit number needs its code
    ("被红冲蓝字发票号码:04419876",
     "第5行「备注」：「备注」中的原发票号码 04419876 是8位的旧版发票号码，须同时填写原发票代码"),
    # two blue invoices
    ("对应正数发票代码:044001900111号码:04419876；对应正数发票代码:044001900111号码:04419877",
     "第5行「备注」：「备注」写明了2张蓝字发票（04419876（发票代码 044001900111）、04419877（发票代码 "
     "044001900111）），一张红字发票只冲销一张：请在「原发票号码」列填写它冲销的蓝字发票"),
    # more digits than a number the hub keeps
    ("被红冲蓝字数电票号码:" + "1" * 41, "第5行「备注」：「备注」中的原发票号码超过 40 位：" + "1" * 41),
    # a blue invoice not on file: named at the 备注
    ("对应正数发票代码:044001900111号码:04419870",
     "第5行「备注」：红字发票 HP-C：冲销的蓝字发票 04419870（发票代码 044001900111） 未找到"),
])
def test_a_bad_blue_invoice_in_a_remark_is_refused_at_the_remark(seeded, tmp_path, note, said):
    rows = invoices((CODE_1, "04419876"), [("HP-C", "-2000.00", note)])
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, as_csv(tmp_path / "应收.csv", rows), "t")
    assert said in str(refused.value), str(refused.value)
    assert rate(seeded.db_url) == ((0, 0), None)


def test_a_remark_naming_the_red_invoice_itself_is_refused(seeded, tmp_path):
    red = DIGITAL[:-1] + "9"
    rows = invoices(("", DIGITAL), [(red, "-2000.00", f"被红冲蓝字数电票号码：{red}")])
    with pytest.raises(ImportRefused) as refused:
        import_receivables_file(seeded.db_url, as_csv(tmp_path / "应收.csv", rows), "t")
    assert [str(p) for p in refused.value.problems] == [
        "应收.csv 第5行「备注」：红字发票「备注」中的原发票号码不能是它自己的号码"]
