"""The SSM documents in ssm/: parameters are data, never code, on new and old SSM agents.

A hostile Message (quotes, `;`, `$(...)`, backticks, newlines, PowerShell `$(...)`/`@(...)`) must
either be refused by the document's own allowedPattern (`worker.ssmdoc.validate_parameters`, the
check the worker makes before SendCommand; SSM checks it again) or reach the script as plain data:
printed once, verbatim, with no side effect. The Linux document really runs here: through the
local runner (`worker.ssmdoc.runner`, a current agent: ENV_VAR variables and `{{ }}` text), and
directly in sh and bash with `{{ }}` text only (an agent older than 3.3.2746.0). The Windows document
shares the Linux document's parameters and is checked for the same structure.
"""

from __future__ import annotations

import http.server
import io
import os
import re
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.config import Config as BotoConfig

from worker.errors import ParameterError
from worker.ssmdoc import Document, lint_document, load_document, validate_parameters
from worker.ssmdoc.regex import pattern_portability
from worker.ssmdoc.runner import run_document
from worker.ssmdoc.substitute import interpolate, parameter_environment

ROOT = Path(__file__).resolve().parent.parent
SSM = ROOT / "ssm"
SHELLS = [s for s in ("sh", "bash") if shutil.which(s)]
SAMPLES = {  # a valid value of each parameter, for probing its pattern
    "Message": "hello world",
    "OutputBucket": "my-bucket",
    "CodeRepository": "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/app",
    "ArtifactUrl": "https://bucket.s3.eu-west-1.amazonaws.com/p/SourceArti/abc.zip?X-Amz-Signature=0a",
    "PipelineExecutionId": "0b7e0f6e-3c4e-4b1e-9a43-4c6f8e2d1a5b",
}
# Characters that end or escape the quoting of the old-agent fallback: "..." in sh, '...' in
# PowerShell (which also ends a string at typographic quotes). Inside quotes, ; & | ( ) are inert.
BREAKERS = ['"', "'", "$", "`", "\\", "\n", "\r", "\0", "\u2018", "\u2019", "\u201a", "\u201b", "\u201c",
            "\u201d", "\u201e"]

HOSTILE = [
    'hi"; touch {canary}; echo "',
    "hi'; touch {canary}; echo '",
    "$(touch {canary})",
    "`touch {canary}`",
    "hi; touch {canary}",
    "hi && touch {canary}",
    "hi | touch {canary}",
    "hi > {canary}",
    "hi\ntouch {canary}",
    "hi\r\ntouch {canary}",
    "ok\n",
    "${{IFS}}touch${{IFS}}{canary}",
    "$(New-Item -Path {canary})",
    "@(New-Item -Path {canary})",
    "'; New-Item -Path {canary}; '",
    "`$(New-Item {canary})",
    "\u2018; New-Item -Path {canary}; \u2019",
    "%PATH% !x! {{{{Message}}}}",
    "hi\\",
    "*",
    "",
    "x" * 201,
    # Allowed by the pattern, and still only data:
    "touch {canary}",
    "-n",
    "--help",
    "-e %s%n%x",
    "a=b+c/d:e@f,g.h_i",
    "x" * 200,
]


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((SSM / name).read_text(encoding="utf-8"))


@cache
def document(name: str) -> Document:
    return load_document((SSM / name).read_text(encoding="utf-8"), source=f"ssm/{name}")


def script(doc: dict[str, Any]) -> str:
    (step,) = doc["mainSteps"]
    return "\n".join(step["inputs"]["runCommand"])


def allowed(pname: str, value: str) -> bool:
    """The worker's own check of the document's rules (whole-value allowedPattern, maxChars)."""
    values = {"Message": ["ok"], pname: [value]}
    try:
        validate_parameters(document("linux.yml"), values)
    except ParameterError:
        return False
    return True


# --- the documents' structure -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["linux.yml", "windows.yml"])
def test_document_shape(name: str) -> None:
    doc = document(name)
    assert doc.schema_version == "2.2"
    (step,) = doc.steps
    platform, action = {"linux.yml": ("Linux", "aws:runShellScript"),
                        "windows.yml": ("Windows", "aws:runPowerShellScript")}[name]
    assert step.action == action and step.platform == platform
    assert list(doc.parameters) == ["Message", "OutputBucket", "CodeRepository", "ArtifactUrl", "PipelineExecutionId"]
    for pname, p in doc.parameters.items():
        assert p.type == "String" and p.interpolation_type == "ENV_VAR", pname
        assert p.required == (pname == "Message"), pname
        if pname != "Message":
            assert p.default == "" and allowed(pname, ""), f"{pname} must be optional"
    assert lint_document(doc) == []  # nothing SSM would reject or the worker would warn about


