"""The worker end to end: the real daemon against the emulator, asserting the exact result calls.

The daemon runs in process (see conftest), on a clock SPEED times faster than real time; a test that
needs the process itself (a signal) starts one.
"""

from __future__ import annotations

import io
import json
import signal
import zipfile

from conftest import (
    ACTION_TYPE,
    BUCKET,
    DOCUMENT,
    INSTANCE,
    OTHER_INSTANCE,
    SPEED,
    Harness,
    wait_for,
)

FAILING_DOCUMENT = """
schemaVersion: "2.2"
description: fails with exit code 3
parameters:
  Message:
    type: String
    allowedPattern: "^[a-zA-Z0-9 ]{1,50}$"
    interpolationType: ENV_VAR
mainSteps:
  - action: aws:runShellScript
    name: Build
    inputs:
      runCommand:
        - 'echo "building $SSM_Message"'
        - 'echo "compiler error: missing semicolon" >&2'
        - exit 3
"""


def checkpoint_call(results: list[tuple[str, dict]]) -> dict:
    op, request = results[0]
    assert op == "PutJobSuccessResult"
    return request


def test_happy_path_checkpoints_then_succeeds(harness: Harness) -> None:
    execution = harness.enqueue()
    worker = harness.start_in_process(harness.config())
    final = harness.final(execution)
    assert worker.stop() == 0

    [send] = harness.sends()
    command_id = harness.emu.ssm.sent_commands[0].command_id
    assert send["DocumentName"] == DOCUMENT
    assert send["InstanceIds"] == [INSTANCE]
    assert send["Parameters"]["Message"] == ["Hello from the pipeline"]
    assert send["Parameters"]["ArtifactUrl"][0].startswith(harness.emu.endpoint + "/" + BUCKET + "/")
    assert send["Comment"].startswith(f"job {harness.emu.codepipeline.jobs_for(execution)[0].id} ")

    results = harness.results(execution)
    assert len(results) == 2
    first = checkpoint_call(results)
    assert json.loads(first["continuationToken"])["command_id"] == command_id
    assert first["executionDetails"]["externalExecutionId"] == command_id
    assert first["executionDetails"]["percentComplete"] == 0
    assert "outputVariables" not in first

    assert final.operation == "PutJobSuccessResult"
    assert "continuationToken" not in final.request
    assert final.request["outputVariables"] == {"CommandId": command_id, "Status": "Success", "InstanceIds": INSTANCE}
    assert final.request["executionDetails"] == {
        "summary": f"SSM command {command_id} succeeded on 1 instance(s)", "externalExecutionId": command_id,
        "percentComplete": 100}

    stdout = harness.emu.ssm.command(command_id).invocations[INSTANCE].stdout
    assert "Message: Hello from the pipeline" in stdout
    assert "abc.json" in stdout  # the instance fetched the exact artifact through ArtifactUrl

    events = worker.events()
    names = [e["event"] for e in events]
    for expected in ("job.claimed", "spec.read", "command.sent", "job.checkpointed", "job.succeeded"):
        assert expected in names
    sent = next(e for e in events if e["event"] == "command.sent")
    assert sent["command_id"] == command_id and sent["pipeline"] == "demo-pipeline"
    assert sent["job_id"] and sent["stage"] == "Deploy" and sent["action"] == "RunOnVM"


def test_artifact_read_with_job_credentials_and_ranges(harness: Harness) -> None:
    big = {f"src/file{n}.bin": bytes(range(256)) * 400 for n in range(40)}  # ~4 MB stored
    execution = harness.enqueue({**big, "abc.json": json.dumps({"instance_id": INSTANCE, "message": "hi"})})
    job = harness.emu.codepipeline.jobs_for(execution)[0]
    worker = harness.run_once_in_process(harness.config())
    assert worker.returncode == 0
    reads = [a for a in harness.emu.s3_accesses if a.bucket == BUCKET and a.method == "GET"]
    key_ids = {a.access_key_id for a in reads}
    assert key_ids == {job.credentials["accessKeyId"]}
    ranged = [a for a in reads if a.range]
    assert 1 <= len(ranged) <= 3  # tail + maybe the member, whatever the archive's size
    assert all(a.operation == "GetObject" for a in reads)
    assert not any(job.credentials["secretAccessKey"] in line or job.credentials["sessionToken"] in line
                   for line in worker.log_text().splitlines())


