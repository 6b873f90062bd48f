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
    evaluate_preconditions,
    precondition_resolver,
    version_at_least,
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
from worker.ssmdoc.parameterstore import REFERENCE
from worker.ssmdoc.params import check_values
from worker.ssmdoc.plugins import (
    PluginInputError,
    check_property,
    decode_script_inputs,
    has_input,
    input_value,
    property_entries,
    timeout_is_literal_number,
)
from worker.ssmdoc.regex import compile_pattern, pattern_matches, pattern_portability
from worker.ssmdoc.substitute import (
    PLACEHOLDER,
    AgentCrash,
    default_items,
    is_ssm_reference,
    replace_parameters,
)

_ANY_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_SSM_LIKE = re.compile(r"\{\{\s*ssm:[^{}]*\}\}")
_SECURE_LIKE = re.compile(r"\{\{\s*ssm-secure:")
# A value of each type, to see what substitution makes of a step whatever the values sent.
_SAMPLES: dict[str, Any] = {"StringList": ["x"], "Array": ["x"], "MapList": [{"k": "v"}], "StringMap": {"k": "v"},
                            "Integer": 1, "Boolean": True}
# What each Go decoding error means for the author, by the field it names.
_DECODE_HINTS = (
    ("RunCommand of type []string", ("runCommand must be a list of strings; only a StringList parameter can be the "
                                    'whole value (runCommand: "{{ commands }}"), not a String parameter or text')),
    ("RunCommand of type string", ("each runCommand item must be one string: a StringList, Integer, Boolean or map "
                                  "parameter as a whole item is not; make a StringList the whole runCommand value "
                                  "or paste the parameter inside text")),
    ("WorkingDirectory", "workingDirectory must be one string"),
    ("Environment", "environment must map names to strings"),
    ("struct { ID string }", "each properties entry must be a mapping with id and runCommand"),
)

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
        yield Finding("error", path, "SSM Agent accepts only parameter names of letters and digits: it drops the "
                                     f"value sent for {parameter.name} and pastes its default (or null) into "
                                     f"{{{{ {parameter.name} }}}}, and reads the name as a regular expression; "
                                     "rename it to letters and digits only")
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
                          f"ENV_VAR is documented for String parameters only, not {parameter.type}; dry-run sets "
                          f"no SSM_{parameter.name} for it")
    if parameter.allowed_pattern and parameter.type in ("Integer", "Boolean"):
        yield Finding("warning", f"{path}.allowedPattern",
                      f"SSM Agent checks allowedPattern only on text and fails the whole command on a {parameter.type} "
                      "value (\"invalid parameter type\"); drop the pattern (the type already restricts the value)")
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


def _entries(step: Step) -> list[tuple[str, Mapping[str, Any]]]:
    """The input mappings a step runs with and where each is: one for a 2.x step, each mapping of a
    1.x plugin's properties."""
    if not step.legacy:
        return [(inputs_path(step.path), step.inputs)]
    if isinstance(step.properties, list):
        return [(f"{step.path}[{i}]", e) for i, e in enumerate(step.properties) if isinstance(e, Mapping)]
    return [(step.path, step.properties)] if isinstance(step.properties, Mapping) else []


def _lines(run_command: Any) -> list[str]:
    """A literal runCommand's text: its lines, or the one string it is."""
    if isinstance(run_command, str):
        return [run_command]
    return [line for line in run_command if isinstance(line, str)] if isinstance(run_command, list) else []


