"""e签宝 callbacks that never came (our API down longer than e签宝 retries): the hourly
reconciliation asks e签宝 (the simulator on loopback, signed requests) about quotes still
unsigned an hour on — a signed flow goes to the inbox as its callback would have, a refused
one opens the rep's to-do, a flow still being signed or already known is left alone."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pydantic import SecretStr
from sqlmodel import select

from connectors.esign import SigningRequest
from flows.hub import build_hub, use_hub
from flows.signing import reconcile_esign
from models import Customer, InboxEvent, IntentOrder, Quote, Todo, utcnow
from models.db import session_scope
from tests.connectors.test_esign_tsign import APP_ID, SECRET, make_pdf
from tests.simulators.esign_sim import TsignSimulator


@pytest.fixture
def sim():
    simulator = TsignSimulator(APP_ID, SECRET).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def esign_hub(seeded, sim):
    settings = seeded.model_copy(update={
        "esign_backend": "esign", "esign_url": sim.url, "esign_app_id": APP_ID,
        "esign_app_secret": SecretStr(SECRET), "connector_attempts": 2})
    hub = build_hub(settings)
    use_hub(hub)
    yield hub
    use_hub(None)


def quote_waiting(hub, tmp_path, code: str, hours_ago: float) -> str:
    """A quote sent for signing at e签宝 `hours_ago`: its flow at the simulator, its row."""
    handle = hub.esign.create_signing(SigningRequest(
        quote_code=code, pdf_path=make_pdf(tmp_path / f"{code}.pdf", code), title="报价单",
        signer_name="王经理", signer_company="江苏康达医疗设备有限公司",
        signer_phone="13800000000", signer_email=None,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=3),
        idempotency_key=f"signing:{code}", notify_url=None))
    with session_scope(hub.db_url) as s:
        cust = s.exec(select(Customer)).first()
        order_id = f"IO-{code}"
        s.add(IntentOrder(id=order_id, event_id=f"e-{code}", sender_id="portal",
                          customer_name=cust.legal_name, customer_id=cust.id, status="quoted",
                          rep_id="rep-zhangwei"))
        s.flush()
        s.add(Quote(code=code, order_id=order_id, customer_id=cust.id,
                    total_amount=Decimal("100.00"), tax_amount=Decimal("11.50"),
                    valid_until=dt.date(2099, 1, 1), signing_provider="esign",
                    signing_ref=handle.ref, status="sent",
                    created_at=utcnow() - dt.timedelta(hours=hours_ago)))
    return handle.ref


def test_lost_callbacks_are_found_by_asking_esign(esign_hub, sim, tmp_path):
    signed = quote_waiting(esign_hub, tmp_path, "Q-LOST-1", hours_ago=3)
    refused = quote_waiting(esign_hub, tmp_path, "Q-LOST-2", hours_ago=3)
    quote_waiting(esign_hub, tmp_path, "Q-OPEN-3", hours_ago=3)     # still being signed
    recent = quote_waiting(esign_hub, tmp_path, "Q-NEW-4", hours_ago=0.2)
    sim.complete(signed, deliver=False)
    sim.complete(refused, status=7, deliver=False)
    sim.complete(recent, deliver=False)  # its callback may still come: not asked yet
    assert reconcile_esign(esign_hub) == {"checked": 3, "signed": 1, "ended": 1,
                                          "unanswered": 0}
    with session_scope(esign_hub.db_url) as s:
        [event] = s.exec(select(InboxEvent)).all()
        [todo] = s.exec(select(Todo).where(Todo.kind == "signing_ended")).all()
    assert (event.source, event.event_id, event.subject_id, event.status) == (
        "esign:esign", f"{signed}:SIGN_FLOW_COMPLETE", "Q-LOST-1", "pending")
    assert (todo.title, todo.assignee_id) == ("客户拒签：报价单 Q-LOST-2", "rep-zhangwei")
    # the next run asks only about what is still being signed, and tells nobody twice
    assert reconcile_esign(esign_hub) == {"checked": 1, "signed": 0, "ended": 0,
                                          "unanswered": 0}


def test_esign_not_answering_leaves_the_quote_for_the_next_run(esign_hub, sim, tmp_path):
    quote_waiting(esign_hub, tmp_path, "Q-LOST-9", hours_ago=3)
    sim.fail_next(1435002, "参数错误")  # a refusal for this one question
    sim.fail_next(1435002, "参数错误")
    assert reconcile_esign(esign_hub)["unanswered"] == 1


def test_nothing_is_asked_with_the_built_in_signing(hub):
    assert reconcile_esign(hub) == {"checked": 0, "signed": 0, "ended": 0, "unanswered": 0}
