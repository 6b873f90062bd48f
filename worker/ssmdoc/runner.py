"""Runs an SSM Command document's steps on this machine the way SSM Agent would.

dry-run --execute runs a document with it in production, and the local emulator's SendCommand runs
every command with it, so it lives beside the agent semantics it carries out (``agent``) and is the
one module of the package with I/O: subprocesses, a scratch directory. Behaviour follows the
amazon-ssm-agent source (aws/amazon-ssm-agent):

- agent/framework/runpluginutil/runpluginutil.go RunPlugins: steps run in order; a step whose
  precondition fails is Skipped (a form of success); exit code 168 marks the step Success and 169
  Failed, and both skip every later step; a Failed step with ``inputs.onFailure: exit`` (or
  ``successAndExit``, which turns it into Success with code 168) and a Success step with
  ``inputs.onSuccess: exit`` skip the rest, except a ``finallyStep`` last step. The agent appends
  its own explanation lines to the step's output, and clears stderr for 168.
- agent/plugins/runscript + agent/executers: the runCommand lines are written to ``_script.sh``
  (joined with newlines) and run as ``sh -c <script>``, i.e. exec'd, so a ``#!`` line picks the
  interpreter; here the ``#!`` line is honoured directly, which works on noexec temp directories too.
  The process leads its own process group; timeout and cancel SIGKILL the whole group and give
  exit code 137 on Linux/macOS (-1 on Windows); a process killed by any other signal reports -1.
  The agent waits for the script's stdout/stderr to close as well as for its exit, so a background
  child holding them keeps the step running until the timeout; so does this runner.
- pluginutil.go ValidateExecutionTimeout: timeoutSeconds outside 5..172800 becomes 3600.
- pluginutil GetStatus: exit 0 Success; 194 (3010 on Windows) "SuccessAndReboot"; 137 (the
  stopped-preemptively code) TimedOut even when the script itself exits 137; anything else Failed.
  On reboot the agent stops, reboots the instance and then runs the same step again; this runner
  does not reboot, reports the step as Success (status_details says so) and goes on.
- contracts/aggregator.go DocumentResultAggregator: the invocation is Failed if any step Failed,
  else TimedOut, else Cancelled, else Success (Skipped counts as success).

Output, as GetCommandInvocation shows it: SSM keeps one output per step (plugin). For a document
with more than one step, GetCommandInvocation needs PluginName (the step name) and reports that
step's StandardOutputContent (first 24,000 characters) and StandardErrorContent (first 8,000), each
cut as agent pluginutil.StringPrefix does (a value of the limit or longer keeps limit-20 characters
plus "--output truncated--"). ListCommandInvocations' per-plugin Output is stdout and stderr joined
by iohandler.TruncateOutput into 2,500 characters (``StepResult.plugin_output``). No single
invocation-wide stdout exists; ``RunResult.steps`` holds each step's.

Unlike the agent, the runner kills whatever is left in a step's process group when the step ends,
so no test leaves processes behind.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from worker.ssmdoc.agent import (
    environment,
    execution_timeout,
    interpolate,
    script_lines,
    step_outcome,
    with_defaults,
)
from worker.ssmdoc.model import SCRIPT_ACTIONS, Document, Step

STDOUT_LIMIT = 24000
STDERR_LIMIT = 8000
TRUNCATED = "--output truncated--"
PLUGIN_OUTPUT_LIMIT = 2500  # iohandler.MaximumPluginOutputSize
EXIT_SUCCESS_SKIP_REST = 168
EXIT_FAILURE_SKIP_REST = 169
_SKIP_REST_NOTE = {
    EXIT_SUCCESS_SKIP_REST: "\nStep exited with code 168. Therefore, marking step as succeeded. "
                            "Further document steps will be skipped.",
    EXIT_FAILURE_SKIP_REST: "\nStep exited with code 169. Therefore, marking step as Failed. "
                            "Further document steps will be skipped.",
}
_ON_FAILURE_NOTE = "\nStep was found to have onFailure property. Further document steps will be skipped."
# StatusDetails by status, as the API spells them (CamelCase); the emulator reports these too.
STATUS_DETAILS = {"Success": "Success", "Failed": "Failed", "TimedOut": "ExecutionTimedOut",
                  "Cancelled": "Cancelled", "Skipped": "Skipped"}
_POLL = 0.05
_REAP_SECONDS = 5.0


@dataclass
class StepResult:
    name: str
    action: str
    status: str  # Success | Failed | TimedOut | Skipped | Cancelled
    exit_code: int
    stdout: str
    stderr: str
    status_details: str = ""
    message: str = ""  # the agent's own word when no script output explains the step (why skipped, why failed)

    def plugin_output(self) -> str:
        """ListCommandInvocations' CommandPlugin Output for this step (iohandler.TruncateOutput)."""
        if not self.stdout and not self.stderr:
            return self.message[:PLUGIN_OUTPUT_LIMIT]
        return _plugin_output(self.stdout, self.stderr)


