"""The poll loop: check the stop flag, poll for free slots, hand each job to a slot, sleep adaptively.

The stop flag comes from `worker.signals` (first signal: warm stop — no more polling, in-flight
jobs are handed back with a continuation token; second signal: exit at once). Each job runs in a thread
of its own slot, inside a copy of the context so its log lines carry its job id.
"""

from __future__ import annotations

import contextvars
import fcntl
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path

import boto3
import structlog
from botocore.config import Config as BotoConfig

from worker import __version__, systemd
from worker.artifacts import S3Clients
from worker.clock import Clock
from worker.config import Config
from worker.errors import ConfigFileError, aws_code
from worker.handler import Clients, Handler
from worker.health import beat, heartbeat_path
from worker.jobs import Job, JobAPI
from worker.journal import Journal

log = structlog.get_logger("worker")
SHUTDOWN_GRACE = 3.0  # seconds in-flight jobs get to hand themselves back after a stop signal
RECOVERY_INTERVAL = 60.0


def build_clients(config: Config, session: boto3.session.Session | None = None) -> Clients:
    """Clients with the worker's own credentials; endpoints come from AWS_ENDPOINT_URL[_<SERVICE>].

    `session` defaults to the standard chain (environment, profile, instance role); a caller with
    its own (the in-process tests: the emulator's endpoint and keys) passes it instead.
    """
    session = session or boto3.session.Session(region_name=config.region)
    if not session.region_name:
        raise ConfigFileError("no AWS region: set 'region' in the config file or AWS_REGION in the environment")
    base = BotoConfig(retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5, read_timeout=20,
                      max_pool_connections=2 * config.concurrency + 2,
                      user_agent_extra=f"codepipeline-ssm-worker/{__version__}")
    no_retry = base.merge(BotoConfig(retries={"mode": "standard", "total_max_attempts": 1}))
    return Clients(codepipeline=session.client("codepipeline", config=base), ssm=session.client("ssm", config=base),
                   ssm_send=session.client("ssm", config=no_retry), s3=S3Clients(session))


class StateDirBusy(ConfigFileError):
    """Another worker process holds the state directory: two journals in one place would collide."""


def _lock_state_dir(path: Path) -> int:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateDirBusy(f"state_dir {path} is in use by another worker process; give each worker its own "
                           "state_dir") from None
    return fd


