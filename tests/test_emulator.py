"""The local AWS emulator, driven only by real boto3 clients over HTTP (and its Python API).

It must behave like the services the worker meets: both CodePipeline wire protocols, the
job lifecycle (nonce, re-dispatch, continuation, timeout, state errors), SSM Run Command
running real scripts with SSM's statuses and limits, S3 through moto with every access
recorded, and injected faults that botocore's retry logic recognises.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import botocore_session

from worker.local import Emulator, EmulatorBug, EmulatorConfig
from worker.local.server import WORKER_ACCESS_KEY_ID
from worker.local.wire import session_with_protocol

TYPE = {"category": "Deploy", "owner": "Custom", "provider": "SSMRunCommand", "version": "1"}
PROPERTIES = [{"name": "DocumentName", "required": True, "key": True, "secret": False}]
LINUX = "i-0123456789abcdef0"
OTHER = "i-0fedcba9876543210"
WINDOWS = "i-0aaaabbbbccccdddd"
FAST = {"redispatch_after": 0.3, "job_timeout": 60.0, "invocation_visibility_delay": 0.2}

ECHO = """
schemaVersion: "2.2"
description: echo a message and exit with a chosen code
parameters:
  Message:
    type: String
    allowedPattern: "^[a-zA-Z0-9 ]{1,50}$"
  ExitCode:
    type: String
    default: "0"
    allowedPattern: "^[0-9]{1,3}$"
mainSteps:
  - action: aws:runShellScript
    name: Echo
    inputs:
      runCommand:
        - echo "message {{ Message }}"
        - echo "to stderr" >&2
        - exit {{ ExitCode }}
"""

TWO_STEPS = """
schemaVersion: "2.2"
description: two steps
mainSteps:
  - action: aws:runShellScript
    name: First
    inputs:
      runCommand: ["echo first"]
  - action: aws:runShellScript
    name: Second
    inputs:
      runCommand: ["head -c 3000 /dev/zero | tr '\\\\0' x"]
"""

SLOW = """
schemaVersion: "2.2"
description: runs for a while
mainSteps:
  - action: aws:runShellScript
    name: Slow
    inputs:
      runCommand: ["echo started", "sleep {{ Seconds }}", "echo finished"]
parameters:
  Seconds:
    type: String
    default: "0.6"
    allowedPattern: "^[0-9.]{1,4}$"
