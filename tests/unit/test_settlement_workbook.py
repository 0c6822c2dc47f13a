"""Finance detail workbook: sheets, exact money cells, totals that add up, balanced vouchers."""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import replace
from decimal import Decimal as D

import pytest
from openpyxl import load_workbook

from connectors.finance import VoucherDraft, VoucherEntry
from reports.settlement_workbook import (
    DETAIL_HEADERS,
    SettlementDetailLine,
    SettlementReport,
    build_settlement_workbook,
    save_settlement_workbook,
)

KANGDA = ("C000123", "江苏康达医疗设备有限公司", "91320500MA1K2D3F5H", "华东", "张伟")
HENGRUN = ("C000456", "苏州恒润精密机械有限公司", None, "华东", "王芳")
LINGNAN = ("C000789", "广州岭南医疗器械有限公司", "91440101MA5ABCDE1X", "华南", "张伟")
ORPHAN = ("C000999", "成都新客户医疗有限公司", None, None, None)  # no region, no rep yet


def line(customer, order_id, amount, kind="rebate", **kw) -> SettlementDetailLine:
    code, name, uscc, region, rep = customer
    fields = dict(month="2026-10", revision=1, order_id=order_id, customer_name=name,
                  customer_uscc=uscc, region=region, rep_name=rep, policy_code="MON-2026Q4",
                  policy_version=2, clause="第二条", period="2026Q4", basis_amount=D("24691.20"),
                  rate=D("0.054321"), due_amount=D("1341.26"), amount=D(amount), kind=kind,
                  explanation="季度累计销售额 524,000.00 元，达到第3档。", customer_code=code,
                  order_date=dt.date(2026, 10, 8))
    fields.update(kw)
    return SettlementDetailLine(**fields)


LINES = (
    line(KANGDA, "IO261008-AAAA0001", "1341.26"),
    line(KANGDA, "IO260915-AAAA0002", "987.65", "tier_difference"),
    line(HENGRUN, "IO261002-BBBB0001", "500.00"),
    line(HENGRUN, "IO260920-BBBB0002", "-1300.05", "clawback"),
    line(LINGNAN, "IO261011-CCCC0001", "2200.10"),
    line(LINGNAN, "IO260801-CCCC0002", "-0.01", "adjustment"),
    line(ORPHAN, "IO261020-DDDD0001", "88.88"),
)
EXPENSE, PAYABLE = ("6601.09", "销售费用-销售返利"), ("2241.05", "其他应付款-应付返利")


def voucher_for(customer, net: D) -> VoucherDraft:
    code, name = customer[0], customer[1]
    summary = f"2026年10月返利结算 {name}"
    size = abs(net)
    debit, credit = (EXPENSE, PAYABLE) if net > 0 else (PAYABLE, EXPENSE)
    return VoucherDraft(
        voucher_key=f"RB-2026-10-r1-{code}", voucher_date=dt.date(2026, 10, 31),
        period="2026-10", word="记", prepared_by="孙丽",
        entries=(VoucherEntry(summary, *debit, size, D("0.00"), code, name),
                 VoucherEntry(summary, *credit, D("0.00"), size, code, name)))


def report(**kw) -> SettlementReport:
    nets: dict[tuple, D] = {}
    for item in LINES:
        for c in (KANGDA, HENGRUN, LINGNAN, ORPHAN):
            if c[0] == item.customer_code:
                nets[c] = nets.get(c, D("0.00")) + item.amount
    fields = dict(month="2026-10", revision=1, status="draft",
                  as_of=dt.datetime(2026, 11, 4, 18, 0, tzinfo=dt.timezone.utc), lines=LINES,
                  vouchers=tuple(voucher_for(c, n) for c, n in nets.items() if n),
                  batch_id="RB-2026-10-r1")
    fields.update(kw)
    return SettlementReport(**fields)


def money(value) -> D:
    return D(str(value)).quantize(D("0.01"))


def rows(ws):
    return list(ws.iter_rows(values_only=True))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("wb") / "结算明细-2026-10-r1.xlsx"
    digest = save_settlement_workbook(report(), path)
    return path, digest, load_workbook(path)


TOTAL = sum((item.amount for item in LINES), D("0.00"))


def test_total_is_hand_computed():
    assert TOTAL == D("3817.83")
    assert report().total == TOTAL


def test_sheets_in_order_and_file_written_atomically(saved):
    path, digest, wb = saved
    assert wb.sheetnames == ["明细", "按大区", "按销售", "按客户", "凭证"]
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert "第1版" in wb.properties.title and wb.properties.creator == "salesops-hub"


def test_detail_has_every_line_with_exact_numeric_money(saved):
    ws = saved[2]["明细"]
    table = rows(ws)
    assert table[0] == DETAIL_HEADERS
    for header in ("结算月份", "结算版本", "订单号", "客户", "统一社会信用代码", "大区", "销售", "政策",
                   "政策版本", "条款", "期间", "计算基数", "返利比例", "实际比例", "应返累计", "本次金额",
                   "类型", "说明"):
        assert header in table[0], header
    body = [dict(zip(table[0], r)) for r in table[1:]]
    assert [r["订单号"] for r in body] == [item.order_id for item in LINES]
    first = body[0]
    assert first["结算月份"] == "2026-10" and first["结算版本"] == 1 and first["政策版本"] == 2
    assert first["客户"] == "江苏康达医疗设备有限公司" and first["统一社会信用代码"] == KANGDA[2]
    assert first["下单日期"] == dt.datetime(2026, 10, 8)
    assert [r["类型"] for r in body[:4]] == ["返利", "阶梯补差", "返利", "退货冲回"]
    assert body[5]["类型"] == "更正" and money(body[5]["本次金额"]) == D("-0.01")
    assert body[6]["大区"] == "（未分配）" and body[6]["销售"] == "（未分配）"
    assert sum(money(r["本次金额"]) for r in body) == TOTAL
    assert isinstance(first["计算基数"], (int, float)) and money(first["应返累计"]) == D("1341.26")
    col = {h: i + 1 for i, h in enumerate(table[0])}
    for name in ("计算基数", "应返累计", "本次金额"):
        assert ws.cell(2, col[name]).number_format == "#,##0.00"
    for name in ("返利比例", "实际比例"):
        assert ws.cell(2, col[name]).number_format.endswith("%")
    assert D(str(ws.cell(2, col["实际比例"]).value)) == D("0.054321")
    assert ws.cell(2, col["返利比例"]).value is None  # no single policy rate given
    assert ws.auto_filter.ref == f"A1:T{len(LINES) + 1}"


