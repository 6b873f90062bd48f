"""Liveness for container health checks: the loop writes a heartbeat, `health` checks its age.

The heartbeat is a small JSON file in the state directory, rewritten atomically after every poll
attempt; a loop that stopped polling (stuck, or dead) leaves it to age, and
`codepipeline-ssm-worker health` exits 1. Without a state directory there is no heartbeat (nothing
is written to a shared temp directory), and `health` says it needs one.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from worker.config import Config
from worker.errors import ConfigFileError
from worker.state import read_private, replace_file

FILE_NAME = "heartbeat.json"
_MAX_BYTES = 4096


def heartbeat_path(config: Config) -> Path | None:
    """state_dir/heartbeat.json; None without a state directory."""
    return Path(config.state_dir) / FILE_NAME if config.state_dir else None


def beat(path: Path, *, in_flight: int, polled_ok: bool) -> None:
    replace_file(path, json.dumps({"pid": os.getpid(), "at": time.time(), "in_flight": in_flight,
                                   "polled_ok": polled_ok}).encode())


def check(config: Config, *, intervals: int = 3, now: float | None = None) -> tuple[bool, str]:
    """Healthy when the loop polled within `intervals` × poll_interval_max (plus a little slack)."""
    path = heartbeat_path(config)
    if path is None:
        raise ConfigFileError("health needs a state_dir: the worker writes its heartbeat there, and has none "
                              "without one. Set state_dir in the config file (or STATE_DIRECTORY in the "
                              "environment) for both `run` and `health`")
    try:
        state = json.loads(read_private(path, _MAX_BYTES))
    except (OSError, ValueError):
        state = None
    if not isinstance(state, dict):
        return False, f"no heartbeat at {path}: the worker has not polled yet, or is not running"
    age = (now or time.time()) - float(state.get("at", 0))
    limit = intervals * config.poll_interval_max + 30
    if age > limit:
        return False, f"last poll {age:.0f} s ago (pid {state.get('pid')}), more than {limit:.0f} s: the loop is stuck"
    return True, f"last poll {age:.0f} s ago (pid {state.get('pid')}), {state.get('in_flight', 0)} job(s) in flight"
