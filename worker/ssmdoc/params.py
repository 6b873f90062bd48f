"""Parameter values against a document's declarations, before anything is sent.

SSM refuses a SendCommand whose values break the document's rules, and the agent checks them again;
the worker checks first so a pipeline developer gets every problem at once, with the rule and the
fix, instead of one opaque InvalidParameters. Where the API and the agent count differently (chars
vs UTF-8 bytes, a search vs a whole match) the stricter reading decides, so what passes here passes
both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from worker.errors import ParameterError, Problem
from worker.ssmdoc.model import LIST_TYPES, Document, Parameter
from worker.ssmdoc.regex import pattern_matches
from worker.ssmdoc.substitute import default_items, is_ssm_reference

_INTEGER = re.compile(r"-?[0-9]+")


def _quote(value: str, limit: int = 40) -> str:
    """A short, escaped prefix of a value for messages (never the whole of a long value)."""
    out = []
    size = 0
    for char in value:
        piece = json.dumps(char, ensure_ascii=False)[1:-1]
        if size + len(piece) > limit:
            return '"' + "".join(out) + '…"'
        out.append(piece)
        size += len(piece)
    return '"' + "".join(out) + '"'


def _check_value(parameter: Parameter, field_name: str, value: str) -> list[Problem]:
    """The per-value rules: type, allowedValues, allowedPattern, minChars/maxChars."""
    type_ = parameter.type
    if type_ == "Integer" and not _INTEGER.fullmatch(value):
        return [Problem(field_name, "type Integer", f"value {_quote(value)} is not a whole number")]
    if type_ == "Boolean" and value not in ("true", "false"):
        return [Problem(field_name, "type Boolean", f"value {_quote(value)} is not true or false")]
    if type_ in ("StringMap", "MapList"):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):  # a spec value nested deep enough to exhaust the parser
            parsed = None
        if not isinstance(parsed, dict):
            return [Problem(field_name, f"type {type_}", f"value {_quote(value)} is not a JSON object")]
    if is_ssm_reference(value):
        return []  # a Parameter Store reference: the agent checks the resolved value
    problems = []
    if parameter.allowed_values and value not in parameter.allowed_values:
        problems.append(Problem(field_name, f"allowedValues [{', '.join(parameter.allowed_values)}]",
                                f"value {_quote(value)} is not one of the allowed values"))
    if parameter.allowed_pattern:
        rule = f"allowedPattern {parameter.allowed_pattern}"
        try:
            if not pattern_matches(parameter.allowed_pattern, value):
                problems.append(Problem(field_name, rule, f"value {_quote(value)} does not match the pattern in full"))
        except re.error as exc:
            problems.append(Problem(field_name, rule, f"the document's pattern is not a valid regular expression "
                                                      f"({exc}); fix the document"))
    if type_ not in ("Integer", "Boolean"):
        if parameter.min_chars is not None and len(value) < parameter.min_chars:
            problems.append(Problem(field_name, f"minChars {parameter.min_chars}",
                                    f"value {_quote(value)} has {len(value)} characters, fewer than "
                                    f"{parameter.min_chars}"))
        # The agent counts UTF-8 bytes (Go len), the API characters: the stricter count decides.
        size = len(value.encode("utf-8"))
        if parameter.max_chars is not None and size > parameter.max_chars:
            unit = "characters" if size == len(value) else "bytes in UTF-8 (SSM Agent counts bytes)"
            problems.append(Problem(field_name, f"maxChars {parameter.max_chars}",
                                    f"value {_quote(value)} has {size} {unit}, more than {parameter.max_chars}"))
    return problems


def check_values(parameter: Parameter, items: Sequence[str]) -> list[Problem]:
    """Every rule ``parameter`` declares, applied to its values as given (one per item)."""
    name = parameter.name
    if any(not isinstance(item, str) for item in items):
        return [Problem(name, f"type {parameter.type or 'String'}", "values must be strings")]
    listed = parameter.type in LIST_TYPES
    if not listed and len(items) != 1:
        return [Problem(name, f"type {parameter.type or 'String'}", f"takes exactly one value, got {len(items)}")]
    problems = []
    if listed and parameter.min_items is not None and len(items) < parameter.min_items:
        problems.append(Problem(name, f"minItems {parameter.min_items}",
                                f"{len(items)} item(s) given, fewer than {parameter.min_items}"))
    if listed and parameter.max_items is not None and len(items) > parameter.max_items:
        problems.append(Problem(name, f"maxItems {parameter.max_items}",
                                f"{len(items)} items given, more than {parameter.max_items}"))
    for index, item in enumerate(items):
        problems += _check_value(parameter, f"{name}[{index}]" if listed else name, item)
    return problems


def validate_parameters(document: Document, values: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Check SendCommand-shaped ``values`` against the document; every problem at once.

    Returns every declared parameter in declaration order, defaults filled as strings (lists as
    items, StringMap/MapList as JSON text). A value that is exactly a ``{{ssm:name}}`` reference is
    not checked against allowedValues/allowedPattern/chars: SSM checks the resolved value.
    """
    declared = document.parameters
    problems = [
        Problem(name, "declared parameters",
                f"not declared by the document; it declares {', '.join(declared) or 'no parameters'}")
        for name in values if name not in declared
    ]
    result: dict[str, list[str]] = {}
    for name, parameter in declared.items():
        if name in values:
            raw = values[name]
            items = [raw] if isinstance(raw, str) else list(raw)
            problems += check_values(parameter, items)
            result[name] = items
        elif parameter.required:
            problems.append(Problem(name, "required", "missing: the document declares no default, so a value "
                                                      "must be given"))
        else:
            result[name] = default_items(parameter)
    if problems:
        raise ParameterError(problems)
    return result