@dataclass
class RunResult:
    status: str  # Success | Failed | TimedOut | Cancelled
    status_details: str
    response_code: int
    steps: list[StepResult]


def _plugin_output(stdout: str, stderr: str, capacity: int = PLUGIN_OUTPUT_LIMIT) -> str:
    """stdout, an error title and stderr, cut to ``capacity`` as iohandler.TruncateOutput does."""
    out_cut, err_cut = "\n---Output truncated---", "\n---Error truncated----"
    title = "\n----------ERROR-------\n" if stderr else ""
    space = capacity - len(title)
    if len(stdout) + len(stderr) < space:
        return stdout + title + stderr
    if len(stdout) > space // 2 and len(stderr) > space // 2:
        half = (space - len(err_cut) - len(out_cut)) // 2
        return stdout[:half] + out_cut + title + stderr[:half] + err_cut
    if len(stdout) < space // 2:
        return stdout + title + stderr[:space - len(err_cut) - len(stdout)] + err_cut
    return stdout[:space - len(out_cut) - len(stderr)] + out_cut + title + stderr


class _Capture:
    """One output stream: decoded as it arrives, the first ``limit`` characters kept, the length counted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept: list[str] = []
        self.kept_size = 0
        self.total = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, data: bytes, final: bool = False) -> str:
        text = self._decoder.decode(data, final)
        room = self.limit - self.kept_size
        if room > 0 and text:
            self.kept.append(text[:room])
            self.kept_size += min(room, len(text))
        self.total += len(text)
        return text

    def result(self, note: str = "") -> str:
        """The stream plus the agent's note, cut as pluginutil.StringPrefix does."""
        text = "".join(self.kept) + note
        if self.total + len(note) < self.limit:
            return text
        return text[:self.limit - len(TRUNCATED)] + TRUNCATED


def _stopped_code(platform: str) -> int:
    """appconfig CommandStoppedPreemptivelyExitCode: SIGKILL's 137 on Unix, -1 on Windows."""
    return -1 if platform == "Windows" else 137


def _reboot_code(platform: str) -> int:
    return 3010 if platform == "Windows" else 194


_NO_PWSH = ("pwsh not available: the local runner runs aws:runPowerShellScript steps with PowerShell 7 (pwsh), "
            "which is not on PATH; install it or skip this step with a platformType precondition")


def _unsupported(action: str) -> str:
    return f"the local runner cannot run {action} steps; it runs only aws:runShellScript and aws:runPowerShellScript"


def not_runnable(step: Step, search_path: str | None) -> str | None:
    """Why this runner cannot run ``step`` on this machine (its action, or no pwsh), else None.

    dry-run --execute asks before running anything, so such a step is reported, not run as a failure.
    """
    if step.action not in SCRIPT_ACTIONS:
        return _unsupported(step.action)
    if step.action == "aws:runPowerShellScript" and shutil.which("pwsh", path=search_path) is None:
        return _NO_PWSH
    return None


