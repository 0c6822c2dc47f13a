"""A careless admin's short server key: staff tokens (HMAC under `auth_secret`) and signing
links (HMAC under `signing_secret`) could be forged by anyone who holds one token and guesses
the key offline (a rep guessing "changeme" mints an admin's token). Such a key is refused at
start, naming the variable, never the value."""
from __future__ import annotations

import pytest

from connectors.settings import Settings, SettingsInvalid, get_settings


@pytest.mark.parametrize("variable", ["SALESOPS_AUTH_SECRET", "SALESOPS_SIGNING_SECRET"])
def test_a_short_server_key_is_refused_naming_the_variable(monkeypatch, tmp_path, variable):
    monkeypatch.chdir(tmp_path)  # no .env of the working directory
    monkeypatch.setenv(variable, "changeme")
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsInvalid) as caught:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert variable in str(caught.value) and "changeme" not in str(caught.value)


def test_a_long_random_key_and_no_key_are_accepted(tmp_path):
    Settings(_env_file=None, data_dir=tmp_path, auth_secret="x" * 64)
    Settings(_env_file=None, data_dir=tmp_path)
