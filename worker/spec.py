"""The spec file (abc.json): which instances to run on and with which parameters.

Pure: bytes in, a Spec out; no AWS, no I/O. Two shapes are accepted:

- the seed's: ``{"instance_id": "i-…", "message": "…"}``
- the general one: exactly one of ``instance_id`` | ``instance_ids`` (≤50) | ``targets``
  (``[{"Key": "tag:Role", "Values": ["build"]}]``, ≤5), an optional ``parameters`` object, and any
  other top-level key taken as a parameter too.

Parameter names are matched to the document's declared names by `match_parameters`: an exact
match first, else the same letters ignoring case, ``_``, ``-`` and spaces (``message`` →
``Message``, ``output_bucket`` → ``OutputBucket``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.errors import ParameterError, Problem, SpecError
from worker.ssmdoc import unique_keys

# Whole-string patterns (re.fullmatch), each a subset of botocore's SSM model for SendCommand, whose
# own patterns use \w and $ (any Unicode digit, a trailing newline): tests/test_spec.py checks both.
INSTANCE_ID_PATTERN = r"i-[0-9a-f]{8}|i-[0-9a-f]{17}|mi-[0-9a-f]{17}"
TARGET_KEY_PATTERN = re.compile(r"tag:[\w.:/@-]{1,128}|InstanceIds|resource-groups:Name|tag-key")  # tags: Unicode
MAX_INSTANCE_IDS = 50
MAX_TARGETS = 5
MAX_TARGET_VALUES = 50
MAX_DEPTH = 20  # nested objects/lists: a spec file needs 4 ({"targets": [{"Values": [...]}]})
MAX_INTEGER_DIGITS = 100  # beyond this a number is a string in disguise (and int() slows down)

_INSTANCE_ID = re.compile(INSTANCE_ID_PATTERN)
RESERVED_KEYS = ("instance_id", "instance_ids", "targets", "parameters")
_TARGET_FORMS = ("instance_id", "instance_ids", "targets")


@dataclass(frozen=True)
class Target:
    key: str
    values: tuple[str, ...]

    def api(self) -> dict[str, Any]:
        return {"Key": self.key, "Values": list(self.values)}


@dataclass(frozen=True)
class Spec:
    """What the developer asked for, before the document and the worker's policy are applied."""

    source: str
    instance_ids: tuple[str, ...]
    targets: tuple[Target, ...]
    parameters: Mapping[str, tuple[str, ...]]

    def all_instance_ids(self) -> tuple[str, ...]:
        """Instance ids named directly or through an InstanceIds target (what allow-lists check)."""
        via_targets = tuple(v for t in self.targets if t.key == "InstanceIds" for v in t.values)
        return self.instance_ids + via_targets


def parameter_values(name: str, value: Any, *, source: str) -> tuple[str, ...]:
    """A JSON value as SendCommand parameter strings (lists stay lists, objects become JSON)."""
    def one(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float, str)):
            return str(v)
        if isinstance(v, dict):
            return json.dumps(v, separators=(",", ":"))
        raise SpecError(f"{source}: parameter {name!r} has a value of type {type(v).__name__}; "
                        "use a string, number, boolean, list of those, or an object (for StringMap)")
    if value is None:
        raise SpecError(f"{source}: parameter {name!r} is null; give a value or leave the key out")
    if isinstance(value, list):
        return tuple(one(v) for v in value)
    return (one(value),)


def _instance_ids(value: Any, field: str, source: str) -> tuple[str, ...]:
    ids = [value] if field == "instance_id" else value
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        expected = "a string" if field == "instance_id" else "a non-empty list of strings"
        raise SpecError(f"{source}: {field!r} must be {expected} such as \"i-0123456789abcdef0\"")
    if len(ids) > MAX_INSTANCE_IDS:
        raise SpecError(f"{source}: {field!r} names {len(ids)} instances; SSM accepts at most {MAX_INSTANCE_IDS} "
                        "per command (use targets with a tag for more)")
    for i in ids:
        if not _INSTANCE_ID.fullmatch(i):
            raise SpecError(f"{source}: {field!r}: {i!r} is not an instance id; expected i- followed by 8 or 17 "
                            "lowercase hex digits (0-9, a-f) for EC2, or mi- followed by 17 for a managed node")
    if len(set(ids)) != len(ids):
        raise SpecError(f"{source}: {field!r} names the same instance twice; list each once")
    return tuple(ids)


