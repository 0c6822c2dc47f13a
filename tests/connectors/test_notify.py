"""Pushes: the embedded push log, and the 企业微信 / 钉钉 robots against their simulators."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.base import PermanentError, TransientError
from connectors.notify import (
    DINGTALK_MAX_BYTES,
    TRUNCATION_MARKER,
    WECOM_MARKDOWN_MAX_BYTES,
    WECOM_TEXT_MAX_BYTES,
    DingTalkRobotNotifier,
    EmbeddedNotifier,
    Notifier,
    PushMessage,
    WeComRobotNotifier,
    build_notifier,
    key_hash,
    reference_for,
)
from connectors.settings import Settings
from tests.simulators.base import Faults
from tests.simulators.dingtalk_sim import DingTalkRobotSimulator, expected_sign
from tests.simulators.wecom_sim import WEBHOOK_PATH, WeComRobotSimulator
from tests.support import run_together

REPO = Path(__file__).resolve().parents[2]
WECOM_KEY = "693a91f6-7a0c-4bc4-97a0-0ec2sifa5aaa"
DING_TOKEN = "c7f1e2d3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f708192a3b4c5d6e7f809"
DING_SECRET = "SEC5a3ecf88f2b3eb50db30ecfc00f53033ac909c99bf7f88fd612bda89d7f3a9dc"
WECOM_CALL = f"POST {WEBHOOK_PATH}"
DING_CALL = "POST /robot/send"
MANAGER_MOBILE = "13800001111"
LEGAL_MOBILE = "13900002222"


def escalation(key: str = "suspect:123:escalated", **changes) -> PushMessage:
    fields = dict(
        key=key,
        title="疑似新客户待法务初审：苏州恒润精密机械有限公司",
        text=("**意向单** IO261126-4D8KQ2WZ 的客户未匹配到客户档案，已超过 24 小时未处理。\n\n"
              "> 销售：张伟　大区：华东\n\n请法务尽快完成资质初审。"),
        recipients=("legal-01", "manager-east"),
        mention_mobiles=(),
        link="http://hub.example.com/suspects/123",
    )
    fields.update(changes)
    return PushMessage(**fields)


# --- the message ----------------------------------------------------------------------------

def test_message_is_validated_and_normalised():
    message = escalation(recipients="legal-01", mention_mobiles=[MANAGER_MOBILE, MANAGER_MOBILE])
    assert message.recipients == ("legal-01",)  # a lone id is not split into characters
    assert message.mention_mobiles == (MANAGER_MOBILE,)
    for bad in (dict(key=" "), dict(title=""), dict(mention_mobiles=("张伟",)),
                dict(link="javascript:alert(1)"), dict(link="http://hub.example.com/a b")):
        with pytest.raises(ValueError):
            escalation(**bad)


# --- embedded -------------------------------------------------------------------------------

def test_embedded_records_one_push_per_key_and_returns_the_same_reference(tmp_path):
    notifier = EmbeddedNotifier(tmp_path / "pushes")
    assert isinstance(notifier, Notifier)
    reference = notifier.push(escalation(mention_mobiles=(MANAGER_MOBILE,)))
    assert reference == reference_for("embedded", "suspect:123:escalated")
    files = list((tmp_path / "pushes").iterdir())
    assert [p.name for p in files] == [f"{key_hash('suspect:123:escalated')}.json"]
    before = (files[0].stat().st_mtime_ns, files[0].read_bytes())

    # the same key again (here with another text, from another instance): nothing is written
    again = EmbeddedNotifier(tmp_path / "pushes").push(escalation(text="第二次"))
    assert again == reference
    assert list((tmp_path / "pushes").iterdir()) == files
    assert (files[0].stat().st_mtime_ns, files[0].read_bytes()) == before

    record = json.loads(files[0].read_text(encoding="utf-8"))
    assert record["key"] == "suspect:123:escalated" and record["reference"] == reference
    assert record["title"] == "疑似新客户待法务初审：苏州恒润精密机械有限公司"
    assert record["recipients"] == ["legal-01", "manager-east"]
    assert record["link"] == "http://hub.example.com/suspects/123"
    assert "[查看详情](http://hub.example.com/suspects/123)" in record["markdown"]
    assert f"@{MANAGER_MOBILE}" in record["markdown"]
    assert [r["key"] for r in notifier.list_pushes()] == ["suspect:123:escalated"]

    other = notifier.push(escalation(key="suspect:124:escalated"))
    assert other != reference
    assert [r["key"] for r in notifier.list_pushes()] == ["suspect:123:escalated",
                                                          "suspect:124:escalated"]


def test_embedded_concurrent_pushes_of_one_key_write_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="connectors.notify")
    # one instance per thread: nothing but the file system keeps them apart
    references, errors = run_together(lambda: EmbeddedNotifier(tmp_path).push(escalation()), 12)
    assert not errors
    assert set(references) == {reference_for("embedded", "suspect:123:escalated")}
    assert len(references) == 12
    assert [p.name for p in tmp_path.iterdir()] == [f"{key_hash('suspect:123:escalated')}.json"]
    assert caplog.text.count("push log: recorded") == 1  # written once, never overwritten


def test_embedded_is_idempotent_across_processes(tmp_path):
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "from connectors.notify import EmbeddedNotifier, PushMessage\n"
        "ref = EmbeddedNotifier(sys.argv[1]).push(PushMessage(key='suspect:123:escalated', "
        "title='另一个进程', text='同一个键'))\n"
        "print(ref)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(4)]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err for _, err in outputs]
    assert sum(err.count("push log: recorded") for _, err in outputs) == 1
    here = EmbeddedNotifier(tmp_path).push(escalation())
    assert {out.strip() for out, _ in outputs} == {here}
    entries = EmbeddedNotifier(tmp_path).list_pushes()
    assert len(entries) == 1 and entries[0]["title"] == "另一个进程"


def test_embedded_ignores_a_temp_file_left_by_a_crashed_writer(tmp_path):
    name = f"{key_hash('suspect:123:escalated')}.json"
    (tmp_path / f".{name}.crashed.tmp").write_text('{"reference": "half', encoding="utf-8")
    reference = EmbeddedNotifier(tmp_path).push(escalation())
    assert reference == reference_for("embedded", "suspect:123:escalated")
    assert json.loads((tmp_path / name).read_text(encoding="utf-8"))["reference"] == reference


def test_embedded_unreadable_entry_is_permanent(tmp_path):
    (tmp_path / f"{key_hash('suspect:123:escalated')}.json").write_text("{", encoding="utf-8")
    with pytest.raises(PermanentError) as err:
        EmbeddedNotifier(tmp_path).push(escalation())
    assert err.value.code == "corrupt-entry"


# --- 企业微信 -----------------------------------------------------------------------------------

def wecom(sim: WeComRobotSimulator, key: str = WECOM_KEY, **overrides) -> WeComRobotNotifier:
    kwargs = dict(base_url=sim.send_url, timeout=2.0, attempts=4, backoff_initial=0.01,
                  backoff_max=0.05)
    kwargs.update(overrides)
    return WeComRobotNotifier(SecretStr(key), **kwargs)


@pytest.fixture
def wecom_sim():
    with WeComRobotSimulator(WECOM_KEY) as simulator:
        yield simulator


def test_wecom_posts_markdown_with_title_text_and_link(wecom_sim):
    with wecom(wecom_sim) as robot:
        assert isinstance(robot, Notifier)
        reference = robot.push(escalation())
    assert reference == reference_for("wecom", "suspect:123:escalated")
    [message] = wecom_sim.messages
    assert message.key == WECOM_KEY and message.msgtype == "markdown"
    assert message.content == (
        "### 疑似新客户待法务初审：苏州恒润精密机械有限公司\n\n"
        "**意向单** IO261126-4D8KQ2WZ 的客户未匹配到客户档案，已超过 24 小时未处理。\n\n"
        "> 销售：张伟　大区：华东\n\n请法务尽快完成资质初审。\n\n"
        "[查看详情](http://hub.example.com/suspects/123)")
    assert wecom_sim.calls[WECOM_CALL] == 1


def test_wecom_mentions_go_out_as_text_with_mentioned_mobiles(wecom_sim):
    with wecom(wecom_sim) as robot:
        robot.push(escalation(mention_mobiles=(MANAGER_MOBILE, LEGAL_MOBILE)))
    [message] = wecom_sim.messages
    assert message.msgtype == "text"
    assert message.mentioned_mobiles == (MANAGER_MOBILE, LEGAL_MOBILE)
    assert message.content.startswith("【疑似新客户待法务初审：苏州恒润精密机械有限公司】\n")
    assert "**" not in message.content and "> " not in message.content  # markup removed
    assert "意向单 IO261126-4D8KQ2WZ" in message.content
    assert message.content.endswith("查看详情：http://hub.example.com/suspects/123")


def test_wecom_takes_the_whole_webhook_url_too(wecom_sim):
    with WeComRobotNotifier(f"{wecom_sim.send_url}?key={WECOM_KEY}", attempts=1) as robot:
        robot.push(escalation())
    assert len(wecom_sim.messages) == 1


def test_wecom_wrong_key_is_permanent_and_not_retried(wecom_sim, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "0000aaaa-bbbb-cccc-dddd-eeeeffff0000"
    robot = wecom(wecom_sim, key=wrong, attempts=5)
    with robot, pytest.raises(PermanentError) as err:
        robot.push(escalation())
    assert err.value.code == "93000" and err.value.provider == "wecom"
    assert wecom_sim.calls[WECOM_CALL] == 1 and wecom_sim.messages == []
    # the key is the robot's only credential: never in errors, reprs or logs
    assert wrong not in str(err.value) and wrong not in repr(robot)
    assert "HTTP Request: POST" in caplog.text  # httpx did log the call ...
    assert wrong not in caplog.text             # ... with the key redacted


def test_wecom_5xx_and_timeouts_are_retried_and_each_push_arrives_once():
    faults = Faults(rate=0.3, hang_seconds=1.5, seed=5)
    messages = [escalation(key=f"suspect:{n}:escalated", title=f"疑似新客户 {n}")
                for n in range(10)]
    with WeComRobotSimulator(WECOM_KEY, faults=faults) as sim:
        with wecom(sim, attempts=8, timeout=0.5) as robot:
            for message in messages:
                robot.push(message)
        assert sim.injected["5xx"] > 0 and sim.injected["hang"] > 0
        # faults strike before the robot posts, so the retries duplicate nothing
        assert [m.content.split("\n")[0] for m in sim.messages] == [
            f"### 疑似新客户 {n}" for n in range(10)]


def test_wecom_rate_limit_and_busy_errcodes_are_retried(wecom_sim):
    wecom_sim.throttle_next(2)
    wecom_sim.busy_next(1)
    with wecom(wecom_sim) as robot:
        robot.push(escalation())
    assert wecom_sim.refused[45009] == 2 and wecom_sim.refused[-1] == 1
    assert wecom_sim.calls[WECOM_CALL] == 4 and len(wecom_sim.messages) == 1


def test_wecom_over_the_robots_minute_limit_is_transient():
    with WeComRobotSimulator(WECOM_KEY, rate_limit=5) as sim:
        with wecom(sim, rate_limit=None, attempts=3) as robot:  # no local window
            for n in range(5):
                robot.push(escalation(key=f"k{n}"))
            with pytest.raises(TransientError) as err:
                robot.push(escalation(key="k5"))
        assert err.value.code == "45009"
        assert sim.refused[45009] == 3 and len(sim.messages) == 5


def test_wecom_local_window_keeps_under_the_limit_without_calling():
    with WeComRobotSimulator(WECOM_KEY) as sim:
        with wecom(sim, rate_limit=3, rate_window=60, max_wait=0, attempts=1) as robot:
            for n in range(3):
                robot.push(escalation(key=f"k{n}"))
            with pytest.raises(TransientError) as err:
                robot.push(escalation(key="k3"))
        assert err.value.code == "rate-limited-locally"
        assert sim.calls[WECOM_CALL] == 3 and sim.refused == {}


def test_wecom_local_window_waits_for_a_free_slot():
    with WeComRobotSimulator(WECOM_KEY) as sim:
        with wecom(sim, rate_limit=2, rate_window=0.6) as robot:
            started = time.monotonic()
            for n in range(3):
                robot.push(escalation(key=f"k{n}"))
            elapsed = time.monotonic() - started
        assert len(sim.messages) == 3
        assert elapsed >= 0.5  # the third waited for the first to leave the window


def test_wecom_over_long_text_is_cut_to_the_robots_limits(wecom_sim):
    long_text = "华东大区本月回款明细：" + "苏州恒润精密机械有限公司回款 12,800.00 元；" * 400
    with wecom(wecom_sim) as robot:
        robot.push(escalation(key="long-md", text=long_text))
        robot.push(escalation(key="long-text", text=long_text, mention_mobiles=(MANAGER_MOBILE,)))
    markdown, text = wecom_sim.messages
    assert len(markdown.content.encode()) <= WECOM_MARKDOWN_MAX_BYTES
    assert len(text.content.encode()) <= WECOM_TEXT_MAX_BYTES
    for message in (markdown, text):
        assert TRUNCATION_MARKER in message.content
        assert "http://hub.example.com/suspects/123" in message.content  # the link survives
        message.content.encode("utf-8").decode("utf-8")  # no half characters
    assert markdown.content.startswith("### 疑似新客户待法务初审")
    assert wecom_sim.refused == {}


def test_wecom_a_lost_answer_is_retried_and_shows_twice_in_the_group(wecom_sim):
    # the documented limit of robots: no idempotency key, so a retry after a lost answer
    # posts again; the hub's effects table prevents only task-level repeats
    wecom_sim.lose_answers(1, hang_seconds=1.0)
    with wecom(wecom_sim, timeout=0.3) as robot:
        reference = robot.push(escalation())
    assert reference == reference_for("wecom", "suspect:123:escalated")
    assert len(wecom_sim.messages) == 2
    assert wecom_sim.messages[0].content == wecom_sim.messages[1].content


# --- 钉钉 -------------------------------------------------------------------------------------

def dingtalk(sim: DingTalkRobotSimulator, token: str = DING_TOKEN, secret: str = DING_SECRET,
             **overrides) -> DingTalkRobotNotifier:
    kwargs = dict(base_url=sim.send_url, timeout=2.0, attempts=4, backoff_initial=0.01,
                  backoff_max=0.05)
    kwargs.update(overrides)
    return DingTalkRobotNotifier(SecretStr(token), SecretStr(secret), **kwargs)


@pytest.fixture
def ding_sim():
    with DingTalkRobotSimulator(DING_TOKEN, DING_SECRET) as simulator:
        yield simulator


def test_dingtalk_posts_signed_markdown_with_mentions(ding_sim):
    with dingtalk(ding_sim) as robot:
        assert isinstance(robot, Notifier)
        reference = robot.push(escalation(mention_mobiles=(MANAGER_MOBILE, LEGAL_MOBILE)))
    assert reference == reference_for("dingtalk", "suspect:123:escalated")
    assert ding_sim.signatures_checked == 1
    [message] = ding_sim.messages
    assert message.msgtype == "markdown"
    assert message.title == "疑似新客户待法务初审：苏州恒润精密机械有限公司"
    assert message.text.startswith("### 疑似新客户待法务初审：苏州恒润精密机械有限公司\n\n**意向单**")
    assert "[查看详情](http://hub.example.com/suspects/123)" in message.text
    assert message.at_mobiles == (MANAGER_MOBILE, LEGAL_MOBILE)
    assert message.mentioned == (MANAGER_MOBILE, LEGAL_MOBILE)  # "@mobile" is in the text
    assert message.body["at"]["isAtAll"] is False


def test_dingtalk_sign_survives_url_encoding(ding_sim):
    # find a timestamp whose Base64 signature has "+" and "/": sent un-encoded, "+" would
    # arrive as a space and the robot would answer "sign not match"
    stamp = int(time.time() * 1000)
    while not {"+", "/"} <= set(expected_sign(DING_SECRET, str(stamp))):
        stamp += 1
    with dingtalk(ding_sim, clock=lambda: stamp / 1000) as robot:
        robot.push(escalation())
    assert len(ding_sim.messages) == 1


def test_dingtalk_wrong_secret_is_permanent_with_the_robots_code(ding_sim, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "SEC0000000000000000000000000000000000000000000000000000000000000000"
    robot = dingtalk(ding_sim, secret=wrong, attempts=5)
    with robot, pytest.raises(PermanentError) as err:
        robot.push(escalation())
    assert err.value.code == "310000" and "sign not match" in str(err.value)
    assert ding_sim.calls[DING_CALL] == 1 and ding_sim.messages == []
    for secret in (wrong, DING_TOKEN):
        assert secret not in str(err.value) and secret not in repr(robot)
        assert secret not in caplog.text
    assert "access_token=***" in caplog.text


@pytest.mark.parametrize("skew_seconds", [-2 * 3600, -3601, 3 * 3600])
def test_dingtalk_timestamp_outside_the_hour_is_refused(ding_sim, skew_seconds):
    robot = dingtalk(ding_sim, clock=lambda: time.time() + skew_seconds, attempts=3)
    with robot, pytest.raises(PermanentError) as err:
        robot.push(escalation())
    assert err.value.code == "310000" and "invalid timestamp" in str(err.value)
    assert ding_sim.calls[DING_CALL] == 1 and ding_sim.messages == []


def test_dingtalk_timestamp_inside_the_hour_is_accepted(ding_sim):
    with dingtalk(ding_sim, clock=lambda: time.time() - 3500) as robot:
        robot.push(escalation())
    assert len(ding_sim.messages) == 1


def test_dingtalk_unknown_token_is_permanent(ding_sim):
    with dingtalk(ding_sim, token="not-a-token") as robot, pytest.raises(PermanentError) as err:
        robot.push(escalation())
    assert err.value.code == "300001"
    assert ding_sim.calls[DING_CALL] == 1


def test_dingtalk_5xx_and_timeouts_are_retried_and_each_push_arrives_once():
    faults = Faults(rate=0.3, hang_seconds=1.5, seed=3)
    with DingTalkRobotSimulator(DING_TOKEN, DING_SECRET, faults=faults) as sim:
        with dingtalk(sim, attempts=8, timeout=0.5) as robot:
            for n in range(10):
                robot.push(escalation(key=f"suspect:{n}:escalated", title=f"疑似新客户 {n}"))
        assert sim.injected["5xx"] > 0 and sim.injected["hang"] > 0
        assert [m.title for m in sim.messages] == [f"疑似新客户 {n}" for n in range(10)]


def test_dingtalk_send_too_fast_is_retried(ding_sim):
    ding_sim.throttle_next(2)
    with dingtalk(ding_sim) as robot:
        robot.push(escalation())
    assert ding_sim.refused["send too fast, exceed 20 times per minute"] == 2
    assert ding_sim.calls[DING_CALL] == 3 and len(ding_sim.messages) == 1


def test_dingtalk_over_the_minute_limit_throttles_the_robot_and_is_transient():
    with DingTalkRobotSimulator(DING_TOKEN, DING_SECRET, rate_limit=4,
                                penalty_seconds=600) as sim:
        with dingtalk(sim, rate_limit=None, attempts=2) as robot:
            for n in range(4):
                robot.push(escalation(key=f"k{n}"))
            with pytest.raises(TransientError) as err:
                robot.push(escalation(key="k4"))
        assert err.value.code == "130101"
        assert len(sim.messages) == 4


def test_dingtalk_over_long_text_is_cut_and_keeps_link_and_mentions(ding_sim):
    long_text = "本月返利测算：" + "常州华晟自动化设备有限公司 阶梯门槛已达成；" * 500
    with dingtalk(ding_sim) as robot:
        robot.push(escalation(text=long_text, mention_mobiles=(MANAGER_MOBILE,)))
    [message] = ding_sim.messages
    assert len(message.text.encode()) <= DINGTALK_MAX_BYTES
    assert TRUNCATION_MARKER in message.text
    assert "[查看详情](http://hub.example.com/suspects/123)" in message.text
    assert message.mentioned == (MANAGER_MOBILE,)


# --- configuration --------------------------------------------------------------------------

def test_build_notifier_follows_the_settings(tmp_path):
    base = dict(_env_file=None, data_dir=tmp_path / "data")
    embedded = build_notifier(Settings(**base))
    assert isinstance(embedded, EmbeddedNotifier)
    assert embedded.folder == (tmp_path / "data" / "pushes").resolve()

    with WeComRobotSimulator(WECOM_KEY) as sim:
        settings = Settings(**base, notify_backend="wecom", wecom_webhook_url=sim.send_url,
                            wecom_robot_key=WECOM_KEY, connector_attempts=2)
        with build_notifier(settings) as robot:
            assert isinstance(robot, WeComRobotNotifier)
            robot.push(escalation())
        assert len(sim.messages) == 1

    with DingTalkRobotSimulator(DING_TOKEN, DING_SECRET) as sim:
        settings = Settings(**base, notify_backend="dingtalk", dingtalk_url=sim.send_url,
                            dingtalk_access_token=DING_TOKEN, dingtalk_secret=DING_SECRET)
        with build_notifier(settings) as robot:
            assert isinstance(robot, DingTalkRobotNotifier)
            robot.push(escalation())
        assert len(sim.messages) == 1

    with pytest.raises(ValueError):
        build_notifier(Settings(**base, notify_backend="wecom"))  # no key configured


def test_settings_read_the_notify_block_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SALESOPS_NOTIFY_BACKEND", "dingtalk")
    monkeypatch.setenv("SALESOPS_DINGTALK_ACCESS_TOKEN", DING_TOKEN)
    monkeypatch.setenv("SALESOPS_DINGTALK_SECRET", DING_SECRET)
    settings = Settings(_env_file=None, data_dir=tmp_path)
    assert settings.notify_backend == "dingtalk"
    assert settings.dingtalk_secret.get_secret_value() == DING_SECRET
    assert DING_SECRET not in repr(settings)
    assert settings.wecom_webhook_url == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
