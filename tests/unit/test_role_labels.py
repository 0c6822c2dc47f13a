"""Roles are read in Chinese wherever a person sees them (refusals, the token command)."""
from __future__ import annotations

import re

from deployments.seed import STAFF
from models.staff import ROLE_LABELS, role_label


def test_every_role_staff_can_have_reads_in_chinese():
    roles = {role for _, _, role, *_ in STAFF}
    assert roles <= set(ROLE_LABELS)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]+", role_label(r)) for r in roles)
    assert role_label("auditor") == "auditor"  # an unknown role is shown as it is stored
