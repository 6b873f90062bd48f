"""Logging: structlog, JSON lines off a TTY, per-job context from contextvars, secrets redacted.

Job context (job_id, pipeline, stage, action, command_id) is bound with structlog's
contextvars, so every line a job writes carries it; threads get it by running the job in a
copied context (see daemon). Every line, structlog's and the standard library's (botocore), is
scrubbed by `redact.scrub` last, with the secrets of the job whose context wrote it: credentials
are never passed to a logger on purpose, and are redacted if they are.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from worker.redact import scrub, scrub_text


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return scrub(event)


class _Redact(logging.Filter):
    """The same scrubbing for standard-library records, message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub_text(record.getMessage()), None
        if record.exc_info:
            record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


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
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(_Redact())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