def test_failed_step_reports_exit_code_and_stderr(harness: Harness) -> None:
    harness.emu.ssm.create_document("codepipeline-ssm-fail", FAILING_DOCUMENT, fmt="YAML")
    execution = harness.enqueue(configuration={"DocumentName": "codepipeline-ssm-fail"},
                                spec={"instance_id": INSTANCE, "message": "release 7"})
    worker = harness.start_in_process(harness.config())
    final = harness.final(execution)
    worker.stop()
    command_id = harness.emu.ssm.sent_commands[0].command_id
    assert final.operation == "PutJobFailureResult"
    details = final.request["failureDetails"]
    assert details["type"] == "JobFailed"
    assert details["externalExecutionId"] == command_id
    message = details["message"]
    assert message.startswith(f"SSM command {command_id} (document codepipeline-ssm-fail) did not succeed on 1 of 1")
    assert f"- {INSTANCE}: Failed" in message
    assert "step 'Build' exit code 3" in message
    assert "stderr:\ncompiler error: missing semicolon" in message
    assert "stdout:\nbuilding release 7" in message


def configuration_error(harness: Harness, execution: str) -> str:
    final = harness.final(execution)
    assert final.operation == "PutJobFailureResult", final
    assert final.request["failureDetails"]["type"] == "ConfigurationError"
    assert len(harness.results(execution)) == 1
    assert harness.sends() == []
    return final.request["failureDetails"]["message"]


def run_to_result(harness: Harness, execution: str, **config: object) -> str:
    worker = harness.run_once_in_process(harness.config(**config))
    assert worker.returncode == 0
    return configuration_error(harness, execution)


def test_invalid_json(harness: Harness) -> None:
    execution = harness.enqueue({"abc.json": '{"instance_id": "i-0123456789abcdef0",\n "message": "x",}'})
    assert run_to_result(harness, execution) == (
        "abc.json is not valid JSON: Expecting property name enclosed in double quotes at line 2 column 17")


def test_missing_spec_file_points_at_spec_file_property(harness: Harness) -> None:
    execution = harness.enqueue({"deploy/abc.json": "{}", "README.md": "x"})
    assert run_to_result(harness, execution) == (
        "spec file 'abc.json' not found in input artifact 'SourceArtifact'; found it at deploy/abc.json: "
        "set the action's SpecFile property to that path")


def test_spec_file_property_and_size_cap(harness: Harness) -> None:
    spec = json.dumps({"instance_id": INSTANCE, "message": "x", "padding": "y" * 5000})
    execution = harness.enqueue({"ci/step.json": spec}, configuration={"DocumentName": DOCUMENT,
                                                                        "SpecFile": "ci/step.json"})
    message = run_to_result(harness, execution, spec_max_bytes=4096)
    assert message == (f"spec file 'ci/step.json' is {len(spec)} bytes; the limit is 4096 (spec_max_bytes); "
                       "keep only targets and parameters in it")


def test_unknown_parameter(harness: Harness) -> None:
    execution = harness.enqueue(spec={"instance_id": INSTANCE, "message": "x", "colour": "blue"})
    message = run_to_result(harness, execution)
    assert message == ("abc.json parameters do not match the document:\n- colour: the document declares no such "
                       "parameter; it declares: Message, OutputBucket, CodeRepository, ArtifactUrl, "
                       "PipelineExecutionId (declared parameters)")


def test_allowed_pattern_violation_names_field_and_rule(harness: Harness) -> None:
    execution = harness.enqueue(spec={"instance_id": INSTANCE, "message": "hi; rm -rf /"})
    message = run_to_result(harness, execution)
    assert message.startswith(f"parameters do not fit document {DOCUMENT!r} (version 1); fix abc.json:\n- Message:")
    assert "allowedPattern ^[a-zA-Z0-9 _.,:@+=/-]{1,200}$" in message


