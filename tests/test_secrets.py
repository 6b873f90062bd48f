"""No secret leaves the worker: redaction rules (pure), the job API gate, and a run of many kinds of jobs
whose every log line, result call, output artifact and journal line is searched for the credentials the
emulator handed out."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import secrets
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import boto3
import pytest
import structlog
from botocore.config import Config as BotoConfig
from conftest import ACTION_TYPE, BUCKET, CONFIG_PROPERTIES, INSTANCE, Harness

from worker import log, redact
from worker.artifacts import S3Clients
from worker.config import ActionType
from worker.errors import ConfigurationError
from worker.jobs import Job, JobAPI
from worker.local import Emulator
from worker.local.server import WORKER_ACCESS_KEY_ID
from worker.redact import REDACTED, scrub, scrub_text

KEY_ID = "ASIAQWERTYUIOPASDFGH"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLE/="
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+abc/def=="


def in_job(values: list[str], fn, *args):
    """Run `fn` with `values` bound as the job's secrets, in a context of its own (as the daemon does)."""
    def run():
        redact.bind(values)
        return fn(*args)
    return contextvars.copy_context().run(run)


def presigned(key_id: str = KEY_ID, secret: str = SECRET_KEY, token: str = TOKEN) -> str:
    client = boto3.session.Session().client(
        "s3", region_name="us-east-1", endpoint_url="https://s3.us-east-1.amazonaws.com", aws_access_key_id=key_id,
        aws_secret_access_key=secret, aws_session_token=token, config=BotoConfig(signature_version="s3v4"))
    return client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "a/source.zip"}, ExpiresIn=60)


# -- the rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", [
    SECRET_KEY, quote(SECRET_KEY, safe=""), quote(quote(SECRET_KEY, safe=""), safe=""), SECRET_KEY.replace("/", "\\/"),
])
def test_job_secret_is_redacted_in_every_spelling(form: str) -> None:
    text = f"error: could not sign with {form} (check the key)"
    got = in_job([SECRET_KEY], scrub_text, text)
    assert got == f"error: could not sign with {REDACTED} (check the key)"


def test_lower_case_percent_encoding_is_redacted() -> None:
    encoded = quote(SECRET_KEY, safe="")
    lowered = encoded.replace("%2F", "%2f").replace("%2B", "%2b").replace("%3D", "%3d")
    assert in_job([SECRET_KEY], scrub_text, f"[{lowered}]") == f"[{REDACTED}]"


def test_only_the_secret_is_replaced_and_the_rest_of_the_output_stays() -> None:
    stderr = f"step 3: make: *** [deploy] Error 2\nusing token {TOKEN} for upload\nexit 2"
    assert in_job([TOKEN], scrub_text, stderr) == (
        f"step 3: make: *** [deploy] Error 2\nusing token {REDACTED} for upload\nexit 2")


def test_secrets_are_per_job_and_end_with_the_job() -> None:
    assert in_job(["secret-of-job-a-123"], scrub_text, "x secret-of-job-a-123") == f"x {REDACTED}"
    assert scrub_text("x secret-of-job-a-123") == "x secret-of-job-a-123"  # outside that job's context
    assert in_job(["secret-of-job-b-456"], scrub_text, "secret-of-job-a-123") == "secret-of-job-a-123"


def test_short_values_are_not_redacted_by_value() -> None:
    assert in_job(["true", "1234567"], scrub_text, "true 1234567") == "true 1234567"


def test_secret_cut_by_ssm_leaves_no_prefix() -> None:
    """SSM cuts stdout at 24,000 characters and marks it; the secret's first characters before the mark go too."""
    cut = f"uploading with {SECRET_KEY[:25]}--output truncated--"
    assert in_job([SECRET_KEY], scrub_text, cut) == f"uploading with {REDACTED}--output truncated--"
    plugin_output = f"key {TOKEN[:30]}\n---Output truncated---\n----------ERROR-------\nfailed"
    assert in_job([TOKEN], scrub_text, plugin_output) == (
        f"key {REDACTED}\n---Output truncated---\n----------ERROR-------\nfailed")
    assert in_job([SECRET_KEY], scrub_text, f"ends with {SECRET_KEY[:12]}") == f"ends with {REDACTED}"
    assert in_job([SECRET_KEY], scrub_text, f"ends with {SECRET_KEY[:7]}") == f"ends with {SECRET_KEY[:7]}"


