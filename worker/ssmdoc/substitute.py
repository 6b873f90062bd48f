"""SSM Agent's ``{{ Name }}`` substitution and the values it substitutes, as the agent's current
source does it (agent/framework/docparser/parameters/parameters.go ReplaceParameters and
ReplaceParameter; agent/framework/docparser/docparser.go getValidatedParameters).

The values (``held_values``): every parameter the caller sent whose name matches
``[a-zA-Z0-9]+``, typed as the agent receives it (String text, StringList a list, Integer a number,
Boolean true/false, StringMap and MapList items objects: the shapes the agent's parameter
validators describe in their comments), plus the declared ``default`` of every other declared
parameter exactly as written, or null when there is none. So a parameter named ``my_param`` is
replaced by its default (or ``null``), never by the value sent for it.

The substitution (``replace_parameters``), recursively through lists and mappings (keys stay):

- a string that is exactly ``{{ Name }}`` (Go ``\\s`` around a valid name, nothing else, not even a
  trailing newline) becomes the value itself, of its own type: a StringList stays a list, so
  ``runCommand: "{{ commands }}"`` becomes the lines and ``["{{ commands }}"]`` a nested list;
- in any other string each ``{{ Name }}`` becomes the value as text (a string as is, anything else
  as Go JSON), with ``$$`` in that text turned into ``$`` and every other ``$`` kept verbatim, all
  names found in one pass over the original string: a value holding ``{{ Other }}`` stays literal;
- an unknown name, a wrongly cased one, ``{{ssm:...}}`` and ``{{ssm-secure:...}}`` stay as written.

The agent builds each name's pattern from the raw name, so ``.`` in a name matches any character,
and a name that is not a valid pattern, or placeholders that overlap, make it panic
(``AgentCrash``). The lint refuses such names first.

``interpolationType: ENV_VAR`` is not in this source; agents >= 3.3.2746.0 set ``SSM_<Name>``
(documentation, ``parameter_environment``), and ``{{ Name }}`` text substitution still happens: the
user guide's own ENV_VAR example still runs ``echo {{Message}}`` guarded by an allowedPattern, and
its fallback for older agents, ``export SSM_x="{{x}}"``, is plain substitution.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from worker.ssmdoc.golang import go_json
from worker.ssmdoc.model import LIST_TYPES, VALID_NAME, Document, Parameter, scalar_text

GO_SPACE = "[\t\n\f\r ]"  # Go RE2 \s
PLACEHOLDER = re.compile(r"\{\{" + GO_SPACE + r"*([a-zA-Z0-9]+)" + GO_SPACE + r"*\}\}")
_SSM_REFERENCE = re.compile(r"\{\{\s*ssm:[^{}]*\}\}")
_INTEGER = re.compile(r"-?[0-9]+")


class AgentCrash(Exception):
    """Something in the document that makes SSM Agent panic while it substitutes parameters: the
    command fails without running any step."""


def is_ssm_reference(value: str) -> bool:
    """Whether ``value`` is exactly a ``{{ssm:name}}`` Parameter Store reference (the agent resolves it)."""
    return _SSM_REFERENCE.fullmatch(value.strip()) is not None


def agent_text(value: Any) -> str:
    """A value pasted into text (parameters.go convertToString): a string as is, else Go JSON."""
    return value if isinstance(value, str) else go_json(value)


def default_items(parameter: Parameter) -> list[str]:
    """A declared default as SendCommand-shaped values (strings, one per item)."""
    default = parameter.default
    if parameter.type in LIST_TYPES and isinstance(default, list):
        return [item if isinstance(item, str) else agent_text(item) for item in default]
    if isinstance(default, (bool, int, float)) and not isinstance(default, str):
        return [scalar_text(default)]
    return [agent_text(default)]


def with_defaults(document: Document, values: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """``values`` plus the declared default of each parameter not given, as SendCommand-shaped
    values: what a command's parameters are once the service has the document."""
    filled = dict(values)
    for name, parameter in document.parameters.items():
        if name not in filled and not parameter.required:
            filled[name] = default_items(parameter)
    return filled


def _json_or_text(item: str) -> Any:
    try:
        return json.loads(item)
    except (ValueError, RecursionError):
        return item


