"""``{{ssm:name}}`` Parameter Store references in a step, resolved as SSM Agent resolves them after
parameter substitution (agent/framework/docparser/parameterstore: parameterstore.go Resolve,
getSSMParameterValues; parser.go replaceSSMParameters, parseStringList).

Pure: the caller passes ``lookup``, which answers GetParameters for a list of names (a name may end
in ``:<version>``) with ``{name: (type, value)}`` for the ones that exist. ``{{ssm-secure:...}}``
is not a reference here: script plugins get it as literal text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from worker.ssmdoc.golang import go_text

Lookup = Callable[[Sequence[str]], Mapping[str, tuple[str, str]]]
REFERENCE = re.compile(r"\{\{ *ssm:[/0-9A-Za-z_.:-]+ *\}\}")  # getValidSSMParamRegexCompiler
PARSE_ERROR = "Encountered error while parsing input - internal error"


class ResolveError(ValueError):
    """The document fails before any step runs, with this text."""


def references(value: Any) -> list[str]:
    """Every reference's text in ``value`` (strings, lists, mapping values), in order, repeated ones once."""
    found: dict[str, None] = {}
    if isinstance(value, str):
        found.update(dict.fromkeys(m.group(0) for m in REFERENCE.finditer(value)))
    elif isinstance(value, Mapping):
        for item in value.values():
            found.update(dict.fromkeys(references(item)))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found.update(dict.fromkeys(references(item)))
    return list(found)


def reference_name(reference: str) -> str:
    """The name GetParameters is asked for: what follows ``ssm:`` (with any ``:version``)."""
    return reference.strip("{} ").split(":", 1)[1]


def _values(found: list[str], lookup: Lookup) -> dict[str, tuple[str, str]]:
    names = list(dict.fromkeys(reference_name(r) for r in found))
    answer = lookup(names)
    missing = [n for n in names if n not in answer]
    if missing:
        raise ResolveError(f"Input contains invalid parameters {go_text(missing)}")
    secure = [n for n in names if answer[n][0] == "SecureString"]
    if secure:
        raise ResolveError(f"Parameters {go_text(secure)} of type SecureString are not supported")
    return {reference: answer[reference_name(reference)] for reference in found}


def _as_list_type(reference: str) -> ResolveError:
    return ResolveError(f"Parameter {reference_name(reference)} of type StringList cannot be used as a String")


def _text(text: str, values: Mapping[str, tuple[str, str]]) -> str:
    for reference, (kind, value) in values.items():
        if reference in text:
            if kind == "StringList":
                raise _as_list_type(reference)
            text = text.replace(reference, value)
    return text


def _string_list(items: list[Any], values: Mapping[str, tuple[str, str]]) -> list[str]:
    """parser.go parseStringList: an item that is exactly a StringList reference becomes its items."""
    if not all(isinstance(item, str) for item in items):
        raise ResolveError(PARSE_ERROR)
    out: list[str] = []
    for item in items:
        whole = next((r for r, (kind, _) in values.items() if kind == "StringList" and item.strip() == r), None)
        if whole is not None:
            out += values[whole][1].split(",")
        else:
            out.append(_text(item, values))
    return out


def _replace(value: Any, values: Mapping[str, tuple[str, str]]) -> Any:
    if isinstance(value, str):
        return _text(value, values)
    if isinstance(value, list):
        if value and isinstance(value[0], str):
            return _string_list(value, values)
        return [_replace(item, values) for item in value]
    if isinstance(value, Mapping):
        return {key: _replace(item, values) for key, item in value.items()}
    return value


def resolve(value: Any, lookup: Lookup) -> Any:
    """``value`` with its references replaced; ResolveError with the agent's text when a name does
    not exist, is a SecureString, or a StringList is used inside a string."""
    found = references(value)
    if not found:
        return value
    return _replace(value, _values(found, lookup))
