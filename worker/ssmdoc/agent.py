"""What SSM Agent does with a document and its parameter values: substitution, defaults, ENV_VAR,
timeouts, preconditions, and whether a step runs, is skipped or fails.

The worker predicts a run (dry-run, the plan) and the local runner imitates one from the same
functions, so the agent's behaviour is written down once. Each function names the amazon-ssm-agent
source file (aws/amazon-ssm-agent) it follows.

``interpolationType: ENV_VAR`` (agent >= 3.3.2746.0) adds an ``SSM_<Name>`` environment variable; it
does not stop ``{{ Name }}`` text substitution. The user guide's own ENV_VAR example still runs
``echo {{Message}}`` and guards it with ``allowedPattern: ^[^"]*$`` ("allowedPattern is technically
not necessary in SSM documents that don't use double braces"), and its troubleshooting page's
fallback for old agents, ``export SSM_x="{{x}}"``, is plain substitution. So ``interpolate`` still
substitutes ENV_VAR parameters, and only scripts that read ``"$SSM_<Name>"`` are injection-safe.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from worker.ssmdoc.model import (
    COMMAND_ACTIONS,
    DEFAULT_TIMEOUT_SECONDS,
    LIST_TYPES,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    VALID_NAME,
    Document,
    Parameter,
    Step,
    scalar_text,
)

_GO_SPACE = "[\t\n\f\r ]"  # Go RE2 \s
PLACEHOLDER = re.compile(r"\{\{" + _GO_SPACE + r"*([a-zA-Z0-9]+)" + _GO_SPACE + r"*\}\}")
_SSM_REFERENCE = re.compile(r"\{\{\s*ssm:[^{}]*\}\}")
_SECURE_REFERENCE = re.compile(r"\{\{\s*ssm-secure:[^{}]*\}\}")


def is_ssm_reference(value: str) -> bool:
    """Whether ``value`` is exactly a ``{{ssm:name}}`` Parameter Store reference (the agent resolves it)."""
    return _SSM_REFERENCE.fullmatch(value.strip()) is not None


def _go_json(value: Any) -> str:
    """json.Marshal's text: compact, sorted keys, and <, >, &, U+2028/9 escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _agent_text(value: Any) -> str:
    """How the agent renders a value pasted into text (parameters.go convertToString)."""
    return value if isinstance(value, str) else _go_json(value)


def default_items(parameter: Parameter) -> list[str]:
    """A declared default as SendCommand-shaped values (strings, one per item)."""
    default = parameter.default
    if parameter.type in LIST_TYPES and isinstance(default, list):
        return [item if isinstance(item, str) else _agent_text(item) for item in default]
    if isinstance(default, (bool, int, float)) and not isinstance(default, str):
        return [scalar_text(default)]
    return [_agent_text(default)]


