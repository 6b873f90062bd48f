"""The continuation token: how far a job got, stored in CodePipeline instead of the worker.

A worker that sends a command, or has to stop, hands the job back with this token; the next
job for the same action execution (any worker) reads it and carries on. It holds no secrets:
only the phase, the command id, when it was sent and which job sent it (≤2048 chars, the API
limit). A token is input like any other: `decode` accepts only the shape this worker writes, and
`refusal` says why a command the token names must not be tracked (not sent for this action
execution, or its document is not allowed), so a token can never point the worker at another
pipeline's command.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from worker.config import Config
from worker.errors import BadToken, NotAllowedError
from worker.plan import check_document, job_comment

TOKEN_LIMIT = 2048


class Phase(StrEnum):
    """How far a job got; its value is the token's `phase` field (tokens already issued must still read)."""

    PLANNED = "planned"  # claimed, nothing sent: the next worker plans and sends
    SENT = "sent"  # SendCommand returned this command id: the next worker tracks it

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class Checkpoint:
    phase: Phase
    command_id: str | None = None
    sent_at: float | None = None
    sent_by: str | None = None  # the job that sent the command: the command's Comment names it

    def encode(self) -> str:
        body: dict[str, object] = {"v": 1, "phase": self.phase}
        if self.command_id:
            body |= {"command_id": self.command_id, "sent_at": round(self.sent_at or 0.0, 3), "job": self.sent_by}
        token = json.dumps(body, separators=(",", ":"))
        assert len(token) <= TOKEN_LIMIT
        return token

    def clamped(self, now: float) -> Checkpoint:
        """A send time in the future (a forged or skewed token) would hold off every grace period: cut it to now."""
        return replace(self, sent_at=min(self.sent_at, now)) if self.sent_at is not None else self


def decode(token: str) -> Checkpoint:
    try:
        body = json.loads(token)
        phase = body["phase"]
        if body.get("v") != 1 or phase not in tuple(Phase):
            raise ValueError(phase)
        if phase == Phase.SENT:
            command_id, sent_by, sent_at = str(body["command_id"]), str(body["job"]), float(body["sent_at"])
            if not (_UUID.fullmatch(command_id) and _UUID.fullmatch(sent_by) and math.isfinite(sent_at)):
                raise ValueError(command_id)
            return Checkpoint(Phase.SENT, command_id, sent_at, sent_by)
        return Checkpoint(Phase.PLANNED)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadToken(f"the job's continuation token was not written by this worker version ({token[:80]!r}); "
                       "retry the stage to start it afresh, after checking in SSM that its command is not "
                       "still running") from exc


def refusal(cp: Checkpoint, command: Mapping[str, Any], *, action_execution_id: str, where: str,
            config: Config) -> BadToken | None:
    """Why the command a SENT token names must not be tracked by this job, or None when it may.

    The command must carry the Comment the sending job gave it, which names this action
    execution, and run an allowed document. The message never repeats what the command holds.
    """
    assert cp.command_id and cp.sent_by
    if not action_execution_id or command.get("Comment") != job_comment(cp.sent_by, action_execution_id, where):
        return BadToken(f"the job's continuation token names SSM command {cp.command_id}, which was not sent for "
                        "this action execution; the token was refused and nothing was done to that command. "
                        "Retry the stage to start it afresh")
    try:
        check_document(str(command.get("DocumentName", "")), config)
    except NotAllowedError as exc:
        return BadToken(f"the job's continuation token names SSM command {cp.command_id}, whose document is not "
                        f"allowed: {exc}")
    return None
