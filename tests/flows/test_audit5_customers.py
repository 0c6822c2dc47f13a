"""Audit round 5 (customer master data): what a clerk, a rep, a manager or the risk role
would still hit."""
from __future__ import annotations

import json

import pytest

from openpyxl import Workbook

from tests.flows.test_customer_import import KANGDA, cli, snapshot, write_rows  # noqa: F401


def test_a_finance_code_excel_turned_into_a_number_is_refused(seeded, cli, tmp_path):  # noqa: F811
    """A finance code Excel shows in scientific notation (a CSV opened and saved again) or
    stored as a number (trailing zeros gone) would book the customer's vouchers under another
    code: the row is refused, naming the column, and nothing is written."""
    db = seeded.db_url
    before = snapshot(db)
    csv_path = write_rows(tmp_path / "codes.csv", [[KANGDA, "1.12200E+11"]],
                          header=["工商全称", "财务客户编码"])
    wb = Workbook()
    wb.active.append(["工商全称", "财务客户编码"])
    wb.active.append([KANGDA, 1122.001])      # typed 1122.0010 in a number cell
    xlsx_path = tmp_path / "codes.xlsx"
    wb.save(xlsx_path)
    for path in (csv_path, xlsx_path):
        code, out, err = cli("customers", "import", path, "--by", "ops-01")
        assert code == 2, (out, err)
        assert f"{path.name} 第2行「财务客户编码（finance_code）」" in err, err
        assert "丢失位数" in err and "未写入任何数据" in err, err
        assert snapshot(db) == before
    good = write_rows(tmp_path / "good.csv", [[KANGDA, "1122.0010"]],
                      header=["工商全称", "财务客户编码"])
    code, _, err = cli("customers", "import", good, "--by", "ops-01")
    assert code == 0, err


def test_a_refused_row_names_its_column_in_chinese(seeded, cli, tmp_path):  # noqa: F811
    """A clerk whose file has Chinese headers (工商全称, 负责销售 …) reads the column he wrote,
    not the hub's English field name alone."""
    path = write_rows(tmp_path / "zh.csv", [["", "rep-zhangwei"],
                                            ["福建闽光贸易有限公司", "rep-nobody"]],
                      header=["工商全称", "负责销售"])
    code, _, err = cli("customers", "import", path, "--by", "ops-01")
    assert code == 2
    assert "zh.csv 第2行「工商全称（legal_name）」：工商全称不能为空" in err, err
    assert "zh.csv 第3行「负责销售（owner）」" in err, err


def test_a_name_written_with_the_chinese_zero_is_a_name(seeded, cli, tmp_path):  # noqa: F811
    """〇 is how Chinese numerals write zero (第七〇二研究所): such a legal name is imported and
    found again, not refused as a character no company name has."""
    name = "中国船舶重工集团公司第七〇二研究所"
    path = write_rows(tmp_path / "zero.csv", [[name, "七〇二所"]], header=["工商全称", "简称"])
    code, _, err = cli("customers", "import", path, "--by", "ops-01")
    assert code == 0, err
    queries = tmp_path / "q.txt"
    queries.write_text("七〇二所\n", encoding="utf-8")
    code, out, err = cli("customers", "match", "--file", queries, "--json")
    assert code == 0, err
    found = json.loads(out.splitlines()[0])
    assert "error" not in found and found["candidates"][0]["legal_name"] == name


