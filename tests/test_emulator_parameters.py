"""The emulator judges SendCommand's Parameters by its own reading of SSM's rules, not the worker's code.

Each request here goes straight to the emulator with boto3, and most are requests the worker would
never send (its own validator refuses them first): that is the point. If the emulator asked the
worker's validator, these tests would pass or fail with it; test_the_workers_validator_is_not_asked
breaks the worker's validator on purpose and the emulator still refuses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import INSTANCE, wait_for

import worker.ssmdoc
import worker.ssmdoc.params
from worker.local import Emulator, EmulatorBug, EmulatorConfig
from worker.ssmdoc import Document

RULES = """
schemaVersion: "2.2"
description: one parameter per rule
parameters:
  Name:
    type: String
    allowedPattern: "[a-z]+"
  Colour:
    type: String
    default: red
    allowedValues: [red, green]
  Note:
    type: String
    default: ok
    minChars: 2
    maxChars: 5
  Tags:
    type: StringList
    default: [a]
    minItems: 1
    maxItems: 2
    allowedPattern: "^[a-z]$"
mainSteps:
  - action: aws:runShellScript
    name: Show
    inputs:
      runCommand: ["echo {{ Name }} {{ Colour }} {{ Note }} {{ Tags }}"]
"""


def ssm_client(emu: Emulator) -> Any:
    env = emu.env()
    return boto3.client("ssm", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture
def rules(emulator: Emulator) -> Emulator:
    emulator.ssm.create_document("rules", RULES)
    return emulator


def refusal(emu: Emulator, parameters: Mapping[str, Sequence[str]], document: str = "rules") -> str:
    """Send directly; expect InvalidParameters and no command; return the message."""
    with pytest.raises(ClientError) as err:
        ssm_client(emu).send_command(DocumentName=document, InstanceIds=[INSTANCE], Parameters=parameters)
    assert err.value.response["Error"]["Code"] == "InvalidParameters"
    assert emu.ssm.sent_commands == []
    return str(err.value.response["Error"]["Message"])


def test_a_valid_request_runs_and_the_defaults_reach_the_script(rules: Emulator) -> None:
    command_id = ssm_client(rules).send_command(DocumentName="rules", InstanceIds=[INSTANCE],
                                                Parameters={"Name": ["abc"]})["Command"]["CommandId"]
    invocation = wait_for(lambda: (i := rules.ssm.command(command_id).invocations[INSTANCE]).done and i)
    assert (invocation.status, invocation.stdout) == ("Success", "abc red ok [a]\n")  # ["a"] after sh's quote removal


@pytest.mark.parametrize(("parameters", "message"), [
    ({"Name": ["abc"], "Nope": ["x"]}, "Nope is not a parameter of the document (it declares Name, Colour, Note, Tags)"),
    ({}, "Name is required (the document declares no default) and was not given"),
    ({"Name": ["abc", "def"]}, "Name is a String parameter and takes exactly one value, got 2"),
    ({"Name": []}, "Name is a String parameter and takes exactly one value, got 0"),
    ({"Name": ["abc1"]}, "Name does not match allowedPattern [a-z]+ (the whole value must)"),
    ({"Name": ["abc"], "Colour": ["blue"]}, "Colour is not one of allowedValues [red, green]"),
    ({"Name": ["abc"], "Note": ["x"]}, "Note has 1 characters, fewer than minChars 2"),
    ({"Name": ["abc"], "Note": ["toolong"]}, "Note has 7 characters, more than maxChars 5"),
    ({"Name": ["abc"], "Tags": []}, "Tags has 0 items, fewer than minItems 1"),
    ({"Name": ["abc"], "Tags": ["a", "b", "c"]}, "Tags has 3 items, more than maxItems 2"),
    ({"Name": ["abc"], "Tags": ["a", "bb"]}, "Tags item 2 does not match allowedPattern ^[a-z]$ (the whole value must)"),
], ids=["unknown", "required", "two-values", "no-value", "pattern-whole", "allowed-values", "min-chars",
        "max-chars", "min-items", "max-items", "item-pattern"])
def test_a_bad_request_is_refused_with_the_rule_it_breaks(rules: Emulator, parameters: dict[str, list[str]],
                                                           message: str) -> None:
    assert refusal(rules, parameters) == f"Invalid parameters for document rules: {message}"


def test_characters_are_counted_as_java_counts_them(rules: Emulator) -> None:
    """Each of these emoji is one code point but two UTF-16 code units (Java's String.length())."""
    assert refusal(rules, {"Name": ["abc"], "Note": ["\U0001F600" * 3]}).endswith(
        "Note has 6 characters, more than maxChars 5")


def test_every_problem_is_named_at_once(rules: Emulator) -> None:
    message = refusal(rules, {"Nope": ["x"], "Colour": ["blue"], "Tags": []})
    assert message.split(": ", 1)[1].split("; ") == [
        "Nope is not a parameter of the document (it declares Name, Colour, Note, Tags)",
        "Name is required (the document declares no default) and was not given",
        "Colour is not one of allowedValues [red, green]",
        "Tags has 0 items, fewer than minItems 1",
    ]


def test_the_workers_validator_is_not_asked(rules: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    def accept_everything(document: Document, values: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
        return {name: list(items) for name, items in values.items()}

    monkeypatch.setattr(worker.ssmdoc.params, "check_values", lambda *_: [])
    monkeypatch.setattr(worker.ssmdoc.params, "validate_parameters", accept_everything)
    monkeypatch.setattr(worker.ssmdoc, "validate_parameters", accept_everything)
    assert worker.ssmdoc.validate_parameters(worker.ssmdoc.load_document(RULES), {"Name": ["abc1"], "Extra": ["x"]})
    assert refusal(rules, {"Name": ["abc1"], "Extra": ["x"]}) == (
        "Invalid parameters for document rules: Extra is not a parameter of the document (it declares Name, "
        "Colour, Note, Tags); Name does not match allowedPattern [a-z]+ (the whole value must)")


@pytest.fixture
def strict_emulator() -> Iterator[Emulator]:
    emu = Emulator(EmulatorConfig(region="us-east-1")).start()
    emu.ssm.register_instance(INSTANCE)
    yield emu


def test_a_pattern_python_cannot_read_is_an_emulator_limit_not_a_verdict(strict_emulator: Emulator) -> None:
    strict_emulator.ssm.create_document("java", RULES.replace('"[a-z]+"', '"(?<word>[a-z]+)"'))
    with pytest.raises(ClientError) as err:
        ssm_client(strict_emulator).send_command(DocumentName="java", InstanceIds=[INSTANCE],
                                                 Parameters={"Name": ["abc"]})
    assert err.value.response["Error"]["Code"] == "EmulatorBug"
    with pytest.raises(EmulatorBug, match=r"allowedPattern '\(\?<word>\[a-z\]\+\)' is not readable by Python re"):
        strict_emulator.stop()