def with_defaults(document: Document, values: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """``values`` plus the declared default of each parameter not given: SendCommand carries only
    what the caller set, and the agent fills in the rest from the document. A required parameter
    that is missing stays missing (its ``{{ }}`` stays literal text)."""
    filled = dict(values)
    for name, parameter in document.parameters.items():
        if name not in filled and not parameter.required:
            filled[name] = default_items(parameter)
    return filled


def typed_values(values: Mapping[str, Any], document: Document | None) -> dict[str, Any]:
    """Values as the agent holds them: String -> str, StringList -> list, MapList -> list of objects."""
    typed: dict[str, Any] = {}
    for name, value in values.items():
        if not VALID_NAME.fullmatch(name):
            continue  # parameters.ValidParameters drops these: their {{ }} stays literal text
        parameter = document.parameters.get(name) if document else None
        if isinstance(value, str):
            typed[name] = value
        elif parameter is None:
            typed[name] = value[0] if len(value) == 1 else list(value)
        elif parameter.type == "MapList":
            typed[name] = [_json_or_text(item) for item in value]
        elif parameter.type in LIST_TYPES:
            typed[name] = list(value)
        else:
            typed[name] = value[0] if value else ""
    return typed


def _json_or_text(item: str) -> Any:
    try:
        return json.loads(item)
    except ValueError:
        return item


def _go_expand(template: str, match: str) -> str:
    """Go's Regexp.Expand on a replacement, as ReplaceAllString applies it to the parameter value.

    The agent's pattern has no groups, so ``$name``/``${name}`` become empty, ``$0`` the placeholder
    itself, ``$$`` a single ``$``, and a ``$`` not followed by a name stays as is.
    """
    out = []
    i = 0
    while True:
        dollar = template.find("$", i)
        if dollar == -1:
            out.append(template[i:])
            return "".join(out)
        out.append(template[i:dollar])
        rest = template[dollar + 1:]
        if rest.startswith("$"):
            out.append("$")
            i = dollar + 2
            continue
        brace = rest.startswith("{")
        body = rest[1:] if brace else rest
        length = 0
        while length < len(body) and (body[length].isalpha() or body[length].isdecimal() or body[length] == "_"):
            length += 1
        if length == 0 or (brace and body[length:length + 1] != "}"):
            out.append("$")
            i = dollar + 1
            continue
        name = body[:length]
        if name == "0":
            out.append(match)
        i = dollar + 1 + length + (2 if brace else 0)


def substitute(value: Any, typed: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in typed:
            found = typed[whole.group(1)]
            return list(found) if isinstance(found, list) else found

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            return _go_expand(_agent_text(typed[name]), match.group(0)) if name in typed else match.group(0)

        return PLACEHOLDER.sub(replace, value)
    if isinstance(value, Mapping):
        return {key: substitute(item, typed) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [substitute(item, typed) for item in value]
    return value


def interpolate(value: Any, values: Mapping[str, list[str]], *, document: Document | None = None) -> Any:
    """SSM Agent's ``{{ Name }}`` substitution, applied recursively (agent/framework/docparser/parameters/
    parameters.go ReplaceParameters).

    - A string that is exactly ``{{ Name }}`` (Go ``\\s`` around the name) becomes the value itself:
      a StringList stays a list, so ``runCommand: "{{ commands }}"`` expands to the lines.
    - Elsewhere each ``{{ Name }}`` is replaced by the value as text (lists as compact JSON), through
      Go's ``ReplaceAllString``: ``$$`` in a value becomes ``$``, ``$word``/``${word}`` vanish and
      ``$0`` becomes the placeholder; ``$(``, ``$ `` and a trailing ``$`` stay as they are.
    - Only names matching ``[a-zA-Z0-9]+`` are substituted; other and unknown names stay literal.
    - ENV_VAR parameters are substituted too (see the module docstring).
    - ``{{ssm:name}}``/``{{ssm-secure:name}}`` Parameter Store references are left in place: the caller
      resolves them (the agent does, after this substitution).
    - One pass: a value containing ``{{ Other }}`` is not substituted again. The agent replaces names
      one after another in Go map order, so it may or may not; this module never does.

    Pass ``document`` for exact types; without it a one-item list is taken as a String value.
    """
    return substitute(value, typed_values(values, document))


def environment(document: Document, values: Mapping[str, list[str]]) -> dict[str, str]:
    """``SSM_<Name>`` variables for ENV_VAR parameters, as agents >= 3.3.2746.0 set them (schema 2.2 only).

    The user guide documents them for String parameters; other types get the text ``interpolate``
    would paste (JSON for lists), which no source confirms. The name is the parameter name as written.
    """
    if document.schema_version != "2.2":
        return {}
    typed = typed_values(values, document)
    return {
        f"SSM_{name}": _agent_text(typed[name])
        for name, parameter in document.parameters.items()
        if parameter.interpolation_type == "ENV_VAR" and name in typed
    }


def script_lines(run_command: Any) -> list[str]:
    """runCommand flattened to script lines (pluginutil.go ParseRunCommand: nested lists, non-strings dropped)."""
    if isinstance(run_command, str):
        return [run_command]
    if isinstance(run_command, (list, tuple)):
        return [line for item in run_command for line in script_lines(item)]
    return []


def whole_seconds(value: Any) -> int | None:
    """A number, or text holding one, as whole seconds (fractions cut off, like Go's int(f))."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip()) if value.strip() == value else None
        except ValueError:
            number = None
    return int(number) if number is not None and math.isfinite(number) else None


def execution_timeout(value: Any) -> int:
    """A step's timeoutSeconds as the agent reads it (pluginutil.go ValidateExecutionTimeout).

    A number, or text holding one; anything else, and anything outside 5..172800, becomes the
    default 3600 (not the nearest bound).
    """
    seconds = whole_seconds(value)
    if seconds is None or not MIN_TIMEOUT_SECONDS <= seconds <= MAX_TIMEOUT_SECONDS:
        return DEFAULT_TIMEOUT_SECONDS
    return seconds


def version_at_least(version: str, minimum: str) -> bool:
    try:
        have = [int(part) for part in version.split(".")]
        want = [int(part) for part in minimum.split(".")]
    except ValueError:
        return False
    return have >= want


def evaluate_preconditions(precondition: Mapping[str, tuple[str, ...]], resolve: Callable[[str], str],
              platform: str) -> tuple[bool, list[str], list[str]]:
    """runpluginutil.go evaluatePreconditions: (allowed, every message in agent order, the invalid ones)."""
    allowed = True
    messages: list[str] = []
    invalid: list[str] = []

    def bad(text: str) -> None:
        messages.append(text)
        invalid.append(text)

    for operator, args in precondition.items():
        if operator != "StringEquals":
            bad(f'unrecognized operator: "{operator}"')
            continue
        if len(args) != 2:
            bad(f'"{operator}": operator accepts exactly 2 arguments')
            continue
        first, second = args
        if first == second:
            bad(f'"{operator}": [{first} {second}]' if first == "platformType"
                else f"\"{operator}\": operator's arguments can't be identical")
        elif _SSM_REFERENCE.search(first) or _SSM_REFERENCE.search(second):
            bad(f"\"{operator}\": operator's arguments can't contain SSM parameters")
        elif _SECURE_REFERENCE.search(first) or _SECURE_REFERENCE.search(second):
            bad(f"\"{operator}\": operator's arguments can't contain secure SSM parameters")
        elif "platformType" in (first, second):
            wanted = second if first == "platformType" else first
            if wanted.lower() != resolve(wanted).lower():
                bad(f'"{operator}": the second argument for the platformType variable can\'t contain '
                    "document parameters")
            elif platform.lower() != wanted.lower():
                allowed = False
                messages.append(f'"{operator}": [{first}, {second}]')
        elif resolve(first) == first and resolve(second) == second:
            bad(f"\"{operator}\": at least one of operator's arguments must contain a valid document parameter")
        elif resolve(first) != resolve(second):
            allowed = False
            messages.append(f'"{operator}": [{first}, {second}]')
    return allowed, messages, invalid


def step_outcome(document: Document, step: Step, values: Mapping[str, list[str]],
                 platform: str = "Linux") -> tuple[str, str]:
    """Whether the agent runs, skips or fails ``step`` on ``platform``, with the agent's message.

    Follows runpluginutil.go getStepExecutionOperation: preconditions only from schema 2.2; an
    unknown action fails; aws:runShellScript is skipped on Windows (2.2) or fails (older schemas).
    Returns ("run" | "skip" | "fail", message).
    """
    name, action = step.name, step.action
    known = action in COMMAND_ACTIONS
    supported = known and not (action == "aws:runShellScript" and platform == "Windows")
    unknown = (f"Plugin with name {action} is not supported by this version of ssm agent, please update to "
               f"latest version. Step name: {name}")
    unsupported = f"Step execution skipped due to unsupported plugin: {action}. Step name: {name}"
    if not version_at_least(document.schema_version, "2.2"):
        if not known:
            return "fail", unknown
        if not supported:
            return "fail", f"Plugin with name {action} is not supported in current platform. Step name: {name}"
        if step.precondition:
            return "fail", f"Precondition is not supported for document schema version prior to 2.2. Step name: {name}"
        return "run", ""
    if not step.precondition:
        if not known:
            return "fail", unknown
        return ("run", "") if supported else ("skip", unsupported)
    typed = typed_values(values, document)
    allowed, messages, invalid = evaluate_preconditions(step.precondition, lambda arg: str(substitute(arg, typed)), platform)
    if allowed and not known:
        return "fail", unknown
    if not supported:
        return "skip", unsupported
    if not allowed:
        return "skip", (f"Step execution skipped due to unsatisfied preconditions: '{', '.join(messages)}'. "
                        f"Step name: {name}")
    if invalid:
        return "fail", (f"Unrecognized precondition(s): '{', '.join(invalid)}', please update agent to latest "
                        f"version. Step name: {name}")
    return "run", ""
