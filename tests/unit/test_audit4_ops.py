"""Audit round 4, operations: what the ops engineer meets when the configuration is wrong, the
database cannot be reached, or `salesops serve` is started from another directory."""
from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(tmp_path, *args, cwd=None, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith("SALESOPS_")}
    full.update({"SALESOPS_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run([sys.executable, "-m", "deployments.cli", *args], cwd=cwd or ROOT,
                          env=full, capture_output=True, text=True, timeout=120)


def test_invalid_settings_are_named_in_chinese_without_their_values(tmp_path):
    """A mistyped port and a sender list that is not a JSON object: one Chinese message naming
    both variables, exit 2, no traceback, and the secret never echoed."""
    run = cli(tmp_path, "migrate", SALESOPS_API_PORT="80a",
              SALESOPS_WEBHOOK_SENDERS='["topsecret-4711"]', SALESOPS_EMAIL_BACKEND="smtps")
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and run.stderr.startswith("错误：")
    assert "SALESOPS_API_PORT" in run.stderr and "SALESOPS_WEBHOOK_SENDERS" in run.stderr
    assert "SALESOPS_EMAIL_BACKEND" in run.stderr and "outbox" in run.stderr  # the choices
    assert "topsecret-4711" not in run.stderr + run.stdout
    assert not (tmp_path / "data" / "salesops.db").exists()


def test_a_sender_list_that_is_not_json_is_named(tmp_path):
    run = cli(tmp_path, "staff", "token", "rep-zhangwei",
              SALESOPS_WEBHOOK_SENDERS='{"portal": "s3cr3t-99"')
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "SALESOPS_WEBHOOK_SENDERS" in run.stderr and "JSON" in run.stderr
    assert "s3cr3t-99" not in run.stderr


def test_a_process_reading_bad_settings_logs_no_secret(monkeypatch):
    """The API and the flow runs read settings too: what their logs show of the error (the
    traceback) names the variable and carries no value."""
    from connectors.settings import SettingsInvalid, get_settings

    monkeypatch.setenv("SALESOPS_WEBHOOK_SENDERS", '{"portal": ["topsecret-4711"]}')
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsInvalid) as caught:
            get_settings()
    finally:
        get_settings.cache_clear()
    shown = "".join(traceback.format_exception(caught.value))
    assert "SALESOPS_WEBHOOK_SENDERS" in shown and "topsecret-4711" not in shown


def test_serve_hands_its_settings_to_the_processes_it_starts(tmp_path, monkeypatch):
    """`salesops serve` run from /srv/hub with a `.env` there and a relative data dir: the API
    and the served flow runs (started from the repository root) use the same database, data
    dir and webhook senders as the command that migrated the database."""
    import socket

    import deployments.stack as stack
    from connectors.settings import Settings, get_settings
    from deployments import cli

    here = tmp_path / "srv"
    here.mkdir()
    (here / ".env").write_text('SALESOPS_DATA_DIR=hubdata\n'
                               'SALESOPS_WEBHOOK_SENDERS={"portal": "portal-secret"}\n'
                               'SALESOPS_SELLER_NAME=苏州示例医疗器械有限公司\n', encoding="utf-8")
    for name in [k for k in os.environ if k.startswith("SALESOPS_")]:
        monkeypatch.delenv(name)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SALESOPS_API_PORT", str(port))
    monkeypatch.chdir(here)
    seen = {}

    class Stack:
        def __init__(self, data_dir, env, **kwargs):
            seen.update(env)
            raise RuntimeError("stop before starting anything")

    monkeypatch.setattr(stack, "LocalStack", Stack)
    get_settings.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="stop before"):
            cli.cmd_serve(type("Args", (), {"limit": 1})())
        ours = get_settings().db_url
    finally:
        get_settings.cache_clear()
    assert (here / "hubdata" / "salesops.db").exists()  # what serve migrated
    # a child process: started in the repository root, with the environment serve gives it
    elsewhere = tmp_path / "root"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for name, value in seen.items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.data_dir.resolve() == here / "hubdata"
    assert child.db_url == ours == f"sqlite:///{here / 'hubdata' / 'salesops.db'}"
    assert child.api_port == port and child.seller_name == "苏州示例医疗器械有限公司"
    assert {k: v.get_secret_value() for k, v in child.webhook_senders.items()} == {
        "portal": "portal-secret"}


