"""Runs an SSM Command document's steps on this machine the way SSM Agent 3.3.1142.0 would.

dry-run --execute runs a document with it in production, and the local emulator's SendCommand runs
every command with it, so it lives beside the agent semantics it carries out (``substitute``,
``parameterstore``, ``plugins``, ``agent``) and is the one module of the package with I/O:
subprocesses, a scratch directory. Behaviour follows the amazon-ssm-agent source
(aws/amazon-ssm-agent):

- docparser.go: before any step runs, every step's inputs are substituted and their
  ``{{ssm:...}}`` references resolved; a failure there (a missing Parameter Store name, a name the
  agent cannot turn into a pattern) fails the document with no step run (``RunResult.error``).
- runpluginutil.go RunPlugins: steps run in order; exit code 168 marks a step Success and 169
  Failed, and both skip every later step; a Failed step with ``inputs.onFailure: exit`` (or
  ``successAndExit``, which turns it into Success with code 168) and a Success step with
  ``inputs.onSuccess: exit`` skip the rest, except a ``finallyStep`` last step. The agent appends
  its own explanation lines to the step's output, and clears stderr for 168. A 1.x plugin whose
  ``properties`` is a list runs each entry and merges them into one result (iohandler Merge).
- runscript.go: the inputs are decoded into the plugin's struct (a runCommand that is not a list
  of strings fails the step with "Invalid format in plugin properties ..."); the lines are written
  to ``_script.sh`` (``_script.ps1`` with a byte order mark) joined with newlines and run as
  ``sh -c <script>`` (PowerShell: ``/usr/bin/powershell`` or ``/usr/bin/pwsh -f <script>``). Here
  a ``#!`` line is honoured directly, which works on noexec temp directories too. Any exit but
  0, the reboot code and a kill by the agent adds "failed to run commands: exit status N" to stderr.
- executers.go: the process leads its own process group; timeout and cancel SIGKILL the whole
  group and give exit code 137 on Linux/macOS (-1 on Windows); a process killed by another signal
  reports -1. The agent waits for the script's stdout/stderr to close as well as for its exit, so
  a background child holding them keeps the step running until the timeout; so does this runner.
  The script's environment is the agent's own (a systemd service: PATH and LANG, no HOME), the
  step's ``environment`` input, ``SSM_COMMAND_ID``, then ``AWS_SSM_INSTANCE_ID``,
  ``AWS_SSM_REGION_NAME``, ``AWS_SSM_PLATFORM_NAME``, ``AWS_SSM_PLATFORM_VERSION`` (``AgentContext``);
  PowerShell on Linux/macOS also gets ``HOME=/`` and loses its first ``TERM`` entry. ENV_VAR's
  ``SSM_<Name>`` variables (agents >= 3.3.2746.0, from the documentation) join the step's map.
- pluginutil GetStatus: exit 0 Success; 194 (3010 on Windows) SuccessAndReboot; 137 TimedOut even
  when the script itself exits 137; anything else Failed. After SuccessAndReboot the agent reboots
  the instance and runs that step again from the start, then the rest; this runner cannot reboot:
  it stops there and says what the agent would do (``RunResult.reboot``); ``resume`` runs the rest
  as the agent does after the reboot (the emulator's instances "reboot" that way).
- contracts/aggregator.go DocumentResultAggregator: SuccessAndReboot if any step asked for a
  reboot, else Failed if any step Failed, else TimedOut, else Cancelled, else Success (Skipped
  counts as success).

Output: the agent keeps each step's stdout and stderr to their first 24,000 bytes
(pluginutil.StringPrefix: limit-20 bytes plus "--output truncated--"); GetCommandInvocation then
shows stderr's first 8,000 characters (``SERVICE_STDERR_LIMIT``, the service's cut). A step's
ListCommandInvocations Output is iohandler.TruncateOutput of both streams into 2,500 bytes.

Unlike the agent, the runner kills whatever is left in a step's process group when the step ends,
so no test leaves processes behind.
"""

from __future__ import annotations

