"""Audit round 6: what finance reads of a settlement through `salesops settle`, checked by
hand — the confirmed documents say when and by whom they were confirmed."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import openpyxl
import pytest

from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order
from tests.support import in_process_cli

D = dt.date
POLICY = """
code: A6-2026
name: 审计六季度返利
effective_from: 2026-10-01
rules:
  - id: quarter
    name: 季度阶梯
    clause: 第二条
    measure: amount
    period: quarter
    style: retroactive
    tiers:
      - {from: 0, to: 100000, rate: 1%}
      - {from: 100000, rate: 3%}
    priority: 5
    stacking: stack
"""


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


def test_the_confirmed_workbook_names_the_confirmation_date_and_person(hub, cli):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    code, out, err = cli("settle", "--month", "2026-10", "--json")
    assert code == 0, err
    clock_from(D(2026, 11, 9))  # finance confirms four days later
    code, out, err = cli("settle", "--month", "2026-10", "--confirm", "1", "--by",
                         "finance-01", "--json")
    assert code == 0, err
    made = json.loads(out)["documents"]
    props = openpyxl.load_workbook(made["workbook"]).properties
    # as the confirmed statement does (供方已确认（2026年11月9日）): a workbook passed on
    # without its folder still tells the confirmed figures from the draft's, and since when
    assert "已确认 2026年11月9日 孙丽（finance-01）" in props.title
    assert "状态：已确认 2026年11月9日" in props.description
    assert "；合计 ¥640.00；" in props.description  # money as everywhere else
    ws = openpyxl.load_workbook(made["workbook"])["明细"]
    assert "已确认 2026年11月9日" in ws.oddHeader.center.text


MARGINAL = """
code: A6-MARG
name: 审计六分段累进返利
effective_from: 2026-10-01
rules:
  - id: bands
    name: 季度分段累进
    clause: 第三条
    measure: amount
    period: quarter
    style: marginal
    tiers:
      - {from: 0, to: 100000, rate: 1%}
      - {from: 100000, rate: 3%}
    priority: 5
    stacking: stack
"""


def test_a_first_payment_across_a_marginal_tier_bound_prints_its_bands(hub, cli, statements):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, MARGINAL)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    # 10 × 12,800 = 128,000: 100,000 × 1 % + 28,000 × 3 % = 1,000 + 840 = 1,840.00, a first
    # payment of the whole due — but its row reads 128,000.00 × 1.4375%*, which no one can
    # check by hand (128,000 × 1.4375 % is the due only by construction): the bands must show
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 10)])
    # an order inside one band keeps the short form: its basis × 返利比例 is its amount
    signed_order(hub.db_url, customer_id(hub.db_url, "浙江仁和医疗器械有限公司"),
                 D(2026, 10, 12), [("MON-M8", 1)])
    code, out, err = cli("settle", "--month", "2026-10", "--json")
    assert code == 0, err
    assert json.loads(out)["total"] == "1968.00"
    (line,) = statements["C000001"].lines
    assert (line.kind, line.amount, line.policy_rate) == ("rebate", Decimal("1840.00"), None)
    assert "100,000.00 元 按第1档 1%、28,000.00 元 按第2档 3%" in line.explanation
    (small,) = statements["C000002"].lines
    assert (small.amount, small.policy_rate, small.explanation) == (
        Decimal("128.00"), Decimal("0.01"), "")


def test_a_tier_falling_back_under_a_rule_without_a_cap_does_not_blame_a_cap(hub, cli,
                                                                             statements):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)  # retroactive 1 % / 3 % from 100,000, no cap
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    assert cli("settle", "--month", "2026-10", "--json")[0] == 0      # 64,000 × 1 % = 640
    clock_from(D(2026, 12, 5))
    signed_order(hub.db_url, kangda, D(2026, 11, 10), [("MON-M8", 5)])
    assert cli("settle", "--month", "2026-11", "--json")[0] == 0      # 3 %: +1,280 and 1,920
    clock_from(D(2027, 1, 5))
    # December: the November order goes back in full, the quarter falls to 64,000: the
    # October order's 1,920 paid falls to 640, a tier falling back — and the rule has no cap
    o2 = next(ln.order_id for ln in statements["C000001"].lines
              if ln.order_date == D(2026, 11, 10))
    return_goods(hub.db_url, o2, 1, 5, D(2026, 12, 3))
    code, out, err = cli("settle", "--month", "2026-12", "--json")
    assert code == 0, err
    (fell,) = [ln for ln in statements["C000001"].lines if ln.order_date == D(2026, 10, 10)]
    assert (fell.kind, fell.amount) == ("tier_difference", Decimal("-1280.00"))
    assert "本期累计回落，按现档位重算。" in fell.explanation
    assert "封顶" not in fell.explanation


CAPPED = """
code: A6-CAP
name: 审计六封顶返利
effective_from: 2026-10-01
rules:
  - id: quarter
    name: 季度返利
    clause: 第四条
    measure: amount
    period: quarter
    style: retroactive
    tiers: [{from: 0, rate: 3%}]
    cap: {amount_per_period: 3000}
    priority: 5
    stacking: stack
