"""models.gc_pause: the collector is held off while a wrapped call runs, nested or in several
threads at once, and runs again after the last one, only if it ran before."""
from __future__ import annotations

import gc
import threading

import pytest

from models.gc_pause import without_gc


@pytest.fixture(autouse=True)
def collector_restored():
    was = gc.isenabled()
    yield
    gc.enable() if was else gc.disable()


def test_held_off_inside_nested_calls_and_running_again_after_an_error():
    gc.enable()
    seen = []

    @without_gc
    def inner():
        seen.append(("inner", gc.isenabled()))
        raise ValueError("boom")

    @without_gc
    def outer():
        seen.append(("outer", gc.isenabled()))
        with pytest.raises(ValueError):
            inner()
        seen.append(("outer after inner", gc.isenabled()))
        return 7

    assert outer() == 7
    assert seen == [("outer", False), ("inner", False), ("outer after inner", False)]
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off():
    gc.disable()
    assert without_gc(gc.isenabled)() is False
    assert not gc.isenabled()


def test_overlapping_calls_in_two_threads_end_with_the_collector_running():
    """The first call in ends first: the collector stays off for the second one until it
    ends too (a per-call "was it on?" would switch it on under the second one)."""
    gc.enable()
    second_in, first_done = threading.Event(), threading.Event()
    states = {}

    @without_gc
    def second():
        second_in.set()
        first_done.wait(5)
        states["second, after the first one ended"] = gc.isenabled()

    t = threading.Thread(target=second)

    @without_gc
    def first():
        t.start()
        second_in.wait(5)
        states["first"] = gc.isenabled()

    first()
    first_done.set()
    t.join(5)
    assert states == {"first": False, "second, after the first one ended": False}
    assert gc.isenabled()
