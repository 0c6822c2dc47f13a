"""A background refresh of the matcher's index: one that fails (the database restarting, a
lock it lost) is logged and retried at the next look, never an unhandled thread error; and
forgetting the indexes waits for a refresh in flight, so that on PostgreSQL no read of the
previous test holds a lock across the next test's TRUNCATE (CI saw a deadlock there)."""
from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa

from flows import customer_index as module
from flows.customer_index import CustomerIndex


def test_a_failed_refresh_is_logged_and_retried(seeded, monkeypatch, caplog):
    index = CustomerIndex(seeded.db_url, refresh_seconds=0.01)
    index.current()

    def lost(self):
        raise sa.exc.OperationalError("SELECT count(*) …", {}, Exception("deadlock detected"))

    monkeypatch.setattr(CustomerIndex, "_unchanged", lost)
    index._refreshing = True
    with caplog.at_level(logging.WARNING, logger=module.__name__):
        index._refresh()  # what the thread runs: no exception escapes
    assert "customer index refresh failed" in caplog.text
    assert index._refreshing is False  # the next look starts another


def test_forgetting_the_indexes_waits_for_a_refresh_in_flight(seeded, monkeypatch):
    index = module.customer_index(seeded.db_url, refresh_seconds=0.01)
    index.current()
    started, release = threading.Event(), threading.Event()

    def slow(self):
        started.set()
        release.wait(10)
        return True

    monkeypatch.setattr(CustomerIndex, "_unchanged", slow)
    time.sleep(0.05)
    index.current()  # starts a refresh in the background
    assert started.wait(10)
    threading.Timer(0.3, release.set).start()
    module.forget_indexes()
    assert release.is_set()  # it returned only once the refresh could finish
    assert not [t for t in threading.enumerate() if t.name == module.REFRESH_THREAD]
