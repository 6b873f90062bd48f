"""The worker's own configuration: one YAML file, checked completely at start-up.

Every key is declared once in `_KEYS` with its parser; an unknown key or a value of the
wrong type stops the daemon before it polls, with the key named. The environment is read here
too, once: `state_dir` defaults to systemd's $STATE_DIRECTORY, so `run` and `health` agree on it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from worker.errors import ConfigFileError

CATEGORIES = ("Source", "Build", "Deploy", "Test", "Invoke", "Approval", "Compute")
LOG_FORMATS = ("auto", "json", "console")
_PROVIDER = re.compile(r"^[0-9A-Za-z_-]{1,35}$")
_VERSION = re.compile(r"^[0-9A-Za-z_-]{1,9}$")
_QUERY_VALUE = re.compile(r"^[a-zA-Z0-9_-]{1,20}$")


@dataclass(frozen=True)
class ActionType:
    """The custom action type this worker serves (owner is always Custom)."""

    category: str
    provider: str
    version: str

    def api(self) -> dict[str, str]:
        return {"category": self.category, "owner": "Custom", "provider": self.provider, "version": self.version}


@dataclass(frozen=True)
class Config:
    action_type: ActionType
    allowed_documents: tuple[str, ...]
    allowed_instance_ids: tuple[str, ...]
    allowed_targets: tuple[str, ...] = ()
    query_param: Mapping[str, str] = field(default_factory=dict)
    region: str | None = None
    concurrency: int = 4
    parameters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    state_dir: str | None = None
    log_format: str = "auto"
    poll_interval_min: float = 1.0
    poll_interval_max: float = 20.0
    hold_time: float = 30.0
    invocation_grace: float = 60.0
    spec_max_bytes: int = 1024 * 1024
    delivery_timeout: int = 600
    transient_retries: int = 3
    artifact_url_expiry: int = 3600
    output_s3_bucket: str | None = None
    output_s3_key_prefix: str | None = None
    cloudwatch_log_group: str | None = None


def _fail(key: str, expected: str, value: Any) -> ConfigFileError:
    return ConfigFileError(f"config key {key!r}: expected {expected}, got {value!r}")


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(key, "a non-empty string", value)
    return value


def _int(lo: int, hi: int) -> Callable[[str, Any], int]:
    def parse(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise _fail(key, f"a whole number from {lo} to {hi}", value)
        return value

    return parse


def _seconds(lo: float, hi: float) -> Callable[[str, Any], float]:
    def parse(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise _fail(key, f"a number of seconds from {lo:g} to {hi:g}", value)
        return float(value)

    return parse


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def parse(key: str, value: Any) -> str:
        if value not in options:
            raise _fail(key, "one of " + ", ".join(options), value)
        return value

    return parse


def _pattern(regex: str, expected: str) -> Callable[[str, Any], str]:
    compiled = re.compile(regex)

    def parse(key: str, value: Any) -> str:
        if not isinstance(value, str) or not compiled.match(value):
            raise _fail(key, expected, value)
        return value

    return parse


def _patterns(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(key, "a list of fnmatch patterns (strings)", value)
    return tuple(value)


def _action_type(key: str, value: Any) -> ActionType:
    if not isinstance(value, dict):
        raise _fail(key, "a mapping with category, provider and version", value)
    unknown = set(value) - {"category", "provider", "version"}
    if unknown:
        raise ConfigFileError(f"config key {key!r}: unknown key(s) {', '.join(sorted(unknown))}")
    version = value.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    checks = {
        "category": (value.get("category"), lambda v: v in CATEGORIES, "one of " + ", ".join(CATEGORIES)),
        "provider": (value.get("provider"), lambda v: isinstance(v, str) and _PROVIDER.match(v),
                     "1-35 characters [0-9A-Za-z_-]"),
        "version": (version, lambda v: isinstance(v, str) and _VERSION.match(v), "1-9 characters [0-9A-Za-z_-]"),
    }
    for name, (v, ok, expected) in checks.items():
        if not ok(v):
            raise _fail(f"{key}.{name}", expected, v)
    return ActionType(value["category"], value["provider"], version)


def _query_param(key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) != 1:
        raise _fail(key, "one entry {PropertyName: value} (the action type's queryable property)", value)
    (name, v), = value.items()
    if not isinstance(name, str) or not isinstance(v, str) or not _QUERY_VALUE.match(v):
        raise _fail(key, "a value of 1-20 characters [a-zA-Z0-9_-]", value)
    return {name: v}


def _parameters(key: str, value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise _fail(key, "a mapping of document parameter name to a string or a list of strings", value)
    out: dict[str, tuple[str, ...]] = {}
    for name, v in value.items():
        items = v if isinstance(v, list) else [v]
        if not isinstance(name, str) or not all(isinstance(i, (str, int, float)) and not isinstance(i, bool)
                                                for i in items):
            raise _fail(f"{key}.{name}", "a string or a list of strings", v)
        out[name] = tuple(str(i) for i in items)
    return out


_KEYS: dict[str, Callable[[str, Any], Any]] = {
    "action_type": _action_type,
    "allowed_documents": _patterns,
    "allowed_instance_ids": _patterns,
    "allowed_targets": _patterns,
    "query_param": _query_param,
    "region": _string,
    "concurrency": _int(1, 64),
    "parameters": _parameters,
    "state_dir": _string,
    "log_format": _choice(LOG_FORMATS),
    "poll_interval_min": _seconds(0.05, 300),
    "poll_interval_max": _seconds(0.05, 3600),
    "hold_time": _seconds(0, 3600),
    "invocation_grace": _seconds(0, 3600),
    "spec_max_bytes": _int(1, 64 * 1024 * 1024),
    "delivery_timeout": _int(30, 2_592_000),
    "transient_retries": _int(0, 10),
    "artifact_url_expiry": _int(60, 43_200),
    "output_s3_bucket": _pattern(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "an S3 bucket name"),
    "output_s3_key_prefix": _pattern(r"^[^\s]{1,500}$", "a key prefix of up to 500 characters"),
    "cloudwatch_log_group": _pattern(r"^[\.\-_/#A-Za-z0-9]{1,512}$", "a CloudWatch Logs group name"),
}
_REQUIRED = tuple(f.name for f in fields(Config) if f.default is MISSING and f.default_factory is MISSING)


def parse_config(data: Any, *, source: str = "config") -> Config:
    """Build a Config from parsed YAML; every problem names the key."""
    if not isinstance(data, dict):
        raise ConfigFileError(f"{source}: expected a YAML mapping of settings at the top level")
    for key in data:
        if key not in _KEYS:
            close = difflib.get_close_matches(str(key), _KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(_KEYS)}"
            raise ConfigFileError(f"{source}: unknown key {key!r}; {hint}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ConfigFileError(f"{source}: missing required key(s) {', '.join(map(repr, missing))}")
    values = {k: _KEYS[k](k, v) for k, v in data.items()}
    config = Config(**values)
    if config.poll_interval_min > config.poll_interval_max:
        raise ConfigFileError(f"{source}: poll_interval_min ({config.poll_interval_min:g}) is larger than "
                              f"poll_interval_max ({config.poll_interval_max:g})")
    return config


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and check the YAML file at `path`; without a `state_dir` key, $STATE_DIRECTORY is the state
    directory (systemd's StateDirectory=, and the container image's). `environ` defaults to os.environ."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"config file {path} is not valid YAML: {exc}") from exc
    config = parse_config(data, source=str(path))
    systemd_state = (os.environ if environ is None else environ).get("STATE_DIRECTORY")
    if config.state_dir is None and systemd_state:
        config = replace(config, state_dir=systemd_state)
    return config
