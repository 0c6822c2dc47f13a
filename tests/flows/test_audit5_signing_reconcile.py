"""An e签宝 flow ended unsigned: the rep's to-do is told (mail and push) once, also when the
mail server failed the first time — the hourly reconciliation tells it later — and one mail
failure does not stop the reconciliation asking about the other quotes."""
from __future__ import annotations

import datetime as dt

from sqlmodel import select

from connectors.base import TransientError
from flows.signing import reconcile_esign
from models import Effect, Todo, utcnow
from models.db import session_scope
from tests.flows.test_esign_reconcile import esign_hub, quote_waiting, sim  # noqa: F401


class Mailer:
    def __init__(self, real):
        self.real, self.down, self.keys = real, True, []

    def send(self, mail):
        if self.down:
            raise TransientError("SMTP server unreachable", provider="smtp")
        self.keys.append(mail.idempotency_key)
        return self.real.send(mail)


def test_an_ended_signing_whose_mail_failed_is_told_by_a_later_reconciliation(
        esign_hub, sim, tmp_path):  # noqa: F811
    refused = quote_waiting(esign_hub, tmp_path, "Q-LOST-5", hours_ago=3)
    expired = quote_waiting(esign_hub, tmp_path, "Q-LOST-6", hours_ago=3)
    sim.complete(refused, status=7, deliver=False)
    sim.complete(expired, status=5, deliver=False)
    mailer = esign_hub.mailer = Mailer(esign_hub.mailer)
    assert reconcile_esign(esign_hub) == {"checked": 2, "signed": 0, "ended": 2,
                                          "unanswered": 0}
    assert mailer.keys == []
    mailer.down = False
    # within the hour a to-do is left to whoever opened it (the callback may be telling it)
    reconcile_esign(esign_hub)
    assert mailer.keys == []
    with session_scope(esign_hub.db_url) as s:
        for todo in s.exec(select(Todo).where(Todo.kind == "signing_ended")):
            todo.created_at = utcnow() - dt.timedelta(hours=2)
            s.add(todo)
    assert reconcile_esign(esign_hub)["checked"] == 0
    reconcile_esign(esign_hub)  # told once
    assert sorted(mailer.keys) == ["todo:signing_ended:Q-LOST-5:7",
                                   "todo:signing_ended:Q-LOST-6:5"]
    with session_scope(esign_hub.db_url) as s:
        effects = s.exec(select(Effect).where(Effect.kind.in_(["todo_mail", "push"]))).all()
    assert sorted((e.kind, e.business_key, e.status) for e in effects) == [
        ("push", "todo:signing_ended:Q-LOST-5:7", "done"),
        ("push", "todo:signing_ended:Q-LOST-6:5", "done"),
        ("todo_mail", "signing_ended:Q-LOST-5:7", "done"),
        ("todo_mail", "signing_ended:Q-LOST-6:5", "done")]
