"""Exception types and the one place they map to CodePipeline failure types.

Every error a job can end with is one of these; `failure_type` turns it into the
`failureDetails.type` of PutJobFailureResult, so the mapping is never repeated.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError


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


class SendUncertain(SystemUnavailable):
    """SendCommand failed in a way that may have reached SSM, and the command could not be found.

    Never handed back as "not sent": that could run the command twice (invariant 2).
    """


class BadToken(WorkerError):
    """A continuation token this worker did not write (or an incompatible version of it)."""


class ConfigFileError(Exception):
    """The worker's own configuration file is invalid; raised at start-up, never for a job."""


def failure_type(exc: BaseException) -> str:
    """The PutJobFailureResult type for an error; anything unexpected is JobFailed."""
    return exc.failure_type if isinstance(exc, WorkerError) else "JobFailed"


# AWS error codes by what they mean for a job. Anything else from AWS is JobFailed.
_CONFIGURATION_CODES = frozenset({
    "InvalidInstanceId", "InvalidDocument", "InvalidDocumentVersion", "InvalidParameters", "InvalidTarget",
    "UnsupportedPlatformType", "DuplicateInstanceId", "MaxDocumentSizeExceeded", "InvalidOutputFolder",
    "InvalidRole", "InvalidNotificationConfig", "InvalidDocumentType", "ValidationException",
})
_PERMISSION_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "ExpiredToken", "ExpiredTokenException",
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "KMS.AccessDeniedException",
})
_MISSING_ARTIFACT_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404", "PreconditionFailed", "412"})
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "SlowDown",
})
_TRANSIENT_CODES = THROTTLING_CODES | {
    "RequestTimeout", "RequestTimeoutException", "InternalServerError", "InternalFailure", "InternalError",
    "ServiceUnavailable", "ServiceUnavailableException",
}


def aws_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    return exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None


def is_transient(exc: BaseException) -> bool:
    """Worth trying again: throttling, a 5xx, or the connection itself failed."""
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return aws_code(exc) in _TRANSIENT_CODES or status >= 500
    return False


def maybe_executed(exc: BaseException) -> bool:
    """The request may have reached AWS and run: a lost response or a 5xx (not throttling, not a refused connection)."""
    if isinstance(exc, HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 and aws_code(exc) not in THROTTLING_CODES
    return False


def classify(exc: BaseException, what: str) -> WorkerError:
    """Turn an AWS error met while doing `what` into the WorkerError it means for the job."""
    if isinstance(exc, WorkerError):
        return exc
    code = aws_code(exc)
    message = exc.response.get("Error", {}).get("Message", "") if isinstance(exc, ClientError) else str(exc)
    detail = f"{what}: {code}: {message}" if code else f"{what}: {exc}"
    if code in _PERMISSION_CODES:
        return PermissionDenied(detail + " (check the worker's IAM role or the pipeline's artifact permissions)")
    if code in _MISSING_ARTIFACT_CODES:
        return RevisionUnavailable(detail + " (the input artifact is gone; re-run the pipeline from its source)")
    if code in _CONFIGURATION_CODES:
        return ConfigurationError(detail)
    if is_transient(exc):
        return SystemUnavailable(detail + " (AWS kept failing; the job can be retried)")
    return WorkerError(detail)
