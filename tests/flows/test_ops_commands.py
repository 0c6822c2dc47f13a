"""`salesops orders retry` and `salesops staff import|set` on the database, as ops run them
(`in_process_cli`): what they write, what the operation log says, and what they refuse with
nothing written."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from connectors.base import PermanentError
from flows.dispatch import requeue_stalled
from models import IntentOrder, OperationLog, Staff, Todo, utcnow
from models.base import set_clock
from models.db import session_scope
from tests.flows.test_order_pipeline_edges import PrefectLikeLauncher
from tests.support import InlineLauncher, in_process_cli, order_payload, post_order, run_pending

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub.settings, launcher=None)) as c:
        yield c


def order(hub, oid: str) -> IntentOrder:
    with session_scope(hub.db_url) as s:
        return s.get(IntentOrder, oid)


def blocked_todos(hub, oid: str) -> list[Todo]:
    with session_scope(hub.db_url) as s:
        return list(s.exec(select(Todo).where(Todo.order_id == oid,
                                              Todo.kind == "order_blocked").order_by(Todo.id)))


def log_rows(hub, entity: str, entity_id: str) -> list[OperationLog]:
    with session_scope(hub.db_url) as s:
        return list(s.exec(select(OperationLog).where(
            OperationLog.entity == entity, OperationLog.entity_id == entity_id)
            .order_by(OperationLog.id)))


class SigningRefused:
    """While in effect, the signing provider refuses (a bad account); fixed on exit."""

    def __init__(self, hub) -> None:
        self.esign = hub.esign

    def __enter__(self):
        def refused(request):
            raise PermanentError("e签宝 refused: app not authorised", provider="esign",
                                 code="401")
        self.esign.create_signing = refused

    def __exit__(self, *exc) -> None:
        del self.esign.create_signing  # the class's own method again


def block_on_signing(hub, client) -> str:
    """An order blocked at once: the signing provider refuses; the account then fixed."""
    with SigningRefused(hub):
        oid = post_order(client, order_payload()).json()["order_id"]
        run_pending(hub)
    assert order(hub, oid).status == "blocked"
    return oid


def sweep_later(hub, seconds: float, launcher: InlineLauncher | None = None) -> InlineLauncher:
    """The sweeper's requeue pass `seconds` from now (its runs inline)."""
    st = hub.settings
    later = utcnow() + dt.timedelta(seconds=seconds)
    set_clock(lambda: later)
    launcher = launcher or InlineLauncher()
    try:
        requeue_stalled(hub.db_url, launcher, dt.timedelta(seconds=st.claim_lease_seconds),
                        st.order_max_attempts, st.dispatch_batch_size,
                        dt.timedelta(seconds=st.order_retry_base_seconds))
    finally:
        set_clock(None)
    return launcher


# --- orders retry ----------------------------------------------------------------------------

def test_a_blocked_order_retried_is_handed_over_by_the_sweeper_and_completes(
        hub, client, cli):
    oid = block_on_signing(hub, client)
    [todo] = blocked_todos(hub, oid)
    assert todo.status == "open" and todo.assignee_id == "mgr-east"

    code, out, err = cli("orders", "retry", oid, "--by", "ops-01")
    assert code == 0, err
    assert f"意向单 {oid}" in out and "已暂停，需人工处理" in out and f"待办 #{todo.id} 已办结" in out
    assert "约 1 分钟后，收件箱巡检（inbox-sweeper，每分钟运行）的下一次运行将重新处理" in out, out
    o = order(hub, oid)
    assert (o.status, o.attempts, o.claimed_by, o.claimed_until) == ("failed", 0, None, None)
    [todo] = blocked_todos(hub, oid)
    assert (todo.status, todo.done_by, todo.outcome) == ("done", "ops-01", "done")
    assert todo.note == "已由 吴倩（ops-01）重新提交处理" and todo.done_at is not None
    [*_, logged] = log_rows(hub, "intent_order", oid)
    assert logged.actor == "cli:ops-01"
    changes = json.loads(logged.changes)
    assert changes["status"] == ["blocked", "failed"] and changes["attempts"][1] == 0
    assert log_rows(hub, "todo", str(todo.id))[-1].actor == "cli:ops-01"

    # not before the base delay (attempts 0: the base), then handed over and quoted
    assert sweep_later(hub, 5).launched == []
    launcher = sweep_later(hub, hub.settings.order_retry_base_seconds + 1)
    assert [p["order_ids"] for _, p, _ in launcher.launched] == [[oid]]
    o = order(hub, oid)
    assert o.status == "quoted" and o.attempts == 1, (o.status, o.error)