def test_document_not_allowed(harness: Harness) -> None:
    execution = harness.enqueue(configuration={"DocumentName": "AWS-RunShellScript"})
    assert run_to_result(harness, execution) == (
        "document 'AWS-RunShellScript' is not allowed by this worker (allowed_documents: codepipeline-ssm-*); "
        "set the action's DocumentName to an allowed document or ask the worker's operators to allow it")


def test_instance_not_allowed(harness: Harness) -> None:
    execution = harness.enqueue(spec={"instance_id": "i-9123456789abcdef0", "message": "x"})
    assert run_to_result(harness, execution) == (
        "abc.json: instance(s) i-9123456789abcdef0 not allowed by this worker (allowed_instance_ids: i-0*); "
        "name an allowed instance")


def test_missing_artifact_is_revision_unavailable(harness: Harness) -> None:
    harness.emu.put_object(BUCKET, "other/object.zip", b"x")  # the bucket exists, the artifact does not
    execution = harness.enqueue(artifact=False)
    worker = harness.run_once_in_process(harness.config())
    assert worker.returncode == 0
    final = harness.final(execution)
    assert final.operation == "PutJobFailureResult"
    assert final.request["failureDetails"]["type"] == "RevisionUnavailable"
    assert "NoSuchKey" in final.request["failureDetails"]["message"]
    assert harness.sends() == []


def test_fixed_parameters_cannot_be_overridden(harness: Harness) -> None:
    execution = harness.enqueue(spec={"instance_id": INSTANCE, "message": "x", "output_bucket": "evil-bucket"})
    message = run_to_result(harness, execution, parameters={"OutputBucket": "ops-bucket"})
    assert message == ("abc.json sets parameters it may not set:\n- OutputBucket: cannot be set in the spec file; "
                       "remove it (fixed by the worker configuration)")


def test_two_instances_one_command(harness: Harness) -> None:
    execution = harness.enqueue(spec={"instance_ids": [INSTANCE, OTHER_INSTANCE], "message": "both"})
    worker = harness.start_in_process(harness.config())
    final = harness.final(execution)
    worker.stop()
    assert final.request["outputVariables"]["InstanceIds"] == f"{INSTANCE},{OTHER_INSTANCE}"
    assert [s["InstanceIds"] for s in harness.sends()] == [[INSTANCE, OTHER_INSTANCE]]


def test_two_workers_race_for_one_job(harness: Harness) -> None:
    harness.emu.codepipeline.redispatch_after = 0.3
    harness.emu.faults.inject("AcknowledgeJob", delay=1.5, times=1)
    execution = harness.enqueue()
    config = harness.config()
    first = harness.start_in_process(config, name="a")
    wait_for(lambda: harness.emu.faults.fired("AcknowledgeJob"))
    second = harness.start_in_process(config, name="b")
    final = harness.final(execution)
    first.stop()
    second.stop()
    assert final.operation == "PutJobSuccessResult"
    assert len(harness.sends()) == 1
    assert len(harness.results(execution)) == 2
    events = [e["event"] for w in (first, second) for e in w.events()]
    assert events.count("job.claim_lost") == 1
    first_job = harness.emu.codepipeline.jobs_for(execution)[0].id
    assert events.count("command.sent") == 1
    assert [c for c in harness.emu.calls if c.operation == "AcknowledgeJob" and c.params["jobId"] == first_job
            and c.error_code == "InvalidNonceException"]


def test_job_continued_by_another_worker(harness: Harness) -> None:
    harness.emu.ssm.create_document("codepipeline-ssm-slow", SLOW_DOCUMENT.format(seconds=2 / SPEED), fmt="YAML")
    execution = harness.enqueue(configuration={"DocumentName": "codepipeline-ssm-slow"},
                                spec={"instance_id": INSTANCE})
    first = harness.run_once_in_process(harness.config())
    assert first.returncode == 0
    assert [e["event"] for e in first.events()].count("job.checkpointed") == 1
    assert harness.emu.codepipeline.final_result(execution) is None
    second = harness.start_in_process(harness.config())
    final = harness.final(execution)
    second.stop()
    assert final.operation == "PutJobSuccessResult" and "continuationToken" not in final.request
    assert len(harness.sends()) == 1
    assert "job.succeeded" in [e["event"] for e in second.events()]
    assert "command.sent" not in [e["event"] for e in second.events()]