def _interpreter(step: Step, script: str, lines: list[str], search_path: str | None) -> list[str] | str:
    """The command line for the script, or why there is none."""
    if step.action == "aws:runPowerShellScript":
        pwsh = shutil.which("pwsh", path=search_path)
        if pwsh is None:
            return _NO_PWSH
        return [pwsh, "-NonInteractive", "-NoProfile", "-ExecutionPolicy", "Unrestricted", "-File", script]
    first = lines[0].split("\n", 1)[0] if lines else ""
    if first.startswith("#!") and first[2:].strip():
        # Linux passes everything after the interpreter as one argument.
        interpreter, *argument = first[2:].strip().split(None, 1)
        return [interpreter, *argument, script]
    return [shutil.which("sh", path=search_path) or "/bin/sh", script]


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the process has ended, without reaping it: its pid, and so its group id, stay reserved."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class _Process:
    """One script run: reads both pipes with a selector, so every wait is bounded and nothing deadlocks."""

    def __init__(self, argv: list[str], cwd: str, env: Mapping[str, str], deadline: float,
                 cancel: threading.Event | None, emit: Callable[[str, str], None]) -> None:
        self.argv, self.cwd, self.env = argv, cwd, env
        self.deadline, self.cancel, self.emit = deadline, cancel, emit
        self.captures = _captures()

    def _read(self, selector: selectors.BaseSelector, timeout: float) -> None:
        for key, _ in selector.select(timeout):
            data = os.read(key.fd, 65536)
            if data:
                text = self.captures[key.data].feed(data)
                if text:
                    self.emit(key.data, text)
            else:
                selector.unregister(key.fileobj)

    def run(self) -> tuple[str, int]:
        """("exited" | "timeout" | "cancelled", exit code as Go reports it: -1 when killed by a signal)."""
        proc = subprocess.Popen(self.argv, cwd=self.cwd, env=dict(self.env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        outcome = "exited"
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(proc.stdout, selectors.EVENT_READ, "stdout")
                selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
                while selector.get_map() or not _exited(proc):
                    if self.cancel is not None and self.cancel.is_set():
                        outcome = "cancelled"
                        break
                    remaining = self.deadline - time.monotonic()
                    if remaining <= 0:
                        outcome = "timeout"
                        break
                    if selector.get_map():
                        self._read(selector, min(_POLL, remaining))
                    else:
                        time.sleep(min(_POLL, remaining))
                if outcome != "exited":
                    _kill_group(proc)
                    if selector.get_map():
                        self._read(selector, 0)  # what was written before the kill
        finally:
            _kill_group(proc)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=_REAP_SECONDS)
        for name, capture in self.captures.items():
            tail = capture.feed(b"", final=True)
            if tail:
                self.emit(name, tail)
        code = proc.returncode
        return outcome, -1 if code is None or code < 0 else code


def _working_directory(value: Any, default: str) -> str:
    """runscript.go: an absolute directory as given (it must exist); a relative one under the default
    directory when it exists there, else the default directory."""
    if isinstance(value, str) and os.path.isabs(value):
        return value
    candidate = os.path.join(default, value) if isinstance(value, str) else default
    return candidate if os.path.isdir(candidate) else default


def _not_run(step: Step, status: str, code: int, message: str, *, stderr: bool) -> StepResult:
    return StepResult(step.name, step.action, status, code, "", message if stderr else "",
                      STATUS_DETAILS[status], message)


def _skips_rest(step: Step, result: StepResult) -> bool:
    """Whether this finished step ends the document (runpluginutil.go getShouldPluginSkipBasedOnControlFlow)."""
    return (result.exit_code in _SKIP_REST_NOTE
            or (result.status == "Failed" and step.on_failure == "exit")
            or (result.status == "Success" and step.on_success == "exit"))


def _captures(stderr: str = "") -> dict[str, _Capture]:
    captures = {"stdout": _Capture(STDOUT_LIMIT), "stderr": _Capture(STDERR_LIMIT)}
    captures["stderr"].feed(stderr.encode(), final=True)
    return captures


def _finish(step: Step, status: str, code: int, captures: dict[str, _Capture], message: str = "") -> StepResult:
    """The agent's status changes and notes for 168, 169 and onFailure (RunPlugins), then truncation."""
    out_note = err_note = ""
    if code == EXIT_SUCCESS_SKIP_REST:
        status, out_note = "Success", _SKIP_REST_NOTE[code]
        captures["stderr"] = _Capture(STDERR_LIMIT)
    elif code == EXIT_FAILURE_SKIP_REST:
        out_note = err_note = _SKIP_REST_NOTE[code]
    elif status == "Failed" and step.on_failure in ("exit", "successAndExit"):
        out_note = err_note = _ON_FAILURE_NOTE
        if step.on_failure == "successAndExit":
            status, code = "Success", EXIT_SUCCESS_SKIP_REST
    if status == "Reboot":
        status, details = "Success", f"Success; reboot requested (exit {code}), not performed by the local runner"
    else:
        details = STATUS_DETAILS[status]
    return StepResult(step.name, step.action, status, code, captures["stdout"].result(out_note),
                      captures["stderr"].result(err_note), details, message)


class _Run:
    """One document run: the state every step shares."""

    def __init__(self, document: Document, values: Mapping[str, list[str]], platform: str, default_dir: str,
                 scratch: str, env: Mapping[str, str], cancel: threading.Event | None, time_scale: float,
                 on_output: Callable[[str, str, str], None] | None) -> None:
        self.document, self.values, self.platform = document, values, platform
        self.default_dir, self.scratch, self.env = default_dir, scratch, env
        self.cancel, self.time_scale, self.on_output = cancel, time_scale, on_output

    def step(self, index: int, step: Step) -> StepResult:
        decision, message = step_outcome(self.document, step, self.values, self.platform)
        if decision == "skip":
            return _not_run(step, "Skipped", 0, message, stderr=False)
        if decision == "fail":
            return _not_run(step, "Failed", 1, message, stderr=True)
        if step.action not in SCRIPT_ACTIONS:
            message = _unsupported(step.action)
            return _finish(step, "Failed", 1, _captures(message), message)
        if self.cancel is not None and self.cancel.is_set():
            return _not_run(step, "Cancelled", 1, "the command was cancelled before this step started", stderr=False)
        return self._script(index, step)

    def _script(self, index: int, step: Step) -> StepResult:
        inputs = interpolate(dict(step.inputs), self.values, document=self.document)
        lines = script_lines(inputs.get("runCommand"))
        folder = os.path.join(self.scratch, f"{index:03d}")
        os.makedirs(folder, exist_ok=True)
        script = os.path.join(folder, "_script.ps1" if step.action == "aws:runPowerShellScript" else "_script.sh")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(script, 0o700)
        argv = _interpreter(step, script, lines, self.env.get("PATH"))
        if isinstance(argv, str):
            return _finish(step, "Failed", 1, _captures(argv), argv)
        cwd = _working_directory(inputs.get("workingDirectory"), self.default_dir)
        deadline = time.monotonic() + execution_timeout(inputs.get("timeoutSeconds")) * self.time_scale
        emit = self.on_output
        process = _Process(argv, cwd, self.env, deadline, self.cancel,
                           (lambda stream, text: emit(step.name, stream, text)) if emit else (lambda *_: None))
        try:
            outcome, code = process.run()
        except OSError as exc:
            message = f"failed to run commands: {exc}"
            return _finish(step, "Failed", 1, _captures(message), message)
        if outcome != "exited":
            status, code = ("TimedOut" if outcome == "timeout" else "Cancelled"), _stopped_code(self.platform)
        elif code == 0:
            status = "Success"
        elif code == _stopped_code(self.platform):
            status = "TimedOut"
        elif code == _reboot_code(self.platform):
            status = "Reboot"
        else:
            status = "Failed"
        return _finish(step, status, code, process.captures)


def _aggregate(results: list[StepResult]) -> RunResult:
    """Invocation status as contracts/aggregator.go derives it; ResponseCode is our choice (no source
    says how SSM picks it for several steps): the first step with the deciding status, else the last
    step that ran."""
    statuses = {r.status for r in results}
    status = next((s for s in ("Failed", "TimedOut", "Cancelled") if s in statuses), "Success")
    deciding = next((r for r in results if r.status == status), None) if status != "Success" else None
    ran = [r for r in results if r.status != "Skipped"]
    code = deciding.exit_code if deciding else (ran[-1].exit_code if ran else 0)
    return RunResult(status, STATUS_DETAILS[status], code, results)


def run_document(document: Document, values: Mapping[str, list[str]], *, platform: str = "Linux",
                 workdir: str | None = None, env: Mapping[str, str] | None = None,
                 cancel: threading.Event | None = None,
                 on_output: Callable[[str, str, str], None] | None = None,
                 on_step: Callable[[StepResult], None] | None = None,
                 time_scale: float = 1.0) -> RunResult:
    """Run ``document``'s steps here as SSM Agent on a ``platform`` instance would.

    ``values`` are SendCommand's, validated; a parameter not given takes its declared default, as the
    agent fills it in. Steps run in ``workingDirectory`` (else ``workdir``, else a temporary directory
    removed afterwards) with os.environ + ``env`` + the document's ``SSM_<Name>`` variables. ``on_output(step, "stdout"|"stderr", text)`` gets output
    as it arrives; ``on_step`` each StepResult as its step ends. ``time_scale`` is wall-clock seconds
    per document second for step timeouts (tests and the emulator compress time with it).
    """
    values = with_defaults(document, values)
    run_env = {**os.environ, **(env or {}), **environment(document, values)}
    results: list[StepResult] = []
    with tempfile.TemporaryDirectory(prefix="ssm-run-") as scratch:
        default_dir = workdir or os.path.join(scratch, "work")
        os.makedirs(default_dir, exist_ok=True)
        run = _Run(document, values, platform, default_dir, os.path.join(scratch, "orchestration"), run_env,
                   cancel, time_scale, on_output)
        for index, step in enumerate(document.steps):
            last = index == len(document.steps) - 1
            ended = any(_skips_rest(earlier, done) for earlier, done in zip(document.steps, results, strict=False))
            if ended and not (step.finally_step and last):
                result = _not_run(step, "Skipped", 0, f"Plugin with name {step.action} and id {step.name} skipped "
                                                      "due to prior step with an exit condition", stderr=False)
            else:
                result = run.step(index, step)
            results.append(result)
            if on_step is not None:
                on_step(result)
    return _aggregate(results)