def test_a_second_retry_of_the_same_order_is_a_new_hand_over(hub, client, cli):
    """Blocked, retried, blocked again, retried again: the second hand-over must not carry the
    first one's idempotency key (Prefect would answer the earlier run and start none)."""
    oid = block_on_signing(hub, client)
    assert cli("orders", "retry", oid, "--by", "ops-01")[0] == 0
    prefect = PrefectLikeLauncher()  # a key seen before: the run of then, no new one

    with SigningRefused(hub):  # the retry fails as before: blocked again, a new to-do
        sweep_later(hub, 120, prefect)
    assert order(hub, oid).status == "blocked"
    assert [t.status for t in blocked_todos(hub, oid)] == ["done", "open"]
    assert cli("orders", "retry", oid, "--by", "ops-01")[0] == 0
    assert [t.status for t in blocked_todos(hub, oid)] == ["done", "done"]
    sweep_later(hub, 240, prefect)
    assert len(prefect.runs) == 2 and order(hub, oid).status == "quoted"


def test_retry_refuses_orders_in_other_states_and_writes_nothing(hub, client, cli):
    blocked = block_on_signing(hub, client)
    quoted = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    assert order(hub, quoted).status == "quoted"
    before = len(log_rows(hub, "intent_order", blocked))
    code, out, err = cli("orders", "retry", blocked, quoted, "IO000000-NOPE", "--by", "ops-01")
    assert code == 2 and out == ""
    assert f"意向单 {quoted} 的状态是「已报价，待客户签署」" in err
    assert "意向单不存在：IO000000-NOPE" in err and "未重新提交任何意向单" in err
    assert order(hub, blocked).status == "blocked"  # all or none
    assert [t.status for t in blocked_todos(hub, blocked)] == ["open"]
    assert len(log_rows(hub, "intent_order", blocked)) == before


