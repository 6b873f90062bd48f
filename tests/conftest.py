"""Shared fixtures: the local AWS emulator, and the real worker driven against it.

A test runs the worker one of two ways, and the emulator in this process shows exactly which
calls CodePipeline, SSM and S3 received:

- in process (`Harness.start_in_process`): the real loop, `worker.daemon.Daemon`, in a thread,
  with real boto3 clients talking HTTP to the emulator (a session of its own, no os.environ) and
  `Clock(speed=SPEED)`, so its waits run SPEED times faster. What the worker waits *for* must
  then be SPEED times faster too: a test that sets an emulator delay or a document's run time the
  worker must outwait or not writes it in worker seconds divided by SPEED.
- as a process (`Harness.start`): `codepipeline-ssm-worker run` in a child process whose only link
  to "AWS" is AWS_ENDPOINT_URL, at real speed: for signals, crashes and the command line.
"""

from __future__ import annotations

import contextvars
import functools
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
import yaml

from worker import log
from worker.clock import Clock
from worker.config import load_config
from worker.daemon import Daemon, build_clients
from worker.local import Emulator, EmulatorConfig
from worker.local.wire import write_protocol_override

ROOT = Path(__file__).resolve().parent.parent
ACTION_TYPE = {"category": "Deploy", "provider": "SSMRunCommand", "version": "1"}
INSTANCE = "i-0123456789abcdef0"
OTHER_INSTANCE = "i-0fedcba9876543210"
DOCUMENT = "codepipeline-ssm-linux"
BUCKET = "pipeline-artifacts"
CONFIG_PROPERTIES = [
    {"name": "DocumentName", "required": True, "key": True, "secret": False, "type": "String"},
    {"name": "DocumentVersion", "required": False, "key": False, "secret": False, "type": "String"},
    {"name": "SpecFile", "required": False, "key": False, "secret": False, "type": "String"},
]
SPEED = 10.0
"""Worker seconds per real second for in-process workers (see the module docstring)."""


def _events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


@dataclass
class Worker:
    """A running worker process and the log lines it has written."""

    proc: subprocess.Popen[str]
    log_path: Path

    def events(self) -> list[dict[str, Any]]:
        return _events(self.log_text().splitlines())

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


class _Sink:
    """One in-process worker's log: the JSON lines its threads wrote, as a process would to stderr."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            *complete, self._partial = (self._partial + text).split("\n")
            self.lines += complete


_SINK: contextvars.ContextVar[_Sink | None] = contextvars.ContextVar("in_process_worker_log", default=None)
"""Set in each in-process daemon's thread; job threads run in copies of its context, so inherit it."""


class _LogRouter(io.TextIOBase):
    """structlog's stream for in-process workers: a line goes to the worker whose thread wrote it."""

    def write(self, text: str) -> int:
        sink = _SINK.get()
        if sink is None:
            return sys.stderr.write(text)  # not a worker's thread: pytest captures it
        sink.write(text)
        return len(text)


class _RouteRecords(logging.Handler):
    """Standard-library records (botocore's warnings) from a worker's threads go to its log too."""

    def emit(self, record: logging.LogRecord) -> None:
        sink = _SINK.get()
        if sink is not None:
            sink.write(self.format(record) + "\n")


_ROUTER = _LogRouter()
_RECORDS = _RouteRecords(logging.WARNING)
_RECORDS.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))  # as worker.log sets it up


@functools.cache
def _models() -> Any:
    return botocore.session.get_session().get_component("data_loader")


def botocore_session() -> botocore.session.Session:
    """A fresh botocore session that shares one model loader with the others: models load once per run."""
    session = botocore.session.get_session()
    session.register_component("data_loader", _models())
    return session


