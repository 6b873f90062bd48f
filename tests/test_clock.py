"""worker.clock: timestamps stay real, durations run `speed` times faster, a set event ends a wait."""

from __future__ import annotations

import threading
import time

import pytest

from worker.clock import Clock


def test_timestamps_are_real_and_elapsed_time_is_in_worker_seconds() -> None:
    fast = Clock(speed=10)
    before = time.time()
    stamp = fast.now()
    assert before <= stamp <= time.time()  # a stamp another process (or SSM) can compare with its own
    assert fast.since(stamp - 2) >= 20  # two real seconds ago is twenty worker seconds ago
    assert Clock().since(stamp - 2) >= 2
    start = fast.monotonic()
    assert fast.monotonic() >= start


def test_a_set_event_ends_a_wait_at_once() -> None:
    stop = threading.Event()
    stop.set()
    assert Clock().wait(stop, 3600) is True
    assert Clock(speed=10).wait(threading.Event(), -5) is False  # a deadline already passed: no wait


def test_speed_must_be_positive() -> None:
    for speed in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="clock speed must be positive"):
            Clock(speed=speed)
