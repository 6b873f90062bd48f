"""SendCommand's Parameters against the document's declarations: the emulator's own reading of SSM's rules.

The worker checks parameter values before it sends them (worker.ssmdoc.params). If the emulator
judged requests with that same code, a mistake in it would pass on both sides and no test could
see it. So this is a separate, deliberately small reading of the rules the SSM user guide gives for
Command document parameters, sharing no code with the worker's validator. The emulator still
loads documents and runs steps with worker.ssmdoc; only the judgement of the worker's request is
its own. botocore's model has already checked the request's shape (a map of names to lists of
strings; wire.validate_request) before this runs.

The API is the judge here, not the agent, and the API is Java, so:

- allowedPattern must match the whole value, as Java's ``Matcher.matches()`` does, with ``\\d``,
  ``\\w`` and ``\\b`` meaning ASCII only (Java's default). A pattern Python cannot compile is a
  limit of this emulator, not a verdict on the request: it raises and the emulator reports a bug.
- minChars/maxChars count characters as Java's ``String.length()`` does: UTF-16 code units.

Not checked: the text of Integer, Boolean, StringMap and MapList values, and ``{{ssm:...}}``
Parameter Store references (the emulator has no Parameter Store; such a value is checked as written).
A parameter left out takes its default when the command runs (the runner fills it in, as the agent
does), so the request itself is not changed here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

from worker.local.wire import ApiError
from worker.ssmdoc import Document, Parameter

_LISTS = ("StringList", "MapList")  # the document parameter types whose value is a list


class PatternNotEmulated(NotImplementedError):
    """The document's allowedPattern uses syntax Python's re does not read: the emulator cannot judge it."""


@functools.lru_cache(maxsize=256)
def _java_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.ASCII)
    except re.error as exc:
        raise PatternNotEmulated(f"allowedPattern {pattern!r} is not readable by Python re ({exc}); the emulator "
                                 "cannot check it, so use a pattern Java and Python read alike in tests") from exc


def _java_length(value: str) -> int:
    return len(value.encode("utf-16-le")) // 2


def _value_problems(name: str, parameter: Parameter, value: str) -> list[str]:
    problems = []
    if parameter.allowed_values and value not in parameter.allowed_values:
        problems.append(f"{name} is not one of allowedValues [{', '.join(parameter.allowed_values)}]")
    if parameter.allowed_pattern and not _java_pattern(parameter.allowed_pattern).fullmatch(value):
        problems.append(f"{name} does not match allowedPattern {parameter.allowed_pattern} (the whole value must)")
    length = _java_length(value)
    if parameter.min_chars is not None and length < parameter.min_chars:
        problems.append(f"{name} has {length} characters, fewer than minChars {parameter.min_chars}")
    if parameter.max_chars is not None and length > parameter.max_chars:
        problems.append(f"{name} has {length} characters, more than maxChars {parameter.max_chars}")
    return problems


def _parameter_problems(name: str, parameter: Parameter, values: Sequence[str]) -> list[str]:
    if parameter.type not in _LISTS:
        if len(values) != 1:
            kind = parameter.type or "String"
            return [f"{name} is a {kind} parameter and takes exactly one value, got {len(values)}"]
        return _value_problems(name, parameter, values[0])
    problems = []
    if parameter.min_items is not None and len(values) < parameter.min_items:
        problems.append(f"{name} has {len(values)} items, fewer than minItems {parameter.min_items}")
    if parameter.max_items is not None and len(values) > parameter.max_items:
        problems.append(f"{name} has {len(values)} items, more than maxItems {parameter.max_items}")
    for index, value in enumerate(values):
        problems += _value_problems(f"{name} item {index + 1}", parameter, value)
    return problems


def check_send_parameters(document_name: str, document: Document, given: Mapping[str, Sequence[str]]) -> None:
    """Raise InvalidParameters listing every way ``given`` breaks the document's parameter declarations."""
    declared = document.parameters
    problems = [f"{name} is not a parameter of the document (it declares {', '.join(declared) or 'none'})"
                for name in given if name not in declared]
    for name, parameter in declared.items():
        if name in given:
            problems += _parameter_problems(name, parameter, given[name])
        elif parameter.default is None:
            problems.append(f"{name} is required (the document declares no default) and was not given")
    if problems:
        raise ApiError("InvalidParameters", f"Invalid parameters for document {document_name}: {'; '.join(problems)}")