def test_presigned_url_parameters_are_redacted_raw_and_encoded() -> None:
    url = presigned("ASIAZZZZZZZZZZZZZZZZ", "other-secret", "FwoGZXIvYXdzEJr+other/token=")
    for text in (url, quote(url, safe=""), quote(quote(url, safe=""), safe=""), url.replace("/", "\\/")):
        got = scrub_text(f"fetching {text} now")  # no job secrets bound: the URL's own shape is enough
        assert got.startswith("fetching ") and got.endswith(" now")
        for value in dict(parse_qsl(urlsplit(url).query)).values():
            if value.startswith(("ASIA", "FwoG")) or len(value) == 64:
                assert value not in got and quote(value, safe="") not in got
        plain = got.replace("%252F", "/").replace("%2F", "/").replace("\\/", "/")
        assert "X-Amz-Date" in got and "b/a/source.zip" in plain  # the rest of the URL stays readable


@pytest.mark.parametrize(("text", "expected"), [
    ("https://b.s3.amazonaws.com/k?AWSAccessKeyId=AKIDEXAMPLE1&Expires=1&Signature=abc%2Bdef%3D",
     f"https://b.s3.amazonaws.com/k?AWSAccessKeyId={REDACTED}&Expires=1&Signature={REDACTED}"),
    (("Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request, "
     "SignedHeaders=host, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"),
     f"Authorization: AWS4-HMAC-SHA256 Credential={REDACTED}, SignedHeaders=host, Signature={REDACTED}"),
    ("x-amz-security-token: sometokenvalue123", f"x-amz-security-token: {REDACTED}"),
    ("AWS_SECRET_ACCESS_KEY=abcd1234efgh5678", f"AWS_SECRET_ACCESS_KEY={REDACTED}"),
    ('{"SecretAccessKey": "abcd1234efgh5678", "Region": "eu-west-1"}',
     f'{{"SecretAccessKey": "{REDACTED}", "Region": "eu-west-1"}}'),
    ("db_password = hunter2hunter2", f"db_password = {REDACTED}"),
    ("key AKIAIOSFODNN7EXAMPLE and ASIAQWERTYUIOPASDFGH.", f"key {REDACTED} and {REDACTED}."),
    ("token FQoGZXIvYXdzEJr//////////wEaDEXAMPLE== end", f"token {REDACTED} end"),
    ("Message: the build passed; 12 tests, 0 failures", "Message: the build passed; 12 tests, 0 failures"),
    ("sha256 5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7 ok",
     "sha256 5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7 ok"),  # digests stay
])
def test_patterns(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


def test_keys_name_secrets_in_mappings() -> None:
    value = {"accessKeyId": "x", "secretAccessKey": "y", "nested": [{"sessionToken": "z", "name": "keep"}],
             "Output": "fine", "count": 3}
    assert scrub(value) == {"accessKeyId": REDACTED, "secretAccessKey": REDACTED,
                            "nested": [{"sessionToken": REDACTED, "name": "keep"}], "Output": "fine", "count": 3}


def test_lone_surrogates_become_replacement_characters() -> None:
    assert scrub_text("caf\udce9 \ud800!") == "caf\ufffd \ufffd!"
    assert scrub({"Output": "a\udcff"}) == {"Output": "a\ufffd"}


def test_url_secrets_are_the_signature_credential_key_id_and_token() -> None:
    url = presigned()
    found = redact.url_secrets(url)
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    assert set(found) >= {TOKEN, signature, KEY_ID}
    assert any(v.startswith(KEY_ID + "/") for v in found)
    assert redact.url_secrets("not a url") == []


def test_job_secrets_are_its_credentials_and_the_properties_it_does_not_read() -> None:
    job = Job.from_api({"id": "j", "data": {
        "actionConfiguration": {"configuration": {"DocumentName": "codepipeline-ssm-linux", "SpecFile": "ci/abc.json",
                                                  "DocumentVersion": "3", "Fleet": "linux",
                                                  "ApiKey": "sk-live-0123456789"}},
        "artifactCredentials": {"accessKeyId": KEY_ID, "secretAccessKey": SECRET_KEY, "sessionToken": TOKEN}}})
    assert job.secrets(("Fleet",)) == [KEY_ID, SECRET_KEY, TOKEN, "sk-live-0123456789"]
    assert "sk-live" not in repr(job) and SECRET_KEY not in repr(job)


def test_log_lines_are_scrubbed_structlog_and_stdlib() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    before = list(root.handlers)
    log.setup("json", stream=stream)
    try:
        def write() -> None:
            structlog.get_logger("t").info("job.failed", message=f"stderr: {SECRET_KEY}", credentials={"a": "b"})
            logging.getLogger("botocore.test").warning("retrying %s", presigned())
        in_job([SECRET_KEY], write)
    finally:
        for handler in root.handlers:
            if handler not in before:
                root.removeHandler(handler)
        structlog.reset_defaults()
    text = stream.getvalue()
    structured = json.loads(text.splitlines()[0])
    assert structured["message"] == f"stderr: {REDACTED}" and structured["credentials"] == REDACTED
    assert "WARNING botocore.test retrying https://" in text and f"X-Amz-Signature={REDACTED}" in text
    assert SECRET_KEY not in text and quote(TOKEN, safe="") not in text


# -- the job API and the artifact client -----------------------------------------------------------


def claim(emulator: Emulator, client) -> Job:
    emulator.put_artifact(BUCKET, "s.zip", {"abc.json": "{}"})
    emulator.codepipeline.enqueue_job(ACTION_TYPE, configuration={"DocumentName": "codepipeline-ssm-linux"},
                                      input_artifacts=[{"name": "S", "bucket": BUCKET, "key": "s.zip"}])
    api = JobAPI(client, ActionType(**ACTION_TYPE), {})
    [job] = api.poll(1)
    assert api.acknowledge(job.id, job.nonce) == "InProgress"
    return job


@pytest.fixture
def codepipeline(emulator: Emulator) -> Iterator[object]:
    env = emulator.env()
    yield boto3.client("codepipeline", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def test_result_calls_redact_every_text(emulator: Emulator, codepipeline) -> None:
    job = claim(emulator, codepipeline)
    creds = job.credentials
    assert creds is not None
    api = JobAPI(codepipeline, ActionType(**ACTION_TYPE), {})
    message = f"stderr:\n{creds.secret_access_key}\n{quote(creds.session_token, safe='')}\n" + "x" * 6000
    in_job(job.secrets(), api.fail, job.id, "JobFailed", message)
    [result] = emulator.codepipeline.results
    sent = result.request["failureDetails"]["message"]
    assert sent.startswith(f"stderr:\n{REDACTED}\n{REDACTED}\nxxx") and len(sent) == 5000
    assert creds.secret_access_key not in json.dumps(result.request)


def test_success_texts_and_output_variables_are_redacted(emulator: Emulator, codepipeline) -> None:
    job = claim(emulator, codepipeline)
    assert job.credentials is not None
    key = job.credentials.secret_access_key
    api = JobAPI(codepipeline, ActionType(**ACTION_TYPE), {})
    in_job(job.secrets(), lambda: api.succeed(job.id, summary=f"done {key}", external_id="cmd-1",
                                              output_variables={"Note": f"k={key}", "Status": "Success"}))
    [result] = emulator.codepipeline.results
    assert result.request["executionDetails"]["summary"] == f"done {REDACTED}"
    assert result.request["outputVariables"] == {"Note": f"k={REDACTED}", "Status": "Success"}


def test_a_job_without_artifact_credentials_is_never_read_with_the_workers_own() -> None:
    with pytest.raises(ConfigurationError, match="the pipeline's artifact store gave no credentials for this job"):
        S3Clients(boto3.session.Session(region_name="us-east-1")).for_job(None)


def test_job_without_artifact_credentials_fails_as_configuration_error(harness: Harness) -> None:
    harness.emu.put_artifact(BUCKET, "nocreds/source.zip",
                             {"abc.json": json.dumps({"instance_id": INSTANCE, "message": "x"})})
    job_id = harness.emu.codepipeline.enqueue_job(
        ACTION_TYPE, configuration={"DocumentName": "codepipeline-ssm-linux"},
        input_artifacts=[{"name": "SourceArtifact", "bucket": BUCKET, "key": "nocreds/source.zip"}],
        artifact_credentials=False)
    assert "artifactCredentials" not in harness.emu.codepipeline.job(job_id).data
    execution = harness.emu.codepipeline.job(job_id).action_execution_id
    worker = harness.run_once(harness.config())
    assert worker.proc.returncode == 0
    final = harness.final(execution)
    assert final.request["failureDetails"] == {
        "type": "ConfigurationError",
        "message": "the pipeline's artifact store gave no credentials for this job (the job has no "
                   "artifactCredentials); the worker reads and writes artifacts only with a job's own credentials, "
                   "never with its own role: check that the action has its input artifact and that the pipeline's "
                   "artifact store is in S3"}
    assert harness.emu.s3_accesses == [a for a in harness.emu.s3_accesses if a.key != "nocreds/source.zip"]
    assert not [a for a in harness.emu.s3_accesses if a.access_key_id == WORKER_ACCESS_KEY_ID]
    assert harness.sends() == []


# -- the proof: many kinds of jobs, every place the worker writes ----------------------------------

LEAKY = r"""
schemaVersion: "2.2"
description: prints what a careless or hostile build step might, then succeeds, fails or takes a while
parameters:
  Outcome:
    type: String
    allowedValues: [succeed, fail, wait]
  Message:
    type: String
    default: "-"
    allowedPattern: "^[A-Za-z0-9_.-]{1,100}$"
    interpolationType: ENV_VAR
  ArtifactUrl:
    type: String
    default: ""
    allowedPattern: "^(http://([A-Za-z0-9-]+\\.)*(localhost|127\\.0\\.0\\.1)(:[0-9]{1,5})?(/[A-Za-z0-9._~:/?&=%+-]*)?)?$"
    maxChars: 4096
    interpolationType: ENV_VAR
mainSteps:
  - action: aws:runShellScript
    name: Leak
    inputs:
      runCommand:
        - |
          if [ "{{Outcome}}" = fail ]; then exec 3>&2; else exec 3>&1; fi
          python3 - >&3 <<'PY'
          import json, os, urllib.parse as u
          url = os.environ["SSM_ArtifactUrl"]
          q = dict(u.parse_qsl(u.urlsplit(url).query))
          print("token", q["X-Amz-Security-Token"])
          print("credential", q["X-Amz-Credential"])
          print("signature", q["X-Amz-Signature"])
          print("message", os.environ["SSM_Message"])
          print(json.dumps({"ArtifactUrl": url}).replace("/", "\\/"))
          print(u.quote(url, safe=""))
          print(u.quote(u.quote(url, safe=""), safe=""))
          PY
          env
          echo "fetched $SSM_ArtifactUrl" >&3
          if [ "{{Outcome}}" = wait ]; then sleep 3; fi
          if [ "{{Outcome}}" = fail ]; then echo "build failed: see above" >&2; exit 1; fi
"""


def spellings(secret: str) -> set[str]:
    """How a secret could be written: raw, URL-encoded (once, twice, as a form), JSON-escaped."""
    return {secret, quote(secret, safe=""), quote(secret, safe="/"), quote_plus(secret),
            quote(quote(secret, safe=""), safe=""), secret.replace("/", "\\/")}


def fragments(secret: str, size: int = 16) -> set[str]:
    """Windows of a secret long enough to matter, so a partly cut secret is found too."""
    return {secret[i:i + size] for i in range(0, max(1, len(secret) - size + 1), 4)} if len(secret) > size else {secret}


def test_no_credential_reaches_any_log_result_artifact_or_journal(harness: Harness, tmp_path: Path) -> None:
    emu = harness.emu
    emu.ssm.create_document("codepipeline-ssm-leaky", LEAKY, fmt="YAML")
    action_type = {**ACTION_TYPE, "version": "2"}
    emu.codepipeline.create_custom_action_type(
        "Deploy", "SSMRunCommand", "2", output_artifacts=(0, 1),
        configuration_properties=[*CONFIG_PROPERTIES, {"name": "ApiKey", "required": False, "secret": True}])
    api_keys = ["sk-live-" + secrets.token_hex(12) for _ in range(4)]  # a `secret` configuration property

    def enqueue(n: int, spec: dict, *, output: bool = False) -> str:
        emu.put_artifact(BUCKET, f"leaky/{n}.zip", {"abc.json": json.dumps({"instance_id": INSTANCE, **spec})})
        outputs = [{"name": "RunResult", "bucket": BUCKET, "key": f"leaky/{n}-out.zip"}] if output else []
        job_id = emu.codepipeline.enqueue_job(
            action_type, configuration={"DocumentName": "codepipeline-ssm-leaky", "ApiKey": api_keys[n]},
            input_artifacts=[{"name": "SourceArtifact", "bucket": BUCKET, "key": f"leaky/{n}.zip",
                              "revision": "abc123"}], output_artifacts=outputs)
        return emu.codepipeline.job(job_id).action_execution_id

    succeeded = enqueue(0, {"outcome": "succeed"}, output=True)
    failed = enqueue(1, {"outcome": "fail", "message": api_keys[1]})  # the developer echoes the secret
    waited = enqueue(2, {"outcome": "wait"})
    refused = enqueue(3, {"outcome": "succeed", "ArtifactUrl": "http://127.0.0.1/x"})
    state = tmp_path / "state"
    worker = harness.start(harness.config(action_type=action_type, allowed_documents=["codepipeline-ssm-leaky"],
                                          concurrency=4, hold_time=1, state_dir=str(state)))
    finals = {execution: harness.final(execution, timeout=60) for execution in (succeeded, failed, waited, refused)}
    assert worker.stop() == 0
    for execution in finals:
        harness.assert_one_result_per_job(execution)
    assert finals[succeeded].operation == "PutJobSuccessResult"
    assert finals[failed].request["failureDetails"]["type"] == "JobFailed"
    assert finals[waited].operation == "PutJobSuccessResult"
    handed_back = [r for r in emu.codepipeline.results_for(waited) if "continuationToken" in r.request]
    assert len(handed_back) >= 2  # the checkpoint after the send, then a tracking job handing the command back
    assert finals[refused].request["failureDetails"]["type"] == "ConfigurationError"

    # What the commands really printed: the secrets are there, so the checks below are not vacuous.
    urls = [s.request["Parameters"]["ArtifactUrl"][0] for s in emu.ssm.sent_commands]
    signatures = [dict(parse_qsl(urlsplit(u).query))["X-Amz-Signature"] for u in urls]
    by_command = {c.command_id: emu.ssm.command(c.command_id).invocations[INSTANCE] for c in emu.ssm.sent_commands}
    printed = "".join(i.stdout + i.stderr for i in by_command.values())
    assert all(sig in printed for sig in signatures) and api_keys[1] in printed

    creds = [job.credentials for job in emu.codepipeline.jobs]
    secret_values = [c[k] for c in creds for k in ("accessKeyId", "secretAccessKey", "sessionToken")]
    secret_values += signatures + api_keys
    needles = {f for s in secret_values for spelled in spellings(s) for f in fragments(spelled)}

    message = finals[failed].request["failureDetails"]["message"]
    assert "build failed: see above" in message and "X-Amz-Signature=" + REDACTED in message
    assert f"message {REDACTED}" in message  # the secret property's value, printed by the developer's step
    with zipfile.ZipFile(io.BytesIO(emu.read_object(BUCKET, "leaky/0-out.zip"))) as archive:
        artifact = archive.read("ssm-command.json").decode()
    assert REDACTED in artifact and json.loads(artifact)["Instances"][0]["Status"] == "Success"

    places = {
        "log": worker.log_path.read_text(),
        "results": "\n".join(json.dumps(r.request, ensure_ascii=False) for r in emu.codepipeline.results),
        "output artifact": artifact,
        "journal": (state / "journal.jsonl").read_text(),
    }
    assert places["journal"] and places["results"]
    for place, text in places.items():
        leaked = sorted(n for n in needles if n in text)
        assert not leaked, f"{place} holds secret fragments {leaked[:5]}"
