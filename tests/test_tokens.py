"""Continuation tokens are input: honoured only for a command sent for the same action execution.

A token naming no command, another pipeline's command or a document outside the allow-list fails
the job within seconds and touches no command; a real hand-off between worker processes works,
and a check that meets throttling is tried again.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from conftest import ACTION_TYPE, BUCKET, DOCUMENT, INSTANCE, Harness, wait_for

from worker.checkpoint import Checkpoint, Phase, decode, refusal
from worker.config import ActionType, Config
from worker.errors import BadToken
from worker.plan import job_comment

SLOW_DOCUMENT = """
schemaVersion: "2.2"
description: a step that takes a few seconds
mainSteps:
  - action: aws:runShellScript
    name: Slow
    inputs:
      runCommand: ["sleep {seconds}", "echo done"]
"""


def enqueue_with_token(harness: Harness, token: str, **context: str) -> str:
    """A job as CodePipeline would hand it out after a hand-back with `token`; returns its action execution id."""
    job_id = harness.emu.codepipeline.enqueue_job(
        ACTION_TYPE, configuration={"DocumentName": DOCUMENT},
        input_artifacts=[{"name": "SourceArtifact", "bucket": BUCKET, "key": "none.zip"}],
        continuation_token=token, **context)
    return harness.emu.codepipeline.job(job_id).action_execution_id


def calls_naming(harness: Harness, command_id: str) -> list[str]:
    return [c.operation for c in harness.emu.calls if c.params.get("CommandId") == command_id]


def assert_refused(harness: Harness, execution: str, *, says: str) -> dict[str, Any]:
    final = harness.final(execution, timeout=30)
    assert final.operation == "PutJobFailureResult"
    details = final.request["failureDetails"]
    assert details["type"] == "JobFailed" and says in details["message"], details
    assert "externalExecutionId" not in details  # the console must not link to a command that is not this job's
    assert len(harness.emu.codepipeline.jobs_for(execution)) == 1  # failed at once, never handed back
    return details


# -- through the worker ------------------------------------------------------------------------------

def test_token_naming_no_command_fails_in_seconds(harness: Harness) -> None:
    """A send time far in the future is taken as now: the job fails once SSM surely lists a new command."""
    command_id = str(uuid.uuid4())
    token = Checkpoint(Phase.SENT, command_id, time.time() + 10 ** 9, str(uuid.uuid4())).encode()
    execution = enqueue_with_token(harness, token)
    worker = harness.start(harness.config())
    details = assert_refused(harness, execution, says=f"SSM has no command {command_id}")
    assert worker.stop() == 0
    assert "nothing was done" in details["message"]
    assert set(calls_naming(harness, command_id)) == {"ListCommands"}
    assert harness.sends() == []


def test_token_naming_another_pipelines_command_is_refused(harness: Harness) -> None:
    """A real token of one pipeline's execution, replayed into another's, reports nothing of that command."""
    theirs = harness.enqueue(spec={"instance_id": INSTANCE, "message": "their secret output"})
    worker = harness.start(harness.config())
    assert harness.final(theirs).operation == "PutJobSuccessResult"
    stolen = harness.results(theirs)[0][1]["continuationToken"]
    command_id = json.loads(stolen)["command_id"]
    before = len(calls_naming(harness, command_id))
    ours = enqueue_with_token(harness, stolen, pipeline_name="attacker-pipeline")
    details = assert_refused(harness, ours, says="which was not sent for this action execution")
    assert worker.stop() == 0
    assert "their secret output" not in details["message"] and "Success" not in details["message"]
    assert calls_naming(harness, command_id)[before:] == ["ListCommands"]  # looked at, then left alone
    assert len(harness.sends()) == 1


def test_token_for_a_command_of_this_execution_with_a_document_not_allowed(harness: Harness) -> None:
    """Someone holding the job API forges a hand-back naming a command whose Comment names this execution."""
    harness.emu.ssm.create_document("AWS-RunAnything", SLOW_DOCUMENT.format(seconds=0), fmt="YAML")
    harness.enqueue()
    codepipeline, ssm = harness.client("codepipeline"), harness.client("ssm")
    type_id = {**ACTION_TYPE, "owner": "Custom"}
    [job] = wait_for(lambda: codepipeline.poll_for_jobs(actionTypeId=type_id, maxBatchSize=1)["jobs"])
    codepipeline.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    context = job["data"]["pipelineContext"]
    execution = context["action"]["actionExecutionId"]
    where = f"{context['pipelineName']}/{context['stage']['name']}/{context['action']['name']}"
    command_id = ssm.send_command(DocumentName="AWS-RunAnything", InstanceIds=[INSTANCE],
                                  Comment=job_comment(job["id"], execution, where))["Command"]["CommandId"]
    token = Checkpoint(Phase.SENT, command_id, time.time(), job["id"]).encode()
    codepipeline.put_job_success_result(jobId=job["id"], continuationToken=token)
    worker = harness.start(harness.config())
    final = harness.final(execution, timeout=30)
    assert worker.stop() == 0
    details = final.request["failureDetails"]
    assert final.operation == "PutJobFailureResult" and details["type"] == "JobFailed"
    assert f"names SSM command {command_id}, whose document is not allowed" in details["message"]
    assert "'AWS-RunAnything' is not allowed by this worker (allowed_documents: codepipeline-ssm-*)" in \
        details["message"]
    assert set(calls_naming(harness, command_id)) == {"ListCommands"}


def test_hand_off_between_two_worker_processes(harness: Harness) -> None:
    """The genuine case: one process sends and hands back, another (no shared secret) tracks and reports."""
    harness.emu.ssm.create_document("codepipeline-ssm-slow", SLOW_DOCUMENT.format(seconds=2), fmt="YAML")
    execution = harness.enqueue(configuration={"DocumentName": "codepipeline-ssm-slow"},
                                spec={"instance_id": INSTANCE})
    sender = harness.run_once(harness.config())
    assert sender.proc.returncode == 0
    assert [e["event"] for e in sender.events()].count("command.sent") == 1
    tracker = harness.start(harness.config())
    final = harness.final(execution)
    assert tracker.stop() == 0
    assert final.operation == "PutJobSuccessResult" and "continuationToken" not in final.request
    events = [e["event"] for e in tracker.events()]
    assert "job.succeeded" in events and "command.sent" not in events and "job.token_refused" not in events
    harness.assert_one_result_per_job(execution)
    assert len(harness.sends()) == 1


def test_throttling_while_checking_the_token_is_retried(harness: Harness) -> None:
    """More throttling than botocore retries: the check fails, and is simply made again."""
    harness.emu.faults.inject("ListCommands", error="ThrottlingException", times=8,
                              match=lambda params: "CommandId" in params)
    execution = harness.enqueue()
    worker = harness.start(harness.config(hold_time=30))
    final = harness.final(execution, timeout=60)
    assert worker.stop() == 0
    assert final.operation == "PutJobSuccessResult" and "continuationToken" not in final.request
    assert harness.emu.faults.fired("ListCommands") == 8
    assert "command.check_failed" in [e["event"] for e in worker.events()]
    harness.assert_one_result_per_job(execution)
    assert len(harness.sends()) == 1


# -- the pure checks -----------------------------------------------------------------------------------

CONFIG = Config(action_type=ActionType("Deploy", "SSMRunCommand", "1"), allowed_documents=("codepipeline-ssm-*",),
                allowed_instance_ids=("i-*",))
SENDER, EXECUTION, COMMAND = (str(uuid.uuid4()) for _ in range(3))


@pytest.mark.parametrize("body", [
    {"v": 1, "phase": "sent", "command_id": COMMAND, "sent_at": float("nan"), "job": SENDER},
    {"v": 1, "phase": "sent", "command_id": COMMAND, "sent_at": 1.0},
    {"v": 1, "phase": "sent", "command_id": "../../etc/passwd", "sent_at": 1.0, "job": SENDER},
    {"v": 1, "phase": "sent", "command_id": COMMAND, "sent_at": 1.0, "job": "x" * 2000},
    {"v": 2, "phase": "planned"},
], ids=["nan-sent-at", "no-sender", "not-a-command-id", "not-a-job-id", "other-version"])
def test_tokens_of_another_shape_are_unreadable(body: dict[str, Any]) -> None:
    with pytest.raises(BadToken, match="not written by this worker version"):
        decode(json.dumps(body))


def test_a_token_survives_encoding_and_a_future_send_time_is_clamped() -> None:
    cp = Checkpoint(Phase.SENT, COMMAND, 1700000000.125, SENDER)
    assert decode(cp.encode()) == cp
    assert decode(Checkpoint(Phase.PLANNED).encode()) == Checkpoint(Phase.PLANNED)
    assert Checkpoint(Phase.SENT, COMMAND, 5e9, SENDER).clamped(100.0).sent_at == 100.0
    assert cp.clamped(5e9) == cp


def test_refusal_ties_the_command_to_the_action_execution() -> None:
    cp = Checkpoint(Phase.SENT, COMMAND, 1.0, SENDER)
    ours = {"Comment": job_comment(SENDER, EXECUTION, "p/s/a"), "DocumentName": DOCUMENT}
    assert refusal(cp, ours, action_execution_id=EXECUTION, where="p/s/a", config=CONFIG) is None
    for command, execution in [
        (ours, str(uuid.uuid4())),  # another execution of the same action
        ({**ours, "Comment": job_comment(str(uuid.uuid4()), EXECUTION, "p/s/a")}, EXECUTION),  # another sender
        ({**ours, "Comment": ""}, EXECUTION),
        ({"DocumentName": DOCUMENT}, EXECUTION),
        (ours, ""),  # a job without an action execution id proves nothing
    ]:
        refused = refusal(cp, command, action_execution_id=execution, where="p/s/a", config=CONFIG)
        assert refused is not None and "was not sent for this action execution" in str(refused)
    refused = refusal(cp, {**ours, "DocumentName": "AWS-RunShellScript"}, action_execution_id=EXECUTION,
                      where="p/s/a", config=CONFIG)
    assert refused is not None and "whose document is not allowed" in str(refused)
