"""One job, from claim to result: claim → read spec → plan → send → checkpoint → track → report.

`Handler.see_through` is the only entry point. Once AcknowledgeJob says InProgress, every path ends
in exactly one result call (invariant 1): a success with a continuation token (checkpoint or
hand-back), a final success, or a failure whose type comes from `errors.failure_type`.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import structlog
from tenacity import (
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
)

from worker import artifacts, commands, journal, redact
from worker.checkpoint import Checkpoint, Phase, decode, refusal
from worker.clock import Clock
from worker.config import Config
from worker.errors import (
    BadToken,
    SendUncertain,
    SpecError,
    SystemUnavailable,
    WorkerError,
    aws_code,
    classify,
    failure_type,
    is_transient,
    maybe_executed,
)
from worker.jobs import LIMITS, Job, JobAPI
from worker.journal import Event, Journal
from worker.plan import Plan, document_version
from worker.prepare import JobContext, prepare
from worker.ssmdoc import Document, load_document

log = structlog.get_logger("worker")
T = TypeVar("T")
_LOST_CLAIM = frozenset({"InvalidNonceException", "JobNotFoundException"})
_GONE_COMMAND = frozenset({"InvalidCommandId"})
LIST_VISIBILITY = 5.0  # seconds a just-sent command may take to show in ListCommands (not published: a margin)
# What the console shows for a job handed back with a continuation token, by why it was handed back.
STOPPED_BEFORE_SENDING = "Worker stopped before sending; the next job continues it"
STOPPED = "Worker stopped; the next job continues it"
RESTARTED = "Handed back after a worker restart; the next job continues it"


class ResultKind(StrEnum):
    """Which result call an Outcome makes (the value is what the logs show)."""

    CHECKPOINT = "checkpoint"  # PutJobSuccessResult with a continuation token: the next job carries on
    SUCCESS = "success"  # PutJobSuccessResult, final
    FAILURE = "failure"  # PutJobFailureResult


@dataclass(frozen=True)
class Outcome:
    """The one result call a job ends with."""

    kind: ResultKind
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
    s3: artifacts.S3Clients


class DocumentCache:
    """Parsed documents by (name, resolved version): `$DEFAULT`/`$LATEST` are resolved on every use."""

    def __init__(self, ssm: Any, size: int = 64) -> None:
        self.ssm, self.size = ssm, size
        self._docs: OrderedDict[tuple[str, str], Document] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, version: str | None) -> tuple[str, Document]:
        """The resolved version number and the document; `version` is the action's DocumentVersion property."""
        wanted = document_version(version)
        if wanted.isdigit():
            resolved = wanted
        else:
            desc = self.ssm.describe_document(Name=name)["Document"]
            resolved = desc["LatestVersion"] if wanted == "$LATEST" else desc["DefaultVersion"]
        key = (name, resolved)
        with self._lock:
            if key in self._docs:
                self._docs.move_to_end(key)
                return resolved, self._docs[key]
        got = self.ssm.get_document(Name=name, DocumentVersion=resolved)
        document = load_document(got["Content"], source=f"document {name!r} version {resolved}",
                                 document_type=got.get("DocumentType", "Command"))
        with self._lock:
            self._docs[key] = document
            while len(self._docs) > self.size:
                self._docs.popitem(last=False)
        return resolved, document


class InFlightPhase(StrEnum):
    """Where an in-flight job is, and so who may make its result call (its thread or the main loop)."""

    CLAIMED = "claimed"  # acknowledged, nothing sent yet: the loop may hand it back as planned
    SENDING = "sending"  # inside SendCommand: nobody may hand it back until it returns
    SENT = "sent"  # the command id is known: the loop may hand it back for tracking
    REPORTING = "reporting"  # its thread is making the result call
    TAKEN = "taken"  # the loop handed it back: its thread must not report