SLOW_DOCUMENT = """
schemaVersion: "2.2"
description: takes a few seconds
mainSteps:
  - action: aws:runShellScript
    name: Slow
    inputs:
      runCommand: ["sleep {seconds}", "echo done"]
"""


def test_hold_time_hands_the_token_back_with_progress(harness: Harness) -> None:
    # 10 worker seconds against a hold_time of 1: several hand-backs while it runs
    harness.emu.ssm.create_document("codepipeline-ssm-slow", SLOW_DOCUMENT.format(seconds=10 / SPEED), fmt="YAML")
    execution = harness.enqueue(configuration={"DocumentName": "codepipeline-ssm-slow"},
                                spec={"instance_id": INSTANCE})
    worker = harness.start_in_process(harness.config(hold_time=1))
    final = harness.final(execution)
    worker.stop()
    results = harness.results(execution)
    assert final.operation == "PutJobSuccessResult"
    handbacks = results[1:-1]
    assert handbacks, results
    command_id = harness.emu.ssm.sent_commands[0].command_id
    for op, request in handbacks:
        assert op == "PutJobSuccessResult"
        assert json.loads(request["continuationToken"])["command_id"] == command_id
        assert request["executionDetails"]["percentComplete"] == 0
        assert request["executionDetails"]["summary"].startswith(f"SSM command {command_id}: ")
    assert any("1 InProgress" in request["executionDetails"]["summary"] for _, request in handbacks)


def test_throttling_on_poll_and_status_checks(harness: Harness) -> None:
    harness.emu.faults.inject("PollForJobs", error="ThrottlingException", times=6)
    harness.emu.faults.inject("ListCommandInvocations", error="ThrottlingException", times=6)
    harness.emu.faults.inject("GetCommandInvocation", error="ThrottlingException", times=6)
    execution = harness.enqueue()
    worker = harness.start_in_process(harness.config())
    final = harness.final(execution, timeout=60)
    assert worker.stop() == 0
    assert final.operation == "PutJobSuccessResult" and "continuationToken" not in final.request
    assert harness.emu.faults.fired("PollForJobs") == 6
    assert harness.emu.faults.fired("ListCommandInvocations") == 6
    assert len(harness.sends()) == 1


def test_ambiguous_send_error_does_not_send_twice(harness: Harness) -> None:
    """SendCommand ran but its answer was a 500, and ListCommands shows the command only 2 s later.

    (2 worker seconds: within handler.LIST_VISIBILITY, which the worker waits out before it looks.)
    """
    harness.emu.ssm.list_commands_visibility_delay = 2.0 / SPEED
    harness.emu.faults.inject("SendCommand", status=500, times=1, after=True)
    execution = harness.enqueue()
    worker = harness.start_in_process(harness.config())
    final = harness.final(execution)
    worker.stop()
    assert final.operation == "PutJobSuccessResult"
    assert len(harness.sends()) == 1
    assert "command.found_after_error" in [e["event"] for e in worker.events()]


def test_daemon_survives_a_bad_job_and_takes_the_next(harness: Harness) -> None:
    bad = harness.enqueue({"abc.json": "not json"})
    good = harness.enqueue()
    worker = harness.start(harness.config(concurrency=1))  # a process: SIGINT is part of the test
    assert harness.final(bad).request["failureDetails"]["type"] == "ConfigurationError"
    assert harness.final(good).operation == "PutJobSuccessResult"
    assert worker.proc.poll() is None
    assert worker.stop(signal.SIGINT) == 0