def _summary(wb, title):
    table = rows(wb[title])
    head = table[0]
    return head, [dict(zip(head, r)) for r in table[1:-1]], dict(zip(head, table[-1]))


@pytest.mark.parametrize("title, key, expected", [
    ("按大区", "大区", {"华东": D("1528.86"), "华南": D("2200.09"), "（未分配）": D("88.88")}),
    ("按销售", "销售", {"张伟": D("4529.00"), "王芳": D("-800.05"), "（未分配）": D("88.88")}),
    ("按客户", "客户", {KANGDA[1]: D("2328.91"), HENGRUN[1]: D("-800.05"),
                     LINGNAN[1]: D("2200.09"), ORPHAN[1]: D("88.88")}),
])
def test_summaries_add_up_to_the_detail(saved, title, key, expected):
    head, body, total = _summary(saved[2], title)
    assert head[-6:] == ("行数", "返利", "阶梯补差", "退货冲回", "更正", "合计")
    assert {r[key]: money(r["合计"]) for r in body} == expected
    assert sum(r["行数"] for r in body) == len(LINES) == total["行数"]
    for r in body:  # each row's kinds add up to its total
        assert sum(money(r[k]) for k in ("返利", "阶梯补差", "退货冲回", "更正")) == money(r["合计"])
    assert total[head[0]] == "合计" and money(total["合计"]) == TOTAL
    assert money(total["退货冲回"]) == D("-1300.05") and money(total["更正"]) == D("-0.01")
    assert saved[2][title].cell(2, len(head)).number_format == "#,##0.00"


def test_rep_sheet_lists_the_regions_a_rep_sells_in(saved):
    _, body, _ = _summary(saved[2], "按销售")
    zhang = next(r for r in body if r["销售"] == "张伟")
    assert zhang["大区"] == "华东、华南" and zhang["客户数"] == 2


def test_voucher_sheet_is_balanced_and_matches_the_net_rebate(saved):
    table = rows(saved[2]["凭证"])
    assert table[0][:6] == ("凭证编号", "凭证日期", "会计期间", "凭证字", "分录号", "摘要")
    entries = [dict(zip(table[0], r)) for r in table[1:] if r[4] is not None]
    subtotals = [dict(zip(table[0], r)) for r in table[1:] if r[5] == "小计"]
    grand = next(dict(zip(table[0], r)) for r in table if r[0] == "合计")
    assert len(subtotals) == 4 and len(entries) == 8
    for sub in subtotals:  # voucher by voucher
        assert money(sub["借方金额"]) == money(sub["贷方金额"]) > 0
        own = [e for e in entries if e["凭证编号"] == sub["凭证编号"]]
        assert sum(money(e["借方金额"]) for e in own) == money(sub["借方金额"])
    assert grand["凭证编号"] == "合计" and money(grand["借方金额"]) == money(grand["贷方金额"])
    assert sum(money(e["借方金额"]) for e in entries) == money(grand["借方金额"])
    # the expense account nets to the rebate total: debits for payments, credits for claw-backs
    expense = [e for e in entries if e["科目编码"] == "6601.09"]
    assert sum(money(e["借方金额"]) - money(e["贷方金额"]) for e in expense) == TOTAL
    # … and the sheet says so: per account, debits and credits offset (a claw-back voucher
    # runs the other way, so 合计 is more than the net); the two nets tie to 明细's total
    nets = {r[6]: (money(r[10]), money(r[11])) for r in table if r[0] == "科目净额"}
    assert nets == {"6601.09": (TOTAL, D("0.00")), "2241.05": (D("0.00"), TOTAL)}
    assert money(grand["借方金额"]) > TOTAL  # HENGRUN's claw-back voucher counts both ways
    first = entries[0]
    assert first["凭证日期"] == dt.datetime(2026, 10, 31) and first["凭证字"] == "记"
    assert first["客户编码"] == "C000123" and first["制单人"] == "孙丽"
    assert saved[2]["凭证"].cell(2, 11).number_format == "#,##0.00"


def test_empty_revision_still_builds():
    wb = build_settlement_workbook(report(lines=(), vouchers=()))
    assert rows(wb["明细"]) == [DETAIL_HEADERS]
    assert rows(wb["按客户"])[-1][0] == "合计" and rows(wb["凭证"])[-1][10] == 0


@pytest.mark.parametrize("bad", [
    lambda: replace(LINES[0], amount=12.5),
    lambda: replace(LINES[0], kind="bonus"),
    lambda: report(as_of=dt.datetime(2026, 11, 4, 18, 0)),
    lambda: report(status="sent"),
], ids=["float", "kind", "naive", "status"])
def test_inputs_that_cannot_be_reported_are_refused(bad):
    with pytest.raises((TypeError, ValueError)):
        bad()
