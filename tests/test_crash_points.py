"""SIGKILL at every step of a job's life, then a restart on the same state_dir: one command, one result per job.

A job's life is a sequence of AWS calls with journal writes between them. Killing the worker on
receipt of a call (not carried out) and right after a call with a side effect was carried out (its
answer never read) hits every instant, the journal writes included: the instant after a write is
the receipt of the next call, the instant before it is right after the call before. After a call
that only reads, the state is the one at its receipt, so reads are killed on receipt only. The
emulator runs the kill as a fault hook, so each instant is hit exactly, with no sleep.

The first job: PollForJobs, AcknowledgeJob, GetObject (the spec), DescribeDocument, GetDocument,
SendCommand, PutJobSuccessResult (the checkpoint). The continuation job that tracks the command:
AcknowledgeJob, ListCommands (the token check), ListCommandInvocations, PutJobSuccessResult (the
final result). Its PollForJobs is the first job's, at another count.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    ACTION_TYPE,
    CONFIG_PROPERTIES,
    DOCUMENT,
    INSTANCE,
    ROOT,
    Harness,
    Worker,
    wait_for,
)

from worker.journal import Journal
from worker.local import Emulator, EmulatorConfig

BOTH = ("on_receipt", "after_reply")
# (operation, how many earlier requests of it pass first, the instants to kill at)
STEPS = [
    ("PollForJobs", 0, BOTH), ("AcknowledgeJob", 0, BOTH), ("GetObject", 0, ("on_receipt",)),
    ("DescribeDocument", 0, ("on_receipt",)), ("GetDocument", 0, ("on_receipt",)), ("SendCommand", 0, BOTH),
    ("PutJobSuccessResult", 0, BOTH),
    ("AcknowledgeJob", 1, BOTH), ("ListCommands", 0, ("on_receipt",)), ("ListCommandInvocations", 0, ("on_receipt",)),
    ("PutJobSuccessResult", 1, BOTH),
]
CASES = [pytest.param(op, skip, when, id=f"{op}{skip + 1}-{when}") for op, skip, whens in STEPS for when in whens]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """The shared emulator, with a short redispatch: a job killed before its claim comes back in a second."""
    config = EmulatorConfig(region="us-east-1", redispatch_after=1.0, invocation_visibility_delay=0.1)
    with Emulator(config) as emu:
        emu.codepipeline.create_custom_action_type(
            ACTION_TYPE["category"], ACTION_TYPE["provider"], ACTION_TYPE["version"],
            configuration_properties=CONFIG_PROPERTIES)
        emu.ssm.register_instance(INSTANCE, platform="Linux", tags={"Role": "build"})
        emu.ssm.create_document(DOCUMENT, (ROOT / "ssm" / "linux.yml").read_text(), fmt="YAML")
        yield emu


def killer(victim: list[Worker]) -> object:
    """A fault hook that SIGKILLs the worker and returns once it is dead, so it reads no answer."""
    def kill() -> None:
        worker = wait_for(lambda: victim[0] if victim else None)
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(timeout=10)
    return kill


@pytest.mark.parametrize(("operation", "skip", "when"), CASES)
def test_sigkill_at_every_step(harness: Harness, tmp_path: Path, operation: str, skip: int, when: str) -> None:
    victim: list[Worker] = []
    after = when == "after_reply"
    fault = harness.emu.faults.inject(operation, hook=killer(victim), skip=skip, after=after,
                                      **({} if after else {"status": 500}))  # on receipt: not carried out
    execution = harness.enqueue()
    config = harness.config(state_dir=str(tmp_path / "state"), hold_time=5)
    victim.append(harness.start(config, name="killed"))
    wait_for(lambda: fault.fired, timeout=30)
    assert victim[0].proc.wait(timeout=10) == -signal.SIGKILL
    restarted = harness.start(config, name="restarted")
    final = harness.final(execution, timeout=40)
    wait_for(lambda: not Journal(tmp_path / "state").unfinished())  # the restart settled every job it held
    assert restarted.stop() == 0
    assert final.operation == "PutJobSuccessResult" and "continuationToken" not in final.request
    harness.assert_one_result_per_job(execution)
    assert len(harness.sends()) == 1
    assert final.request["outputVariables"]["CommandId"] == harness.emu.ssm.sent_commands[0].command_id
