"""Monthly settlement against the database, computed by hand: first payment, a quarterly tier
reached in the second month (the first month's order gets the difference), a re-run that
changes nothing, a late return that claws back through an adjustment revision, balanced
vouchers sent once, statements and the finance workbook."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from sqlmodel import select

from flows.hub import current_hub
from flows.policies import PublishError
from flows.settlement import (
    SettlementConflict, SettlementError, breakdowns, compute_month, confirm_settlement, line_inputs,
    finish_revision, settle_month, store_settlement, unfinished_revisions, voucher_batch,
)
from models import Customer, RebateBucketInputs, RebateLine, SettlementRun, Staff
from models.db import schema_revision, schema_revisions, session_scope
from tests.support import in_process_cli, run_together
from tests.rebate_support import clock_from, customer_id, publish, return_goods, signed_order

D = dt.date
POLICY = """
code: T-2026Q4
name: 测试季度返利政策
effective_from: 2026-10-01
text: 一、基础返利2%；二、季度销售额满10万元全额按3%。
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
      - {from: 0, to: 100000, rate: 0%}
      - {from: 100000, rate: 3%}
    priority: 5
    stacking: stack
"""


@pytest.fixture(autouse=True)
def months_over():
    """Every month these tests settle is over."""
    clock_from(D(2027, 1, 5))


@pytest.fixture
def kangda(hub):
    publish(hub.db_url, POLICY)
    return customer_id(hub.db_url, "江苏康达医疗设备有限公司")


def lines_of(db_url, month, revision):
    with session_scope(db_url) as s:
        run = s.exec(select(SettlementRun).where(SettlementRun.month == month,
                                                 SettlementRun.revision == revision)).one()
        return run, s.exec(select(RebateLine).where(RebateLine.run_id == run.id)
                           .order_by(RebateLine.order_id, RebateLine.rule_id)).all()


def test_two_months_a_late_tier_a_rerun_and_a_late_return(hub, kangda):
    # October: 5 × M8 at 12,800 = 64,000 → base 2 % = 1,280.00; the quarter is below 100,000
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    result = settle_month(current_hub(), "2026-10")
    assert (result.revision, result.kind, result.lines, result.total) == (1, "initial", 1,
                                                                          Decimal("1280.00"))
    run, lines = lines_of(hub.db_url, "2026-10", 1)
    assert [(ln.order_id, ln.rule_id, ln.kind, ln.amount) for ln in lines] == [
        (o1, "flat", "rebate", Decimal("1280.00"))]
    assert "第一条" in lines[0].explanation and "2%" in lines[0].explanation
    # re-running October finds nothing new: no revision, no second voucher
    again = settle_month(current_hub(), "2026-10")
    assert again.run_id is None and "未生成新版本" in again.message
    # November: 4 × M8 = 51,200 → base 1,024.00; the quarter reaches 115,200 ≥ 100,000, so
    # 3 % applies to the whole quarter: O1 1,920.00 (reached late), O2 1,536.00
    o2 = signed_order(hub.db_url, kangda, D(2026, 11, 5), [("MON-M8", 4)])
    result = settle_month(current_hub(), "2026-11")
    assert result.total == Decimal("4480.00")
    _, lines = lines_of(hub.db_url, "2026-11", 1)
    assert {(ln.order_id, ln.rule_id): ln.amount for ln in lines} == {
        (o1, "quarter"): Decimal("1920.00"), (o2, "flat"): Decimal("1024.00"),
        (o2, "quarter"): Decimal("1536.00")}
    # by customer id, the legal name beside (the CLI and the flow's table show the name)
    (kangda,) = result.by_customer
    assert result.by_customer == {kangda: "4480.00"}
    assert result.customer_names == {kangda: "江苏康达医疗设备有限公司"}
    assert dict(breakdowns(result.as_dict()))["客户"] == {"江苏康达医疗设备有限公司": "4480.00"}
    assert result.by_region == {"华东": "4480.00"} and result.by_rep == {"rep-zhangwei": "4480.00"}
    # a return of one O1 unit on 20 November, entered after November was settled:
    # O1 base falls to 4 × 12,800 × 2 % = 1,024 (paid 1,280 → −256); the quarter is 102,400,
    # still ≥ 100,000: O1 3 % × 51,200 = 1,536 (paid 1,920 → −384). Adjustment −640.00.
    return_goods(hub.db_url, o1, 1, 1, D(2026, 11, 20))
    result = settle_month(current_hub(), "2026-11")
    assert (result.revision, result.kind, result.total) == (2, "adjustment", Decimal("-640.00"))
    _, lines = lines_of(hub.db_url, "2026-11", 2)
    # a re-run's lines are adjustments (更正); each says that a return caused it
    assert {(ln.order_id, ln.rule_id, ln.kind): ln.amount for ln in lines} == {
        (o1, "flat", "adjustment"): Decimal("-256.00"),
        (o1, "quarter", "adjustment"): Decimal("-384.00")}
    assert all("退货" in ln.explanation for ln in lines)
    # nothing was paid twice: per order and rule, what was paid equals what is due
    with session_scope(hub.db_url) as s:
        paid = {}
        for ln in s.exec(select(RebateLine)):
            paid[(ln.order_id, ln.rule_id)] = paid.get((ln.order_id, ln.rule_id), 0) + ln.amount
    assert paid == {(o1, "flat"): Decimal("1024.00"), (o1, "quarter"): Decimal("1536.00"),
                    (o2, "flat"): Decimal("1024.00"), (o2, "quarter"): Decimal("1536.00")}
    assert compute_month(hub.db_url, "2026-11").drafts == []


def test_stored_lines_keep_every_input_and_their_bucket_shares_its_own_once(hub, kangda):
    # two October orders in one bucket of each rule: four lines, two buckets' inputs
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    signed_order(hub.db_url, kangda, D(2026, 10, 20), [("MON-M8", 3)])
    comp = compute_month(hub.db_url, "2026-10")
    result = settle_month(current_hub(), "2026-10")
    with session_scope(hub.db_url) as s:
        lines = s.exec(select(RebateLine).where(RebateLine.run_id == result.run_id)).all()
        shared = s.exec(select(RebateBucketInputs).where(
            RebateBucketInputs.run_id == result.run_id)).all()
        stored = {(ln.bucket_key, ln.order_id): used
                  for ln, used in zip(lines, line_inputs(s, lines))}
    assert len(lines) == 4 and len(shared) == 2
    assert stored == {(d.bucket_key, d.order_id): d.inputs for d in comp.drafts}
    assert all(used["bucket_volume"] == "102400.00" and used["rule_name"] and used["basis"]
               for used in stored.values())
    # a line stays readable on its own: its own part holds no bucket input
    assert all("bucket_volume" not in json.loads(ln.inputs) for ln in lines)


def test_a_line_stored_with_all_its_inputs_reads_as_it_was(hub, kangda):
    # lines stored before rebate_bucket_inputs existed carry their bucket's inputs themselves
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    result = settle_month(current_hub(), "2026-10")
    with session_scope(hub.db_url) as s:
        line = s.exec(select(RebateLine).where(RebateLine.run_id == result.run_id)).one()
        whole = line_inputs(s, [line])[0]
        for row in s.exec(select(RebateBucketInputs)):
            s.delete(row)
        line.inputs = json.dumps(whole, ensure_ascii=False)
        s.add(line)
    with session_scope(hub.db_url) as s:
        assert line_inputs(s, s.exec(select(RebateLine)).all()) == [whole]


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


def test_the_cli_settles_and_finance_confirms_with_confirmed_statements(hub, kangda, cli):
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    code, _, err = cli("settle", "--month", "")
    assert code == 2 and "月份格式应为 YYYY-MM" in err  # not silently last month
    code, out, _ = cli("settle", "--month", "2026-10")
    assert code == 0 and "合计 ¥1,280.00" in out
    code, out, _ = cli("settle", "--month", "2026-10", "--confirm", "1", "--by", "finance-01")
    assert code == 0 and "已确认 2026-10 第 1 版结算（孙丽，finance-01）" in out
    assert "对账单（已确认）" in out and "r1-confirmed" in out


def test_two_confirmations_at_once_confirm_once(hub, kangda):
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    settle_month(current_hub(), "2026-10")
    with session_scope(hub.db_url) as s:
        finance = s.get(Staff, "finance-01")
    answers, errors = run_together(
        lambda: confirm_settlement(hub.db_url, "2026-10", 1, finance), 3)
    assert len(answers) == 1
    assert [(type(e), e.code) for e in errors] == [(SettlementError, "already_confirmed")] * 2


def test_migrating_down_and_up_again_keeps_every_input(hub, kangda, cli):
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    signed_order(hub.db_url, kangda, D(2026, 10, 20), [("MON-M8", 3)])
    settle_month(current_hub(), "2026-10")
    with session_scope(hub.db_url) as s:
        before = line_inputs(s, s.exec(select(RebateLine).order_by(RebateLine.id)).all())

    def run(*args: str) -> tuple[int, str]:
        code, out, err = cli(*args)
        return code, out + err

    try:
        # a version that does not exist, or one the database is not above: refused, untouched
        known = schema_revisions()
        beyond = f"{int(known[-1]) + 1:04d}"
        assert run("migrate", "--down-to", beyond) == (
            2, f"错误：没有数据库结构版本 {beyond}（已有：{'、'.join(known)}）\n")
        # what the way back would delete is listed, and nothing done without --yes
        code, said = run("migrate", "--down-to", "0002")
        assert code == 2 and said.startswith("错误：回退到版本 0002 会删除以下数据：")
        assert "voucher_number（1 行）" in said and "rebate_line.booked_customer_id（" in said
        assert said.endswith("确认已备份数据库、确需回退，请加 --yes 再运行\n")
        assert schema_revision(hub.db_url) == known[-1]
        # an operator rolling a release back: the bucket inputs are folded back into the lines
        assert run("migrate", "--down-to", "0002", "--yes") == (
            0, "数据库结构已回退到版本 0002。\n")
        with session_scope(hub.db_url) as s:
            rows = s.exec(sa.text("SELECT inputs FROM rebate_line ORDER BY id")).all()
        assert [json.loads(text) for text, in rows] == before
        assert run("migrate", "--down-to", "0003") == (
            2, "错误：数据库当前为版本 0002，只能回退到更早的版本\n")
    finally:
        assert run("migrate") == (0, "数据库已升级到最新版本。\n")
    with session_scope(hub.db_url) as s:
        assert s.exec(select(RebateBucketInputs)).all() == []
        assert line_inputs(s, s.exec(select(RebateLine).order_by(RebateLine.id)).all()) == before


def test_vouchers_balance_are_sent_once_and_documents_are_written(hub, kangda):
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    other = customer_id(hub.db_url, "浙江仁和医疗器械有限公司")
    signed_order(hub.db_url, other, D(2026, 10, 12), [("MON-M12", 2)])  # 37,200 × 2 % = 744
    result = settle_month(current_hub(), "2026-10")
    assert result.voucher_ref == "DRAFT-RB-2026-10-r1"
    drop = hub.settings.data_dir / "finance-drop" / "vouchers"
    batch = json.loads((drop / "RB-2026-10-r1.json").read_text(encoding="utf-8"))
    vouchers = batch["request"]["vouchers"] if "request" in batch else batch["batch"]["vouchers"]
    assert len(vouchers) == 2
    for v in vouchers:
        debit = sum(Decimal(e["debit"]) for e in v["entries"])
        credit = sum(Decimal(e["credit"]) for e in v["entries"])
        assert debit == credit > 0
        assert {e["account_code"] for e in v["entries"]} == {"6601.09", "2241.05"}
    settle_month(current_hub(), "2026-10")
    assert len(list(drop.glob("*.json"))) == 1
    assert len(result.documents["statements"]) == 2
    wb = openpyxl.load_workbook(result.documents["workbook"])
    assert "明细" in wb.sheetnames and "凭证" in wb.sheetnames
    if shutil.which("pdftotext"):
        pdf = next(p for p in result.documents["statements"] if "C000001" in p or True)
        text = subprocess.run(["pdftotext", "-layout", pdf, "-"], capture_output=True,
                              text=True, check=True).stdout
        assert "对账单" in text and "2026" in text


def test_finance_confirms_and_policies_cannot_start_inside_a_confirmed_month(hub, kangda):
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    settle_month(current_hub(), "2026-10")
    with session_scope(hub.db_url) as s:
        rep, finance = s.get(Staff, "rep-zhangwei"), s.get(Staff, "finance-01")
    with pytest.raises(SettlementError, match=f"只有财务或管理员可以确认结算（{rep.name} 的角色是销售代表）"):
        confirm_settlement(hub.db_url, "2026-10", 1, rep)
    confirm_settlement(hub.db_url, "2026-10", 1, finance)
    with pytest.raises(SettlementError, match=f"已于 .* 由 {finance.name} 确认"):
        confirm_settlement(hub.db_url, "2026-10", 1, finance)
    with pytest.raises(PublishError, match="已确认"):
        publish(hub.db_url, POLICY.replace("effective_from: 2026-10-01",
                                           "effective_from: 2026-10-15"))
    assert publish(hub.db_url, POLICY.replace("effective_from: 2026-10-01",
                                              "effective_from: 2026-11-01")).version == 2


def test_bad_month_is_refused(hub):
    with pytest.raises(SettlementError, match="YYYY-MM"):
        settle_month(current_hub(), "2026-13")


def runs(db_url) -> list[tuple[str, int, int]]:
    with session_scope(db_url) as s:
        return [(r.month, r.revision, r.line_count) for r in s.exec(
            select(SettlementRun).order_by(SettlementRun.id))]


def test_a_month_is_settled_once_it_is_over_and_never_after_a_later_one(hub, kangda):
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    signed_order(hub.db_url, kangda, D(2026, 11, 5), [("MON-M8", 4)])
    clock_from(D(2026, 11, 20))
    for month in ("2026-11", "2026-12", "2030-01"):
        with pytest.raises(SettlementError, match="尚未结束") as refused:
            settle_month(current_hub(), month)
        assert refused.value.code == "month_not_over" and refused.value.status == 409
    assert runs(hub.db_url) == []  # not even an empty revision
    clock_from(D(2026, 12, 5))
    settle_month(current_hub(), "2026-11")  # October's order is paid here, with November's
    for month in ("2026-10", "2026-09"):
        with pytest.raises(SettlementError, match="2026-11 已经结算") as refused:
            settle_month(current_hub(), month)
        assert refused.value.code == "later_month_settled"
    assert runs(hub.db_url) == [("2026-11", 1, 4)]  # both orders, both rules


def test_a_month_is_one_month_however_it_is_written(hub, kangda):
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    assert settle_month(current_hub(), " 2026-10 ").month == "2026-10"
    again = settle_month(current_hub(), "2026-10")
    assert again.run_id is None and runs(hub.db_url) == [("2026-10", 1, 1)]
    signed_order(hub.db_url, kangda, D(2026, 11, 5), [("MON-M8", 1)])
    assert settle_month(current_hub(), "2026-11").lines == 1
    with pytest.raises(SettlementError, match="2026-11 已经结算"):
        settle_month(current_hub(), "2026-9")  # September, written short


def test_settlements_stored_at_once_never_pay_twice(hub, kangda):
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    first, second = compute_month(hub.db_url, "2026-10"), compute_month(hub.db_url, "2026-10")
    assert store_settlement(hub.db_url, first, "cron") is not None
    with pytest.raises(SettlementConflict, match="另有结算写入"):
        store_settlement(hub.db_url, second, "cli")  # it read what was paid before `first`
    # the cron and a clerk at the same instant: one revision; the other finds nothing new
    signed_order(hub.db_url, kangda, D(2026, 10, 20), [("MON-M8", 1)])
    answers, errors = run_together(lambda: settle_month(current_hub(), "2026-10"), 3)
    assert errors == []
    assert sorted(a.run_id is not None for a in answers) == [False, False, True]
    with session_scope(hub.db_url) as s:
        total = sum(ln.amount for ln in s.exec(select(RebateLine)))
    assert total == Decimal("1536.00")  # 6 × 12,800 × 2 %, once
    assert runs(hub.db_url) == [("2026-10", 1, 1), ("2026-10", 2, 1)]


def test_an_older_order_signed_after_its_delivery_counts_in_the_month_it_is_signed(hub,
                                                                                   kangda):
    """Delivered 30 December, signed 3 January: its rebate is January's, although the
    order is of the previous quarter."""
    late = signed_order(hub.db_url, kangda, D(2026, 12, 28), [("MON-M8", 5)],
                        signed_on=D(2027, 1, 3), delivered_on=D(2026, 12, 30))
    clock_from(D(2027, 2, 5))
    assert settle_month(current_hub(), "2026-12").lines == 0
    january = settle_month(current_hub(), "2027-01")
    with session_scope(hub.db_url) as s:
        lines = s.exec(select(RebateLine).where(RebateLine.run_id == january.run_id)).all()
    assert [(ln.order_id, ln.rule_id, ln.amount) for ln in lines] == [
        (late, "flat", Decimal("1280.00"))]


def test_a_run_stopped_after_storing_is_finished_by_the_next(hub, kangda, monkeypatch):
    from connectors.base import TransientError

    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    finance = current_hub().finance
    calls = []

    def down(batch):
        calls.append(batch.batch_id)
        raise TransientError("finance unreachable", provider="finance")

    monkeypatch.setattr(finance, "submit_vouchers", down)
    with pytest.raises(TransientError):
        settle_month(current_hub(), "2026-10")
    run, lines = lines_of(hub.db_url, "2026-10", 1)  # the lines are stored …
    assert run.voucher_ref is None and len(lines) == 1  # … the vouchers are not out
    monkeypatch.undo()
    result = settle_month(current_hub(), "2026-10")  # nothing new to compute: it finishes
    assert calls == ["RB-2026-10-r1"]  # … and says which revision it finished
    assert (result.run_id, result.revision, result.lines) == (None, 1, 1)
    assert "第 1 版（此前已保存，本次补齐凭证草稿与对账单）" in result.message
    run, _ = lines_of(hub.db_url, "2026-10", 1)
    assert run.voucher_ref == "DRAFT-RB-2026-10-r1"
    folder = hub.settings.data_dir / "settlements" / "2026-10" / "r1"
    assert len(list(folder.glob("*.pdf"))) == 1 and len(list(folder.glob("*.xlsx"))) == 1


@pytest.mark.usefixtures("prefect_harness")
def test_the_monthly_flow_settles_last_month_and_publishes_its_table(hub, kangda):
    from prefect.client.orchestration import get_client

    from flows.settlement import settle_month_flow

    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    result = settle_month_flow(month="2026-10")
    assert result["total"] == "1280.00" and result["documents"]["statements"]

    async def artifacts():
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
        from prefect.client.schemas.sorting import ArtifactSort

        # by key, newest last: the session's server keeps every test's artifacts (more than
        # one page of them), and earlier tests ran this flow too
        keys = ArtifactFilter(key=ArtifactFilterKey(any_=["settle-month",
                                                          "settle-month-progress"]))
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=keys,
                                                sort=ArtifactSort.CREATED_DESC, limit=10)
        return {a.key: a.data for a in reversed(found)}

    import asyncio
    found = asyncio.run(artifacts())
    assert {"settle-month", "settle-month-progress"} <= set(found)
    table = found["settle-month"]
    table = json.loads(table) if isinstance(table, str) else table
    assert {"维度": "合计", "名称": "1 行", "金额": "¥1,280.00"} in table
    assert {"维度": "客户", "名称": "江苏康达医疗设备有限公司", "金额": "¥1,280.00"} in table


@pytest.mark.usefixtures("prefect_harness")
def test_a_refused_month_fails_the_run_at_once_without_retries(hub, kangda, monkeypatch):
    import flows.settlement as settlement

    calls = []

    store_and_send = settlement.store_and_send

    def counted(*args, **kw):
        calls.append(args[1])
        return store_and_send(*args, **kw)

    monkeypatch.setattr(settlement, "store_and_send", counted)
    with pytest.raises(SettlementError, match="尚未结束"):
        settlement.settle_month_flow(month="2027-06")
    assert calls == ["2027-06"]  # a refusal is not retried
    with pytest.raises(SettlementError, match="YYYY-MM"):
        settlement.settle_month_flow(month="")  # not silently last month


def test_a_correction_is_booked_in_the_period_it_is_made(hub, kangda):
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    clock_from(D(2026, 11, 5))
    first = settle_month(current_hub(), "2026-10")
    return_goods(hub.db_url, o1, 1, 1, D(2026, 10, 25))  # entered in December
    clock_from(D(2026, 12, 8))
    fix = settle_month(current_hub(), "2026-10")
    assert fix.kind == "adjustment"
    initial = voucher_batch(current_hub(), first.run_id)
    correction = voucher_batch(current_hub(), fix.run_id)
    assert (initial.period, initial.vouchers[0].voucher_date) == ("2026-10", D(2026, 10, 31))
    assert (correction.period, correction.vouchers[0].voucher_date) == ("2026-12",
                                                                         D(2026, 12, 8))
    # a net claw-back: debit the payable first, credit the expense; the statement attached
    [voucher] = correction.vouchers
    assert [(e.account_code, e.debit, e.credit) for e in voucher.entries] == [
        ("2241.05", Decimal("256.00"), Decimal("0.00")),
        ("6601.09", Decimal("0.00"), Decimal("256.00"))]
    assert "返利冲回更正（第2版）" in voucher.entries[0].summary and voucher.attachments == 1
    if shutil.which("pdftotext"):  # the customer's statement: the month before and after
        [pdf] = fix.documents["statements"]
        text = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True,
                              check=True).stdout.replace(" ", "").replace("\n", "")
        assert "原结算金额¥1,280.00" in text and "更正后合计¥1,024.00" in text


def test_revisions_are_confirmed_in_their_order(hub, kangda):
    o1 = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    clock_from(D(2026, 11, 5))
    settle_month(current_hub(), "2026-10")
    return_goods(hub.db_url, o1, 1, 1, D(2026, 10, 25))  # entered in December
    clock_from(D(2026, 12, 8))
    assert settle_month(current_hub(), "2026-10").revision == 2
    with session_scope(hub.db_url) as s:
        finance = s.get(Staff, "finance-01")
    with pytest.raises(SettlementError, match="2026-10 第 1 版尚未确认：各版按顺序确认，请先确认第 1 版，"
                                              "再确认第 2 版") as refused:
        confirm_settlement(hub.db_url, "2026-10", 2, finance)
    assert (refused.value.status, refused.value.code) == (409, "earlier_revision_unconfirmed")
    with session_scope(hub.db_url) as s:
        assert s.exec(select(SettlementRun.status).where(
            SettlementRun.revision == 2)).one() != "confirmed"
    confirm_settlement(hub.db_url, "2026-10", 1, finance)
    assert confirm_settlement(hub.db_url, "2026-10", 2, finance).status == "confirmed"


def test_confirming_issues_the_statements_again_as_confirmed(hub, kangda):
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    draft = settle_month(current_hub(), "2026-10")
    with session_scope(hub.db_url) as s:
        finance = s.get(Staff, "finance-01")
    run = confirm_settlement(hub.db_url, "2026-10", 1, finance)
    assert unfinished_revisions(hub.db_url, "2026-10") == [run.id]  # the next run would too
    made = finish_revision(current_hub(), run.id)
    assert finish_revision(current_hub(), run.id) == made  # once
    assert unfinished_revisions(hub.db_url, "2026-10") == []
    folder = hub.settings.data_dir / "settlements" / "2026-10" / "r1-confirmed"
    [pdf] = made["statements"]
    assert Path(pdf).parent == folder and Path(made["workbook"]).parent == folder
    assert all(Path(p).exists() for p in draft.documents["statements"])  # drafts stay
    assert "已确认" in openpyxl.load_workbook(made["workbook"]).properties.title
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", pdf, "-"], capture_output=True,
                              text=True, check=True).stdout
        assert "已确认" in text and "草稿" not in text


def test_vouchers_carry_finance_codes_and_the_result_names_customers_without_one(hub, kangda):
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    other = customer_id(hub.db_url, "浙江仁和医疗器械有限公司")
    signed_order(hub.db_url, other, D(2026, 10, 12), [("MON-M12", 2)])
    with session_scope(hub.db_url) as s:
        s.get(Customer, kangda).finance_code = "1122.0001"
    result = settle_month(current_hub(), "2026-10")
    vouchers = voucher_batch(current_hub(), result.run_id).vouchers
    # the customer dimension on the payable entry only (the expense account has none, unless
    # finance says otherwise)
    assert [[e.customer_code for e in v.entries] for v in vouchers] == [
        [None, "1122.0001"], [None, f"C{other:06d}"]]
    assert vouchers[1].entries[1].customer_name == "浙江仁和医疗器械有限公司"
    assert "浙江仁和医疗器械有限公司未设财务客户编码" in result.message
    # the batch is as sent: the code filled in later is for the next batches, said so
    assert "请在财务系统中对应到客户（补齐档案不会改变已生成的凭证）" in result.message
    assert "导入财务系统前请在客户档案中补齐" not in result.message
    assert "江苏康达" not in result.message.split("；")[1]


def test_documents_written_later_show_the_vouchers_as_they_were_sent(hub, kangda):
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    result = settle_month(current_hub(), "2026-10")
    with session_scope(hub.db_url) as s:
        s.get(Customer, kangda).finance_code = "K-0001"  # set after the vouchers went out
        finance = s.get(Staff, "finance-01")
    run = confirm_settlement(hub.db_url, "2026-10", 1, finance)
    made = finish_revision(current_hub(), run.id)
    sheet = openpyxl.load_workbook(made["workbook"])["凭证"]
    cells = {c.value for row in sheet.iter_rows() for c in row}
    assert f"C{kangda:06d}" in cells and "K-0001" not in cells
    assert voucher_batch(current_hub(), result.run_id).vouchers[0].entries[1].customer_code \
        == "K-0001"  # what a new batch would carry


def test_a_statement_line_names_only_the_product_lines_its_rule_counted(hub, kangda):
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5), ("CONS-ECG10", 100)])
    result = settle_month(current_hub(), "2026-10")
    assert result.total == Decimal("1280.00")  # the electrodes earn nothing
    if shutil.which("pdftotext"):
        [pdf] = result.documents["statements"]
        text = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True,
                              check=True).stdout
        assert "监护" in text and "耗材" not in text
    sheet = openpyxl.load_workbook(result.documents["workbook"])["明细"]
    assert "耗材" not in {str(c.value) for row in sheet.iter_rows() for c in row}


def test_the_totals_by_type_read_in_finance_s_order(hub, kangda):
    """返利, 阶梯补差, 退货冲回, 更正 — not the order of their character codes (退 before 阶)."""
    # October: 9 + 1 × M8 = 128,000 ≥ 100,000: the quarter's 3 % on both orders
    a = signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 9)])
    signed_order(hub.db_url, kangda, D(2026, 10, 12), [("MON-M8", 1)])
    settle_month(current_hub(), "2026-10")
    # November: 3 of A come back, the quarter falls to 89,600: A's lines are clawed back, the
    # other order loses its tier (a tier difference)
    return_goods(hub.db_url, a, 1, 3, D(2026, 11, 3))
    result = settle_month(current_hub(), "2026-11")
    assert list(result.by_kind) == ["tier_difference", "clawback"]
    assert list(dict(breakdowns(result.as_dict()))["类型"]) == ["阶梯补差", "退货冲回"]


def test_the_cli_names_only_people_on_file_and_confirms_as_json(hub, kangda, cli):
    signed_order(hub.db_url, kangda, D(2026, 10, 10), [("MON-M8", 5)])
    code, out, err = cli("settle", "--month", "2026-10", "--by", "nobody-01")
    assert (code, out) == (2, "") and "人员不存在：nobody-01" in err
    with session_scope(hub.db_url) as s:
        assert s.exec(select(SettlementRun)).first() is None  # nothing settled
    assert cli("settle", "--month", "2026-10", "--by", "finance-01")[0] == 0
    code, out, _ = cli("settle", "--month", "2026-10", "--confirm", "1", "--by", "finance-01",
                       "--json")
    answer = json.loads(out)
    assert code == 0 and (answer["revision"], answer["status"], answer["confirmed_by"]) == (
        1, "confirmed", "finance-01")
    assert answer["documents"]["workbook"].endswith(".xlsx")
