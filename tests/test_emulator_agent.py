"""The emulator's fake SSM Agent, seen through the SSM API (real boto3 over HTTP): scripts get the
variables SSM Agent sets, a reboot exit code reboots the instance and the step runs again, a
document the agent fails before any step says why, and StandardErrorContent is the service's cut."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from conftest import INSTANCE, Harness, wait_for

from worker.ssmdoc.runner import local_platform


def _document(harness: Harness, name: str, *lines: str) -> None:
    body = "\n".join(f"          - {line!r}" for line in lines)
    harness.emu.ssm.create_document(name, f"""schemaVersion: "2.2"
mainSteps:
  - action: aws:runShellScript
    name: RunScript
    inputs:
      runCommand:
{body}
""")


def _finished(ssm: Any, command_id: str) -> dict[str, Any] | None:
    try:
        got = ssm.get_command_invocation(CommandId=command_id, InstanceId=INSTANCE)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "InvocationDoesNotExist":
            return None
        raise
    return got if got["Status"] not in ("Pending", "InProgress", "Delayed", "Cancelling") else None


def _run(harness: Harness, name: str) -> tuple[str, dict[str, Any]]:
    ssm = harness.client("ssm")
    command_id = ssm.send_command(DocumentName=name, InstanceIds=[INSTANCE])["Command"]["CommandId"]
    return command_id, wait_for(lambda: _finished(ssm, command_id))


def test_scripts_get_the_agents_environment(harness: Harness) -> None:
    _document(harness, "env", "env | grep -E '^(SSM_|AWS_SSM_)' | sort", 'echo "HOME=${HOME-unset}"')
    command_id, got = _run(harness, "env")
    name, version = local_platform()
    assert got["Status"] == "Success"
    assert got["StandardOutputContent"] == (
        f"AWS_SSM_INSTANCE_ID={INSTANCE}\nAWS_SSM_PLATFORM_NAME={name}\nAWS_SSM_PLATFORM_VERSION={version}\n"
        f"AWS_SSM_REGION_NAME=us-east-1\nSSM_COMMAND_ID={command_id}\nHOME=unset\n")


def test_a_reboot_exit_code_reboots_the_instance_and_runs_the_step_again(harness: Harness) -> None:
    _document(harness, "patch", "if [ -e patched ]; then echo 'after the reboot'; exit 0; fi", "touch patched",
              "echo 'before the reboot'", "exit 194")
    _, got = _run(harness, "patch")
    assert (got["Status"], got["ResponseCode"]) == ("Success", 0)
    assert got["StandardOutputContent"] == "after the reboot\n"


def test_a_document_the_agent_fails_before_any_step_says_why(harness: Harness) -> None:
    _document(harness, "secret", "echo {{ssm:/team/password}}")  # the emulator has no Parameter Store
    command_id, got = _run(harness, "secret")
    assert got["Status"] == "Failed"
    [invocation] = harness.client("ssm").list_command_invocations(CommandId=command_id, Details=True)[
        "CommandInvocations"]
    assert invocation["CommandPlugins"][0]["Output"] == "Input contains invalid parameters [/team/password]"


def test_standard_error_content_is_the_services_first_8000_characters(harness: Harness) -> None:
    _document(harness, "noisy", "head -c 10000 /dev/zero | tr '\\0' e >&2")
    _, got = _run(harness, "noisy")
    assert got["StandardErrorContent"] == "e" * 8000
