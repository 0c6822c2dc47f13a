"""A stopped API reads nothing more: the customer index it warms at start-up is finished (or
given up) before the shutdown completes, so no read of it holds the tables afterwards (on
PostgreSQL a TRUNCATE, a restore or a migration would wait on it, or deadlock)."""
from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

import api.app
from api.app import create_app


def test_the_index_warm_up_ends_before_the_app_has_stopped(hub, monkeypatch):
    ended = threading.Event()

    class SlowIndex:
        def current(self):
            time.sleep(1.0)  # a large customer file still being read at shutdown
            ended.set()

    monkeypatch.setattr(api.app, "customer_index", lambda *args: SlowIndex())
    with TestClient(create_app(hub.settings, launcher=None)):
        pass
    assert ended.is_set()
