"""SSM Command documents: the model, parameter validation, {{ }} interpolation, ENV_VAR and lint.

Pure (no boto3, no I/O): the daemon, dry-run and the emulator's runner share one reading of a
document, so a rule lives in one place. Agent behaviour is taken from the amazon-ssm-agent source
(aws/amazon-ssm-agent); each function names the file it follows.

allowedPattern, the evidence:
- SSM Agent checks it with Go ``regexp.MatchString`` (agent/framework/docparser/paramvalidator/
  allowedregexparamvalidator/allowedregexparamvalidator.go): an unanchored *search*.
- The SSM API checks it first with Java regex (user guide, documents-syntax-data-elements-parameters.md:
  "Systems Manager performs two validations for allowedPattern ... Java regex library at the API
  level ... GO regexp library" on the agent). Whether Java uses ``matches()`` or ``find()`` is not
  stated; AWS's own documents are written for whole-value matching (AWS-RunShellScript's
  executionTimeout pattern ``([1-9][0-9]{0,4})|...|(172800)`` only caps the value at 172800, as its
  description says, if the whole value must match) and CloudFormation's AllowedPattern, the same
  kind of Java service check, is documented as matching the entire value.
- A value reaches the script only if both accept it, and a whole-value match implies a search
  match, so this module matches the whole value (``re.fullmatch``), compiled with ``re.ASCII``
  because ``\\d``, ``\\w`` and ``\\b`` are ASCII-only in Java and Go RE2.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml

from worker.errors import DocumentError, ParameterError, Problem

# agent/appconfig/constants.go SupportedDocumentVersions; the user guide documents 1.2, 2.0 and 2.2 for Command.
AGENT_SCHEMA_VERSIONS = frozenset({"1.0", "1.2", "2.0", "2.0.1", "2.0.2", "2.0.3", "2.2"})
DOCUMENTED_SCHEMA_VERSIONS = ("1.2", "2.0", "2.2")
PARAMETER_TYPES = ("String", "StringList", "StringMap", "Integer", "Boolean", "MapList")
# Plugin names SSM Agent knows (agent/appconfig/constants.go, runpluginutil.go allPlugins).
COMMAND_ACTIONS = frozenset({
    "aws:applications", "aws:cloudWatch", "aws:configureDaemon", "aws:configureDocker", "aws:configurePackage",
    "aws:domainJoin", "aws:downloadContent", "aws:psModule", "aws:refreshAssociation", "aws:runDockerAction",
    "aws:runDocument", "aws:runPowerShellScript", "aws:runShellScript", "aws:softwareInventory",
    "aws:updateAgent", "aws:updateSsmAgent",
})
SCRIPT_ACTIONS = ("aws:runShellScript", "aws:runPowerShellScript")
PLATFORMS = ("Linux", "Windows", "MacOS")
# agent/plugins/pluginutil/pluginutil.go ValidateExecutionTimeout.
DEFAULT_TIMEOUT_SECONDS = 3600
MIN_TIMEOUT_SECONDS = 5
MAX_TIMEOUT_SECONDS = 172800

_VALID_NAME = re.compile(r"[a-zA-Z0-9]+")  # agent/framework/docparser/parameters paramNameRegex
_GO_SPACE = "[\t\n\f\r ]"  # Go RE2 \s
_PLACEHOLDER = re.compile(r"\{\{" + _GO_SPACE + r"*([a-zA-Z0-9]+)" + _GO_SPACE + r"*\}\}")
_ANY_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_SSM_REFERENCE = re.compile(r"\{\{\s*ssm:[^{}]*\}\}")
_SECURE_REFERENCE = re.compile(r"\{\{\s*ssm-secure:[^{}]*\}\}")
_INTEGER = re.compile(r"-?[0-9]+")
_LIST_TYPES = ("StringList", "MapList", "Array")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str = "String"
    description: str = ""
    default: Any = None
    required: bool = True
    allowed_values: tuple[str, ...] = ()
    allowed_pattern: str | None = None
    min_chars: int | None = None
    max_chars: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    interpolation_type: str | None = None


@dataclass(frozen=True)
class Step:
    """One plugin run. on_failure/on_success/finally_step come from ``inputs``: that is where the
    agent reads them (runpluginutil.go getStringPropByName on the plugin properties)."""

    name: str
    action: str
    inputs: Mapping[str, Any]
    platform: str | None
    on_failure: str | None = None
    on_success: str | None = None
    finally_step: bool = False
    precondition: Mapping[str, tuple[str, ...]] | None = None  # as written: operator -> arguments
    path: str = ""  # where the step is in the document, for messages: "mainSteps[1]"


def _inputs_path(path: str) -> str:
    """Where a step's inputs are: mainSteps[i].inputs, or the 1.x properties entry itself."""
    return f"{path}.inputs" if path.startswith("mainSteps") else path