class Daemon:
    """rq-style loop: check the stop flag, recover, poll, dispatch, heartbeat, sleep."""

    def __init__(self, config: Config, clients: Clients, *, once: bool = False,
                 stop: threading.Event | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.once = once
        self.stop = stop or threading.Event()
        self.clock = clock or Clock()
        state_dir = config.state_dir or os.environ.get("STATE_DIRECTORY")  # systemd's StateDirectory=
        self._lock_fd = _lock_state_dir(Path(state_dir)) if state_dir else None
        self.journal = Journal(state_dir) if state_dir else None
        self.handler = Handler(config, clients, self.stop, self.journal, self.clock)
        self.api = JobAPI(clients.codepipeline, config.action_type, config.query_param)
        self.heartbeat = heartbeat_path(replace(config, state_dir=state_dir))
        self.interval = config.poll_interval_min
        self.in_flight: dict[Future[None], str] = {}
        self._ready = False
        self._last_recovery = 0.0
        self.threads_left = False  # set at shutdown when job threads are still stuck in AWS calls

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> int:
        log.info("worker.started", version=__version__, action_type=self.config.action_type.api(),
                 concurrency=self.config.concurrency, once=self.once, journal=str(self.journal.path)
                 if self.journal else None)
        status = 0
        pool = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="job")
        while not self.stop.is_set():
            self._recover()
            free = self.config.concurrency - len(self.in_flight)
            if free <= 0:
                self._wait_for_slot()
                continue
            polled = self.poll(free)
            if polled is None and self.once:
                status = 1
            for job in polled or []:
                future = pool.submit(contextvars.copy_context().run, self.handler.process, job)
                self.in_flight[future] = job.id
                future.add_done_callback(self._job_done)
            if self.once:
                break
            self.interval = self.config.poll_interval_min if polled else \
                min(self.interval * 2, self.config.poll_interval_max)
            self.clock.wait(self.stop, self.interval)
        return self._shut_down(pool, status)

    def _job_done(self, future: Future[None]) -> None:
        job_id = self.in_flight.pop(future, None)
        error = None if future.cancelled() else future.exception()
        if error is not None:  # Handler.process catches everything it expects; this is a bug, say so
            log.error("job.crashed", job_id=job_id, error=repr(error))

    def _shut_down(self, pool: ThreadPoolExecutor, status: int) -> int:
        """Warm stop: in-flight jobs see the flag and hand themselves back; wait for them, within a bound."""
        if self.stop.is_set():
            log.info("worker.stopping", in_flight=len(self.in_flight))
            systemd.notify("STOPPING=1", f"STATUS=stopping, handing back {len(self.in_flight)} job(s)")
            grace = SHUTDOWN_GRACE
        else:
            grace = None  # --once: finish the jobs
        _, stuck = wait(list(self.in_flight), timeout=grace)
        pool.shutdown(wait=False, cancel_futures=True)
        if stuck:
            # A job thread is blocked in an AWS call (e.g. a stalled endpoint): hand the job back from
            # here. Jobs caught inside SendCommand or a result call cannot be; the journal has them.
            left = [job_id for job_id in (self.in_flight.get(f) for f in stuck)
                    if job_id and not self.handler.take_over(job_id)]
            if left:
                log.warning("worker.abandoned_jobs", jobs=sorted(left), journal=bool(self.journal))
            self.threads_left = True  # the caller ends the process without waiting for them (cli)
        log.info("worker.stopped", status=status)
        return status

    def close(self) -> None:
        """Release the state directory (process exit does it too; an embedding caller calls this)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _recover(self) -> None:
        """Finish journaled jobs that no thread of this process is working on (at start, then now and then)."""
        if not self.journal or time.monotonic() - self._last_recovery < RECOVERY_INTERVAL:
            return
        self._last_recovery = time.monotonic()
        busy = set(self.in_flight.values())
        pending = [u for u in self.journal.unfinished() if u.job_id not in busy]
        if pending:
            log.info("journal.recovering", jobs=len(pending))
            self.handler.recover(pending)
        self.journal.compact()

    def poll(self, free: int) -> list[Job] | None:
        """One PollForJobs for the free slots; None when the call failed (logged, the loop backs off)."""
        try:
            jobs = self.api.poll(free)
        except Exception as exc:  # noqa: BLE001 - the daemon outlives any AWS error
            code = aws_code(exc)
            hint = " (create the custom action type or fix action_type in the config)" \
                if code == "ActionTypeNotFoundException" else ""
            log.error("poll.failed", code=code, error=str(exc) + hint)
            self._alive(polled_ok=False)
            return None
        if jobs:
            log.info("poll", jobs=len(jobs), free=free)
        self._alive(polled_ok=True)
        return jobs

    def _alive(self, *, polled_ok: bool) -> None:
        """Heartbeat file and systemd notifications, once per poll."""
        beat(self.heartbeat, in_flight=len(self.in_flight), polled_ok=polled_ok)
        messages = ["WATCHDOG=1", f"STATUS={len(self.in_flight)} job(s) in flight"]
        if polled_ok and not self._ready:
            self._ready = True
            messages.insert(0, "READY=1")
        systemd.notify(*messages)

    def _wait_for_slot(self) -> None:
        """Block until a job ends (or a second passes, so a stop request is seen promptly)."""
        wait(list(self.in_flight), timeout=1.0, return_when=FIRST_COMPLETED)
        systemd.notify("WATCHDOG=1")
