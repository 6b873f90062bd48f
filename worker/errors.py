"""Exception types and the one place they map to CodePipeline failure types.

Every error a job can end with is one of these; `failure_type` turns it into the
`failureDetails.type` of PutJobFailureResult, so the mapping is never repeated.
"""

from __future__ import annotations

from dataclasses import dataclass


class WorkerError(Exception):
    """Base for errors that end a job with a failure result."""

    failure_type = "JobFailed"


class ConfigurationError(WorkerError):
    """The job's input is wrong: spec file, parameters, document or allow-lists.

    The message names the field and says how to fix it; it is shown to the
    developer in the CodePipeline console.
    """

    failure_type = "ConfigurationError"


class SpecError(ConfigurationError):
    """The spec file (abc.json) is missing, unreadable or malformed."""


class DocumentError(ConfigurationError):
    """The SSM document cannot be used: unknown, unreadable or invalid."""


@dataclass(frozen=True)
class Problem:
    """One broken rule: which field, which rule, what is wrong with the value."""

    field: str
    rule: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem} ({self.rule})"


class ParameterError(ConfigurationError):
    """Document parameters break the document's rules; lists every problem at once."""

    def __init__(self, problems: list[Problem], heading: str = "invalid document parameters") -> None:
        self.problems = list(problems)
        self.heading = heading
        super().__init__(heading + ":\n" + "\n".join(f"- {p}" for p in self.problems))


class NotAllowedError(ConfigurationError):
    """The job asks for a document or target the worker configuration does not allow."""


class PermissionDenied(WorkerError):
    """AWS refused an operation (AccessDenied): the worker's role or the job's credentials."""

    failure_type = "PermissionError"


class RevisionUnavailable(WorkerError):
    """The input artifact is gone from S3 (expired or deleted)."""

    failure_type = "RevisionUnavailable"


class SystemUnavailable(WorkerError):
    """AWS kept failing (throttling, 5xx, connection) beyond the retry budget before the send."""

    failure_type = "SystemUnavailable"


class CommandFailed(WorkerError):
    """The command ran and at least one invocation did not succeed."""


class ConfigFileError(Exception):
    """The worker's own configuration file is invalid; raised at start-up, never for a job."""


def failure_type(exc: BaseException) -> str:
    """The PutJobFailureResult type for an error; anything unexpected is JobFailed."""
    return exc.failure_type if isinstance(exc, WorkerError) else "JobFailed"
