"""Audit round 4 (H1): the intent-order pipeline after an error — a signature whose save did
not commit, an order whose last attempt's run vanished."""
from __future__ import annotations

import base64
import datetime as dt
import io
import sqlite3

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from sqlmodel import select

from api.app import create_app
from flows.dispatch import dispatch_pending
from flows.order_steps import signing_link
from flows.sweeper import sweep
from models import InboxEvent, IntentOrder, Quote, SigningToken, Todo, utcnow
from models.db import session_scope
from tests.support import InlineLauncher, order_payload, post_order, run_pending

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def client(hub):
    app = create_app(hub.settings, launcher=None)
    with TestClient(app) as c:
        yield c



def drawing(offset: int) -> str:
    """A finger-drawn stroke as the page's canvas sends it; another offset, another PNG."""
    img = Image.new("RGBA", (480, 180), (255, 255, 255, 0))
    d = ImageDraw.Draw(img)
    d.line([(30, 60 + offset), (200, 140), (440, 40 + offset)], fill=(17, 17, 17, 255), width=4)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_a_signature_whose_save_did_not_commit_can_be_drawn_again(hub, client, monkeypatch):
    """The database refused the submit (busy): nothing was saved, so the customer signs again
    with a new drawing — not '该报价单已签署' for a quote nobody signed."""
    import api.signing_page as page

    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
    link = signing_link(hub.settings, quote).removeprefix("http://testserver")
    real = page.add_signing_event

    def busy(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT INTO inbox_event", {},
                                      sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(page, "add_signing_event", busy)
    form = {"signer_name": "顾晓峰", "consent": "yes", "signature": drawing(0)}
    first = client.post(link, data=form)
    assert first.status_code == 503
    assert "text/html" in first.headers["content-type"] and "重新签署" in first.text
    with session_scope(hub.db_url) as s:
        assert s.exec(select(SigningToken)).one().used_at is None
        assert s.exec(select(InboxEvent).where(InboxEvent.source == "esign:builtin")).all() == []

    monkeypatch.setattr(page, "add_signing_event", real)
    again = client.post(link, data={**form, "signature": drawing(30)})  # drawn anew
    assert again.status_code == 200 and "签署成功" in again.text
    run_pending(hub)
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
        assert quote.status == "signed"
        assert s.get(IntentOrder, oid).status == "invoicing"


def test_an_order_whose_last_attempt_never_finished_is_blocked_with_a_todo(hub, client):
    """The run of an order's last attempt crashed (machine restarted): the lease runs out,
    and the sweeper must not leave it '处理中' for ever — it is blocked, and the rep's
    manager gets the to-do, as after any last failed attempt."""
    oid = post_order(client, order_payload()).json()["order_id"]
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        order.status, order.claimed_by = "processing", "crashed-run"
        order.attempts = hub.settings.order_max_attempts
        order.claimed_until = utcnow() - dt.timedelta(minutes=1)
        s.add(order)
        for row in s.exec(select(InboxEvent)):
            row.status = "dispatched"
            s.add(row)
    sweep(hub, InlineLauncher(), min_age_seconds=0)
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, oid)
        assert order.status == "blocked" and order.claimed_by is None
        assert "5 次" in order.error
        [todo] = s.exec(select(Todo).where(Todo.kind == "order_blocked")).all()
        assert todo.order_id == oid and todo.assignee_id == "mgr-east"
    mails = list((hub.settings.data_dir / "outbox").rglob("*.eml"))
    assert len(mails) == 1
    # the next sweep has nothing more to say
    sweep(hub, InlineLauncher(), min_age_seconds=0)
    assert len(list((hub.settings.data_dir / "outbox").rglob("*.eml"))) == 1


def test_a_quote_signed_while_its_mail_step_retried_stays_signed(hub, client):
    """e签宝 texts the signer as the flow starts: the customer may sign while our quote
    mail is still being retried. The late mail step must neither ask him to sign again nor
    set the order back to 已报价 (待客户签署)."""
    from flows.order_steps import send_quote_mail
    from models import Effect

    oid = post_order(client, order_payload()).json()["order_id"]
    run_pending(hub)
    outbox = hub.settings.data_dir / "outbox"
    for mail in outbox.rglob("*.eml"):  # the quote mail had not gone out yet …
        mail.unlink()
    with session_scope(hub.db_url) as s:
        for effect in s.exec(select(Effect).where(Effect.kind == "quote_email")):
            s.delete(effect)
        quote = s.exec(select(Quote).where(Quote.order_id == oid)).one()
        quote.status, quote.signed_at = "signed", utcnow()  # … when the signing completed
        order = s.get(IntentOrder, oid)
        order.status, order.claimed_by = "invoicing", "run-retrying-the-mail"
        s.add_all([quote, order])
    send_quote_mail(hub, oid)
    with session_scope(hub.db_url) as s:
        assert s.exec(select(Quote).where(Quote.order_id == oid)).one().status == "signed"
        order = s.get(IntentOrder, oid)
        assert order.status == "invoicing" and order.claimed_by is None
    assert list(outbox.rglob("*.eml")) == []  # no "please sign" after signing


class NestedDispatch:
    """A launcher during whose first hand-over another dispatcher (the sweeper in its own
    process, after Prefect came back) reads the same inbox."""

    def __init__(self, db_url):
        self.db_url, self.launched = db_url, []

    def launch(self, deployment, parameters, idempotency_key):
        self.launched.append((deployment, tuple(sorted(parameters["order_ids"]))))
        if len(self.launched) == 1:
            dispatch_pending(self.db_url, self, batch_size=2)  # groups the events otherwise
        return f"run-{len(self.launched)}"


def test_two_dispatchers_at_once_hand_each_event_over_once(hub, client):
    """Handed over twice in different batches, Prefect's idempotency key cannot tell, and two
    runs of signing-completed would each mail the signed quote."""
    for _ in range(3):
        post_order(client, order_payload())
    launcher = NestedDispatch(hub.db_url)
    total = dispatch_pending(hub.db_url, launcher, batch_size=250)
    handed = [oid for _, oids in launcher.launched for oid in oids]
    assert len(handed) == 3 and len(set(handed)) == 3, launcher.launched
    with session_scope(hub.db_url) as s:
        rows = s.exec(select(InboxEvent)).all()
        assert {r.status for r in rows} == {"dispatched"}
        assert all(r.dispatch_attempts == 1 and r.flow_run_id.startswith("run-") for r in rows)
    assert total == 3


def test_an_event_whose_hand_over_failed_waits_in_the_inbox_again(hub, client):
    post_order(client, order_payload())

    class Down:
        def launch(self, *args):
            raise ConnectionError("Prefect API unreachable")

    assert dispatch_pending(hub.db_url, Down()) == 0
    with session_scope(hub.db_url) as s:
        [row] = s.exec(select(InboxEvent)).all()
        assert (row.status, row.flow_run_id, row.dispatch_attempts) == ("pending", None, 0)
    launcher = InlineLauncher()
    assert dispatch_pending(hub.db_url, launcher) == 1