def test_a_relative_sqlite_url_is_fixed_where_the_command_runs(tmp_path, monkeypatch):
    from connectors.settings import Settings

    monkeypatch.chdir(tmp_path)
    settings = Settings(database_url="sqlite:///db/hub.db")
    assert settings.db_url == f"sqlite:///{tmp_path / 'db' / 'hub.db'}"
    assert Settings(database_url="sqlite:///:memory:").db_url == "sqlite:///:memory:"


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_database_that_cannot_be_reached_is_said_in_words(tmp_path):
    url = f"postgresql+psycopg://hub:pw-secret-778@127.0.0.1:{closed_port()}/salesops"
    run = cli(tmp_path, "migrate", SALESOPS_DATABASE_URL=url)
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr and run.stderr.startswith("错误：无法连接数据库")
    assert "SALESOPS_DATABASE_URL" in run.stderr and "127.0.0.1" in run.stderr
    assert "原始信息：connection" in run.stderr  # the driver's own reason
    assert "pw-secret-778" not in run.stderr


@pytest.mark.parametrize("url", ["not a url", "mysql://hub:pw-secret-778@db/salesops",
                                 "oracle+nothing://x@y/z"])
def test_a_database_url_the_hub_cannot_use_is_named(tmp_path, url):
    run = cli(tmp_path, "staff", "token", "rep-zhangwei", SALESOPS_DATABASE_URL=url)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and run.stderr.startswith("错误：")
    assert "SALESOPS_DATABASE_URL" in run.stderr and "pw-secret-778" not in run.stderr


def test_a_data_dir_that_cannot_be_made_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    run = cli(tmp_path, "migrate", SALESOPS_DATA_DIR=str(blocker / "data"))
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and str(blocker / "data") in run.stderr


def test_the_usual_postgresql_url_forms_use_the_installed_driver():
    from connectors.settings import Settings

    for url in ("postgres://hub@db:5432/salesops", "postgresql://hub@db:5432/salesops"):
        assert Settings(database_url=url).db_url == "postgresql+psycopg://hub@db:5432/salesops"
    kept = "postgresql+psycopg://hub@db/salesops"
    assert Settings(database_url=kept).db_url == kept


@pytest.mark.parametrize("host, url", [("127.0.0.1", "http://127.0.0.1:8123"),
                                       ("0.0.0.0", "http://127.0.0.1:8123"),
                                       ("10.20.30.40", "http://10.20.30.40:8123"),
                                       ("::", "http://[::1]:8123"),
                                       ("fd00::5", "http://[fd00::5]:8123")])
def test_serve_checks_the_api_where_it_listens(tmp_path, host, url):
    """SALESOPS_API_HOST set to the machine's own address: the API does not listen on
    127.0.0.1, so serve must wait for it (and print it) at that address."""
    from deployments.stack import LocalStack

    assert LocalStack(tmp_path, {}, api_port=8123, api_host=host).api_url == url


def test_an_ipv6_api_host_is_not_taken_for_a_busy_port():
    import socket

    from deployments.cli import _port_taken

    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        port = sock.getsockname()[1]
    assert not _port_taken("::1", port)
    with socket.socket(socket.AF_INET6) as held:
        held.bind(("::1", 0))
        held.listen()
        assert _port_taken("::1", held.getsockname()[1])


