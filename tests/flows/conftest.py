"""Fixtures shared by the flow tests."""
from __future__ import annotations

import pytest


@pytest.fixture
def statements(monkeypatch):
    """The statement documents each settlement run lays out, by customer code (also
    rendered): a customer's latest (by month and revision), as a run also writes what
    earlier months' revisions lack (flows.settlement.finish_elsewhere)."""
    from flows import settlement
    seen: dict[str, settlement.StatementDocument] = {}
    render = settlement.render_statements

    def keep(jobs):
        for doc, _ in jobs:
            kept = seen.get(doc.customer_code)
            if kept is None or (doc.month, doc.revision) >= (kept.month, kept.revision):
                seen[doc.customer_code] = doc
        render(jobs)
    monkeypatch.setattr(settlement, "render_statements", keep)
    return seen
