"""The conformance table (tests/conformance/cases.yaml): each case run as SSM Agent would run it.

Cases run through the real runner (``worker.ssmdoc.runner.run_document``: real /bin/sh scripts in a
temporary directory) unless they say ``kind: load`` (the loader, with the DocumentType SSM would
report), ``kind: timeout`` (the execution timeout the runner uses) or ``kind: status`` (the exit
code's status, for codes no Unix process can exit with). Where a case names a lint finding, the
lint must report it before anything runs: what the agent fails at run time, the lint says first.
The file says which agent source (or documentation page) each case follows.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Harness

from worker.errors import DocumentError
from worker.handler import DocumentCache
from worker.ssmdoc import Document, lint_document, load_document, validate_parameters
from worker.ssmdoc.plugins import execution_timeout, exit_status
from worker.ssmdoc.runner import (
    AgentContext,
    RunResult,
    StepResult,
    local_platform,
    run_document,
)

CASES_FILE = Path(__file__).parent / "conformance" / "cases.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
TOPICS = ("substitution", "plugin-input", "environment", "exit-codes", "preconditions", "document-types", "output")
_STEP_KEYS = {"status", "code", "stdout", "stderr", "message", "output", "name", "script", "scripts", "stderr_has",
              "message_has", "env"}
_EXPECT_KEYS = _STEP_KEYS | {"lint", "lint_warning", "lint_errors", "error", "document", "reboot", "steps", "refused"}
CONTEXT = AgentContext("7fde3a1c-5c4b-4d4e-9a3f-0123456789ab", "i-0123456789abcdef0", "eu-west-1", *local_platform())
# A stand-in for PowerShell: says how it was called and how the script file starts, then runs its lines with sh.
FAKE_PWSH = """#!/bin/sh
for script; do :; done
echo "pwsh-args: $*" >&2
echo "bom: $(head -c 3 "$script" | od -An -tx1 | tr -d ' \\n')" >&2
tail -c +4 "$script" | sh
"""


def _tokens(tmp_path: Path) -> dict[str, str]:
    return {"<command-id>": CONTEXT.command_id, "<instance-id>": CONTEXT.instance_id, "<region>": CONTEXT.region,
            "<platform-name>": CONTEXT.platform_name, "<platform-version>": CONTEXT.platform_version,
            "<workdir>": str(tmp_path / "work"), "<fakebin>": str(tmp_path / "bin"), "<path>": os.environ["PATH"]}


def _fill(value: Any, tokens: Mapping[str, str]) -> Any:
    """Expected values with the case's tokens filled in; {pieces: [...]} built from repeats."""
    if isinstance(value, str):
        for token, text in tokens.items():
            value = value.replace(token, text)
        return value
    if isinstance(value, Mapping) and "pieces" in value:
        return "".join(p[0] * p[1] if isinstance(p, list) else p for p in value["pieces"])
    if isinstance(value, Mapping):
        return {k: _fill(v, tokens) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, tokens) for v in value]
    return value


def _step(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"action": "aws:runShellScript", "name": spec["name"],
            "inputs": {"runCommand": spec["run"], **spec.get("inputs", {})}}


def _document(case: Mapping[str, Any]) -> Document:
    """The case's document: written out whole, or from the run/steps shortcuts."""
    if "document" in case:
        content = dict(case["document"])
        if "declare" in case:
            content["parameters"] = case["declare"]
    else:
        steps = case.get("steps") or [{"name": "s", "run": case["run"], "inputs": case.get("inputs", {})}]
        content = {"schemaVersion": "2.2", "parameters": case.get("declare", {}), "mainSteps": [_step(s) for s in steps]}
    return load_document(content, source=case["id"])


def _run(case: Mapping[str, Any], document: Document, tmp_path: Path, tokens: Mapping[str, str]) -> RunResult:
    work = tmp_path / "work"
    for folder in case.get("make_dirs", ()):
        (work / folder).mkdir(parents=True)
    work.mkdir(exist_ok=True)
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    (fakebin / "pwsh").write_text(FAKE_PWSH)
    (fakebin / "pwsh").chmod(stat.S_IRWXU)
    store = {name: tuple(found) for name, found in case.get("parameter_store", {}).items()}
    values = validate_parameters(document, case.get("parameters", {}))
    options: dict[str, Any] = {
        "platform": case.get("platform", "Linux"), "workdir": str(work), "context": CONTEXT,
        "env": _fill(case.get("agent_env", {}), tokens), "time_scale": case.get("time_scale", 1.0),
        "parameter_store": lambda names: {n: store[n] for n in names if n in store}}
    result = run_document(document, values, **options)
    if case.get("resume"):
        result = run_document(document, values, resume=result.steps, **options)
    return result


