"""Reading an SSM Command document from JSON or YAML into the model, as SSM reads it.

Lenient where SSM is (every schema the agent knows, unknown keys ignored), strict only about shapes
nothing could run with, so a document that works on SSM loads here too. YAML timestamps stay text
and a duplicate key is an error in both formats: a silent last-wins would run something other than
what the author reads. ``unique_keys`` is also the spec file's JSON hook, so there is one such rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from worker.errors import DocumentError
from worker.ssmdoc.model import (
    AGENT_SCHEMA_VERSIONS,
    SCRIPT_ACTIONS,
    Document,
    Finding,
    Parameter,
    Step,
    inputs_path,
    kind_of,
    scalar_text,
)
from worker.ssmdoc.plugins import input_value, modifier


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
        except RecursionError as exc:
            raise DocumentError(f"{source}: nested too deeply to read; flatten the document") from exc
    else:
        try:
            data = yaml.load(text, Loader=_YamlLoader)  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise DocumentError(f"{source}: not valid YAML ({where}{problem}); fix the syntax") from exc
        except RecursionError as exc:
            raise DocumentError(f"{source}: nested too deeply to read; flatten the document") from exc
    if not isinstance(data, Mapping):
        raise DocumentError(f"{source}: the document must be a mapping with schemaVersion and mainSteps, "
                            f"got {kind_of(data)}")
    return data


def _count(decl: Mapping[str, Any], key: str, path: str, source: str) -> int | None:
    value = decl.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise DocumentError(f"{source}: {path}.{key}: expected a whole number of 0 or more, got {kind_of(value)} "
                        f"{value!r}; write it as a number")



def _parameter(name: Any, decl: Any, source: str, notes: list[Finding]) -> Parameter:
    path = f"parameters.{name}"
    if not isinstance(name, str):
        raise DocumentError(f"{source}: parameters: the name {name!r} is not text; quote it")
    if not isinstance(decl, Mapping):
        raise DocumentError(f"{source}: {path}: expected a mapping with at least 'type', got {kind_of(decl)}")
    type_ = decl.get("type")
    if type_ is not None and not isinstance(type_, str):
        raise DocumentError(f"{source}: {path}.type: expected a type name such as String, got {kind_of(type_)}")
    allowed = decl.get("allowedValues")
    if allowed is not None and not isinstance(allowed, list):
        raise DocumentError(f"{source}: {path}.allowedValues: expected a list of values, got {kind_of(allowed)}")
    pattern = decl.get("allowedPattern")
    if pattern is not None and not isinstance(pattern, str):
        raise DocumentError(f"{source}: {path}.allowedPattern: expected a regular expression string, "
                            f"got {kind_of(pattern)}; quote it")
    interpolation = decl.get("interpolationType")
    if interpolation is not None and not isinstance(interpolation, str):
        raise DocumentError(f"{source}: {path}.interpolationType: expected ENV_VAR, got {kind_of(interpolation)}")
    default = decl.get("default")
    description = decl.get("description")
    if description is not None and not isinstance(description, str):
        notes.append(_undecodable(f"{path}.description", description, "text"))
    for index, value in enumerate(allowed or ()):
        if not isinstance(value, str):
            notes.append(_undecodable(f"{path}.allowedValues[{index}]", value, "text (quote it)"))
    return Parameter(
        name=name,
        type=type_ or "",
        description=description if isinstance(description, str) else scalar_text(description or ""),
        default=default,
        required=default is None,
        allowed_values=tuple(scalar_text(v) for v in allowed or ()),
        allowed_pattern=pattern or None,
        min_chars=_count(decl, "minChars", path, source),
        max_chars=_count(decl, "maxChars", path, source),
        min_items=_count(decl, "minItems", path, source),
        max_items=_count(decl, "maxItems", path, source),
        interpolation_type=interpolation or None,
    )


def _check_script_inputs(inputs: Mapping[str, Any], path: str, source: str) -> None:
    """The shapes a script plugin cannot run with, caught before anything is sent."""
    command = input_value(inputs, "runCommand")
    if command is not None and not isinstance(command, (str, list)):
        raise DocumentError(f"{source}: {path}.runCommand: expected a list of strings (the script lines) or one "
                            f'"{{{{ Parameter }}}}" reference, got {kind_of(command)}')
    for index, line in enumerate(command if isinstance(command, list) else ()):
        if not isinstance(line, str):
            raise DocumentError(f"{source}: {path}.runCommand[{index}]: expected a string (one script line), "
                                f"got {kind_of(line)} {line!r}; quote the line")
    directory = input_value(inputs, "workingDirectory")
    if directory is not None and not isinstance(directory, str):
        raise DocumentError(f"{source}: {path}.workingDirectory: expected a directory path string, "
                            f"got {kind_of(directory)}")


def _precondition(raw: Any, path: str, source: str) -> dict[str, tuple[str, ...]] | None:
    if raw is None:
        return None
    example = "write it as StringEquals: [platformType, Linux]"
    if not isinstance(raw, Mapping):
        raise DocumentError(f"{source}: {path}: expected a mapping of operator to arguments, got {kind_of(raw)}; "
                            f"{example}")
    result: dict[str, tuple[str, ...]] = {}
    for operator, args in raw.items():
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise DocumentError(f"{source}: {path}.{operator}: expected a list of strings, got {kind_of(args)}; "
                                f"{example}")
        result[str(operator)] = tuple(args)
    return result


def _platform(precondition: Mapping[str, tuple[str, ...]] | None) -> str | None:
    args = (precondition or {}).get("StringEquals", ())
    if len(args) == 2 and "platformType" in args and args[0] != args[1]:
        return args[1] if args[0] == "platformType" else args[0]
    return None


def _undecodable(path: str, value: Any, wanted: str) -> Finding:
    """A field the agent decodes into a typed Go field: another type fails the whole command."""
    return Finding("error", path, f"SSM Agent reads this as {wanted} and fails the whole command on "
                                  f"{kind_of(value)} {value!r} (\"Encountered error while parsing input - internal "
                                  f"error\"); write {wanted}")


def _step(raw: Mapping[str, Any], path: str, source: str, notes: list[Finding]) -> Step:
    name, action, inputs, precondition = raw.get("name"), raw.get("action"), raw.get("inputs"), raw.get("precondition")
    if not isinstance(name, str) or not name:
        raise DocumentError(f"{source}: {path}.name: every step needs a name, unique in the document; "
                            f"got {kind_of(name)}")
    if not isinstance(action, str) or not action:
        raise DocumentError(f"{source}: {path}.action: every step needs an action such as aws:runShellScript; "
                            f"got {kind_of(action)}")
    inputs = {} if inputs is None else inputs
    if not isinstance(inputs, Mapping):
        raise DocumentError(f"{source}: {path}.inputs: expected a mapping of input names to values, "
                            f"got {kind_of(inputs)}")
    if action in SCRIPT_ACTIONS:
        _check_script_inputs(inputs, inputs_path(path), source)
    for key, wanted in (("timeoutSeconds", "a whole number"), ("maxAttempts", "a whole number"),
                        ("onFailure", "text")):
        value = raw.get(key)
        if value is not None and not (isinstance(value, str) if wanted == "text"
                                      else isinstance(value, int) and not isinstance(value, bool)):
            notes.append(_undecodable(f"{path}.{key}", value, wanted))
    for key in ("onFailure", "onSuccess", "finallyStep", "timeoutSeconds"):
        if raw.get(key) not in (None, "", 0, False):
            notes.append(Finding("warning", f"{path}.{key}",
                                 f"SSM Agent reads {key} from the step's inputs, not here; move it to "
                                 f"{path}.inputs.{key}"))
    conditions = _precondition(precondition, f"{path}.precondition", source)
    return Step(name=name, action=action, inputs=dict(inputs), platform=_platform(conditions),
                on_failure=modifier(inputs, "onFailure") or None, on_success=modifier(inputs, "onSuccess") or None,
                finally_step=modifier(inputs, "finallyStep") == "true", precondition=conditions, path=path)


def _main_steps(raw: Any, source: str, notes: list[Finding]) -> tuple[Step, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DocumentError(f"{source}: mainSteps: expected a list of steps, got {kind_of(raw)}")
    steps = []
    for index, item in enumerate(raw):
        path = f"mainSteps[{index}]"
        if not isinstance(item, Mapping):
            raise DocumentError(f"{source}: {path}: expected a step mapping with name, action and inputs, "
                                f"got {kind_of(item)}")
        steps.append(_step(item, path, source, notes))
    return tuple(steps)


def _runtime_config(raw: Any, source: str, notes: list[Finding]) -> tuple[Step, ...]:
    """Schema 1.x plugins as steps, in document order (the agent keeps them in a Go map: no fixed order).

    Each plugin is one step named after the plugin, as the agent reports it. Its ``properties`` may
    be a mapping (run once), a list (each entry runs, the results merge into one), a string (passed
    to the plugin as it is: aws:cloudWatch takes one, e.g. AWS-ConfigureCloudWatch's
    ``"{{ properties }}"``) or absent (the plugin runs with no inputs): every shape the agent's
    contracts.PluginConfig accepts. What fails at run time is the lint's to say.
    """
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise DocumentError(f"{source}: runtimeConfig: expected a mapping of plugin name to configuration, "
                            f"got {kind_of(raw)}")
    steps = []
    for plugin, config in raw.items():
        path = f"runtimeConfig.{plugin}"
        if not isinstance(config, Mapping):
            raise DocumentError(f"{source}: {path}: expected a mapping with properties, got {kind_of(config)}")
        if not isinstance(plugin, str) or not plugin:
            raise DocumentError(f"{source}: {path}: a plugin name must be text such as aws:runShellScript")
        # Go's encoding/json matches field names case-insensitively: "Properties" works in JSON too.
        key = next((k for k in config if isinstance(k, str) and k.lower() == "properties"), "properties")
        properties = config.get(key)
        entries = properties if isinstance(properties, list) else [properties]
        if plugin in SCRIPT_ACTIONS:
            for index, entry in enumerate(entries):
                if isinstance(entry, Mapping):
                    where = f"{path}.{key}[{index}]" if isinstance(properties, list) else f"{path}.{key}"
                    _check_script_inputs(entry, where, source)
        inputs = properties if isinstance(properties, Mapping) else {}
        steps.append(Step(name=plugin, action=plugin, inputs=dict(inputs), platform=None,
                          on_failure=modifier(inputs, "onFailure") or None, on_success=modifier(inputs, "onSuccess") or None,
                          finally_step=modifier(inputs, "finallyStep") == "true", path=f"{path}.{key}",
                          properties=properties, legacy=True))
    return tuple(steps)


def refuse_document_type(source: str, document_type: str) -> DocumentError:
    """The one refusal for every document that is not a Command document, whatever its type."""
    article = "an" if document_type[:1] in "AEIOU" else "a"
    return DocumentError(f"{source}: {article} {document_type} document, not a Command document; the worker runs "
                         "Command documents only (SendCommand, run by SSM Agent on the instances). Use a Command "
                         "document (schemaVersion 2.2, aws:runShellScript or aws:runPowerShellScript steps)")


def _document_type(data: Mapping[str, Any]) -> str:
    """The DocumentType content shows, where it can: Automation runbooks are schema 0.3, Session
    documents have a sessionType. A Policy document looks like a Command document: only SSM's
    DocumentType (GetDocument) tells them apart."""
    if data.get("schemaVersion") == "0.3":
        return "Automation"
    if "sessionType" in data:
        return "Session"
    return "Command"


def load_document(content: str | bytes | Mapping[str, Any], *, source: str = "document",
                  document_type: str = "Command") -> Document:
    """Parse an SSM Command document (JSON or YAML, detected by a leading ``{``).

    Lenient where SSM is (every schema the agent knows, unknown keys ignored) and strict only about
    shapes nothing could run with; what SSM would reject but can still be modelled is left to
    ``lint_document``. Every DocumentError names ``source``, the path in the document and the fix.
    A document of another type (``document_type`` as SSM reports it, or an Automation or Session
    document by its content) is refused with ``refuse_document_type``'s one message.
    """
    if document_type != "Command":
        raise refuse_document_type(source, document_type)
    data = _parse(content, source)
    if _document_type(data) != "Command":
        raise refuse_document_type(source, _document_type(data))
    notes: list[Finding] = []
    version = data.get("schemaVersion")
    if isinstance(version, (int, float)) and not isinstance(version, bool):
        notes.append(Finding("warning", "schemaVersion", f"write the schema version as a quoted string: \"{version}\""))
        version = str(version)
    if version is not None and not isinstance(version, str):
        raise DocumentError(f"{source}: schemaVersion: expected a version string such as \"2.2\", got {kind_of(version)}")
    raw_parameters = data.get("parameters")
    if raw_parameters is not None and not isinstance(raw_parameters, Mapping):
        raise DocumentError(f"{source}: parameters: expected a mapping of parameter name to declaration, "
                            f"got {kind_of(raw_parameters)}")
    parameters = {name: _parameter(name, decl, source, notes) for name, decl in (raw_parameters or {}).items()}
    legacy = version in ("1.0", "1.2") or (version not in AGENT_SCHEMA_VERSIONS and "mainSteps" not in data)
    used, ignored = ("runtimeConfig", "mainSteps") if legacy else ("mainSteps", "runtimeConfig")
    if data.get(ignored):
        notes.append(Finding("warning", ignored, f"ignored: schema version {version} runs {used}"))
    steps = _runtime_config(data.get(used), source, notes) if legacy else _main_steps(data.get(used), source, notes)
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        notes.append(_undecodable("description", description, "text"))
    return Document(schema_version=version or "", description=description if isinstance(description, str) else "",
                    parameters=parameters, steps=steps, notes=tuple(notes))
