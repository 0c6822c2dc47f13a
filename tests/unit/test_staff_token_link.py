"""`salesops staff token`: the token for programs, and the login link for the phone pages
(the links in pushes carry no token)."""
from __future__ import annotations

import pytest

from api.auth import token_staff_id
from connectors.settings import get_settings
from tests.support import in_process_cli


@pytest.fixture
def cli(hub, monkeypatch, capsys):
    monkeypatch.setenv("SALESOPS_PUBLIC_BASE_URL", "https://hub.example.cn/")
    yield from in_process_cli(monkeypatch, capsys, hub.db_url, hub.settings.data_dir)


def test_the_token_comes_with_the_phone_login_link(cli):
    code, out, err = cli("staff", "token", "rep-zhangwei")
    token = out.strip()
    assert code == 0 and token_staff_id(get_settings(), token) == "rep-zhangwei"
    assert f"手机页面登录链接（打开一次即可登录）：https://hub.example.cn/rebates/board?token={token}" \
        in err


def test_someone_with_no_board_gets_a_link_to_his_to_dos(cli):
    code, out, err = cli("staff", "token", "legal-01")
    assert code == 0
    assert f"手机页面登录链接（打开一次即可登录）：https://hub.example.cn/todos?token={out.strip()}" \
        in err


def test_a_token_life_outside_a_day_and_a_year_is_refused(cli):
    for days in ("0", "-5", "400"):
        code, out, err = cli("staff", "token", "rep-zhangwei", "--days", days)
        assert (code, out) == (2, "") and f"--days 有效天数须在 1–366 之间，不能是 {days}" in err