"""


def test_a_cap_share_growing_after_a_return_names_the_cap(hub, cli, statements):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, CAPPED)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])   # 64,000 × 3 % = 1,920
    o2 = signed_order(hub.db_url, kangda, D(2026, 10, 11), [("MON-M12", 3)])  # 55,800: 1,674
    # the cap of 3,000 shared 1,920 : 1,674 → 1,602.67 and 1,397.33
    code, out, err = cli("settle", "--month", "2026-10", "--json")
    assert (code, json.loads(out)["total"]) == (0, "3000.00"), err
    clock_from(D(2026, 12, 5))
    return_goods(hub.db_url, o2, 1, 3, D(2026, 11, 20))
    code, out, err = cli("settle", "--month", "2026-11", "--json")
    assert (code, json.loads(out)["total"]) == (0, "-1080.00"), err
    # the tier (3 %) did not change: the cap no longer binds, the October order's share grows
    (grew,) = [ln for ln in statements["C000001"].lines if ln.order_date == D(2026, 10, 10)]
    assert (grew.kind, grew.amount) == ("tier_difference", Decimal("317.33"))
    assert "本期累计或封顶分摊变化，按现档位重算（阶梯补差）。" in grew.explanation


def test_a_claw_back_booked_to_two_regions_is_one_row_on_the_customers_statement(
        hub, statements):
    from flows.hub import current_hub
    from flows.settlement import settle_month
    from models import Customer
    from models.db import session_scope
    from tests.flows.test_settlement_claw_back_regions import POLICY as TWO_RULES

    clock_from(D(2027, 1, 5))
    publish(hub.db_url, TWO_RULES)
    renhe = customer_id(hub.db_url, "浙江仁和医疗器械有限公司")  # 华东
    o1 = signed_order(hub.db_url, renhe, D(2026, 10, 10), [("MON-M8", 5)])
    settle_month(current_hub(), "2026-10", documents=False)
    with session_scope(hub.db_url) as s:
        s.get(Customer, renhe).region = "华南"
    # November under 华南: the quarter reaches 3 %, O1's tier difference 1,280.00 paid there
    signed_order(hub.db_url, renhe, D(2026, 11, 5), [("MON-M8", 4)])
    settle_month(current_hub(), "2026-11", documents=False)
    # December: 3 of O1's 5 units back; O1's quarter takes back 1,664.00, booked 1,280.00 to
    # 华南 and 384.00 to 华东 (two lines for finance) — for the customer one order, one rule
    return_goods(hub.db_url, o1, 1, 3, D(2026, 12, 10))
    result = settle_month(current_hub(), "2026-12")
    assert (result.lines, result.total) == (4, Decimal("-3456.00"))
    doc = statements["C000002"]
    assert doc.total == Decimal("-3456.00")
    quarter = [ln for ln in doc.lines if ln.order_id == o1 and ln.clause == "第二条"]
    assert len(doc.lines) == 3 and len(quarter) == 1
    (line,) = quarter
    assert line.amount == Decimal("-1664.00")
    assert line.explanation.startswith("退货冲回：应返 256.00 元，已返 1,920.00 元，本次 -1,664.00 元。")
    assert "华南" not in line.explanation and "本行" not in line.explanation
    # the finance workbook keeps both booked lines
    import openpyxl
    ws = openpyxl.load_workbook(result.documents["workbook"])["明细"]
    assert sum(1 for row in ws.iter_rows(min_row=2, values_only=True) if row[0]) == 4


def test_a_revision_netting_to_zero_for_every_customer_says_no_voucher_is_made(hub, cli):
    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    first = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    assert cli("settle", "--month", "2026-10")[0] == 0
    # one unit back, one more unit ordered the same month: −128 and +128, nothing to book
    return_goods(hub.db_url, first, 1, 1, D(2026, 10, 20))
    signed_order(hub.db_url, kangda, D(2026, 10, 12), [("MON-M8", 1)])
    code, out, err = cli("settle", "--month", "2026-10")
    assert code == 0, err
    assert "第 2 版：2 行，合计 ¥0.00；各客户本版净额均为零，不生成凭证草稿" in out
    assert "凭证草稿已提交" not in out


def test_an_unfinished_revision_netting_to_zero_is_not_said_to_wait_for_vouchers(hub, cli):
    """The same revision 2 stored by a run that then stopped: the report says it needs no
    voucher and only its documents are missing, not that its vouchers are not sent."""
    from flows.settlement import compute_month, store_settlement, unfinished_report

    clock_from(D(2026, 11, 5))
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    first = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    assert cli("settle", "--month", "2026-10")[0] == 0
    return_goods(hub.db_url, first, 1, 1, D(2026, 10, 20))
    signed_order(hub.db_url, kangda, D(2026, 10, 12), [("MON-M8", 1)])
    store_settlement(hub.db_url, compute_month(hub.db_url, "2026-10"), "t")
    assert unfinished_report("2026-10", "原因").startswith(
        "2026-10 返利结算未完成：第 2 版（2 行，合计 ¥0.00）已保存，各客户净额均为零、无需凭证，"
        "对账单与明细尚未生成。原因：原因。")