import os
import platform as host
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.ssmdoc.agent import precondition_resolver, step_outcome
from worker.ssmdoc.model import AGENT_SCHEMA_VERSIONS, SCRIPT_ACTIONS, Document, Step
from worker.ssmdoc.parameterstore import Lookup, ResolveError, resolve
from worker.ssmdoc.plugins import (
    EXIT_FAILURE_SKIP_REST,
    EXIT_SUCCESS_SKIP_REST,
    PluginInputError,
    ScriptInputs,
    check_property,
    decode_script_inputs,
    execution_timeout,
    exit_status,
    modifier,
    property_entries,
    stopped_code,
    working_directory,
)
from worker.ssmdoc.process import Output, run_process, truncate_output
from worker.ssmdoc.substitute import (
    AgentCrash,
    held_values,
    parameter_environment,
    replace_parameters,
    with_defaults,
)

SERVICE_STDERR_LIMIT = 8000  # GetCommandInvocation StandardErrorContent (API reference): the service's cut
_SKIP_REST_NOTE = {
    EXIT_SUCCESS_SKIP_REST: "\nStep exited with code 168. Therefore, marking step as succeeded. "
                            "Further document steps will be skipped.",
    EXIT_FAILURE_SKIP_REST: "\nStep exited with code 169. Therefore, marking step as Failed. "
                            "Further document steps will be skipped.",
}
_ON_FAILURE_NOTE = "\nStep was found to have onFailure property. Further document steps will be skipped."
# StatusDetails by status, as the API spells them (CamelCase); the emulator reports these too.
STATUS_DETAILS = {"Success": "Success", "Failed": "Failed", "TimedOut": "ExecutionTimedOut",
                  "Cancelled": "Cancelled", "Skipped": "Skipped", "SuccessAndReboot": "SuccessAndReboot"}
