"""Re-rating customers (年度评级), region moves and a new rep: `salesops customers import
--update tier,region,owner` and `salesops customers set`. One transaction per command, every
change logged old → new (apply_changes), so the settlement's dated profiles see it."""
from __future__ import annotations

import datetime as dt
import gc
import json
from decimal import Decimal

import pytest
from sqlmodel import select

from flows.customer_import import import_customers
from flows.hub import current_hub
from flows.settlement import compute_month, settle_month
from models import Customer, OperationLog
from connectors.tabular import TableError
from models.customer_files import CustomerFileError
from models.db import session_scope
from tests.flows.test_customer_import import snapshot, table_counts, write_rows
from tests.flows.test_settlement_profile_dates import TIER_POLICY, amounts, booked, set_profile
from tests.rebate_support import clock_from, customer_id, publish, signed_order
from tests.support import in_process_cli

D = dt.date
KANGDA = "江苏康达医疗设备有限公司"    # seeded: tier A, 华东, rep-zhangwei, 苏州市
RENHE = "浙江仁和医疗器械有限公司"     # seeded: tier B, 华东, rep-zhangwei
SHENKANG = "上海申康医疗科技有限公司"  # seeded: tier B, 华东, rep-zhangwei
HEADER = ["legal_name", "tier", "region", "owner", "city"]


def profile(db_url: str, name: str) -> tuple:
    with session_scope(db_url) as s:
        c = s.exec(select(Customer).where(Customer.legal_name == name)).one()
        return c.tier, c.region, c.owner_rep_id, c.city


def update_logs(db_url: str, cid: int) -> list[tuple[str, dict]]:
    with session_scope(db_url) as s:
        rows = s.exec(select(OperationLog).where(
            OperationLog.entity == "customer", OperationLog.entity_id == str(cid),
            OperationLog.action == "update").order_by(OperationLog.id)).all()
    return [(r.actor, json.loads(r.changes)) for r in rows]


@pytest.fixture
def cli(seeded, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, seeded.db_url, seeded.data_dir)
    gc.unfreeze()


@pytest.fixture
def rating(tmp_path):
    # 康达 re-rated A → B; 仁和 moves to 华南; 申康 as on file; 康达's city differs (a conflict)
    return write_rows(tmp_path / "rating.csv", [
        [KANGDA, "B", "华东", "rep-zhangwei", "无锡市"],
        [RENHE, "B", "华南", "rep-zhangwei", ""],
        [SHENKANG, "B", "华东", "rep-zhangwei", ""],
    ], header=HEADER)


# --- import --update -------------------------------------------------------------------

def test_import_with_update_overwrites_the_listed_fields_and_logs_them(seeded, rating, tmp_path):
    db = seeded.db_url
    kangda, renhe = customer_id(db, KANGDA), customer_id(db, RENHE)
    report = import_customers(db, rating, actor="ops-01", review_out=tmp_path / "r.xlsx",
                              update=("tier", "region"))
    assert profile(db, KANGDA) == ("B", "华东", "rep-zhangwei", "苏州市")
    assert profile(db, RENHE) == ("B", "华南", "rep-zhangwei", "杭州市")
    assert [(c.row_number, c.customer_id, c.field, c.old, c.new) for c in report.changes] == [
        (2, kangda, "tier", "A", "B"), (3, renhe, "region", "华东", "华南")]
    assert report.updated >= 2
    # the city is not listed: still a conflict, not overwritten
    assert [(c.row_number, c.field, c.on_record, c.in_file) for c in report.conflicts] == [
        (2, "城市", "苏州市", "无锡市")]
    assert ("ops-01", {"tier": ["A", "B"]}) in [
        (a, {k: v for k, v in d.items() if k != "updated_at"}) for a, d in update_logs(db, kangda)]
    assert any(a == "ops-01" and d.get("region") == ["华东", "华南"]
               for a, d in update_logs(db, renhe))


