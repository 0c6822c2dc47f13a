"""Audit round 5 (H4): what finance and the customer read of a settlement, end to end through
`salesops settle` — the statement explains every line whose row does not add up by itself, a
line changed by a version published since names that version (not a tier), a rule a later
version dropped is cited by its clause, a version published while the month is computed is
not missed, the detail workbook keeps its codes as text and names each voucher by its 凭证号
in the import, and a confirmation whose vouchers cannot go out says how it is finished."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from decimal import Decimal

import openpyxl
import pytest

from flows import settlement
from models import Customer, Delivery
from models.db import session_scope
from tests.rebate_support import clock_from, customer_id, publish, signed_order
from tests.support import in_process_cli

D = dt.date
POLICY = """
code: T-2026Q4
name: 测试季度返利政策
effective_from: 2026-10-01
rules:
  - id: flat
    name: 基础返利
    clause: 第一条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: month
    style: retroactive
    tiers: [{from: 0, rate: 2%}]
    priority: 10
    stacking: stack
  - id: quarter
    name: 季度阶梯
    clause: 第二条
    applies_to: {product_lines: [监护]}
    measure: amount
    period: quarter
    style: retroactive
    tiers:
      - {from: 0, to: 100000, rate: 1%}
      - {from: 100000, rate: 3%}
    priority: 5
    stacking: stack
