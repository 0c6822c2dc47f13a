"""Publishing and reading back rebate policies against a real database: the checks publish
and validate share (measure kept, confirmed months, identical and case-only codes, unknown
master data, dates left uncovered), `rebates show`, and the CLI's Chinese refusals."""
from __future__ import annotations

import contextlib
import hashlib
import datetime as dt
import json
import sqlite3

import pytest
from fastapi.testclient import TestClient

import flows.policies
from api.app import create_app
from api.auth import issue_token
from connectors.settings import get_settings
from flows.policies import PublishError, UnknownPolicy, policy_version
from flows.settlement import SettlementError, parse_month
from models import SettlementRun, utcnow
from models.db import session_scope
from models.rebates.policy import PolicyDocumentError
from tests.rebate_support import clock_from, customer_id, publish, signed_order
from tests.support import in_process_cli

POLICY = """\
code: T-PUB
name: 测试返利政策
effective_from: 2026-10-01
effective_to: 2026-12-31
rules:
  - id: flat
    name: 基础返利
    applies_to: {product_lines: [监护], customer_tiers: [A, B], regions: [华东]}
    measure: quantity
    period: quarter
    style: marginal
    tiers: [{from: 0, to: 10, rate: 1%}, {from: 10, rate: 2%}]
    priority: 1
    stacking: exclusive
"""


def confirm(db_url: str, month: str) -> None:
    with session_scope(db_url) as s:
        s.add(SettlementRun(month=month, revision=1, kind="initial", status="confirmed",
                            as_of=utcnow(), created_by="test", confirmed_by="finance-01"))


@pytest.fixture
def cli(hub, monkeypatch, capsys, tmp_path):
    """Run `salesops …` in this process against the test database: (exit code, out, err)."""
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, tmp_path / "data")