def test_without_update_a_differing_tier_is_still_only_a_conflict(seeded, rating, tmp_path):
    db = seeded.db_url
    report = import_customers(db, rating, actor="ops-01", review_out=tmp_path / "r.xlsx")
    assert profile(db, KANGDA)[:2] == ("A", "华东") and profile(db, RENHE)[:2] == ("B", "华东")
    assert report.changes == []
    assert {(c.row_number, c.field) for c in report.conflicts} == {
        (2, "客户等级"), (2, "城市"), (3, "大区")}


def test_a_dry_run_with_update_lists_the_changes_and_writes_nothing(seeded, rating, tmp_path):
    db = seeded.db_url
    before, counts = snapshot(db), table_counts(db)
    report = import_customers(db, rating, actor="ops-01", dry_run=True, update=("tier", "region"))
    assert [(c.field, c.old, c.new) for c in report.changes] == [
        ("tier", "A", "B"), ("region", "华东", "华南")]
    assert snapshot(db) == before and table_counts(db) == counts


def test_two_rows_of_one_customer_giving_two_tiers_overwrite_once_and_report_the_other(
        seeded, tmp_path):
    db = seeded.db_url
    path = write_rows(tmp_path / "twice.csv",
                      [[KANGDA, "B", "", "", ""], [KANGDA, "C", "", "", ""]], header=HEADER)
    report = import_customers(db, path, actor="ops-01", review_out=tmp_path / "r.xlsx",
                              update=("tier",))
    assert profile(db, KANGDA)[0] == "B"
    assert [(c.row_number, c.field, c.on_record, c.in_file) for c in report.conflicts] == [
        (3, "客户等级", "B", "C")]


def test_update_by_someone_who_is_not_sales_ops_is_refused(seeded, rating, tmp_path):
    db = seeded.db_url
    before = snapshot(db)
    with pytest.raises(CustomerFileError, match="销售运营或管理员.*张伟"):
        import_customers(db, rating, actor="rep-zhangwei", review_out=tmp_path / "r.xlsx",
                         update=("tier",))
    assert snapshot(db) == before


def test_cli_import_update_prints_each_change_and_counts(cli, seeded, rating, tmp_path):
    code, out, err = cli("customers", "import", rating, "--update", "tier,大区", "--by", "ops-01",
                         "--review-out", tmp_path / "r.xlsx")
    assert code == 0, err
    kangda, renhe = customer_id(seeded.db_url, KANGDA), customer_id(seeded.db_url, RENHE)
    assert "已覆盖字段 2 处（--update）：客户等级 1，大区 1" in out
    assert f"第2行 客户 {kangda} {KANGDA}：客户等级 A → B" in out
    assert f"第3行 客户 {renhe} {RENHE}：大区 华东 → 华南" in out
    assert "字段冲突 1" in out
    assert profile(seeded.db_url, RENHE)[1] == "华南"


def test_cli_import_update_dry_run_says_what_would_change(cli, seeded, rating):
    before = snapshot(seeded.db_url)
    code, out, err = cli("customers", "import", rating, "--update", "tier,region", "--by",
                         "ops-01", "--dry-run")
    assert code == 0, err
    assert "试运行" in out and "将覆盖字段 2 处" in out and "客户等级 A → B" in out
    assert snapshot(seeded.db_url) == before


@pytest.mark.parametrize("fields, message", [
    ("tier,legal_name", "“legal_name”不能用 --update 覆盖"),
    ("uscc", "“uscc”不能用 --update 覆盖"),
    ("", "--update 须列出要覆盖的字段"),
])
def test_cli_import_refuses_update_of_other_fields(cli, seeded, rating, fields, message):
    before = snapshot(seeded.db_url)
    code, out, err = cli("customers", "import", rating, "--update", fields, "--by", "ops-01")
    assert code == 2 and out == "" and message in err
    assert snapshot(seeded.db_url) == before


def test_cli_import_update_needs_by(cli, seeded, rating):
    before = snapshot(seeded.db_url)
    code, out, err = cli("customers", "import", rating, "--update", "tier")
    assert code == 2 and "须用 --by 指明操作人" in err
    assert snapshot(seeded.db_url) == before


