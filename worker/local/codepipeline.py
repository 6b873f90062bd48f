"""The CodePipeline custom-action job API, with the job lifecycle a worker really meets.

A job is Queued until PollForJobs hands it out (Dispatched, with a fresh nonce);
AcknowledgeJob with that nonce makes it InProgress; one result call ends it
(Succeeded or Failed). A job handed out but not acknowledged within
``redispatch_after`` seconds is handed out again with a new nonce, so the first
worker's nonce goes stale (InvalidNonceException). An InProgress job without a
result after ``job_timeout`` seconds is TimedOut. A success with a
continuationToken ends that job and queues a new one (new id, nonce and
credentials, same action execution) carrying the token.

Time-driven transitions are computed lazily from a monotonic clock whenever the
backend is used, so no thread is needed and nothing races a timer.
"""

from __future__ import annotations

import base64
import copy
import secrets
import string
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.local.wire import ApiError, load_service, shape_problems

QUEUED = "Queued"
DISPATCHED = "Dispatched"
IN_PROGRESS = "InProgress"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
TIMED_OUT = "TimedOut"

OUTPUT_VARIABLES_MAX_BYTES = 122_880
"""AWS-FACTS: output variables of one action, keys and values together."""


@dataclass(frozen=True)
class ActionType:
    """A custom action type as CreateCustomActionType stored it."""

    category: str
    provider: str
    version: str
    configuration_properties: tuple[dict[str, Any], ...]
    input_artifacts: tuple[int, int]
    output_artifacts: tuple[int, int]
    settings: dict[str, str]
    owner: str = "Custom"

    @property
    def type_id(self) -> dict[str, str]:
        return {"category": self.category, "owner": self.owner, "provider": self.provider, "version": self.version}

    @property
    def queryable_property(self) -> str | None:
        return next((p["name"] for p in self.configuration_properties if p.get("queryable")), None)

    def describe(self) -> dict[str, Any]:
        """The ``ActionType`` structure of the API."""
        described: dict[str, Any] = {
            "id": self.type_id,
            "actionConfigurationProperties": [dict(p) for p in self.configuration_properties],
            "inputArtifactDetails": {"minimumCount": self.input_artifacts[0], "maximumCount": self.input_artifacts[1]},
            "outputArtifactDetails": {"minimumCount": self.output_artifacts[0], "maximumCount": self.output_artifacts[1]},
        }
        if self.settings:
            described["settings"] = dict(self.settings)
        return described


def _type_key(type_id: Mapping[str, str]) -> tuple[str, str, str, str]:
    return (type_id["category"], type_id.get("owner", "Custom"), type_id["provider"], type_id["version"])


@dataclass(frozen=True)
class ResultCall:
    """One accepted PutJobSuccessResult / PutJobFailureResult, as the worker sent it."""

    job_id: str
    operation: str
    request: dict[str, Any]

    @property
    def is_final(self) -> bool:
        """A failure, or a success that hands back no continuation token."""
        return self.operation == "PutJobFailureResult" or "continuationToken" not in self.request


@dataclass
class JobRecord:
    """A job and everything that happened to it."""

    id: str
    action_type: dict[str, str]
    action_execution_id: str
    account_id: str
    data: dict[str, Any]
    available_at: float
    status: str = QUEUED
    nonce: str | None = None
    dispatched_at: float | None = None
    acknowledged_at: float | None = None
    dispatch_count: int = 0
    nonces: list[str] = field(default_factory=list)
    result: ResultCall | None = None

    @property
    def continuation_token(self) -> str | None:
        return self.data.get("continuationToken")

    @property
    def credentials(self) -> dict[str, str]:
        return dict(self.data["artifactCredentials"])

    def summary(self) -> str:
        token = f" token={self.continuation_token!r}" if self.continuation_token else ""
        result = f" result={self.result.operation}" if self.result else ""
        return f"job {self.id} {self.status} dispatched={self.dispatch_count}x{token}{result}"


