"""Audit round 4 (H1): the e签宝 signer account is a mobile number or a mail address as
e签宝 knows them, whatever way the order's contact phone was typed."""
from __future__ import annotations

import pytest

from connectors.base import PermanentError
from tests.connectors.test_esign_tsign import client, request
from tests.connectors.test_esign_tsign import sim  # noqa: F401 - fixture


def account_of(sim, code: str) -> str:
    return sim.flow_for(code).body["signers"][0]["orgSignerInfo"]["transactorInfo"]["psnAccount"]


@pytest.mark.parametrize("typed", ["+86 139-1234-5678", "139 1234 5678", "(+86)13912345678",
                                   "8613912345678"])
def test_a_mobile_number_typed_with_spaces_dashes_or_86_is_sent_as_11_digits(sim, tmp_path,
                                                                            typed):
    esign = client(sim)
    handle = esign.create_signing(request(tmp_path, "Q-MOB1", signer_phone=typed))
    assert account_of(sim, "Q-MOB1") == "13912345678"
    assert handle.url.startswith(sim.url)


def test_a_landline_gives_way_to_the_contacts_mail_address(sim, tmp_path):
    esign = client(sim)
    esign.create_signing(request(tmp_path, "Q-LAND", signer_phone="0574-8688 1234",
                                 signer_email="guxf@example.com"))
    assert account_of(sim, "Q-LAND") == "guxf@example.com"


def test_a_landline_alone_is_refused_before_any_call_in_chinese(sim, tmp_path):
    esign = client(sim)
    with pytest.raises(PermanentError) as err:
        esign.create_signing(request(tmp_path, "Q-LAND2", signer_phone="0574-8688 1234",
                                     signer_email=None))
    assert err.value.code == "no_signer_account"
    assert "手机号" in str(err.value)
    assert sum(sim.calls.values()) == 0