def test_cli_import_update_by_a_rep_is_refused(cli, seeded, rating):
    before = snapshot(seeded.db_url)
    code, out, err = cli("customers", "import", rating, "--update", "tier", "--by", "rep-lina")
    assert code == 2 and "须由销售运营或管理员执行" in err and "未写入任何数据" in err
    assert snapshot(seeded.db_url) == before


# --- customers set ---------------------------------------------------------------------

def test_cli_set_changes_tier_region_and_owner_and_logs_them(cli, seeded):
    db = seeded.db_url
    renhe = customer_id(db, RENHE)
    code, out, err = cli("customers", "set", renhe, "--tier", "a", "--region", "华南",
                         "--owner", "rep-lina", "--by", "ops-01")
    assert code == 0, err
    assert f"客户 {renhe} {RENHE}：客户等级 B → A" in out
    assert f"客户 {renhe} {RENHE}：大区 华东 → 华南" in out
    assert f"客户 {renhe} {RENHE}：负责销售 rep-zhangwei → rep-lina" in out
    assert profile(db, RENHE)[:3] == ("A", "华南", "rep-lina")
    [(actor, diff)] = update_logs(db, renhe)
    assert actor == "cli:ops-01"
    assert {k: v for k, v in diff.items() if k != "updated_at"} == {
        "tier": ["B", "A"], "region": ["华东", "华南"], "owner_rep_id": ["rep-zhangwei", "rep-lina"]}


