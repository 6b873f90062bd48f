"""The daemon's table of busy slots is the loop's alone: job threads finishing at once never touch it.

The real Daemon runs here in a thread of the test process (its loop thread), with real boto3
clients against the emulator; the table records which thread changes it while many jobs and
their continuation jobs finish concurrently.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness

from worker.config import load_config
from worker.daemon import Daemon, build_clients


class WatchedTable(dict):  # type: ignore[type-arg]
    """A dict that remembers the thread of every change."""

    def __init__(self) -> None:
        super().__init__()
        self.changed_by: list[int] = []

    def __setitem__(self, key: Any, value: Any) -> None:
        self.changed_by.append(threading.get_ident())
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self.changed_by.append(threading.get_ident())
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        self.changed_by.append(threading.get_ident())
        return super().pop(*args)


def test_only_the_loop_thread_changes_in_flight(harness: Harness, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in harness.emu.env().items():
        monkeypatch.setenv(key, value)
    config = load_config(harness.config(concurrency=8, state_dir=str(tmp_path / "state"), poll_interval_max=0.2))
    daemon = Daemon(config, build_clients(config))
    daemon.in_flight = WatchedTable()
    executions = [harness.enqueue() for _ in range(24)]
    loop = threading.Thread(target=daemon.run, name="loop")
    loop.start()
    try:
        finals = [harness.final(execution, timeout=120) for execution in executions]
    finally:
        daemon.stop.set()
        loop.join(timeout=30)
    assert not loop.is_alive()
    assert all(f.operation == "PutJobSuccessResult" and "continuationToken" not in f.request for f in finals)
    for execution in executions:
        harness.assert_one_result_per_job(execution)
    table = daemon.in_flight
    assert isinstance(table, WatchedTable)
    assert len(table.changed_by) > 3 * len(executions)  # each job and continuation job added, most removed
    assert set(table.changed_by) == {loop.ident}
    assert len(harness.sends()) == len(executions)
