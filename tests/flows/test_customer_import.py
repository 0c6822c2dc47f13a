"""`salesops customers import / merge / match` against a real database (SQLite, or PostgreSQL
with SALESOPS_TEST_DATABASE_URL): one transaction per command, duplicates reported and never
merged silently, merges through merge_customers."""
from __future__ import annotations

import csv
import gc
import json
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import Workbook, load_workbook
from sqlmodel import SQLModel, select

from bench.customer_names import generate_customers, queries, write_csv
from flows.customer_import import column_label, import_customers
from models import Customer, CustomerAlias, IntentOrder, OperationLog
from models.customer_files import exact_matches
from models.db import get_engine, session_scope
from models.names import normalize_name
from tests.support import in_process_cli

HEADER = ["legal_name", "short_names", "former_names", "uscc", "province", "city", "tier",
          "owner"]
KANGDA = "江苏康达医疗设备有限公司"          # seeded, USCC 91320500MA1K2D3F5H, tier A
VALID = "91320100MA1K2D3F5W"               # a structurally valid code of nobody
VALID2 = "91330100MA2B7C8D9Q"              # 浙江仁和's (seeded)


def write_rows(path: Path, rows: list[list[str]], header=HEADER, encoding="utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def cli(seeded, monkeypatch, capsys):
    """Run `salesops …` in this process against the test database: (exit code, out, err)."""
    yield from in_process_cli(monkeypatch, capsys, seeded.db_url, seeded.data_dir)
    gc.unfreeze()  # `customers match` freezes what its process holds: not the test session's


def table_counts(db_url: str) -> dict[str, int]:
    with get_engine(db_url).connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                for t in SQLModel.metadata.sorted_tables}


def snapshot(db_url: str) -> list[tuple]:
    with get_engine(db_url).connect() as conn:
        customers = conn.execute(sa.text(
            "SELECT id, legal_name, name_key, uscc, uscc_check, province, city, tier, "
            "owner_rep_id, parent_id, merged_into_id, updated_at FROM customer ORDER BY id")).all()
        aliases = conn.execute(sa.text(
            "SELECT id, customer_id, name, key, kind, source FROM customer_alias "
            "ORDER BY id")).all()
    return [tuple(r) for r in customers] + [tuple(r) for r in aliases]


def customer(db_url: str, legal_name: str) -> Customer:
    with session_scope(db_url) as s:
        found = s.exec(select(Customer).where(
            Customer.name_key == normalize_name(legal_name))).one()
        s.expunge(found)
        return found


def aliases_of(db_url: str, customer_id: int) -> dict[str, str]:
    with session_scope(db_url) as s:
        return {a.name: a.kind for a in s.exec(select(CustomerAlias).where(
            CustomerAlias.customer_id == customer_id))}


def review_rows(path: Path) -> list[dict]:
    ws = load_workbook(path)["疑似重复"]
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def clusters_in(path: Path) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for r in review_rows(path):
        out.setdefault(r["簇号"], set()).add(r["工商全称"])
    return out


SAMPLE = [
    ["苏州恒瑞精密机械有限公司", "恒瑞机械;苏恒瑞", "苏州恒瑞机械厂", "", "江苏省", "苏州", "B", "rep-zhangwei"],
    ["广东华信电子科技股份有限公司", "华信电子；华信股份", "", VALID, "广东", "深圳市", "a", "rep-lina"],
    ["苏州恒瑞精密机械有限公司无锡分公司", "恒瑞无锡分公司", "", "", "江苏", "无锡", "", ""],
    ["浙江东方纺织有限公司", "", "", "91330100MA2B7C8D9X", "浙江", "", "", ""],  # bad check char
]


# --- import: formats, keys, operation log -------------------------------------------------

