"""The emulator's fault hooks, used by the crash tests: on receipt or after the call, for matching requests only."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from conftest import DOCUMENT, INSTANCE, Harness


def test_a_hook_on_receipt_runs_before_the_call_and_an_error_keeps_it_from_being_carried_out(harness: Harness) -> None:
    ssm = harness.client("ssm")
    seen: list[int] = []
    harness.emu.faults.inject("SendCommand", hook=lambda: seen.append(len(harness.sends())),
                              error="AccessDeniedException", times=1)
    with pytest.raises(ClientError):
        ssm.send_command(DocumentName=DOCUMENT, InstanceIds=[INSTANCE], Parameters={"Message": ["x"]})
    assert seen == [0] and harness.sends() == []


def test_a_hook_after_the_call_sees_its_effect(harness: Harness) -> None:
    ssm = harness.client("ssm")
    seen: list[int] = []
    harness.emu.faults.inject("SendCommand", hook=lambda: seen.append(len(harness.sends())), after=True, times=1)
    command_id = ssm.send_command(DocumentName=DOCUMENT, InstanceIds=[INSTANCE],
                                  Parameters={"Message": ["x"]})["Command"]["CommandId"]
    assert seen == [1]  # the command existed when the hook ran
    assert harness.emu.ssm.sent_commands[0].command_id == command_id


def test_match_and_skip_choose_the_request(harness: Harness) -> None:
    ssm = harness.client("ssm")
    current, hits = [0], []
    harness.emu.faults.inject("ListCommands", hook=lambda: hits.append(current[0]), skip=1, times=1,
                              match=lambda params: params.get("MaxResults") == 7)
    for current[0], max_results in enumerate((5, 7, 7, 7)):
        ssm.list_commands(MaxResults=max_results)
    assert hits == [2] and harness.emu.faults.fired("ListCommands") == 1  # the second request that matched
    with pytest.raises(ValueError, match="after=True needs"):
        harness.emu.faults.inject("ListCommands", delay=0.1, after=True)