"""


# ------------------------------------------------------------------ fixtures and helpers


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def make(**overrides: Any) -> Emulator:
        emu = Emulator(EmulatorConfig(**{**FAST, **overrides})).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    emulator = make_emulator()
    emulator.codepipeline.create_custom_action_type("Deploy", "SSMRunCommand", "1", PROPERTIES)
    emulator.ssm.register_instance(LINUX, tags={"Role": "build", "Env": "test"})
    emulator.ssm.register_instance(OTHER, tags={"Role": "build", "Env": "prod"})
    emulator.ssm.register_instance(WINDOWS, platform="Windows", tags={"Role": "win"})
    emulator.ssm.create_document("echo", ECHO)
    return emulator


def client(emu: Emulator, service: str, *, session: botocore.session.Session | None = None,
           key: str = WORKER_ACCESS_KEY_ID, validate: bool = True, token: str | None = None, attempts: int = 3) -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts}, parameter_validation=validate,
                    connect_timeout=5, read_timeout=10)
    return boto3.Session(botocore_session=session or botocore_session()).client(
        service, endpoint_url=emu.endpoint, region_name="us-east-1", aws_access_key_id=key,
        aws_secret_access_key="secret", aws_session_token=token, config=config)


def enqueue(emu: Emulator, document: str = "echo", **kwargs: Any) -> str:
    emu.put_artifact("artifacts", "source.zip", {"abc.json": "{}"})
    return emu.codepipeline.enqueue_job(
        TYPE, configuration={"DocumentName": document},
        input_artifacts=[{"name": "Source", "bucket": "artifacts", "key": "source.zip"}], **kwargs)


def claim(cp: Any) -> dict[str, Any]:
    [job] = cp.poll_for_jobs(actionTypeId=TYPE, maxBatchSize=1)["jobs"]
    assert cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
    return job


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def raw_post(endpoint: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(endpoint + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# ------------------------------------------------------------------ CodePipeline protocols


def test_default_client_speaks_json(emu: Emulator) -> None:
    cp = client(emu, "codepipeline")
    # botocore 1.44 prefers json from the model's protocols list, whatever `.protocol` says
    assert cp.meta.service_model.resolved_protocol == "json"
    job_id = enqueue(emu, pipeline_name="app")
    job = claim(cp)
    assert job["id"] == job_id and job["accountId"] == emu.account_id
    assert job["data"]["pipelineContext"]["pipelineName"] == "app"
    assert job["data"]["inputArtifacts"][0]["location"]["s3Location"] == {"bucketName": "artifacts", "objectKey": "source.zip"}
    cp.put_job_success_result(jobId=job_id, outputVariables={"Status": "Success"},
                              executionDetails={"summary": "done", "percentComplete": 100})
    execution = emu.codepipeline.job(job_id).action_execution_id
    final = emu.codepipeline.final_result(execution)
    assert final is not None and final.request["outputVariables"] == {"Status": "Success"}
    assert emu.codepipeline.job(job_id).status == "Succeeded"
    assert {c.protocol for c in emu.calls if c.service == "codepipeline"} == {"json"}


def test_cbor_protocol_is_answered_too(emu: Emulator, tmp_path: Path) -> None:
    cp = client(emu, "codepipeline", session=session_with_protocol("codepipeline", "smithy-rpc-v2-cbor", tmp_path))
    assert cp.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    job_id = enqueue(emu)
    job = claim(cp)
    assert job["id"] == job_id
    details = cp.get_job_details(jobId=job_id)["jobDetails"]
    assert details["data"]["artifactCredentials"] == job["data"]["artifactCredentials"]
    cp.put_job_failure_result(jobId=job_id, failureDetails={"type": "ConfigurationError", "message": "bad spec"})
    with pytest.raises(ClientError) as err:
        cp.put_job_success_result(jobId=job_id)
    assert code(err) == "InvalidJobStateException"
    assert emu.codepipeline.results[-1].request["failureDetails"]["message"] == "bad spec"
    assert {c.protocol for c in emu.calls if c.service == "codepipeline"} == {"smithy-rpc-v2-cbor"}


def test_error_bodies_follow_each_protocol(emu: Emulator) -> None:
    status, headers, body = raw_post(
        emu.endpoint, "/", {"X-Amz-Target": "CodePipeline_20150709.AcknowledgeJob", "Content-Type": "application/x-amz-json-1.1"},
        json.dumps({"jobId": "00000000-0000-4000-8000-000000000000", "nonce": "1"}).encode())
    assert status == 400 and json.loads(body)["__type"] == "JobNotFoundException"
    status, headers, body = raw_post(
        emu.endpoint, "/service/CodePipeline_20150709/operation/AcknowledgeJob",
        {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor", "Accept": "application/cbor"},
        bytes([0xA0]))  # an empty CBOR map: both required members missing
    assert status == 400 and headers["smithy-protocol"] == "rpc-v2-cbor"
    assert b"com.amazonaws.codepipeline#ValidationException" in body


# ------------------------------------------------------------------ CodePipeline job semantics


def test_redispatch_gives_a_new_nonce_and_the_old_one_goes_stale(emu: Emulator) -> None:
    cp = client(emu, "codepipeline")
    job_id = enqueue(emu)
    emu.codepipeline.redispatch_after = 60.0
    [first] = cp.poll_for_jobs(actionTypeId=TYPE)["jobs"]
    assert cp.poll_for_jobs(actionTypeId=TYPE)["jobs"] == []  # dispatched, not yet due again
    emu.codepipeline.redispatch_after = 0.0
    [second] = cp.poll_for_jobs(actionTypeId=TYPE)["jobs"]
    assert second["id"] == job_id and second["nonce"] != first["nonce"]
    with pytest.raises(ClientError) as err:
        cp.acknowledge_job(jobId=job_id, nonce=first["nonce"])
    assert code(err) == "InvalidNonceException"
    assert cp.acknowledge_job(jobId=job_id, nonce=second["nonce"])["status"] == "InProgress"
    assert cp.acknowledge_job(jobId=job_id, nonce=second["nonce"])["status"] == "InProgress"
    assert cp.poll_for_jobs(actionTypeId=TYPE)["jobs"] == []  # acknowledged jobs are never re-dispatched
    with pytest.raises(ClientError) as err:
        cp.acknowledge_job(jobId="00000000-0000-4000-8000-000000000000", nonce="1")
    assert code(err) == "JobNotFoundException"
    assert emu.codepipeline.job(job_id).dispatch_count == 2


def test_continuation_queues_a_new_job_carrying_the_token(emu: Emulator) -> None:
    cp = client(emu, "codepipeline")
    job_id = enqueue(emu)
    first = claim(cp)
    cp.put_job_success_result(jobId=job_id, continuationToken='{"command_id": "c-1"}',
                              executionDetails={"externalExecutionId": "c-1", "percentComplete": 0})
    with pytest.raises(ClientError) as err:
        cp.put_job_failure_result(jobId=job_id, failureDetails={"type": "JobFailed", "message": "late"})
    assert code(err) == "InvalidJobStateException"
    second = claim(cp)
    assert second["id"] != job_id and second["nonce"] != first["nonce"]
    assert second["data"]["continuationToken"] == '{"command_id": "c-1"}'
    assert second["data"]["artifactCredentials"] != first["data"]["artifactCredentials"]
    context = first["data"]["pipelineContext"]
    assert second["data"]["pipelineContext"] == context
    execution = context["action"]["actionExecutionId"]
    assert emu.codepipeline.final_result(execution) is None
    cp.put_job_success_result(jobId=second["id"], executionDetails={"summary": "ok"})
    assert [r.job_id for r in emu.codepipeline.results_for(execution)] == [job_id, second["id"]]
    assert emu.codepipeline.wait_final(execution, 1).job_id == second["id"]
    assert [j.status for j in emu.codepipeline.jobs_for(execution)] == ["Succeeded", "Succeeded"]


def test_job_times_out_without_a_result(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(job_timeout=0.3)
    emu.codepipeline.create_custom_action_type("Deploy", "SSMRunCommand", "1", PROPERTIES)
    cp = client(emu, "codepipeline")
    job_id = enqueue(emu)
    claim(cp)
    time.sleep(0.4)
    assert emu.codepipeline.job(job_id).status == "TimedOut"
    with pytest.raises(ClientError) as err:
        cp.put_job_success_result(jobId=job_id)
    assert code(err) == "InvalidJobStateException"
    execution = emu.codepipeline.job(job_id).action_execution_id
    with pytest.raises(TimeoutError, match=f"job {job_id} TimedOut"):
        emu.codepipeline.wait_final(execution, 0.1)


def test_query_param_and_batch_size(emu: Emulator) -> None:
    kind = emu.codepipeline.create_custom_action_type(
        "Deploy", "SSMRunCommand", "2",
        [*PROPERTIES, {"name": "Fleet", "required": True, "key": False, "secret": False, "queryable": True}])
    for fleet in ("linux", "windows", "linux", "linux"):
        emu.put_artifact("artifacts", "source.zip", {"abc.json": "{}"})
        emu.codepipeline.enqueue_job(kind, configuration={"DocumentName": "echo", "Fleet": fleet},
                                     input_artifacts=[{"name": "Source", "bucket": "artifacts", "key": "source.zip"}])
    cp = client(emu, "codepipeline")
    linux = cp.poll_for_jobs(actionTypeId=kind, maxBatchSize=2, queryParam={"Fleet": "linux"})["jobs"]
    assert len(linux) == 2
    assert {j["data"]["actionConfiguration"]["configuration"]["Fleet"] for j in linux} == {"linux"}
    [windows] = cp.poll_for_jobs(actionTypeId=kind, maxBatchSize=5, queryParam={"Fleet": "windows"})["jobs"]
    assert windows["data"]["actionConfiguration"]["configuration"]["Fleet"] == "windows"
    with pytest.raises(ClientError) as err:
        cp.poll_for_jobs(actionTypeId=kind)
    assert code(err) == "ValidationException"
    with pytest.raises(ClientError) as err:
        cp.poll_for_jobs(actionTypeId={**TYPE, "version": "9"})
    assert code(err) == "ActionTypeNotFoundException"


def test_custom_action_type_over_the_api(emu: Emulator) -> None:
    cp = client(emu, "codepipeline")
    created = cp.create_custom_action_type(
        category="Build", provider="Mine", version="1",
        configurationProperties=[{"name": "Q", "required": True, "key": False, "secret": False, "queryable": True}],
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0})
    assert created["actionType"]["id"]["owner"] == "Custom"
    with pytest.raises(ClientError) as err:
        cp.create_custom_action_type(
            category="Build", provider="Mine", version="2",
            configurationProperties=[{"name": "Q", "required": False, "key": False, "secret": False, "queryable": True}],
            inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
            outputArtifactDetails={"minimumCount": 0, "maximumCount": 0})
    assert code(err) == "ValidationException"  # a queryable property must be required
    assert cp.poll_for_jobs(actionTypeId=created["actionType"]["id"], queryParam={"Q": "x"})["jobs"] == []


def test_requests_are_validated_against_the_model(emu: Emulator) -> None:
    cp = client(emu, "codepipeline", validate=False)
    job_id = enqueue(emu)
    invalid = [
        lambda: cp.poll_for_jobs(actionTypeId=TYPE, maxBatchSize=0),
        lambda: cp.poll_for_jobs(actionTypeId={**TYPE, "provider": "x" * 36}),
        lambda: cp.poll_for_jobs(actionTypeId={**TYPE, "category": "Nonsense"}),
        lambda: cp.acknowledge_job(jobId=job_id),
        lambda: cp.put_job_success_result(jobId=job_id, continuationToken="t" * 2049),
        lambda: cp.put_job_failure_result(jobId=job_id, failureDetails={"type": "JobFailed", "message": "m" * 5001}),
        lambda: cp.put_job_success_result(jobId=job_id, executionDetails={"percentComplete": 101}),
    ]
    for call in invalid:
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == "ValidationException", err.value
    claim(client(emu, "codepipeline"))
    with pytest.raises(ClientError) as err:
        cp.put_job_success_result(jobId=job_id, continuationToken="t", outputVariables={"A": "b"})
    assert code(err) == "ValidationException"
    assert "continuationToken" in err.value.response["Error"]["Message"]
    assert emu.codepipeline.results == []


def test_an_emulator_bug_fails_loudly(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator()
    emu.codepipeline.create_custom_action_type("Deploy", "SSMRunCommand", "1", PROPERTIES)
    job_id = enqueue(emu)
    emu.codepipeline._jobs[job_id].data["pipelineContext"]["pipelineName"] = "p" * 101  # corrupt state
    cp = client(emu, "codepipeline")
    with pytest.raises(ClientError) as err:
        cp.get_job_details(jobId=job_id)
    assert code(err) == "EmulatorBug"
    with pytest.raises(ClientError) as err:
        cp.list_pipelines()
    assert code(err) == "UnknownOperationException"
    with pytest.raises(ClientError) as err:
        client(emu, "dynamodb").list_tables()
    assert code(err) == "UnknownServiceException"
    assert len(emu.internal_errors) == 3
    with pytest.raises(EmulatorBug, match="pipelineName"):
        emu.stop()


# ------------------------------------------------------------------ SSM documents


def test_documents_have_versions(emu: Emulator) -> None:
    ssm = client(emu, "ssm")
    created = ssm.create_document(Name="build", Content=ECHO, DocumentFormat="YAML", DocumentType="Command")
    assert created["DocumentDescription"]["DocumentVersion"] == "1"
    assert {p["Name"] for p in created["DocumentDescription"]["Parameters"]} == {"Message", "ExitCode"}
    updated = ssm.update_document(Name="build", Content=ECHO.replace("a message", "the message"),
                                  DocumentFormat="YAML", DocumentVersion="$LATEST")
    assert updated["DocumentDescription"]["DocumentVersion"] == "2"
    assert ssm.get_document(Name="build")["DocumentVersion"] == "1"  # $DEFAULT stays on 1
    latest = ssm.get_document(Name="build", DocumentVersion="$LATEST")
    assert latest["DocumentVersion"] == "2" and "the message" in latest["Content"]
    as_json = ssm.get_document(Name="build", DocumentVersion="1", DocumentFormat="JSON")
    assert json.loads(as_json["Content"])["mainSteps"][0]["name"] == "Echo"
    described = ssm.describe_document(Name="build")["Document"]
    assert (described["LatestVersion"], described["DefaultVersion"]) == ("2", "1")
    ssm.update_document_default_version(Name="build", DocumentVersion="2")
    assert ssm.describe_document(Name="build")["Document"]["DefaultVersion"] == "2"
    for call, expected in [
        (lambda: ssm.create_document(Name="build", Content=ECHO, DocumentFormat="YAML"), "DocumentAlreadyExists"),
        (lambda: ssm.create_document(Name="broken", Content="mainSteps: 3", DocumentFormat="YAML"), "InvalidDocumentContent"),
        (lambda: ssm.get_document(Name="build", DocumentVersion="7"), "InvalidDocumentVersion"),
        (lambda: ssm.describe_document(Name="missing"), "InvalidDocument"),
    ]:
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == expected


# ------------------------------------------------------------------ SSM Run Command


def test_status_sequence_and_invisible_start(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(invocation_visibility_delay=0.3, delivery_delay=0.6)
    emu.ssm.register_instance(LINUX)
    emu.ssm.create_document("slow", SLOW)
    ssm = client(emu, "ssm")
    command = ssm.send_command(DocumentName="slow", InstanceIds=[LINUX], Comment="job 42 ",
                               Parameters={"Seconds": ["0.4"]})["Command"]
    assert (command["Status"], command["TargetCount"]) == ("Pending", 1)
    command_id = command["CommandId"]
    with pytest.raises(ClientError) as err:
        ssm.get_command_invocation(CommandId=command_id, InstanceId=LINUX)
    assert code(err) == "InvocationDoesNotExist"
    assert ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"] == []
    seen: list[tuple[str, str, int]] = []

    def observe() -> bool:
        try:
            got = ssm.get_command_invocation(CommandId=command_id, InstanceId=LINUX)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "InvocationDoesNotExist"
            return False
        state = (got["Status"], got["StatusDetails"], got["ResponseCode"])
        if not seen or seen[-1] != state:
            seen.append(state)
        return got["Status"] == "Success"

    wait_until(observe, timeout=10)
    assert seen[0] == ("Pending", "Pending", -1)
    assert ("InProgress", "InProgress", -1) in seen
    assert seen[-1] == ("Success", "Success", 0)
    final = ssm.get_command_invocation(CommandId=command_id, InstanceId=LINUX)
    assert final["StandardOutputContent"] == "started\nfinished\n"
    assert final["PluginName"] == "Slow" and final["Comment"] == "job 42 "
    # The plugin's result can show a moment before the invocation (and the command) records its end.
    def listed() -> tuple[str, int, int]:
        [command] = ssm.list_commands(CommandId=command_id)["Commands"]
        return command["Status"], command["CompletedCount"], command["ErrorCount"]

    wait_until(lambda: listed()[0] != "InProgress", timeout=5)
    assert listed() == ("Success", 1, 0)


def test_real_exit_code_and_output(emu: Emulator) -> None:
    ssm = client(emu, "ssm")
    command_id = ssm.send_command(DocumentName="echo", InstanceIds=[LINUX],
                                  Parameters={"Message": ["hello world"], "ExitCode": ["3"]})["Command"]["CommandId"]
    got = wait_until(lambda: _finished(ssm, command_id, LINUX))
    assert (got["Status"], got["StatusDetails"], got["ResponseCode"]) == ("Failed", "Failed", 3)
    assert got["StandardOutputContent"] == "message hello world\n"
    # SSM Agent adds Go's exec error after the script's stderr (runscript.go runCommands)
    assert got["StandardErrorContent"] == "to stderr\nfailed to run commands: exit status 3"
    [listed] = ssm.list_commands(CommandId=command_id)["Commands"]
    assert (listed["Status"], listed["ErrorCount"], listed["CompletedCount"]) == ("Failed", 1, 1)
    assert emu.ssm.command(command_id).invocations[LINUX].stdout == "message hello world\n"


def test_targets_by_tag_and_send_errors(emu: Emulator) -> None:
    ssm = client(emu, "ssm")
    command = ssm.send_command(DocumentName="echo", Targets=[{"Key": "tag:Role", "Values": ["build"]}],
                               Parameters={"Message": ["hi"]})["Command"]
    assert command["TargetCount"] == 2
    both = ssm.send_command(DocumentName="echo", Parameters={"Message": ["hi"]},
                            Targets=[{"Key": "tag:Role", "Values": ["build"]}, {"Key": "tag:Env", "Values": ["prod"]}])
    assert both["Command"]["TargetCount"] == 1
    assert set(emu.ssm.command(both["Command"]["CommandId"]).invocations) == {OTHER}
    cases = [
        ({"DocumentName": "echo", "InstanceIds": ["i-00000000000000000"], "Parameters": {"Message": ["hi"]}}, "InvalidInstanceId"),
        ({"DocumentName": "nothing", "InstanceIds": [LINUX]}, "InvalidDocument"),
        ({"DocumentName": "echo", "InstanceIds": [LINUX], "Parameters": {"Message": ["semi;colon"]}}, "InvalidParameters"),
        ({"DocumentName": "echo", "InstanceIds": [LINUX]}, "InvalidParameters"),  # Message is required
        ({"DocumentName": "echo", "InstanceIds": [LINUX], "DocumentVersion": "5", "Parameters": {"Message": ["hi"]}}, "InvalidDocumentVersion"),
    ]
    for request, expected in cases:
        with pytest.raises(ClientError) as err:
            ssm.send_command(**request)
        assert code(err) == expected, request
    assert len(emu.ssm.sent_commands) == 2
    wait_until(lambda: all(_finished(ssm, c.command_id, i) for c in emu.ssm.sent_commands
                           for i in emu.ssm.command(c.command_id).invocations))


def test_multi_step_documents_need_a_plugin_name(emu: Emulator) -> None:
    emu.ssm.create_document("two", TWO_STEPS)
    ssm = client(emu, "ssm")
    command_id = ssm.send_command(DocumentName="two", InstanceIds=[LINUX])["Command"]["CommandId"]
    wait_until(lambda: _finished(ssm, command_id, LINUX, plugin="Second"))
    with pytest.raises(ClientError) as err:
        ssm.get_command_invocation(CommandId=command_id, InstanceId=LINUX)
    assert code(err) == "InvalidPluginName"
    with pytest.raises(ClientError) as err:
        ssm.get_command_invocation(CommandId=command_id, InstanceId=LINUX, PluginName="Third")
    assert code(err) == "InvalidPluginName"
    first = ssm.get_command_invocation(CommandId=command_id, InstanceId=LINUX, PluginName="First")
    assert first["StandardOutputContent"] == "first\n"
    [invocation] = ssm.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]
    plugins = {p["Name"]: p for p in invocation["CommandPlugins"]}
    assert plugins["First"]["Output"] == "first\n"
    assert len(plugins["Second"]["Output"]) == 2500 and plugins["Second"]["Output"].endswith("---Output truncated---")
    assert ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"][0]["CommandPlugins"] == []


def test_cancel_kills_a_running_command(emu: Emulator) -> None:
    emu.ssm.create_document("slow", SLOW)
    ssm = client(emu, "ssm")
    command_id = ssm.send_command(DocumentName="slow", InstanceIds=[LINUX], Parameters={"Seconds": ["30"]})["Command"]["CommandId"]
    wait_until(lambda: emu.ssm.command(command_id).invocations[LINUX].status == "InProgress")
    started = time.monotonic()
    ssm.cancel_command(CommandId=command_id)
    got = wait_until(lambda: _finished(ssm, command_id, LINUX))
    assert got["Status"] == "Cancelled" and time.monotonic() - started < 5
    assert ssm.list_commands(CommandId=command_id)["Commands"][0]["Status"] == "Cancelled"
    with pytest.raises(ClientError) as err:
        ssm.cancel_command(CommandId="00000000-0000-4000-8000-000000000000")
    assert code(err) == "InvalidCommandId"


def test_list_commands_finds_a_command_by_comment_and_time(emu: Emulator) -> None:
    ssm = client(emu, "ssm")
    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
    ids = [ssm.send_command(DocumentName="echo", InstanceIds=[LINUX], Comment=f"job {n} ",
                            Parameters={"Message": ["hi"]})["Command"]["CommandId"] for n in range(3)]
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    pages = ssm.get_paginator("list_commands").paginate(
        Filters=[{"key": "InvokedAfter", "value": before}, {"key": "DocumentName", "value": "echo"}],
        PaginationConfig={"PageSize": 2})
    found = [c for page in pages for c in page["Commands"]]
    assert [c["CommandId"] for c in found] == ids[::-1]  # newest first
    assert [c["Comment"] for c in found] == ["job 2 ", "job 1 ", "job 0 "]
    assert ssm.list_commands(Filters=[{"key": "InvokedAfter", "value": later}])["Commands"] == []
    assert ssm.list_commands(Filters=[{"key": "DocumentName", "value": "other"}])["Commands"] == []
    with pytest.raises(ClientError) as err:
        ssm.list_commands(CommandId="00000000-0000-4000-8000-000000000000")
    assert code(err) == "InvalidCommandId"


def test_delivery_and_execution_timeouts(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(time_scale=0.01)  # 30 s of TimeoutSeconds last 0.3 s, a 10 s step 0.1 s
    emu.ssm.register_instance(LINUX)
    emu.ssm.register_instance(OTHER)
    emu.ssm.create_document("slow", SLOW.replace("inputs:", "inputs:\n      timeoutSeconds: 10"))
    emu.ssm.set_online(OTHER, False)
    ssm = client(emu, "ssm")
    command_id = ssm.send_command(DocumentName="slow", InstanceIds=[LINUX, OTHER], TimeoutSeconds=30,
                                  Parameters={"Seconds": ["20"]})["Command"]["CommandId"]
    ran = wait_until(lambda: _finished(ssm, command_id, LINUX))
    assert (ran["Status"], ran["StatusDetails"], ran["ResponseCode"]) == ("TimedOut", "ExecutionTimedOut", 137)
    assert ran["StandardOutputContent"] == "started\n"
    undelivered = wait_until(lambda: _finished(ssm, command_id, OTHER))
    assert (undelivered["Status"], undelivered["StatusDetails"], undelivered["ResponseCode"]) == (
        "TimedOut", "DeliveryTimedOut", -1)
    [command] = ssm.list_commands(CommandId=command_id)["Commands"]
    assert (command["Status"], command["ErrorCount"], command["DeliveryTimedOutCount"]) == ("TimedOut", 1, 1)


def test_offline_instance_keeps_its_invocation_pending(emu: Emulator) -> None:
    ssm = client(emu, "ssm")
    emu.ssm.set_online(LINUX, False)
    command_id = ssm.send_command(DocumentName="echo", InstanceIds=[LINUX],
                                  Parameters={"Message": ["hi"]})["Command"]["CommandId"]
    time.sleep(0.4)
    pending = ssm.get_command_invocation(CommandId=command_id, InstanceId=LINUX)
    assert (pending["Status"], pending["ResponseCode"]) == ("Pending", -1)
    emu.ssm.set_online(LINUX, True)
    assert wait_until(lambda: _finished(ssm, command_id, LINUX))["Status"] == "Success"


def _finished(ssm: Any, command_id: str, instance: str, plugin: str | None = None) -> dict[str, Any] | None:
    extra = {"PluginName": plugin} if plugin else {}
    try:
        got = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance, **extra)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "InvocationDoesNotExist":
            return None
        raise
    return got if got["Status"] not in ("Pending", "InProgress", "Delayed", "Cancelling") else None


# ------------------------------------------------------------------ S3 through moto


def test_s3_accesses_record_range_and_access_key(emu: Emulator) -> None:
    emu.put_artifact("artifacts", "app/source.zip", {"abc.json": '{"a": 1}', "big.bin": b"\0" * 5000})
    s3 = client(emu, "s3", key="ASIAJOBCREDENTIALS01", token="session")
    head = s3.head_object(Bucket="artifacts", Key="app/source.zip")
    tail = s3.get_object(Bucket="artifacts", Key="app/source.zip", Range="bytes=-22")["Body"].read()
    assert len(tail) == 22 and tail[:4] == b"PK\x05\x06"  # the zip's end-of-central-directory record
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "artifacts", "Key": "app/source.zip"})
    with urllib.request.urlopen(url, timeout=10) as response:
        assert len(response.read()) == head["ContentLength"]
    gets = [a for a in emu.s3_accesses if a.operation == "GetObject"]
    assert [(a.range, a.access_key_id) for a in gets] == [("bytes=-22", "ASIAJOBCREDENTIALS01"), (None, "ASIAJOBCREDENTIALS01")]
    s3.put_object(Bucket="artifacts", Key="out/result.zip", Body=b"output")
    assert emu.read_object("artifacts", "out/result.zip") == b"output"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="artifacts", Key="missing")
    assert code(err) == "NoSuchKey"
    assert [c.error_code for c in emu.calls if c.service == "s3"][-1] == "NoSuchKey"


# ------------------------------------------------------------------ fault injection


def test_faults_throttle_fail_stall_and_are_counted(emu: Emulator) -> None:
    cp = client(emu, "codepipeline")
    ssm = client(emu, "ssm")
    emu.faults.inject("PollForJobs", error="ThrottlingException", times=1)
    response = cp.poll_for_jobs(actionTypeId=TYPE)
    assert response["ResponseMetadata"]["RetryAttempts"] == 1  # botocore saw throttling and retried
    emu.faults.inject("PollForJobs", status=500, times=2)  # every attempt the client makes
    with pytest.raises(ClientError) as err:
        client(emu, "codepipeline", attempts=2).poll_for_jobs(actionTypeId=TYPE)
    assert code(err) == "InternalFailure" and err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert emu.faults.fired("PollForJobs") == 3
    emu.faults.inject("DescribeDocument", delay=0.3)
    started = time.monotonic()
    ssm.describe_document(Name="echo")
    assert time.monotonic() - started >= 0.3
    emu.faults.inject("GetDocument", error="AccessDeniedException", seconds=0.5)
    with pytest.raises(ClientError) as err:
        ssm.get_document(Name="echo")
    assert code(err) == "AccessDeniedException"
    assert err.value.response["ResponseMetadata"]["RetryAttempts"] == 0  # not throttling: not retried
    time.sleep(0.55)
    ssm.get_document(Name="echo")
    assert emu.faults.fired("GetDocument") == 1


def test_fault_after_the_side_effect_and_on_s3(emu: Emulator) -> None:
    ssm = client(emu, "ssm", attempts=2)
    emu.faults.inject("SendCommand", error="InternalServerError", status=500, times=2, after=True)
    with pytest.raises(ClientError) as err:
        ssm.send_command(DocumentName="echo", InstanceIds=[LINUX], Parameters={"Message": ["once"]})
    assert code(err) == "InternalServerError"
    assert len(emu.ssm.sent_commands) == 2  # the retried attempt really sent a second command
    emu.put_artifact("artifacts", "a.zip", {"x": "y"})
    s3 = client(emu, "s3")
    emu.faults.inject("GetObject", error="SlowDown", times=1)
    body = s3.get_object(Bucket="artifacts", Key="a.zip")
    assert body["ResponseMetadata"]["RetryAttempts"] == 1
    assert [c.error_code for c in emu.calls if c.operation == "GetObject"] == ["SlowDown", None]
    wait_until(lambda: all(_finished(ssm, c.command_id, LINUX) for c in emu.ssm.sent_commands))


# ------------------------------------------------------------------ environment and standalone use


def test_env_points_a_process_at_the_emulator(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    env = emu.env(codepipeline_protocol="smithy-rpc-v2-cbor")
    assert env["AWS_ENDPOINT_URL"] == emu.endpoint and env["AWS_EC2_METADATA_DISABLED"] == "true"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    session = boto3.Session()
    assert session.client("codepipeline").poll_for_jobs(actionTypeId=TYPE)["jobs"] == []
    assert session.get_credentials().access_key == WORKER_ACCESS_KEY_ID
    assert (emu.calls[-1].operation, emu.calls[-1].protocol) == ("PollForJobs", "smithy-rpc-v2-cbor")


def test_standalone_module_serves_until_interrupted() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "worker.local"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        endpoint = line.rsplit(" ", 1)[-1].strip()
        assert endpoint.startswith("http://127.0.0.1:")
        status, _, body = raw_post(
            endpoint, "/", {"X-Amz-Target": "AmazonSSM.ListCommands", "Content-Type": "application/x-amz-json-1.1"}, b"{}")
        assert status == 200 and json.loads(body) == {"Commands": []}
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
