"""AWS refusing the calls of recovery and tracking: AccessDenied, and throttling that outlasts every retry.

Each case aims a fault at one call of one job (X) only, for as long as the test wants: X is
either recovered after a SIGKILL (its re-acknowledgement, the look for its command, its hand-back
failing) or tracked (the token check, the status check, the failure details, the final result
failing). Meanwhile the same worker serves another job (Y) to the end; X is not finished while the
fault lasts (except a failure whose output cannot be read: it ends without it), and once the fault
is lifted X ends with one command and one result per job.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import INSTANCE, Harness, Worker, wait_for

from worker.journal import Journal

FAULTS = {"AccessDenied": "AccessDeniedException", "throttling": "ThrottlingException"}
DOCUMENT_X = "codepipeline-ssm-x"
STEP = """
schemaVersion: "2.2"
description: the job under fault
mainSteps:
  - action: aws:runShellScript
    name: Step
    inputs:
      runCommand: ["echo step output", "exit {code}"]
"""


@dataclass(frozen=True)
class Case:
    """Where X is hit: `crash_on` kills the first worker at that call (None: no crash); `operation` fails for X."""

    operation: str
    crash_on: tuple[str, bool] | None = None  # (operation, after it was carried out)
    fails: bool = False  # X's command fails (its failure details are read)
    ends_during_fault: frozenset[str] = frozenset()  # fault kinds X ends despite (without what it could not read)


CASES = {
    "recovery-AcknowledgeJob": Case("AcknowledgeJob", crash_on=("AcknowledgeJob", False)),
    "recovery-ListCommands": Case("ListCommands", crash_on=("SendCommand", True)),
    "recovery-PutJobSuccessResult": Case("PutJobSuccessResult", crash_on=("PutJobSuccessResult", False)),
    "tracking-ListCommands": Case("ListCommands"),
    "tracking-ListCommandInvocations": Case("ListCommandInvocations"),
    "tracking-GetCommandInvocation": Case("GetCommandInvocation", fails=True,
                                          ends_during_fault=frozenset({"AccessDenied"})),
    "tracking-PutJobSuccessResult": Case("PutJobSuccessResult"),
    "tracking-PutJobFailureResult": Case("PutJobFailureResult", fails=True),
}


def aimed_at_x(harness: Harness, execution: str, case: Case) -> Callable[[Mapping[str, Any]], bool]:
    """The requests of `case.operation` that belong to X."""
    cp, ssm = harness.emu.codepipeline, harness.emu.ssm

    def x_job(params: Mapping[str, Any]) -> bool:
        return "jobId" in params and cp.job(params["jobId"]).action_execution_id == execution

    def x_command(params: Mapping[str, Any]) -> bool:
        return params.get("CommandId") in {c.command_id for c in ssm.sent_commands if execution in c.request["Comment"]}

    if case.operation == "ListCommands" and case.crash_on:  # the look for the command a crash left unknown
        return lambda p: {"key": "DocumentName", "value": DOCUMENT_X} in p.get("Filters", [])
    if case.operation == "PutJobSuccessResult" and not case.crash_on:  # the final result, not the hand-backs
        return lambda p: x_job(p) and "continuationToken" not in p
    return x_job if case.operation in ("AcknowledgeJob", "PutJobSuccessResult", "PutJobFailureResult") else x_command


@pytest.mark.parametrize("kind", FAULTS)
@pytest.mark.parametrize("name", CASES)
def test_recovery_and_tracking_outlast_a_failing_call(harness: Harness, tmp_path: Path, name: str, kind: str) -> None:
    case = CASES[name]
    harness.emu.ssm.create_document(DOCUMENT_X, STEP.format(code=1 if case.fails else 0), fmt="YAML")
    x = harness.enqueue(configuration={"DocumentName": DOCUMENT_X}, spec={"instance_id": INSTANCE})
    config = harness.config(state_dir=str(tmp_path / "state"), hold_time=2, transient_retries=0)
    first: list[Worker] = []
    if case.crash_on:
        def kill() -> None:
            first[0].proc.send_signal(signal.SIGKILL)
            first[0].proc.wait(timeout=10)
        operation, after = case.crash_on
        harness.emu.faults.inject(operation, hook=kill, times=1, after=after, **({} if after else {"status": 500}))
    fault = harness.emu.faults.inject(case.operation, error=FAULTS[kind], seconds=600,
                                      match=aimed_at_x(harness, x, case))
    first.append(harness.start(config, name="first"))
    if case.crash_on:
        assert first[0].proc.wait(timeout=30) == -signal.SIGKILL
        worker = harness.start(config, name="restarted")
    else:
        worker = first[0]
    ends = kind in case.ends_during_fault
    wait_for(lambda: fault.fired >= (1 if ends else 2), timeout=60)  # X met the fault (again on a later try)

    y = harness.enqueue()
    assert harness.final(y, timeout=60).operation == "PutJobSuccessResult"  # served meanwhile
    assert worker.proc.poll() is None
    if ends:
        final = harness.final(x, timeout=60)
        assert "its output could not be read: reading the failed steps: AccessDeniedException" in \
            final.request["failureDetails"]["message"]
    else:
        assert harness.emu.codepipeline.final_result(x) is None
        harness.emu.faults.clear()
        final = harness.final(x, timeout=120)
    wait_for(lambda: not Journal(tmp_path / "state").unfinished(), timeout=60)
    assert worker.stop() == 0

    if case.fails:
        message = final.request["failureDetails"]["message"]
        assert final.operation == "PutJobFailureResult" and "did not succeed on 1 of 1 instance(s)" in message
        if not ends:
            assert "step output" in message
    else:
        assert final.operation == "PutJobSuccessResult" and "continuationToken" not in final.request
    for execution in (x, y):
        harness.assert_one_result_per_job(execution)
        assert len([s for s in harness.sends() if execution in s["Comment"]]) == 1