def test_cli_set_json_lists_only_what_changed(cli, seeded):
    renhe = customer_id(seeded.db_url, RENHE)
    code, out, err = cli("customers", "set", renhe, "--tier", "A", "--region", "华东", "--by",
                         "admin", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["customer_id"] == renhe and data["by"] == "admin"
    assert [(c["field"], c["old"], c["new"]) for c in data["changes"]] == [("tier", "B", "A")]


@pytest.mark.parametrize("args, message", [
    (["999999", "--tier", "A"], "客户档案不存在：999999"),
    (["{renhe}", "--tier", "E"], "客户等级“E”无效（可选：A、B、C、D）"),
    (["{renhe}", "--owner", "rep-nobody"], "负责销售“rep-nobody”不是系统中的人员编号"),
    (["{renhe}", "--owner", "finance-01"],
     "负责销售“finance-01”的角色是财务，负责销售须为销售代表或区域经理"),
    (["{renhe}", "--region", " "], "大区不能为空"),
    (["{renhe}", "--region", "华\x01东"], "大区含有控制字符"),
    (["{renhe}"], "请至少指定 --tier、--region、--owner 中的一项"),
    (["{renhe}", "--tier", "B", "--region", "华东"], "没有需要修改的字段"),
    (["{renhe}", "--tier", "A", "--by", "rep-zhangwei"], "须由销售运营或管理员执行（张伟 的角色是"),
    (["{renhe}", "--tier", "A", "--by", "nobody"], "人员不存在：nobody"),
])
def test_cli_set_refuses_bad_input_and_writes_nothing(cli, seeded, args, message):
    renhe = customer_id(seeded.db_url, RENHE)
    args = [a.format(renhe=renhe) for a in args]
    if "--by" not in args:
        args += ["--by", "ops-01"]
    before, counts = snapshot(seeded.db_url), table_counts(seeded.db_url)
    code, out, err = cli("customers", "set", *args)
    assert code == 2 and out == ""
    assert message in err and "未修改任何数据" in err
    assert snapshot(seeded.db_url) == before and table_counts(seeded.db_url) == counts


def test_cli_set_refuses_a_merged_file(cli, seeded):
    from flows.customer_import import merge_files

    db = seeded.db_url
    renhe, shenkang = customer_id(db, RENHE), customer_id(db, SHENKANG)
    merge_files(db, renhe, [shenkang], "ops-01")
    code, out, err = cli("customers", "set", shenkang, "--tier", "A", "--by", "ops-01")
    assert code == 2 and f"已并入客户 {renhe}" in err


# --- the settlement sees it ------------------------------------------------------------

def test_a_re_rating_with_customers_set_counts_from_its_day_in_the_settlement(hub, cli):
    db = hub.db_url
    kangda = customer_id(db, KANGDA)
    set_profile(db, kangda, tier="B")
    clock_from(D(2026, 7, 1))
    publish(db, TIER_POLICY)
    k9 = signed_order(db, kangda, D(2026, 9, 15), [("MON-M8", 2)])
    # the quarterly re-rating on 1 October, typed by sales-ops
    clock_from(D(2026, 10, 1))
    code, _, err = cli("customers", "set", kangda, "--tier", "A", "--by", "ops-01")
    assert code == 0, err
    k10 = signed_order(db, kangda, D(2026, 10, 10), [("MON-M8", 1)])
    # September (tier B on its order date): nothing; October (tier A): 3 % + Q4 1 %
    clock_from(D(2026, 10, 5))
    assert compute_month(db, "2026-09").drafts == []
    settle_month(current_hub(), "2026-09", documents=False)
    clock_from(D(2026, 11, 5))
    assert amounts(compute_month(db, "2026-10").drafts) == {
        (k10, "flat"): Decimal("384.00"), (k10, "quarter"): Decimal("128.00")}
    settle_month(current_hub(), "2026-10", documents=False)
    assert not {k for k in booked(db) if k[0] == k9}


def test_import_with_update_owner_hands_a_customer_to_another_rep(seeded, tmp_path):
    db = seeded.db_url
    renhe = customer_id(db, RENHE)
    path = write_rows(tmp_path / "owners.csv", [[RENHE, "", "", "rep-lina", ""]], header=HEADER)
    report = import_customers(db, path, actor="admin", review_out=tmp_path / "r.xlsx",
                              update=("owner_rep_id",))
    assert [(c.customer_id, c.label, c.old, c.new) for c in report.changes] == [
        (renhe, "负责销售", "rep-zhangwei", "rep-lina")]
    assert profile(db, RENHE)[2] == "rep-lina" and report.conflicts == []
    assert [(a, d["owner_rep_id"]) for a, d in update_logs(db, renhe)] == [
        ("admin", ["rep-zhangwei", "rep-lina"])]


def test_import_refuses_an_owner_who_does_not_sell(seeded, tmp_path):
    """A 负责销售 must be a rep or a regional manager: a clerk's or finance's id in the owner
    column is a mistake (the board would show the customer's rebates to nobody who sells)."""
    db = seeded.db_url
    path = write_rows(tmp_path / "owners.csv", [[RENHE, "", "", "ops-01", ""],
                                                [SHENKANG, "", "", "mgr-east", ""]],
                      header=HEADER)
    before = snapshot(db)
    with pytest.raises(TableError) as refused:
        import_customers(db, path, actor="admin", review_out=tmp_path / "r.xlsx",
                         update=("owner_rep_id",))
    assert [p.message for p in refused.value.problems] == [
        "负责销售“ops-01”的角色是销售运营，负责销售须为销售代表或区域经理"]
    assert snapshot(db) == before


def test_a_merged_files_name_in_the_same_import_does_not_overwrite_the_re_rating(seeded,
                                                                                   tmp_path):
    """仁和 and 申康 (merged into 仁和) are one file: the first row re-rates it, the second,
    naming another tier, is reported as a conflict."""
    from flows.customer_import import merge_files

    db = seeded.db_url
    renhe, shenkang = customer_id(db, RENHE), customer_id(db, SHENKANG)
    merge_files(db, renhe, [shenkang], "ops-01")
    path = write_rows(tmp_path / "merged.csv", [[RENHE, "A", "", "", ""],
                                                [SHENKANG, "C", "", "", ""]], header=HEADER)
    report = import_customers(db, path, actor="ops-01", review_out=tmp_path / "r.xlsx",
                              update=("tier",))
    assert profile(db, RENHE)[0] == "A"
    assert [(c.row_number, c.old, c.new) for c in report.changes] == [(2, "B", "A")]
    assert [(c.row_number, c.field, c.on_record, c.in_file) for c in report.conflicts] == [
        (3, "客户等级", "A", "C")]
