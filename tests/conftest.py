"""Shared fixtures: the local AWS emulator, and the real worker run as a subprocess against it.

Every test that drives the worker starts `codepipeline-ssm-worker run` in a child process whose
only link to "AWS" is AWS_ENDPOINT_URL pointing at the emulator in this process; the emulator
then shows exactly which calls CodePipeline, SSM and S3 received.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from worker.local import Emulator, EmulatorConfig

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


@dataclass
class Worker:
    """A running worker process and the log lines it has written."""

    proc: subprocess.Popen[str]
    log_path: Path

    def events(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


@dataclass
class Harness:
    emu: Emulator
    tmp: Path
    workers: list[Worker] = field(default_factory=list)
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
            "hold_time": 10,
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
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(timeout=10)
