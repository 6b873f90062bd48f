"""The plan: the exact SendCommand a job will make, built and checked before anything is sent.

Pure: the spec, the document, the worker's configuration and the job's own facts in; a Plan
or a ConfigurationError naming every problem out. The daemon and dry-run both call
`check_document` and `make_plan`, so a rule is enforced in one place.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.config import Config
from worker.documents import Document, validate_parameters
from worker.errors import NotAllowedError, ParameterError, Problem
from worker.spec import Spec, Target, match_parameters

# Parameters the worker fills from the job when the document declares them.
AUTO_PARAMETERS = ("ArtifactUrl", "PipelineExecutionId", "SourceRevision", "JobId")
COMMENT_LIMIT = 100


@dataclass(frozen=True)
class Plan:
    document_name: str
    document_version: str
    instance_ids: tuple[str, ...]
    targets: tuple[Target, ...]
    parameters: Mapping[str, list[str]]
    comment: str
    timeout_seconds: int
    output: Mapping[str, Any] = field(default_factory=dict)  # where SSM keeps the full output

    def request(self) -> dict[str, Any]:
        """SendCommand keyword arguments."""
        req: dict[str, Any] = {
            "DocumentName": self.document_name,
            "DocumentVersion": self.document_version,
            "Parameters": {k: list(v) for k, v in self.parameters.items()},
            "Comment": self.comment,
            "TimeoutSeconds": self.timeout_seconds,
            **self.output,
        }
        if self.instance_ids:
            req["InstanceIds"] = list(self.instance_ids)
        else:
            req["Targets"] = [t.api() for t in self.targets]
        return req


def output_options(config: Config) -> dict[str, Any]:
    """SendCommand's output destinations: SSM itself keeps only the first 24,000/8,000 characters."""
    options: dict[str, Any] = {}
    if config.output_s3_bucket:
        options["OutputS3BucketName"] = config.output_s3_bucket
        if config.output_s3_key_prefix:
            options["OutputS3KeyPrefix"] = config.output_s3_key_prefix
    if config.cloudwatch_log_group:
        options["CloudWatchOutputConfig"] = {"CloudWatchOutputEnabled": True,
                                             "CloudWatchLogGroupName": config.cloudwatch_log_group}
    return options


def full_output_hint(request: Mapping[str, Any], command_id: str) -> str:
    """Where the complete output of a command is, for a failure message ('' when SSM keeps only its cut)."""
    places = []
    if request.get("OutputS3BucketName"):
        prefix = (request.get("OutputS3KeyPrefix") or "").rstrip("/")
        places.append(f"s3://{request['OutputS3BucketName']}/{prefix + '/' if prefix else ''}{command_id}/")
    group = (request.get("CloudWatchOutputConfig") or {}).get("CloudWatchLogGroupName")
    if group:
        places.append(f"CloudWatch Logs group {group} (streams {command_id}/…)")
    return "full output: " + " and ".join(places) if places else ""


def _allowed(value: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def check_document(name: str, config: Config) -> None:
    """Refuse a document outside `allowed_documents` before it is even fetched."""
    if not _allowed(name, config.allowed_documents):
        raise NotAllowedError(
            f"document {name!r} is not allowed by this worker (allowed_documents: "
            f"{', '.join(config.allowed_documents)}); set the action's DocumentName to an allowed document "
            "or ask the worker's operators to allow it")


def check_targets(spec: Spec, config: Config) -> None:
    """Refuse instances and tag targets outside the worker's allow-lists."""
    refused = [i for i in spec.all_instance_ids() if not _allowed(i, config.allowed_instance_ids)]
    if refused:
        raise NotAllowedError(
            f"{spec.source}: instance(s) {', '.join(refused)} not allowed by this worker (allowed_instance_ids: "
            f"{', '.join(config.allowed_instance_ids)}); name an allowed instance")
    for t in spec.targets:
        if t.key == "InstanceIds":
            continue
        bad = [f"{t.key}={v}" for v in t.values if not _allowed(f"{t.key}={v}", config.allowed_targets)]
        if bad:
            allowed = ", ".join(config.allowed_targets) or "none"
            raise NotAllowedError(
                f"{spec.source}: target {', '.join(bad)} not allowed by this worker (allowed_targets: {allowed}); "
                "use instance ids or a target the operators allow")


def job_comment(job_id: str, action_execution_id: str, where: str) -> str:
    """A SendCommand Comment that always holds the job id (crash recovery finds the command by it) and the
    action execution id (a continuation token is honoured only for a command of its own action execution).

    Both ids are UUIDs: 82 characters, so only `where` is ever cut to the 100-character limit."""
    return f"job {job_id} exec {action_execution_id} {where}"[:COMMENT_LIMIT]


def auto_parameters(document: Document, *, job_id: str, pipeline_execution_id: str, source_revision: str | None,
                    artifact_url: Callable[[], str]) -> dict[str, str]:
    """The values the worker fills (AUTO_PARAMETERS); `artifact_url` is only called when the document
    declares ArtifactUrl (presigning is not free). Empty values are left out, so the document's default
    applies. The daemon passes the job's facts, dry-run its placeholders."""
    auto = {"JobId": job_id, "PipelineExecutionId": pipeline_execution_id, "SourceRevision": source_revision or ""}
    if "ArtifactUrl" in document.parameters:
        auto["ArtifactUrl"] = artifact_url()
    return {k: v for k, v in auto.items() if v}


def make_plan(spec: Spec, document: Document, *, document_name: str, document_version: str, config: Config,
              auto: Mapping[str, str], comment: str) -> Plan:
    """Apply allow-lists, fixed and automatic parameters, and the document's own rules."""
    check_targets(spec, config)
    requested = match_parameters(spec, list(document.parameters))
    problems = [Problem(name, "fixed by the worker configuration", "cannot be set in the spec file; remove it")
                for name in requested if name in config.parameters]
    problems += [Problem(name, "filled by the worker", "cannot be set in the spec file; remove it")
                 for name in requested if name in AUTO_PARAMETERS]
    if problems:
        raise ParameterError(problems, heading=f"{spec.source} sets parameters it may not set")
    values: dict[str, list[str]] = {k: list(v) for k, v in requested.items()}
    values.update({k: list(v) for k, v in config.parameters.items() if k in document.parameters})
    values.update({k: [auto[k]] for k in AUTO_PARAMETERS if k in document.parameters and k in auto})
    try:
        complete = validate_parameters(document, values)
    except ParameterError as exc:
        raise ParameterError(exc.problems, heading=f"parameters do not fit document {document_name!r} "
                             f"(version {document_version}); fix {spec.source}") from exc
    return Plan(document_name=document_name, document_version=document_version, instance_ids=spec.instance_ids,
                targets=spec.targets, parameters=complete, comment=comment, timeout_seconds=config.delivery_timeout,
                output=output_options(config))
