"""Command output is data: bytes that are not UTF-8 never cost a job its result.

SSM Agent reports output through Go's JSON encoding, which turns bytes that are not UTF-8 into
U+FFFD, so SSM's API hands them back as replacement characters; the emulator does the same (its
runner decodes with errors="replace"). A JSON API could also hand back lone surrogates ("\\udcff"
escapes); the worker turns those into U+FFFD before anything is written, so a result call cannot
fail to encode, over JSON or CBOR.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import boto3
import pytest
from conftest import ACTION_TYPE, BUCKET, INSTANCE, Harness

from worker.config import ActionType
from worker.jobs import JobAPI
from worker.local import Emulator
from worker.local.wire import session_with_protocol

BYTES_DOCUMENT = r"""
schemaVersion: "2.2"
description: writes bytes that are not UTF-8, then succeeds or fails
parameters:
  Outcome:
    type: String
    allowedValues: [succeed, fail]
mainSteps:
  - action: aws:runShellScript
    name: Bytes
    inputs:
      runCommand:
        - |
          printf 'latin-1 caf\351, stray \377\376, cut \342\202 euro \342\202\254 ok\n'
          printf 'warning: \300\257 overlong\n' >&2
          if [ "{{Outcome}}" = fail ]; then printf 'error: r\351sum\351 failed\n' >&2; exit 4; fi
"""


def enqueue(harness: Harness, outcome: str, *, output: bool) -> str:
    key = f"bytes/{outcome}.zip"
    harness.emu.put_artifact(BUCKET, key, {"abc.json": json.dumps({"instance_id": INSTANCE, "outcome": outcome})})
    job_id = harness.emu.codepipeline.enqueue_job(
        ACTION_TYPE, configuration={"DocumentName": "codepipeline-ssm-bytes"},
        input_artifacts=[{"name": "SourceArtifact", "bucket": BUCKET, "key": key}],
        output_artifacts=[{"name": "RunResult", "bucket": BUCKET, "key": f"bytes/{outcome}-out.zip"}] if output else [])
    return harness.emu.codepipeline.job(job_id).action_execution_id


def test_emulator_presents_bytes_that_are_not_utf8_as_replacement_characters(emulator: Emulator) -> None:
    emulator.ssm.create_document("codepipeline-ssm-bytes", BYTES_DOCUMENT, fmt="YAML")
    env = emulator.env()
    ssm = boto3.client("ssm", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    command_id = ssm.send_command(DocumentName="codepipeline-ssm-bytes", InstanceIds=[INSTANCE],
                                  Parameters={"Outcome": ["succeed"]})["Command"]["CommandId"]
    deadline = time.monotonic() + 20
    while True:  # the invocation is invisible for a moment, then runs
        rows = ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"]
        if rows and rows[0]["Status"] == "Success":
            break
        assert time.monotonic() < deadline, "the command did not end"
        time.sleep(0.05)
    out = ssm.get_command_invocation(CommandId=command_id, InstanceId=INSTANCE)
    assert out["StandardOutputContent"] == ("latin-1 caf\ufffd, stray \ufffd\ufffd, cut \ufffd euro \u20ac ok\n")
    assert out["StandardErrorContent"] == "warning: \ufffd\ufffd overlong\n"
    [invocation] = ssm.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]
    assert "caf\ufffd" in invocation["CommandPlugins"][0]["Output"]


def test_success_with_output_artifact_and_failure_both_report(harness: Harness) -> None:
    harness.emu.ssm.create_document("codepipeline-ssm-bytes", BYTES_DOCUMENT, fmt="YAML")
    succeeded = enqueue(harness, "succeed", output=True)
    failed = enqueue(harness, "fail", output=True)
    worker = harness.start(harness.config())
    finals = {e: harness.final(e) for e in (succeeded, failed)}
    assert worker.stop() == 0
    for execution in finals:
        harness.assert_one_result_per_job(execution)

    assert finals[succeeded].operation == "PutJobSuccessResult" and "continuationToken" not in finals[succeeded].request
    with zipfile.ZipFile(io.BytesIO(harness.emu.read_object(BUCKET, "bytes/succeed-out.zip"))) as archive:
        report = json.loads(archive.read("ssm-command.json").decode("utf-8"))
    output = report["Instances"][0]["Steps"][0]["Output"]
    assert "latin-1 caf\ufffd, stray \ufffd\ufffd" in output and "euro \u20ac ok" in output

    details = finals[failed].request["failureDetails"]
    assert details["type"] == "JobFailed"
    assert "step 'Bytes' exit code 4" in details["message"]
    assert "error: r\ufffdsum\ufffd failed" in details["message"] and "caf\ufffd" in details["message"]


@pytest.mark.parametrize("protocol", ["json", "smithy-rpc-v2-cbor"])
def test_result_calls_survive_lone_surrogates(emulator: Emulator, tmp_path: Path, protocol: str) -> None:
    """A JSON API may hand back "\\udcff"; CBOR cannot even encode such a string, so the job API cleans it."""
    env = emulator.env()
    session = session_with_protocol("codepipeline", protocol, tmp_path)
    client = boto3.Session(botocore_session=session).client(
        "codepipeline", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    emulator.put_artifact(BUCKET, "s.zip", {"abc.json": "{}"})
    emulator.codepipeline.enqueue_job(ACTION_TYPE, configuration={"DocumentName": "codepipeline-ssm-linux"},
                                      input_artifacts=[{"name": "S", "bucket": BUCKET, "key": "s.zip"}])
    api = JobAPI(client, ActionType(**ACTION_TYPE), {})
    [job] = api.poll(1)
    assert api.acknowledge(job.id, job.nonce) == "InProgress"
    api.fail(job.id, "JobFailed", "stderr:\ncaf\udce9 \ud800 done")
    [result] = emulator.codepipeline.results
    assert result.request["failureDetails"]["message"] == "stderr:\ncaf\ufffd \ufffd done"
    assert {c.protocol for c in emulator.calls if c.service == "codepipeline"} == {protocol}
