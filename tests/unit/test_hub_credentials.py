"""A provider backend chosen without its credentials is refused when the hub is built,
naming the variables, not at the provider's first call an order or a push later."""
from __future__ import annotations

import pytest

from connectors.base import PermanentError
from connectors.settings import Settings
from flows.hub import build_hub


@pytest.mark.parametrize("chosen, named", [
    ({"esign_backend": "esign"}, "SALESOPS_ESIGN_BACKEND=esign 时须设置 SALESOPS_ESIGN_APP_ID、"
                                 "SALESOPS_ESIGN_APP_SECRET，当前未设置"),
    ({"esign_backend": "esign", "esign_app_id": "app-1"},
     "SALESOPS_ESIGN_BACKEND=esign 时须设置 SALESOPS_ESIGN_APP_SECRET，当前未设置"),
    ({"registry_backend": "tianyancha"}, "SALESOPS_TIANYANCHA_TOKEN"),
    ({"notify_backend": "wecom"}, "SALESOPS_WECOM_ROBOT_KEY"),
    ({"notify_backend": "dingtalk"}, "SALESOPS_DINGTALK_ACCESS_TOKEN"),
])
def test_a_backend_without_its_credentials_is_refused_in_words(tmp_path, chosen, named):
    with pytest.raises(PermanentError) as refused:
        build_hub(Settings(_env_file=None, data_dir=tmp_path, **chosen))
    assert named in str(refused.value)


def test_the_embedded_defaults_need_no_credentials(tmp_path):
    assert build_hub(Settings(_env_file=None, data_dir=tmp_path)).settings.esign_backend \
        == "builtin"