def test_the_demo_does_not_empty_a_folder_it_did_not_make(tmp_path, monkeypatch, capsys):
    """`salesops demo --data-dir var` (the hub's real data dir) or `--data-dir .` must not
    delete the database, the signing keys or the checkout: only a folder a demo made."""
    import deployments.demo as demo
    from deployments import cli

    real = tmp_path / "var"
    (real / "pki").mkdir(parents=True)
    (real / "salesops.db").write_bytes(b"production")
    (real / "pki" / "auth-secret.key").write_bytes(b"key")
    started = []

    class Stack:
        def __init__(self, data_dir, env):
            started.append(data_dir)
            raise RuntimeError("stop before starting anything")

    monkeypatch.setattr(demo, "LocalStack", Stack)
    code = cli.cmd_demo(type("Args", (), {"data_dir": str(real), "json": False})())
    assert code == 1 and not started
    assert (real / "salesops.db").read_bytes() == b"production"
    assert (real / "pki" / "auth-secret.key").exists()
    err = capsys.readouterr().err
    assert "演示失败" in err and str(real) in err and "不会清空" in err
    # a folder an earlier demo made is emptied and used again
    made = tmp_path / "demo"
    with pytest.raises(RuntimeError, match="stop before"):
        demo.run_demo(made)
    (made / "left-over.txt").write_text("x")
    with pytest.raises(RuntimeError, match="stop before"):
        demo.run_demo(made)
    assert not (made / "left-over.txt").exists() and started == [made, made]


def test_serve_says_in_chinese_which_part_did_not_start(tmp_path):
    import subprocess as sp

    from deployments.stack import wait_until

    log = tmp_path / "api.log"
    log.write_text("ImportError: no module named foo\n")
    proc = sp.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    with pytest.raises(RuntimeError) as early:
        wait_until(lambda: False, 5, "API", proc, log)
    assert str(early.value).startswith("API 提前退出（退出码 3）") and "no module" in str(early.value)
    with pytest.raises(TimeoutError) as late:
        wait_until(lambda: False, 0, "Prefect 服务")
    assert str(late.value) == "Prefect 服务 0 秒内未就绪"


def test_serve_stops_and_says_so_when_a_part_it_started_dies(tmp_path, capsys):
    """The Prefect server or the API exits on its own while `salesops serve` runs: serve must
    not sit there looking healthy; it stops the rest and exits non-zero (a supervisor
    restarts it), naming the part and its log."""
    import subprocess as sp

    from deployments import cli
    from deployments.stack import LocalStack

    stack = LocalStack(tmp_path, {}, api_port=1)
    proc = sp.Popen([sys.executable, "-c", "raise SystemExit(7)"])
    proc.wait()
    stack.procs.append(("api", proc))
    assert stack.exited() == [("api", 7)]
    assert cli._wait_for_stop(stack, every=0.01) == 1
    err = capsys.readouterr().err
    assert "api" in err and "7" in err and str(tmp_path / "logs" / "api.log") in err


def test_a_prefect_api_url_with_a_trailing_slash_is_the_same_server(tmp_path):
    from deployments.stack import LocalStack

    stack = LocalStack(tmp_path, {}, api_port=1, prefect_api_url="http://prefect:4200/api/")
    assert stack.prefect_api_url == "http://prefect:4200/api"
    assert stack.prefect_ui_url == "http://prefect:4200"


def test_ctrl_c_during_a_command_is_a_short_message_not_a_traceback(monkeypatch, capsys):
    from deployments import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_seed", interrupted)
    with pytest.raises(SystemExit) as ended:
        cli.main(["seed"])
    assert ended.value.code == 130
    assert capsys.readouterr().err.startswith("已中断")


@pytest.mark.parametrize("value", ["0", "-2"])
def test_serve_refuses_a_limit_below_one_before_starting_anything(value, capsys):
    from deployments import cli

    with pytest.raises(SystemExit) as ended:
        cli.build_parser().parse_args(["serve", "--limit", value])
    assert ended.value.code == 2 and "至少为 1" in capsys.readouterr().err