def doc(tmp_path, text: str, name: str = "policy.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------- publish

def test_publishing_a_changed_measure_is_refused_in_chinese(cli, tmp_path):
    assert cli("rebates", "publish", doc(tmp_path, POLICY), "--by", "ops-01")[0] == 0
    changed = POLICY.replace("measure: quantity", "measure: amount").replace(
        "effective_from: 2026-10-01", "effective_from: 2026-11-01")
    code, out, err = cli("rebates", "publish", doc(tmp_path, changed, "v2.yaml"),
                         "--by", "ops-01")
    assert code == 2 and out == ""
    assert "有 1 处问题，未发布" in err and "rules[0].measure" in err
    assert "Traceback" not in err


def test_publishing_the_same_document_twice_is_refused(hub):
    assert publish(hub.db_url, POLICY).version == 1
    with pytest.raises(PublishError, match="与已发布的 T-PUB 第 1 版内容相同") as info:
        publish(hub.db_url, "# 只改了注释\n" + POLICY.replace("[A, B]", "[A, B, A]")
                .replace("[监护]", "[ 监护 ]"))
    assert info.value.status == 409
    assert publish(hub.db_url, POLICY.replace("rate: 2%", "rate: 3%")).version == 2


def test_a_code_differing_only_by_case_is_refused(hub):
    publish(hub.db_url, POLICY)
    with pytest.raises(PublishError, match="只有大小写不同：修订该政策请沿用 T-PUB"):
        publish(hub.db_url, POLICY.replace("code: T-PUB", "code: t-pub"))
    assert publish(hub.db_url, POLICY.replace("code: T-PUB", "code: T-PUB2")).version == 1


def test_unknown_master_data_is_published_with_warnings(hub):
    text = POLICY.replace(
        "applies_to: {product_lines: [监护], customer_tiers: [A, B], regions: [华东]}",
        "applies_to: {product_lines: [监护仪], customer_tiers: [A级, B], regions: [华东区],"
        " skus: [mon-m12]}\n    exclude: {customers: [不存在的公司, 91320500MA1K2D3F5H]}")
    done = publish(hub.db_url, text)
    assert done.version == 1
    warnings = {(w["field"], w["message"].split("“")[1].split("”")[0]): w["message"]
                for w in done.as_dict()["warnings"]}
    assert set(warnings) == {("rules[0].applies_to.product_lines", "监护仪"),
                             ("rules[0].applies_to.customer_tiers", "A级"),
                             ("rules[0].applies_to.regions", "华东区"),
                             ("rules[0].applies_to.skus", "mon-m12"),
                             ("rules[0].exclude.customers", "不存在的公司")}
    assert "是否应为 MON-M12？" in warnings[("rules[0].applies_to.skus", "mon-m12")]


def test_a_version_ending_early_warns_of_the_dates_left_without_a_version(hub, cli, tmp_path):
    publish(hub.db_url, POLICY)
    shorter = POLICY.replace("effective_from: 2026-10-01", "effective_from: 2026-11-01").replace(
        "effective_to: 2026-12-31", "effective_to: 2026-11-30")
    code, out, _ = cli("rebates", "publish", doc(tmp_path, shorter), "--by", "ops-01")
    assert code == 0 and "第 2 版" in out
    assert "请注意（不影响发布）" in out
    assert "发布后 T-PUB 在 2026-12-01 至 2026-12-31 期间没有生效的版本" in out


def test_the_confirmed_month_is_read_in_the_publishing_transaction(hub, monkeypatch):
    real = flows.policies.session_scope

    @contextlib.contextmanager
    def confirmed_meanwhile(url):
        confirm(url, "2026-10")  # finance confirms October just before the insert's transaction
        with real(url) as s:
            yield s

    monkeypatch.setattr(flows.policies, "session_scope", confirmed_meanwhile)
    with pytest.raises(PublishError, match="已确认至 2026-10-31"):
        publish(hub.db_url, POLICY)


def test_bad_documents_through_the_api_are_422_not_500(hub):
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        auth = {"Authorization": f"Bearer {issue_token(hub.settings, 'ops-01')}",
                "Content-Type": "text/plain"}
        for body in ("[" * 50_000, POLICY.replace("to: 10,", "to: 1e400,"),
                     POLICY.replace("name: 测试", "name：测试")):
            r = client.post("/rebates/policies", content=body.encode(), headers=auth)
            assert r.status_code == 422, r.text


# --------------------------------------------------------------------------- validate

def test_validate_prints_chinese_labels_and_what_publish_would_warn(cli, tmp_path):
    text = POLICY.replace("[华东]", "[华东区]")
    code, out, _ = cli("rebates", "validate", doc(tmp_path, text))
    assert code == 0
    assert "数量，按季，分段累进，2 档，优先级 1，互斥" in out
    assert "quantity" not in out and "marginal" not in out
    assert "可发布为第 1 版" in out and "大区“华东区”不在主数据中（是否应为 华东？）" in out


def test_validate_applies_the_publish_checks(hub, cli, tmp_path):
    publish(hub.db_url, POLICY)
    path = doc(tmp_path, POLICY)
    code, _, err = cli("rebates", "validate", path)
    assert code == 2 and "与已发布的 T-PUB 第 1 版内容相同" in err
    changed = POLICY.replace("measure: quantity", "measure: amount")
    code, _, err = cli("rebates", "validate", doc(tmp_path, changed))
    assert code == 2 and "rules[0].measure" in err
    code, _, err = cli("rebates", "validate", doc(tmp_path, POLICY.replace("T-PUB", "t-pub")))
    assert code == 2 and "只有大小写不同" in err
    confirm(hub.db_url, "2026-10")
    later = POLICY.replace("rate: 2%", "rate: 3%")
    code, _, err = cli("rebates", "validate", doc(tmp_path, later))
    assert code == 2 and "已确认至 2026-10-31" in err


def test_validate_without_a_database_says_the_checks_were_skipped(cli, monkeypatch, tmp_path):
    path = doc(tmp_path, POLICY)
    for url in (f"sqlite:///{tmp_path / 'missing.db'}", f"sqlite:///{tmp_path / 'empty.db'}"):
        if "empty" in url:
            sqlite3.connect(tmp_path / "empty.db").close()
        monkeypatch.setenv("SALESOPS_DATABASE_URL", url)
        get_settings.cache_clear()
        code, out, _ = cli("rebates", "validate", path)
        assert code == 0 and "校验通过" in out
        assert "数据库尚未初始化：未核对已发布的版本、已确认结算的月份和主数据" in out
    assert not (tmp_path / "missing.db").exists()  # validating creates no database


# --------------------------------------------------------------------------- show

def test_show_reads_back_a_published_version(hub, cli):
    publish(hub.db_url, POLICY)
    publish(hub.db_url, POLICY.replace("effective_from: 2026-10-01",
                                       "effective_from: 2026-12-01"))
    first = policy_version(hub.db_url, "T-PUB", 1)
    assert first["document"] == POLICY and first["versions"] == [1, 2]
    assert first["governs"] == {"from": "2026-10-01", "to": "2026-11-30"}
    assert first["published_by"] == "ops-01" and first["published_by_name"]
    assert len(first["sha256"]) == 64 and first["spec"]["code"] == "T-PUB"
    assert policy_version(hub.db_url, "T-PUB")["version"] == 2
    code, out, _ = cli("rebates", "show", "T-PUB", "--version", "1")
    assert code == 0
    assert "T-PUB 第 1 版《测试返利政策》" in out and "适用订单日期：2026-10-01 至 2026-11-30" in out
    assert "文档生效期：2026-10-01 至 2026-12-31" in out and first["sha256"] in out
    assert out.endswith(POLICY)
    code, out, _ = cli("rebates", "show", "T-PUB", "--json")
    assert code == 0 and json.loads(out)["version"] == 2


def test_show_an_unknown_policy_or_version(hub, cli):
    publish(hub.db_url, POLICY)
    with pytest.raises(UnknownPolicy, match=r"T-PUB 没有第 5 版（已发布：第 1 版）") as info:
        policy_version(hub.db_url, "T-PUB", 5)
    assert info.value.status == 404
    code, _, err = cli("rebates", "show", "t-pub")
    assert code == 2 and "没有已发布的返利政策 t-pub（是否应为 T-PUB？）" in err


# --------------------------------------------------------------------------- files, months

def test_unreadable_files_are_explained_in_chinese(cli, tmp_path):
    code, _, err = cli("rebates", "validate", tmp_path / "nofile.yaml")
    assert code == 2 and err.strip().endswith("nofile.yaml：文件不存在")
    code, _, err = cli("rebates", "publish", tmp_path, "--by", "ops-01")
    assert code == 2 and err.strip().endswith("这是一个目录，不是文件")
    code, _, err = cli("customers", "match", "--file", tmp_path / "names.txt")
    assert code == 2 and "无法读取查询文件" in err and err.strip().endswith("文件不存在")


def test_months_outside_the_hubs_calendar_are_refused(cli, tmp_path):
    code, _, err = cli("rebates", "replay", "--policy", doc(tmp_path, POLICY),
                       "--from", "9999-12", "--to", "9999-12")
    assert code == 2 and "月份须在 2000-01 至 2099-12 之间" in err
    for month in ("1999-12", "2100-01", "0001-01"):
        with pytest.raises(SettlementError, match="月份须在"):
            parse_month(month)
    assert parse_month("2099-12") == (dt.date(2099, 12, 1), dt.date(2099, 12, 31))


def test_document_problems_from_publish_keep_their_type(hub):
    publish(hub.db_url, POLICY)
    with pytest.raises(PolicyDocumentError):
        publish(hub.db_url, POLICY.replace("measure: quantity", "measure: amount").replace(
            "rate: 2%", "rate: 3%"))


def test_replay_says_what_publishing_would_say_before_its_figures(hub, cli, tmp_path):
    publish(hub.db_url, POLICY)
    kangda = customer_id(hub.db_url, "江苏康达医疗设备有限公司")
    signed_order(hub.db_url, kangda, dt.date(2026, 10, 10), [("MON-M8", 12)])
    draft = POLICY.replace("code: T-PUB", "code: t-pub").replace("[监护]", "[监护仪]")
    code, out, err = cli("rebates", "replay", "--policy", doc(tmp_path, draft),
                         "--from", "2026-10", "--to", "2026-10")
    assert code == 0, err
    notes = out.split("现行政策合计")[0]
    assert "注意：按此草稿发布将被拒绝" in notes and "T-PUB" in notes  # a case-only twin
    assert "监护仪" in notes  # a product line no master data has
    clock_from(dt.date(2026, 11, 20))
    code, out, _ = cli("rebates", "replay", "--policy", doc(tmp_path, POLICY), "--from",
                       "2026-10", "--to", "2026-11", "--json")
    assert code == 0 and any("2026-11 尚未结束" in n for n in json.loads(out)["notes"])
    code, out, _ = cli("rebates", "replay", "--policy", doc(tmp_path, POLICY), "--from",
                       "2026-10", "--to", "2026-12", "--json")
    assert code == 0 and "2026-12 尚未开始，2026-11 尚未结束：只含目前已签约并发货的订单" in \
        json.loads(out)["notes"]


def test_a_rep_may_not_publish_and_is_told_in_chinese(hub):
    from flows.policies import publish_policy
    from models import Staff

    db_url = hub.db_url
    with session_scope(db_url) as s:
        rep = s.get(Staff, "rep-zhangwei")
    with pytest.raises(PublishError, match=f"（{rep.name} 的角色是销售代表）") as refused:
        publish_policy(db_url, POLICY, rep)
    assert refused.value.status == 403


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_the_sha256_shown_is_that_of_the_clerks_file(hub, cli, tmp_path, encoding):
    """A policy saved by Windows Notepad (GBK, or UTF-8 with a BOM) is published as its text;
    the sha256 `show` prints is the file's own, so `sha256sum` of her file finds the version
    that went live."""
    path = tmp_path / "policy.yaml"
    path.write_bytes(POLICY.encode(encoding))
    assert cli("rebates", "publish", str(path), "--by", "ops-01")[0] == 0
    shown = policy_version(hub.db_url, "T-PUB", 1)
    assert shown["document"] == POLICY
    assert shown["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_api_stores_the_sha256_of_the_body_as_sent(hub):
    body = b"\xef\xbb\xbf" + POLICY.encode("utf-8")  # a BOM, as some editors write it
    with TestClient(create_app(hub.settings)) as client:
        r = client.post("/rebates/policies", content=body, headers={
            "Content-Type": "text/plain; charset=utf-8",
            "Authorization": f"Bearer {issue_token(hub.settings, 'ops-01')}"})
    assert r.status_code == 201, r.text
    shown = policy_version(hub.db_url, "T-PUB", 1)
    assert shown["document"] == POLICY and shown["sha256"] == hashlib.sha256(body).hexdigest()
