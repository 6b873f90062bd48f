"""The worker's time: every timestamp it takes, every duration it measures and every wait it makes.

Timestamps (`now`) are always real epoch seconds: they leave the process (the journal, the
continuation token, SSM's InvokedAfter filter) and are compared with other processes' stamps.
Durations are *worker seconds*: the poll interval, retry backoff, hold_time, invocation_grace and
the ListCommands margin. `Clock()` runs them in real time. `Clock(speed=10)` lets ten worker
seconds pass per real second, so the same daemon code runs its waits ten times faster (the
in-process tests do this); whatever the worker waits for must then be that much faster too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Clock:
    speed: float = 1.0  # worker seconds per real second

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"clock speed must be positive, not {self.speed!r}")

    def now(self) -> float:
        """Seconds since the epoch (time.time()): a timestamp to record or to send."""
        return time.time()

    def since(self, timestamp: float) -> float:
        """Worker seconds elapsed since `timestamp`, a `now()` value (this process's or another's)."""
        return (time.time() - timestamp) * self.speed

    def monotonic(self) -> float:
        """A monotonic reading in worker seconds, for durations measured within this process."""
        return time.monotonic() * self.speed

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait `seconds` worker seconds or until `event` is set; True when it is set (as Event.wait)."""
        return event.wait(max(0.0, seconds) / self.speed)