def _fake_credentials() -> dict[str, str]:
    """A fresh, unique fake session key set, shaped like STS's: the secret key and the session token are
    base64, with the "+", "/" and "=" that URL-encoding changes (a presigned URL carries the token encoded)."""
    upper = string.ascii_uppercase + string.digits
    return {
        "accessKeyId": "ASIA" + "".join(secrets.choice(upper) for _ in range(16)),
        "secretAccessKey": base64.b64encode(secrets.token_bytes(30)).decode(),
        "sessionToken": "IQoJb3JpZ2luX2VjE" + base64.b64encode(secrets.token_bytes(200)).decode(),
    }


class CodePipelineBackend:
    """Custom action types and their jobs; every method is thread-safe."""

    def __init__(
        self,
        *,
        region: str,
        account_id: str,
        redispatch_after: float,
        job_timeout: float,
        continuation_delay: float,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.redispatch_after = redispatch_after
        self.job_timeout = job_timeout
        self.continuation_delay = continuation_delay
        self._lock = threading.Condition(threading.RLock())
        self._types: dict[tuple[str, str, str, str], ActionType] = {}
        self._jobs: dict[str, JobRecord] = {}
        self._results: list[ResultCall] = []
        self._model = load_service("codepipeline").model

    # ------------------------------------------------------------ test and demo API

    def create_custom_action_type(
        self,
        category: str,
        provider: str,
        version: str,
        configuration_properties: Sequence[Mapping[str, Any]] | None = None,
        input_artifacts: tuple[int, int] = (1, 1),
        output_artifacts: tuple[int, int] = (0, 1),
        settings: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Register an action type (as CreateCustomActionType would); returns its actionTypeId.

        Properties default to ``required``/``key``/``secret`` False, which the API requires.
        """
        request: dict[str, Any] = {
            "category": category,
            "provider": provider,
            "version": version,
            "configurationProperties": [
                {"required": False, "key": False, "secret": False, **p} for p in configuration_properties or ()
            ],
            "inputArtifactDetails": {"minimumCount": input_artifacts[0], "maximumCount": input_artifacts[1]},
            "outputArtifactDetails": {"minimumCount": output_artifacts[0], "maximumCount": output_artifacts[1]},
        }
        if settings:
            request["settings"] = dict(settings)
        problems = shape_problems(request, self._model.operation_model("CreateCustomActionType").input_shape)
        if problems:
            raise ValueError("invalid custom action type: " + "; ".join(problems))
        try:
            with self._lock:
                return self.CreateCustomActionType(request)["actionType"]["id"]
        except ApiError as exc:
            raise ValueError(exc.message) from exc

    def enqueue_job(
        self,
        action_type: Mapping[str, str],
        *,
        configuration: Mapping[str, str],
        input_artifacts: Sequence[Mapping[str, str]] | None = None,
        output_artifacts: Sequence[Mapping[str, str]] | None = None,
        pipeline_name: str = "demo-pipeline",
        stage_name: str = "Deploy",
        action_name: str = "RunOnVM",
        pipeline_execution_id: str | None = None,
        encryption_key_id: str | None = None,
        continuation_token: str | None = None,
        artifact_credentials: bool = True,
    ) -> str:
        """Queue a job as a pipeline execution reaching the action would; returns the job id.

        Artifacts are dicts with ``name``, ``bucket``, ``key`` and optionally
        ``revision``. The configuration and artifact counts are checked against
        the action type, as CodePipeline checks a pipeline declaration.
        ``continuation_token`` queues the job as if a previous job had handed it back
        (e.g. with a token some other job worker wrote). ``artifact_credentials=False`` leaves
        ``artifactCredentials`` out of the job data (the API does not promise them).
        """
        with self._lock:
            kind = self._types.get(_type_key(action_type))
            if kind is None:
                raise ValueError(f"no custom action type {dict(action_type)}; create it first")
            self._check_declaration(kind, configuration, input_artifacts or (), output_artifacts or ())
            execution_id = pipeline_execution_id or str(uuid.uuid4())
            data: dict[str, Any] = {
                "actionTypeId": kind.type_id,
                "actionConfiguration": {"configuration": dict(configuration)},
                "pipelineContext": {
                    "pipelineName": pipeline_name,
                    "stage": {"name": stage_name},
                    "action": {"name": action_name, "actionExecutionId": str(uuid.uuid4())},
                    "pipelineArn": f"arn:aws:codepipeline:{self.region}:{self.account_id}:{pipeline_name}",
                    "pipelineExecutionId": execution_id,
                },
                "inputArtifacts": [_artifact(a) for a in input_artifacts or ()],
                "outputArtifacts": [_artifact(a) for a in output_artifacts or ()],
            }
            if encryption_key_id:
                data["encryptionKey"] = {"id": encryption_key_id, "type": "KMS"}
            if continuation_token:
                data["continuationToken"] = continuation_token
            return self._queue(kind.type_id, data, delay=0.0, credentials=artifact_credentials).id

    def job(self, job_id: str) -> JobRecord:
        """A snapshot of one job (KeyError if unknown)."""
        with self._lock:
            self._tick()
            return copy.deepcopy(self._jobs[job_id])

    @property
    def jobs(self) -> list[JobRecord]:
        """Snapshots of every job, oldest first."""
        with self._lock:
            self._tick()
            return [copy.deepcopy(j) for j in self._jobs.values()]

    def jobs_for(self, action_execution_id: str) -> list[JobRecord]:
        return [j for j in self.jobs if j.action_execution_id == action_execution_id]

    @property
    def results(self) -> list[ResultCall]:
        with self._lock:
            return list(self._results)

    def results_for(self, action_execution_id: str) -> list[ResultCall]:
        """Result calls of one action execution, across its continuation jobs."""
        with self._lock:
            return [r for r in self._results if self._jobs[r.job_id].action_execution_id == action_execution_id]

    def final_result(self, action_execution_id: str) -> ResultCall | None:
        """The call that ended the action execution: a failure, or a success without token."""
        return next((r for r in self.results_for(action_execution_id) if r.is_final), None)

    def wait_final(self, action_execution_id: str, timeout: float) -> ResultCall:
        """Block until the action execution has its final result; TimeoutError with a dump if not."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                self._tick()
                final = self.final_result(action_execution_id)
                if final is not None:
                    return final
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(self._dump(action_execution_id, timeout))
                self._lock.wait(min(remaining, 0.05))

    def _dump(self, action_execution_id: str, timeout: float) -> str:
        lines = [f"no final result for action execution {action_execution_id} within {timeout}s"]
        jobs = [j for j in self._jobs.values() if j.action_execution_id == action_execution_id]
        lines += [f"  {j.summary()}" for j in jobs] or ["  (no job has that action execution id)"]
        lines += [f"  {r.operation} on {r.job_id}: {r.request}" for r in self.results_for(action_execution_id)]
        return "\n".join(lines)

    # ------------------------------------------------------------ API operations

    def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run one API operation on validated params; raises ApiError as AWS would."""
        handler = getattr(self, operation, None)
        if operation not in _OPERATIONS or handler is None:
            raise ApiError("UnknownOperationException", f"the emulator does not implement CodePipeline {operation}")
        with self._lock:
            self._tick()
            result: dict[str, Any] = handler(params)
            self._lock.notify_all()
            return result

    def CreateCustomActionType(self, params: dict[str, Any]) -> dict[str, Any]:
        properties = tuple(dict(p) for p in params.get("configurationProperties", []))
        queryable = [p for p in properties if p.get("queryable")]
        if len(queryable) > 1:
            raise ApiError("ValidationException", "An action type can have at most one queryable property")
        if queryable and (not queryable[0]["required"] or queryable[0]["secret"]):
            raise ApiError("ValidationException", "A queryable property must be required and must not be secret")
        names = [p["name"] for p in properties]
        if len(set(names)) != len(names):
            raise ApiError("ValidationException", "Configuration property names must be unique")
        inputs, outputs = params["inputArtifactDetails"], params["outputArtifactDetails"]
        kind = ActionType(
            category=params["category"],
            provider=params["provider"],
            version=params["version"],
            configuration_properties=properties,
            input_artifacts=(inputs["minimumCount"], inputs["maximumCount"]),
            output_artifacts=(outputs["minimumCount"], outputs["maximumCount"]),
            settings=dict(params.get("settings", {})),
        )
        existing = self._types.get(_type_key(kind.type_id))
        if existing is not None and existing != kind:
            raise ApiError(
                "ValidationException",
                f"Action type {kind.type_id} already exists with another definition; use a new version",
            )
        self._types[_type_key(kind.type_id)] = kind
        return {"actionType": kind.describe()}

    def ListActionTypes(self, params: dict[str, Any]) -> dict[str, Any]:
        owner = params.get("actionOwnerFilter")
        return {"actionTypes": [t.describe() for t in self._types.values() if owner in (None, t.owner)]}

    def PollForJobs(self, params: dict[str, Any]) -> dict[str, Any]:
        kind = self._types.get(_type_key(params["actionTypeId"]))
        if kind is None:
            raise ApiError("ActionTypeNotFoundException", f"Action type {params['actionTypeId']} does not exist")
        wanted = self._query_filter(kind, params.get("queryParam"))
        now = time.monotonic()
        jobs = []
        for job in self._jobs.values():
            if len(jobs) >= params.get("maxBatchSize", 1):
                break
            if job.action_type != kind.type_id or not self._ready(job, now):
                continue
            configuration = job.data["actionConfiguration"]["configuration"]
            if wanted and configuration.get(wanted[0]) != wanted[1]:
                continue
            job.status = DISPATCHED
            job.nonce = secrets.token_hex(8)
            job.nonces.append(job.nonce)
            job.dispatched_at = now
            job.dispatch_count += 1
            jobs.append({"id": job.id, "data": copy.deepcopy(job.data), "nonce": job.nonce, "accountId": self.account_id})
        return {"jobs": jobs}

    def AcknowledgeJob(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._get(params["jobId"])
        if job.nonce is None or params["nonce"] != job.nonce:
            raise ApiError("InvalidNonceException", f"The nonce {params['nonce']} is not valid for job {job.id}")
        if job.status == DISPATCHED:
            job.status = IN_PROGRESS
            job.acknowledged_at = time.monotonic()
        return {"status": job.status}

    def GetJobDetails(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._get(params["jobId"])
        return {"jobDetails": {"id": job.id, "data": copy.deepcopy(job.data), "accountId": self.account_id}}

    def PutJobSuccessResult(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._finishable(params["jobId"])
        token = params.get("continuationToken")
        variables = params.get("outputVariables")
        if token is not None and variables:
            raise ApiError("ValidationException", "outputVariables can only be set when continuationToken is not set")
        if variables and sum(len(k.encode()) + len(v.encode()) for k, v in variables.items()) > OUTPUT_VARIABLES_MAX_BYTES:
            raise ApiError(
                "OutputVariablesSizeExceededException",
                f"The output variables exceed {OUTPUT_VARIABLES_MAX_BYTES} bytes",
            )
        self._finish(job, SUCCEEDED, "PutJobSuccessResult", params)
        if token is not None:
            data = copy.deepcopy(job.data)
            data["continuationToken"] = token
            self._queue(job.action_type, data, delay=self.continuation_delay,
                        credentials="artifactCredentials" in job.data)
        return {}

    def PutJobFailureResult(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._finishable(params["jobId"])
        self._finish(job, FAILED, "PutJobFailureResult", params)
        return {}

    # ------------------------------------------------------------ internals

    def _check_declaration(
        self,
        kind: ActionType,
        configuration: Mapping[str, str],
        inputs: Sequence[Mapping[str, str]],
        outputs: Sequence[Mapping[str, str]],
    ) -> None:
        known = {p["name"]: p for p in kind.configuration_properties}
        problems = [f"unknown configuration property {name!r}" for name in configuration if name not in known]
        problems += [
            f"required configuration property {name!r} is missing"
            for name, prop in known.items()
            if prop["required"] and name not in configuration
        ]
        for label, given, (low, high) in (("input", inputs, kind.input_artifacts), ("output", outputs, kind.output_artifacts)):
            if not low <= len(given) <= high:
                problems.append(f"{len(given)} {label} artifacts, the action type allows {low} to {high}")
        if problems:
            raise ValueError("job does not fit its action type: " + "; ".join(problems))

    def _queue(self, type_id: dict[str, str], data: dict[str, Any], *, delay: float, credentials: bool = True
               ) -> JobRecord:
        """A new job; each gets its own artifact credentials (unless `credentials` is False)."""
        data = copy.deepcopy(data)
        data.pop("artifactCredentials", None)
        if credentials:
            data["artifactCredentials"] = _fake_credentials()
        problems = shape_problems(data, self._model.shape_for("JobData"))
        if problems:
            raise ValueError("job data does not fit the CodePipeline model: " + "; ".join(problems))
        job = JobRecord(
            id=str(uuid.uuid4()),
            action_type=dict(type_id),
            action_execution_id=data["pipelineContext"]["action"]["actionExecutionId"],
            account_id=self.account_id,
            data=data,
            available_at=time.monotonic() + delay,
        )
        self._jobs[job.id] = job
        self._lock.notify_all()
        return job

    def _query_filter(self, kind: ActionType, query: Mapping[str, str] | None) -> tuple[str, str] | None:
        queryable = kind.queryable_property
        if queryable is None:
            if query:
                raise ApiError("ValidationException", "queryParam was given but the action type has no queryable property")
            return None
        if not query:
            raise ApiError("ValidationException", f"queryParam is required: the action type has queryable property {queryable!r}")
        name, value = next(iter(query.items()))
        if name != queryable:
            raise ApiError("ValidationException", f"queryParam key {name!r} is not the queryable property {queryable!r}")
        return name, value

    def _ready(self, job: JobRecord, now: float) -> bool:
        if job.status == QUEUED:
            return job.available_at <= now
        return job.status == DISPATCHED and job.dispatched_at is not None and now - job.dispatched_at >= self.redispatch_after

    def _get(self, job_id: str) -> JobRecord:
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError("JobNotFoundException", f"The job {job_id} was not found")
        return job

    def _finishable(self, job_id: str) -> JobRecord:
        job = self._get(job_id)
        if job.status != IN_PROGRESS:
            raise ApiError("InvalidJobStateException", f"The job {job_id} is in state {job.status}, not InProgress")
        return job

    def _finish(self, job: JobRecord, status: str, operation: str, params: dict[str, Any]) -> None:
        job.status = status
        job.result = ResultCall(job.id, operation, copy.deepcopy(params))
        self._results.append(job.result)

    def _tick(self) -> None:
        now = time.monotonic()
        for job in self._jobs.values():
            if job.status == IN_PROGRESS and job.acknowledged_at is not None and now - job.acknowledged_at >= self.job_timeout:
                job.status = TIMED_OUT


_OPERATIONS = frozenset(
    {
        "CreateCustomActionType",
        "ListActionTypes",
        "PollForJobs",
        "AcknowledgeJob",
        "GetJobDetails",
        "PutJobSuccessResult",
        "PutJobFailureResult",
    }
)


def _artifact(spec: Mapping[str, str]) -> dict[str, Any]:
    artifact: dict[str, Any] = {
        "name": spec["name"],
        "location": {"type": "S3", "s3Location": {"bucketName": spec["bucket"], "objectKey": spec["key"]}},
    }
    if spec.get("revision"):
        artifact["revision"] = spec["revision"]
    return artifact