@pytest.mark.usefixtures("prefect_harness")
def test_a_waiting_spelling_of_a_customer_filed_meanwhile_is_decided_by_its_file(hub):
    """Three orders typed 深圳鑫源电子科技有限公司 wait; then the company is filed as
    深圳市鑫源电子科技有限公司 (another spelling, decided or imported). A new order typed the
    old way links to that file by itself, so the hourly sweep decides the waiting name the same
    way: its orders go on and the manager is not left to decide it (or to see it refused)."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from flows.suspects import escalate_and_enforce
    from models import Customer, CustomerAlias, IntentOrder, SuspectName, Todo
    from models.customer_files import create_customer
    from models.db import session_scope
    from sqlmodel import select
    from tests.flows.test_audit4_customers import _run_pending
    from tests.support import order_payload, post_order

    typed = "深圳鑫源电子科技有限公司"
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        waiting = []
        for _ in range(3):
            r = post_order(client, order_payload(name=typed))
            assert r.status_code == 202, r.text
            waiting.append(r.json()["order_id"])
            _run_pending(hub)
    with session_scope(hub.db_url) as s:
        suspect = s.exec(select(SuspectName)).one()
        assert suspect.status == "escalated"
        filed = create_customer(s, legal_name="深圳市鑫源电子科技有限公司", actor="test",
                                origin="imported", owner_rep_id="rep-zhangwei")
        s.flush()
        cid = filed.id
    result = escalate_and_enforce(hub)
    assert result.resolved == [suspect.id] and result.overdue == []
    with session_scope(hub.db_url) as s:
        decided = s.get(SuspectName, suspect.id)
        assert (decided.status, decided.customer_id) == ("merged", cid)
        assert s.get(Todo, decided.todo_id).status == "done"
        assert {(s.get(IntentOrder, o).status, s.get(IntentOrder, o).customer_id)
                for o in waiting} == {("received", cid)}
        alias = s.exec(select(CustomerAlias.kind).where(CustomerAlias.customer_id == cid,
                                                        CustomerAlias.name == typed)).one()
        assert alias == "typed"
        assert s.get(Customer, cid).legal_name == "深圳市鑫源电子科技有限公司"


def test_a_branch_written_with_its_branch_part_in_brackets_goes_under_its_head_office(
        seeded, cli, tmp_path):  # noqa: F811
    """ERPs write 江苏康达医疗设备有限公司（无锡分公司）: a branch as much as …有限公司无锡分公司 —
    its own file, linked to the head office on file, never taken for the head office."""
    from models import Customer
    from models.db import session_scope
    from sqlmodel import select

    branch = "江苏康达医疗设备有限公司（无锡分公司）"
    path = write_rows(tmp_path / "branch.csv", [[branch]], header=["工商全称"])
    code, out, err = cli("customers", "import", path, "--by", "ops-01", "--json")
    assert code == 0, err
    assert json.loads(out)["branches_linked"] == 1
    with session_scope(seeded.db_url) as s:
        head = s.exec(select(Customer).where(Customer.legal_name == KANGDA)).one()
        filed = s.exec(select(Customer).where(Customer.legal_name == branch)).one()
        assert filed.parent_id == head.id
    queries = tmp_path / "q.txt"
    queries.write_text("江苏康达医疗设备有限公司(无锡分公司)\n江苏康达医疗设备有限公司无锡分公司\n",
                       encoding="utf-8")
    code, out, err = cli("customers", "match", "--file", queries, "--json")
    assert code == 0, err
    for line in out.splitlines():
        found = json.loads(line)
        assert found["candidates"][0]["legal_name"] == branch, found


def test_a_merge_keeps_what_each_moved_name_was(seeded):
    """The merged file's former name came from the registry, its short name from an import:
    on the survivor they are still that (kind, source, since when), not names “from the
    merge”; a name the survivor already had goes, and the log says so."""
    from sqlmodel import select

    from models import CustomerAlias, OperationLog
    from models.customer_files import add_alias, create_customer, merge_customers
    from models.db import session_scope

    with session_scope(seeded.db_url) as s:
        survivor = create_customer(s, legal_name="苏州恒信医疗器械有限公司", actor="test",
                                   origin="imported", short_names=("恒信医疗",))
        merged = create_customer(s, legal_name="苏州恒信医疗科技有限公司", actor="test",
                                 origin="imported", short_names=("恒信医疗", "恒信科技"))
        former = add_alias(s, merged, "苏州恒信医疗设备有限公司", "former", "registry", "test")
        s.flush()
        ids = survivor.id, merged.id, former.id
        before = {a.name: (a.id, a.kind, a.source, a.created_at) for a in s.exec(
            select(CustomerAlias).where(CustomerAlias.customer_id == merged.id))}
    with session_scope(seeded.db_url) as s:
        merge_customers(s, ids[0], ids[1], "staff:ops-01")
    with session_scope(seeded.db_url) as s:
        after = {a.name: (a.id, a.kind, a.source, a.created_at) for a in s.exec(
            select(CustomerAlias).where(CustomerAlias.customer_id == ids[0]))}
        assert after["苏州恒信医疗设备有限公司"] == before["苏州恒信医疗设备有限公司"]
        assert after["恒信科技"] == before["恒信科技"]
        assert after["苏州恒信医疗科技有限公司"][1:3] == ("merged", "merge")
        assert after["恒信医疗"][0] != before["恒信医疗"][0]  # the survivor's own, kept
        gone = s.exec(select(OperationLog).where(
            OperationLog.entity == "customer_alias", OperationLog.action == "delete",
            OperationLog.entity_id == str(before["恒信医疗"][0]))).all()
        assert len(gone) == 1