"""
# version 2 from 16 October: the base rate 2.5 %, the quarterly rule gone
V2_FROM_16TH = (POLICY.replace("effective_from: 2026-10-01", "effective_from: 2026-10-16")
                .replace("rate: 2%", "rate: 2.5%").split("  - id: quarter")[0])


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


def settle(cli, month: str) -> dict:
    code, out, err = cli("settle", "--month", month, "--json")
    assert code == 0, err
    return json.loads(out)


def pdf_text(path: str) -> str | None:
    if not shutil.which("pdftotext"):
        return None
    return subprocess.run(["pdftotext", "-layout", path, "-"], capture_output=True, text=True,
                          check=True).stdout


def test_a_rebate_paying_the_rest_of_a_partly_delivered_order_says_why_on_the_statement(
        hub, cli, statements):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY.replace("rate: 1%", "rate: 0%"))
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 10)], delivered_on=False)
    with session_scope(hub.db_url) as s:
        s.add(Delivery(delivery_no="DX-1", order_id=o1, line_no=1, quantity=4,
                       delivered_on=D(2026, 10, 12)))
    # October: 4 × 12,800 = 51,200 delivered × 2 % = 1,024.00, a plain first payment: its row
    # (basis × rate) tells it, no explanation needed
    assert settle(cli, "2026-10")["total"] == "1024.00"
    (line,) = statements["C000001"].lines
    assert (line.kind, line.amount, line.explanation) == ("rebate", Decimal("1024.00"), "")
    # November: the other 6 delivered. The order's October base is 128,000 × 2 % = 2,560.00,
    # of which 1,024.00 was paid: this line pays 1,536.00 — its row reads 128,000.00 × 2 %,
    # so the statement must say why it is not 2,560.00
    clock_from(D(2026, 12, 5))
    with session_scope(hub.db_url) as s:
        s.add(Delivery(delivery_no="DX-2", order_id=o1, line_no=1, quantity=6,
                       delivered_on=D(2026, 11, 12)))
    result = settle(cli, "2026-11")
    flat = next(ln for ln in statements["C000001"].lines if ln.clause == "第一条")
    assert (flat.kind, flat.basis_amount, flat.amount) == ("rebate", Decimal("128000.00"),
                                                           Decimal("1536.00"))
    assert "应返 2,560.00 元，已返 1,024.00 元，本次 1,536.00 元" in flat.explanation
    assert "计返基数由 51,200.00 元 增至 128,000.00 元" in flat.explanation
    # the quarter reached 3 % with this delivery: 128,000 × 3 % = 3,840.00, nothing paid before
    quarter = next(ln for ln in statements["C000001"].lines if ln.clause == "第二条")
    assert (quarter.amount, quarter.explanation) == (Decimal("3840.00"), "")
    text = pdf_text(result["documents"]["statements"][0])
    if text is not None:
        assert "已返 1,024.00 元，本次 1,536.00 元" in text


def test_a_version_published_into_a_settled_month_is_named_as_the_cause(hub, cli, statements):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    late = signed_order(hub.db_url, kangda, D(2026, 10, 20), [("MON-M8", 5)])
    # October: 128,000 in the month and the quarter: 2 % + 3 % of each 64,000 order
    assert settle(cli, "2026-10")["total"] == "6400.00"
    publish(hub.db_url, V2_FROM_16TH)
    # the re-run: the 20 October order is governed by version 2 now — base 2.5 % (1,600.00,
    # +320.00), and no quarterly rule (−1,920.00); the 10 October order stays under version 1,
    # its quarter now 64,000 (1 %: 640.00, −1,280.00)
    result = settle(cli, "2026-10")
    assert (result["revision"], result["total"]) == (2, "-2880.00")
    lines = {(ln.order_id, ln.clause): ln for ln in statements["C000001"].lines}
    base = lines[(late, "第一条")]
    assert (base.amount, base.policy_version) == (Decimal("320.00"), 2)
    # the volume did not change: the version did
    assert "本单订单日期现适用政策第2版（此前按第1版结算），按第2版重算" in base.explanation
    assert "按现档位重算（阶梯补差）" not in base.explanation
    # the dropped rule is cited as the customer knows it, by its clause and name
    gone = lines[(late, "第二条")]
    assert gone.amount == Decimal("-1920.00")
    assert "第2版已无该条款（第1版第二条「季度阶梯」）" in gone.explanation
    assert "quarter" not in gone.explanation
    text = pdf_text(result["documents"]["statements"][0])
    if text is not None:
        assert "现适用政策第2版" in text.replace("\n", "").replace(" ", "")


def test_the_detail_workbook_keeps_codes_as_text(hub, cli):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    with session_scope(hub.db_url) as s:
        customer = s.get(Customer, kangda)
        customer.finance_code = "001234"
        s.add(customer)
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    book = openpyxl.load_workbook(settle(cli, "2026-10")["documents"]["workbook"])

    def column(sheet: str, header: str):
        ws = book[sheet]
        heads = [c.value for c in ws[1]]
        return [row[heads.index(header)] for row in ws.iter_rows(min_row=2)]

    # a code typed over or copied into finance's template must not lose its zeros (1234), and
    # a period must not become a date
    for sheet, header in (("明细", "客户编码"), ("明细", "订单号"), ("明细", "统一社会信用代码"),
                          ("明细", "期间"), ("明细", "结算月份"), ("按客户", "客户编码"),
                          ("凭证", "客户编码"), ("凭证", "科目编码"), ("凭证", "会计期间")):
        cells = [c for c in column(sheet, header) if c.value not in (None, "合计")]
        assert cells and all(c.number_format == "@" for c in cells), (sheet, header)
    assert {c.value for c in column("明细", "客户编码")} == {"001234"}


def test_a_confirmation_whose_vouchers_cannot_go_out_says_it_is_stored_and_how_to_finish(
        hub, cli, monkeypatch):
    """Finance confirms a revision whose vouchers never went out (finance was down when it was
    settled) and finance is down again: the confirmation is stored, so running the same
    command again is refused as made — the message must say so and name the command that
    finishes the vouchers and the confirmed statements; that command does, once."""
    from connectors.base import TransientError

    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    submit = hub.finance.submit_vouchers

    def down(batch):
        raise TransientError("connection refused", provider="finance")

    monkeypatch.setattr(hub.finance, "submit_vouchers", down)
    assert cli("settle", "--month", "2026-10")[0] == 3
    code, out, err = cli("settle", "--month", "2026-10", "--confirm", "1", "--by", "finance-01")
    assert code == 3 and "Traceback" not in err
    assert "第 1 版的确认已保存，无需再次确认；已确认的对账单尚未生成。" in err
    assert "原因：外部系统暂不可用（finance）" in err and "salesops settle --month 2026-10" in err
    assert "已于" in cli("settle", "--month", "2026-10", "--confirm", "1", "--by",
                          "finance-01")[2]  # the same command again: refused as made
    monkeypatch.setattr(hub.finance, "submit_vouchers", submit)
    code, out, err = cli("settle", "--month", "2026-10")
    assert code == 0, err
    assert "凭证草稿已提交财务：DRAFT-RB-2026-10-r1" in out and "r1-confirmed" in out


def test_a_version_published_while_the_month_is_computed_is_settled_by_it(hub, monkeypatch):
    """The clerk publishes version 2 (from 16 October) while October is being computed: the
    month was not settled yet, so publishing warned of nothing; the settlement must not store
    lines computed with version 1 alone — it computes again and pays the 20 October order
    under version 2."""
    from flows.hub import current_hub
    from models import RebateLine
    from sqlmodel import select

    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    late = signed_order(hub.db_url, kangda, D(2026, 10, 20), [("MON-M8", 5)])
    read_paid, published = settlement.paid_in_db, []

    def publish_meanwhile(*args, **kwargs):
        if not published:
            published.append(publish(hub.db_url, V2_FROM_16TH))
        return read_paid(*args, **kwargs)
    monkeypatch.setattr(settlement, "paid_in_db", publish_meanwhile)
    result = settlement.settle_month(current_hub(), "2026-10", documents=False)
    assert published[0].version == 2 and not published[0].warnings
    with session_scope(hub.db_url) as s:
        lines = s.exec(select(RebateLine).where(RebateLine.run_id == result.run_id)).all()
    # 64,000 × 2.5 % under version 2 (not 2 % under version 1); version 2 has no quarterly rule
    assert [(ln.order_id, ln.rule_id, ln.policy_version, ln.amount) for ln in lines] == [
        (late, "flat", 2, Decimal("1600.00"))]


def test_the_detail_workbook_names_each_voucher_by_its_number_in_the_import(hub, cli):
    """After the import finance's books know a voucher as 记-2, not as RB-2026-10-r1-C000003:
    the detail workbook's 凭证 sheet gives each voucher the 凭证号 the import workbook gives it."""
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    for name in ("江苏康达医疗设备有限公司", "浙江仁和医疗器械有限公司", "广州华南医药贸易有限公司"):
        signed_order(hub.db_url, customer_id(hub.db_url, name), D(2026, 10, 10), [("MON-M8", 1)])
    result = settle(cli, "2026-10")
    drop = hub.settings.data_dir / "finance-drop" / "vouchers" / "RB-2026-10-r1.xlsx"
    imported = openpyxl.load_workbook(drop).worksheets[0]
    keys = [c.value for c in imported[1]]
    numbers = {}  # customer code on the payable entry → 凭证号
    current = None
    for row in imported.iter_rows(min_row=3, values_only=True):
        if row[keys.index("FVOUCHERGROUPNO")] is not None:
            current = row[keys.index("FVOUCHERGROUPNO")]
        if row[keys.index("FDetailID#FFlex6")]:
            numbers[row[keys.index("FDetailID#FFlex6")]] = current
    assert sorted(numbers.values()) == [1, 2, 3]
    sheet = openpyxl.load_workbook(result["documents"]["workbook"])["凭证"]
    head, *rows = sheet.iter_rows(values_only=True)
    listed = {row[head.index("客户编码")]: row[head.index("引入凭证号")] for row in rows
              if row[head.index("客户编码")]}
    assert listed == numbers