def test_non_zip_artifact(harness: Harness) -> None:
    execution = harness.enqueue(artifact=False)
    job = harness.emu.codepipeline.jobs_for(execution)[0]
    art = job.data["inputArtifacts"][0]["location"]["s3Location"]
    harness.emu.put_object(art["bucketName"], art["objectKey"], b"plain text, not a zip")
    message = run_to_result(harness, execution)
    assert message.startswith("input artifact 'SourceArtifact' is not a zip archive")


NOISY_DOCUMENT = """
schemaVersion: "2.2"
description: fails after a lot of output
mainSteps:
  - action: aws:runShellScript
    name: Noisy
    inputs:
      runCommand:
        - 'for i in $(seq 1 3000); do echo "stdout line $i"; echo "stderr line $i" >&2; done'
        - 'echo "the real error" >&2'
        - exit 7
"""


def test_long_output_is_cut_to_the_failure_message_limit(harness: Harness) -> None:
    harness.emu.ssm.create_document("codepipeline-ssm-noisy", NOISY_DOCUMENT, fmt="YAML")
    execution = harness.enqueue(configuration={"DocumentName": "codepipeline-ssm-noisy"},
                                spec={"instance_ids": [INSTANCE, OTHER_INSTANCE]})
    worker = harness.start_in_process(harness.config())
    final = harness.final(execution)
    worker.stop()
    message = final.request["failureDetails"]["message"]
    assert len(message) <= 5000
    assert "did not succeed on 2 of 2 instance(s)" in message
    for instance in (INSTANCE, OTHER_INSTANCE):
        assert f"- {instance}: Failed" in message
    assert message.count("step 'Noisy' exit code 7") == 2
    # SSM Agent cuts each stream at 24,000 bytes and marks the cut; the service then shows stderr's first
    # 8,000 characters, unmarked. The message shows the end of what SSM returned.
    assert message.count("--output truncated--") == 2
    assert "stderr:\n…" in message and "stdout:\n…" in message


def test_worker_over_rpc_v2_cbor(harness: Harness) -> None:
    """botocore's CodePipeline model also lists smithy-rpc-v2-cbor: the worker works over it too."""
    execution = harness.enqueue()
    worker = harness.start_in_process(harness.config(), codepipeline_protocol="smithy-rpc-v2-cbor")
    final = harness.final(execution)
    assert worker.stop() == 0
    assert final.operation == "PutJobSuccessResult" and "continuationToken" not in final.request
    protocols = {c.protocol for c in harness.emu.calls if c.service == "codepipeline"}
    assert protocols == {"smithy-rpc-v2-cbor"}


def test_fleets_are_separated_by_the_queryable_property(harness: Harness) -> None:
    fleet_type = {**ACTION_TYPE, "version": "2"}
    harness.emu.codepipeline.create_custom_action_type(
        "Deploy", "SSMRunCommand", "2", configuration_properties=[
            {"name": "DocumentName", "required": True, "key": True},
            {"name": "Fleet", "required": True, "key": True, "queryable": True}])
    harness.emu.put_artifact(BUCKET, "fleet/source.zip",
                             {"abc.json": json.dumps({"instance_id": INSTANCE, "message": "fleet"})})
    executions = {}
    for fleet in ("linux", "windows"):
        job_id = harness.emu.codepipeline.enqueue_job(
            fleet_type, configuration={"DocumentName": DOCUMENT, "Fleet": fleet},
            input_artifacts=[{"name": "SourceArtifact", "bucket": BUCKET, "key": "fleet/source.zip"}])
        executions[fleet] = harness.emu.codepipeline.job(job_id).action_execution_id
    worker = harness.start_in_process(harness.config(action_type=fleet_type, query_param={"Fleet": "linux"}))
    assert harness.final(executions["linux"]).operation == "PutJobSuccessResult"
    assert worker.stop() == 0
    assert harness.emu.codepipeline.results_for(executions["windows"]) == []
    assert {c.params.get("queryParam", {}).get("Fleet") for c in harness.emu.calls
            if c.operation == "PollForJobs"} == {"linux"}


