"""Redaction: no secret leaves the worker in a log line, a result call, an output artifact or the journal.

`scrub` applies three rules to a value (a string, or mappings and lists of them):

- by key: a mapping entry whose key names a secret (secret, password, credential, session or
  security token, access key, signature, private key) keeps its key and loses its value;
- by pattern: signed-URL and header parameters (``X-Amz-Signature``, ``X-Amz-Credential``,
  ``X-Amz-Security-Token``, ``Signature``, ``Credential``, ``AWSAccessKeyId``), raw, percent-encoded
  (``%3D``/``%26``) or encoded twice; ``NAME=value`` and ``"NAME": "value"`` where NAME names a
  secret (``AWS_SECRET_ACCESS_KEY=…``); AWS access key ids and STS session tokens by their shape;
- by value: the current job's secret strings (its artifact credentials, the signature of its
  presigned ArtifactUrl, the values of the action configuration properties the worker does not
  read, which is where CodePipeline delivers ``secret`` properties), each also percent-encoded,
  encoded twice and JSON-escaped. SSM cuts long output and marks the cut; a secret's first
  characters left before such a mark, or at the very end of the text, are redacted too.

The job's secrets live in a contextvar: `bind` sets them when the job starts, in the job's own
context copy (see daemon), so they end with it, and every log line and result call made in that
context is scrubbed of them. Values shorter than MIN_SECRET are not redacted by value (too common
to tell from ordinary text). Only the secret substrings are replaced, so a failure message keeps
the command's output around them. `scrub` also turns lone surrogates into U+FFFD, so whatever the
worker writes can be encoded as UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

REDACTED = "[redacted]"
MIN_SECRET = 8

_SECRET_WORDS = (r"secret|passw(?:or)?d|credential|session_?token|security_?token|access_?key|signature"
                 r"|private_?key")
_SECRET_KEY = re.compile(_SECRET_WORDS, re.IGNORECASE)
_PARAMS = r"X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|Credential|AWSAccessKeyId"
_SIGNED_PARAM = re.compile(
    rf"(?:(?<![A-Za-z0-9_-])|(?<=%26)|(?<=%3F)|(?<=%2526)|(?<=%253F))(?P<name>{_PARAMS})(?P<sep>=|%3D|%253D|:[ \t]*)"
    r"(?P<value>(?:(?!%26|%2526)[^&\s\"'<>,;\\])+)", re.IGNORECASE)
# Any NAME=value pair; `_assignment` redacts those whose name says secret (a linear-time match, whatever the text).
_ASSIGNMENT = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<name>[A-Za-z0-9_.-]{1,128})"
    r"(?P<sep>[ \t]*=[ \t]*|\"[ \t]*:[ \t]*\"|'[ \t]*:[ \t]*')(?P<value>[^\s\"'&,;]+)")
_SHAPES = re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"  # access key ids
                     r"|(?:IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz)[A-Za-z0-9+/=%]{16,}")  # STS session tokens
_SURROGATE = re.compile("[\ud800-\udfff]")
# SSM Agent's marks where it cut stdout/stderr (24,000/8,000 characters) and a step's Output (2,500).
_CUT_MARK = re.compile(r"--output truncated--|\n---Output truncated---|\n---Error truncated----|\Z")
_URL_SECRET_PARAMS = frozenset(p.lower() for p in _PARAMS.split("|"))


def spellings(secret: str) -> set[str]:
    """The forms a secret takes in text: raw, percent-encoded (either hex case), encoded twice, JSON-escaped."""
    encoded = quote(secret, safe="")
    forms = {secret, encoded, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded),
             quote(encoded, safe=""), secret.replace("/", "\\/")}
    return {f for f in forms if len(f) >= MIN_SECRET}


@dataclass(frozen=True)
class Secrets:
    """A job's secret strings, with one pattern matching any spelling of any of them."""

    values: frozenset[str]
    forms: tuple[str, ...]
    pattern: re.Pattern[str] | None

    @classmethod
    def of(cls, values: Iterable[str]) -> Secrets:
        kept = frozenset(v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET)
        forms = tuple(sorted({f for v in kept for f in spellings(v)}, key=len, reverse=True))
        pattern = re.compile("|".join(map(re.escape, forms))) if forms else None
        return cls(kept, forms, pattern)


_NONE = Secrets.of(())
_JOB: ContextVar[Secrets | None] = ContextVar("job_secrets", default=None)


def bind(values: Iterable[str]) -> None:
    """Make these the current job's secrets (in the job's own context)."""
    _JOB.set(Secrets.of(values))


def add(values: Iterable[str]) -> None:
    """Add secrets the job made itself (the presigned ArtifactUrl's signature)."""
    _JOB.set(Secrets.of(current() | set(values)))


def current() -> frozenset[str]:
    """The current job's secrets (none outside a job)."""
    return (_JOB.get() or _NONE).values


def url_secrets(url: str) -> list[str]:
    """The signature, credential (and its access key id) and token values in a signed URL's query."""
    found = [(k.lower(), v) for k, v in parse_qsl(urlsplit(url).query) if k.lower() in _URL_SECRET_PARAMS]
    return [v for _, v in found] + [v.split("/", 1)[0] for k, v in found if k.endswith("credential")]


def _cut_prefixes(text: str, forms: tuple[str, ...]) -> str:
    """Redact a secret's first characters left where SSM cut the output (or at the end of the text)."""
    for mark in reversed(list(_CUT_MARK.finditer(text))):
        end = mark.start()
        for form in forms:
            head = form[:MIN_SECRET]
            start = text.find(head, max(0, end - len(form) + 1), end)
            while start != -1 and not form.startswith(text[start:end]):
                start = text.find(head, start + 1, end)
            if start != -1:
                text = text[:start] + REDACTED + text[end:]
                break
    return text


def _assignment(match: re.Match[str]) -> str:
    return f"{match['name']}{match['sep']}{REDACTED}" if _SECRET_KEY.search(match["name"]) else match[0]


def scrub_text(text: str) -> str:
    """`text` with every secret substring replaced by REDACTED and lone surrogates by U+FFFD."""
    text = _SURROGATE.sub("\ufffd", text)
    secrets = _JOB.get() or _NONE
    if secrets.pattern is not None:
        text = _cut_prefixes(secrets.pattern.sub(REDACTED, text), secrets.forms)
    text = _SIGNED_PARAM.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)
    text = _ASSIGNMENT.sub(_assignment, text)
    return _SHAPES.sub(REDACTED, text)


def scrub(value: Any) -> Any:
    """A copy of `value` safe to write out: see the module docs for the rules."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value
