"""A customer merge that commits while the intent-order flow is putting an order (its quote,
its to-dos) on a customer's file: whatever the flow writes lands on the surviving file, never
on the file merged away. The interleaving is made deterministic: the merge's transaction is
held open (its lock taken, its rows moved, not committed) while the flow's step runs in
another thread; then the merge commits and the step finishes."""
from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from flows import customer_check
from flows.hub import current_hub
from flows.order_steps import render_quote
from models import IntentOrder, Opportunity, Quote
from models.customer_files import merge_customers
from models.db import session_scope
from tests.rebate_support import customer_id
from tests.support import order_payload, post_order

KANGDA, SHENKANG = "江苏康达医疗设备有限公司", "上海申康医疗科技有限公司"


def merge_held_open(db_url: str, survivor: int, merged: int):
    """Starts the clerk's merge in a thread; returns (thread, release): the merge has moved
    the rows once `merge_held_open` returns, and commits when `release` is set."""
    moved, release = threading.Event(), threading.Event()

    def merge():
        with session_scope(db_url) as s:
            merge_customers(s, survivor, merged, "ops-01")
            s.flush()
            moved.set()
            release.wait(30)

    thread = threading.Thread(target=merge)
    thread.start()
    assert moved.wait(30)
    return thread, release


def run_beside(step) -> threading.Thread:
    failures = []

    def run():
        try:
            step()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.failures = failures
    thread.start()
    time.sleep(0.5)  # the step reaches the merge's lock (it waits there) or runs past it
    return thread


def new_order(hub, name: str) -> str:
    with TestClient(create_app(hub.settings, launcher=None)) as client:
        answer = post_order(client, order_payload(name=name))
    assert answer.status_code == 202, answer.text
    return answer.json()["order_id"]


def test_an_order_linked_while_its_customer_is_merged_lands_on_the_survivor(hub):
    """A rep's order names 上海申康 exactly; the clerk merges 申康 into 康达 while the flow's
    customer check puts the order on 申康's file. The order and its opportunity end on 康达
    (the merge waits for the link, or the link sees the merge), never on the merged file."""
    kangda, shenkang = customer_id(hub.db_url, KANGDA), customer_id(hub.db_url, SHENKANG)
    order_id = new_order(hub, SHENKANG)
    merge, release = merge_held_open(hub.db_url, kangda, shenkang)
    step = run_beside(lambda: customer_check._link(current_hub(), order_id, shenkang, None))
    release.set()
    merge.join(30)
    step.join(60)
    assert not step.failures, step.failures
    with session_scope(hub.db_url) as s:
        order = s.get(IntentOrder, order_id)
        opp = s.exec(select(Opportunity).where(Opportunity.order_id == order_id)).one()
        assert (order.customer_id, opp.customer_id) == (kangda, kangda)


def test_a_quote_written_while_its_customer_is_merged_lands_on_the_survivor(hub):
    """The order is on 申康's file; the quote step writes the quote while the clerk merges 申康
    into 康达: the quote (and its PDF, which names the customer) is 康达's."""
    kangda, shenkang = customer_id(hub.db_url, KANGDA), customer_id(hub.db_url, SHENKANG)
    order_id = new_order(hub, SHENKANG)
    customer_check.check_customer(current_hub(), order_id)
    merge, release = merge_held_open(hub.db_url, kangda, shenkang)
    step = run_beside(lambda: render_quote(current_hub(), order_id))
    release.set()
    merge.join(30)
    step.join(120)
    assert not step.failures, step.failures
    with session_scope(hub.db_url) as s:
        quote = s.exec(select(Quote).where(Quote.order_id == order_id)).one()
        assert quote.customer_id == kangda
        assert s.get(IntentOrder, order_id).customer_id == kangda