def test_retry_is_for_sales_ops_or_an_admin(hub, client, cli):
    oid = block_on_signing(hub, client)
    code, _, err = cli("orders", "retry", oid, "--by", "rep-zhangwei")
    assert code == 2 and "须由销售运营或管理员执行" in err and "销售代表" in err
    code, _, err = cli("orders", "retry", oid, "--by", "nobody")
    assert code == 2 and "人员不存在：nobody" in err
    assert order(hub, oid).status == "blocked"
    code, out, err = cli("orders", "retry", oid, "--by", "admin", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["requeued"][0]["order_id"] == oid and answer["requeued"][0]["old_status"] == "blocked"
    assert answer["retry_within_seconds"] == hub.settings.order_retry_base_seconds


# --- staff import / set ----------------------------------------------------------------------

def staff(hub) -> dict[str, Staff]:
    with session_scope(hub.db_url) as s:
        return {p.id: p for p in s.exec(select(Staff))}


def staff_log(hub) -> list[OperationLog]:
    with session_scope(hub.db_url) as s:
        return list(s.exec(select(OperationLog).where(OperationLog.entity == "staff")
                           .order_by(OperationLog.id)))


def write_csv(tmp_path, text: str, name: str = "人员.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8-sig")
    return path


NEW_TEAM = """人员编号,姓名,角色,邮箱,手机号,大区,上级
rep-new,钱多,销售代表,qianduo@example.com,+86 139-0000-0099,华北大区,mgr-north
mgr-north,孙北,sales_manager,sunbei@example.com,,华北,
rep-zhangwei,张伟,rep,zhang.wei@example.com,13900000011,华东,mgr-east
rep-lina,李娜,rep,lina@example.com,13900000012,华南,mgr-south
"""


def test_staff_import_creates_and_updates_people_logged(hub, cli, tmp_path):
    path = write_csv(tmp_path, NEW_TEAM)
    before = staff(hub)
    code, out, err = cli("staff", "import", path, "--by", "ops-01", "--dry-run")
    assert code == 0, err
    assert out.startswith("试运行（未写入数据库）：人员.csv，共 4 行"), out
    assert "新增人员 2，更新 1，已有且无变化 1" in out
    assert staff(hub).keys() == before.keys() and staff_log(hub) == []

    code, out, err = cli("staff", "import", path, "--by", "ops-01")
    assert code == 0, err
    assert "第2行 已新增 rep-new 钱多（销售代表（rep），邮箱 qianduo@example.com，手机号 13900000099，" \
           "大区 华北大区，上级 mgr-north）" in out, out
    assert "第4行 已更新 rep-zhangwei：邮箱 zhangwei@example.com → zhang.wei@example.com" in out
    after = staff(hub)
    new, boss = after["rep-new"], after["mgr-north"]
    assert (new.role, new.mobile, new.region, new.manager_id) == ("rep", "13900000099", "华北",
                                                                  "mgr-north")
    assert (boss.role, boss.mobile, boss.manager_id) == ("sales_manager", None, None)
    assert after["rep-zhangwei"].email == "zhang.wei@example.com"
    logged = staff_log(hub)
    assert {(r.entity_id, r.action, r.actor) for r in logged} == {
        ("mgr-north", "create", "cli:ops-01"), ("rep-new", "create", "cli:ops-01"),
        ("rep-zhangwei", "update", "cli:ops-01")}
    # the manager was created before the person under him
    assert [r.entity_id for r in logged if r.action == "create"] == ["mgr-north", "rep-new"]
    # the same file again: nothing to do
    code, out, _ = cli("staff", "import", path, "--by", "ops-01", "--json")
    assert code == 0 and json.loads(out)["unchanged"] == ["rep-new", "mgr-north", "rep-zhangwei",
                                                          "rep-lina"]
    assert len(staff_log(hub)) == 3


def test_staff_import_reads_xlsx_and_leaves_absent_columns_alone(hub, cli, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["工号", "手机"])
    wb.active.append(["rep-zhangwei", "139 0000 0077"])
    wb.save(tmp_path / "mobiles.xlsx")
    code, out, err = cli("staff", "import", tmp_path / "mobiles.xlsx", "--by", "admin")
    assert code == 0, err
    person = staff(hub)["rep-zhangwei"]
    assert (person.mobile, person.email, person.manager_id) == (
        "13900000077", "zhangwei@example.com", "mgr-east")


def test_staff_import_refuses_a_bad_file_naming_row_and_column_and_writes_nothing(
        hub, cli, tmp_path):
    path = write_csv(tmp_path, """人员编号,姓名,角色,邮箱,手机号,上级
rep-a,甲,销售经理,a@example.com,,mgr-east
rep-b,乙,rep,b@example,,mgr-east
rep-c,丙,rep,c@example.com,abc,mgr-east
rep-d,丁,rep,d@example.com,,mgr-nobody
rep-e,戊,rep,,,mgr-east
mgr-east,王强,sales_manager,wangqiang@example.com,,rep-zhangwei
rep-c,丙,rep,c@example.com,,mgr-east
""")
    before = staff(hub)
    code, out, err = cli("staff", "import", path, "--by", "ops-01")
    assert code == 2 and out == ""
    assert "人员.csv 第2行「角色」：角色“销售经理”无效（可选：rep（销售代表）" in err, err
    assert "人员.csv 第3行「邮箱」：邮箱“b@example”不是有效的邮箱地址" in err
    assert "人员.csv 第4行「手机号」：手机号“abc”不是有效的手机号" in err
    assert "人员.csv 第6行「邮箱」：邮箱不能为空" in err
    assert "人员.csv 第8行「人员编号」：人员编号 rep-c 与第4行重复" in err
    assert err.rstrip().endswith("未写入任何数据。")
    # the rows' own cells right, the file as a whole is checked next
    path = write_csv(tmp_path, """工号,姓名,邮箱,直属上级
rep-d,丁,d@example.com,mgr-nobody
mgr-east,王强,wangqiang@example.com,rep-zhangwei
""")
    code, out, err = cli("staff", "import", path, "--by", "ops-01")
    assert code == 2
    assert "第2行「直属上级」：上级“mgr-nobody”不是系统中的人员编号，也不在本文件中" in err, err
    assert "第2行「角色」：新人员须填写角色" in err
    assert "第3行「直属上级」：上级关系形成循环：mgr-east → rep-zhangwei → mgr-east" in err
    assert staff(hub) == before and staff_log(hub) == []


def test_staff_commands_are_for_sales_ops_or_an_admin(hub, cli, tmp_path):
    path = write_csv(tmp_path, NEW_TEAM)
    code, _, err = cli("staff", "import", path, "--by", "rep-lina")
    assert code == 2 and "修改人员名单须由销售运营或管理员执行（李娜 的角色是销售代表）" in err, err
    code, _, err = cli("staff", "set", "rep-lina", "--email", "x@example.com", "--by", "legal-01")
    assert code == 2 and "法务" in err and "未修改任何数据" in err
    assert "rep-new" not in staff(hub) and staff_log(hub) == []


def test_staff_set_changes_one_person_logged(hub, cli):
    code, out, err = cli("staff", "set", "rep-lina", "--email", "li.na@example.com",
                         "--mobile", "", "--region", "华东大区", "--manager", "mgr-east",
                         "--by", "ops-01")
    assert code == 0, err
    assert out.splitlines() == [
        "人员 rep-lina 李娜：邮箱 lina@example.com → li.na@example.com；手机号 13900000012 → （空）；"
        "大区 华南大区 → 华东大区；上级 mgr-south → mgr-east",
        "已修改 4 个字段（操作人 ops-01，已记入操作日志）"]
    person = staff(hub)["rep-lina"]
    assert (person.email, person.mobile, person.region, person.manager_id) == (
        "li.na@example.com", None, "华东", "mgr-east")
    [logged] = staff_log(hub)
    assert logged.actor == "cli:ops-01" and json.loads(logged.changes)["mobile"] == [
        "13900000012", None]

    code, _, err = cli("staff", "set", "rep-lina", "--email", "li.na@example.com", "--by", "admin")
    assert code == 2 and "人员 rep-lina 没有需要修改的字段（邮箱已是 li.na@example.com）" in err
    code, _, err = cli("staff", "set", "mgr-east", "--manager", "rep-lina", "--by", "admin")
    assert code == 2 and "--manager：上级关系形成循环：mgr-east → rep-lina → mgr-east" in err, err
    code, _, err = cli("staff", "set", "nobody", "--name", "某人", "--by", "admin")
    assert code == 2 and "人员不存在：nobody" in err
    code, _, err = cli("staff", "set", "rep-lina", "--role", "boss", "--by", "admin")
    assert code == 2 and "--role：角色“boss”无效" in err
    assert len(staff_log(hub)) == 1
