"""Crash recovery: an append-only, fsync'd record of how far each acknowledged job got.

One JSON object per line: ``claiming`` (with the nonce and the continuation token the job
carried, written before AcknowledgeJob), ``claimed``, ``sending`` (the intent, written before
SendCommand), ``sent`` (with the command id) and ``ended`` (a result call was accepted). A line is
written with a single ``write`` on an O_APPEND descriptor and fsync'd before the step it records
goes on, so SIGKILL loses nothing that happened; a torn last line (power loss) is skipped on
reading. The file lives in the private state directory (`worker.state`): 0600, never opened
through a symlink. On start the daemon finishes every job whose last record is not ``ended``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from worker.state import open_private, read_private, replace_file

COMPACT_BYTES = 1024 * 1024


class Event(StrEnum):
    """A journal line's `ev` field: the step it records (journals already written must still read)."""

    CLAIMING = "claiming"  # before AcknowledgeJob, with the nonce and the token the job came with
    CLAIMED = "claimed"  # AcknowledgeJob said InProgress
    SENDING = "sending"  # the intent, before SendCommand
    SENT = "sent"  # SendCommand returned the command id
    ENDED = "ended"  # a result call was accepted (or refused: the job is not ours to end)


@dataclass(frozen=True)
class Unfinished:
    """A job the journal shows as acknowledged and not ended."""

    job_id: str
    claimed_at: float
    document: str | None  # set once the intent to send was recorded
    command_id: str | None  # set once SendCommand returned
    sent_at: float | None
    intent_at: float | None = None
    nonce: str | None = None  # set while the acknowledgement's outcome is unknown
    token: str | None = None  # the continuation token the job came with: what was sent before it

    @property
    def intent_without_command(self) -> bool:
        return self.document is not None and self.command_id is None


class Journal:
    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / "journal.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()

    def record(self, event: Event, job_id: str, **fields: object) -> None:
        line = json.dumps({"ev": event, "job": job_id, "t": round(time.time(), 3),
                           **{k: v for k, v in fields.items() if v is not None}}, separators=(",", ":")) + "\n"
        with self._lock:
            fd = open_private(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def _entries(self) -> list[dict[str, object]]:
        try:
            lines = read_private(self.path).split(b"\n")
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # the torn tail of an interrupted write, or an empty line
            if isinstance(entry, dict) and "ev" in entry and "job" in entry:
                entries.append(entry)
        return entries

    def unfinished(self) -> list[Unfinished]:
        jobs: dict[str, Unfinished] = {}
        for entry in self._entries():
            job, at = str(entry["job"]), float(entry.get("t", 0.0))  # type: ignore[arg-type]
            if entry["ev"] == Event.ENDED:
                jobs.pop(job, None)
                continue
            state = jobs.get(job) or Unfinished(job, at, None, None, None)
            if entry["ev"] == Event.CLAIMING:
                token = entry.get("token")
                state = replace(state, nonce=str(entry.get("nonce")), token=str(token) if token else None)
            elif entry["ev"] == Event.CLAIMED:
                state = replace(state, nonce=None)
            elif entry["ev"] == Event.SENDING:
                state = replace(state, document=str(entry.get("document")), intent_at=at)
            elif entry["ev"] == Event.SENT:
                state = replace(state, command_id=str(entry.get("command_id")),
                                sent_at=float(entry.get("sent_at") or at))  # type: ignore[arg-type]
            jobs[job] = state
        return list(jobs.values())

    def compact(self) -> None:
        """Rewrite the journal with only unfinished jobs (atomically, 0600), once it has grown."""
        with self._lock:
            try:
                size = os.stat(self.path, follow_symlinks=False).st_size
            except FileNotFoundError:
                return
            if size < COMPACT_BYTES:
                return
            keep = {u.job_id for u in self.unfinished()}
            lines = [json.dumps(e, separators=(",", ":")) + "\n" for e in self._entries() if e["job"] in keep]
            replace_file(self.path, "".join(lines).encode(), durable=True)