def _action_path(path: str) -> str:
    return f"{path}.action" if path.startswith("mainSteps") else path.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" | "warning"
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


@dataclass(frozen=True)
class Document:
    schema_version: str
    description: str
    parameters: Mapping[str, Parameter]
    steps: tuple[Step, ...]
    notes: tuple[Finding, ...] = field(default=(), compare=False)  # what loading normalised away


# ----------------------------------------------------------------------------------- loading


class _YamlLoader(yaml.SafeLoader):
    """YAML as SSM means it: timestamps stay text, and a duplicate key is an error, not a silent overwrite."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value",
                                                    key_node.start_mark)
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_YamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _yaml_mapping)


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads hook: a duplicate key in developer-written JSON is an error, not a silent last-wins."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _parse(content: str | bytes | Mapping[str, Any], source: str) -> Mapping[str, Any]:
    if isinstance(content, Mapping):
        return content
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"{source}: not UTF-8 text (byte {exc.start}); save the document as UTF-8") from exc
    text = content.lstrip("\ufeff")
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text, object_pairs_hook=unique_keys)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                                "fix the syntax") from exc
        except ValueError as exc:
            raise DocumentError(f"{source}: {exc} in the JSON; keep one of them") from exc
    else:
        try:
            data = yaml.load(text, Loader=_YamlLoader)  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise DocumentError(f"{source}: not valid YAML ({where}{problem}); fix the syntax") from exc
    if not isinstance(data, Mapping):
        raise DocumentError(f"{source}: the document must be a mapping with schemaVersion and mainSteps, "
                            f"got {_kind(data)}")
    return data


def _count(decl: Mapping[str, Any], key: str, path: str, source: str) -> int | None:
    value = decl.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise DocumentError(f"{source}: {path}.{key}: expected a whole number of 0 or more, got {_kind(value)} "
                        f"{value!r}; write it as a number")


def _scalar_text(value: Any) -> str:
    """A YAML scalar as the text SSM sees (YAML's true is JSON's true)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _parameter(name: Any, decl: Any, source: str) -> Parameter:
    path = f"parameters.{name}"
    if not isinstance(name, str):
        raise DocumentError(f"{source}: parameters: the name {name!r} is not text; quote it")
    if not isinstance(decl, Mapping):
        raise DocumentError(f"{source}: {path}: expected a mapping with at least 'type', got {_kind(decl)}")
    type_ = decl.get("type")
    if type_ is not None and not isinstance(type_, str):
        raise DocumentError(f"{source}: {path}.type: expected a type name such as String, got {_kind(type_)}")
    allowed = decl.get("allowedValues")
    if allowed is not None and not isinstance(allowed, list):
        raise DocumentError(f"{source}: {path}.allowedValues: expected a list of values, got {_kind(allowed)}")
    pattern = decl.get("allowedPattern")
    if pattern is not None and not isinstance(pattern, str):
        raise DocumentError(f"{source}: {path}.allowedPattern: expected a regular expression string, "
                            f"got {_kind(pattern)}; quote it")
    interpolation = decl.get("interpolationType")
    if interpolation is not None and not isinstance(interpolation, str):
        raise DocumentError(f"{source}: {path}.interpolationType: expected ENV_VAR, got {_kind(interpolation)}")
    default = decl.get("default")
    description = decl.get("description")
    return Parameter(
        name=name,
        type=type_ or "",
        description=description if isinstance(description, str) else _scalar_text(description or ""),
        default=default,
        required=default is None,
        allowed_values=tuple(_scalar_text(v) for v in allowed or ()),
        allowed_pattern=pattern or None,
        min_chars=_count(decl, "minChars", path, source),
        max_chars=_count(decl, "maxChars", path, source),
        min_items=_count(decl, "minItems", path, source),
        max_items=_count(decl, "maxItems", path, source),
        interpolation_type=interpolation or None,
    )


