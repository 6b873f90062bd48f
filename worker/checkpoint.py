"""The continuation token: how far a job got, stored in CodePipeline instead of the worker.

A worker that sends a command, or has to stop, hands the job back with this token; the next
job for the same action execution (any worker) reads it and carries on. It holds no secrets:
only the phase, the command id and when it was sent (≤2048 chars, the API limit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from worker.errors import BadToken

TOKEN_LIMIT = 2048
PLANNED = "planned"  # claimed, nothing sent: the next worker plans and sends
SENT = "sent"  # SendCommand returned this command id: the next worker tracks it


@dataclass(frozen=True)
class Checkpoint:
    phase: str
    command_id: str | None = None
    sent_at: float | None = None

    def encode(self) -> str:
        body = {"v": 1, "phase": self.phase}
        if self.command_id:
            body |= {"command_id": self.command_id, "sent_at": round(self.sent_at or 0.0, 3)}
        token = json.dumps(body, separators=(",", ":"))
        assert len(token) <= TOKEN_LIMIT
        return token


def decode(token: str) -> Checkpoint:
    try:
        body = json.loads(token)
        phase = body["phase"]
        if body.get("v") != 1 or phase not in (PLANNED, SENT):
            raise ValueError(phase)
        if phase == SENT:
            return Checkpoint(SENT, str(body["command_id"]), float(body["sent_at"]))
        return Checkpoint(PLANNED)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadToken(f"the job's continuation token was not written by this worker version ({token[:80]!r}); "
                       "retry the stage to start it afresh, after checking in SSM that its command is not "
                       "still running") from exc
