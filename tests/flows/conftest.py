"""Fixtures shared by the flow tests."""
from __future__ import annotations

import pytest


@pytest.fixture
def statements(monkeypatch):
    """The statement documents each settlement run lays out, by customer code (also
    rendered)."""
    from flows import settlement
    seen: dict[str, settlement.StatementDocument] = {}
    render = settlement.render_statements

    def keep(jobs):
        seen.update({doc.customer_code: doc for doc, _ in jobs})
        render(jobs)
    monkeypatch.setattr(settlement, "render_statements", keep)
    return seen
