"""`salesops orders retry` and `salesops staff import|set`: how they are parsed, what their
help and refusals say (in Chinese), and the staff file's checks without a database."""
from __future__ import annotations

import pytest

from connectors.tabular import CellError
from deployments.cli import build_parser
from flows.staff_file import Entry, check_field, plan_changes, value_text
from models import Staff


def parse(*argv):
    return build_parser().parse_args([str(a) for a in argv])


def usage_error(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


# --- parsing ---------------------------------------------------------------------------------

def test_orders_retry_takes_order_ids_and_a_person():
    args = parse("orders", "retry", "IO1", "IO2", "--by", "ops-01", "--json")
    assert (args.order_ids, args.by, args.json) == (["IO1", "IO2"], "ops-01", True)
    assert args.func.__name__ == "cmd_retry"


def test_orders_retry_without_orders_or_person_is_refused_in_chinese(capsys):
    err = usage_error(capsys, "orders", "retry", "--by", "ops-01")
    assert "缺少必需参数： 意向单号" in err
    err = usage_error(capsys, "orders", "retry", "IO1")
    assert "缺少必需参数： --by" in err


def test_staff_import_and_set_are_in_the_staff_group_beside_token():
    args = parse("staff", "import", "人员.xlsx", "--by", "ops-01", "--dry-run", "--sheet", "名单")
    assert (args.file, args.by, args.dry_run, args.sheet, args.json) == (
        "人员.xlsx", "ops-01", True, "名单", False)
    args = parse("staff", "set", "rep-lina", "--mobile", "", "--manager", "mgr-east",
                 "--by", "admin")
    assert (args.staff_id, args.mobile, args.manager, args.name, args.role) == (
        "rep-lina", "", "mgr-east", None, None)
    assert parse("staff", "token", "rep-lina").func.__name__ == "cmd_staff_token"


def test_staff_commands_need_a_person(capsys):
    assert "缺少必需参数： --by" in usage_error(capsys, "staff", "import", "a.csv")
    assert "缺少必需参数： --by" in usage_error(capsys, "staff", "set", "rep-lina", "--name", "李娜")


def test_help_says_what_the_commands_do_in_chinese(capsys):
    for argv, words in ((("orders", "retry"), ("暂停", "inbox-sweeper", "操作日志")),
                        (("staff", "import"), ("人员编号", "上级", "--dry-run")),
                        (("staff", "set"), ("销售代表", "清空"))):
        with pytest.raises(SystemExit):
            parse(*argv, "--help")
        out = capsys.readouterr().out
        assert out.startswith("用法：salesops " + " ".join(argv))
        assert all(w in out for w in words), (argv, out)


def test_refusals_go_through_the_cli_error_with_its_exit_code():
    from deployments.customers_cli import CliError
    from deployments.orders_cli import cmd_retry
    from deployments.staff_cli import cmd_staff_import, cmd_staff_set

    assert CliError("x").code == 2
    assert {cmd_retry.__module__, cmd_staff_import.__module__, cmd_staff_set.__module__} == {
        "deployments.orders_cli", "deployments.staff_cli"}


# --- one value -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, role", [("rep", "rep"), (" Sales_Ops ", "sales_ops"),
                                        ("区域经理", "sales_manager"), ("管理员", "admin"),
                                        ("ｆｉｎａｎｃｅ", "finance")])
def test_a_role_is_its_code_or_its_chinese_name(text, role):
    assert check_field("role", text) == role


def test_an_unknown_role_lists_the_known_ones():
    with pytest.raises(CellError) as exc:
        check_field("role", "销售经理")
    assert exc.value.message.startswith("角色“销售经理”无效（可选：rep（销售代表）、sales_manager（区域经理）")


@pytest.mark.parametrize("text", ["a@b", "张三@example.com", "a@example.com;b@example.com",
                                  "a b@example.com", "王强 <w@example.com>", ""])
def test_an_email_is_one_deliverable_address(text):
    with pytest.raises(CellError) as exc:
        check_field("email", text)
    assert "邮箱" in exc.value.message


@pytest.mark.parametrize("text, number", [("139 0000 0001", "13900000001"),
                                          ("+86 139-0000-0001", "13900000001"),
                                          ("１３９０００００００１", "13900000001"), ("", None)])
def test_a_mobile_is_stored_as_the_robots_mention_it(text, number):
    assert check_field("mobile", text) == number


def test_a_mobile_of_letters_is_refused():
    with pytest.raises(CellError, match="手机号“139abc”不是有效的手机号"):
        check_field("mobile", "139abc")


def test_region_and_manager():
    assert check_field("region", "华东大区") == "华东" and check_field("region", " ") is None
    assert check_field("manager", "") is None and check_field("manager", "mgr-east") == "mgr-east"
    with pytest.raises(CellError, match="上级人员编号“mgr east”中不能有空格"):
        check_field("manager", "mgr east")
    assert value_text("region", "华东") == "华东大区" and value_text("mobile", None) == "（空）"
    assert value_text("role", "rep") == "销售代表（rep）"


# --- the file checked whole ------------------------------------------------------------------

def people(*rows) -> dict[str, Staff]:
    return {sid: Staff(id=sid, name=sid, role=role, email=f"{sid}@example.com", manager_id=m)
            for sid, role, m in rows}


ON_FILE = people(("boss", "sales_manager", None), ("rep-1", "rep", "boss"))


def new(sid, manager=None, row=None, **values):
    return Entry(sid, {"name": sid, "role": "rep", "email": f"{sid}@example.com",
                       "manager": manager, **values}, row)


def test_new_managers_are_created_before_their_people():
    plan = plan_changes(ON_FILE, [new("a", "b"), new("b", "c"), new("c", "boss")])
    assert plan.problems == [] and [e.id for e in plan.created] == ["c", "b", "a"]


def test_a_new_person_needs_name_role_and_email():
    plan = plan_changes(ON_FILE, [Entry("x", {"name": "某人"}, 2)])
    assert [(f, m) for _, f, m in plan.problems] == [("role", "新人员须填写角色"),
                                                    ("email", "新人员须填写邮箱")]


def test_only_real_changes_are_updates():
    plan = plan_changes(ON_FILE, [Entry("rep-1", {"manager": "boss"}),
                                  Entry("boss", {"email": "b@example.com"})])
    assert plan.unchanged == ["rep-1"]
    assert [(e.id, d) for e, d in plan.updated] == [
        ("boss", {"email": ["boss@example.com", "b@example.com"]})]


def test_unknown_managers_and_loops_are_problems():
    plan = plan_changes(ON_FILE, [Entry("boss", {"manager": "rep-1"}, 2), new("z", "ghost", 3),
                                  new("self", "self", 4)])
    assert [(e.row, f, m) for e, f, m in plan.problems] == [
        (3, "manager", "上级“ghost”不是系统中的人员编号，也不在本文件中"),
        (4, "manager", "上级不能是本人"),
        (2, "manager", "上级关系形成循环：boss → rep-1 → boss（每人的上级链须止于没有上级的人）")]
    # a loop is told once, at its first row
    plan = plan_changes({}, [new("a", "b", 2), new("b", "a", 3)])
    assert [(e.row, m.split("：")[0]) for e, _, m in plan.problems] == [(2, "上级关系形成循环")]
