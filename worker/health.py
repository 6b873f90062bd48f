"""Liveness for container health checks: the loop writes a heartbeat, `health` checks its age.

The heartbeat is a small JSON file rewritten atomically after every poll attempt; a loop that
stopped polling (stuck, or dead) leaves it to age, and `codepipeline-ssm-worker health` exits 1.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path

from worker.config import Config

FILE_NAME = "heartbeat.json"


def heartbeat_path(config: Config) -> Path:
    """In the state directory when there is one, else in the temp directory (Fargate)."""
    return Path(config.state_dir or tempfile.gettempdir()) / (
        FILE_NAME if config.state_dir else f"codepipeline-ssm-worker-{config.action_type.provider}-{FILE_NAME}")


def beat(path: Path, *, in_flight: int, polled_ok: bool) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # one per writer: no race
    tmp.write_text(json.dumps({"pid": os.getpid(), "at": time.time(), "in_flight": in_flight,
                               "polled_ok": polled_ok}))
    os.replace(tmp, path)


def check(config: Config, *, intervals: int = 3, now: float | None = None) -> tuple[bool, str]:
    """Healthy when the loop polled within `intervals` × poll_interval_max (plus a little slack)."""
    path = heartbeat_path(config)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return False, f"no heartbeat at {path}: the worker has not polled yet, or is not running"
    age = (now or time.time()) - float(state.get("at", 0))
    limit = intervals * config.poll_interval_max + 30
    if age > limit:
        return False, f"last poll {age:.0f} s ago (pid {state.get('pid')}), more than {limit:.0f} s: the loop is stuck"
    return True, f"last poll {age:.0f} s ago (pid {state.get('pid')}), {state.get('in_flight', 0)} job(s) in flight"
