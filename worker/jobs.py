"""CodePipeline's custom-action job API: the job model and the calls that claim and end jobs.

Result calls redact their texts and cut them to the API's limits here, once, so no caller can
echo a secret into CodePipeline or make a result call it would reject with ValidationException
(which would leave the job hanging).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.config import ActionType
from worker.redact import scrub, scrub_text

DEFAULT_SPEC_FILE = "abc.json"
# The action configuration properties the worker reads; any other may be a `secret` property.
READ_PROPERTIES = ("DocumentName", "DocumentVersion", "SpecFile")
LIMITS = {"message": 5000, "summary": 2048, "external_id": 1500}  # the token's: checkpoint.TOKEN_LIMIT
_ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """Cut text to the limit, marking the cut; never returns an empty string."""
    text = text or "-"
    return text if len(text) <= limit else text[: limit - len(_ELLIPSIS)] + _ELLIPSIS


@dataclass(frozen=True)
class Artifact:
    name: str
    bucket: str
    key: str
    revision: str | None = None


@dataclass(frozen=True)
class Credentials:
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)


@dataclass(frozen=True)
class Job:
    id: str
    nonce: str
    account_id: str
    configuration: Mapping[str, str] = field(repr=False)
    pipeline_name: str
    stage_name: str
    action_name: str
    action_execution_id: str
    pipeline_execution_id: str
    input_artifacts: tuple[Artifact, ...]
    credentials: Credentials | None = field(repr=False)
    output_artifacts: tuple[Artifact, ...] = ()
    continuation_token: str | None = None
    encryption_key_id: str | None = None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Job:
        data = raw.get("data", {})
        ctx = data.get("pipelineContext", {})
        creds = data.get("artifactCredentials")
        def artifacts(key: str) -> tuple[Artifact, ...]:
            return tuple(Artifact(a.get("name", ""), a["location"]["s3Location"]["bucketName"],
                                  a["location"]["s3Location"]["objectKey"], a.get("revision"))
                         for a in data.get(key, []) if a.get("location", {}).get("s3Location"))

        return cls(
            id=raw["id"], nonce=raw.get("nonce", ""), account_id=raw.get("accountId", ""),
            configuration=dict(data.get("actionConfiguration", {}).get("configuration", {})),
            pipeline_name=ctx.get("pipelineName", ""), stage_name=ctx.get("stage", {}).get("name", ""),
            action_name=ctx.get("action", {}).get("name", ""),
            action_execution_id=ctx.get("action", {}).get("actionExecutionId", ""),
            pipeline_execution_id=ctx.get("pipelineExecutionId", ""),
            input_artifacts=artifacts("inputArtifacts"),
            output_artifacts=artifacts("outputArtifacts"),
            credentials=Credentials(creds["accessKeyId"], creds["secretAccessKey"], creds["sessionToken"])
            if creds else None,
            continuation_token=data.get("continuationToken"),
            encryption_key_id=(data.get("encryptionKey") or {}).get("id"),
        )

    @property
    def where(self) -> str:
        return f"{self.pipeline_name}/{self.stage_name}/{self.action_name}"

    def log_context(self) -> dict[str, str]:
        return {"job_id": self.id, "pipeline": self.pipeline_name, "stage": self.stage_name,
                "action": self.action_name}

    @property
    def spec_file(self) -> str:
        return self.configuration.get("SpecFile") or DEFAULT_SPEC_FILE

    def secrets(self, public: tuple[str, ...] = ()) -> list[str]:
        """What must never be echoed: the artifact credentials and the values of configuration properties
        other than READ_PROPERTIES and `public` (the job does not say which are `secret`, so all are)."""
        creds = self.credentials
        values = [creds.access_key_id, creds.secret_access_key, creds.session_token] if creds else []
        return values + [v for k, v in self.configuration.items() if k not in READ_PROPERTIES + public]


class JobAPI:
    """The worker's side of the job API, over a boto3 CodePipeline client."""

    def __init__(self, client: Any, action_type: ActionType, query_param: Mapping[str, str]) -> None:
        self.client = client
        self.action_type = action_type
        self.query_param = dict(query_param)

    def poll(self, max_batch: int) -> list[Job]:
        kwargs: dict[str, Any] = {"actionTypeId": self.action_type.api(), "maxBatchSize": max_batch}
        if self.query_param:
            kwargs["queryParam"] = self.query_param
        return [Job.from_api(j) for j in self.client.poll_for_jobs(**kwargs).get("jobs", [])]

    def acknowledge(self, job_id: str, nonce: str) -> str:
        return self.client.acknowledge_job(jobId=job_id, nonce=nonce)["status"]

    def succeed(self, job_id: str, *, summary: str, external_id: str | None = None,
                continuation_token: str | None = None, percent: int | None = None,
                output_variables: Mapping[str, str] | None = None) -> None:
        details: dict[str, Any] = {"summary": clip(scrub_text(summary), LIMITS["summary"])}
        if external_id:
            details["externalExecutionId"] = clip(scrub_text(external_id), LIMITS["external_id"])
        if percent is not None:
            details["percentComplete"] = max(0, min(100, int(percent)))
        kwargs: dict[str, Any] = {"jobId": job_id, "executionDetails": details}
        if continuation_token:
            kwargs["continuationToken"] = scrub_text(continuation_token)
        elif output_variables:
            kwargs["outputVariables"] = scrub(dict(output_variables))
        self.client.put_job_success_result(**kwargs)

    def fail(self, job_id: str, failure_type: str, message: str, *, external_id: str | None = None) -> None:
        details: dict[str, Any] = {"type": failure_type, "message": clip(scrub_text(message), LIMITS["message"])}
        if external_id:
            details["externalExecutionId"] = clip(scrub_text(external_id), LIMITS["external_id"])
        self.client.put_job_failure_result(jobId=job_id, failureDetails=details)