def test_linux_and_windows_share_parameters() -> None:
    assert load("linux.yml")["parameters"] == load("windows.yml")["parameters"]


@pytest.mark.parametrize("pname", list(SAMPLES))
def test_patterns_are_portable_and_anchored(pname: str) -> None:
    """The SSM API (Java), SSM Agent (Go RE2) and the worker (Python) read each pattern alike."""
    pattern = document("linux.yml").parameters[pname].allowed_pattern
    assert pattern.startswith("^") and pattern.endswith("$") and pattern.isascii()
    assert pattern_portability(pattern) == []


@pytest.mark.parametrize("pname", list(SAMPLES))
def test_patterns_refuse_quote_breakers_anywhere(pname: str) -> None:
    """What makes the old-agent fallback safe: no value can leave its quotes."""
    sample = SAMPLES[pname]
    assert allowed(pname, sample)
    for ch in BREAKERS:
        for i in range(len(sample) + 1):
            assert not allowed(pname, sample[:i] + ch + sample[i:]), (pname, ch, i)


def test_artifact_url_pattern_accepts_real_presigned_urls() -> None:
    """The worker presigns the artifact with the job's temporary credentials (session token)."""
    session = boto3.Session(aws_access_key_id="ASIAEXAMPLEEXAMPLE", aws_secret_access_key="secret/+=",
                            aws_session_token="IQoJb3JpZ2luX2VjE+/=" * 40, region_name="eu-west-1")
    key = "my-pipeline@x/SourceArti/Ab1.zip"
    for endpoint, style in [(None, "virtual"), (None, "path"), ("http://127.0.0.1:4566", "path"),
                            ("http://localhost:4566", "virtual")]:
        s3 = session.client("s3", endpoint_url=endpoint,
                            config=BotoConfig(signature_version="s3v4", s3={"addressing_style": style}))
        url = s3.generate_presigned_url("get_object", Params={"Bucket": "codepipeline-eu-west-1-1234", "Key": key},
                                        ExpiresIn=3600)
        assert allowed("ArtifactUrl", url), url
    assert not allowed("ArtifactUrl", "http://example.com/a.zip"), "plain http only for loopback"
    assert not allowed("ArtifactUrl", "file:///etc/passwd")


@pytest.mark.parametrize("value", ["--upload-pack=touch x", "ext::sh -c touch x", "file:///tmp/r",
                                   "https://user:pw@host/r.git", "-c core.sshCommand=x", "ssh://h/r"])
def test_code_repository_refuses_option_and_transport_tricks(value: str) -> None:
    assert not allowed("CodeRepository", value)


@pytest.mark.parametrize("name", ["linux.yml", "windows.yml"])
def test_script_uses_parameters_only_as_environment_data(name: str) -> None:
    """{{Name}} appears only in the AWS-recommended old-agent fallback, one line per parameter."""
    raw = load(name)
    fallback = {
        "linux.yml": r'if \[ -z "\$\{SSM_(\w+)\+x\}" \]; then export SSM_\1="\{\{\1\}\}"; fi',
        "windows.yml": r"if \(\$null -eq \$env:SSM_(\w+)\) \{ \$env:SSM_\1 = '\{\{\1\}\}' \}",
    }[name]
    seen = []
    for line in script(raw).splitlines():
        if "{{" in line or "}}" in line:
            m = re.fullmatch(fallback, line.strip())
            assert m, f"parameter text substituted into code: {line!r}"
            seen.append(m[1])
    assert seen == list(raw["parameters"])


def test_windows_script_is_strict_and_cleans_up() -> None:
    text = script(load("windows.yml"))
    assert text.startswith("$ErrorActionPreference = 'Stop'")
    assert "finally {" in text and "Remove-Item -LiteralPath $workdir" in text
    assert "Write-S3Object -BucketName $env:SSM_OutputBucket" in text
    assert "Invoke-WebRequest -UseBasicParsing -Uri $env:SSM_ArtifactUrl" in text
    assert "if ($LASTEXITCODE -ne 0)" in text  # git's failure is not an exception by itself
    assert "Invoke-Expression" not in text and "iex " not in text


# --- the Linux document, run --------------------------------------------------------------------

@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str


