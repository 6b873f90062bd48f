"""Go's standard library as SSM Agent uses it: JSON text, ``%v`` text, JSON decoding into a struct,
and the number parsing of ``strconv``.

SSM Agent is written in Go, and what a script receives or an error says is often decided by Go's
``encoding/json``, ``fmt`` and ``strconv`` rather than by the agent's own code: a parameter pasted
into text is ``json.Marshal``'s output, a plugin's inputs are decoded into a typed struct whose
first type error is the step's error message, and that message prints the inputs with ``%v``.
This module reproduces those few behaviours for the values a decoded JSON document holds
(str, bool, int/float, None, list, dict), so the runner and the lint can say what the agent says.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_HTML_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def _digits(number: float) -> tuple[str, int]:
    """The shortest decimal digits of ``number`` and the position of the decimal point (strconv's dp)."""
    _, digits, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    text = "".join(str(d) for d in digits)
    return text, len(text) + int(exponent)


def _exponent_form(digits: str, point: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = point - 1
    return f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _plain_form(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def go_number(number: float, *, verb_v: bool = False) -> str:
    """A float64 as json.Marshal writes it, or (``verb_v``) as fmt's ``%v`` does.

    JSON: plain digits unless the exponent is below -6 or 21 and above. ``%v``: ``%g`` with the
    shortest digits, so plain only for exponents -4..5 (``1e+06``, ``123456``).
    """
    if isinstance(number, int) and not isinstance(number, bool):
        number = float(number)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number == 0:
        return "0"
    digits, point = _digits(number)
    sign = "-" if number < 0 else ""
    exp = point - 1
    if verb_v:
        use_exponent = exp < -4 or exp >= 6
    else:
        use_exponent = abs(number) < 1e-6 or abs(number) >= 1e21
    if not use_exponent:
        return sign + _plain_form(digits, point)
    text = _exponent_form(digits, point)
    if not verb_v:
        text = re.sub(r"e([+-])0(\d)$", r"e\1\2", text)  # json writes 1e-07 as 1e-7
    return sign + text


def go_json(value: Any) -> str:
    """json.Marshal's text: compact, map keys sorted, HTML characters and U+2028/9 escaped."""

    def encode(item: Any) -> str:
        if isinstance(item, bool) or item is None or isinstance(item, str):
            return json.dumps(item, ensure_ascii=False)
        if isinstance(item, (int, float)):
            return go_number(item)
        if isinstance(item, Mapping):
            return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{encode(v)}"
                                  for k, v in sorted(item.items(), key=lambda kv: str(kv[0]))) + "}"
        if isinstance(item, (list, tuple)):
            return "[" + ",".join(encode(v) for v in item) + "]"
        return json.dumps(str(item), ensure_ascii=False)

    text = encode(value)
    for char, escaped in _HTML_ESCAPES:
        text = text.replace(char, escaped)
    return text


def go_text(value: Any) -> str:
    """``fmt.Sprintf("%v", value)`` for a decoded JSON value: ``map[k:v]`` with sorted keys, ``[a b]``."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return go_number(value, verb_v=True)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_text(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_text(v) for v in value) + "]"
    return str(value)


def json_kind(value: Any) -> str:
    """The word encoding/json uses for a JSON value in an UnmarshalTypeError."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    return "array"


@dataclass(frozen=True)
class GoField:
    """One field of the Go struct a value is decoded into: its Go name and Go type."""

    name: str
    type: str  # "string" | "[]string" | "map[string]string" | "any"


class GoDecodeError(ValueError):
    """json.Unmarshal's first type error, worded as Go words it."""


def go_decode(value: Any, struct: str, fields: tuple[GoField, ...]) -> dict[str, Any]:
    """Decode a JSON value into a Go struct as json.Unmarshal does (after json.Marshal of ``value``).

    Object keys are matched to field names case-insensitively, in the sorted order json.Marshal
    wrote them; unknown keys are ignored; a JSON null leaves a field at its zero value. Returns the
    decoded fields by Go name; the first type mismatch raises GoDecodeError with Go's message.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise GoDecodeError(f"json: cannot unmarshal {json_kind(value)} into Go value of type {struct}")
    prefix = struct.rsplit(".", 1)[-1] if not struct.startswith("struct {") else ""
    decoded: dict[str, Any] = {}
    first: GoDecodeError | None = None

    def mismatch(item: Any, field: GoField, go_type: str) -> None:
        nonlocal first
        if first is None:
            first = GoDecodeError(f"json: cannot unmarshal {json_kind(item)} into Go struct field "
                                  f"{prefix}.{field.name} of type {go_type}")

    by_name = {f.name.lower(): f for f in fields}
    for key in sorted(value, key=str):
        field = by_name.get(str(key).lower())
        if field is None:
            continue
        item = value[key]
        if item is None:
            continue
        if field.type == "any":
            decoded[field.name] = item
        elif field.type == "string":
            if isinstance(item, str):
                decoded[field.name] = item
            else:
                mismatch(item, field, "string")
        elif field.type == "[]string":
            if not isinstance(item, list):
                mismatch(item, field, "[]string")
                continue
            lines = []
            for line in item:
                if line is not None and not isinstance(line, str):
                    mismatch(line, field, "string")
                lines.append(line if isinstance(line, str) else "")
            decoded[field.name] = lines
        elif field.type == "map[string]string":
            if not isinstance(item, Mapping):
                mismatch(item, field, "map[string]string")
                continue
            entries = {}
            for name, text in item.items():
                if text is not None and not isinstance(text, str):
                    mismatch(text, field, "string")
                entries[str(name)] = text if isinstance(text, str) else ""
            decoded[field.name] = entries
    if first is not None:
        raise first
    return decoded


_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_GO_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+")
_GO_SPECIAL = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
_UNDERSCORE_OK = re.compile(r"[+-]?(?:0[xX]_?[0-9a-fA-F]+(?:_[0-9a-fA-F]+)*(?:\.[0-9a-fA-F]*)?[pP][+-]?[0-9]+"
                            r"|[0-9]+(?:_[0-9]+)*(?:\.[0-9]+(?:_[0-9]+)*)?(?:[eE][+-]?[0-9]+)?)")


def go_atoi(text: str) -> int | None:
    """strconv.Atoi: optional sign and decimal digits, nothing else (no spaces, no underscores)."""
    if not _GO_INT.fullmatch(text):
        return None
    number = int(text)
    return number if -(2 ** 63) <= number < 2 ** 63 else None


def go_parse_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64): decimal, hexadecimal (with a p exponent), inf and nan; ``_``
    only between digits."""
    if "_" in text:
        if not _UNDERSCORE_OK.fullmatch(text):
            return None
        text = text.replace("_", "")
    if _GO_SPECIAL.fullmatch(text):
        return float(text)
    if _GO_HEX.fullmatch(text):
        return float.fromhex(text)
    if _GO_DECIMAL.fullmatch(text):
        return float(text)
    return None
