"""Logging: structlog, JSON lines off a TTY, per-job context from contextvars, secrets redacted.

Job context (job_id, pipeline, stage, action, command_id) is bound with structlog's
contextvars, so every line a job writes carries it; threads get it by running the job in a
copied context (see daemon). The redaction processor is the last line of defence for
invariant 5: credentials are never passed to a logger on purpose, and are scrubbed if they are.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"
_SECRET_KEY = re.compile(r"secret|password|credential|session_?token|access_?key", re.IGNORECASE)
_SIGNED_QUERY = re.compile(r"([?&])(X-Amz-(?:Signature|Security-Token|Credential)|Signature|AWSAccessKeyId)=[^&\s\"']*",
                           re.IGNORECASE)


def scrub(value: Any) -> Any:
    """Remove secrets from a value that is about to be logged or reported."""
    if isinstance(value, str):
        return _SIGNED_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}={REDACTED}", value)
    if isinstance(value, Mapping):
        return {k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return scrub(event)


def setup(log_format: str = "auto", *, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Configure structlog once for the process; `auto` means JSON unless stderr is a TTY."""
    stream = stream or sys.stderr
    as_json = log_format == "json" or (log_format == "auto" and not stream.isatty())
    renderer: Any = structlog.processors.JSONRenderer(sort_keys=False) if as_json else \
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # botocore's own warnings go through the standard library; keep them, at WARNING.
    logging.basicConfig(stream=stream, level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