def _check_script_inputs(inputs: Mapping[str, Any], path: str, source: str) -> None:
    """The shapes a script plugin cannot run with, caught before anything is sent."""
    command = inputs.get("runCommand")
    if command is not None and not isinstance(command, (str, list)):
        raise DocumentError(f"{source}: {path}.runCommand: expected a list of strings (the script lines) or one "
                            f'"{{{{ Parameter }}}}" reference, got {_kind(command)}')
    for index, line in enumerate(command if isinstance(command, list) else ()):
        if not isinstance(line, str):
            raise DocumentError(f"{source}: {path}.runCommand[{index}]: expected a string (one script line), "
                                f"got {_kind(line)} {line!r}; quote the line")
    directory = inputs.get("workingDirectory")
    if directory is not None and not isinstance(directory, str):
        raise DocumentError(f"{source}: {path}.workingDirectory: expected a directory path string, "
                            f"got {_kind(directory)}")


def _precondition(raw: Any, path: str, source: str) -> dict[str, tuple[str, ...]] | None:
    if raw is None:
        return None
    example = "write it as StringEquals: [platformType, Linux]"
    if not isinstance(raw, Mapping):
        raise DocumentError(f"{source}: {path}: expected a mapping of operator to arguments, got {_kind(raw)}; "
                            f"{example}")
    result: dict[str, tuple[str, ...]] = {}
    for operator, args in raw.items():
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise DocumentError(f"{source}: {path}.{operator}: expected a list of strings, got {_kind(args)}; "
                                f"{example}")
        result[str(operator)] = tuple(args)
    return result


def _platform(precondition: Mapping[str, tuple[str, ...]] | None) -> str | None:
    args = (precondition or {}).get("StringEquals", ())
    if len(args) == 2 and "platformType" in args and args[0] != args[1]:
        return args[1] if args[0] == "platformType" else args[0]
    return None


def _modifier(inputs: Mapping[str, Any], key: str) -> str | None:
    """A control-flow modifier as the agent reads it: a string, or a boolean as "true"/"false"."""
    value = inputs.get(key)
    return _scalar_text(value) if isinstance(value, (str, bool)) else None


def _step(raw: Any, path: str, source: str, notes: list[Finding], *, name: Any, action: Any,
          inputs: Any, precondition: Any = None) -> Step:
    if not isinstance(name, str) or not name:
        raise DocumentError(f"{source}: {path}.name: every step needs a name, unique in the document; "
                            f"got {_kind(name)}")
    if not isinstance(action, str) or not action:
        raise DocumentError(f"{source}: {path}.action: every step needs an action such as aws:runShellScript; "
                            f"got {_kind(action)}")
    inputs = {} if inputs is None else inputs
    if not isinstance(inputs, Mapping):
        raise DocumentError(f"{source}: {path}.inputs: expected a mapping of input names to values, "
                            f"got {_kind(inputs)}")
    if action in SCRIPT_ACTIONS:
        _check_script_inputs(inputs, _inputs_path(path), source)
    for key in ("onFailure", "onSuccess", "finallyStep", "timeoutSeconds"):
        if isinstance(raw, Mapping) and raw.get(key) not in (None, "", 0, False):
            notes.append(Finding("warning", f"{path}.{key}",
                                 f"SSM Agent reads {key} from the step's inputs, not here; move it to "
                                 f"{path}.inputs.{key}"))
    conditions = _precondition(precondition, f"{path}.precondition", source)
    return Step(name=name, action=action, inputs=dict(inputs), platform=_platform(conditions),
                on_failure=_modifier(inputs, "onFailure"), on_success=_modifier(inputs, "onSuccess"),
                finally_step=_modifier(inputs, "finallyStep") == "true", precondition=conditions, path=path)


