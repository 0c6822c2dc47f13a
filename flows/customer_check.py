"""Step 1 of the intent-order flow: which customer is this order for?

In order of strength:
1. the form sent a customer id (suggest-only field): that file (a merged one → its survivor);
2. the typed name is a legal name or alias on file (spelling-insensitive);
3. the typed name names a company in the registry exactly (legal name, former name or USCC):
   that company's file, or a new standard file with a legal qualification review;
4. the matcher is confident (auto-link): that file, and the spelling becomes an alias;
5. otherwise the name is a suspected new customer: the order waits (on hold) for a decision.
Whatever the path, the customer's registry facts are refreshed when stale, and an order for a
company the registry shows deregistered or revoked is stopped.
"""
from __future__ import annotations

from sqlmodel import select

from connectors.registry import RegistryRecord, lookup_key
from flows.batch import OrderHeld
from flows.customer_index import customer_index
from flows.customer_registry import (
    ensure_registry_fresh, files_of, identifies, looks_registered, new_file_facts,
    open_legal_review, refuse_if_dead, registry_lookup,
)
from flows.hub import Hub
from flows.notices import notify_todo, staff
from flows.suspects import hold_for_suspect
from models import IntentOrder, Opportunity
from models.customer_files import (
    active, active_for_writing, add_alias, create_customer, exact_matches,
)
from models.db import session_scope
from models.oplog import apply_changes

ACTOR = "flow:intent-order"


def check_customer(hub: Hub, order_id: str) -> None:
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
        typed = order.customer_name
        chosen = active(s, order.customer_id) if order.customer_id else None
        exact = exact_matches(s, typed) if chosen is None else []
    if chosen is not None:
        return _link(hub, order_id, chosen.id, typed=None)
    if len(exact) == 1:
        return _link(hub, order_id, exact[0].id, typed=None)
    if not exact and looks_registered(typed):
        record = registry_lookup(hub, typed)  # outside read: may raise TransientError
        if identifies(record, typed):
            return _registered_company(hub, order_id, typed, record)
    result = customer_index(hub.db_url, hub.settings.customer_index_refresh_seconds).search(typed)
    if result.decision == "auto" and not exact:
        return _link(hub, order_id, result.candidates[0].customer_id, typed=typed)
    decided = hold_for_suspect(hub, order_id, typed, result.candidates)
    if decided:
        return _link(hub, order_id, decided, typed=None)
    raise OrderHeld(f"客户名称“{typed}”未能识别，等待确认")


def _link(hub: Hub, order_id: str, customer_id: int, typed: str | None) -> None:
    """Put the order on the customer's file; a matched spelling becomes an alias."""
    with session_scope(hub.db_url) as s:
        customer = active_for_writing(s, customer_id)  # merged meanwhile: its survivor
        order = s.get(IntentOrder, order_id)
        if typed:
            add_alias(s, customer, typed, "typed", "order", ACTOR)
        apply_changes(s, order, ACTOR, customer_id=customer.id)
        opp = s.exec(select(Opportunity).where(Opportunity.order_id == order_id)).one()
        apply_changes(s, opp, ACTOR, customer_id=customer.id)
    ensure_registry_fresh(hub, customer.id)


def _registered_company(hub: Hub, order_id: str, typed: str, record: RegistryRecord) -> None:
    # identified by its legal name, a former name or its USCC: a code is not a name to keep
    spelling = None if record.uscc and lookup_key(typed) == lookup_key(record.uscc) else typed
    with session_scope(hub.db_url) as s:
        known = files_of(s, record)
    if known:
        return _link(hub, order_id, known[0].id, typed=spelling)
    todo_id = None
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
        rep = staff(s, order.rep_id)
        facts = new_file_facts(s, record)
        legal_name = facts.pop("legal_name")
        customer = create_customer(
            s, legal_name=legal_name, actor=ACTOR, origin="standard", registry_checked=True,
            region=rep.region if rep else None, owner_rep_id=order.rep_id,
            contact_email=order.contact_email, tier="C", qualification="pending_review",
            **facts)
        todo_id = open_legal_review(hub, s, customer, order=order, typed=typed).id
        apply_changes(s, order, ACTOR, customer_id=customer.id)
        opp = s.exec(select(Opportunity).where(Opportunity.order_id == order_id)).one()
        apply_changes(s, opp, ACTOR, customer_id=customer.id)
    notify_todo(hub, todo_id)
    refuse_if_dead(hub, customer.id)