def test_import_csv_creates_files_with_keys_aliases_and_one_log_row_each(seeded, cli, tmp_path):
    path = write_rows(tmp_path / "客户.csv", SAMPLE)
    before = table_counts(seeded.db_url)
    code, out, err = cli("customers", "import", path, "--by", "ops-01")
    assert code == 0, err
    assert "新建客户 4" in out and "分支机构关联总公司 1" in out and "统一社会信用代码存疑 1" in out
    after = table_counts(seeded.db_url)
    assert after["customer"] - before["customer"] == 4
    assert after["customer_alias"] - before["customer_alias"] == 6
    db = seeded.db_url
    hengrui = customer(db, "苏州恒瑞精密机械有限公司")
    assert hengrui.province == "江苏" and hengrui.city == "苏州" and hengrui.tier == "B"
    assert hengrui.owner_rep_id == "rep-zhangwei" and hengrui.origin == "imported"
    assert aliases_of(db, hengrui.id) == {"恒瑞机械": "short", "苏恒瑞": "short",
                                           "苏州恒瑞机械厂": "former"}
    huaxin = customer(db, "广东华信电子科技股份有限公司")
    assert huaxin.tier == "A" and huaxin.uscc == VALID and huaxin.uscc_check == "ok"
    east = customer(db, "浙江东方纺织有限公司")
    assert east.uscc == "91330100MA2B7C8D9X" and east.uscc_check == "bad_check_character"
    assert east.tier == "C"  # the default when the file leaves it empty
    branch = customer(db, "苏州恒瑞精密机械有限公司无锡分公司")
    assert branch.parent_id == hengrui.id
    # keys computed for Core inserts exactly as the ORM events would: lookups work
    with session_scope(db) as s:
        assert [c.id for c in exact_matches(s, "苏 恒瑞")] == [hengrui.id]
        assert [c.id for c in exact_matches(s, "华信 电子")] == [huaxin.id]
        logs = s.exec(select(OperationLog).where(OperationLog.entity == "customer",
                                                 OperationLog.action == "create",
                                                 OperationLog.actor == "ops-01")).all()
    assert sorted(int(log.entity_id) for log in logs) == sorted(
        [hengrui.id, huaxin.id, east.id, branch.id])
    created = json.loads(next(log for log in logs if int(log.entity_id) == hengrui.id).changes)
    assert created["legal_name"] == [None, "苏州恒瑞精密机械有限公司"]
    assert {a["name"] for a in created["aliases"][1]} == {"恒瑞机械", "苏恒瑞", "苏州恒瑞机械厂"}
    # the flagged code is listed for a person
    wb = load_workbook(tmp_path / "客户.duplicates.xlsx")
    flagged = list(wb["信用代码存疑"].iter_rows(values_only=True))
    assert flagged[1][:4] == (5, east.id, "浙江东方纺织有限公司", "91330100MA2B7C8D9X")
    assert "校验码" in flagged[1][4]


