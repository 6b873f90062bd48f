"""`codepipeline-ssm-worker dry-run`, driven as a developer runs it: the command line's `main`.

Most tests call `worker.cli.main` in this process, with stdout and stderr captured; a few run the
installed command in a process (`cli`): exit codes, --json on a real stdout, the AWS chain from the
environment. The messages asserted here are the daemon's (tests/test_worker.py asserts the same
texts from a pipeline job), so a dry-run and a pipeline run cannot drift apart.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from conftest import DOCUMENT, INSTANCE, ROOT
from test_artifacts import HOSTILE  # the attacks, and what the daemon says to each
from test_documents import SEED_WINDOWS  # the seed article's windows.yml, verbatim
from test_worker import FAILING_DOCUMENT  # echoes, writes to stderr, exits 3

from worker.cli import main
from worker.local import Emulator

EXAMPLE = ROOT / "examples" / "source"
PERMISSIVE_NOTE = ("note     config     no --config: allow-lists not checked (every document, instance and target "
                   "allowed), no fixed parameters")
EXAMPLE_REQUEST = {
    "DocumentName": DOCUMENT,
    "DocumentVersion": "$DEFAULT",
    "Parameters": {
        "Message": ["Hello from the pipeline"], "OutputBucket": [""], "CodeRepository": [""],
        "ArtifactUrl": ["https://artifact-bucket.s3.amazonaws.com/dry-run/artifact.zip"],
        "PipelineExecutionId": ["00000000-0000-0000-0000-000000000000"]},
    "Comment": "job 00000000-0000-0000-0000-000000000000 exec 00000000-0000-0000-0000-000000000000 <pipeline>/<stage",
    "TimeoutSeconds": 600,
    "InstanceIds": [INSTANCE],
}
LINUX_AND_WINDOWS = """
schemaVersion: "2.2"
mainSteps:
  - action: aws:runShellScript
    name: OnLinux
    precondition: {StringEquals: [platformType, Linux]}
    inputs: {runCommand: ["./build.sh"]}
  - action: aws:runPowerShellScript
    name: OnWindows
    precondition: {StringEquals: [platformType, Windows]}
    inputs: {runCommand: ["Write-Output windows"]}
"""
POWERSHELL_ONLY = """
schemaVersion: "2.2"
mainSteps:
  - action: aws:runPowerShellScript
    name: Hello
    inputs: {runCommand: ["Write-Output hello"]}
