"""SSM documents and Run Command, with commands that really run on fake instances.

moto's Run Command reports Success without running anything; here SendCommand
runs the document's steps per target instance through ``worker.ssmdoc.runner``
in a background thread, with SSM's lifecycle: an invocation is invisible for
``invocation_visibility_delay`` (GetCommandInvocation raises
InvocationDoesNotExist, ListCommandInvocations returns nothing), Pending
(ResponseCode -1) until the fake agent picks it up after ``delivery_delay`` and
while its instance is offline, InProgress while it runs, then Success, Failed,
TimedOut or Cancelled. TimeoutSeconds is the delivery timeout: an invocation
still Pending when it expires ends TimedOut / DeliveryTimedOut without running.

The fake agent gives scripts the variables SSM Agent sets (SSM_COMMAND_ID,
AWS_SSM_INSTANCE_ID, AWS_SSM_REGION_NAME, AWS_SSM_PLATFORM_NAME/VERSION: this
machine's) and has no Parameter Store: a ``{{ssm:...}}`` reference fails the
command as a missing parameter does. A step that exits with the reboot code
"reboots" its instance at once: the runner resumes as the agent does after a
reboot (that step again, then the rest), up to ``MAX_REBOOTS`` times in a row.

Statuses and StatusDetails follow the SSM API reference (botocore's model docs)
and the user guide's "Understanding command statuses"; StatusDetails are the
API's CamelCase values ("InProgress", "ExecutionTimedOut", "DeliveryTimedOut")
as the AWS CLI examples show them, not the guide's spaced headings. Output
limits and truncation are the runner's (the agent's): 24,000 bytes of each
stream, 2,500 for a plugin's Output; StandardErrorContent shows the first
8,000 characters, the service's cut. Output bytes that are not UTF-8 reach
the API as U+FFFD, as from SSM Agent, whose Go JSON encoding replaces them (the
runner decodes with errors="replace"). ``time_scale`` compresses both the
delivery timeout (TimeoutSeconds) and step execution timeouts for tests.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from worker.errors import DocumentError
from worker.local.ssm_parameters import check_send_parameters
from worker.local.wire import ApiError, load_service
from worker.ssmdoc import (
    PLATFORMS,
    Document,
    Parameter,
    execution_timeout,
    load_document,
)
from worker.ssmdoc.runner import (
    SERVICE_STDERR_LIMIT,
    STATUS_DETAILS,
    AgentContext,
    RunResult,
    StepResult,
    local_platform,
    run_document,
)

DEFAULT_DELIVERY_TIMEOUT = 3600
"""SendCommand's TimeoutSeconds when omitted (the user guide: the default delivery timeout). Not the
step execution timeout (``ssmdoc.DEFAULT_TIMEOUT_SECONDS``, the agent's); the worker always sends its own."""
MAX_REBOOTS = 10  # an instance "reboots" by resuming the step; a document that reboots forever stops here
# The statuses an invocation is not finished in. The worker has the same AWS rule (commands.ACTIVE) and
# decides by it when a command is done; this copy is the emulator's own on purpose, so a mistake in the
# worker's set shows as a disagreement with SSM's behaviour here instead of being copied into it.
ACTIVE = frozenset({"Pending", "InProgress", "Delayed", "Cancelling"})
# Managed instance ids as SSM accepts them: the pattern of botocore's model (shape InstanceId), not the
# worker's stricter reading (spec.INSTANCE_ID_PATTERN).
_INSTANCE_ID = re.compile(load_service("ssm").model.shape_for("InstanceId").metadata["pattern"])
_PAGE_TOKEN = re.compile(r"^emulator-page-(\d+)$")


def _iso(moment: datetime) -> str:
    """ISO 8601 to the second: the form the model's StringDateTime pattern accepts."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ records


@dataclass
class Instance:
    """A fake managed instance: where commands 'run' (its own working directory)."""

    instance_id: str
    platform: str
    tags: dict[str, str]
    workdir: Path
    online: bool = True


@dataclass(frozen=True)
class DocumentVersion:
    version: str
    content: str
    fmt: str
    document: Document
    created: datetime
    hash: str


@dataclass
class DocumentRecord:
    name: str
    document_type: str
    versions: list[DocumentVersion]
    default_version: str = "1"

    @property
    def latest(self) -> DocumentVersion:
        return self.versions[-1]

    def version(self, wanted: str | None) -> DocumentVersion:
        """``$LATEST``, ``$DEFAULT`` (also when omitted) or a number; InvalidDocumentVersion else."""
        number = {None: self.default_version, "$DEFAULT": self.default_version, "$LATEST": self.latest.version}.get(
            wanted, wanted
        )
        for candidate in self.versions:
            if candidate.version == number:
                return candidate
        raise ApiError("InvalidDocumentVersion", f"Document {self.name} has no version {wanted}")


@dataclass
class PluginRecord:
    """One step of the document on one instance (a 'plugin' in the API)."""

    name: str
    status: str = "Pending"
    status_details: str = "Pending"
    response_code: int = -1
    stdout: str = ""
    stderr: str = ""
    output: str = ""
    started: datetime | None = None
    finished: datetime | None = None


@dataclass
class InvocationRecord:
    """The command on one instance."""

    instance_id: str
    plugins: list[PluginRecord]
    status: str = "Pending"
    status_details: str = "Pending"
    started: datetime | None = None
    finished: datetime | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def done(self) -> bool:
        return self.status not in ACTIVE

    @property
    def stdout(self) -> str:
        """What the steps wrote to stdout (each step's first 24,000 characters), for tests and the demo."""
        return "".join(p.stdout for p in self.plugins)

    @property
    def stderr(self) -> str:
        return "".join(p.stderr for p in self.plugins)

    @property
    def response_code(self) -> int:
        """The invocation's code: the last plugin that ran, -1 if none did."""
        codes = [p.response_code for p in self.plugins if p.started is not None]
        return codes[-1] if codes else -1


@dataclass
class CommandRecord:
    """A sent command and its invocations; status and counts are derived from them."""

    command_id: str
    request: dict[str, Any]
    document_name: str
    document_version: str
    document: Document
    values: dict[str, list[str]]
    requested: datetime
    requested_at: float
    visible_at: float
    timeout_seconds: int
    max_errors: str
    invocations: dict[str, InvocationRecord]
    cancelled: bool = False

    @property
    def comment(self) -> str:
        return str(self.request.get("Comment", ""))

    def counts(self) -> tuple[int, int, int]:
        """(completed, errors, delivery timeouts) as the Command structure counts them."""
        done = [i for i in self.invocations.values() if i.done]
        errors = sum(i.status == "Failed" or i.status_details == "ExecutionTimedOut" for i in done)
        delivery = sum(i.status_details == "DeliveryTimedOut" for i in done)
        return len(done), errors, delivery

    def status(self) -> tuple[str, str]:
        """(Status, StatusDetails) of the whole command, per "Understanding command statuses"."""
        invocations = list(self.invocations.values())
        if not invocations:
            return "Failed", "NoInstancesInTag"
        if all(i.status == "Pending" for i in invocations) and not self.cancelled:
            return "Pending", "Pending"
        if any(not i.done for i in invocations):
            return ("Cancelling", "Cancelling") if self.cancelled else ("InProgress", "InProgress")
        if all(i.status == "Success" for i in invocations):
            return "Success", "Success"
        if self.cancelled and any(i.status == "Cancelled" for i in invocations):
            return "Cancelled", "Cancelled"
        _, errors, delivery = self.counts()
        allowed = _max_errors(self.max_errors, len(invocations))
        if errors > allowed:
            timeouts = sum(i.status_details == "ExecutionTimedOut" for i in invocations)
            return ("TimedOut", "ExecutionTimedOut") if timeouts == errors else ("Failed", "Failed")
        if delivery > allowed:
            return "TimedOut", "DeliveryTimedOut"
        return "Success", "Incomplete"


def _max_errors(value: str, targets: int) -> int:
    if value.endswith("%"):
        return targets * int(value[:-1]) // 100
    return int(value)


def _max_concurrency(value: str, targets: int) -> int:
    if value.endswith("%"):
        return max(1, targets * int(value[:-1]) // 100)
    return max(1, int(value))


@dataclass(frozen=True)
class SentCommand:
    """One accepted SendCommand: the command id and the request exactly as received."""

    command_id: str
    request: dict[str, Any]


# ------------------------------------------------------------------ backend


class SsmBackend:
    """Documents, instances and commands; API operations and the Python API are thread-safe."""

    def __init__(
        self,
        *,
        account_id: str,
        region: str = "us-east-1",
        workdir: Path,
        invocation_visibility_delay: float,
        delivery_delay: float,
        list_commands_visibility_delay: float,
        require_plugin_name: bool,
        time_scale: float,
        report_bug: Callable[[str], None],
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.workdir = workdir
        self.invocation_visibility_delay = invocation_visibility_delay
        self.delivery_delay = delivery_delay
        self.list_commands_visibility_delay = list_commands_visibility_delay
        self.require_plugin_name = require_plugin_name
        self.time_scale = time_scale
        self._report_bug = report_bug
        self._lock = threading.RLock()
        self._instances: dict[str, Instance] = {}
        self._documents: dict[str, DocumentRecord] = {}
        self._commands: dict[str, CommandRecord] = {}
        self._sent: list[SentCommand] = []
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ test and demo API

    def register_instance(self, instance_id: str, platform: str = "Linux", tags: Mapping[str, str] | None = None) -> None:
        """Make a managed instance known (ids as SSM has them: i-xxxxxxxx or i-xxxxxxxxxxxxxxxxx)."""
        if not _INSTANCE_ID.search(instance_id):
            raise ValueError(f"{instance_id!r} is not an SSM managed instance id (i-0123456789abcdef0)")
        if platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {PLATFORMS}")
        workdir = self.workdir / instance_id
        workdir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._instances[instance_id] = Instance(instance_id, platform, dict(tags or {}), workdir)

    def set_online(self, instance_id: str, online: bool) -> None:
        """Take an instance's agent off line (its invocations stay Pending) or back."""
        with self._lock:
            self._instances[instance_id].online = online

    def create_document(self, name: str, content: str, fmt: str = "YAML") -> str:
        """Store a Command document (any name, also AWS-*); returns its version, "1"."""
        return self._create(name, content, fmt, "Command")["DocumentVersion"]

    def update_document(self, name: str, content: str, fmt: str = "YAML") -> str:
        """Add a version (not made the default, as in SSM); returns its number."""
        return self._update(name, content, fmt, "$LATEST")["DocumentVersion"]

    @property
    def sent_commands(self) -> list[SentCommand]:
        with self._lock:
            return list(self._sent)

    def command(self, command_id: str) -> CommandRecord:
        """A snapshot of one command with its invocations (KeyError if unknown)."""
        with self._lock:
            record = self._commands[command_id]
            snapshot = copy.copy(record)
            snapshot.invocations = {
                k: InvocationRecord(
                    i.instance_id, [copy.copy(p) for p in i.plugins], i.status, i.status_details, i.started, i.finished, i.cancel
                )
                for k, i in record.invocations.items()
            }
            return snapshot

    def stop(self) -> None:
        """Cancel every running invocation and wait for the runner to kill its processes."""
        with self._lock:
            for command in self._commands.values():
                for invocation in command.invocations.values():
                    invocation.cancel.set()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=10)

    # ------------------------------------------------------------ API dispatch

    def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = _OPERATIONS.get(operation)
        if handler is None:
            raise ApiError("UnknownOperationException", f"the emulator does not implement SSM {operation}")
        with self._lock:
            return handler(self, params)

    # ------------------------------------------------------------ documents

    def _create_document(self, params: dict[str, Any]) -> dict[str, Any]:
        described = self._create(
            params["Name"], params["Content"], params.get("DocumentFormat", "JSON"), params.get("DocumentType", "Command")
        )
        return {"DocumentDescription": described}

    def _create(self, name: str, content: str, fmt: str, document_type: str) -> dict[str, Any]:
        with self._lock:
            if name in self._documents:
                raise ApiError("DocumentAlreadyExists", f"Document with same name {name} already exists")
            if document_type not in ("Command", "Policy"):  # a Policy document has a Command document's shape
                raise ApiError("InvalidDocumentContent", f"The emulator only stores Command and Policy documents, "
                                                         f"not {document_type}")
            record = DocumentRecord(name, document_type, [self._version(name, "1", content, fmt)])
            self._documents[name] = record
            return self._describe(record, record.latest)

    def _update_document(self, params: dict[str, Any]) -> dict[str, Any]:
        described = self._update(
            params["Name"], params["Content"], params.get("DocumentFormat", "JSON"), params.get("DocumentVersion", "$LATEST")
        )
        return {"DocumentDescription": described}

    def _update(self, name: str, content: str, fmt: str, base: str) -> dict[str, Any]:
        with self._lock:
            record = self._document(name)
            if base not in ("$LATEST", record.latest.version):
                raise ApiError("InvalidDocumentVersion", "Only the latest version of a document can be updated")
            if content == record.latest.content:
                raise ApiError("DuplicateDocumentContent", "The content of the new version is the same as the latest")
            version = self._version(name, str(len(record.versions) + 1), content, fmt)
            record.versions.append(version)
            return self._describe(record, version)

    def _update_default_version(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._document(params["Name"])
        record.default_version = record.version(params["DocumentVersion"]).version
        return {"Description": {"Name": record.name, "DefaultVersion": record.default_version}}

    def _describe_document(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._document(params["Name"])
        return {"Document": self._describe(record, record.version(params.get("DocumentVersion")))}

    def _get_document(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._document(params["Name"])
        version = record.version(params.get("DocumentVersion"))
        fmt = params.get("DocumentFormat", version.fmt)
        return {
            "Name": record.name,
            "CreatedDate": version.created,
            "DocumentVersion": version.version,
            "Status": "Active",
            "Content": _convert(version.content, version.fmt, fmt),
            "DocumentType": record.document_type,
            "DocumentFormat": fmt,
        }

    def _version(self, name: str, number: str, content: str, fmt: str) -> DocumentVersion:
        if fmt == "TEXT":
            raise ApiError("InvalidDocumentContent", "Command documents are JSON or YAML")
        try:
            document = load_document(content, source=name)
        except DocumentError as exc:
            raise ApiError("InvalidDocumentContent", str(exc)) from exc
        digest = hashlib.sha256(content.encode()).hexdigest()
        return DocumentVersion(number, content, fmt, document, _now(), digest)

    def _document(self, name: str) -> DocumentRecord:
        record = self._documents.get(name.rsplit("/", 1)[-1])
        if record is None:
            raise ApiError("InvalidDocument", f"Document {name} does not exist")
        return record

    def _describe(self, record: DocumentRecord, version: DocumentVersion) -> dict[str, Any]:
        document = version.document
        described: dict[str, Any] = {
            "Hash": version.hash,
            "HashType": "Sha256",
            "Name": record.name,
            "Owner": self.account_id,
            "CreatedDate": version.created,
            "Status": "Active",
            "DocumentVersion": version.version,
            "Parameters": [_describe_parameter(name, p) for name, p in document.parameters.items()],
            "PlatformTypes": _platforms(document),
            "DocumentType": record.document_type,
            "SchemaVersion": document.schema_version,
            "LatestVersion": record.latest.version,
            "DefaultVersion": record.default_version,
            "DocumentFormat": version.fmt,
            "Tags": [],
        }
        if document.description:
            described["Description"] = document.description
        return described

    # ------------------------------------------------------------ commands

    def _send_command(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._document(params["DocumentName"])
        version = record.version(params.get("DocumentVersion"))
        if params.get("DocumentHash") and params["DocumentHash"] != version.hash:
            raise ApiError("InvalidDocument", "The document hash does not match the requested version")
        instances = self._targets(params)
        values = {name: list(items) for name, items in params.get("Parameters", {}).items()}
        check_send_parameters(record.name, version.document, values)
        now = time.monotonic()
        command = CommandRecord(
            command_id=str(uuid.uuid4()),
            request=copy.deepcopy(params),
            document_name=record.name,
            document_version=params.get("DocumentVersion", "$DEFAULT"),
            document=version.document,
            values=values,
            requested=_now(),
            requested_at=now,
            visible_at=now + self.invocation_visibility_delay,
            timeout_seconds=params.get("TimeoutSeconds", DEFAULT_DELIVERY_TIMEOUT),
            max_errors=params.get("MaxErrors", "0"),
            invocations={
                i.instance_id: InvocationRecord(i.instance_id, [PluginRecord(s.name) for s in version.document.steps])
                for i in instances
            },
        )
        self._commands[command.command_id] = command
        self._sent.append(SentCommand(command.command_id, copy.deepcopy(params)))
        gate = threading.Semaphore(_max_concurrency(params.get("MaxConcurrency", "50"), len(instances) or 1))
        for instance in instances:
            thread = threading.Thread(
                target=self._run_invocation,
                args=(command, command.invocations[instance.instance_id], instance, gate),
                name=f"ssm-{command.command_id[:8]}-{instance.instance_id}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()
        return {"Command": self._command_view(command)}

    def _targets(self, params: Mapping[str, Any]) -> list[Instance]:
        ids = params.get("InstanceIds") or []
        targets = params.get("Targets") or []
        if bool(ids) == bool(targets):
            raise ApiError("ValidationException", "Specify either InstanceIds or Targets")
        if ids:
            if len(set(ids)) != len(ids):
                raise ApiError("DuplicateInstanceId", "An instance id is given more than once")
            return [self._instance(i) for i in ids]
        chosen: set[str] | None = None
        for target in targets:
            found = self._match(target["Key"], target.get("Values", []))
            chosen = found if chosen is None else chosen & found
        return [self._instances[i] for i in sorted(chosen or ())]

    def _match(self, key: str, values: Sequence[str]) -> set[str]:
        """Instances matching one target; several targets must all match."""
        if key == "InstanceIds":
            return {self._instance(v).instance_id for v in values}
        if key.startswith("tag:"):
            tag = key[4:]
            return {i.instance_id for i in self._instances.values() if i.tags.get(tag) in values}
        if key == "tag-key":
            return {i.instance_id for i in self._instances.values() if any(v in i.tags for v in values)}
        raise ApiError("ValidationException", f"Target key {key} is not supported by the emulator")

    def _instance(self, instance_id: str) -> Instance:
        instance = self._instances.get(instance_id)
        if instance is None:
            raise ApiError("InvalidInstanceId", f"Instances [[{instance_id}]] not in a valid state for account {self.account_id}")
        return instance

    def _run_invocation(
        self, command: CommandRecord, invocation: InvocationRecord, instance: Instance, gate: threading.Semaphore
    ) -> None:
        """The fake agent's thread; a crash in it is an emulator bug, not a silent hang."""
        try:
            self._agent(command, invocation, instance, gate)
        except Exception:  # noqa: BLE001 - reported, and the invocation still ends
            self._report_bug(f"ssm invocation {command.command_id} on {instance.instance_id}:\n{traceback.format_exc()}")
            self._end(invocation, "Failed")

    def _agent(
        self, command: CommandRecord, invocation: InvocationRecord, instance: Instance, gate: threading.Semaphore
    ) -> None:
        """Wait for delivery, run the document, record every step's outcome."""
        if not self._deliver(command, invocation, instance):
            return
        while not gate.acquire(timeout=0.05):
            if invocation.cancel.is_set():
                self._end(invocation, "Cancelled")
                return
        try:
            with self._lock:
                if invocation.cancel.is_set():
                    self._end(invocation, "Cancelled")
                    return
                invocation.status = invocation.status_details = "InProgress"
                invocation.started = _now()
                self._start_next_plugin(invocation)
            context = AgentContext(command.command_id, instance.instance_id, self.region, *local_platform())
            resume: list[StepResult] = []
            for _ in range(MAX_REBOOTS + 1):
                result = run_document(
                    command.document,
                    command.values,
                    platform=instance.platform,
                    workdir=str(instance.workdir),
                    context=context,
                    cancel=invocation.cancel,
                    on_step=lambda step: self._step_finished(invocation, step),
                    resume=resume,
                    time_scale=self.time_scale,
                )
                if result.status != "SuccessAndReboot" or invocation.cancel.is_set():
                    break
                resume = result.steps
            self._record_result(invocation, result)
        finally:
            gate.release()

    def _deliver(self, command: CommandRecord, invocation: InvocationRecord, instance: Instance) -> bool:
        """Wait until the agent would receive the command; False if it never will."""
        deliver_at = command.requested_at + self.delivery_delay
        expires_at = command.requested_at + command.timeout_seconds * self.time_scale
        while True:
            now = time.monotonic()
            if invocation.cancel.is_set():
                self._end(invocation, "Cancelled")
                return False
            if now >= deliver_at and instance.online:
                return True
            if now >= expires_at:
                self._end(invocation, "TimedOut", "DeliveryTimedOut")
                return False
            invocation.cancel.wait(0.05)

    def _start_next_plugin(self, invocation: InvocationRecord) -> None:
        pending = next((p for p in invocation.plugins if p.started is None), None)
        if pending is not None:
            pending.status = pending.status_details = "InProgress"
            pending.started = _now()

    def _step_finished(self, invocation: InvocationRecord, step: StepResult) -> None:
        """The runner finished a step: record it as its plugin, start the next one."""
        with self._lock:
            plugin = next((p for p in invocation.plugins if p.name == step.name and p.finished is None), None)
            if plugin is None:
                return
            if step.status == "SuccessAndReboot":  # the instance reboots; the step runs again
                plugin.stdout, plugin.stderr, plugin.output = step.stdout, step.stderr, step.plugin_output()
                return
            plugin.status, plugin.status_details = _plugin_status(step)
            plugin.response_code = step.exit_code
            plugin.stdout, plugin.stderr, plugin.output = step.stdout, step.stderr, step.plugin_output()
            plugin.started = plugin.started or _now()
            plugin.finished = _now()
            if not invocation.cancel.is_set():
                self._start_next_plugin(invocation)

    def _record_result(self, invocation: InvocationRecord, result: RunResult) -> None:
        if result.status == "SuccessAndReboot":  # still rebooting after MAX_REBOOTS: give up
            result.status = "Failed"
            result.error = f"the emulator stopped after {MAX_REBOOTS} reboots in a row"
        if result.error:  # the document failed before any step ran: every plugin says why
            with self._lock:
                for plugin in invocation.plugins:
                    if plugin.finished is None:
                        plugin.output = result.error
        cancelled = result.status == "Cancelled" or (invocation.cancel.is_set() and result.status != "Success")
        self._end(invocation, "Cancelled" if cancelled else result.status)

    def _end(self, invocation: InvocationRecord, status: str, details: str | None = None) -> None:
        """Put the invocation in a final state; plugins that never finished share it."""
        with self._lock:
            invocation.status, invocation.status_details = status, details or STATUS_DETAILS[status]
            invocation.finished = _now()
            for plugin in invocation.plugins:
                if plugin.finished is None:
                    plugin.status, plugin.status_details = invocation.status, invocation.status_details
                    plugin.finished = invocation.finished

    def _cancel_command(self, params: dict[str, Any]) -> dict[str, Any]:
        command = self._commands.get(params["CommandId"])
        if command is None:
            raise ApiError("InvalidCommandId", f"Command {params['CommandId']} does not exist")
        ids = params.get("InstanceIds") or list(command.invocations)
        if len(set(ids)) != len(ids):
            raise ApiError("DuplicateInstanceId", "An instance id is given more than once")
        unknown = [i for i in ids if i not in command.invocations]
        if unknown:
            raise ApiError("InvalidInstanceId", f"Command {command.command_id} was not sent to {unknown}")
        command.cancelled = True
        for instance_id in ids:
            invocation = command.invocations[instance_id]
            if invocation.status == "InProgress":
                invocation.status = invocation.status_details = "Cancelling"
            invocation.cancel.set()
        return {}

    # ------------------------------------------------------------ reading commands

    def _get_command_invocation(self, params: dict[str, Any]) -> dict[str, Any]:
        command = self._commands.get(params["CommandId"])
        invocation = command.invocations.get(params["InstanceId"]) if command else None
        if command is None or invocation is None or time.monotonic() < command.visible_at:
            raise ApiError("InvocationDoesNotExist", "The command invocation does not exist")
        plugin = self._plugin(command, invocation, params.get("PluginName"))
        result: dict[str, Any] = {
            "CommandId": command.command_id,
            "InstanceId": invocation.instance_id,
            "Comment": command.comment,
            "DocumentName": command.document_name,
            "DocumentVersion": command.document_version,
            "PluginName": plugin.name,
            "ResponseCode": plugin.response_code,
            "Status": plugin.status,
            "StatusDetails": plugin.status_details,
            "StandardOutputContent": plugin.stdout if plugin.finished else "",
            "StandardOutputUrl": "",
            "StandardErrorContent": plugin.stderr[:SERVICE_STDERR_LIMIT] if plugin.finished else "",
            "StandardErrorUrl": "",
        }
        for key, moment in (("ExecutionStartDateTime", plugin.started), ("ExecutionEndDateTime", plugin.finished)):
            if moment is not None:
                result[key] = _iso(moment)
        return result

    def _plugin(self, command: CommandRecord, invocation: InvocationRecord, name: str | None) -> PluginRecord:
        if name is None:
            if len(invocation.plugins) == 1 or not self.require_plugin_name:
                return invocation.plugins[0]
            raise ApiError(
                "InvalidPluginName",
                f"Document {command.document_name} has {len(invocation.plugins)} steps: PluginName is required",
            )
        for plugin in invocation.plugins:
            if plugin.name == name:
                return plugin
        raise ApiError("InvalidPluginName", f"The plugin name {name} is not valid")

    def _list_command_invocations(self, params: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic()
        commands = self._select_commands(params, delay=None)
        rows = []
        for command in commands:
            if now < command.visible_at:
                continue
            for invocation in command.invocations.values():
                if params.get("InstanceId") not in (None, invocation.instance_id):
                    continue
                if not _filters_match(params.get("Filters", []), command, invocation, invocations=True):
                    continue
                rows.append(self._invocation_view(command, invocation, bool(params.get("Details"))))
        return _page(rows, params, "CommandInvocations")

    def _list_commands(self, params: dict[str, Any]) -> dict[str, Any]:
        commands = self._select_commands(params, delay=self.list_commands_visibility_delay)
        rows = [
            self._command_view(c)
            for c in commands
            if params.get("InstanceId") in (None, *c.invocations) and _filters_match(params.get("Filters", []), c, None)
        ]
        return _page(rows, params, "Commands")

    def _select_commands(self, params: Mapping[str, Any], delay: float | None) -> list[CommandRecord]:
        wanted = params.get("CommandId")
        if wanted is not None and wanted not in self._commands:
            raise ApiError("InvalidCommandId", f"Command {wanted} does not exist")
        now = time.monotonic()
        newest_first = sorted(self._commands.values(), key=lambda c: c.requested_at, reverse=True)
        return [
            c
            for c in newest_first
            if wanted in (None, c.command_id) and (delay is None or now >= c.requested_at + delay)
        ]

    def _command_view(self, command: CommandRecord) -> dict[str, Any]:
        status, details = command.status()
        completed, errors, delivery = command.counts()
        request = command.request
        view: dict[str, Any] = {
            "CommandId": command.command_id,
            "DocumentName": command.document_name,
            "DocumentVersion": command.document_version,
            "Comment": command.comment,
            "ExpiresAfter": datetime.fromtimestamp(
                command.requested.timestamp() + command.timeout_seconds + _execution_timeout(command), UTC
            ),
            "Parameters": copy.deepcopy(request.get("Parameters", {})),
            "InstanceIds": list(request.get("InstanceIds", [])),
            "Targets": copy.deepcopy(request.get("Targets", [])),
            "RequestedDateTime": command.requested,
            "Status": status,
            "StatusDetails": details,
            "MaxConcurrency": request.get("MaxConcurrency", "50"),
            "MaxErrors": command.max_errors,
            "TargetCount": len(command.invocations),
            "CompletedCount": completed,
            "ErrorCount": errors,
            "DeliveryTimedOutCount": delivery,
            "TimeoutSeconds": command.timeout_seconds,
        }
        for key in ("OutputS3BucketName", "OutputS3KeyPrefix", "ServiceRoleArn", "CloudWatchOutputConfig",
                    "NotificationConfig"):
            if key in request:
                view["ServiceRole" if key == "ServiceRoleArn" else key] = copy.deepcopy(request[key])
        return view

    def _invocation_view(self, command: CommandRecord, invocation: InvocationRecord, details: bool) -> dict[str, Any]:
        view: dict[str, Any] = {
            "CommandId": command.command_id,
            "InstanceId": invocation.instance_id,
            "InstanceName": "",
            "Comment": command.comment,
            "DocumentName": command.document_name,
            "DocumentVersion": command.document_version,
            "RequestedDateTime": command.requested,
            "Status": invocation.status,
            "StatusDetails": invocation.status_details,
            "TraceOutput": "",
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "CommandPlugins": [_plugin_view(p) for p in invocation.plugins] if details else [],
        }
        return view


# ------------------------------------------------------------------ helpers


def _plugin_status(step: StepResult) -> tuple[str, str]:
    """A step's outcome as a CommandPlugin status.

    The model's CommandPluginStatus has no "Skipped": a skipped step (which
    counts as success) is Success with StatusDetails "Skipped".
    """
    if step.status == "Skipped":
        return "Success", STATUS_DETAILS["Skipped"]
    status = step.status if step.status in STATUS_DETAILS else "Failed"
    return status, STATUS_DETAILS[status]


def _plugin_view(plugin: PluginRecord) -> dict[str, Any]:
    view: dict[str, Any] = {
        "Name": plugin.name,
        "Status": plugin.status,
        "StatusDetails": plugin.status_details,
        "ResponseCode": plugin.response_code,
        "Output": plugin.output,
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
    }
    if plugin.started:
        view["ResponseStartDateTime"] = plugin.started
    if plugin.finished:
        view["ResponseFinishDateTime"] = plugin.finished
    return view


def _filters_match(
    filters: Iterable[Mapping[str, str]], command: CommandRecord, invocation: InvocationRecord | None, *, invocations: bool = False
) -> bool:
    for item in filters:
        key, value = item["key"], item["value"]
        if key in ("InvokedAfter", "InvokedBefore"):
            moment = _filter_time(value)
            if (command.requested < moment) if key == "InvokedAfter" else (command.requested > moment):
                return False
        elif key == "DocumentName":
            if command.document_name != value:
                return False
        elif key == "Status":
            status, details = (invocation.status, invocation.status_details) if invocation else command.status()
            if value not in (status, details):
                return False
        elif key == "ExecutionStage":
            if invocations:
                raise ApiError("InvalidFilterKey", "ExecutionStage can't be used with ListCommandInvocations")
            status, _ = command.status()
            if (value == "Executing") != (status in ACTIVE):
                return False
        else:
            raise ApiError("InvalidFilterKey", f"The filter key {key} is not valid")
    return True


def _filter_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ApiError("ValidationException", f"{value!r} is not an ISO 8601 timestamp") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _page(rows: list[dict[str, Any]], params: Mapping[str, Any], key: str) -> dict[str, Any]:
    start = 0
    if params.get("NextToken"):
        found = _PAGE_TOKEN.match(params["NextToken"])
        if not found:
            raise ApiError("InvalidNextToken", "The specified token isn't valid")
        start = int(found.group(1))
    size = params.get("MaxResults", 50)
    result: dict[str, Any] = {key: rows[start : start + size]}
    if start + size < len(rows):
        result["NextToken"] = f"emulator-page-{start + size}"
    return result


def _describe_parameter(name: str, parameter: Parameter) -> dict[str, Any]:
    described = {"Name": name, "Type": parameter.type}
    if parameter.description:
        described["Description"] = parameter.description
    if parameter.default is not None:
        described["DefaultValue"] = parameter.default if isinstance(parameter.default, str) else json.dumps(parameter.default)
    return described


def _platforms(document: Document) -> list[str]:
    """Platforms the steps' actions run on (runShellScript: Linux, macOS; PowerShell: all)."""
    found: set[str] = set()
    for step in document.steps:
        found |= {"Linux", "MacOS"} if step.action == "aws:runShellScript" else set(PLATFORMS)
    return [p for p in PLATFORMS if p in found]


def _execution_timeout(command: CommandRecord) -> int:
    """The longest step timeout: the user guide's total timeout is delivery + execution timeout."""
    return max((execution_timeout(step.inputs.get("timeoutSeconds")) for step in command.document.steps), default=0)


def _convert(content: str, source: str, target: str) -> str:
    if source == target:
        return content
    loaded = yaml.safe_load(content)
    return json.dumps(loaded, indent=2) if target == "JSON" else yaml.safe_dump(loaded, sort_keys=False)


_OPERATIONS: dict[str, Callable[[SsmBackend, dict[str, Any]], dict[str, Any]]] = {
    "CreateDocument": SsmBackend._create_document,
    "UpdateDocument": SsmBackend._update_document,
    "UpdateDocumentDefaultVersion": SsmBackend._update_default_version,
    "DescribeDocument": SsmBackend._describe_document,
    "GetDocument": SsmBackend._get_document,
    "SendCommand": SsmBackend._send_command,
    "GetCommandInvocation": SsmBackend._get_command_invocation,
    "ListCommandInvocations": SsmBackend._list_command_invocations,
    "ListCommands": SsmBackend._list_commands,
    "CancelCommand": SsmBackend._cancel_command,
}
