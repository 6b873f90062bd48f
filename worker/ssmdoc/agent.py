"""What SSM Agent decides about a step before running it: preconditions, and whether the step
runs, is skipped or fails (agent/framework/runpluginutil/runpluginutil.go getStepExecutionOperation,
evaluatePreconditions; agent/framework/docparser/docparser.go
validateAndReplaceParametersInPreconditionArguments).

The worker predicts a run (dry-run, the plan) and the local runner imitates one from the same
functions, so the agent's behaviour is written down once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from worker.ssmdoc.model import (
    COMMAND_ACTIONS,
    MACOS_ACTIONS,
    REGISTERED_ACTIONS,
    Document,
    Step,
    kind_of,
)
from worker.ssmdoc.substitute import AgentCrash, held_values, replace_parameters

# agent/ssm/ssmparameterresolver/common.go: how a precondition argument is found to hold a reference.
_SSM_REFERENCE = re.compile(r"\{\{\s*ssm:[\w\-/]+\s*\}\}", re.ASCII)
_SECURE_REFERENCE = re.compile(r"\{\{\s*ssm-secure:[\w\-/]+\s*\}\}", re.ASCII)


def version_at_least(version: str, minimum: str) -> bool:
    try:
        have = [int(part) for part in version.split(".")]
        want = [int(part) for part in minimum.split(".")]
    except ValueError:
        return False
    return have >= want


def precondition_resolver(held: Mapping[str, Any]) -> Callable[[str], str]:
    """A precondition argument with parameters substituted from ``held`` (docparser.go, at parse time,
    defaults included). The agent asserts the result is text: a whole placeholder of a list, number,
    true/false or mapping parameter makes it panic while parsing the document (AgentCrash)."""

    def resolve(argument: str) -> str:
        resolved = replace_parameters(argument, held)
        if not isinstance(resolved, str):
            raise AgentCrash(f"the precondition argument {argument!r} is replaced by {kind_of(resolved)}, not "
                             "text; SSM Agent panics parsing the document")
        return resolved

    return resolve


def evaluate_preconditions(precondition: Mapping[str, tuple[str, ...]], resolve: Callable[[str], str],
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

    Follows runpluginutil.go getStepExecutionOperation: a plugin is known (allPlugins), supported on
    the platform (IsPluginSupportedForCurrentPlatform: every known one but on macOS) and registered
    by that platform's agent build; preconditions only from schema 2.2. Returns ("run" | "skip" |
    "fail", message).
    """
    name, action = step.name, step.action
    known = action in COMMAND_ACTIONS
    supported = action in MACOS_ACTIONS if platform == "MacOS" else True
    registered = action in REGISTERED_ACTIONS.get(platform, REGISTERED_ACTIONS["Linux"])
    unknown = (f"Plugin with name {action} is not supported by this version of ssm agent, please update to "
               f"latest version. Step name: {name}")
    unsupported = f"Step execution skipped due to unsupported plugin: {action}. Step name: {name}"
    if not version_at_least(document.schema_version, "2.2"):
        if not known:
            return "fail", unknown
        if not supported:
            return "fail", f"Plugin with name {action} is not supported in current platform. Step name: {name}"
        if step.precondition:
            return "fail", f"Precondition is not supported for document schema version prior to 2.2. Step name: {name}"
        if not registered:
            return "fail", f"Plugin with name {action} not found. Step name: {name}"
        return "run", ""
    if not step.precondition:
        if not known:
            return "fail", unknown
        return ("run", "") if supported and registered else ("skip", unsupported)
    resolve = precondition_resolver(held_values(document, values))
    allowed, messages, invalid = evaluate_preconditions(step.precondition, resolve, platform)
    if allowed and not known:
        return "fail", unknown
    if not supported or not registered:
        return "skip", unsupported
    if not allowed:
        return "skip", (f"Step execution skipped due to unsatisfied preconditions: '{', '.join(messages)}'. "
                        f"Step name: {name}")
    if invalid:
        return "fail", (f"Unrecognized precondition(s): '{', '.join(invalid)}', please update agent to latest "
                        f"version. Step name: {name}")
    return "run", ""