def run_linux(values: dict[str, str], *, agent: str = "runner", path: str | None = None,
              workdir: Path) -> Ran:
    """Run ssm/linux.yml with validated values.

    agent "runner": the emulator's runner (a current agent: SSM_<Name> variables and {{ }} text).
    agent "sh"/"bash": that shell with {{ }} text only, as an agent older than ENV_VAR support.
    """
    doc = document("linux.yml")
    complete = validate_parameters(doc, {k: [v] for k, v in values.items()})
    env = {"PATH": path} if path else {}
    if agent == "runner":
        (step,) = run_document(doc, complete, workdir=str(workdir), env=env).steps
        return Ran(step.exit_code, step.stdout, step.stderr)
    (step,) = doc.steps
    text = "\n".join(interpolate(step.inputs["runCommand"], complete, document=doc))
    assert not set(parameter_environment(doc, complete)) & set(os.environ)
    proc = subprocess.run([shutil.which(agent) or agent, "-c", text], check=False, capture_output=True, text=True,
                          timeout=60, cwd=workdir, env={**os.environ, **env})
    return Ran(proc.returncode, proc.stdout, proc.stderr)


AGENTS = ["runner", *[f"{s}" for s in SHELLS]]


@pytest.mark.parametrize("agent", AGENTS, ids=[a if a == "runner" else f"old-agent-{a}" for a in AGENTS])
@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_message_is_refused_or_inert(template: str, agent: str, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    message = template.format(canary=canary)
    try:
        validate_parameters(document("linux.yml"), {"Message": [message]})
    except ParameterError as exc:
        assert "Message" in str(exc)
        return  # refused before SendCommand (the worker) and again by SSM
    work = tmp_path / "work"
    work.mkdir()
    ran = run_linux({"Message": message}, agent=agent, workdir=work)
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout.splitlines().count(f"Message: {message}") == 1
    assert not canary.exists(), "the message ran as code"
    assert os.listdir(work) == [] and os.listdir(tmp_path) == ["work"]


def test_some_hostile_messages_are_accepted_as_data() -> None:
    """Guard against a pattern so tight the test above proves nothing."""
    accepted = [t for t in HOSTILE if allowed("Message", t.format(canary="/tmp/c"))]
    assert len(accepted) >= 5


@pytest.fixture
def served_zip() -> Iterator[str]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("abc.json", '{"instance_id": "i-0123456789abcdef0"}')
        z.writestr("src/app.py", "print('x')\n")
    body = buf.getvalue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path.startswith("/bucket/artifact.zip")
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", str(len(body) if ok else 0))
            self.end_headers()
            if ok:
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("agent", ["runner", "sh"])
def test_linux_fetches_the_artifact(served_zip: str, agent: str, tmp_path: Path) -> None:
    url = f"{served_zip}/bucket/artifact.zip?X-Amz-Signature=abc%2F&X-Amz-Expires=3600"
    ran = run_linux({"Message": "deploy", "ArtifactUrl": url, "PipelineExecutionId": "abc-123"},
                    agent=agent, workdir=tmp_path)
    assert ran.exit_code == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert "./abc.json" in lines and "./src/app.py" in lines
    assert "Pipeline execution: abc-123" in lines and lines.count("Message: deploy") == 1
    assert os.listdir(tmp_path) == []  # the script works in its own temporary directory and removes it


def test_linux_fails_when_the_artifact_cannot_be_fetched(served_zip: str, tmp_path: Path) -> None:
    ran = run_linux({"Message": "deploy", "ArtifactUrl": f"{served_zip}/bucket/missing.zip"}, workdir=tmp_path)
    assert ran.exit_code != 0 and "cannot fetch the pipeline artifact: HTTP Error 404" in ran.stderr
    assert "bucket/missing.zip" not in ran.stderr + ran.stdout  # the presigned URL is never printed
    assert "Message:" not in ran.stdout


def test_linux_fails_when_the_clone_fails(tmp_path: Path) -> None:
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    ran = run_linux({"Message": "deploy", "CodeRepository": "https://127.0.0.1:9/nothing.git"}, workdir=tmp_path)
    assert ran.exit_code != 0 and "Message:" not in ran.stdout


def test_linux_writes_the_message_with_the_aws_cli(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "aws-call"
    fake = bin_dir / "aws"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\ncat >> {record}\n')
    fake.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    ran = run_linux({"Message": "hello: a=b", "OutputBucket": "my-bucket"},
                    path=f"{bin_dir}:{os.environ['PATH']}", workdir=work)
    assert ran.exit_code == 0, ran.stderr
    args = record.read_text().splitlines()
    assert args[:4] == ["s3", "cp", "--only-show-errors", "-"]
    assert re.fullmatch(r"s3://my-bucket/\d{8}T\d{6}Z\.txt", args[4])
    assert args[5:] == ["hello: a=b"]


def test_linux_without_aws_cli_fails_clearly(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mktemp", "rm", "date"):  # a PATH with the basics and no aws
        (bin_dir / tool).symlink_to(shutil.which(tool))
    work = tmp_path / "work"
    work.mkdir()
    ran = run_linux({"Message": "hello", "OutputBucket": "my-bucket"}, path=str(bin_dir), workdir=work)
    assert ran.exit_code != 0
    assert "aws CLI is required" in ran.stderr
