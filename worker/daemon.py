"""The poll loop: check the stop flag, poll for free slots, hand each job to a slot, sleep adaptively.

Signal handlers only set flags (first signal: warm stop — no more polling, in-flight jobs are
handed back with a continuation token; second signal: exit at once). Each job runs in a thread
of its own slot, inside a copy of the context so its log lines carry its job id.
"""

from __future__ import annotations

import contextvars
import os
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import FrameType
from typing import Any

import boto3
import structlog
from botocore.config import Config as BotoConfig

from worker import __version__
from worker.config import Config
from worker.errors import ConfigFileError, aws_code
from worker.handler import Clients, Handler
from worker.jobs import JobAPI

log = structlog.get_logger("worker")


def build_clients(config: Config) -> Clients:
    """Clients with the worker's own credentials; endpoints come from AWS_ENDPOINT_URL[_<SERVICE>]."""
    session = boto3.session.Session(region_name=config.region)
    if not session.region_name:
        raise ConfigFileError("no AWS region: set 'region' in the config file or AWS_REGION in the environment")
    base = BotoConfig(retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5, read_timeout=20,
                      max_pool_connections=2 * config.concurrency + 2,
                      user_agent_extra=f"codepipeline-ssm-worker/{__version__}")
    no_retry = base.merge(BotoConfig(retries={"mode": "standard", "total_max_attempts": 1}))
    return Clients(codepipeline=session.client("codepipeline", config=base), ssm=session.client("ssm", config=base),
                   ssm_send=session.client("ssm", config=no_retry), region=session.region_name)


class Daemon:
    def __init__(self, config: Config, clients: Clients, *, once: bool = False) -> None:
        self.config = config
        self.once = once
        self.stop = threading.Event()
        self.handler = Handler(config, clients, self.stop)
        self.api = JobAPI(clients.codepipeline, config.action_type, config.query_param)
        self.interval = config.poll_interval_min
        self.in_flight: set[Future[None]] = set()
        self._signals = 0

    # -- signals: flags only ---------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            os._exit(128 + signum)  # cold stop: the operator insisted
        self.stop.set()

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> int:
        log.info("worker.started", version=__version__, action_type=self.config.action_type.api(),
                 concurrency=self.config.concurrency, once=self.once)
        status = 0
        with ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="job") as pool:
            while not self.stop.is_set():
                free = self.config.concurrency - len(self.in_flight)
                if free <= 0:
                    self._wait_for_slot()
                    continue
                polled = self.poll(free)
                if polled is None and self.once:
                    status = 1
                for job in polled or []:
                    ctx = contextvars.copy_context()
                    future = pool.submit(ctx.run, self.handler.process, job)
                    self.in_flight.add(future)
                    future.add_done_callback(self.in_flight.discard)
                if self.once:
                    break
                self.interval = self.config.poll_interval_min if polled else \
                    min(self.interval * 2, self.config.poll_interval_max)
                self.stop.wait(self.interval)
            if self.stop.is_set():
                log.info("worker.stopping", in_flight=len(self.in_flight))
            wait(list(self.in_flight))
        log.info("worker.stopped", status=status)
        return status

    def poll(self, free: int) -> list[Any] | None:
        """One PollForJobs for the free slots; None when the call failed (logged, the loop backs off)."""
        try:
            jobs = self.api.poll(free)
        except Exception as exc:  # noqa: BLE001 - the daemon outlives any AWS error
            code = aws_code(exc)
            hint = " (create the custom action type or fix action_type in the config)" \
                if code == "ActionTypeNotFoundException" else ""
            log.error("poll.failed", code=code, error=str(exc) + hint)
            return None
        if jobs:
            log.info("poll", jobs=len(jobs), free=free)
        return jobs

    def _wait_for_slot(self) -> None:
        """Block until a job ends (or a second passes, so a stop request is seen promptly)."""
        wait(list(self.in_flight), timeout=1.0, return_when=FIRST_COMPLETED)
