"""Soak: several workers, many jobs, random SIGKILL/SIGTERM restarts and throttling bursts.

Marked `soak` (not in the default run). `SOAK_JOBS` sets the number of jobs (default 200);
CI runs a short version. Checks: every job ends with exactly one result matching what its
command really did, and SendCommand ran exactly once for every job that should send.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from conftest import INSTANCE, Harness

pytestmark = pytest.mark.soak

DOCUMENT = """
schemaVersion: "2.2"
description: sleeps, then exits with the requested code
parameters:
  Seconds:
    type: String
    allowedPattern: "^[0-9]$"
    interpolationType: ENV_VAR
  ExitCode:
    type: String
    allowedPattern: "^[0-9]{1,3}$"
    interpolationType: ENV_VAR
mainSteps:
  - action: aws:runShellScript
    name: Work
    inputs:
      runCommand:
        - 'sleep "$SSM_Seconds"'
        - 'echo "exiting with $SSM_ExitCode"'
        - 'exit "$SSM_ExitCode"'
"""
WORKERS = 3


def test_soak(harness: Harness, tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("SOAK_SEED", "7")))
    total = int(os.environ.get("SOAK_JOBS", "200"))
    harness.emu.ssm.create_document("codepipeline-ssm-soak", DOCUMENT, fmt="YAML")
    expected: dict[str, str] = {}
    for n in range(total):
        kind = rng.choices(["success", "fail", "config"], weights=[6, 3, 1])[0]
        spec = {"instance_id": INSTANCE, "seconds": str(rng.choice([0, 0, 1, 2])),
                "exit_code": "3" if kind == "fail" else "0"}
        if kind == "config":
            spec["colour"] = "blue"  # unknown parameter
        execution = harness.enqueue(spec=spec, configuration={"DocumentName": "codepipeline-ssm-soak"})
        expected[execution] = kind

    configs = [harness.config(concurrency=4, hold_time=2, state_dir=str(tmp_path / f"state{i}"))
               for i in range(WORKERS)]
    workers = [harness.start(c, name=f"w{i}") for i, c in enumerate(configs)]
    deadline = time.monotonic() + float(os.environ.get("SOAK_SECONDS", "300"))
    kills = 0

    def finished() -> int:
        return sum(harness.emu.codepipeline.final_result(e) is not None for e in expected)

    def stuck() -> str:
        return "\n".join(harness.emu.codepipeline._dump(e, 0) for e in expected
                         if harness.emu.codepipeline.final_result(e) is None)

    while finished() < total:
        assert time.monotonic() < deadline, f"only {finished()} of {total} jobs finished in time:\n{stuck()}"
        time.sleep(rng.uniform(1.0, 3.0))
        if rng.random() < 0.3:
            op = rng.choice(["PollForJobs", "ListCommandInvocations", "PutJobSuccessResult", "SendCommand",
                             "AcknowledgeJob", "GetObject"])
            harness.emu.faults.inject(op, error="ThrottlingException", seconds=1.0)
        i = rng.randrange(WORKERS)
        sig = rng.choice([signal.SIGKILL, signal.SIGKILL, signal.SIGTERM])
        workers[i].stop(sig)
        kills += 1
        workers[i] = harness.start(configs[i], name=f"w{i}")

    for w in workers:
        assert w.stop() == 0
    sends_by_execution: dict[str, int] = {}
    job_to_execution = {job.id: e for e in expected for job in harness.emu.codepipeline.jobs_for(e)}
    for sent in harness.emu.ssm.sent_commands:
        job_id = sent.request["Comment"].split()[1]
        sends_by_execution[job_to_execution[job_id]] = sends_by_execution.get(job_to_execution[job_id], 0) + 1
    for execution, kind in expected.items():
        final = harness.emu.codepipeline.final_result(execution)
        harness.assert_one_result_per_job(execution)
        if kind == "success":
            assert final.operation == "PutJobSuccessResult", (execution, final)
        else:
            assert final.operation == "PutJobFailureResult", (execution, final)
            wanted = "JobFailed" if kind == "fail" else "ConfigurationError"
            assert final.request["failureDetails"]["type"] == wanted, (execution, final)
        assert sends_by_execution.get(execution, 0) == (0 if kind == "config" else 1), execution
    assert kills > 0