def _typed(parameter: Parameter | None, items: list[str] | str) -> Any:
    """One sent value as the agent holds it, from its SendCommand strings."""
    if isinstance(items, str):
        return items
    if parameter is None:
        return items[0] if len(items) == 1 else list(items)
    kind = parameter.type
    if kind == "MapList":
        return [_json_or_text(item) for item in items]
    if kind in LIST_TYPES:
        return list(items)
    text = items[0] if items else ""
    if kind == "Integer" and _INTEGER.fullmatch(text):
        return int(text)
    if kind == "Boolean" and text in ("true", "false"):
        return text == "true"
    if kind == "StringMap":
        parsed = _json_or_text(text)
        return parsed if isinstance(parsed, dict) else text
    return text


def held_values(document: Document | None, values: Mapping[str, list[str] | str]) -> dict[str, Any]:
    """The parameter map the agent substitutes from (docparser.go getValidatedParameters).

    Without a ``document`` the types are guessed: a one-item list is a String value.
    """
    declared = document.parameters if document else {}
    held = {name: _typed(declared.get(name), items) for name, items in values.items() if VALID_NAME.fullmatch(name)}
    for name, parameter in declared.items():
        if name not in held:
            held[name] = parameter.default
    return held


@lru_cache(maxsize=512)
def _name_pattern(name: str) -> re.Pattern[str]:
    """The agent's pattern for a name: the raw name inside ``{{\\s*...\\s*}}``, not escaped."""
    try:
        return re.compile(r"\{\{" + GO_SPACE + "*" + name + GO_SPACE + r"*\}\}")
    except re.error as exc:
        raise AgentCrash(f"the parameter name {name!r} is not a valid regular expression ({exc}); SSM Agent "
                         "builds a pattern from every parameter name and panics on this one") from exc


def _is_whole(text: str, name: str) -> bool:
    """parameters.go isSingleParameterString: a valid name, and the text is that placeholder only."""
    return VALID_NAME.fullmatch(name) is not None and _name_pattern(name).fullmatch(text) is not None


def replace_text(text: str, held: Mapping[str, Any]) -> str:
    """parameters.go ReplaceParameter: every placeholder of every name, in one pass over ``text``."""
    found: list[tuple[int, int, str]] = []
    for name, value in held.items():
        pasted = agent_text(value).replace("$$", "$")
        found += [(m.start(), m.end(), pasted) for m in _name_pattern(name).finditer(text)]
    if not found:
        return text
    found.sort(key=lambda token: token[0])
    out: list[str] = []
    position = 0
    for start, end, pasted in found:
        if start < position:
            raise AgentCrash(f"two parameter placeholders overlap in {text[:80]!r}; SSM Agent panics replacing "
                             "them (a parameter name with regular-expression characters)")
        out += [text[position:start], pasted]
        position = end
    out.append(text[position:])
    return "".join(out)


def replace_parameters(value: Any, held: Mapping[str, Any]) -> Any:
    """parameters.go ReplaceParameters: whole placeholders by the value itself, others as text."""
    if isinstance(value, str):
        for name, found in held.items():
            if _is_whole(value, name):
                return found
        return replace_text(value, held)
    if isinstance(value, Mapping):
        return {str(key): replace_parameters(item, held) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [replace_parameters(item, held) for item in value]
    return value


def interpolate(value: Any, values: Mapping[str, list[str] | str], *, document: Document | None = None) -> Any:
    """``value`` with the agent's substitution of SendCommand-shaped ``values`` (see the module
    docstring). Pass ``document`` for exact types and defaults."""
    return replace_parameters(value, held_values(document, values))


def parameter_environment(document: Document, values: Mapping[str, list[str]]) -> dict[str, str]:
    """``SSM_<Name>`` variables for ENV_VAR parameters, as agents >= 3.3.2746.0 set them
    (documentation: schema 2.2, String parameters; the name as declared). The user guide documents
    no rendering for other types, so none is invented for them (the lint says so)."""
    if document.schema_version != "2.2":
        return {}
    held = held_values(document, values)
    return {
        f"SSM_{name}": agent_text(held[name])
        for name, parameter in document.parameters.items()
        if parameter.interpolation_type == "ENV_VAR" and parameter.type in ("String", "")
        and VALID_NAME.fullmatch(name) and held.get(name) is not None
    }
