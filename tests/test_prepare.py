"""dry-run and the daemon build the same SendCommand from the same inputs (both call worker/prepare.py).

Each case runs the real daemon against the emulator on an artifact, a document and a worker config,
and dry-run ``--json`` on the very same artifact zip (read back from the emulator's S3), the same
document (the file SSM was given, and with ``--aws`` SSM itself) and the same config file. Once
dry-run's placeholders are replaced by the job's own facts, the requests must be equal: the
placeholders are exactly where those facts go, and nothing else differs.
"""

from __future__ import annotations

import copy
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from conftest import DOCUMENT, INSTANCE, OTHER_INSTANCE, ROOT, Harness

from worker.dryrun import Options, dry_run
from worker.dryrun.command import (
    PLACEHOLDER_ID,
    PLACEHOLDER_REVISION,
    PLACEHOLDER_URL,
    PLACEHOLDER_WHERE,
)
from worker.local.codepipeline import JobRecord

FACTS = "codepipeline-ssm-facts"
# Declares every parameter the worker fills, so each placeholder's place is checked.
FACTS_DOCUMENT = """
schemaVersion: "2.2"
parameters:
  Message: {type: String, allowedPattern: "^[a-zA-Z0-9 ]{1,100}$", interpolationType: ENV_VAR}
  OutputBucket: {type: String, default: "", allowedPattern: "^[a-z0-9.-]{0,63}$", interpolationType: ENV_VAR}
  ArtifactUrl: {type: String, default: "", allowedPattern: "^(https?://[A-Za-z0-9.:/?&=%_~+-]{1,4000})?$",
                interpolationType: ENV_VAR}
  PipelineExecutionId: {type: String, default: "", allowedPattern: "^[A-Za-z0-9-]{0,64}$", interpolationType: ENV_VAR}
  SourceRevision: {type: String, default: "", allowedPattern: "^[A-Za-z0-9-]{0,64}$", interpolationType: ENV_VAR}
  JobId: {type: String, default: "", allowedPattern: "^[A-Za-z0-9-]{0,64}$", interpolationType: ENV_VAR}
mainSteps:
  - action: aws:runShellScript
    name: Show
    inputs: {runCommand: ['echo "$SSM_Message $SSM_JobId $SSM_SourceRevision"']}
"""


def spec_json(**content: Any) -> str:
    return json.dumps({"instance_id": INSTANCE, "message": "same request", **content})


@dataclass(frozen=True)
class Case:
    files: dict[str, str]
    config: dict[str, Any] = field(default_factory=dict)  # worker config keys
    configuration: dict[str, str] = field(default_factory=dict)  # action properties beside DocumentName
    document: str = DOCUMENT


CASES = {
    "instance ids": Case({"abc.json": json.dumps({"instance_ids": [INSTANCE, OTHER_INSTANCE], "message": "both"})}),
    "tag targets": Case({"abc.json": json.dumps({"targets": [{"Key": "tag:Role", "Values": ["build"]}],
                                                 "parameters": {"Message": "tagged"}})},
                        config={"allowed_targets": ["tag:Role=build"]}),
    "fixed parameters and output destinations": Case(
        {"abc.json": spec_json()},
        config={"parameters": {"OutputBucket": "ops-bucket"}, "output_s3_bucket": "command-output",
                "output_s3_key_prefix": "pipeline/", "cloudwatch_log_group": "/ssm/pipeline"}),
    "spec file and document version": Case({"deploy/abc.json": spec_json(message="from deploy"),
                                            "abc.json": spec_json(message="not this one")},
                                           configuration={"SpecFile": "deploy/abc.json", "DocumentVersion": "1"}),
    "every worker-filled parameter": Case({"abc.json": spec_json(output_bucket="dev-bucket")}, document=FACTS),
}


def artifact_of(harness: Harness, job: JobRecord, target: Path) -> Path:
    """The job's input artifact zip, byte for byte as the daemon read it from S3."""
    location = job.data["inputArtifacts"][0]["location"]["s3Location"]
    target.write_bytes(harness.emu.read_object(location["bucketName"], location["objectKey"]))
    return target


def dry_run_request(options: Options) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    code = dry_run(options, out, err)
    report = json.loads(out.getvalue())
    assert (code, report["error"], err.getvalue()) == (0, None, ""), report
    return report["request"]