def test_import_xlsx_with_chinese_headers_under_a_title(seeded, cli, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["客户主数据导出 2026-11"])
    ws.append([])
    ws.append(["工商全称", "简称", "曾用名", "统一社会信用代码", "省份", "备注"])
    ws.append(["北京京康医疗器械有限公司", "京康医疗", "北京京康医械厂", VALID, "北京市", "老客户"])
    ws.append(["天津津华化工有限公司", "", "", "", "天津", ""])
    path = tmp_path / "customers.xlsx"
    wb.save(path)
    code, out, err = cli("customers", "import", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["created"] == 2 and report["aliases_added"] == 2
    assert report["unknown_columns"] == ["备注"]
    jk = customer(seeded.db_url, "北京京康医疗器械有限公司")
    assert jk.province == "北京" and jk.uscc == VALID
    assert aliases_of(seeded.db_url, jk.id) == {"京康医疗": "short", "北京京康医械厂": "former"}


def test_import_with_a_kingdee_template_header_marking_required_fields(seeded, cli, tmp_path):
    """K/3 Cloud 客户 import templates mark required fields with a star (before or after the
    name); a header cell may hold a line break."""
    path = write_rows(tmp_path / "客户.csv", [["北京京康医疗器械有限公司", VALID, "北京市", "B"]],
                      header=["工商全称*", "*统一社会信用代码", "省\n份", "客户等级 *"])
    code, out, err = cli("customers", "import", path, "--json")
    assert code == 0, err
    assert json.loads(out)["unknown_columns"] == []
    jk = customer(seeded.db_url, "北京京康医疗器械有限公司")
    assert (jk.uscc, jk.province, jk.tier) == (VALID, "北京", "B")


def test_an_all_digit_credit_code_stored_as_an_excel_number_is_refused_clearly(seeded, cli,
                                                                               tmp_path):
    """914403001922038216 typed into a General cell is a float: its last digits are gone, and
    the clerk must be told that, not that the code is 21 characters long."""
    wb = Workbook()
    wb.active.append(["工商全称", "统一社会信用代码"])
    wb.active.append(["深圳数码测试有限公司", 914403001922038216])
    path = tmp_path / "numbers.xlsx"
    wb.save(path)
    before = table_counts(seeded.db_url)
    code, out, err = cli("customers", "import", path)
    assert code != 0
    assert "numbers.xlsx 第2行「统一社会信用代码（uscc）」" in err and "在 Excel 中存为数字" in err, err
    assert "超过 18 位" not in err
    assert table_counts(seeded.db_url) == before


def test_gb18030_csv_as_chinese_excel_saves_it(seeded, cli, tmp_path):
    path = write_rows(tmp_path / "gbk.csv", [
        ["深圳市鑫源电子科技有限公司", "鑫源电子；深鑫源", "", "", "广东", "深圳", "B", ""],
        ["湖南湘江药业有限公司", "湘江药业", "", "", "湖南", "长沙", "", ""],
    ], encoding="gb18030")
    code, out, err = cli("customers", "import", path)
    assert code == 0, err
    xy = customer(seeded.db_url, "深圳市鑫源电子科技有限公司")
    assert aliases_of(seeded.db_url, xy.id) == {"鑫源电子": "short", "深鑫源": "short"}
    assert customer(seeded.db_url, "湖南湘江药业有限公司").city == "长沙"


# --- row errors: nothing written ------------------------------------------------------------

GOOD = ["重庆渝安机电有限公司", "渝安机电", "", "", "重庆", "", "", ""]


@pytest.mark.parametrize("bad, column, says", [
    (["", "空名", "", "", "", "", "", ""], "legal_name", "工商全称不能为空"),
    (["华" * 500 + "有限公司", "", "", "", "", "", "", ""], "legal_name", "过长"),
    (["江苏康达\x1b[31m医疗有限公司", "", "", "", "", "", "", ""], "legal_name", "控制字符"),
    (["康达\x00医疗有限公司", "", "", "", "", "", "", ""], "legal_name", "控制字符"),
    (["'; DROP TABLE customer; --", "", "", "", "", "", "", ""], "legal_name", "不允许的字符"),
    (["福建闽光贸易有限公司", "闽光;'; DROP TABLE customer; --", "", "", "", "", "", ""],
     "short_names", "简称（第2个）含有不允许的字符"),
    (["福建闽光贸易有限公司", "", "", "", "", "", "", "rep-nobody"], "owner",
     "负责销售“rep-nobody”不是系统中的人员编号"),
    (["福建闽光贸易有限公司", "", "", "", "", "", "S", ""], "tier", "客户等级“S”无效"),
    (["福建闽光贸易有限公司", "", "", "", "火星", "", "", ""], "province", "不是省级行政区名称"),
    (["福建闽光贸易有限公司", "", "", "9135" * 6, "", "", "", ""], "uscc", "超过 18 位"),
    (["（ · ）", "", "", "", "", "", "", ""], "legal_name", "工商全称没有可识别的文字"),
    (["福建闽光贸易有限公司", "闽光;-", "", "", "", "", "", ""], "short_names",
     "简称（第2个）没有可识别的文字"),
])
def test_a_bad_row_refuses_the_whole_file_naming_row_and_column(seeded, cli, tmp_path, bad,
                                                                column, says):
    path = write_rows(tmp_path / "bad.csv", [GOOD, bad, GOOD[:1] + [""] * 7])
    before = table_counts(seeded.db_url)
    rows_before = snapshot(seeded.db_url)
    code, out, err = cli("customers", "import", path, "--by", "ops-01")
    assert code != 0
    assert f"bad.csv 第3行「{column_label(column)}」" in err and says in err, err
    assert "未写入任何数据" in err
    assert table_counts(seeded.db_url) == before
    assert snapshot(seeded.db_url) == rows_before
    assert not (tmp_path / "bad.duplicates.xlsx").exists()


def test_every_bad_row_is_listed_at_once(seeded, cli, tmp_path):
    path = write_rows(tmp_path / "bad.csv", [
        ["", "闽光", "", "", "", "", "", ""], GOOD, ["A&B<script>", "", "", "", "", "", "", ""],
        ["福建闽光贸易有限公司", "", "", "", "", "", "", "nobody"]])
    before = table_counts(seeded.db_url)
    code, _, err = cli("customers", "import", path)
    assert code != 0
    assert "第2行「工商全称（legal_name）」" in err and "第4行「工商全称（legal_name）」" in err
    assert "第5行「负责销售（owner）」" in err
    assert "第3行" not in err
    assert table_counts(seeded.db_url) == before


def test_unknown_staff_in_by_and_a_missing_file_write_nothing(seeded, cli, tmp_path):
    path = write_rows(tmp_path / "ok.csv", [GOOD])
    before = table_counts(seeded.db_url)
    code, _, err = cli("customers", "import", path, "--by", "nobody")
    assert code != 0 and "人员不存在：nobody" in err
    code, _, err = cli("customers", "import", tmp_path / "missing.csv")
    assert code != 0 and "文件不存在" in err
    code, _, err = cli("customers", "import", write_rows(tmp_path / "nohead.csv", [GOOD],
                                                           header=["名称"] + HEADER[1:]))
    assert code != 0 and "缺少必填列" in err and "legal_name" in err
    assert table_counts(seeded.db_url) == before


def test_dry_run_counts_but_writes_nothing(seeded, cli, tmp_path):
    path = write_rows(tmp_path / "c.csv", SAMPLE)
    before = table_counts(seeded.db_url)
    code, out, err = cli("customers", "import", path, "--dry-run", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["dry_run"] and report["created"] == 4 and report["review_workbook"] is None
    assert table_counts(seeded.db_url) == before
    assert not (tmp_path / "c.duplicates.xlsx").exists()


# --- files on record ------------------------------------------------------------------------

def test_reimport_of_the_same_file_changes_nothing(seeded, cli, tmp_path):
    path = write_rows(tmp_path / "c.csv", SAMPLE + [
        [KANGDA, "康达医疗;苏康达", "", "91320500MA1K2D3F5H", "江苏", "苏州市", "A", "rep-zhangwei"]])
    code, _, err = cli("customers", "import", path)
    assert code == 0, err
    before, rows = table_counts(seeded.db_url), snapshot(seeded.db_url)
    code, out, err = cli("customers", "import", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["created"], report["updated"], report["aliases_added"]) == (0, 0, 0)
    assert report["unchanged"] == 5 and report["conflicts"] == 0
    assert table_counts(seeded.db_url) == before
    assert snapshot(seeded.db_url) == rows


def test_a_name_on_file_gets_new_aliases_and_empty_fields_but_keeps_filled_ones(seeded, cli,
                                                                                 tmp_path):
    db = seeded.db_url
    kd = customer(db, KANGDA)
    with session_scope(db) as s:  # make one field empty to see it filled
        row = s.get(Customer, kd.id)
        row.region = None
        s.add(row)
    path = write_rows(tmp_path / "c.csv", [
        # a full-width space inside: the same legal name spelled differently
        ["江苏康达医疗设备\u3000有限公司", "康达医疗;苏康达", "江苏康达医疗设备厂", "91320500MA1K2D3F5H",
         "浙江", "苏州", "B", "rep-lina", "华东"]], header=HEADER + ["region"])
    code, out, err = cli("customers", "import", path, "--by", "ops-01", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["created"], report["updated"], report["aliases_added"]) == (0, 1, 2)
    assert report["conflicts"] == 3  # province, tier, owner differ: kept, reported
    after = customer(db, KANGDA)
    assert (after.province, after.tier, after.owner_rep_id) == ("江苏", "A", "rep-zhangwei")
    assert after.region == "华东" and after.city == "苏州市"  # 苏州 == 苏州市: no conflict
    names = aliases_of(db, kd.id)
    assert names["苏康达"] == "short" and names["江苏康达医疗设备厂"] == "former"
    wb = load_workbook(tmp_path / "c.duplicates.xlsx")
    conflicts = {r[3]: (r[4], r[5]) for r in list(wb["字段冲突"].iter_rows(values_only=True))[1:]}
    assert conflicts == {"省份": ("江苏", "浙江"), "客户等级": ("A", "B"),
                         "负责销售": ("rep-zhangwei", "rep-lina")}
    with session_scope(db) as s:
        logs = s.exec(select(OperationLog).where(OperationLog.actor == "ops-01")).all()
    assert {(log.entity, log.action) for log in logs} == {("customer", "update"),
                                                          ("customer_alias", "create")}
    assert json.loads(next(log.changes for log in logs if log.entity == "customer")) == \
        {"region": [None, "华东"]}


def test_the_same_legal_name_twice_in_a_file_is_one_customer(seeded, cli, tmp_path):
    path = write_rows(tmp_path / "c.csv", [
        ["安徽皖通物流有限公司", "皖通物流", "", "", "安徽", "", "", ""],
        ["安徽皖通物流有限公司", "皖通", "", VALID, "江西", "合肥", "", ""]])
    code, out, err = cli("customers", "import", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["created"] == 1 and report["folded_rows"] == 1 and report["conflicts"] == 1
    wt = customer(seeded.db_url, "安徽皖通物流有限公司")
    assert (wt.province, wt.city, wt.uscc) == ("安徽", "合肥", VALID)
    assert set(aliases_of(seeded.db_url, wt.id)) == {"皖通物流", "皖通"}


# --- branches and duplicates ----------------------------------------------------------------

def test_branches_link_to_a_parent_on_file_or_in_the_file_and_are_never_clustered(seeded, cli,
                                                                                  tmp_path):
    path = write_rows(tmp_path / "c.csv", [
        [KANGDA + "南京分公司", "", "", "", "江苏", "南京", "", ""],         # parent on file
        ["山东鲁信仪器有限公司济南办事处", "", "", "", "", "", "", ""],       # parent below
        ["山东鲁信仪器有限公司", "鲁信仪器", "", VALID, "山东", "", "", ""],
        ["河北冀华五金有限公司石家庄分公司", "", "", "", "", "", "", ""],       # parent nowhere
    ])
    code, out, err = cli("customers", "import", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["branches_linked"] == 2 and report["branches_without_parent"] == 1
    assert report["clusters"] == 0
    db = seeded.db_url
    assert customer(db, KANGDA + "南京分公司").parent_id == customer(db, KANGDA).id
    assert customer(db, "山东鲁信仪器有限公司济南办事处").parent_id == \
        customer(db, "山东鲁信仪器有限公司").id
    assert customer(db, "河北冀华五金有限公司石家庄分公司").parent_id is None
    # the head office arriving later links the branch waiting on file (operation log too)
    path2 = write_rows(tmp_path / "c2.csv", [["河北冀华五金有限公司", "", "", "", "河北", "", "", ""]])
    code, out, err = cli("customers", "import", path2, "--json", "--by", "ops-01")
    assert code == 0, err
    assert json.loads(out)["branches_linked"] == 1
    orphan = customer(db, "河北冀华五金有限公司石家庄分公司")
    assert orphan.parent_id == customer(db, "河北冀华五金有限公司").id
    with session_scope(db) as s:
        log = s.exec(select(OperationLog).where(OperationLog.entity_id == str(orphan.id),
                                                OperationLog.action == "update")).one()
    assert json.loads(log.changes)["parent_id"][1] == orphan.parent_id and log.actor == "ops-01"



def test_would_be_duplicates_are_clusters_for_review_and_nothing_is_merged(seeded, cli,
                                                                          tmp_path):
    path = write_rows(tmp_path / "c.csv", [
        # form/industry/region-spelling variants of the seeded 江苏康达医疗设备有限公司
        ["江苏康达医疗器械有限责任公司", "康达医械", "", "", "江苏", "", "", ""],
        ["康达医疗(江苏)有限公司", "", "", "", "", "", "", ""],
        # same USCC as the seeded 浙江仁和医疗器械有限公司 under another name
        ["杭州仁和医疗科技有限公司", "", "", VALID2, "浙江", "", "", ""],
        # a legal name that is another customer's short name (seeded alias 申康医疗)
        ["申康医疗", "", "", "", "上海", "", "", ""],
        # not duplicates: another city, another industry, a branch
        ["苏州康达医疗设备有限公司", "", "", "", "", "", "", ""],
        ["江苏康达化工有限公司", "", "", "", "", "", "", ""],
        [KANGDA + "无锡分公司", "", "", "", "", "", "", ""],
    ])
    before = table_counts(seeded.db_url)
    code, out, err = cli("customers", "import", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["created"] == 7 and report["clusters"] == 3
    assert table_counts(seeded.db_url)["customer"] == before["customer"] + 7
    with session_scope(seeded.db_url) as s:
        assert s.exec(select(Customer).where(Customer.merged_into_id.is_not(None))).all() == []
    review = tmp_path / "c.duplicates.xlsx"
    assert Path(report["review_workbook"]) == review
    assert clusters_in(review) == {
        1: {KANGDA, "江苏康达医疗器械有限责任公司", "康达医疗(江苏)有限公司"},
        2: {"浙江仁和医疗器械有限公司", "杭州仁和医疗科技有限公司"},
        3: {"上海申康医疗科技有限公司", "申康医疗"},
    }
    rows = review_rows(review)
    by_name = {r["工商全称"]: r for r in rows}
    assert "统一社会信用代码相同" in by_name["杭州仁和医疗科技有限公司"]["原因"]
    assert "也是客户" in by_name["申康医疗"]["原因"] and "简称" in by_name["申康医疗"]["原因"]
    assert "组织形式不同" in by_name["江苏康达医疗器械有限责任公司"]["原因"]
    assert "地区写法不同" in by_name["康达医疗(江苏)有限公司"]["原因"]
    assert by_name[KANGDA]["来源"] == "已有" and by_name["申康医疗"]["来源"] == "导入"
    # the suggested survivor: the file with a valid USCC (and on record)
    assert by_name[KANGDA]["建议"].startswith("建议保留")
    assert by_name["浙江仁和医疗器械有限公司"]["建议"].startswith("建议保留")
    assert all(r["处理"] is None for r in rows)
    assert sum(1 for r in rows if r["建议"]) == 3


# --- merges ---------------------------------------------------------------------------------

def add_order(db_url: str, order_id: str, customer_id: int) -> None:
    with session_scope(db_url) as s:
        s.add(IntentOrder(id=order_id, event_id=order_id, sender_id="portal",
                          customer_name="康达医疗器械", customer_id=customer_id))


def test_merge_by_id_moves_orders_and_names_and_logs(seeded, cli, tmp_path):
    db = seeded.db_url
    path = write_rows(tmp_path / "c.csv", [["江苏康达医疗器械有限责任公司", "康达医械;康达器械", "",
                                            "", "江苏", "", "", ""]])
    assert cli("customers", "import", path)[0] == 0
    kd, dup = customer(db, KANGDA), customer(db, "江苏康达医疗器械有限责任公司")
    add_order(db, "IO-MERGE-1", dup.id)
    code, out, err = cli("customers", "merge", "--into", kd.id, dup.id, "--by", "ops-01")
    assert code == 0, err
    assert f"客户 {dup.id} 已并入客户 {kd.id}" in out and "意向单 1" in out
    with session_scope(db) as s:
        assert s.get(IntentOrder, "IO-MERGE-1").customer_id == kd.id
        assert s.get(Customer, dup.id).merged_into_id == kd.id
        merge_log = s.exec(select(OperationLog).where(
            OperationLog.action == "merge", OperationLog.entity_id == str(dup.id))).one()
        assert merge_log.actor == "ops-01"
    names = aliases_of(db, kd.id)
    assert names["江苏康达医疗器械有限责任公司"] == "merged" and "康达器械" in names
    # an import naming the merged file now means its survivor
    code, out, _ = cli("customers", "import", path, "--json")
    assert json.loads(out)["created"] == 0


def test_merge_refusals_write_nothing(seeded, cli, tmp_path):
    db = seeded.db_url
    path = write_rows(tmp_path / "c.csv", [[KANGDA + "常州分公司", "", "", "", "", "", "", ""]])
    assert cli("customers", "import", path)[0] == 0
    kd, branch = customer(db, KANGDA), customer(db, KANGDA + "常州分公司")
    renhe = customer(db, "浙江仁和医疗器械有限公司")
    before = snapshot(db)
    # the second merge is refused (a branch into its parent): the first one is undone too
    code, _, err = cli("customers", "merge", "--into", kd.id, renhe.id, branch.id, "--by", "ops-01")
    assert code != 0 and "分支机构" in err and "未合并任何客户" in err
    assert snapshot(db) == before
    assert cli("customers", "merge", "--into", kd.id, renhe.id, "--by", "nobody")[0] != 0
    code, _, err = cli("customers", "merge", "--into", kd.id, renhe.id, "--by", "rep-zhangwei")
    assert code == 2 and "合并客户档案须由销售运营或管理员执行" in err and "销售代表" in err
    assert cli("customers", "merge", "--into", kd.id, "--by", "ops-01")[0] != 0
    assert cli("customers", "merge", "--into", kd.id, 99999, "--by", "ops-01")[0] != 0
    assert snapshot(db) == before


def fill_review(path: Path, marks: dict[str, str], out: Path) -> Path:
    wb = load_workbook(path)
    ws = wb["疑似重复"]
    header = [c.value for c in ws[1]]
    name_col, action_col = header.index("工商全称") + 1, header.index("处理") + 1
    for row in range(2, ws.max_row + 1):
        mark = marks.get(ws.cell(row, name_col).value)
        if mark:
            ws.cell(row, action_col).value = mark
    wb.save(out)
    return out


def test_merge_by_reviewed_workbook(seeded, cli, tmp_path):
    db = seeded.db_url
    path = write_rows(tmp_path / "c.csv", [
        ["江苏康达医疗器械有限责任公司", "康达器械", "", "", "江苏", "", "", ""],
        ["康达医疗(江苏)有限公司", "", "", "", "", "", "", ""],
        ["杭州仁和医疗科技有限公司", "", "", VALID2, "浙江", "", "", ""]])
    assert cli("customers", "import", path)[0] == 0
    review = tmp_path / "c.duplicates.xlsx"
    kd = customer(db, KANGDA)
    dup1 = customer(db, "江苏康达医疗器械有限责任公司")
    dup2 = customer(db, "康达医疗(江苏)有限公司")
    renhe2 = customer(db, "杭州仁和医疗科技有限公司")
    add_order(db, "IO-REVIEW-1", dup1.id)

    # ambiguous: 合并 with two 保留 → refused, naming the cluster; nothing written
    bad = fill_review(review, {KANGDA: "保留", "江苏康达医疗器械有限责任公司": "保留",
                               "康达医疗(江苏)有限公司": "合并"}, tmp_path / "bad.xlsx")
    before = snapshot(db)
    code, _, err = cli("customers", "merge", "--review", bad, "--by", "ops-01")
    assert code != 0 and "第 1 簇" in err and "“保留”有 2 个" in err
    bad0 = fill_review(review, {"康达医疗(江苏)有限公司": "合并", "杭州仁和医疗科技有限公司": "合并",
                                "浙江仁和医疗器械有限公司": "保留"}, tmp_path / "bad0.xlsx")
    code, _, err = cli("customers", "merge", "--review", bad0, "--by", "ops-01")
    assert code != 0 and "第 1 簇" in err and "“保留”有 0 个" in err
    typo = fill_review(review, {KANGDA: "保留", "康达医疗(江苏)有限公司": "合并了"}, tmp_path / "t.xlsx")
    code, _, err = cli("customers", "merge", "--review", typo, "--by", "ops-01")
    assert code != 0 and "「处理」" in err and "合并了" in err
    assert snapshot(db) == before

    good = fill_review(review, {KANGDA: "保留", "江苏康达医疗器械有限责任公司": "合并",
                                "康达医疗(江苏)有限公司": "合并", "杭州仁和医疗科技有限公司": "忽略"},
                       tmp_path / "good.xlsx")
    code, out, err = cli("customers", "merge", "--review", good, "--by", "ops-01")
    assert code == 0, err
    assert f"客户 {dup1.id} 已并入客户 {kd.id}" in out and "意向单 1" in out
    assert "合并 2 个客户" in out
    with session_scope(db) as s:
        assert s.get(IntentOrder, "IO-REVIEW-1").customer_id == kd.id
        assert s.get(Customer, dup1.id).merged_into_id == kd.id
        assert s.get(Customer, dup2.id).merged_into_id == kd.id
        assert s.get(Customer, renhe2.id).merged_into_id is None
        assert len(s.exec(select(OperationLog).where(OperationLog.action == "merge",
                                                     OperationLog.actor == "ops-01")).all()) == 2
    names = aliases_of(db, kd.id)
    assert {"康达器械", "江苏康达医疗器械有限责任公司", "康达医疗(江苏)有限公司"} <= set(names)
    # applying the same workbook again changes nothing
    after = snapshot(db)
    code, out, err = cli("customers", "merge", "--review", good, "--by", "ops-01")
    assert code == 0 and "此前已并入" in out
    assert snapshot(db) == after


# --- match over the imported data -----------------------------------------------------------

def test_match_json_over_thousands_of_generated_queries(seeded, cli, tmp_path):
    db = seeded.db_url
    generated = generate_customers(1500, seed=7)
    path = tmp_path / "gen.csv"
    write_csv(generated, path)
    report = import_customers(db, path, actor="ops-01")
    assert report.created == 1500 and report.clusters  # planted duplicates are found
    qs = queries(generated, 3000, seed=8)
    invalid = ["'; DROP TABLE customer; --", "华" * 150, "康达\x07医疗", "<script>"]
    lines = qs[:1000] + invalid[:2] + qs[1000:2000] + ["", "  "] + invalid[2:] + qs[2000:]
    qfile = tmp_path / "q.txt"
    qfile.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with session_scope(db) as s:
        legal = {c.id: c.legal_name for c in s.exec(select(Customer))}
    code, out, err = cli("customers", "match", "--file", qfile, "--json")
    assert code == 1 and "4 行不是有效的客户名称" in err  # invalid lines flagged, not fatal
    results = [json.loads(line) for line in out.splitlines()]
    assert len(results) == len(qs) + len(invalid)  # blank lines are skipped
    errors = [r for r in results if "error" in r]
    assert [r["query"] for r in errors] == invalid
    assert all(r["candidates"] == [] and r["decision"] == "unknown" for r in errors)
    assert {r["error"]["code"] for r in errors} == {"invalid_characters", "name_too_long",
                                                    "control_characters"}
    ok = [r for r in results if "error" not in r]
    assert [r["query"] for r in ok] == qs
    for r in ok:
        assert set(r) == {"query", "decision", "candidates"}
        assert r["decision"] in ("auto", "suggest", "unknown")
        assert len(r["candidates"]) <= 5
        scores = [c["score"] for c in r["candidates"]]
        assert scores == sorted(scores, reverse=True)
        for c in r["candidates"]:
            assert set(c) == {"customer_id", "legal_name", "matched_alias", "score"}
            assert legal[c["customer_id"]] == c["legal_name"]
    # a legal name that is no other file's name, of a file without planted duplicates, finds
    # its own file, exactly and alone
    names = Counter(n for c in generated if c.in_file
                    for n in (c.legal_name, *c.short_names, *c.former_names))
    planted = {generated[c.of].legal_name for c in generated if c.kind.startswith("dup:")}
    planted |= {c.legal_name for c in generated if c.kind.startswith("dup:")}
    by_name = {v: k for k, v in legal.items()}
    exact = [r for r in ok if names[r["query"]] == 1 and r["query"] in by_name
             and r["query"] not in planted]
    assert len(exact) > 300
    for r in exact:
        assert r["decision"] == "auto", r
        best = r["candidates"][0]
        assert (best["customer_id"], best["score"], best["matched_alias"]) == \
            (by_name[r["query"]], 100.0, r["query"])


def test_the_match_index_does_not_reread_a_bulk_import_on_every_refresh(seeded, tmp_path,
                                                                       monkeypatch):
    from flows.customer_index import CustomerIndex
    from models.matching import NameIndex

    db = seeded.db_url
    generated = generate_customers(300, seed=3)
    path = tmp_path / "gen.csv"
    write_csv(generated, path)
    import_customers(db, path, actor="ops-01")
    index = CustomerIndex(db, refresh_seconds=0)
    index.current()
    added = []
    real_add = NameIndex.add
    monkeypatch.setattr(NameIndex, "add", lambda self, e: (added.append(e), real_add(self, e)))
    for _ in range(3):
        index.current()  # rows stamped together by the import: applied once, at the build
    assert added == []
    # a change is still picked up
    with session_scope(db) as s:
        kd = s.exec(select(Customer).where(Customer.name_key == normalize_name(KANGDA))).one()
        s.add(CustomerAlias(customer_id=kd.id, name="康达新叫法", kind="typed", source="manual"))
    assert index.search("康达新叫法").candidates[0].customer_id == kd.id
    assert [e.name for e in added] == ["康达新叫法"]


def test_two_names_of_one_file_in_one_import_never_overwrite_each_other(seeded, cli, tmp_path):
    db = seeded.db_url
    first = write_rows(tmp_path / "a.csv", [["江苏康达医疗器械有限责任公司", "", "", "", "", "", "", ""]])
    assert cli("customers", "import", first)[0] == 0
    kd, dup = customer(db, KANGDA), customer(db, "江苏康达医疗器械有限责任公司")
    assert cli("customers", "merge", "--into", kd.id, dup.id, "--by", "ops-01")[0] == 0
    with session_scope(db) as s:
        row = s.get(Customer, kd.id)
        row.region = None
        s.add(row)
    # the merged file's legal name and the survivor's: both are the survivor
    path = write_rows(tmp_path / "b.csv", [
        ["江苏康达医疗器械有限责任公司", "", "", "", "", "", "", "", "华北"],
        [KANGDA, "", "", "", "", "", "", "", "华东"]], header=HEADER + ["region"])
    code, out, err = cli("customers", "import", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["created"] == 0 and report["conflicts"] == 1
    assert customer(db, KANGDA).region == "华北"
    wb = load_workbook(tmp_path / "b.duplicates.xlsx")
    assert list(wb["字段冲突"].iter_rows(values_only=True))[1][3:] == ("大区", "华北", "华东")


def test_finance_codes_are_imported_and_one_code_names_one_customer(seeded, cli, tmp_path):
    db = seeded.db_url
    header = ["工商全称", "财务客户编码"]
    path = write_rows(tmp_path / "codes.csv", [[KANGDA, "1122.0001"],
                                               ["苏州恒瑞精密机械有限公司", "1122.0002"]],
                      header=header)
    code, _, err = cli("customers", "import", path, "--by", "ops-01")
    assert code == 0, err
    assert customer(db, KANGDA).finance_code == "1122.0001"
    assert customer(db, "苏州恒瑞精密机械有限公司").finance_code == "1122.0002"
    before = snapshot(db)
    for rows, clash in (
            ([["广东华信电子科技股份有限公司", "1122.0001"]], f"已属于“{KANGDA}”"),
            ([["甲公司有限公司", "9"], ["乙公司有限公司", "9"]], "已属于“甲公司有限公司”")):
        path = write_rows(tmp_path / "clash.csv", rows, header=header)
        code, _, err = cli("customers", "import", path, "--by", "ops-01")
        assert code == 2 and "财务客户编码" in err and clash in err, err
        assert snapshot(db) == before  # nothing written


def test_match_finds_a_pasted_credit_code_as_the_suggestions_do(seeded, cli, tmp_path):
    """A line holding a customer's USCC (as a clerk pastes it from the old CRM) finds the
    file, as `/customers/suggest` does; a code failing its check claims nothing."""
    qfile = tmp_path / "codes.txt"
    qfile.write_text("91320500MA1K2D3F5H\n91320500MA1K2D3F5J\n", encoding="utf-8")
    code, out, _ = cli("customers", "match", "--file", qfile, "--json")
    found, bad = [json.loads(line) for line in out.splitlines()]
    assert found["decision"] == "auto"
    assert [c["legal_name"] for c in found["candidates"]] == ["江苏康达医疗设备有限公司"]
    assert bad["decision"] == "unknown" and bad["candidates"] == []


def test_a_marked_review_workbook_is_kept_and_the_new_one_written_beside_it(seeded, cli,
                                                                          tmp_path):
    """Re-importing while a reviewer works on the review workbook: hers is left as it is, the
    new one goes beside it (numbered) and the summary names both; a numbered one nobody has
    marked yet is the one written over next time (no pile of copies)."""
    import openpyxl

    path = write_rows(tmp_path / "客户.csv", [["丙丁医疗器械有限公司", "91440100MA59QX1R3H"]],
                      header=["legal_name", "uscc"])
    assert cli("customers", "import", path, "--by", "ops-01")[0] == 0
    review = tmp_path / "客户.duplicates.xlsx"
    wb = openpyxl.load_workbook(review)
    ws = wb["疑似重复"]
    ws.cell(2, [c.value for c in ws[1]].index("处理") + 1).value = "忽略"
    wb.save(review)
    marked = review.read_bytes()
    for _ in range(2):
        code, out, err = cli("customers", "import", path, "--by", "ops-01")
        assert code == 0, err
        assert f"复核表：{tmp_path / '客户.duplicates-2.xlsx'}" in out, out
        assert f"原复核表 {review} 已填写“处理”，未覆盖" in out, out
        assert f"--review {tmp_path / '客户.duplicates-2.xlsx'}" in out, out
    assert review.read_bytes() == marked
    assert sorted(p.name for p in tmp_path.glob("*.xlsx")) == [
        "客户.duplicates-2.xlsx", "客户.duplicates.xlsx"]
    code, out, _ = cli("customers", "import", path, "--by", "ops-01", "--json")
    report = json.loads(out)
    assert (report["review_workbook"], report["review_workbook_kept"]) == (
        str(tmp_path / "客户.duplicates-2.xlsx"), str(review))