def test_full_output_destinations_are_sent_and_named_in_failures(harness: Harness) -> None:
    harness.emu.ssm.create_document("codepipeline-ssm-fail", FAILING_DOCUMENT, fmt="YAML")
    execution = harness.enqueue(configuration={"DocumentName": "codepipeline-ssm-fail"},
                                spec={"instance_id": INSTANCE, "message": "x"})
    worker = harness.start_in_process(harness.config(output_s3_bucket="ops-command-logs", output_s3_key_prefix="pipelines/",
                                          cloudwatch_log_group="/ssm/pipelines"))
    final = harness.final(execution)
    worker.stop()
    [send] = harness.sends()
    assert send["OutputS3BucketName"] == "ops-command-logs" and send["OutputS3KeyPrefix"] == "pipelines/"
    assert send["CloudWatchOutputConfig"] == {"CloudWatchOutputEnabled": True,
                                              "CloudWatchLogGroupName": "/ssm/pipelines"}
    command_id = harness.emu.ssm.sent_commands[0].command_id
    assert (f"(full output: s3://ops-command-logs/pipelines/{command_id}/ and CloudWatch Logs group "
            f"/ssm/pipelines (streams {command_id}/…))") in final.request["failureDetails"]["message"]


def test_output_artifact_is_written_with_job_credentials_and_kms(harness: Harness) -> None:
    harness.emu.put_artifact(BUCKET, "out/source.zip",
                             {"abc.json": json.dumps({"instance_id": INSTANCE, "message": "with output"})})
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-aaaa-bbbb-cccc-111122223333"
    job_id = harness.emu.codepipeline.enqueue_job(
        ACTION_TYPE, configuration={"DocumentName": DOCUMENT},
        input_artifacts=[{"name": "SourceArtifact", "bucket": BUCKET, "key": "out/source.zip"}],
        output_artifacts=[{"name": "RunResult", "bucket": BUCKET, "key": "out/result.zip"}],
        encryption_key_id=key_arn)
    execution = harness.emu.codepipeline.job(job_id).action_execution_id
    worker = harness.start_in_process(harness.config())
    final = harness.final(execution)
    worker.stop()
    assert final.operation == "PutJobSuccessResult" and "continuationToken" not in final.request
    command_id = harness.emu.ssm.sent_commands[0].command_id
    with zipfile.ZipFile(io.BytesIO(harness.emu.read_object(BUCKET, "out/result.zip"))) as archive:
        report = json.loads(archive.read("ssm-command.json"))
    assert report["CommandId"] == command_id and report["DocumentName"] == DOCUMENT
    [instance] = report["Instances"]
    assert instance["InstanceId"] == INSTANCE and instance["Status"] == "Success"
    assert instance["Steps"][0]["ResponseCode"] == 0
    assert "Message: with output" in instance["Steps"][0]["Output"]
    final_job = harness.emu.codepipeline.jobs_for(execution)[-1]
    [put] = [a for a in harness.emu.s3_accesses if a.operation == "PutObject" and a.key == "out/result.zip"]
    assert put.access_key_id == final_job.credentials["accessKeyId"]
    head = harness.client("s3").head_object(Bucket=BUCKET, Key="out/result.zip")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_arn


def test_foreign_continuation_token_fails_with_advice(harness: Harness) -> None:
    job_id = harness.emu.codepipeline.enqueue_job(
        ACTION_TYPE, configuration={"DocumentName": DOCUMENT},
        input_artifacts=[{"name": "SourceArtifact", "bucket": BUCKET, "key": "none.zip"}],
        continuation_token="step-functions-state-v0")
    execution = harness.emu.codepipeline.job(job_id).action_execution_id
    worker = harness.run_once(harness.config())  # a process: `run --once` exits 0 once the polled job ended
    assert worker.returncode == 0
    final = harness.final(execution)
    assert final.request["failureDetails"] == {
        "type": "JobFailed",
        "message": "the job's continuation token was not written by this worker version ('step-functions-state-v0'); "
                   "retry the stage to start it afresh, after checking in SSM that its command is not still running"}
    assert harness.sends() == []