def _lint_injection(document: Document, step: Step, where: str, inputs: Mapping[str, Any]) -> Iterator[Finding]:
    """{{ X }} pasted into script text: who sets X can run code, unless X is tightly constrained."""
    path = f"{where}.runCommand"
    lines = _lines(input_value(inputs, "runCommand"))
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
        yield Finding("error", action_path(path), "aws:runScript is a legacy EC2Config plugin name SSM Agent does "
                                                 "not know: it fails the step; use aws:runPowerShellScript")
    elif step.action not in COMMAND_ACTIONS:
        yield Finding("error", action_path(path), f"unknown action {step.action!r} for a Command document; "
                                                 "use aws:runShellScript or aws:runPowerShellScript")
    held = _representative(document)
    if step.precondition is not None:
        if not version_at_least(document.schema_version, "2.2"):
            yield Finding("error", f"{path}.precondition", "preconditions need schemaVersion 2.2; SSM Agent "
                                                           "fails the step")
        resolve = precondition_resolver(held)
        try:
            for args in step.precondition.values():
                for arg in args:
                    resolve(arg)
        except AgentCrash as exc:
            yield Finding("error", f"{path}.precondition", f"{exc}: compare a String parameter")
        else:
            _, _, invalid = evaluate_preconditions(step.precondition, resolve, step.platform or "Linux")
            for problem in invalid:
                yield Finding("error", f"{path}.precondition", f"SSM Agent fails this step: {problem}")
        known = step.platform is None or "{{" in step.platform or step.platform.lower() in ("linux", "windows", "macos")
        if not known:
            yield Finding("warning", f"{path}.precondition", f"platformType {step.platform!r} matches no "
                                                             f"instance ({', '.join(PLATFORMS)}): the step never runs")
    yield from _lint_plugin_inputs(step, held)
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
        for where, entry in _entries(step):
            if not has_input(entry, "runCommand"):
                yield Finding("warning", where, "no runCommand: SSM Agent runs an empty script")
            timeout = input_value(entry, "timeoutSeconds")
            literal = timeout is not None and not (isinstance(timeout, str) and "{{" in timeout)
            if literal and not timeout_is_literal_number(timeout):
                yield Finding("warning", f"{where}.timeoutSeconds",
                              f"{timeout!r} is not a number of seconds in {MIN_TIMEOUT_SECONDS}..{MAX_TIMEOUT_SECONDS}; "
                              f"SSM Agent uses {DEFAULT_TIMEOUT_SECONDS} instead")
            yield from _lint_injection(document, step, where, entry)
    for text in _strings(step.properties):
        for reference in _SSM_LIKE.findall(text):
            if not REFERENCE.fullmatch(reference):
                yield Finding("warning", inputs, f"{reference!r} is not a Parameter Store reference SSM Agent "
                                                 "recognises (spaces only around the name, which has letters, digits "
                                                 "and _ . / : - only): it stays literal text")
        if step.action in SCRIPT_ACTIONS and _SECURE_LIKE.search(text):
            yield Finding("warning", inputs, "{{ssm-secure:...}} stays literal text in a script step (SSM Agent "
                                             "resolves SecureString references only for aws:downloadContent); "
                                             "read the parameter in the script instead")
    for text in _strings(step.properties):
        for name in _ANY_PLACEHOLDER.findall(text):
            if name.startswith(("ssm:", "ssm-secure:")) or name in document.parameters:
                continue
            if VALID_NAME.fullmatch(name):
                yield Finding("warning", inputs, f"{{{{ {name} }}}} names no declared parameter; "
                                                           "SSM Agent leaves it as literal text")


def _representative(document: Document) -> dict[str, Any]:
    """A held value of each declared parameter's type (parameters the agent drops keep their default)."""
    return {name: (_SAMPLES.get(parameter.type, f"\x00{name}\x00") if VALID_NAME.fullmatch(name) else parameter.default)
            for name, parameter in document.parameters.items()}


def _lint_plugin_inputs(step: Step, held: Mapping[str, Any]) -> Iterator[Finding]:
    """What SSM Agent fails at run time once parameters are substituted, whatever their values:
    runscript.go decoding the inputs, runPlugin reading a 1.x entry's id, a name it panics on."""
    try:
        properties = replace_parameters(step.properties, held)
    except AgentCrash as exc:
        yield Finding("error", step.path, f"SSM Agent fails the whole command: {exc}")
        return
    entries = property_entries(properties)[0] if step.legacy else [properties]
    listed = step.legacy and isinstance(properties, list)
    for index, entry in enumerate(entries):
        where = f"{step.path}[{index}]" if listed else inputs_path(step.path)
        try:
            if step.legacy and step.action != "aws:cloudWatch":
                check_property(entry)
            if step.action in SCRIPT_ACTIONS:
                decode_script_inputs(entry)
        except PluginInputError as exc:
            error = str(exc).rsplit("\nerror ", 1)[-1]
            hint = next((h for key, h in _DECODE_HINTS if key in error), "fix the input's type")
            yield Finding("error", where, f"SSM Agent fails this step (\"Invalid format in plugin properties\": "
                                          f"{error}); {hint}")


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