class InFlight:
    """Each in-flight job's phase, shared by its thread and the main loop.

    At shutdown the loop hands back jobs whose thread is stuck in a slow call. Phase changes
    happen under one lock, so a job is either sent by its thread or handed back by the loop,
    never both, and reported by exactly one of them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, tuple[InFlightPhase, Checkpoint]] = {}

    def claimed(self, job_id: str, cp: Checkpoint | None) -> None:
        """Register the job with the checkpoint it came with; None (an unreadable token): its thread fails it."""
        with self._lock:
            if cp is None:
                self._jobs[job_id] = (InFlightPhase.REPORTING, Checkpoint(Phase.PLANNED))
            else:
                self._jobs[job_id] = (InFlightPhase.SENT if cp.phase == Phase.SENT else InFlightPhase.CLAIMED, cp)

    def _move(self, job_id: str, to: InFlightPhase, *, unless: tuple[InFlightPhase, ...],
              cp: Checkpoint | None = None) -> bool:
        with self._lock:
            phase, current = self._jobs.get(job_id, (InFlightPhase.TAKEN, Checkpoint(Phase.PLANNED)))
            if phase in unless:
                return False
            self._jobs[job_id] = (to, cp or current)
            return True

    def begin_send(self, job_id: str, stop: threading.Event) -> bool:
        """False when the worker is stopping or the loop took the job over: do not send."""
        return not stop.is_set() and self._move(job_id, InFlightPhase.SENDING, unless=(InFlightPhase.TAKEN,))

    def sent(self, job_id: str, cp: Checkpoint) -> None:
        self._move(job_id, InFlightPhase.SENT, unless=(), cp=cp)

    def begin_report(self, job_id: str) -> bool:
        """False when the loop already handed the job back: its thread must not report too."""
        return self._move(job_id, InFlightPhase.REPORTING, unless=(InFlightPhase.TAKEN,))

    def take_over(self, job_id: str) -> Checkpoint | None:
        """The checkpoint to hand back for a stuck job, or None while a send or a result call is under way."""
        with self._lock:
            phase, cp = self._jobs.get(job_id, (InFlightPhase.TAKEN, Checkpoint(Phase.PLANNED)))
            if phase not in (InFlightPhase.CLAIMED, InFlightPhase.SENT):
                return None
            self._jobs[job_id] = (InFlightPhase.TAKEN, cp)
            return cp

    def done(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)


def handback(cp: Checkpoint, summary: str, percent: int = 0) -> Outcome:
    """A continuation-token result: the next job for this action execution carries on from `cp`."""
    return Outcome(ResultKind.CHECKPOINT, summary, checkpoint=cp, percent=percent, external_id=cp.command_id)


def _not_sent(**fields: object) -> Outcome:
    """The hand-back of a job stopped before its command went out: the next job plans and sends."""
    log.info("job.handing_back", phase=Phase.PLANNED, **fields)
    return handback(Checkpoint(Phase.PLANNED), STOPPED_BEFORE_SENDING)


class Handler:
    def __init__(self, config: Config, clients: Clients, stop: threading.Event,
                 journal: Journal | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.clients = clients
        self.stop = stop
        self.clock = clock or Clock()
        self.journal = journal
        self.in_flight = InFlight()
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
            sleep=self._sleep,
            reraise=True,
        )

    def _sleep(self, seconds: float) -> None:
        """Tenacity's sleep: on the worker's clock, cut short by a stop request."""
        self.clock.wait(self.stop, seconds)

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._retrying()(fn, *args, **kwargs)

    def _aws(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """An AWS step before the send: retried, then mapped to the failure it means."""
        try:
            return self._call(fn, *args, **kwargs)
        except WorkerError:
            raise
        except Exception as exc:
            raise classify(exc, what) from exc

    def _record(self, event: str, job_id: str, **fields: object) -> None:
        """Journal a step; a journal that cannot be written (disk full) weakens crash recovery, not the job."""
        if not self.journal:
            return
        try:
            self.journal.record(event, job_id, **redact.scrub(fields))
        except OSError as exc:
            log.error("journal.write_failed", journal_event=event, error=str(exc))

    # -- the job ---------------------------------------------------------------------------------
    def see_through(self, job: Job) -> bool:
        """Claim the job and see it through; the caller runs this in its own context copy.

        False when the job is left in the journal for `recover` (its claim's outcome or its result
        call failed), so the daemon runs a recovery round soon.
        """
        structlog.contextvars.bind_contextvars(**job.log_context())
        redact.bind(job.secrets(tuple(self.config.query_param)))  # ends with the job's context copy
        if self.stop.is_set():
            log.info("job.not_claimed", reason="worker stopping")  # unclaimed: CodePipeline hands it out again
            return True
        # A crash mid-acknowledge is recoverable; the token says whether a command was already sent.
        self._record(Event.CLAIMING, job.id, nonce=job.nonce, token=job.continuation_token)
        ours = self.claim(job.id, job.nonce)
        if ours is None:
            return self.journal is None
        if not ours:
            self._record(Event.ENDED, job.id)
            return True
        self._record(Event.CLAIMED, job.id)
        carried = _carried(job.continuation_token)
        # Registered before anything can fail, with the token's checkpoint: a hand-back needs it.
        self.in_flight.claimed(job.id, carried if isinstance(carried, Checkpoint) else None)
        log.info("job.claimed", continuation=bool(job.continuation_token))
        try:
            outcome = self.continue_from(job, carried) if isinstance(carried, Checkpoint) else \
                Outcome(ResultKind.FAILURE, str(carried), failure_type=failure_type(carried))
            if self.in_flight.begin_report(job.id):
                return self.report(job.id, outcome) or self.journal is None
            return True  # the main loop handed it back
        finally:
            self.in_flight.done(job.id)

    def claim(self, job_id: str, nonce: str) -> bool | None:
        """AcknowledgeJob: True when the job is ours (InProgress), False when it is not (a lost claim is
        not an error), None when the call failed and the answer is unknown (the journal keeps the nonce)."""
        try:
            status = self._call(self.api.acknowledge, job_id, nonce)
        except Exception as exc:  # noqa: BLE001 - the daemon outlives any AWS error
            code = aws_code(exc)
            if code in _LOST_CLAIM:
                log.info("job.claim_lost", reason=code)
                return False
            log.error("job.claim_failed", error=str(exc), code=code,
                      retry="from the journal" if self.journal else "none: no state_dir")
            return None
        if status != "InProgress":
            log.info("job.claim_lost", status=status)
        return status == "InProgress"

    def continue_from(self, job: Job, cp: Checkpoint) -> Outcome:
        """The job's outcome from the checkpoint it came with; every error becomes a failure outcome here."""
        try:
            if cp.phase == Phase.SENT and cp.command_id:
                structlog.contextvars.bind_contextvars(command_id=cp.command_id)
                return self.track(job, cp.clamped(self.clock.now()))
            return self.prepare_and_send(job)
        except Exception as exc:
            error = classify(exc, "the worker")
            if self.stop.is_set() and type(error) is SystemUnavailable and cp.phase != Phase.SENT:
                return _not_sent(error=str(error))
            if not isinstance(exc, WorkerError) and error.failure_type == "JobFailed":
                log.exception("job.internal_error")
            return Outcome(ResultKind.FAILURE, str(error), failure_type=failure_type(error),
                           external_id=cp.command_id)

    def prepare_and_send(self, job: Job) -> Outcome:
        """Read the spec, plan, and send; the outcome is the checkpoint that records the command id."""
        claimed_at = datetime.fromtimestamp(self.clock.now(), UTC)
        if not job.input_artifacts:
            raise SpecError("the action has no input artifact; give it the source output that holds the spec file")
        artifact = job.input_artifacts[0]
        s3 = self.clients.s3.for_job(job.credentials)

        def read_spec(member: str) -> bytes:
            return self._aws(f"reading {job.spec_file} from s3://{artifact.bucket}/{artifact.key}",
                             artifacts.read_member, s3, artifact, member, max_bytes=self.config.spec_max_bytes)

        def fetch_document(name: str, version: str) -> tuple[str, Document]:
            return self._aws(f"fetching document {name!r}", self.documents.get, name, version)

        def artifact_url() -> str:
            url = artifacts.presigned_url(s3, artifact, self.config.artifact_url_expiry)
            redact.add(redact.url_secrets(url))  # its signature is as secret as the credentials
            return url

        prepared = prepare(spec_file=job.spec_file, read_spec=read_spec,
                           document_name=job.configuration.get("DocumentName", ""),
                           version=job.configuration.get("DocumentVersion"), fetch_document=fetch_document,
                           config=self.config,
                           job=JobContext(job.id, job.action_execution_id, job.pipeline_execution_id, job.where,
                                          artifact.revision, artifact_url))
        plan, name, version = prepared.plan, prepared.document_name, prepared.version
        if not self.in_flight.begin_send(job.id, self.stop):
            return _not_sent()
        self._record(Event.SENDING, job.id, document=name)
        command_id = self.send(job, plan, claimed_at)
        sent_at = self.clock.now()
        self._record(Event.SENT, job.id, command_id=command_id, sent_at=sent_at)
        self.in_flight.sent(job.id, Checkpoint(Phase.SENT, command_id, sent_at, job.id))
        structlog.contextvars.bind_contextvars(command_id=command_id)
        targets = len(plan.instance_ids) or "tagged"
        log.info("command.sent", document=name, version=version, targets=targets)
        return handback(Checkpoint(Phase.SENT, command_id, sent_at, job.id),
                        f"Sent SSM command {command_id} ({name} v{version}) to {targets} instance(s)")

    def send(self, job: Job, plan: Plan, claimed_at: datetime) -> str:
        """SendCommand at most once: after an error that may have reached SSM, look for the command first.

        The look waits until LIST_VISIBILITY has passed since that error, so a command SSM is still
        indexing is found rather than sent again; if the worker is stopping before it can be sure,
        the job fails with SendUncertain instead of risking a second command.
        """
        uncertain_since: float | None = None

        def attempt() -> str:
            nonlocal uncertain_since
            if uncertain_since is not None:
                self.clock.wait(self.stop, LIST_VISIBILITY - self.clock.since(uncertain_since))
                found = commands.find_sent(self.clients.ssm, job.id, plan.document_name, claimed_at)
                if found:
                    log.warning("command.found_after_error", command_id=found)
                    return found
                if self.stop.is_set():
                    raise SendUncertain("the worker is stopping before it could tell whether the command went out")
            try:
                return commands.send(self.clients.ssm_send, plan)
            except Exception as exc:
                if uncertain_since is None and maybe_executed(exc):
                    uncertain_since = self.clock.now()
                raise

        try:
            return self._call(attempt)
        except Exception as exc:
            error = classify(exc, f"sending document {plan.document_name!r}")
            if uncertain_since is not None:
                raise SendUncertain(f"{error}; the command may have run: look for an SSM command whose comment "
                                    f"starts with 'job {job.id}' before running the stage again") from exc
            raise error from exc

    def track(self, job: Job, cp: Checkpoint) -> Outcome:
        """Check the command, holding the job up to hold_time; hand it back if it is still running.

        Nothing is read from the command before `_ours` accepted it: a token naming another
        pipeline's command, or none, fails the job (JobFailed) and touches nothing.
        """
        assert cp.command_id and cp.sent_at is not None
        verified = False
        last: commands.Progress | None = None

        def check() -> commands.Progress | None:
            nonlocal verified, last
            try:
                verified = verified or self._ours(job, cp)
                if not verified:
                    return None
                prog = commands.progress(self.clients.ssm, cp.command_id)
                last = prog
                log.info("command.status", finished=prog.finished, total=len(prog.invocations),
                         statuses=sorted({i.status for i in prog.invocations}))
                if prog.done:
                    return prog
                if not prog.invocations and self.clock.since(cp.sent_at or 0) > self.config.invocation_grace:
                    record = commands.command_record(self.clients.ssm, cp.command_id)
                    if record is None or record.get("Status") not in commands.ACTIVE:
                        return prog  # no invocation will ever appear
                return None
            except BadToken:
                raise
            except Exception as exc:
                if verified and aws_code(exc) in _GONE_COMMAND:
                    raise
                log.warning("command.check_failed", error=str(exc), code=aws_code(exc))
                return None  # check again later: the command runs regardless

        held_until = self.clock.monotonic() + self.config.hold_time
        retrying = Retrying(
            retry=retry_if_result(lambda r: r is None),
            stop=lambda _state: self.stop.is_set() or self.clock.monotonic() >= held_until,
            wait=wait_exponential(multiplier=0.5, min=0.5, max=10),
            sleep=self._sleep,
            retry_error_callback=lambda _state: None,
        )
        try:
            final = retrying(check)
        except BadToken as exc:
            log.warning("job.token_refused", error=str(exc))
            return Outcome(ResultKind.FAILURE, str(exc), failure_type=failure_type(exc))  # no link to a foreign command
        except Exception as exc:
            if aws_code(exc) in _GONE_COMMAND:
                return Outcome(ResultKind.FAILURE, f"SSM has no command {cp.command_id} any more (commands expire "
                               "after 30 days); re-run the pipeline stage", external_id=cp.command_id)
            raise
        if final is None:
            prog = last
            summary = prog.summary() if prog else f"SSM command {cp.command_id}: status not known yet"
            log.info("job.handing_back", phase=Phase.SENT, percent=prog.percent if prog else 0)
            return handback(cp, summary, prog.percent if prog else 0)
        document = job.configuration.get("DocumentName", "")
        if final.succeeded:
            if job.output_artifacts:
                self.write_output(job, cp.command_id, document)
            return Outcome(ResultKind.SUCCESS, f"SSM command {cp.command_id} succeeded on {len(final.invocations)} "
                           "instance(s)", external_id=cp.command_id, percent=100,
                           output_variables={"CommandId": cp.command_id, "Status": "Success",
                                             "InstanceIds": ",".join(i.instance_id for i in final.invocations)[:1000]})
        try:
            message = self._call(commands.failure_message, self.clients.ssm, final, document=document,
                                 limit=LIMITS["message"])
        except Exception as exc:  # noqa: BLE001 - the failure is known; only its details are missing
            if is_transient(exc):  # the command has ended and stays readable: the next job reads it
                log.warning("command.check_failed", error=str(exc), code=aws_code(exc))
                return handback(cp, final.summary(), final.percent)
            failed = [i for i in final.invocations if i.status != "Success"]
            message = (f"SSM command {cp.command_id} (document {document}) did not succeed on {len(failed)} of "
                       f"{len(final.invocations)} instance(s) ({final.summary().partition(': ')[2]}); its output "
                       f"could not be read: {classify(exc, 'reading the failed steps')}")
        return Outcome(ResultKind.FAILURE, message, external_id=cp.command_id)

    def _ours(self, job: Job, cp: Checkpoint) -> bool:
        """True when SSM shows the token's command as sent for this action execution with an allowed
        document; False while a just-sent command may not be listed yet; BadToken when it may not be tracked."""
        assert cp.command_id and cp.sent_at is not None
        try:
            record = commands.command_record(self.clients.ssm, cp.command_id)
        except Exception as exc:
            if aws_code(exc) not in _GONE_COMMAND:
                raise
            record = None
        if record is None:
            if self.clock.since(cp.sent_at) < LIST_VISIBILITY:
                return False
            raise BadToken(f"SSM has no command {cp.command_id}, which the job's continuation token names (commands "
                           "expire after 30 days); nothing was done: re-run the pipeline stage")
        refused = refusal(cp, record, action_execution_id=job.action_execution_id, where=job.where,
                          config=self.config)
        if refused:
            raise refused
        return True

    def write_output(self, job: Job, command_id: str, document: str) -> None:
        """The action's output artifact: ssm-command.json, what the command did on each instance and step."""
        report = self._aws("reading the command's results", commands.command_report, self.clients.ssm, command_id,
                           document)
        artifact = job.output_artifacts[0]
        body = json.dumps(redact.scrub(report), indent=2).encode()
        self._aws(f"writing output artifact {artifact.name!r} to s3://{artifact.bucket}/{artifact.key}",
                  artifacts.write_output, self.clients.s3.for_job(job.credentials), artifact,
                  {"ssm-command.json": body}, kms_key_id=job.encryption_key_id)
        log.info("output.written", artifact=artifact.name)

    def report(self, job_id: str, outcome: Outcome) -> bool:
        """Make the job's one result call, retrying transient errors; False when it could not be made.

        A call that cannot be made (CodePipeline unreachable, or the worker stopping) leaves the
        job unfinished in the journal, and `recover` makes it later.
        """
        try:
            if outcome.kind == ResultKind.FAILURE:
                self._call(self.api.fail, job_id, outcome.failure_type, outcome.summary,
                           external_id=outcome.external_id)
                log.info("job.failed", failure_type=outcome.failure_type, message=outcome.summary)
            elif outcome.kind == ResultKind.CHECKPOINT:
                assert outcome.checkpoint
                self._call(self.api.succeed, job_id, summary=outcome.summary, external_id=outcome.external_id,
                           continuation_token=outcome.checkpoint.encode(), percent=outcome.percent)
                log.info("job.checkpointed", phase=outcome.checkpoint.phase, percent=outcome.percent)
            else:
                self._call(self.api.succeed, job_id, summary=outcome.summary, external_id=outcome.external_id,
                           percent=outcome.percent, output_variables=outcome.output_variables)
                log.info("job.succeeded", summary=outcome.summary)
        except Exception as exc:  # noqa: BLE001 - the daemon must keep running
            code = aws_code(exc)
            if code not in ("InvalidJobStateException", "JobNotFoundException"):
                log.error("job.result_failed", kind=outcome.kind, code=code, error=str(exc),
                          retry="from the journal" if self.journal else "none: no state_dir")
                return False
            log.warning("job.result_refused", kind=outcome.kind, code=code, error=str(exc))
        self._record(Event.ENDED, job_id)
        return True

    def take_over(self, job_id: str) -> bool:
        """Hand back a job whose thread is stuck in a slow call (shutdown); False if it cannot be."""
        cp = self.in_flight.take_over(job_id)
        if cp is None:
            return False
        structlog.contextvars.bind_contextvars(job_id=job_id)
        log.info("job.handing_back", phase=cp.phase, by="main loop")
        self.report(job_id, handback(cp, STOPPED))
        structlog.contextvars.unbind_contextvars("job_id")
        return True

    def recover(self, job: journal.Unfinished) -> bool:
        """Finish one job the journal shows unfinished (a crash, or a claim or result call that failed).

        The job is handed back with a token saying how far it got, so the next job for the same
        action execution plans and sends (nothing went out) or tracks (a command id is known). The
        token the job came with comes first; an intent to send without a command id is settled by
        looking for the command. True when settled; False when a call failed or the answer is not
        known yet: the job stays in the journal and the daemon tries again later (never "planned"
        on a guess: that could send twice).
        """
        structlog.contextvars.bind_contextvars(job_id=job.job_id)
        try:
            if job.nonce:  # acknowledged or not? Acknowledging again with our nonce says; a stale nonce: not ours
                ours = self.claim(job.job_id, job.nonce)
                if ours is None:
                    return False
                if not ours:
                    self._record(Event.ENDED, job.job_id)
                    return True
                self._record(Event.CLAIMED, job.job_id)
            outcome = self._recovered(job)
            if outcome is None:
                return False
            log.info("job.recovering", kind=outcome.kind, command_id=outcome.external_id)
            return self.report(job.job_id, outcome)
        except Exception as exc:  # noqa: BLE001 - the job stays in the journal; the daemon goes on
            log.warning("job.recovery_failed", error=str(exc), code=aws_code(exc))
            return False
        finally:
            structlog.contextvars.unbind_contextvars("job_id")

    def _recovered(self, job: journal.Unfinished) -> Outcome | None:
        """The result a recovered job ends with; None while it cannot be known yet (stopping)."""
        carried = _carried(job.token)
        if isinstance(carried, BadToken):
            return Outcome(ResultKind.FAILURE, str(carried), failure_type=failure_type(carried))
        if carried.phase == Phase.SENT:
            return handback(carried, RESTARTED)
        cp = Checkpoint(Phase.SENT, job.command_id, job.sent_at, job.job_id) if job.command_id else \
            Checkpoint(Phase.PLANNED)
        if job.intent_without_command and job.document:
            if self.clock.wait(self.stop, LIST_VISIBILITY - self.clock.since(job.intent_at or 0)):
                return None  # stopping before SSM surely lists the command: not sure it was not sent
            found = self._call(commands.find_sent, self.clients.ssm, job.job_id, job.document,
                               datetime.fromtimestamp(job.claimed_at, UTC))
            if found:
                cp = Checkpoint(Phase.SENT, found, job.intent_at, job.job_id)
        return handback(cp, RESTARTED)


def _carried(token: str | None) -> Checkpoint | BadToken:
    """The checkpoint a job's continuation token holds (planned when none), or why it cannot be read."""
    try:
        return decode(token) if token else Checkpoint(Phase.PLANNED)
    except BadToken as exc:
        return exc