@dataclass
class InProcessWorker:
    """A worker's daemon running in a thread of the test process; same surface as `Worker`."""

    name: str
    daemon: Daemon
    sink: _Sink = field(default_factory=_Sink)
    returncode: int | None = None
    error: BaseException | None = None
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"daemon-{self.name}", daemon=True)

    def _run(self) -> None:
        _SINK.set(self.sink)
        try:
            self.returncode = self.daemon.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the test by wait()
            self.error = exc
        finally:
            self.daemon.close()

    def events(self) -> list[dict[str, Any]]:
        return _events(list(self.sink.lines))

    def log_text(self) -> str:
        return "\n".join(self.sink.lines)

    def wait(self, timeout: float = 60.0) -> int | None:
        """The loop's exit status, once it has returned; its exception, if it raised one."""
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"in-process worker {self.name} still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.returncode

    def stop(self, timeout: float = 15.0) -> int | None:
        """A warm stop, as the first SIGTERM asks for (the signal handler sets the same event)."""
        self.daemon.stop.set()
        return self.wait(timeout)


@dataclass
class Harness:
    emu: Emulator
    tmp: Path
    workers: list[Worker | InProcessWorker] = field(default_factory=list)
    _jobs: int = 0

    def config(self, **overrides: Any) -> Path:
        """A worker config file for the emulator; overrides replace top-level keys."""
        config = {
            "action_type": ACTION_TYPE,
            "region": "us-east-1",
            "concurrency": 2,
            "allowed_documents": ["codepipeline-ssm-*"],
            "allowed_instance_ids": ["i-0*"],
            "log_format": "json",
            "poll_interval_min": 0.1,
            "poll_interval_max": 0.5,
            "hold_time": 30,  # worker seconds: 3 s at SPEED, time for a quick command to finish
            "invocation_grace": 5,
            **overrides,
        }
        self._jobs += 1
        path = self.tmp / f"worker-{self._jobs}.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def enqueue(self, files: dict[str, bytes | str] | None = None, *, spec: dict[str, Any] | None = None,
                configuration: dict[str, str] | None = None, artifact: bool = True) -> str:
        """Upload a source artifact and queue a job for it; returns the action execution id."""
        self._jobs += 1
        key = f"demo-pipeline/SourceArti/{self._jobs:04d}.zip"
        if files is None:
            files = {"abc.json": json.dumps(spec if spec is not None else
                                            {"instance_id": INSTANCE, "message": "Hello from the pipeline"})}
        if artifact:
            self.emu.put_artifact(BUCKET, key, files)
        job_id = self.emu.codepipeline.enqueue_job(
            ACTION_TYPE, configuration=configuration or {"DocumentName": DOCUMENT},
            input_artifacts=[{"name": "SourceArtifact", "bucket": BUCKET, "key": key, "revision": f"rev{self._jobs}"}])
        return self.emu.codepipeline.job(job_id).action_execution_id

    def start(self, config: Path, *, once: bool = False, name: str | None = None,
              env: dict[str, str] | None = None) -> Worker:
        log_path = self.tmp / f"{name or config.stem}-{len(self.workers)}.log"
        args = [sys.executable, "-m", "worker.cli", "run", "--config", str(config)] + (["--once"] if once else [])
        env = {**os.environ, **self.emu.env(), "PYTHONUNBUFFERED": "1", **(env or {})}
        with log_path.open("w") as log_file:
            proc = subprocess.Popen(args, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True,
                                    cwd=self.tmp)
        worker = Worker(proc, log_path)
        self.workers.append(worker)
        return worker

    def run_once(self, config: Path, timeout: float = 60.0) -> Worker:
        worker = self.start(config, once=True)
        worker.proc.wait(timeout=timeout)
        return worker

    def session(self, codepipeline_protocol: str | None = None) -> boto3.session.Session:
        """A boto3 session whose clients reach the emulator with the worker's keys; os.environ is left alone.

        The endpoint comes from a config file of its own (``endpoint_url``), as botocore reads it from
        ~/.aws/config; ``codepipeline_protocol`` pins CodePipeline's wire protocol as ``emu.env`` does.
        """
        env = self.emu.env()
        config_file = self.tmp / "aws-config"
        config_file.write_text(f"[default]\nendpoint_url = {self.emu.endpoint}\n")
        core = botocore.session.get_session() if codepipeline_protocol else botocore_session()
        core.set_config_variable("config_file", str(config_file))
        core.set_config_variable("credentials_file", str(self.tmp / "no-aws-credentials"))
        if codepipeline_protocol is not None:
            data_dir = self.tmp / f"botocore-data-{codepipeline_protocol}"
            write_protocol_override("codepipeline", codepipeline_protocol, data_dir)
            core.get_component("data_loader").search_paths.insert(0, str(data_dir))
        return boto3.session.Session(botocore_session=core, profile_name="default", region_name=env["AWS_REGION"],
                                     aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                     aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    def start_in_process(self, config: Path, *, once: bool = False, name: str | None = None,
                         speed: float = SPEED, codepipeline_protocol: str | None = None) -> InProcessWorker:
        """The daemon `run --config config` would start, in a thread of this process, on Clock(speed)."""
        settings = load_config(config)
        log.setup("json", stream=_ROUTER)
        if _RECORDS not in logging.getLogger().handlers:
            logging.getLogger().addHandler(_RECORDS)
        clients = build_clients(settings, self.session(codepipeline_protocol))
        daemon = Daemon(settings, clients, once=once, clock=Clock(speed))
        worker = InProcessWorker(f"{name or config.stem}-{len(self.workers)}", daemon)
        self.workers.append(worker)
        worker.thread.start()
        return worker

    def run_once_in_process(self, config: Path, timeout: float = 60.0, speed: float = SPEED) -> InProcessWorker:
        """`run --once` in process: one poll, those jobs to their end; returns after the loop has."""
        worker = self.start_in_process(config, once=True, speed=speed)
        worker.wait(timeout)
        return worker

    def final(self, action_execution_id: str, timeout: float = 30.0) -> Any:
        return self.emu.codepipeline.wait_final(action_execution_id, timeout)

    def results(self, action_execution_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [(r.operation, r.request) for r in self.emu.codepipeline.results_for(action_execution_id)]

    def client(self, service: str) -> Any:
        """A boto3 client of this test process pointed at the emulator, without touching os.environ."""
        env = self.emu.env()
        return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    def sends(self) -> list[dict[str, Any]]:
        return [c.request for c in self.emu.ssm.sent_commands]

    def assert_one_result_per_job(self, action_execution_id: str) -> None:
        """Invariant 1: every job of the execution ended with exactly one accepted result call."""
        results = self.emu.codepipeline.results_for(action_execution_id)
        for job in self.emu.codepipeline.jobs_for(action_execution_id):
            calls = [r for r in results if r.job_id == job.id]
            assert job.status in ("Succeeded", "Failed"), f"job {job.id} is {job.status}"
            assert len(calls) == 1, f"job {job.id} got {len(calls)} result calls"


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; fail the test with a timeout otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    config = EmulatorConfig(region="us-east-1", redispatch_after=3.0, invocation_visibility_delay=0.3)
    with Emulator(config) as emu:
        emu.codepipeline.create_custom_action_type(
            ACTION_TYPE["category"], ACTION_TYPE["provider"], ACTION_TYPE["version"],
            configuration_properties=CONFIG_PROPERTIES)
        emu.ssm.register_instance(INSTANCE, platform="Linux", tags={"Role": "build"})
        emu.ssm.register_instance(OTHER_INSTANCE, platform="Linux", tags={"Role": "build"})
        emu.ssm.create_document(DOCUMENT, (ROOT / "ssm" / "linux.yml").read_text(), fmt="YAML")
        yield emu


@pytest.fixture
def harness(emulator: Emulator, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(emulator, tmp_path)
    yield h
    for worker in h.workers:
        if isinstance(worker, InProcessWorker):
            worker.daemon.stop.set()
        elif worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(timeout=10)
    errors = []
    for worker in h.workers:
        if isinstance(worker, InProcessWorker):
            try:
                worker.wait(15)
            except BaseException as exc:  # noqa: BLE001 - stop the others first, then fail
                errors.append(exc)
    if errors:
        raise errors[0]
