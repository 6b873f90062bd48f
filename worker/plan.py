"""The plan: the exact SendCommand a job will make, built and checked before anything is sent.

Pure: the spec, the document, the worker's configuration and the job's own facts in; a Plan
or a ConfigurationError naming every problem out. The daemon and dry-run both reach these rules
through `worker.prepare`, so a rule is enforced in one place.
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from worker.config import Config
from worker.errors import DocumentError, NotAllowedError, ParameterError, Problem
from worker.spec import Spec, Target, fold_name, match_parameters
from worker.ssmdoc import Document, validate_parameters

# Parameters the worker fills from the job when the document declares them.
AUTO_PARAMETERS = ("ArtifactUrl", "PipelineExecutionId", "SourceRevision", "JobId")
COMMENT_LIMIT = 100
# From botocore's SSM model (shape DocumentVersion); tests/test_policy.py checks they still agree.
DOCUMENT_VERSION_PATTERN = r"([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)"
# What an allow-list wildcard may stand for: never "/" or ":" (ARNs, shared documents), space or anything else.
NAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_.-")
_WILDCARDS = frozenset("*?[")


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


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def name_matches(value: str, pattern: str) -> bool:
    """Whether an allow-list pattern admits a whole name; the rule is README's ("Configuration").

    A pattern without wildcards admits exactly that string. One with `*`, `?` or `[...]` admits only
    names made entirely of NAME_CHARACTERS, matched case-sensitively as a whole, so a wildcard never
    crosses "/" or ":" and a name with any other character (ARN, shared document, space, newline,
    "%2F", a Unicode lookalike) passes only where it is listed exactly.
    """
    if not _WILDCARDS & set(pattern):
        return value == pattern
    return bool(value) and set(value) <= NAME_CHARACTERS and _glob(pattern).match(value) is not None


def is_allowed(value: str, patterns: Iterable[str]) -> bool:
    return any(name_matches(value, p) for p in patterns)


def target_allowed(key: str, value: str, patterns: Iterable[str]) -> bool:
    """A `KEY=PATTERN` allow-list entry: the key compared exactly, the value by `name_matches`."""
    return any(k == key and name_matches(value, v) for k, _, v in (p.partition("=") for p in patterns if "=" in p))


def document_version(value: str | None) -> str:
    """The action's DocumentVersion property checked: empty means $DEFAULT; anything SSM would not take is refused."""
    if not value:
        return "$DEFAULT"
    if not re.fullmatch(DOCUMENT_VERSION_PATTERN, value):
        raise DocumentError(f"action property DocumentVersion {value!r} is not a document version; set it to "
                            "$DEFAULT, $LATEST or a version number (1, 2, ...), or leave it empty for $DEFAULT")
    return value


def check_document(name: str, config: Config) -> None:
    """Refuse a document outside `allowed_documents` before it is even fetched."""
    if not is_allowed(name, config.allowed_documents):
        raise NotAllowedError(
            f"document {name!r} is not allowed by this worker (allowed_documents: "
            f"{', '.join(config.allowed_documents)}); set the action's DocumentName to an allowed document "
            "or ask the worker's operators to allow it")


def check_targets(spec: Spec, config: Config) -> None:
    """Refuse instances and tag targets outside the worker's allow-lists."""
    refused = [i for i in spec.all_instance_ids() if not is_allowed(i, config.allowed_instance_ids)]
    if refused:
        raise NotAllowedError(
            f"{spec.source}: instance(s) {', '.join(refused)} not allowed by this worker (allowed_instance_ids: "
            f"{', '.join(config.allowed_instance_ids)}); name an allowed instance")
    for t in spec.targets:
        if t.key == "InstanceIds":
            continue
        bad = [f"{t.key}={v}" for v in t.values if not target_allowed(t.key, v, config.allowed_targets)]
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


def fixed_parameters(config: Config, document: Document, document_name: str) -> dict[str, tuple[str, ...]]:
    """The configured fixed parameters this document declares; others are ignored (one config, many documents).

    A configured name that matches a declared one only loosely (case, "_", "-", spaces: the spec
    file's matching rule) is refused: otherwise that parameter would silently not be fixed.
    """
    near = {fold_name(d): d for d in document.parameters}
    problems = [Problem(f"parameters.{name}", "fixed parameters in the worker configuration",
                        f"document {document_name!r} declares {near[fold_name(name)]!r}, not {name!r}; the worker's "
                        f"operators must spell it {near[fold_name(name)]!r} so that it is fixed")
                for name in config.parameters if name not in document.parameters and fold_name(name) in near]
    if problems:
        raise ParameterError(problems, heading="the worker configuration fixes parameters under a name the "
                             "document spells differently")
    return {k: v for k, v in config.parameters.items() if k in document.parameters}


def make_plan(spec: Spec, document: Document, *, document_name: str, document_version: str, config: Config,
              auto: Mapping[str, str], comment: str) -> Plan:
    """Apply allow-lists, fixed and automatic parameters, and the document's own rules."""
    check_targets(spec, config)
    fixed = fixed_parameters(config, document, document_name)
    requested = match_parameters(spec, list(document.parameters))
    problems = [Problem(name, "fixed by the worker configuration", "cannot be set in the spec file; remove it")
                for name in requested if name in fixed]
    problems += [Problem(name, "filled by the worker", "cannot be set in the spec file; remove it")
                 for name in requested if name in AUTO_PARAMETERS]
    if problems:
        raise ParameterError(problems, heading=f"{spec.source} sets parameters it may not set")
    values: dict[str, list[str]] = {k: list(v) for k, v in requested.items()}
    values.update({k: list(v) for k, v in fixed.items()})
    values.update({k: [auto[k]] for k in AUTO_PARAMETERS if k in document.parameters and k in auto})
    try:
        complete = validate_parameters(document, values)
    except ParameterError as exc:
        raise ParameterError(exc.problems, heading=f"parameters do not fit document {document_name!r} "
                             f"(version {document_version}); fix {spec.source}") from exc
    return Plan(document_name=document_name, document_version=document_version, instance_ids=spec.instance_ids,
                targets=spec.targets, parameters=complete, comment=comment, timeout_seconds=config.delivery_timeout,
                output=output_options(config))
