"""SSM Run Command: send the planned command, read its progress, explain a failure.

Progress comes from ListCommandInvocations (one paginated call covers every instance);
outputs are fetched only once the command has ended, and only for failed instances, so a
long-running command costs one cheap call per check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from worker import redact
from worker.plan import Plan, full_output_hint

ACTIVE = frozenset({"Pending", "InProgress", "Delayed", "Cancelling"})
MAX_DETAILED_FAILURES = 10  # GetCommandInvocation calls for one failure message, at most


@dataclass(frozen=True)
class Invocation:
    instance_id: str
    status: str
    status_details: str

    @property
    def done(self) -> bool:
        return self.status not in ACTIVE


@dataclass(frozen=True)
class Progress:
    command_id: str
    invocations: tuple[Invocation, ...]

    @property
    def finished(self) -> int:
        return sum(i.done for i in self.invocations)

    @property
    def done(self) -> bool:
        return bool(self.invocations) and self.finished == len(self.invocations)

    @property
    def succeeded(self) -> bool:
        return self.done and all(i.status == "Success" for i in self.invocations)

    @property
    def percent(self) -> int:
        return self.finished * 100 // len(self.invocations) if self.invocations else 0

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for i in self.invocations:
            counts[i.status] = counts.get(i.status, 0) + 1
        states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no invocations yet"
        return f"SSM command {self.command_id}: {states}"


def send(ssm: Any, plan: Plan) -> str:
    return ssm.send_command(**plan.request())["Command"]["CommandId"]


def progress(ssm: Any, command_id: str) -> Progress:
    invocations = []
    for page in ssm.get_paginator("list_command_invocations").paginate(CommandId=command_id):
        invocations += [Invocation(i["InstanceId"], i["Status"], i.get("StatusDetails", ""))
                        for i in page.get("CommandInvocations", [])]
    return Progress(command_id, tuple(sorted(invocations, key=lambda i: i.instance_id)))


def command_report(ssm: Any, command_id: str, document: str) -> dict[str, Any]:
    """What the command did on each instance and step (the output artifact's content).

    One paginated ListCommandInvocations with details: per step the status, exit code and the
    first 2,500 characters of output that SSM keeps there. The command's own signed URLs become
    the job's secrets first (`learn_secrets`).
    """
    learn_secrets(command_record(ssm, command_id))
    instances = []
    paginator = ssm.get_paginator("list_command_invocations")
    for page in paginator.paginate(CommandId=command_id, Details=True):
        for inv in page.get("CommandInvocations", []):
            steps = [{"Name": p.get("Name"), "Status": p.get("Status"), "ResponseCode": p.get("ResponseCode"),
                      "Output": p.get("Output", "")} for p in inv.get("CommandPlugins", [])]
            instances.append({"InstanceId": inv["InstanceId"], "Status": inv["Status"],
                              "StatusDetails": inv.get("StatusDetails", ""), "Steps": steps})
    return {"CommandId": command_id, "DocumentName": document,
            "Instances": sorted(instances, key=lambda i: i["InstanceId"])}


def command_record(ssm: Any, command_id: str) -> dict[str, Any] | None:
    """The command itself (status, counts, comment); None if SSM does not know it."""
    commands = ssm.list_commands(CommandId=command_id).get("Commands", [])
    return commands[0] if commands else None


def learn_secrets(record: Mapping[str, Any] | None) -> None:
    """Make the signed URLs among a command's parameters (its ArtifactUrl) secrets of the current job.

    The job that reports a command is not the one that sent it: its own credentials differ from
    those that signed the URL the command may have printed.
    """
    parameters = (record or {}).get("Parameters") or {}
    redact.add(s for values in parameters.values() for v in values for s in redact.url_secrets(v))


def _tail(text: str, limit: int) -> str:
    text = (text or "").strip()
    if limit <= 0 or not text:
        return ""
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _failed_step(ssm: Any, command_id: str, instance_id: str) -> dict[str, Any] | None:
    """The first plugin (step) that did not succeed, from the detailed invocation."""
    resp = ssm.list_command_invocations(CommandId=command_id, InstanceId=instance_id, Details=True)
    for inv in resp.get("CommandInvocations", []):
        for plugin in inv.get("CommandPlugins", []):
            if plugin.get("Status") not in ("Success", "Skipped"):
                return plugin
    return None


def failure_message(ssm: Any, prog: Progress, *, document: str, limit: int) -> str:
    """Name each failed instance with its status, step, exit code and output tails, within `limit`."""
    failed = [i for i in prog.invocations if i.status != "Success"]
    if not prog.invocations:
        return (f"SSM command {prog.command_id} (document {document}) ran on no instance: the targets matched "
                "no managed instance; check the instance ids or tags in the spec file")
    header = (f"SSM command {prog.command_id} (document {document}) did not succeed on "
              f"{len(failed)} of {len(prog.invocations)} instance(s):")
    record = command_record(ssm, prog.command_id)
    learn_secrets(record)
    hint = full_output_hint(record or {}, prog.command_id)
    if hint:
        header += f"\n({hint})"
    detailed = failed[:MAX_DETAILED_FAILURES]
    budget = (limit - len(header) - 200) // max(1, len(detailed))
    blocks = []
    for inv in detailed:
        details = f" ({inv.status_details})" if inv.status_details not in ("", inv.status) else ""
        line = f"- {inv.instance_id}: {inv.status}{details}"
        plugin = _failed_step(ssm, prog.command_id, inv.instance_id)
        if plugin is None:
            blocks.append(line)
            continue
        name = plugin.get("Name", "")
        line += f", step {name!r} exit code {plugin.get('ResponseCode', -1)}"
        out = ssm.get_command_invocation(CommandId=prog.command_id, InstanceId=inv.instance_id, PluginName=name)
        room = max(0, budget - len(line) - 40)
        # Redacted before the cut, so no secret is left half-visible at the start of a tail.
        stderr = _tail(redact.scrub_text(out.get("StandardErrorContent") or ""), room * 2 // 3)
        stdout = _tail(redact.scrub_text(out.get("StandardOutputContent") or ""), room - len(stderr))
        if stderr:
            line += "\n  stderr:\n" + stderr
        if stdout:
            line += "\n  stdout:\n" + stdout
        blocks.append(line)
    rest: Sequence[Invocation] = failed[MAX_DETAILED_FAILURES:]
    if rest:
        blocks.append("- and " + ", ".join(f"{i.instance_id} ({i.status})" for i in rest))
    return "\n".join([header, *blocks])


def find_sent(ssm: Any, job_id: str, document_name: str, since: datetime) -> str | None:
    """The command a job already sent, found by the job id in its Comment (SendCommand has no idempotency token)."""
    marker = f"job {job_id} "
    after = (since - timedelta(minutes=5)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    filters = [{"key": "InvokedAfter", "value": after}, {"key": "DocumentName", "value": document_name}]
    for page in ssm.get_paginator("list_commands").paginate(Filters=filters):
        for command in page.get("Commands", []):
            if (command.get("Comment") or "").startswith(marker):
                return command["CommandId"]
    return None