def api_alone(tmp_path, db_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESOPS_")}
    env.update({"SALESOPS_DATA_DIR": str(tmp_path / "data"), "SALESOPS_DATABASE_URL": db_url})
    return subprocess.run([sys.executable, "-c", "import api.main"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_api_alone_refuses_to_start_on_a_database_not_migrated(tmp_path):
    """`uvicorn api.main:app` (workers mode) after a release upgrade without `salesops
    migrate`: one clear line at start, not a 500 on every webhook."""
    from models.db import downgrade, migrate, schema_revisions

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    run = api_alone(tmp_path, url)
    assert run.returncode != 0 and "salesops migrate" in run.stderr
    assert "未初始化" in run.stderr
    migrate(url)
    downgrade(url, schema_revisions()[-2])
    run = api_alone(tmp_path, url)
    assert run.returncode != 0 and "salesops migrate" in run.stderr
    assert schema_revisions()[-2] in run.stderr
    migrate(url)
    assert api_alone(tmp_path, url).returncode == 0


def test_the_demo_with_a_bad_setting_names_it_without_the_value(tmp_path):
    run = cli(tmp_path, "demo", "--data-dir", str(tmp_path / "demo"),
              SALESOPS_WEBHOOK_SENDERS='["topsecret-4711"]')
    assert run.returncode == 2 and "SALESOPS_WEBHOOK_SENDERS" in run.stderr
    assert "topsecret-4711" not in run.stderr + run.stdout and "Traceback" not in run.stderr
    assert not (tmp_path / "demo").exists()


def test_serve_uses_the_prefect_server_of_the_active_prefect_profile(tmp_path, monkeypatch):
    """`prefect config set PREFECT_API_URL=…` (the profile, not the environment) is how ops
    usually point Prefect at the team's server: serve must use it, not start its own."""
    from deployments import cli

    profiles = tmp_path / "profiles.toml"
    profiles.write_text('active = "team"\n[profiles.team]\n'
                        'PREFECT_API_URL = "http://prefect.internal:4200/api"\n')
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(profiles))
    assert cli._configured_prefect_api_url() == "http://prefect.internal:4200/api"
    monkeypatch.setenv("PREFECT_API_URL", "http://other:4200/api")
    assert cli._configured_prefect_api_url() == "http://other:4200/api"
    monkeypatch.delenv("PREFECT_API_URL")
    profiles.write_text('active = "local"\n[profiles.local]\n')
    assert cli._configured_prefect_api_url() is None


def test_serve_stops_everything_when_its_terminal_goes_away(tmp_path):
    """An SSH session that drops sends SIGHUP: serve must stop what it started (the children
    run in their own sessions and would otherwise keep the port and the database)."""
    import signal

    from deployments import cli
    from deployments.stack import STOP_SIGNALS, LocalStack

    import threading

    assert signal.SIGHUP in STOP_SIGNALS
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        # to this thread, which blocks it (pending until taken): sent to the process, any
        # other thread of the test run (Prefect's, a server's) could take it and end the run
        signal.pthread_kill(threading.get_ident(), signal.SIGHUP)
        assert cli._wait_for_stop(LocalStack(tmp_path, {}, api_port=1), every=5) == 0
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def stamp(url: str, revision: str) -> None:
    import sqlalchemy as sa

    from models.db import get_engine

    with get_engine(url).begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def test_a_database_of_a_newer_release_is_explained_not_a_traceback(tmp_path):
    """A release rolled back without `migrate --down-to` first (the documented order): the
    older `salesops migrate` and API say what happened and what to do."""
    from models.db import migrate, schema_revisions

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    migrate(url)
    stamp(url, "0099")
    head = schema_revisions()[-1]
    run = cli(tmp_path, "migrate", SALESOPS_DATABASE_URL=url)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "0099" in run.stderr and f"migrate --down-to {head}" in run.stderr
    run = api_alone(tmp_path, url)
    assert run.returncode != 0 and f"migrate --down-to {head}" in run.stderr


def test_a_sender_with_an_empty_secret_is_refused_not_trusted(tmp_path):
    """{"portal": ""} (a template that left the secret out) would accept any body signed with
    the empty key: an unauthenticated door. The hub refuses to start with it."""
    run = cli(tmp_path, "migrate", SALESOPS_WEBHOOK_SENDERS='{"portal": "  ", "erp": "ok-secret"}')
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "SALESOPS_WEBHOOK_SENDERS" in run.stderr and "portal" in run.stderr
    assert "密钥为空" in run.stderr and "ok-secret" not in run.stderr


def test_make_clean_leaves_the_hubs_data_alone():
    """`var` is the default data dir: the database, the signing keys (pki), quotes and signed
    contracts. Resetting the virtualenv must not delete them; the demo's folder may go."""
    import re

    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^clean:.*\n((?:\t.*\n)+)", text, re.M).group(1)
    removed = {w for line in recipe.splitlines() for w in line.split()[2:]
               if line.split()[:2] == ["rm", "-rf"]}
    assert "var" not in removed and "var/" not in removed
    assert "var/demo" in removed and "$(VENV)" in removed


@pytest.mark.parametrize("host, words", [("no-such-host.invalid", "无法解析"),
                                         ("192.0.2.77", "不是本机的地址")])
def test_serve_on_an_address_this_machine_does_not_have_says_so(tmp_path, host, words):
    """A mistyped SALESOPS_API_HOST is not "the port is taken"."""
    run = cli(tmp_path, "serve", SALESOPS_API_HOST=host, SALESOPS_API_PORT="18999")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "SALESOPS_API_HOST" in run.stderr and words in run.stderr and host in run.stderr
    assert "已被占用" not in run.stderr
    assert not (tmp_path / "data" / "logs").exists()


def test_a_demo_that_times_out_says_so_in_chinese():
    from deployments.demo import wait_for

    with pytest.raises(TimeoutError) as late:
        wait_for(None, "secret", ["IO1"], {"quoted"}, 0)
    assert "秒后仍有订单未到达状态 quoted" in str(late.value)


def test_serve_warns_when_customers_get_links_only_this_machine_opens(tmp_path):
    """Listening for the network (SALESOPS_API_HOST=0.0.0.0) with the default public address:
    every quote's QR code and signing link would point at 127.0.0.1."""
    from connectors.settings import Settings
    from deployments import cli

    exposed = Settings(_env_file=None, data_dir=tmp_path, api_host="0.0.0.0")
    warning = cli._public_url_warning(exposed, "http://127.0.0.1:8000")
    assert warning and "SALESOPS_PUBLIC_BASE_URL" in warning and "127.0.0.1" in warning
    local = Settings(_env_file=None, data_dir=tmp_path)
    assert cli._public_url_warning(local, "http://127.0.0.1:8000") is None
    assert cli._public_url_warning(Settings(
        _env_file=None, data_dir=tmp_path, api_host="0.0.0.0",
        public_base_url="https://hub.example.com"), "http://127.0.0.1:8000") is None
    # listening on the machine's own address: the links carry that address (serve's default)
    lan = Settings(_env_file=None, data_dir=tmp_path, api_host="10.1.2.3")
    assert cli._public_url_warning(lan, "http://10.1.2.3:8000") is None


def test_a_restart_keeps_the_log_that_explains_the_crash(tmp_path):
    """serve exits when a part dies and a supervisor starts it again: the part's log from the
    run that crashed must still be there, not replaced by the new run's."""
    from deployments.stack import LocalStack

    stack = LocalStack(tmp_path, {}, api_port=1)
    first, log = stack._spawn("api", [sys.executable, "-c", "print('first run crashed here')"])
    first.wait()
    again = LocalStack(tmp_path, {}, api_port=1)
    second, _ = again._spawn("api", [sys.executable, "-c", "print('second run')"])
    second.wait()
    text = log.read_text()
    assert "first run crashed here" in text and "second run" in text
    assert text.index("first run") < text.index("second run")