def _targets(value: Any, source: str) -> tuple[Target, ...]:
    example = '[{"Key": "tag:Role", "Values": ["build"]}]'
    if not isinstance(value, list) or not value:
        raise SpecError(f"{source}: 'targets' must be a non-empty list like {example}")
    if len(value) > MAX_TARGETS:
        raise SpecError(f"{source}: 'targets' has {len(value)} entries; SSM accepts at most {MAX_TARGETS}")
    out = []
    for n, t in enumerate(value):
        where = f"{source}: targets[{n}]"
        if not isinstance(t, dict) or set(t) != {"Key", "Values"}:
            raise SpecError(f"{where} must be an object with exactly Key and Values, like {example}")
        key, values = t["Key"], t["Values"]
        if not isinstance(key, str) or not TARGET_KEY_PATTERN.fullmatch(key):
            raise SpecError(f"{where}.Key {key!r} is not a target key SSM accepts "
                            "(tag:<name>, tag-key, InstanceIds or resource-groups:Name)")
        if (not isinstance(values, list) or not values or len(values) > MAX_TARGET_VALUES
                or not all(isinstance(v, str) and v for v in values)):
            raise SpecError(f"{where}.Values must be a list of 1 to {MAX_TARGET_VALUES} non-empty strings")
        if key == "InstanceIds":
            _instance_ids(values, f"targets[{n}].Values", source)
        out.append(Target(key, tuple(values)))
    return tuple(out)


class _NotJson(ValueError):
    """Python's json module accepts it, JSON (RFC 8259) does not: the message says what and the fix."""


def _constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number (JSON has no NaN or Infinity); write a finite number or a string")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJson(f"the number {text} is too large for a float; write it as a string")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _NotJson(f"a number of {len(text.lstrip('-'))} digits; write it as a string")
    return int(text)


def _too_deep(source: str) -> SpecError:
    return SpecError(f"{source} nests objects or lists more than {MAX_DEPTH} deep; a spec file needs a few levels "
                     "(targets, parameters)")


def _check_text(text: str, source: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SpecError(f"{source} holds a \\u escape of a lone UTF-16 surrogate in {text[:40]!r}; write the "
                        "character itself, or a valid surrogate pair") from None


def _check_values(data: Any, source: str) -> None:
    """No deeper than MAX_DEPTH and no lone surrogate (no UTF-8 for it), walked without recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, source)
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise _too_deep(source)
            if isinstance(value, dict):
                for key in value:
                    _check_text(key, source)
            stack.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))


def parse_spec(raw: bytes, *, source: str = "abc.json") -> Spec:
    """Decode and shape-check the spec file (strict JSON); every error names the field and the fix."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{source} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
    try:
        data = json.loads(text, object_pairs_hook=unique_keys, parse_constant=_constant, parse_float=_float,
                          parse_int=_int)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except _NotJson as exc:
        raise SpecError(f"{source} is not valid JSON: {exc}") from exc
    except ValueError as exc:  # unique_keys
        raise SpecError(f"{source}: {exc} in the same object; keep one") from exc
    except RecursionError:
        raise _too_deep(source) from None
    _check_values(data, source)
    if not isinstance(data, dict):
        raise SpecError(f"{source} must hold a JSON object, like "
                        '{"instance_id": "i-0123456789abcdef0", "message": "hello"}')
    forms = [f for f in _TARGET_FORMS if f in data]
    if len(forms) != 1:
        found = f"it has {' and '.join(forms)}" if forms else "it has none"
        raise SpecError(f"{source} must name where to run with exactly one of instance_id, instance_ids or "
                        f"targets; {found}")
    form = forms[0]
    instance_ids = () if form == "targets" else _instance_ids(data[form], form, source)
    targets = _targets(data["targets"], source) if form == "targets" else ()

    params: dict[str, tuple[str, ...]] = {}
    nested = data.get("parameters", {})
    if not isinstance(nested, dict):
        raise SpecError(f"{source}: 'parameters' must be an object of name to value, like "
                        '{"Message": "hello"}')
    top_level = {k: v for k, v in data.items() if k not in RESERVED_KEYS}
    for name in nested.keys() & top_level.keys():
        raise SpecError(f"{source}: parameter {name!r} is given both at the top level and in 'parameters'; keep one")
    for name, value in {**top_level, **nested}.items():
        params[name] = parameter_values(name, value, source=source)
    return Spec(source=source, instance_ids=instance_ids, targets=targets, parameters=params)


def fold_name(name: str) -> str:
    return re.sub(r"[\s_-]", "", name).lower()


def match_parameters(spec: Spec, declared: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Map the spec's parameter names onto the document's declared names (rule in the module doc)."""
    by_fold: dict[str, list[str]] = {}
    for d in declared:
        by_fold.setdefault(fold_name(d), []).append(d)
    matched: dict[str, tuple[str, ...]] = {}
    origin: dict[str, str] = {}
    problems: list[Problem] = []
    names = ", ".join(declared) or "(none)"
    for name, values in spec.parameters.items():
        target = name if name in declared else None
        if target is None:
            candidates = by_fold.get(fold_name(name), [])
            if len(candidates) > 1:
                problems.append(Problem(name, "name matching", f"matches {' and '.join(candidates)}; use the exact name"))
                continue
            target = candidates[0] if candidates else None
        if target is None:
            problems.append(Problem(name, "declared parameters",
                                    f"the document declares no such parameter; it declares: {names}"))
            continue
        if target in matched:
            problems.append(Problem(name, "name matching", f"sets {target} which {origin[target]!r} already sets"))
            continue
        matched[target] = values
        origin[target] = name
    if problems:
        raise ParameterError(problems, heading=f"{spec.source} parameters do not match the document")
    return matched