"""


def dry_run(*args: object, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`codepipeline-ssm-worker dry-run ARGS` run from `cwd`, in this process."""
    argv = ["dry-run", *map(str, args)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), mock.patch.dict(os.environ, env or {}), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def cli(*args: object, cwd: Path = ROOT, env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """The same, as a developer's shell runs it: the command in a process of its own (`prefix`: e.g. setpriv)."""
    return subprocess.run([*prefix, sys.executable, "-m", "worker.cli", "dry-run", *map(str, args)], check=False,
                          cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=60)


def source(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def spec(folder: Path, **content: Any) -> Path:
    return source(folder, {"abc.json": json.dumps({"instance_id": INSTANCE, **content})})


def zipped(folder: Path, target: Path) -> Path:
    """`folder` as a CodePipeline source artifact: without .git/."""
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if ".git" not in path.relative_to(folder).parts:
                archive.write(path, path.relative_to(folder).as_posix())
    return target


def config(folder: Path, **keys: Any) -> Path:
    path = folder / "worker.yml"
    path.write_text(yaml.safe_dump({"action_type": {"category": "Deploy", "provider": "SSMRunCommand", "version": "1"},
                                    "allowed_documents": ["codepipeline-ssm-*"], "allowed_instance_ids": ["i-0*"],
                                    **keys}))
    return path


def configuration_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one error a failed dry-run prints, as the pipeline would show it."""
    assert result.returncode == 2, result.stdout + result.stderr
    prefix = "ConfigurationError: "
    assert result.stderr.startswith(prefix), result.stderr
    return result.stderr[len(prefix):].rstrip("\n")


# ------------------------------------------------------------------------------- checks only


def test_valid_example_prints_what_it_checked_and_the_request() -> None:
    result = cli(EXAMPLE, "--document", DOCUMENT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"dry-run of {EXAMPLE} (directory), spec file abc.json"
    assert lines[1] == PERMISSIVE_NOTE
    assert lines[2] == ("ok       spec       abc.json: 87 bytes (limit 1048576); runs on instance(s) "
                        f"{INSTANCE}; sets message")
    assert lines[3].startswith(f"ok       document   {DOCUMENT}: ssm/linux.yml; schemaVersion 2.2, 1 step(s)")
    assert lines[4] == "ok       lint       no findings"
    assert "SendCommand request (not sent):" in lines
    for line in ('  DocumentName: "codepipeline-ssm-linux"', '  DocumentVersion: "$DEFAULT"',
                 '    Message: ["Hello from the pipeline"]', f'  InstanceIds: ["{INSTANCE}"]',
                 "  TimeoutSeconds: 600",
                 '  Comment: "job 00000000-0000-0000-0000-000000000000 exec 00000000-0000-0000-0000-000000000000 <pipeline>/<stage"',
                 "placeholders (a pipeline job fills these): ArtifactUrl, PipelineExecutionId, the job id in Comment"):
        assert line in lines
    assert lines[-1] == "dry-run passed: the pipeline would send this command"
    assert result.stderr == ""


def test_json_and_the_same_result_from_a_zip_and_a_directory(tmp_path: Path) -> None:
    from_dir = dry_run(EXAMPLE, "--document", "linux", "--document-name", DOCUMENT, "--json")
    from_zip = dry_run(zipped(EXAMPLE, tmp_path / "artifact.zip"), "--document", "ssm/linux.yml",
                       "--document-name", DOCUMENT, "--json")
    assert (from_dir.returncode, from_dir.stderr) == (0, "")
    report = json.loads(from_dir.stdout)
    assert set(report) == {"ok", "exit_code", "path", "checks", "findings", "request", "placeholders", "execution",
                           "error"}
    assert (report["ok"], report["exit_code"], report["error"], report["execution"]) == (True, 0, None, None)
    assert [c["check"] for c in report["checks"]] == ["config", "spec", "document", "lint", "plan"]
    assert report["request"] == EXAMPLE_REQUEST
    assert report["placeholders"] == ["ArtifactUrl", "PipelineExecutionId"]
    assert json.loads(from_zip.stdout)["request"] == report["request"]
    assert json.loads(from_zip.stdout)["checks"][1:] == report["checks"][1:]


def test_json_error() -> None:
    result = cli(EXAMPLE, "--document", DOCUMENT, "--spec-file", "nope.json", "--json")
    assert (result.returncode, result.stderr) == (2, "")
    report = json.loads(result.stdout)
    assert (report["ok"], report["request"]) == (False, None)
    assert report["error"]["type"] == "ConfigurationError"
    assert report["error"]["message"].startswith(f"spec file 'nope.json' not found in input artifact '{EXAMPLE}'")


def test_invalid_json(tmp_path: Path) -> None:
    source(tmp_path, {"abc.json": '{"instance_id": "i-0123456789abcdef0",\n "message": "x",}'})
    assert configuration_error(dry_run(tmp_path, "--document", DOCUMENT)) == (
        "abc.json is not valid JSON: Expecting property name enclosed in double quotes at line 2 column 17")


def test_missing_spec_file_is_found_elsewhere_in_a_directory_and_in_a_zip(tmp_path: Path) -> None:
    folder = source(tmp_path / "src", {"deploy/abc.json": "{}", "README.md": "x", ".git/abc.json": "not in artifacts"})
    for path in (folder, zipped(folder, tmp_path / "artifact.zip")):
        assert configuration_error(dry_run(path, "--document", DOCUMENT)) == (
            f"spec file 'abc.json' not found in input artifact '{path}'; found it at deploy/abc.json: "
            "set the action's SpecFile property to that path")


def test_spec_file_and_size_cap(tmp_path: Path) -> None:
    text = json.dumps({"instance_id": INSTANCE, "message": "x", "padding": "y" * 5000})
    source(tmp_path, {"ci/step.json": text})
    result = dry_run(tmp_path, "--document", DOCUMENT, "--spec-file", "ci/step.json",
                     "--config", config(tmp_path, spec_max_bytes=4096))
    assert configuration_error(result) == (f"spec file 'ci/step.json' is {len(text)} bytes; the limit is 4096 "
                                           "(spec_max_bytes); keep only targets and parameters in it")


def test_unknown_parameter(tmp_path: Path) -> None:
    assert configuration_error(dry_run(spec(tmp_path, message="x", colour="blue"), "--document", DOCUMENT)) == (
        "abc.json parameters do not match the document:\n- colour: the document declares no such parameter; it "
        "declares: Message, OutputBucket, CodeRepository, ArtifactUrl, PipelineExecutionId (declared parameters)")


def test_allowed_pattern_violation(tmp_path: Path) -> None:
    message = configuration_error(dry_run(spec(tmp_path, message="hi; rm -rf /"), "--document", DOCUMENT))
    assert message.startswith(f"parameters do not fit document {DOCUMENT!r} (version $DEFAULT); fix abc.json:\n"
                              "- Message:")
    assert "allowedPattern ^[a-zA-Z0-9 _.,:@+=/-]{1,200}$" in message


def test_parameters_the_worker_fills_or_the_config_fixes(tmp_path: Path) -> None:
    folder = spec(tmp_path, message="x", output_bucket="evil-bucket", artifact_url="https://example.com/x.zip")
    assert configuration_error(dry_run(folder, "--document", DOCUMENT, "--config",
                                       config(tmp_path, parameters={"OutputBucket": "ops-bucket"}))) == (
        "abc.json sets parameters it may not set:\n"
        "- OutputBucket: cannot be set in the spec file; remove it (fixed by the worker configuration)\n"
        "- ArtifactUrl: cannot be set in the spec file; remove it (filled by the worker)")


def test_document_not_allowed_by_config(tmp_path: Path) -> None:
    # "linux" finds ssm/linux.yml, but the pipeline's DocumentName must be the deployed name.
    result = dry_run(EXAMPLE, "--document", "linux", "--config", config(tmp_path))
    assert result.stdout.splitlines()[1] == f"ok       config     {tmp_path / 'worker.yml'}: allow-lists and fixed " \
                                            "parameters apply"
    assert configuration_error(result) == (
        "document 'linux' is not allowed by this worker (allowed_documents: codepipeline-ssm-*); set the action's "
        "DocumentName to an allowed document or ask the worker's operators to allow it")


def test_instance_not_allowed_by_config(tmp_path: Path) -> None:
    folder = source(tmp_path, {"abc.json": json.dumps({"instance_id": "i-9123456789abcdef0", "message": "x"})})
    assert configuration_error(dry_run(folder, "--document", DOCUMENT, "--config", config(tmp_path))) == (
        "abc.json: instance(s) i-9123456789abcdef0 not allowed by this worker (allowed_instance_ids: i-0*); "
        "name an allowed instance")


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "artifact.zip").write_text("not a zip")
    assert configuration_error(dry_run(tmp_path / "artifact.zip", "--document", DOCUMENT)).startswith(
        f"input artifact '{tmp_path / 'artifact.zip'}' is not a zip archive")


# ------------------------------------------------------------------------------ hostile input

# Root reads a mode-000 file anyway: without these capabilities it cannot (setpriv is in util-linux).
UNPRIVILEGED = (("setpriv", "--bounding-set=-dac_override,-dac_read_search",
                 "--inh-caps=-dac_override,-dac_read_search") if os.geteuid() == 0 else ())


@pytest.mark.parametrize("attack", sorted(HOSTILE))
def test_hostile_artifact_prints_the_daemons_message_and_exits_2(tmp_path: Path, attack: str) -> None:
    build, daemon_says = HOSTILE[attack]
    (tmp_path / "artifact.zip").write_bytes(build())
    result = dry_run(tmp_path / "artifact.zip", "--document", DOCUMENT)
    assert daemon_says in configuration_error(result)
    assert "Traceback" not in result.stderr


def test_spec_file_must_stay_inside_path(tmp_path: Path) -> None:
    outside = spec(tmp_path / "outside")
    folder = source(tmp_path / "src", {"README.md": "x"})
    for bad in ("../outside/abc.json", str(outside / "abc.json")):
        problem = "contains a '..' component" if bad.startswith("..") else "is an absolute path"
        assert configuration_error(dry_run(folder, "--document", DOCUMENT, "--spec-file", bad)) == (
            f"the action's SpecFile property {bad!r} {problem}; give a path inside the input artifact, relative to "
            "its root, such as abc.json or deploy/abc.json")
    (folder / "abc.json").symlink_to(outside / "abc.json")
    (folder / "deploy").symlink_to(outside)
    for spec_file in ("abc.json", "deploy/abc.json"):
        assert configuration_error(dry_run(folder, "--document", DOCUMENT, "--spec-file", spec_file)) == (
            f"spec file {spec_file!r} in {folder} leads outside it (a symbolic link to {outside / 'abc.json'}); the "
            "worker never reads outside the input artifact: commit the file itself")
    (folder / "abc.json").unlink()
    spec(folder / "real", message="x")
    (folder / "abc.json").symlink_to(Path("real", "abc.json"))  # inside PATH: read as the file it names
    result = dry_run(folder, "--document", DOCUMENT)
    assert result.returncode == 0, result.stderr


def test_spec_file_that_is_a_folder_a_fifo_or_unreadable(tmp_path: Path) -> None:
    folder = source(tmp_path / "src", {"abc.json/readme.txt": "x"})
    assert configuration_error(dry_run(folder, "--document", DOCUMENT)) == (
        f"spec file 'abc.json' in input artifact '{folder}' is a folder; set the action's SpecFile property to the "
        "file inside it")
    zip_of_it = zipped(folder, tmp_path / "artifact.zip")
    assert configuration_error(dry_run(zip_of_it, "--document", DOCUMENT)) == (
        f"spec file 'abc.json' in input artifact '{zip_of_it}' is a folder; set the action's SpecFile property to the "
        "file inside it")
    os.mkfifo(folder / "pipe.json")  # reading it would wait for a writer forever
    assert configuration_error(dry_run(folder, "--document", DOCUMENT, "--spec-file", "pipe.json")) == (
        f"spec file 'pipe.json' in {folder} is not a regular file; commit the spec file as a plain file")
    (folder / "locked.json").write_text(json.dumps({"instance_id": INSTANCE}))
    (folder / "locked.json").chmod(0)
    zip_of_it.chmod(0)
    result = cli(folder, "--document", DOCUMENT, "--spec-file", "locked.json", prefix=UNPRIVILEGED)
    assert configuration_error(result) == (
        f"spec file 'locked.json' in {folder} cannot be read (Permission denied); make it readable")
    assert configuration_error(cli(zip_of_it, "--document", DOCUMENT, prefix=UNPRIVILEGED)) == (
        f"input artifact '{zip_of_it}' cannot be read (Permission denied); make it readable")


def test_execute_uses_nothing_from_outside_path(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("not for the artifact")
    folder = spec(tmp_path / "src", message="x")
    (folder / "link.txt").symlink_to(tmp_path / "secret.txt")
    result = dry_run(folder, "--document", DOCUMENT, "--execute")
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr == (f"NotRunnableHere: link.txt in {folder} is a symbolic link to {tmp_path / 'secret.txt'}, "
                             "outside it; the run uses only what is inside PATH\n")


def test_no_document_lists_the_documents_found() -> None:
    assert configuration_error(dry_run(EXAMPLE)) == (
        "no --document: give the action's DocumentName or a document file; documents in ssm/: linux, windows")
    assert configuration_error(dry_run(EXAMPLE, "--document", "codepipeline-ssm-macos")) == (
        "document 'codepipeline-ssm-macos' not found: looked for codepipeline-ssm-macos.yml|.yaml|.json or "
        "macos.yml|.yaml|.json; documents in ssm/: linux, windows; or use --documents-dir, --document FILE, or --aws")


# ---------------------------------------------------------------------------------- lint


def test_seed_document_is_flagged_for_injection_and_warnings_keep_exit_0(tmp_path: Path) -> None:
    (tmp_path / "seed.yml").write_text(SEED_WINDOWS)
    folder = spec(tmp_path / "src", message="hi", output_bucket="bucket", code_repository="https://example.com/r")
    result = dry_run(folder, "--document", tmp_path / "seed.yml")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning  lint       ")]
    for name in ("Message", "OutputBucket", "CodeRepository"):
        assert any(f"{{{{{name}}}}} is pasted into the script text and {name} has neither allowedPattern nor "
                   "interpolationType ENV_VAR" in w for w in warnings), name
    assert "ok       lint       3 warning(s); warnings do not change the exit code" in result.stdout.splitlines()


def test_what_ssm_would_reject_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"schemaVersion": "2.2", "mainSteps": [
        {"action": "aws:runBash", "name": "s", "inputs": {"runCommand": ["true"]}}]}))
    result = dry_run(spec(tmp_path / "src", message="x"), "--document", tmp_path / "bad.json")
    assert ("error    lint       mainSteps[0].action: unknown action 'aws:runBash' for a Command document; use "
            "aws:runShellScript or aws:runPowerShellScript") in result.stdout.splitlines()
    assert configuration_error(result).startswith(f"document 'bad' ({tmp_path / 'bad.json'}) has what SSM would "
                                                  "reject:\n- mainSteps[0].action: unknown action 'aws:runBash'")


# ------------------------------------------------------------------------------- --execute


def test_execute_linux_document_with_the_example_artifact() -> None:
    result = dry_run(EXAMPLE, "--document", DOCUMENT, "--execute")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "Message: Hello from the pipeline" in lines
    assert "./abc.json" in lines  # the document fetched the artifact from the local ArtifactUrl
    table = lines.index("Step  Name             Action              Status   Response code  Duration")
    assert lines[table + 1].startswith("1     RunPipelineStep  aws:runShellScript  Success  0              ")
    assert lines[table + 2] == "Command status: Success (response code 0)"
    assert "[    0.0s] step 1/1 RunPipelineStep ..." in result.stderr
    assert "step 1/1 RunPipelineStep: Success (exit 0)" in result.stderr


def test_a_failing_step_exits_1_with_its_output(tmp_path: Path) -> None:
    (tmp_path / "failing.yml").write_text(FAILING_DOCUMENT)
    result = dry_run(spec(tmp_path / "src", message="hi"), "--document", tmp_path / "failing.yml", "--execute")
    assert result.returncode == 1
    assert result.stdout.startswith("dry-run of ")  # checks first, then the live output, then the table
    assert "compiler error: missing semicolon\n" in result.stderr  # live
    lines = result.stdout.splitlines()
    table = lines.index("Step  Name   Action              Status  Response code  Duration")
    assert lines[table + 1].startswith("1     Build  aws:runShellScript  Failed  3              ")
    assert lines[table + 2] == "Command status: Failed (response code 3)"
    assert ("--- output of Build (Failed, exit 3):\nbuilding hi\n\n----------ERROR-------\n"
            "compiler error: missing semicolon\n") in result.stdout
    assert "dry-run passed" not in result.stdout


def test_step_for_another_platform_is_skipped_and_a_zip_is_run_from_its_files(tmp_path: Path) -> None:
    (tmp_path / "both.yml").write_text(LINUX_AND_WINDOWS)
    folder = spec(tmp_path / "src")
    (folder / "build.sh").write_text("#!/bin/sh\necho built in $(basename $(pwd))\n")
    (folder / "build.sh").chmod(0o755)
    result = dry_run(zipped(folder, tmp_path / "artifact.zip"), "--document", tmp_path / "both.yml", "--execute",
                     "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    execution = json.loads(result.stdout)["execution"]
    assert (execution["platform"], execution["status"]) == ("Linux", "Success")
    linux, windows = execution["steps"]
    assert (linux["name"], linux["status"], linux["stdout"]) == ("OnLinux", "Success", "built in src\n")
    assert (windows["name"], windows["status"], windows["exit_code"]) == ("OnWindows", "Skipped", 0)
    assert windows["message"].startswith("Step execution skipped due to unsatisfied preconditions")


def test_powershell_without_pwsh_is_not_runnable_here(tmp_path: Path) -> None:
    (tmp_path / "ps.yml").write_text(POWERSHELL_ONLY)
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if not shutil.which("pwsh", path=d))
    result = dry_run(spec(tmp_path / "src"), "--document", tmp_path / "ps.yml", "--execute",
                     env={"PATH": path})
    assert result.returncode == 3
    assert result.stderr.startswith("NotRunnableHere: cannot run on this machine (nothing was run):\n"
                                    "- mainSteps[0] Hello: pwsh not available")
    assert "Command status" not in result.stdout


def _one_step(*lines: str) -> str:
    body = "".join(f"\n        - {json.dumps(line)}" for line in lines)
    return f"""schemaVersion: "2.2"
mainSteps:
  - action: aws:runShellScript
    name: Build
    inputs:
      runCommand:{body}
"""


def test_execute_gives_scripts_the_agents_variables_and_says_which_are_placeholders(tmp_path: Path) -> None:
    (tmp_path / "env.yml").write_text(_one_step("env | grep -E '^(SSM_|AWS_SSM_)' | sort", 'echo "HOME=${HOME-unset}"'))
    args = (spec(tmp_path / "src"), "--document", tmp_path / "env.yml", "--execute")
    result = dry_run(*args, env={"AWS_REGION": "eu-west-1"})
    assert result.returncode == 0, result.stdout + result.stderr
    for line in (f"AWS_SSM_INSTANCE_ID={INSTANCE}", "AWS_SSM_REGION_NAME=eu-west-1", "HOME=unset",
                 "SSM_COMMAND_ID=00000000-0000-0000-0000-000000000000"):
        assert line in result.stdout.splitlines()
    assert (f"note     execute    scripts get SSM_COMMAND_ID=00000000-0000-0000-0000-000000000000 (placeholder), "
            f"AWS_SSM_INSTANCE_ID={INSTANCE}, AWS_SSM_REGION_NAME=eu-west-1, AWS_SSM_PLATFORM_NAME/VERSION of this "
            "machine") in result.stdout


def test_a_reboot_ends_the_run_with_what_the_agent_would_do(tmp_path: Path) -> None:
    (tmp_path / "patch.yml").write_text(_one_step("echo patched", "exit 194"))
    result = dry_run(spec(tmp_path / "src"), "--document", tmp_path / "patch.yml", "--execute")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    table = lines.index("Step  Name   Action              Status            Response code  Duration")
    assert lines[table + 1].startswith("1     Build  aws:runShellScript  SuccessAndReboot  194            ")
    assert lines[table + 2] == "Command status: SuccessAndReboot (response code 194)"
    assert ("note     reboot     SSM Agent would now reboot the instance, then run step Build again from its start, "
            "then the steps after it; dry-run cannot reboot this machine, so the rest was not run here") in lines


def test_parameter_store_references_are_not_runnable_here(tmp_path: Path) -> None:
    (tmp_path / "ssm.yml").write_text("""schemaVersion: "2.2"
parameters:
  message: {type: String}
mainSteps:
  - action: aws:runShellScript
    name: Build
    inputs: {runCommand: ["echo {{ssm:/team/greeting}} {{ message }}"]}
""")
    result = dry_run(spec(tmp_path / "src", message="{{ssm:/team/name}}"), "--document", tmp_path / "ssm.yml",
                     "--execute")
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.startswith("NotRunnableHere: cannot run on this machine (nothing was run):\n"
                                    "- mainSteps[0] Build: {{ssm:/team/greeting}}, {{ssm:/team/name}}: dry-run does "
                                    "not read Parameter Store")


# ------------------------------------------------------------------------------------ --aws


def test_aws_fetches_the_document_as_the_daemon_does(emulator: Emulator) -> None:
    result = cli(EXAMPLE, "--aws", "--document", DOCUMENT, "--json", env=emulator.env())
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["request"] == {**EXAMPLE_REQUEST, "DocumentVersion": "1"}
    assert report["checks"][2]["detail"].startswith(f"{DOCUMENT}: version 1 from SSM (DescribeDocument, GetDocument)")
    assert configuration_error(dry_run(EXAMPLE, "--aws", "--document", "nope", env=emulator.env())) == (
        "fetching document 'nope': InvalidDocument: Document nope does not exist")
