"""One job, from claim to result: claim → read spec → plan → send → checkpoint → track → report.

`Handler.process` is the only entry point. Once AcknowledgeJob says InProgress, every path ends
in exactly one result call (invariant 1): a success with a continuation token (checkpoint or
hand-back), a final success, or a failure whose type comes from `errors.failure_type`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from tenacity import (
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    stop_when_event_set,
    wait_exponential,
)

from worker import artifacts, commands
from worker.checkpoint import PLANNED, SENT, Checkpoint, decode
from worker.config import Config
from worker.documents import Document, load_document
from worker.errors import (
    DocumentError,
    SpecError,
    SystemUnavailable,
    WorkerError,
    aws_code,
    classify,
    failure_type,
    is_transient,
    maybe_executed,
)
from worker.jobs import Job, JobAPI
from worker.plan import Plan, check_document, job_comment, make_plan
from worker.spec import parse_spec

log = structlog.get_logger("worker")
T = TypeVar("T")
_LOST_CLAIM = frozenset({"InvalidNonceException", "JobNotFoundException"})
_GONE_COMMAND = frozenset({"InvalidCommandId"})


@dataclass(frozen=True)
class Outcome:
    """The one result call a job ends with."""

    kind: str  # "checkpoint" | "success" | "failure"
    summary: str
    checkpoint: Checkpoint | None = None
    percent: int | None = None
    external_id: str | None = None
    failure_type: str = "JobFailed"
    output_variables: dict[str, str] = field(default_factory=dict)


@dataclass
class Clients:
    """AWS clients the worker uses with its own role; S3 clients are made per job with job credentials."""

    codepipeline: Any
    ssm: Any
    ssm_send: Any  # no SDK retries: a retried SendCommand could run twice (see commands.find_sent)
    region: str | None


class DocumentCache:
    """Parsed documents by (name, resolved version): `$DEFAULT`/`$LATEST` are resolved on every use."""

    def __init__(self, ssm: Any, size: int = 64) -> None:
        self.ssm, self.size = ssm, size
        self._docs: OrderedDict[tuple[str, str], Document] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, version: str | None) -> tuple[str, Document]:
        if version and version.isdigit():
            resolved = version
        else:
            desc = self.ssm.describe_document(Name=name)["Document"]
            resolved = desc["LatestVersion"] if version == "$LATEST" else desc["DefaultVersion"]
        key = (name, resolved)
        with self._lock:
            if key in self._docs:
                self._docs.move_to_end(key)
                return resolved, self._docs[key]
        got = self.ssm.get_document(Name=name, DocumentVersion=resolved)
        if got.get("DocumentType", "Command") != "Command":
            raise DocumentError(f"document {name!r} is a {got['DocumentType']} document; the worker runs Command "
                                "documents (aws:runShellScript / aws:runPowerShellScript)")
        document = load_document(got["Content"], source=f"document {name!r} version {resolved}")
        with self._lock:
            self._docs[key] = document
            while len(self._docs) > self.size:
                self._docs.popitem(last=False)
        return resolved, document


class Handler:
    def __init__(self, config: Config, clients: Clients, stop: threading.Event) -> None:
        self.config = config
        self.clients = clients
        self.stop = stop
        self.api = JobAPI(clients.codepipeline, config.action_type, config.query_param)
        self.documents = DocumentCache(clients.ssm)

    # -- retries ---------------------------------------------------------------------------------
    def _retrying(self, attempts: int | None = None) -> Retrying:
        """The worker's own retry on top of botocore's: few attempts, and a stop signal ends the wait."""
        return Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(1 + (self.config.transient_retries if attempts is None else attempts))
            | stop_when_event_set(self.stop),
            wait=wait_exponential(multiplier=1, min=1, max=8),
            sleep=self.stop.wait,
            reraise=True,
        )

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._retrying()(fn, *args, **kwargs)

    # -- the job ---------------------------------------------------------------------------------
    def process(self, job: Job) -> None:
        """Claim the job and see it through; the caller runs this in its own context copy."""
        structlog.contextvars.bind_contextvars(**job.log_context())
        try:
            status = self._call(self.api.acknowledge, job)
        except Exception as exc:  # noqa: BLE001 - a job we could not claim is not ours: no result is owed
            code = aws_code(exc)
            if code in _LOST_CLAIM:
                log.info("job.claim_lost", reason=code)
            else:
                log.error("job.claim_failed", error=str(exc), code=code)
            return
        if status != "InProgress":
            log.info("job.claim_lost", status=status)
            return
        log.info("job.claimed", continuation=bool(job.continuation_token))
        self.report(job, self.run(job))

    def run(self, job: Job) -> Outcome:
        """The job's outcome; every error becomes a failure outcome here, in one place."""
        external_id = None
        try:
            cp = decode(job.continuation_token) if job.continuation_token else Checkpoint(PLANNED)
            if cp.phase == SENT and cp.command_id:
                external_id = cp.command_id
                structlog.contextvars.bind_contextvars(command_id=cp.command_id)
                return self.track(job, cp)
            return self.start(job)
        except Exception as exc:
            error = classify(exc, "the worker")
            if not isinstance(exc, WorkerError) and error.failure_type == "JobFailed":
                log.exception("job.internal_error")
            return Outcome("failure", str(error), failure_type=failure_type(error), external_id=external_id)

    def start(self, job: Job) -> Outcome:
        """Read the spec, plan, and send; the outcome is the checkpoint that records the command id."""
        claimed_at = datetime.now(UTC)
        if not job.input_artifacts:
            raise SpecError("the action has no input artifact; give it the source output that holds the spec file")
        artifact = job.input_artifacts[0]
        s3 = artifacts.s3_client(job.credentials, self.clients.region)
        try:
            raw = self._call(artifacts.read_member, s3, artifact, job.spec_file, max_bytes=self.config.spec_max_bytes)
        except WorkerError:
            raise
        except Exception as exc:
            raise classify(exc, f"reading {job.spec_file} from s3://{artifact.bucket}/{artifact.key}") from exc
        spec = parse_spec(raw, source=job.spec_file)
        log.info("spec.read", spec_file=job.spec_file, bytes=len(raw))

        name = job.configuration.get("DocumentName", "")
        if not name:
            raise DocumentError("the action configuration has no DocumentName; set it to the SSM document to run")
        check_document(name, self.config)
        try:
            version, document = self._call(self.documents.get, name, job.configuration.get("DocumentVersion"))
        except WorkerError:
            raise
        except Exception as exc:
            raise classify(exc, f"fetching document {name!r}") from exc
        log.info("document.resolved", document=name, version=version)

        auto = {"JobId": job.id, "PipelineExecutionId": job.pipeline_execution_id,
                "SourceRevision": artifact.revision or ""}
        if "ArtifactUrl" in document.parameters:
            auto["ArtifactUrl"] = artifacts.presigned_url(s3, artifact, self.config.artifact_url_expiry)
        auto = {k: v for k, v in auto.items() if v}
        plan = make_plan(spec, document, document_name=name, document_version=version, config=self.config,
                         auto=auto, comment=job_comment(job.id, job.where))
        log.info("command.planned", document=name, version=version, parameters=sorted(plan.parameters))
        if self.stop.is_set():
            log.info("job.handing_back", phase=PLANNED)
            return Outcome("checkpoint", "Worker stopping before sending; another worker will continue",
                           checkpoint=Checkpoint(PLANNED), percent=0)
        command_id = self.send(job, plan, claimed_at)
        structlog.contextvars.bind_contextvars(command_id=command_id)
        targets = len(plan.instance_ids) or "tagged"
        log.info("command.sent", document=name, version=version, targets=targets)
        return Outcome("checkpoint", f"Sent SSM command {command_id} ({name} v{version}) to {targets} instance(s)",
                       checkpoint=Checkpoint(SENT, command_id, time.time()), percent=0, external_id=command_id)

    def send(self, job: Job, plan: Plan, claimed_at: datetime) -> str:
        """SendCommand at most once: after an ambiguous error, look for the command before trying again."""
        ambiguous = False
        try:
            for attempt in self._retrying():
                with attempt:
                    if ambiguous:
                        found = commands.find_sent(self.clients.ssm, job.id, plan.document_name, claimed_at)
                        if found:
                            log.warning("command.found_after_error", command_id=found)
                            return found
                    try:
                        return commands.send(self.clients.ssm_send, plan)
                    except Exception as exc:
                        ambiguous = ambiguous or maybe_executed(exc)
                        raise
        except Exception as exc:
            raise classify(exc, f"sending document {plan.document_name!r}") from exc
        raise SystemUnavailable("SendCommand was not attempted: the worker is stopping")

    def track(self, job: Job, cp: Checkpoint) -> Outcome:
        """Check the command, holding the job up to hold_time; hand it back if it is still running."""
        assert cp.command_id
        state: dict[str, Any] = {"progress": None}

        def check() -> commands.Progress | None:
            try:
                prog = commands.progress(self.clients.ssm, cp.command_id)
            except Exception as exc:
                if aws_code(exc) in _GONE_COMMAND:
                    raise
                log.warning("command.check_failed", error=str(exc), code=aws_code(exc))
                return None
            state["progress"] = prog
            log.info("command.status", finished=prog.finished, total=len(prog.invocations),
                     statuses=sorted({i.status for i in prog.invocations}))
            if prog.done:
                return prog
            if not prog.invocations and time.time() - (cp.sent_at or 0) > self.config.invocation_grace:
                record = commands.command_record(self.clients.ssm, cp.command_id)
                if record is None or record.get("Status") not in commands.ACTIVE:
                    return prog  # no invocation will ever appear
            return None

        retrying = Retrying(
            retry=retry_if_result(lambda r: r is None),
            stop=stop_after_delay(self.config.hold_time) | stop_when_event_set(self.stop),
            wait=wait_exponential(multiplier=0.5, min=0.5, max=10),
            sleep=self.stop.wait,
            retry_error_callback=lambda _state: None,
        )
        try:
            final = retrying(check)
        except Exception as exc:
            if aws_code(exc) in _GONE_COMMAND:
                return Outcome("failure", f"SSM has no command {cp.command_id} any more (commands expire after "
                               "30 days); re-run the pipeline stage", external_id=cp.command_id)
            raise
        if final is None:
            prog = state["progress"]
            summary = prog.summary() if prog else f"SSM command {cp.command_id}: status not known yet"
            log.info("job.handing_back", phase=SENT, percent=prog.percent if prog else 0)
            return Outcome("checkpoint", summary, checkpoint=cp, percent=prog.percent if prog else 0,
                           external_id=cp.command_id)
        document = job.configuration.get("DocumentName", "")
        if final.succeeded:
            return Outcome("success", f"SSM command {cp.command_id} succeeded on {len(final.invocations)} "
                           "instance(s)", external_id=cp.command_id, percent=100,
                           output_variables={"CommandId": cp.command_id, "Status": "Success",
                                             "InstanceIds": ",".join(i.instance_id for i in final.invocations)[:1000]})
        message = self._call(commands.failure_message, self.clients.ssm, final, document=document, limit=5000)
        return Outcome("failure", message, external_id=cp.command_id)

    def report(self, job: Job, outcome: Outcome) -> None:
        """Make the job's one result call, retrying transient errors; log loudly if it cannot be made."""
        try:
            if outcome.kind == "failure":
                self._call(self.api.fail, job.id, outcome.failure_type, outcome.summary,
                           external_id=outcome.external_id)
                log.info("job.failed", failure_type=outcome.failure_type, message=outcome.summary)
            elif outcome.kind == "checkpoint":
                assert outcome.checkpoint
                self._call(self.api.succeed, job.id, summary=outcome.summary, external_id=outcome.external_id,
                           continuation_token=outcome.checkpoint.encode(), percent=outcome.percent)
                log.info("job.checkpointed", phase=outcome.checkpoint.phase, percent=outcome.percent)
            else:
                self._call(self.api.succeed, job.id, summary=outcome.summary, external_id=outcome.external_id,
                           percent=outcome.percent, output_variables=outcome.output_variables)
                log.info("job.succeeded", summary=outcome.summary)
        except Exception as exc:  # noqa: BLE001 - the daemon must keep running
            code = aws_code(exc)
            level = log.warning if code in ("InvalidJobStateException", "JobNotFoundException") else log.error
            level("job.result_failed", kind=outcome.kind, code=code, error=str(exc))
