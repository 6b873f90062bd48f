"""What SSM would reject in a document, and what is risky or silently ignored, with paths and fixes.

A document is the developer's code that the worker runs with pipeline data, so dry-run lints it
before anything runs: errors are what SSM (the API or the agent) would refuse, warnings what runs
but not as the author probably meant, above all ``{{ }}`` text pasted into a script (injection).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from worker.ssmdoc.agent import (
    PLACEHOLDER,
    default_items,
    evaluate_preconditions,
    execution_timeout,
    is_ssm_reference,
    script_lines,
    substitute,
    typed_values,
    version_at_least,
    whole_seconds,
)
from worker.ssmdoc.model import (
    AGENT_SCHEMA_VERSIONS,
    COMMAND_ACTIONS,
    DEFAULT_TIMEOUT_SECONDS,
    DOCUMENTED_SCHEMA_VERSIONS,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    PARAMETER_TYPES,
    PLATFORMS,
    SCRIPT_ACTIONS,
    VALID_NAME,
    Document,
    Finding,
    Parameter,
    Step,
    action_path,
    inputs_path,
    kind_of,
)
from worker.ssmdoc.params import check_values
from worker.ssmdoc.regex import compile_pattern, pattern_matches, pattern_portability

_ANY_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

# One character each that breaks out of a shell or PowerShell string or starts a new command.
_METACHARACTERS = (";", "|", "&", "$", "`", '"', "'", "\n", "<", ">", "(", ")", "\\")


def _admits(pattern: str) -> list[str]:
    """Metacharacters a pattern lets through (probed, so it can miss some)."""
    found = []
    for char in _METACHARACTERS:
        try:
            probes = (char, f"a{char}b", f"1{char}1", f"a {char} b", f"a=b{char}c")
            if any(pattern_matches(pattern, probe) for probe in probes):
                found.append(char)
        except re.error:
            return []
    return found


def _default_problem(parameter: Parameter) -> str | None:
    """Why a declared default does not fit its own type, or None."""
    default, type_ = parameter.default, parameter.type
    if isinstance(default, str) and (is_ssm_reference(default) or type_ in ("String", "StringList", "StringMap")):
        return None
    shapes: dict[str, tuple[bool, str]] = {
        "String": (isinstance(default, str), "a string; quote it"),
        "StringList": (isinstance(default, list) and all(isinstance(i, str) for i in default), "a list of strings"),
        "StringMap": (isinstance(default, Mapping), "a mapping"),
        "MapList": (isinstance(default, list) and all(isinstance(i, Mapping) for i in default), "a list of mappings"),
        "Integer": (isinstance(default, int) and not isinstance(default, bool), "a whole number"),
        "Boolean": (isinstance(default, bool), "true or false"),
    }
    ok, wanted = shapes.get(type_, (True, ""))
    return None if ok else f"default {default!r} is {kind_of(default)}; a {type_} default must be {wanted}"


def _lint_parameter(document: Document, parameter: Parameter) -> Iterator[Finding]:
    path = f"parameters.{parameter.name}"
    if not VALID_NAME.fullmatch(parameter.name):
        yield Finding("warning", path, "SSM Agent only substitutes parameters named [a-zA-Z0-9]+; "
                                       f"{{{{ {parameter.name} }}}} stays literal text; rename it")
    if not parameter.type:
        yield Finding("error", f"{path}.type", f"missing; use one of {', '.join(PARAMETER_TYPES)}")
    elif parameter.type == "Array":
        yield Finding("warning", f"{path}.type", "Array is accepted by SSM Agent but is not an SSM document type; "
                                                 "use StringList")
    elif parameter.type not in PARAMETER_TYPES:
        yield Finding("error", f"{path}.type", f"unknown type {parameter.type!r}; use one of "
                                               f"{', '.join(PARAMETER_TYPES)}")
    pattern_ok = True
    if parameter.allowed_pattern:
        try:
            compile_pattern(parameter.allowed_pattern)
        except re.error as exc:
            pattern_ok = False
            yield Finding("error", f"{path}.allowedPattern", f"not a valid regular expression for the worker's "
                                                             f"check (Python re: {exc})")
        for problem in pattern_portability(parameter.allowed_pattern):
            yield Finding("warning", f"{path}.allowedPattern", problem)
    for low, high, what in ((parameter.min_chars, parameter.max_chars, "Chars"),
                            (parameter.min_items, parameter.max_items, "Items")):
        if low is not None and high is not None and low > high:
            yield Finding("error", f"{path}.min{what}", f"min{what} {low} is greater than max{what} {high}")
    if parameter.interpolation_type is not None:
        if parameter.interpolation_type != "ENV_VAR":
            yield Finding("warning", f"{path}.interpolationType",
                          f"unknown value {parameter.interpolation_type!r}; ENV_VAR is the only documented one")
        elif document.schema_version != "2.2":
            yield Finding("warning", f"{path}.interpolationType", "ENV_VAR is honoured only in schema 2.2 documents")
        elif parameter.type not in ("String", ""):
            yield Finding("warning", f"{path}.interpolationType",
                          f"ENV_VAR is documented for String parameters only, not {parameter.type}")
    if parameter.required:
        return
    shape = _default_problem(parameter)
    if shape:
        yield Finding("error", f"{path}.default", shape)
    elif pattern_ok:
        for problem in check_values(parameter, default_items(parameter)):
            yield Finding("error", f"{path}.default",
                          f"the default breaks the parameter's own rule: {problem.problem} ({problem.rule})")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _lint_injection(document: Document, step: Step) -> Iterator[Finding]:
    """{{ X }} pasted into script text: who sets X can run code, unless X is tightly constrained."""
    path = f"{inputs_path(step.path)}.runCommand"
    lines = script_lines(step.inputs.get("runCommand"))
    whole = {m.group(1) for line in lines if (m := PLACEHOLDER.fullmatch(line))}
    embedded = {name for line in lines if not PLACEHOLDER.fullmatch(line) for name in PLACEHOLDER.findall(line)}
    reader = "$env:SSM_{0}" if step.action == "aws:runPowerShellScript" else '"$SSM_{0}"'
    for name in sorted(whole):
        if name in document.parameters and not document.parameters[name].allowed_values:
            yield Finding("warning", path, f"parameter {name} is the script itself: whoever sets it runs any "
                                           "command on the instance")
    for name in sorted(embedded):
        parameter = document.parameters.get(name)
        if parameter is None or parameter.allowed_values or parameter.type in ("Integer", "Boolean"):
            continue
        env = reader.format(name)
        if not parameter.allowed_pattern:
            if parameter.interpolation_type == "ENV_VAR":
                yield Finding("warning", path, f"{{{{{name}}}}} is pasted into the script text and {name} has no "
                                               f"allowedPattern; interpolationType ENV_VAR does not stop that "
                                               f"substitution (command injection): read {env} instead of "
                                               f"{{{{{name}}}}}, or add an anchored allowedPattern")
            else:
                yield Finding("warning", path, f"{{{{{name}}}}} is pasted into the script text and {name} has "
                                               "neither allowedPattern nor interpolationType ENV_VAR: a value "
                                               "with shell or PowerShell metacharacters runs as code (command "
                                               f"injection); declare interpolationType: ENV_VAR, read {env} "
                                               "instead, and add an anchored allowedPattern")
            continue
        admitted = _admits(parameter.allowed_pattern)
        if admitted:
            shown = " ".join(json.dumps(c)[1:-1] for c in admitted)
            yield Finding("warning", path, f"{{{{{name}}}}} is pasted into the script text and {name}'s "
                                           f"allowedPattern lets through {shown}: a value can break out of its "
                                           f"quoting; read {env} instead or narrow the pattern")


def _lint_step(document: Document, step: Step, index: int, seen: dict[str, str]) -> Iterator[Finding]:
    path = step.path
    if step.name in seen and step.path.startswith("mainSteps"):
        yield Finding("error", f"{path}.name", f"duplicate step name {step.name!r} (also {seen[step.name]}); "
                                               "step names must be unique")
    seen.setdefault(step.name, path)
    if step.action == "aws:runScript":
        yield Finding("warning", action_path(path), "aws:runScript is a legacy EC2Config plugin name; current SSM "
                                                   "Agent fails the step; use aws:runPowerShellScript")
    elif step.action not in COMMAND_ACTIONS:
        yield Finding("error", action_path(path), f"unknown action {step.action!r} for a Command document; "
                                                 "use aws:runShellScript or aws:runPowerShellScript")
    if step.precondition is not None:
        if not version_at_least(document.schema_version, "2.2"):
            yield Finding("error", f"{path}.precondition", "preconditions need schemaVersion 2.2; SSM Agent "
                                                           "fails the step")
        declared = {name: [f"\x00{name}\x00"] for name in document.parameters if VALID_NAME.fullmatch(name)}
        typed = typed_values(declared, document)
        _, _, invalid = evaluate_preconditions(step.precondition, lambda arg: str(substitute(arg, typed)),
                                  step.platform or "Linux")
        for problem in invalid:
            yield Finding("error", f"{path}.precondition", f"SSM Agent fails this step: {problem}")
        known = step.platform is None or "{{" in step.platform or step.platform.lower() in ("linux", "windows", "macos")
        if not known:
            yield Finding("warning", f"{path}.precondition", f"platformType {step.platform!r} matches no "
                                                             f"instance ({', '.join(PLATFORMS)}): the step never runs")
    inputs = inputs_path(path)
    if step.finally_step and index != len(document.steps) - 1:
        yield Finding("warning", f"{inputs}.finallyStep", "only the last step can be a finally step; "
                                                               "SSM Agent ignores it here")
    if step.on_failure not in (None, "exit", "successAndExit"):
        yield Finding("warning", f"{inputs}.onFailure", f"{step.on_failure!r} is not exit or successAndExit; "
                                                             "SSM Agent ignores it")
    if step.on_success not in (None, "exit"):
        yield Finding("warning", f"{inputs}.onSuccess", f"{step.on_success!r} is not exit; SSM Agent ignores it")
    if step.action in SCRIPT_ACTIONS:
        if "runCommand" not in step.inputs:
            yield Finding("warning", inputs, "no runCommand: SSM Agent runs an empty script")
        timeout = step.inputs.get("timeoutSeconds")
        seconds = whole_seconds(timeout)
        literal = timeout is not None and not (isinstance(timeout, str) and "{{" in timeout)
        if literal and (seconds is None or execution_timeout(timeout) != seconds):
            yield Finding("warning", f"{inputs}.timeoutSeconds",
                          f"{timeout!r} is not a number of seconds in {MIN_TIMEOUT_SECONDS}..{MAX_TIMEOUT_SECONDS}; "
                          f"SSM Agent uses {DEFAULT_TIMEOUT_SECONDS} instead")
        yield from _lint_injection(document, step)
    for text in _strings(step.inputs):
        for name in _ANY_PLACEHOLDER.findall(text):
            if name.startswith(("ssm:", "ssm-secure:")) or name in document.parameters:
                continue
            if VALID_NAME.fullmatch(name):
                yield Finding("warning", inputs, f"{{{{ {name} }}}} names no declared parameter; "
                                                           "SSM Agent leaves it as literal text")


def lint_document(document: Document) -> list[Finding]:
    """What SSM would reject (errors) and what is risky or ignored (warnings), with paths and fixes.

    Errors follow the agent where it is the judge (schema versions, plugin names, precondition rules
    from runpluginutil.go evaluatePreconditions) and the user guide for parameter declarations.
    """
    findings = list(document.notes)
    version = document.schema_version
    if not version:
        findings.append(Finding("error", "schemaVersion", 'missing; Command documents use schemaVersion "2.2"'))
    elif version not in AGENT_SCHEMA_VERSIONS:
        findings.append(Finding("error", "schemaVersion", f"Document with schema version {version} is not "
                                                          f"supported by SSM Agent; use \"2.2\""))
    elif version not in DOCUMENTED_SCHEMA_VERSIONS:
        findings.append(Finding("warning", "schemaVersion", f"{version} is accepted by SSM Agent but not "
                                                            "documented for Command documents; use \"2.2\""))
    if not document.steps:
        where = "runtimeConfig" if version in ("1.0", "1.2") else "mainSteps"
        findings.append(Finding("error", where, f"no steps: add {where} with at least one aws:runShellScript "
                                                "or aws:runPowerShellScript step"))
    for parameter in document.parameters.values():
        findings += _lint_parameter(document, parameter)
    seen: dict[str, str] = {}
    for index, step in enumerate(document.steps):
        findings += _lint_step(document, step, index, seen)
    return findings
