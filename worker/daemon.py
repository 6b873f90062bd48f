"""The poll loop: check the stop flag, poll for free slots, hand each job to a slot, sleep adaptively.

The stop flag comes from `worker.signals` (first signal: warm stop — no more polling, in-flight
jobs are handed back with a continuation token; second signal: exit at once). Each job runs in a thread
of its own slot, inside a copy of the context so its log lines carry its job id; so does the recovery of
each job the journal shows unfinished, so a recovery that keeps failing never holds up the loop. Only
the loop's own thread touches `in_flight`: it reaps finished slots itself, no callback does.
"""

from __future__ import annotations

import contextvars
import fcntl
import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from worker.state import open_private, prepare

log = structlog.get_logger("worker")
SHUTDOWN_GRACE = 3.0  # seconds in-flight jobs get to hand themselves back after a stop signal
RECOVERY_INTERVAL = 60.0  # seconds between journal reads when nothing is left to recover
RECOVERY_RETRY_MIN = 1.0  # first wait after a recovery (or a claim or result call) failed; doubles up to the interval


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
    try:
        fd = open_private(prepare(path) / "lock", os.O_RDWR | os.O_CREAT)
    except OSError as exc:  # e.g. a symlink planted at its name
        raise ConfigFileError(f"state_dir {path}: cannot open its lock file: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateDirBusy(f"state_dir {path} is in use by another worker process; give each worker its own "
                           "state_dir") from None
    return fd


@dataclass(frozen=True)
class Slot:
    """What a pool thread is doing: a polled job, or the recovery of a journaled one."""

    job_id: str
    recovery: bool = False


class Daemon:
    """rq-style loop: check the stop flag, reap, recover, poll, dispatch, heartbeat, sleep."""

    def __init__(self, config: Config, clients: Clients, *, once: bool = False,
                 stop: threading.Event | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.once = once
        self.stop = stop or threading.Event()
        self.clock = clock or Clock()
        directory = Path(config.state_dir) if config.state_dir else None  # load_config resolved it
        self._lock_fd = _lock_state_dir(directory) if directory else None
        self.journal = Journal(directory) if directory else None
        self.handler = Handler(config, clients, self.stop, self.journal, self.clock)
        self.api = JobAPI(clients.codepipeline, config.action_type, config.query_param)
        self.heartbeat_file = heartbeat_path(config)
        self.interval = config.poll_interval_min
        self.in_flight: dict[Future[Any], Slot] = {}  # the loop's thread alone reads and changes it
        self._ready = False
        self._heartbeat_failing = False
        self._next_recovery = 0.0  # the clock's monotonic time of the next journal read
        self._recovery_wait = RECOVERY_RETRY_MIN
        self.threads_left = False  # set at shutdown when job threads are still stuck in AWS calls

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> int:
        log.info("worker.started", version=__version__, action_type=self.config.action_type.api(),
                 concurrency=self.config.concurrency, once=self.once, journal=str(self.journal.path)
                 if self.journal else None)
        status = 0
        pool = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="job")
        while not self.stop.is_set():
            self._reap()
            self._recover(pool)
            free = self.config.concurrency - len(self.in_flight)
            if free <= 0:
                self._wait_for_slot()
                continue
            polled = self.poll(free)
            if polled is None and self.once:
                status = 1
            busy = {slot.job_id for slot in self.in_flight.values()}
            for job in polled or []:
                if job.id in busy:  # being recovered: not acknowledged now, CodePipeline hands it out again
                    log.info("job.not_claimed", job_id=job.id, reason="being recovered")
                    continue
                self.in_flight[pool.submit(contextvars.copy_context().run, self.handler.see_through, job)] = Slot(job.id)
            if self.once:
                break
            self.interval = self.config.poll_interval_min if polled else \
                min(self.interval * 2, self.config.poll_interval_max)
            self.clock.wait(self.stop, self.interval)
        return self._shut_down(pool, status)

    def _reap(self) -> None:
        """Free the slots of finished threads; a job left unfinished (claim, result call or recovery
        failed) brings the next recovery round forward, with a wait that doubles while failures go on."""
        settled = True
        for future in [f for f in self.in_flight if f.done()]:
            slot = self.in_flight.pop(future)
            error = None if future.cancelled() else future.exception()
            if error is not None:  # the handler catches everything it expects; this is a bug, say so
                log.error("job.crashed", job_id=slot.job_id, error=repr(error))
            settled = settled and error is None and future.result() is not False
        if not settled and self.journal:
            self._next_recovery = min(self._next_recovery, self.clock.monotonic() + self._recovery_wait)
            self._recovery_wait = min(self._recovery_wait * 2, RECOVERY_INTERVAL)

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
            # here. Jobs caught inside SendCommand or a result call cannot be, nor recoveries; the journal has them.
            left = [slot.job_id for slot in (self.in_flight[f] for f in stuck)
                    if slot.recovery or not self.handler.take_over(slot.job_id)]
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

    def _recover(self, pool: ThreadPoolExecutor) -> None:
        """Start recovering journaled jobs no thread is working on, each in a slot (at start, then now and then)."""
        if not self.journal or self.clock.monotonic() < self._next_recovery:
            return
        self._next_recovery = self.clock.monotonic() + RECOVERY_INTERVAL
        busy = {slot.job_id for slot in self.in_flight.values()}
        try:
            pending = [u for u in self.journal.unfinished() if u.job_id not in busy]
            self.journal.compact()
        except OSError as exc:
            log.error("journal.read_failed", error=str(exc))
            return
        if not pending:
            self._recovery_wait = RECOVERY_RETRY_MIN
            return
        log.info("journal.recovering", jobs=len(pending))
        for job in pending:
            self.in_flight[pool.submit(contextvars.copy_context().run, self.handler.recover, job)] = \
                Slot(job.job_id, recovery=True)

    def poll(self, free: int) -> list[Job] | None:
        """One PollForJobs for the free slots; None when the call failed (logged, the loop backs off)."""
        try:
            jobs = self.api.poll(free)
        except Exception as exc:  # noqa: BLE001 - the daemon outlives any AWS error
            code = aws_code(exc)
            hint = " (create the custom action type or fix action_type in the config)" \
                if code == "ActionTypeNotFoundException" else ""
            log.error("poll.failed", code=code, error=str(exc) + hint)
            self._heartbeat(polled_ok=False)
            return None
        if jobs:
            log.info("poll", jobs=len(jobs), free=free)
        self._heartbeat(polled_ok=True)
        return jobs

    def _heartbeat(self, *, polled_ok: bool) -> None:
        """Heartbeat file (a write error is logged once, not fatal) and systemd notifications, once per poll."""
        if self.heartbeat_file:
            try:
                beat(self.heartbeat_file, in_flight=len(self.in_flight), polled_ok=polled_ok)
            except OSError as exc:
                if not self._heartbeat_failing:
                    log.error("heartbeat.write_failed", path=str(self.heartbeat_file), error=str(exc))
                self._heartbeat_failing = True
            else:
                if self._heartbeat_failing:
                    log.info("heartbeat.written", path=str(self.heartbeat_file))
                self._heartbeat_failing = False
        messages = ["WATCHDOG=1", f"STATUS={len(self.in_flight)} job(s) in flight"]
        if polled_ok and not self._ready:
            self._ready = True
            messages.insert(0, "READY=1")
        systemd.notify(*messages)

    def _wait_for_slot(self) -> None:
        """Block until a job ends (or a second passes, so a stop request is seen promptly)."""
        wait(list(self.in_flight), timeout=1.0, return_when=FIRST_COMPLETED)
        systemd.notify("WATCHDOG=1")
