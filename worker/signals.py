"""Stop signals as flags (huey style): the loop does the work, the handler only records the wish.

Installed first thing by `run`, before the heavy imports, so a SIGTERM that arrives while the
worker is still starting is a warm stop too, not a kill.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType


class StopSignals:
    """First SIGTERM/SIGINT: set `stop` (warm: hand jobs back, exit 0). Second: exit at once (cold)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.received = 0

    def install(self) -> StopSignals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.received += 1
        if self.received > 1:
            os._exit(128 + signum)  # the operator insisted; the journal finishes the jobs on the next start
        self.stop.set()
