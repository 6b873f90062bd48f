"""How SSM Agent's script plugins read a step once parameters are substituted: the inputs decoded
into the plugin's Go struct, the execution timeout, the working directory, the exit code's
status, and how a schema 1.x plugin's ``properties`` are unrolled.

Sources (aws/amazon-ssm-agent): agent/plugins/runscript/runscript.go (RunScriptPluginInput,
runCommandsRawInput, runCommands), agent/plugins/pluginutil/pluginutil.go (ValidateExecutionTimeout,
extractIntFromString, ValidatePluginId, CreateScriptFile), pluginutil_unix.go / pluginutil_windows.go
GetStatus, agent/framework/runpluginutil/runpluginutil.go (runPlugin, getStepName, GetPropertyName).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.ssmdoc.golang import (
    GoDecodeError,
    GoField,
    go_atoi,
    go_decode,
    go_parse_float,
    go_text,
)
from worker.ssmdoc.model import (
    DEFAULT_TIMEOUT_SECONDS,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
)

EXIT_SUCCESS_SKIP_REST = 168  # contracts.ExitWithSuccess
EXIT_FAILURE_SKIP_REST = 169  # contracts.ExitWithFailure
_SCRIPT_FIELDS = (GoField("RunCommand", "[]string"), GoField("Environment", "map[string]string"),
                  GoField("ID", "string"), GoField("WorkingDirectory", "string"), GoField("TimeoutSeconds", "any"))
_SCRIPT_STRUCT = "runscript.RunScriptPluginInput"
_PROPERTY_STRUCT = "struct { ID string }"


class PluginInputError(ValueError):
    """The step's inputs do not decode into the plugin's struct: the agent fails the step with this
    text in its stderr (iohandler MarkAsFailed), before anything runs."""


def invalid_format(raw: Any, error: GoDecodeError) -> PluginInputError:
    """The agent's message for inputs it cannot decode (runscript.go runCommandsRawInput, runPlugin)."""
    return PluginInputError(f"Invalid format in plugin properties {go_text(raw)};\nerror {error}")


@dataclass(frozen=True)
class ScriptInputs:
    """RunScriptPluginInput as decoded: what a script step runs with."""

    run_command: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    id: str = ""
    working_directory: str = ""
    timeout_seconds: Any = None

    def script(self) -> str:
        """The script file's text (pluginutil.go CreateScriptFile): the lines joined, one final newline."""
        return "\n".join(self.run_command) + "\n"


def decode_script_inputs(raw: Any) -> ScriptInputs:
    """Substituted inputs as runscript.go decodes them; PluginInputError with the agent's text if
    they do not fit (runCommand must be a list of strings, environment a map of strings, ...)."""
    try:
        decoded = go_decode(raw, _SCRIPT_STRUCT, _SCRIPT_FIELDS)
    except GoDecodeError as exc:
        raise invalid_format(raw, exc) from exc
    plugin_id = decoded.get("ID", "")
    return ScriptInputs(run_command=decoded.get("RunCommand", []), environment=decoded.get("Environment", {}),
                        id="" if plugin_id.startswith(("../", "~/")) else plugin_id,  # ValidatePluginId
                        working_directory=decoded.get("WorkingDirectory", ""),
                        timeout_seconds=decoded.get("TimeoutSeconds"))


def input_value(inputs: Mapping[str, Any], name: str) -> Any:
    """The value Go's decoder keeps for input ``name``: keys match case-insensitively, and of several
    matches the last in json.Marshal's sorted order wins. None when there is none."""
    found = [key for key in sorted(inputs, key=str) if str(key).lower() == name.lower()]
    return inputs[found[-1]] if found else None


def has_input(inputs: Mapping[str, Any], name: str) -> bool:
    return any(str(key).lower() == name.lower() for key in inputs)


def check_property(raw: Any) -> None:
    """A schema 1.x property entry must decode into ``struct { ID string }`` (runPlugin getStepName,
    GetPropertyName) before the plugin runs; aws:cloudWatch is exempt."""
    try:
        go_decode(raw, _PROPERTY_STRUCT, (GoField("ID", "string"),))
    except GoDecodeError as exc:
        raise invalid_format(raw, exc) from exc


def property_entries(properties: Any) -> tuple[list[Any], bool]:
    """A 1.x plugin's substituted ``properties`` as the entries runPlugin runs, and whether their
    results are merged: a list runs entry by entry into one merged result, anything else once."""
    if isinstance(properties, list):
        return list(properties), True
    return [properties], False


def _seconds(value: Any) -> int | None:
    """ValidateExecutionTimeout's number: Atoi, else ParseFloat cut toward zero; a JSON number cut too."""
    number: float | None = None
    if isinstance(value, str):
        whole = go_atoi(value)
        if whole is not None:
            return whole
        number = go_parse_float(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    if number is None or not math.isfinite(number):
        return None
    return int(number)


def execution_timeout(value: Any) -> int:
    """A step's timeoutSeconds as the agent reads it (pluginutil.go ValidateExecutionTimeout).

    Text is read with Go's strconv (``"30"``, ``"30.9"`` -> 30, ``"1e2"`` -> 100; ``" 30"`` is not a
    number); anything else, and anything outside 5..172800, becomes the default 3600 (not the
    nearest bound).
    """
    seconds = _seconds(value)
    if seconds is None or not MIN_TIMEOUT_SECONDS <= seconds <= MAX_TIMEOUT_SECONDS:
        return DEFAULT_TIMEOUT_SECONDS
    return seconds


def timeout_is_literal_number(value: Any) -> bool:
    """Whether ``value`` reads as a whole number of seconds the agent keeps as it is."""
    seconds = _seconds(value)
    return seconds is not None and execution_timeout(value) == seconds


def working_directory(value: str, orchestration: str, default: str) -> str:
    """runscript.go runCommands: an absolute directory as given (it must exist); a relative one
    under the document's ``downloads`` folder when it exists there (where aws:downloadContent puts
    files), else the default directory."""
    if os.path.isabs(value):
        return value
    candidate = os.path.join(orchestration, "downloads", value)
    return candidate if os.path.isdir(candidate) else default


def reboot_code(platform: str) -> int:
    """appconfig RebootExitCode: 194 on Linux and macOS, 3010 on Windows."""
    return 3010 if platform == "Windows" else 194


def stopped_code(platform: str) -> int:
    """appconfig CommandStoppedPreemptivelyExitCode: SIGKILL's 137 on Linux and macOS, -1 on Windows."""
    return -1 if platform == "Windows" else 137


def exit_status(code: int, platform: str) -> str:
    """pluginutil GetStatus for a script that exited by itself."""
    if code == 0:
        return "Success"
    if code == reboot_code(platform):
        return "SuccessAndReboot"
    if code == stopped_code(platform):
        return "TimedOut"  # a script exiting 137 itself looks like the agent's own kill
    return "Failed"


def modifier(properties: Any, key: str) -> str:
    """runpluginutil.go getStringPropByName: a string, or a boolean as "true"/"false", from a mapping."""
    value = properties.get(key) if isinstance(properties, Mapping) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else ""