def filled(request: dict[str, Any], job: JobRecord, artifact_url: str) -> dict[str, Any]:
    """dry-run's request with each placeholder replaced by the job's fact; each must be where that fact goes."""
    context = job.data["pipelineContext"]
    facts = {"ArtifactUrl": (PLACEHOLDER_URL, artifact_url),
             "PipelineExecutionId": (PLACEHOLDER_ID, context["pipelineExecutionId"]),
             "SourceRevision": (PLACEHOLDER_REVISION, job.data["inputArtifacts"][0]["revision"]),
             "JobId": (PLACEHOLDER_ID, job.id)}
    request = copy.deepcopy(request)
    parameters = request["Parameters"]
    for name, (placeholder, real) in facts.items():
        if name in parameters:
            assert parameters[name] == [placeholder], name
            parameters[name] = [real]
    assert request["Comment"] == f"job {PLACEHOLDER_ID} exec {PLACEHOLDER_ID} {PLACEHOLDER_WHERE}"[:100]
    request["Comment"] = f"job {job.id} exec {job.action_execution_id} demo-pipeline/Deploy/RunOnVM"[:100]
    return request


@pytest.mark.parametrize("case", CASES.values(), ids=CASES)
def test_dry_run_prints_the_request_the_daemon_sends(harness: Harness, tmp_path: Path, case: Case,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    document_file = ROOT / "ssm" / "linux.yml"  # what the emulator fixture gave SSM as DOCUMENT
    if case.document == FACTS:
        document_file = tmp_path / "facts.yml"
        document_file.write_text(FACTS_DOCUMENT)
        harness.emu.ssm.create_document(FACTS, FACTS_DOCUMENT, fmt="YAML")
    execution = harness.enqueue(case.files, configuration={"DocumentName": case.document, **case.configuration})
    [job] = harness.emu.codepipeline.jobs_for(execution)
    config = harness.config(**case.config)
    worker = harness.run_once(config)
    assert worker.proc.returncode == 0
    [sent] = harness.sends()

    [artifact_url] = sent["Parameters"]["ArtifactUrl"]  # presigned: it differs on every call
    location = job.data["inputArtifacts"][0]["location"]["s3Location"]
    assert artifact_url.startswith(f"{harness.emu.endpoint}/{location['bucketName']}/{location['objectKey']}?")
    options = Options(path=artifact_of(harness, job, tmp_path / "artifact.zip"), document=case.document,
                      spec_file=case.configuration.get("SpecFile", "abc.json"),
                      document_version=case.configuration.get("DocumentVersion", "$DEFAULT"), config=config,
                      json=True)
    for name, value in harness.emu.env().items():
        monkeypatch.setenv(name, value)
    from_ssm = dry_run_request(replace(options, aws=True))
    assert filled(from_ssm, job, artifact_url) == sent

    # A local document cannot resolve $DEFAULT: the request names the version the action asks for.
    local = dry_run_request(replace(options, document=str(document_file), document_name=case.document))
    assert local == {**from_ssm, "DocumentVersion": options.document_version}
    assert from_ssm["DocumentVersion"] == sent["DocumentVersion"] == "1"


REFUSED = {
    "DocumentVersion the action may not give": ({"DocumentName": DOCUMENT, "DocumentVersion": "v2"}, spec_json()),
    "document outside allowed_documents": ({"DocumentName": "AWS-RunShellScript"}, spec_json()),
    "worker-filled parameter in the spec": ({"DocumentName": DOCUMENT}, spec_json(pipeline_execution_id="x")),
}


@pytest.mark.parametrize(("configuration", "spec"), REFUSED.values(), ids=REFUSED)
def test_dry_run_refuses_what_the_daemon_refuses_with_its_message(harness: Harness, tmp_path: Path,
                                                                  configuration: dict[str, str], spec: str) -> None:
    execution = harness.enqueue({"abc.json": spec}, configuration=configuration)
    [job] = harness.emu.codepipeline.jobs_for(execution)
    config = harness.config()
    assert harness.run_once(config).proc.returncode == 0
    final = harness.final(execution)
    assert (final.operation, harness.sends()) == ("PutJobFailureResult", [])

    out, err = io.StringIO(), io.StringIO()
    options = Options(path=artifact_of(harness, job, tmp_path / "artifact.zip"), document=str(ROOT / "ssm" / "linux.yml"),
                      document_name=configuration["DocumentName"], config=config, json=True,
                      document_version=configuration.get("DocumentVersion", "$DEFAULT"))
    assert dry_run(options, out, err) == 2
    assert json.loads(out.getvalue())["error"] == {"type": "ConfigurationError",
                                                   "message": final.request["failureDetails"]["message"]}
