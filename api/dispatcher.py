"""Background hand-over of accepted events to Prefect, off the request path.

A request only stores the event and pokes this thread; the thread coalesces whatever arrived
meanwhile into batch runs. If Prefect is unreachable the events stay pending and the thread
backs off; the sweeper deployment is the second line.
"""
from __future__ import annotations

import logging
import threading
import time

from flows.dispatch import Launcher, dispatch_pending

log = logging.getLogger("salesops.dispatcher")


class Dispatcher:
    def __init__(self, db_url: str, launcher: Launcher | None, batch_size: int,
                 interval: float, max_wait: float = 3.0) -> None:
        self.db_url, self.launcher = db_url, launcher
        self.batch_size, self.interval, self.max_wait = batch_size, interval, max_wait
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.idle = threading.Event()

    def poke(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self.launcher is None or self._thread:
            return
        self._thread = threading.Thread(target=self._loop, name="inbox-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        backoff = self.interval
        while not self._stop.is_set():
            self._wake.wait(timeout=backoff)
            self._coalesce()
            self.idle.clear()
            try:
                dispatch_pending(self.db_url, self.launcher, self.batch_size)
                backoff = max(self.interval, 5.0)
            except Exception:  # never let the thread die; the inbox keeps the events
                log.exception("dispatch failed; retrying")
                backoff = min(backoff * 2, 60.0)
            self.idle.set()

    def _coalesce(self) -> None:
        """Wait `interval` after the first event; while events keep arriving, keep waiting
        (up to `max_wait`) so a burst becomes a few large runs rather than many small ones:
        each run costs a process start and about a second of orchestration."""
        deadline = time.monotonic() + self.max_wait
        self._wake.clear()
        while not self._stop.is_set():
            arrived = self._wake.wait(self.interval)
            self._wake.clear()
            if not arrived or time.monotonic() >= deadline:
                return