def _environment(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if re.match(r"[A-Za-z_][A-Za-z0-9_]*=", line))


def _check_step(step: StepResult, expected: Mapping[str, Any]) -> None:
    assert set(expected) <= _STEP_KEYS, set(expected) - _STEP_KEYS
    simple = {"status": step.status, "code": step.exit_code, "stdout": step.stdout, "stderr": step.stderr,
              "message": step.message, "output": step.plugin_output(), "name": step.name}
    for key, actual in simple.items():
        if key in expected:
            assert actual == expected[key], f"{key}: {actual!r} != {expected[key]!r}"
    if "script" in expected:
        assert step.scripts == [expected["script"]]
    if "scripts" in expected:
        assert step.scripts == expected["scripts"]
    for text in expected.get("stderr_has", ()):
        assert text in step.stderr, step.stderr
    if "message_has" in expected:
        assert expected["message_has"] in step.message, step.message
    for name, value in expected.get("env", {}).items():
        assert _environment(step.stdout).get(name) == value, f"{name} in {step.stdout!r}"


def _check_lint(document: Document, expected: Mapping[str, Any]) -> None:
    findings = lint_document(document)
    errors = [str(f) for f in findings if f.severity == "error"]
    warnings = [str(f) for f in findings if f.severity == "warning"]
    if "lint" in expected:
        assert any(expected["lint"] in e for e in errors), errors
    if "lint_warning" in expected:
        assert any(expected["lint_warning"] in w for w in warnings), warnings
    if "lint_errors" in expected:
        assert len(errors) == expected["lint_errors"], errors


def _check_load(case: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    kind = case.get("document_type", "Command")
    if "refused" in expected:
        with pytest.raises(DocumentError) as info:
            load_document(case["content"], document_type=kind)
        assert expected["refused"] in str(info.value)
        return
    document = load_document(case["content"], document_type=kind)
    assert len(document.steps) == expected["steps"]
    _check_lint(document, expected)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: dict[str, Any], tmp_path: Path) -> None:
    assert case["topic"] in TOPICS and case["basis"] in ("source", "documentation") and case["cite"]
    kind = case.get("kind", "run")
    if kind == "timeout":
        assert [[value, execution_timeout(value)] for value, _ in case["values"]] == case["values"]
        return
    if kind == "status":
        assert [[code, platform, exit_status(code, platform)] for code, platform, _ in case["values"]] == case["values"]
        return
    tokens = _tokens(tmp_path)
    expected = _fill(case["expect"], tokens)
    assert set(expected) <= _EXPECT_KEYS, set(expected) - _EXPECT_KEYS
    if kind == "load":
        _check_load(case, expected)
        return
    document = _document(case)
    _check_lint(document, expected)
    result = _run(case, document, tmp_path, tokens)
    if "error" in expected:
        assert (result.status, result.steps) == ("Failed", [])
        assert expected["error"] in result.error
        return
    assert result.error == ""
    if "document" in expected:
        assert result.status == expected["document"]
    if "reboot" in expected:
        assert result.reboot == expected["reboot"]
    steps = expected.get("steps") or [{k: v for k, v in expected.items() if k in _STEP_KEYS}]
    assert len(result.steps) == len(steps), [s.name for s in result.steps]
    for step, step_expected in zip(result.steps, steps, strict=True):
        _check_step(step, step_expected)


def test_the_table_covers_every_topic_with_cited_cases() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    assert {c["topic"] for c in CASES} == set(TOPICS)
    assert {c["basis"] for c in CASES} == {"source", "documentation"}
    assert all(c["cite"].startswith(("agent/", "AWS Systems Manager User Guide")) for c in CASES)


POLICY = """{"schemaVersion": "2.0", "description": "Inventory",
 "mainSteps": [{"action": "aws:softwareInventory", "name": "collectSoftwareInventoryItems", "inputs": {}}]}"""


def test_a_policy_document_from_ssm_is_refused_with_the_one_message(harness: Harness) -> None:
    """T03 end to end: SSM's DocumentType decides, through the worker's own DocumentCache and real boto3."""
    ssm = harness.client("ssm")
    ssm.create_document(Name="Inventory", Content=POLICY, DocumentType="Policy", DocumentFormat="JSON")
    with pytest.raises(DocumentError) as info:
        DocumentCache(ssm).get("Inventory", None)
    assert str(info.value).startswith("document 'Inventory' version 1: a Policy document, not a Command document; "
                                      "the worker runs Command documents only")