def _main_steps(raw: Any, source: str, notes: list[Finding]) -> tuple[Step, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DocumentError(f"{source}: mainSteps: expected a list of steps, got {_kind(raw)}")
    steps = []
    for index, item in enumerate(raw):
        path = f"mainSteps[{index}]"
        if not isinstance(item, Mapping):
            raise DocumentError(f"{source}: {path}: expected a step mapping with name, action and inputs, "
                                f"got {_kind(item)}")
        steps.append(_step(item, path, source, notes, name=item.get("name"), action=item.get("action"),
                           inputs=item.get("inputs"), precondition=item.get("precondition")))
    return tuple(steps)


def _runtime_config(raw: Any, source: str, notes: list[Finding]) -> tuple[Step, ...]:
    """Schema 1.x plugins as steps, in document order (the agent keeps them in a Go map: no fixed order).

    A plugin's ``properties`` may be one mapping or a list; the agent runs each entry and merges their
    output into one plugin result. Here each entry is its own step, named after the plugin when there
    is one entry, else after the entry's ``id``.
    """
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise DocumentError(f"{source}: runtimeConfig: expected a mapping of plugin name to configuration, "
                            f"got {_kind(raw)}")
    steps = []
    for plugin, config in raw.items():
        path = f"runtimeConfig.{plugin}"
        if not isinstance(config, Mapping):
            raise DocumentError(f"{source}: {path}: expected a mapping with properties, got {_kind(config)}")
        # Go's encoding/json matches field names case-insensitively: "Properties" works in JSON too.
        key = next((k for k in config if isinstance(k, str) and k.lower() == "properties"), "properties")
        entries = config.get(key)
        entries = [entries] if isinstance(entries, Mapping) else entries
        if not isinstance(entries, list) or not entries:
            raise DocumentError(f"{source}: {path}.{key}: expected a list of property mappings, got {_kind(entries)}")
        for index, entry in enumerate(entries):
            entry_path = f"{path}.{key}[{index}]"
            name = plugin if len(entries) == 1 else (entry.get("id") if isinstance(entry, Mapping) else None)
            steps.append(_step(None, entry_path, source, notes, name=name or f"{plugin}[{index}]",
                               action=plugin, inputs=entry))
    return tuple(steps)


def load_document(content: str | bytes | Mapping[str, Any], *, source: str = "document") -> Document:
    """Parse an SSM Command document (JSON or YAML, detected by a leading ``{``).

    Lenient where SSM is (every schema the agent knows, unknown keys ignored) and strict only about
    shapes nothing could run with; what SSM would reject but can still be modelled is left to
    ``lint_document``. Every DocumentError names ``source``, the path in the document and the fix.
    """
    data = _parse(content, source)
    notes: list[Finding] = []
    version = data.get("schemaVersion")
    if isinstance(version, (int, float)) and not isinstance(version, bool):
        notes.append(Finding("warning", "schemaVersion", f"write the schema version as a quoted string: \"{version}\""))
        version = str(version)
    if version is not None and not isinstance(version, str):
        raise DocumentError(f"{source}: schemaVersion: expected a version string such as \"2.2\", got {_kind(version)}")
    raw_parameters = data.get("parameters")
    if raw_parameters is not None and not isinstance(raw_parameters, Mapping):
        raise DocumentError(f"{source}: parameters: expected a mapping of parameter name to declaration, "
                            f"got {_kind(raw_parameters)}")
    parameters = {name: _parameter(name, decl, source) for name, decl in (raw_parameters or {}).items()}
    legacy = version in ("1.0", "1.2") or (version not in AGENT_SCHEMA_VERSIONS and "mainSteps" not in data)
    used, ignored = ("runtimeConfig", "mainSteps") if legacy else ("mainSteps", "runtimeConfig")
    if data.get(ignored):
        notes.append(Finding("warning", ignored, f"ignored: schema version {version} runs {used}"))
    steps = _runtime_config(data.get(used), source, notes) if legacy else _main_steps(data.get(used), source, notes)
    description = data.get("description")
    return Document(schema_version=version or "", description=description if isinstance(description, str) else "",
                    parameters=parameters, steps=steps, notes=tuple(notes))


# ------------------------------------------------------------------------------- patterns


@dataclass(frozen=True)
class _Token:
    kind: str  # escape | class | open | close | alt | quant | anchor | char
    text: str
    notes: tuple[str, ...] = ()


def _class_end(pattern: str, start: int) -> tuple[int, tuple[str, ...]]:
    """Index after the bracket expression at ``start`` and what is odd inside it."""
    notes: list[str] = []
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    depth = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if pattern[i + 1:i + 2] in ("p", "P"):
                notes.append("property")
            i += 2
            continue
        if pattern.startswith("[:", i) and (end := pattern.find(":]", i + 2)) != -1:
            notes.append("posix")
            i = end + 2
            continue
        if pattern.startswith("&&", i):
            notes.append("nested")
        if c == "[":
            notes.append("nested")
            depth += 1
        elif c == "]":
            if depth == 0:
                return i + 1, tuple(notes)
            depth -= 1
        i += 1
    return len(pattern), tuple(notes)


def _tokens(pattern: str) -> Iterator[_Token]:
    """A rough lexer shared by the portability check and the Python translation (not a parser)."""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            end = i + 2
            if pattern[i + 1:i + 2] in ("p", "P", "x", "k") and pattern[end:end + 1] in ("{", "<"):
                close = pattern.find("}" if pattern[end] == "{" else ">", end)
                end = len(pattern) if close == -1 else close + 1
            elif pattern[i + 1:i + 2] == "Q":
                close = pattern.find("\\E", end)
                end = len(pattern) if close == -1 else close + 2
            yield _Token("escape", pattern[i:end])
            i = end
        elif c == "[":
            end, notes = _class_end(pattern, i)
            yield _Token("class", pattern[i:end], notes)
            i = end
        elif c == "(":
            match = re.match(r"\(\?(P?<[A-Za-z_][A-Za-z0-9_]*>|<=|<!|[=!>:]|[a-zA-Z-]+[:)])?", pattern[i:])
            text = match.group(0) if match else "("
            yield _Token("open", text)
            i += len(text)
        elif c == ")":
            yield _Token("close", c)
            i += 1
        elif c == "|":
            yield _Token("alt", c)
            i += 1
        elif c in "*+?":
            yield _Token("quant", pattern[i:i + 2] if pattern[i + 1:i + 2] in ("?", "+") else c)
            i += 2 if pattern[i + 1:i + 2] in ("?", "+") else 1
        elif c == "{" and (match := re.match(r"\{(\d*)(,?)(\d*)\}[?+]?", pattern[i:])) and (match[1] or match[3]):
            yield _Token("quant", match.group(0))
            i += len(match.group(0))
        elif c in "^$":
            yield _Token("anchor", c)
            i += 1
        else:
            yield _Token("char", c)
            i += 1


def _python_syntax(pattern: str) -> str:
    """The same pattern in Python's dialect: (?<name>...) -> (?P<name>...), \\z -> \\Z, and an inline
    flag group such as ``(?i)`` -> a scoped ``(?i:...)`` up to the next ``|`` or the end of its group,
    reopened after the ``|`` (Java and Go apply it from there to the group's end; Python 3.11 accepts
    it only at the very start)."""
    out: list[str] = []
    flags: list[list[str]] = [[]]  # per open group: the flag scopes opened in it, in order
    for token in _tokens(pattern):
        if token.kind == "open" and re.fullmatch(r"\(\?[a-zA-Z-]+\)", token.text):
            flags[-1].append(token.text[:-1] + ":")
            out.append(flags[-1][-1])
            continue
        if token.kind == "alt":
            out.append(")" * len(flags[-1]) + "|" + "".join(flags[-1]))
            continue
        if token.kind == "close" and len(flags) > 1:
            out.append(")" * len(flags.pop()))
        elif token.kind == "open":
            flags.append([])
        if token.kind == "open" and token.text.startswith("(?<") and token.text not in ("(?<=", "(?<!"):
            out.append("(?P" + token.text[2:])
        elif token.kind == "escape" and token.text == "\\z":
            out.append("\\Z")
        else:
            out.append(token.text)
    return "".join(out) + ")" * len(flags[0])


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(_python_syntax(pattern), re.ASCII)


def pattern_matches(pattern: str, value: str) -> bool:
    """True if ``value`` as a whole matches ``pattern`` (see the module docstring for why whole).

    Raises re.error when Python cannot read the pattern even after ``_python_syntax``.
    """
    return _compiled(pattern).fullmatch(value) is not None


def _anchored(tokens: list[_Token]) -> bool:
    """Each top-level alternative starts with ^ or \\A and ends with $ or \\z (looking through groups)."""
    alternatives: list[list[_Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "alt" and depth == 0:
            alternatives.append([])
            continue
        depth += token.kind == "open"
        depth -= token.kind == "close"
        alternatives[-1].append(token)

    def edge(alt: list[_Token], skip: str, anchors: tuple[str, ...]) -> bool:
        token = next((t for t in alt if t.kind != skip), None)
        return token is not None and token.text in anchors

    return all(edge(alt, "open", ("^", "\\A")) and edge(alt[::-1], "close", ("$", "\\z", "\\Z"))
               for alt in alternatives)


def pattern_portability(pattern: str) -> list[str]:
    """Ways Python re, Java regex (the SSM API) and Go RE2 (SSM Agent) read ``pattern`` differently.

    An empty list means the three agree on it under whole-value matching. Each entry says what the
    construct does in each engine and how to write it portably.
    """
    problems: list[str] = []
    tokens = list(_tokens(pattern))

    def note(message: str) -> None:
        if message not in problems:
            problems.append(message)

    for index, token in enumerate(tokens):
        text = token.text
        if token.kind == "open":
            if text in ("(?=", "(?!", "(?<=", "(?<!"):
                note(f"lookaround {text}...) is not supported by Go RE2: SSM Agent cannot compile the pattern and "
                     "fails the command; express the rule without lookarounds")
            elif text == "(?>":
                note("atomic group (?>...) works in Java and Python 3.11+ but Go RE2 rejects it; use a plain group")
            elif text.startswith("(?P<"):
                note("named group (?P<name>...) is rejected by Java regex (the SSM API); use an unnamed group")
            elif text.startswith("(?<"):
                note("named group (?<name>...) needs Go 1.22+ and is (?P<name>...) in Python; use an unnamed group")
            elif re.fullmatch(r"\(\?[a-zA-Z-]+[:)]", text) and set(text[2:-1]) - set("ims-"):
                note(f"inline flags {text} mean different things (or nothing) in Java, Go RE2 and Python; "
                     "only i, m and s are common to all three")
        elif token.kind == "escape":
            letter = text[1:2]
            if (letter.isdigit() and letter != "0") or text.startswith("\\k<"):
                note(f"backreference {text} is not supported by Go RE2: SSM Agent cannot compile the pattern "
                     "and fails the command")
            elif letter == "Z":
                note("\\Z is end of input in Python, before a final line break in Java, and an error in Go RE2; "
                     "use $ (the whole value is matched anyway)")
            elif letter == "z":
                note("\\z is not understood by Python re before 3.14 (the worker reads it as \\Z); use $")
            elif letter in ("p", "P"):
                note(f"{text} is not supported by Python re, and Java and Go RE2 know different class names; "
                     "spell the characters out, e.g. [A-Za-z]")
            elif letter == "Q":
                note("\\Q...\\E quoting is not supported by Python re; escape each character instead")
            elif letter == "x" and text.startswith("\\x{"):
                note("\\x{...} is not supported by Python re; write the character itself")
            elif letter == "u":
                note("\\uHHHH is not supported by Go RE2; write the character itself")
            elif letter and letter in "hHRXGv":
                note(f"{text} is a Java-only escape (Python and Go RE2 read it differently or reject it)")
        elif token.kind == "class":
            if "posix" in token.notes:
                note("POSIX class [[:name:]] is a class only in Go RE2; Java and Python read it as a set of "
                     "characters; write the range instead, e.g. [a-zA-Z]")
            if "nested" in token.notes:
                note("a nested [...] or && inside a character class is union/intersection in Java only")
            if "property" in token.notes:
                note("\\p{...} inside a character class is not supported by Python re; spell the characters out")
        elif token.kind == "quant":
            if text.endswith("+") and len(text) > 1:
                note(f"possessive quantifier {text} works in Java and Python 3.11+ but Go RE2 rejects it")
            if text.startswith("{,"):
                note(f"{text} is {{0,n}} in Python, an error in Java and literal text in Go RE2; write {{0,n}}")
            if any(int(n) > 1000 for n in re.findall(r"\d+", text)):
                note(f"{text}: Go RE2 rejects repetition counts above 1000")
            if index == 0 or tokens[index - 1].kind in ("open", "alt"):
                note(f"{text} has nothing to repeat")
    if tokens and not _anchored(tokens):
        note("not anchored: SSM Agent (Go regexp.MatchString) accepts any value that merely contains a match "
             "while the SSM API matches the whole value; write ^(...)$ so both read it the same")
    return problems


# ----------------------------------------------------------------------------- parameters


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


def _is_ssm_reference(value: str) -> bool:
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


def _default_items(parameter: Parameter) -> list[str]:
    """A declared default as SendCommand-shaped values (strings, one per item)."""
    default = parameter.default
    if parameter.type in _LIST_TYPES and isinstance(default, list):
        return [item if isinstance(item, str) else _agent_text(item) for item in default]
    if isinstance(default, (bool, int, float)) and not isinstance(default, str):
        return [_scalar_text(default)]
    return [_agent_text(default)]


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
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return [Problem(field_name, f"type {type_}", f"value {_quote(value)} is not a JSON object")]
    if _is_ssm_reference(value):
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


def _check(parameter: Parameter, items: Sequence[str]) -> list[Problem]:
    name = parameter.name
    if any(not isinstance(item, str) for item in items):
        return [Problem(name, f"type {parameter.type or 'String'}", "values must be strings")]
    listed = parameter.type in _LIST_TYPES
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
            problems += _check(parameter, items)
            result[name] = items
        elif parameter.required:
            problems.append(Problem(name, "required", "missing: the document declares no default, so a value "
                                                      "must be given"))
        else:
            result[name] = _default_items(parameter)
    if problems:
        raise ParameterError(problems)
    return result


# ---------------------------------------------------------------------------- interpolation


def _typed(values: Mapping[str, Any], document: Document | None) -> dict[str, Any]:
    """Values as the agent holds them: String -> str, StringList -> list, MapList -> list of objects."""
    typed: dict[str, Any] = {}
    for name, value in values.items():
        if not _VALID_NAME.fullmatch(name):
            continue  # parameters.ValidParameters drops these: their {{ }} stays literal text
        parameter = document.parameters.get(name) if document else None
        if isinstance(value, str):
            typed[name] = value
        elif parameter is None:
            typed[name] = value[0] if len(value) == 1 else list(value)
        elif parameter.type == "MapList":
            typed[name] = [_json_or_text(item) for item in value]
        elif parameter.type in _LIST_TYPES:
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


def _substitute(value: Any, typed: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in typed:
            found = typed[whole.group(1)]
            return list(found) if isinstance(found, list) else found

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            return _go_expand(_agent_text(typed[name]), match.group(0)) if name in typed else match.group(0)

        return _PLACEHOLDER.sub(replace, value)
    if isinstance(value, Mapping):
        return {key: _substitute(item, typed) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_substitute(item, typed) for item in value]
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
    return _substitute(value, _typed(values, document))


def environment(document: Document, values: Mapping[str, list[str]]) -> dict[str, str]:
    """``SSM_<Name>`` variables for ENV_VAR parameters, as agents >= 3.3.2746.0 set them (schema 2.2 only).

    The user guide documents them for String parameters; other types get the text ``interpolate``
    would paste (JSON for lists), which no source confirms. The name is the parameter name as written.
    """
    if document.schema_version != "2.2":
        return {}
    typed = _typed(values, document)
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


def _seconds(value: Any) -> int | None:
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
    seconds = _seconds(value)
    if seconds is None or not MIN_TIMEOUT_SECONDS <= seconds <= MAX_TIMEOUT_SECONDS:
        return DEFAULT_TIMEOUT_SECONDS
    return seconds


# ---------------------------------------------------------------------------- preconditions


def _version_at_least(version: str, minimum: str) -> bool:
    try:
        have = [int(part) for part in version.split(".")]
        want = [int(part) for part in minimum.split(".")]
    except ValueError:
        return False
    return have >= want


def _evaluate(precondition: Mapping[str, tuple[str, ...]], resolve: Callable[[str], str],
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
    if not _version_at_least(document.schema_version, "2.2"):
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
    typed = _typed(values, document)
    allowed, messages, invalid = _evaluate(step.precondition, lambda arg: str(_substitute(arg, typed)), platform)
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


# ------------------------------------------------------------------------------------ lint

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
    if isinstance(default, str) and (_is_ssm_reference(default) or type_ in ("String", "StringList", "StringMap")):
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
    return None if ok else f"default {default!r} is {_kind(default)}; a {type_} default must be {wanted}"


def _lint_parameter(document: Document, parameter: Parameter) -> Iterator[Finding]:
    path = f"parameters.{parameter.name}"
    if not _VALID_NAME.fullmatch(parameter.name):
        yield Finding("warning", path, "SSM Agent only substitutes parameters named [a-zA-Z0-9]+; "
                                       f"{{{{ {parameter.name} }}}} stays literal text; rename it")
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
            _compiled(parameter.allowed_pattern)
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
                          f"ENV_VAR is documented for String parameters only, not {parameter.type}")
    if parameter.required:
        return
    shape = _default_problem(parameter)
    if shape:
        yield Finding("error", f"{path}.default", shape)
    elif pattern_ok:
        for problem in _check(parameter, _default_items(parameter)):
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


def _lint_injection(document: Document, step: Step) -> Iterator[Finding]:
    """{{ X }} pasted into script text: who sets X can run code, unless X is tightly constrained."""
    path = f"{_inputs_path(step.path)}.runCommand"
    lines = script_lines(step.inputs.get("runCommand"))
    whole = {m.group(1) for line in lines if (m := _PLACEHOLDER.fullmatch(line))}
    embedded = {name for line in lines if not _PLACEHOLDER.fullmatch(line) for name in _PLACEHOLDER.findall(line)}
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
        yield Finding("warning", _action_path(path), "aws:runScript is a legacy EC2Config plugin name; current SSM "
                                                   "Agent fails the step; use aws:runPowerShellScript")
    elif step.action not in COMMAND_ACTIONS:
        yield Finding("error", _action_path(path), f"unknown action {step.action!r} for a Command document; "
                                                 "use aws:runShellScript or aws:runPowerShellScript")
    if step.precondition is not None:
        if not _version_at_least(document.schema_version, "2.2"):
            yield Finding("error", f"{path}.precondition", "preconditions need schemaVersion 2.2; SSM Agent "
                                                           "fails the step")
        declared = {name: [f"\x00{name}\x00"] for name in document.parameters if _VALID_NAME.fullmatch(name)}
        typed = _typed(declared, document)
        _, _, invalid = _evaluate(step.precondition, lambda arg: str(_substitute(arg, typed)),
                                  step.platform or "Linux")
        for problem in invalid:
            yield Finding("error", f"{path}.precondition", f"SSM Agent fails this step: {problem}")
        known = step.platform is None or "{{" in step.platform or step.platform.lower() in ("linux", "windows", "macos")
        if not known:
            yield Finding("warning", f"{path}.precondition", f"platformType {step.platform!r} matches no "
                                                             f"instance ({', '.join(PLATFORMS)}): the step never runs")
    inputs = _inputs_path(path)
    if step.finally_step and index != len(document.steps) - 1:
        yield Finding("warning", f"{inputs}.finallyStep", "only the last step can be a finally step; "
                                                               "SSM Agent ignores it here")
    if step.on_failure not in (None, "exit", "successAndExit"):
        yield Finding("warning", f"{inputs}.onFailure", f"{step.on_failure!r} is not exit or successAndExit; "
                                                             "SSM Agent ignores it")
    if step.on_success not in (None, "exit"):
        yield Finding("warning", f"{inputs}.onSuccess", f"{step.on_success!r} is not exit; SSM Agent ignores it")
    if step.action in SCRIPT_ACTIONS:
        if "runCommand" not in step.inputs:
            yield Finding("warning", inputs, "no runCommand: SSM Agent runs an empty script")
        timeout = step.inputs.get("timeoutSeconds")
        seconds = _seconds(timeout)
        literal = timeout is not None and not (isinstance(timeout, str) and "{{" in timeout)
        if literal and (seconds is None or execution_timeout(timeout) != seconds):
            yield Finding("warning", f"{inputs}.timeoutSeconds",
                          f"{timeout!r} is not a number of seconds in {MIN_TIMEOUT_SECONDS}..{MAX_TIMEOUT_SECONDS}; "
                          f"SSM Agent uses {DEFAULT_TIMEOUT_SECONDS} instead")
        yield from _lint_injection(document, step)
    for text in _strings(step.inputs):
        for name in _ANY_PLACEHOLDER.findall(text):
            if name.startswith(("ssm:", "ssm-secure:")) or name in document.parameters:
                continue
            if _VALID_NAME.fullmatch(name):
                yield Finding("warning", inputs, f"{{{{ {name} }}}} names no declared parameter; "
                                                           "SSM Agent leaves it as literal text")


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
