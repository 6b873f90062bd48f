"""The SSM Command document as data: what a loaded document holds, and the names SSM knows.

Every other module of the package reads these dataclasses; none of them parses text. The constants
are the agent's (amazon-ssm-agent, aws/amazon-ssm-agent) where it is the judge, so a rule written
against them means what SSM Agent means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# agent/appconfig/constants.go SupportedDocumentVersions; the user guide documents 1.2, 2.0 and 2.2 for Command.
AGENT_SCHEMA_VERSIONS = frozenset({"1.0", "1.2", "2.0", "2.0.1", "2.0.2", "2.0.3", "2.2"})
DOCUMENTED_SCHEMA_VERSIONS = ("1.2", "2.0", "2.2")
PARAMETER_TYPES = ("String", "StringList", "StringMap", "Integer", "Boolean", "MapList")
LIST_TYPES = ("StringList", "MapList", "Array")  # parameter types whose value is a list of items
# Plugin names SSM Agent knows (agent/appconfig/constants.go, runpluginutil.go allPlugins).
COMMAND_ACTIONS = frozenset({
    "aws:applications", "aws:cloudWatch", "aws:configureDaemon", "aws:configureDocker", "aws:configurePackage",
    "aws:domainJoin", "aws:downloadContent", "aws:psModule", "aws:refreshAssociation", "aws:runDockerAction",
    "aws:runDocument", "aws:runPowerShellScript", "aws:runShellScript", "aws:softwareInventory",
    "aws:updateAgent", "aws:updateSsmAgent",
})
SCRIPT_ACTIONS = ("aws:runShellScript", "aws:runPowerShellScript")
# Plugins each agent build registers (processor/executer/plugin: plugin.go, plugin_unix.go, plugin_windows.go):
# a known plugin that is not registered is "not found" (schema < 2.2) or skipped (2.2).
_REGISTERED_EVERYWHERE = frozenset({
    "aws:cloudWatch", "aws:configureDocker", "aws:configurePackage", "aws:downloadContent", "aws:refreshAssociation",
    "aws:runDockerAction", "aws:runDocument", "aws:runPowerShellScript", "aws:softwareInventory", "aws:updateSsmAgent",
})
REGISTERED_ACTIONS = {
    "Linux": _REGISTERED_EVERYWHERE | {"aws:runShellScript", "aws:domainJoin"},
    "MacOS": _REGISTERED_EVERYWHERE | {"aws:runShellScript", "aws:domainJoin"},
    "Windows": _REGISTERED_EVERYWHERE | {"aws:psModule", "aws:applications", "aws:domainJoin", "aws:updateAgent"},
}
# runpluginutil_darwin.go supportedPlugins: the only plugins a macOS agent supports.
MACOS_ACTIONS = frozenset({"aws:updateSsmAgent", "aws:runPowerShellScript", "aws:runShellScript",
                           "aws:softwareInventory", "aws:refreshAssociation", "aws:configurePackage"})
PLATFORMS = ("Linux", "Windows", "MacOS")
# agent/plugins/pluginutil/pluginutil.go ValidateExecutionTimeout.
DEFAULT_TIMEOUT_SECONDS = 3600
MIN_TIMEOUT_SECONDS = 5
MAX_TIMEOUT_SECONDS = 172800
VALID_NAME = re.compile(r"[a-zA-Z0-9]+")  # agent/framework/docparser/parameters paramNameRegex


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
    agent reads them (runpluginutil.go getStringPropByName on the plugin properties).

    ``properties`` is the plugin configuration as written, which the agent substitutes and then
    decodes: a 2.x step's ``inputs``; a 1.x plugin's ``properties``, which may be a mapping, a list
    (each entry runs, the results merge into one) or a string. ``inputs`` is it when it is a
    mapping, else empty.
    """

    name: str
    action: str
    inputs: Mapping[str, Any]
    platform: str | None
    on_failure: str | None = None
    on_success: str | None = None
    finally_step: bool = False
    precondition: Mapping[str, tuple[str, ...]] | None = None  # as written: operator -> arguments
    path: str = ""  # where the step is in the document, for messages: "mainSteps[1]"
    properties: Any = None
    legacy: bool = False  # a schema 1.x runtimeConfig plugin (its name is the step name)

    def __post_init__(self) -> None:
        if self.properties is None and not self.legacy:
            object.__setattr__(self, "properties", self.inputs)


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


def inputs_path(path: str) -> str:
    """Where a step's inputs are: mainSteps[i].inputs, or the 1.x properties entry itself."""
    return f"{path}.inputs" if path.startswith("mainSteps") else path


def action_path(path: str) -> str:
    """Where a step's action is named: mainSteps[i].action, or the 1.x plugin entry."""
    return f"{path}.action" if path.startswith("mainSteps") else path.rsplit(".", 1)[0]


def kind_of(value: Any) -> str:
    """A value's kind in the words of a document author, for messages: "a string", "a list"."""
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


def scalar_text(value: Any) -> str:
    """A YAML scalar as the text SSM sees (YAML's true is JSON's true)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)