# appconfig constants_unix.go / constants_darwin.go / constants_windows.go
_POWERSHELL = {"Linux": ("/usr/bin/powershell", "/usr/bin/pwsh"), "MacOS": ("/usr/local/bin/pwsh",),
               "Windows": (r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",)}
_POWERSHELL_ARGS = {"Windows": ("-InputFormat", "None", "-Noninteractive", "-NoProfile", "-ExecutionPolicy",
                                "unrestricted", "-f")}
_BOM = "\ufeff"


@dataclass(frozen=True)
class AgentContext:
    """What the agent knows about the command and its instance: the environment it gives scripts."""

    command_id: str
    instance_id: str
    region: str
    platform_name: str
    platform_version: str


def local_platform() -> tuple[str, str]:
    """This machine's platform name and version as the agent reads them on Linux (os-release NAME and
    VERSION_ID, platform_unix.go getPlatformDetails); the OS name and release elsewhere."""
    try:
        release = host.freedesktop_os_release()
        return release.get("NAME", ""), release.get("VERSION_ID", "")
    except OSError:
        return host.system(), host.release()


def service_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The agent's own process environment as its systemd service has it: PATH and LANG (no HOME,
    no USER), taken from ``environ`` (default os.environ)."""
    environ = os.environ if environ is None else environ
    return {key: environ[key] for key in ("PATH", "LANG") if key in environ}


@dataclass
class StepResult:
    name: str
    action: str
    status: str  # Success | Failed | TimedOut | Skipped | Cancelled | SuccessAndReboot
    exit_code: int
    stdout: str
    stderr: str
    status_details: str = ""
    message: str = ""  # the agent's own word when no script output explains the step (why skipped, why failed)
    output: str | None = field(default=None, compare=False)  # the plugin's Output as the agent computed it
    scripts: list[str] = field(default_factory=list, compare=False)  # each script file's text, as written

    def plugin_output(self) -> str:
        """ListCommandInvocations' CommandPlugin Output for this step (iohandler.TruncateOutput)."""
        if self.output is not None:
            return self.output
        if not self.stdout and not self.stderr:
            return self.message
        return truncate_output(self.stdout.encode(), self.stderr.encode())


@dataclass
class RunResult:
    status: str  # Success | Failed | TimedOut | Cancelled | SuccessAndReboot
    status_details: str
    response_code: int
    steps: list[StepResult]
    error: str = ""  # the document failed before any step ran, with the agent's message
    reboot: str = ""  # what the agent would do next, when a step asked for a reboot


def powershell(platform: str, search_path: str | None) -> str | None:
    """The PowerShell this machine runs a ``platform`` instance's scripts with: ``pwsh`` on the
    agent's PATH, else the agent's own fixed path (constants_unix.go) when it exists here."""
    agent_paths = (p for p in _POWERSHELL.get(platform, _POWERSHELL["Linux"]) if os.path.isfile(p))
    return shutil.which("pwsh", path=search_path) or next(agent_paths, None)


def _unsupported(action: str) -> str:
    return f"the local runner cannot run {action} steps; it runs only aws:runShellScript and aws:runPowerShellScript"


def not_runnable(step: Step, search_path: str | None, platform: str = "Linux") -> str | None:
    """Why this runner cannot run ``step`` on this machine (its action, or no PowerShell), else None.

    dry-run --execute asks before running anything, so such a step is reported, not run as a failure.
    """
    if step.action not in SCRIPT_ACTIONS:
        return _unsupported(step.action)
    if step.action == "aws:runPowerShellScript" and powershell(platform, search_path) is None:
        return ("pwsh not available: aws:runPowerShellScript steps run with PowerShell, which is neither at "
                f"{' nor '.join(_POWERSHELL['Linux'])} nor on PATH; install it or skip this step with a "
                "platformType precondition")
    return None


def _not_run(step: Step, status: str, message: str) -> StepResult:
    """A step the agent did not run: the message is its Output (and Error when Failed), streams empty."""
    return StepResult(step.name, step.action, status, 1 if status in ("Failed", "Cancelled") else 0, "", "",
                      STATUS_DETAILS[status], message, message)


class _Run:
    """One document run: the state every step shares."""

    def __init__(self, document: Document, values: Mapping[str, list[str]], platform: str, default_dir: str,
                 scratch: str, env: Mapping[str, str], context: AgentContext, cancel: threading.Event | None,
                 time_scale: float, on_output: Callable[[str, str, str], None] | None) -> None:
        self.document, self.values, self.platform = document, values, platform
        self.default_dir, self.orchestration = default_dir, scratch
        self.env, self.context = env, context
        self.cancel, self.time_scale, self.on_output = cancel, time_scale, on_output
        self.parameter_env = parameter_environment(document, values)

    def prepare(self, lookup: Lookup) -> list[Any]:
        """docparser.go: every step's properties substituted and resolved, preconditions substituted,
        before anything runs. Raises AgentCrash or ResolveError for a document-level failure."""
        if self.document.schema_version not in AGENT_SCHEMA_VERSIONS:
            raise ResolveError(f"Document with schema version {self.document.schema_version} is not supported by "
                               "this version of ssm agent, please update to latest version")
        if not self.document.steps:
            raise ResolveError("Unsupported schema format")
        held = held_values(self.document, self.values)
        self.parameter_env = {name: resolve(value, lookup) for name, value in self.parameter_env.items()}
        prepared = [resolve(replace_parameters(step.properties, held), lookup) for step in self.document.steps]
        argument = precondition_resolver(held)
        for step in self.document.steps:
            for args in (step.precondition or {}).values():
                for arg in args:
                    argument(arg)
        return prepared

    def step(self, index: int, step: Step, properties: Any) -> StepResult:
        decision, message = step_outcome(self.document, step, self.values, self.platform)
        if decision == "skip":
            return _not_run(step, "Skipped", message)
        if decision == "fail":
            return _not_run(step, "Failed", message)
        if self.cancel is not None and self.cancel.is_set():
            return _not_run(step, "Cancelled", "the command was cancelled before this step started")
        emit = self._emitter(step)
        if step.action not in SCRIPT_ACTIONS:
            out = Output(emit)
            out.mark_failed(_unsupported(step.action), writer=True)
        else:
            out = self._plugin(index, step, properties, emit)
        return self._finish(step, properties, out)

    def _emitter(self, step: Step) -> Callable[[str, str], None] | None:
        emit = self.on_output
        return (lambda stream, text: emit(step.name, stream, text)) if emit else None

    def _plugin(self, index: int, step: Step, properties: Any, emit: Callable[[str, str], None] | None) -> Output:
        """runpluginutil.go runPlugin: a 1.x list of properties runs entry by entry, merged into one."""
        entries, merged = property_entries(properties) if step.legacy else ([properties], False)
        out = Output(emit)
        for number, entry in enumerate(entries):
            part = Output(emit) if merged else out
            checked = True
            if step.legacy and step.action != "aws:cloudWatch":
                try:
                    check_property(entry)
                except PluginInputError as exc:
                    out.mark_failed(str(exc), writer=False)
                    checked = False
            if checked:
                self._script(index, number, step, entry, part)
            if merged:
                out.merge(part)
        if not entries:
            out.status = "Success"
        return out

    def _environment(self, step: Step, inputs: ScriptInputs) -> dict[str, str]:
        """executers.go prepareEnvironment (order matters: a later name wins)."""
        env = dict(self.env)
        env.update(inputs.environment)
        env.update(self.parameter_env)
        context = self.context
        if context.command_id:
            env["SSM_COMMAND_ID"] = context.command_id
        for name, value in (("AWS_SSM_INSTANCE_ID", context.instance_id), ("AWS_SSM_REGION_NAME", context.region),
                            ("AWS_SSM_PLATFORM_NAME", context.platform_name),
                            ("AWS_SSM_PLATFORM_VERSION", context.platform_version)):
            if value:
                env[name] = value
        if step.action == "aws:runPowerShellScript" and self.platform != "Windows":
            env["HOME"] = "/"  # executers_unix.go validateEnvironmentVariables
            term = next((key for key, value in env.items() if "TERM" in f"{key}={value}"), None)
            if term is not None:
                del env[term]
        return env

    def _argv(self, step: Step, script: str, lines: list[str]) -> list[str] | str:
        """The command line for the script, or the agent's error when there is no interpreter."""
        if step.action == "aws:runPowerShellScript":
            found = powershell(self.platform, self.env.get("PATH"))
            if found is None:
                agent_path = _POWERSHELL.get(self.platform, _POWERSHELL["Linux"])[-1]
                return f"failed to run commands: fork/exec {agent_path}: no such file or directory"
            return [found, *_POWERSHELL_ARGS.get(self.platform, ("-f",)), script]
        first = lines[0].split("\n", 1)[0] if lines else ""
        if first.startswith("#!") and first[2:].strip():
            # Linux passes everything after the interpreter as one argument.
            interpreter, *argument = first[2:].strip().split(None, 1)
            return [interpreter, *argument, script]
        return [shutil.which("sh", path=self.env.get("PATH")) or "/bin/sh", script]

    def _script(self, index: int, number: int, step: Step, entry: Any, out: Output) -> None:
        """runscript.go runCommandsRawInput and runCommands, for one set of inputs."""
        try:
            inputs = decode_script_inputs(entry)
        except PluginInputError as exc:
            out.mark_failed(str(exc), writer=True)
            return
        folder = os.path.join(self.orchestration, f"{index:03d}", f"{number:03d}")
        os.makedirs(folder, exist_ok=True)
        powershell_step = step.action == "aws:runPowerShellScript"
        script = os.path.join(folder, "_script.ps1" if powershell_step else "_script.sh")
        text = (_BOM if powershell_step else "") + inputs.script()
        out.scripts.append(text)
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(script, 0o700)
        argv = self._argv(step, script, inputs.run_command)
        if isinstance(argv, str):
            out.mark_failed(argv, writer=True)
            return
        cwd = working_directory(inputs.working_directory, self.orchestration, self.default_dir)
        deadline = time.monotonic() + execution_timeout(inputs.timeout_seconds) * self.time_scale
        outcome, code, error = run_process(argv, cwd, self._environment(step, inputs), deadline, self.cancel, out)
        if outcome == "timeout":
            out.code, out.status = stopped_code(self.platform), "TimedOut"
        elif outcome == "cancelled":
            out.code, out.status = stopped_code(self.platform), "Cancelled"
        elif outcome == "unstarted":
            out.code, out.status = 1, "Failed"
        else:
            out.code, out.status = code, "Failed" if code < 0 else exit_status(code, self.platform)
        if error and out.status not in ("Cancelled", "TimedOut", "SuccessAndReboot"):
            out.mark_failed(f"failed to run commands: {error}", writer=True)

    def _finish(self, step: Step, properties: Any, out: Output) -> StepResult:
        """RunPlugins after runPlugin: 168, 169 and onFailure, then each stream cut to 24,000 bytes."""
        output = out.plugin_output()
        status, code = out.status or "Success", out.code
        stdout_note = stderr_note = ""
        keep_stderr = True
        on_failure = modifier(properties, "onFailure")
        if code == EXIT_SUCCESS_SKIP_REST:
            status, stdout_note, keep_stderr = "Success", _SKIP_REST_NOTE[code], False
        elif code == EXIT_FAILURE_SKIP_REST:
            stdout_note = stderr_note = _SKIP_REST_NOTE[code]
        elif status == "Failed" and on_failure in ("exit", "successAndExit"):
            stdout_note = stderr_note = _ON_FAILURE_NOTE
            if on_failure == "successAndExit":
                status, code = "Success", EXIT_SUCCESS_SKIP_REST
        return StepResult(step.name, step.action, status, code, out.stdout.text(stdout_note),
                          out.stderr.text(stderr_note) if keep_stderr else "", STATUS_DETAILS[status], "", output,
                          out.scripts)


def _skips_rest(properties: Any, result: StepResult) -> bool:
    """Whether this finished step ends the document (runpluginutil.go getShouldPluginSkipBasedOnControlFlow)."""
    return (result.exit_code in _SKIP_REST_NOTE
            or (result.status == "Failed" and modifier(properties, "onFailure") == "exit")
            or (result.status == "Success" and modifier(properties, "onSuccess") == "exit"))


def _aggregate(results: list[StepResult], reboot: str = "") -> RunResult:
    """Invocation status as contracts/aggregator.go derives it; ResponseCode is our choice (no source
    says how SSM picks it for several steps): the first step with the deciding status, else the last
    step that ran."""
    statuses = {r.status for r in results}
    status = next((s for s in ("SuccessAndReboot", "Failed", "TimedOut", "Cancelled") if s in statuses), "Success")
    deciding = next((r for r in results if r.status == status), None) if status != "Success" else None
    ran = [r for r in results if r.status != "Skipped"]
    code = deciding.exit_code if deciding else (ran[-1].exit_code if ran else 0)
    return RunResult(status, STATUS_DETAILS[status], code, results, reboot=reboot)


def run_document(document: Document, values: Mapping[str, list[str]], *, platform: str = "Linux",
                 workdir: str | None = None, env: Mapping[str, str] | None = None,
                 context: AgentContext | None = None, parameter_store: Lookup | None = None,
                 cancel: threading.Event | None = None,
                 on_output: Callable[[str, str, str], None] | None = None,
                 on_step: Callable[[StepResult], None] | None = None,
                 resume: Sequence[StepResult] = (),
                 time_scale: float = 1.0) -> RunResult:
    """Run ``document``'s steps here as SSM Agent on a ``platform`` instance would.

    ``values`` are SendCommand's, validated; a parameter not given takes its declared default, as the
    agent fills it in. Steps run in ``workingDirectory`` (else ``workdir``, else a temporary
    directory removed afterwards). The agent's own process environment is ``service_environment()``
    with ``env`` over it; ``context`` gives the variables the agent adds (default: this
    machine's platform, no command or instance id). ``parameter_store`` answers GetParameters for
    ``{{ssm:...}}`` references (default: none exists). ``on_output(step, "stdout"|"stderr", text)``
    gets output as it arrives; ``on_step`` each StepResult as its step ends. ``resume`` is the
    previous run's steps when the instance "rebooted": finished steps are kept, the step that asked
    for the reboot runs again from the start. ``time_scale`` is wall-clock seconds per document
    second for step timeouts (tests and the emulator compress time with it).
    """
    values = with_defaults(document, values)
    context = context or AgentContext("", "", "", *local_platform())
    base = {**service_environment(), **(env or {})}
    results: list[StepResult] = []
    with tempfile.TemporaryDirectory(prefix="ssm-run-") as scratch:
        default_dir = workdir or os.path.join(scratch, "work")
        os.makedirs(default_dir, exist_ok=True)
        run = _Run(document, values, platform, default_dir, os.path.join(scratch, "orchestration"), base, context,
                   cancel, time_scale, on_output)
        try:
            prepared = run.prepare(parameter_store or (lambda names: {}))
        except (AgentCrash, ResolveError) as exc:
            return RunResult("Failed", STATUS_DETAILS["Failed"], 1, [], error=str(exc))
        for index, step in enumerate(document.steps):
            if index < len(resume) and resume[index].status != "SuccessAndReboot":
                results.append(resume[index])
                continue
            last = index == len(document.steps) - 1
            ended = any(_skips_rest(properties, done) for properties, done in zip(prepared, results, strict=False))
            if ended and not (modifier(prepared[index], "finallyStep") == "true" and last):
                result = _not_run(step, "Skipped", f"Plugin with name {step.action} and id {step.name} skipped "
                                                   "due to prior step with an exit condition")
            else:
                result = run.step(index, step, prepared[index])
            results.append(result)
            if on_step is not None:
                on_step(result)
            if result.status == "SuccessAndReboot":
                return _aggregate(results, f"SSM Agent would now reboot the instance, then run step {step.name} again "
                                           "from its start, then the steps after it")
    return _aggregate(results)
