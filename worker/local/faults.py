"""Fault injection: make chosen API operations throttle, fail with 5xx, or stall.

Reliability behaviour (botocore retries, backoff, the worker's handling of a
failing AWS) becomes an ordinary test: inject a fault, drive the worker, assert.
A fault applies to the next ``times`` matching requests, or to every matching
request for ``seconds``; each firing is counted so a test can prove the worker
really met it. A fault can be limited to requests whose parameters pass ``match``,
can let the first ``skip`` matching requests through, and can run a ``hook`` (e.g.
SIGKILL the worker) on receipt or, with ``after``, once the request was carried out:
a crash test then hits an exact instant of the worker's life without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Hook = Callable[[], object]
Match = Callable[[Mapping[str, Any]], bool]


@dataclass
class Fault:
    """One injected fault. ``fired`` counts the requests it has hit so far."""

    operation: str
    error: str | None = None
    status: int | None = None
    delay: float = 0.0
    message: str = "fault injected by the emulator"
    after: bool = False
    times: int | None = None
    until: float | None = None
    fired: int = 0
    hook: Hook | None = None
    match: Match | None = None
    skip: int = 0
    seen: int = 0

    def active(self, now: float) -> bool:
        if self.times is not None:
            return self.fired < self.times
        return self.until is not None and now < self.until


@dataclass(frozen=True)
class FaultHit:
    """What one request must suffer: a delay first, then (optionally) an error.

    ``after``: the request is carried out and only its answer is replaced by the
    error, as when a response is lost on the way back. ``hook``: called on receipt
    (after the delay), or with ``after`` once the request was carried out.
    """

    delay: float
    error: str | None
    status: int | None
    message: str
    after: bool
    hook: Hook | None = None

    def error_code(self, generic: str) -> str | None:
        """The code to answer with: the injected one, ``generic`` for a bare status, None for a pure delay."""
        if self.error is None and self.status is None:
            return None
        return self.error or generic


@dataclass
class Faults:
    """Thread-safe registry of injected faults, consulted once per request."""

    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(
        self,
        operation: str,
        *,
        error: str | None = None,
        status: int | None = None,
        delay: float | None = None,
        times: int | None = None,
        seconds: float | None = None,
        message: str | None = None,
        after: bool = False,
        hook: Hook | None = None,
        match: Match | None = None,
        skip: int = 0,
    ) -> Fault:
        """Make ``operation`` (e.g. "PollForJobs", "SendCommand", "GetObject") misbehave.

        ``error`` answers with that error code (HTTP 400 unless ``status`` says
        otherwise); ``status`` alone answers with a generic error of that status
        (InternalFailure, or InternalError for S3); ``delay`` holds the request
        that many seconds before it is handled (a stall when long). Applies to
        the next ``times`` requests (default 1) or, with ``seconds``, to every
        request in that window. ``after=True`` carries the request out and then
        answers with the error: the side effect happened, the caller cannot know.
        ``hook`` is called on receipt (then the request goes on as the other
        arguments say: carried out unless ``error``/``status``), or with
        ``after=True`` once it was carried out, before the answer. ``match``
        limits the fault to requests whose parameters it accepts (S3: Bucket,
        Key); ``skip`` lets that many matching requests through first.
        """
        if error is None and status is None and not delay and hook is None:
            raise ValueError("inject needs error=, status=, delay= or hook=")
        if after and error is None and status is None and hook is None:
            raise ValueError("after=True needs error=, status= or hook=")
        if times is not None and seconds is not None:
            raise ValueError("give times= or seconds=, not both")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        fault = Fault(
            operation=operation,
            error=error,
            status=status,
            delay=float(delay or 0.0),
            message=message or "fault injected by the emulator",
            after=after,
            times=times if seconds is None else None,
            until=time.monotonic() + seconds if seconds is not None else None,
            hook=hook,
            match=match,
            skip=skip,
        )
        if fault.times is None and fault.until is None:
            fault.times = 1
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, operation: str, params: Mapping[str, Any] | None = None) -> FaultHit | None:
        """The fault this request meets, if any; counts the hit."""
        now = time.monotonic()
        with self._lock:
            for fault in self._faults:
                if fault.operation != operation or not fault.active(now):
                    continue
                if fault.match is not None and not fault.match(params or {}):
                    continue
                if fault.seen < fault.skip:
                    fault.seen += 1
                    continue
                fault.fired += 1
                return FaultHit(fault.delay, fault.error, fault.status, fault.message, fault.after, fault.hook)
        return None

    def fired(self, operation: str) -> int:
        """How many requests to ``operation`` have met an injected fault."""
        with self._lock:
            return sum(f.fired for f in self._faults if f.operation == operation)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
