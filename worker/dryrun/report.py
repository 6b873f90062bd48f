"""What dry-run tells the developer: each check as it passes, the request, the run's live output and table.

Text is printed as it happens, so a slow step or a mistake shows at once; ``--json`` collects the
same facts into one object printed at the end, for scripts and CI. Errors go to stderr in text mode
(the pipeline's own message, never a traceback) and into the object's ``error`` with ``--json``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TextIO

from worker.ssmdoc import Finding, Step
from worker.ssmdoc.runner import RunResult, StepResult

HEARTBEAT_SECONDS = 30.0  # a plain "still running" line this often when stderr is not a terminal


@dataclass
class Report:
    """What was checked and found; printed as it happens (text) or once at the end (`as_json`)."""

    path: Path
    out: TextIO
    err: TextIO
    as_json: bool = False
    executing: bool = False  # --execute: success means the steps ran, not only that the request is right
    data: dict[str, Any] = field(init=False)  # the --json object

    def __post_init__(self) -> None:
        self.data = {"path": str(self.path), "checks": [], "findings": [], "request": None,
                     "placeholders": [], "execution": None, "error": None}

    @property
    def live(self) -> TextIO:
        """Where a run's live output goes: stdout, unless stdout holds the JSON object."""
        return self.err if self.as_json else self.out

    def text(self, line: str = "", *, stream: TextIO | None = None) -> None:
        if not self.as_json:
            print(line, file=stream or self.out, flush=True)

    def check(self, status: str, what: str, detail: str) -> None:
        self.data["checks"].append({"status": status, "check": what, "detail": detail})
        self.text(f"{status:<8} {what:<10} {detail}")

    def finding(self, finding: Finding) -> None:
        self.data["findings"].append({"severity": finding.severity, "path": finding.path, "message": finding.message})
        self.text(f"{finding.severity:<8} {'lint':<10} {finding.path}: {finding.message}")

    def request(self, request: Mapping[str, Any], placeholders: list[str]) -> None:
        self.data.update(request=dict(request), placeholders=placeholders)
        self.text("SendCommand request (not sent):")
        for key, value in request.items():
            if key == "Parameters" and value:
                self.text("  Parameters:")
                for name, values in value.items():
                    self.text(f"    {name}: {json.dumps(values)}")
            else:
                self.text(f"  {key}: {json.dumps(value)}")
        self.text(f"placeholders (a pipeline job fills these): {', '.join([*placeholders, 'the job id in Comment'])}")

    def execution(self, platform: str, result: RunResult, durations: Sequence[float]) -> None:
        """The run's outcome: the step table, and the output of each step that did not succeed."""
        self.data["execution"] = {
            "platform": platform, "status": result.status, "response_code": result.response_code,
            "reboot": result.reboot, "error": result.error,
            "steps": [{"name": s.name, "action": s.action, "status": s.status, "status_details": s.status_details,
                       "exit_code": s.exit_code, "duration_seconds": round(d, 3), "stdout": s.stdout,
                       "stderr": s.stderr, "message": s.message}
                      for s, d in zip(result.steps, durations, strict=True)]}
        self.text(table(result, durations))
        if all(step.status == "Skipped" for step in result.steps):
            self.check("note", "execute", f"no step ran: none is for a {platform} instance (SSM reports that as "
                                          "Success); try --platform")
        for step in result.steps:
            if step.status not in ("Success", "Skipped", "SuccessAndReboot"):
                self.text(f"--- output of {step.name} ({step.status}, exit {step.exit_code}):\n"
                          f"{step.plugin_output()}")
        if result.reboot:
            self.check("note", "reboot", f"{result.reboot}; dry-run cannot reboot this machine, so the rest was not "
                                         "run here")

    def fail(self, kind: str, message: str) -> None:
        self.data["error"] = {"type": kind, "message": message}
        self.text(f"{kind}: {message}", stream=self.err)

    def finish(self, code: int) -> int:
        """Print the end (the JSON object, or the verdict line) and return the exit code."""
        ok = code == 0  # the exit code of success (command.EXIT_OK)
        self.data.update(ok=ok, exit_code=code)
        if self.as_json:
            json.dump(self.data, self.out, indent=2)
            self.out.write("\n")
        elif ok:
            self.text("dry-run passed" + ("" if self.executing else ": the pipeline would send this command"))
        return code


def table(result: RunResult, durations: Sequence[float]) -> str:
    """The per-step status table, as the Run Command console lists a command's steps."""
    rows = [("Step", "Name", "Action", "Status", "Response code", "Duration")]
    rows += [(str(n), s.name, s.action, s.status, str(s.exit_code), f"{d:.1f}s")
             for n, (s, d) in enumerate(zip(result.steps, durations, strict=True), start=1)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join([*lines, f"Command status: {result.status} (response code {result.response_code})"])


class Live:
    """Live output and progress: a spinner with elapsed time on a terminal, plain lines otherwise."""

    FRAMES = "|/-\\"

    def __init__(self, steps: Sequence[Step], out: TextIO, err: TextIO) -> None:
        self.steps, self.out, self.err = steps, out, err
        self.tty = err.isatty()
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.index = 0
        self.started = self.step_started = time.monotonic()
        self.durations: list[float] = []
        self.spinning = False
        self.line_open = False  # output ended mid-line: a spinner would overwrite it

    def _label(self) -> str:
        step = self.steps[self.index]
        return f"step {self.index + 1}/{len(self.steps)} {step.name}"

    def _say(self, text: str) -> None:
        self._clear()
        print(f"[{time.monotonic() - self.started:7.1f}s] {text}", file=self.err, flush=True)

    def _clear(self) -> None:
        if self.spinning:
            self.err.write("\r\x1b[K")
            self.err.flush()
            self.spinning = False

    def _tick(self) -> None:
        frames = itertools.cycle(self.FRAMES)
        interval = 0.1 if self.tty else HEARTBEAT_SECONDS
        while not self.done.wait(interval):
            with self.lock:
                if self.index >= len(self.steps):
                    continue
                elapsed = time.monotonic() - self.step_started
                if not self.tty:
                    self._say(f"{self._label()}: still running ({elapsed:.0f}s)")
                elif not self.line_open:
                    self.err.write(f"\r{next(frames)} {self._label()} {elapsed:5.1f}s\x1b[K")
                    self.err.flush()
                    self.spinning = True

    def __enter__(self) -> Self:
        if self.steps:
            self._say(f"{self._label()} ...")
        threading.Thread(target=self._tick, name="dry-run-progress", daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        with self.lock:
            self._clear()

    def output(self, _step: str, stream: str, text: str) -> None:
        with self.lock:
            self._clear()
            target = self.out if stream == "stdout" else self.err
            target.write(text)
            target.flush()
            self.line_open = not text.endswith("\n")

    def step_done(self, result: StepResult) -> None:
        with self.lock:
            now = time.monotonic()
            self.durations.append(now - self.step_started)
            if self.line_open:
                self.out.write("\n")
                self.line_open = False
            self._say(f"{self._label()}: {result.status} (exit {result.exit_code})")
            self.index += 1
            self.step_started = now
            if self.index < len(self.steps):
                self._say(f"{self._label()} ...")
