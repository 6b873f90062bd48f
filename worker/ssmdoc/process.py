"""One script process and its output as SSM Agent holds them: the process run in its own group with
a deadline, its streams kept as bytes and cut the agent's way (iohandler.go DefaultIOHandler:
MarkAsFailed, Merge, String/TruncateOutput; pluginutil.go StringPrefix; executers.go ExecuteCommand).

The runner (``runner``) decides what runs; this module only runs it and keeps what it printed.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping

OUTPUT_LIMIT = 24000  # iohandler MaxStdoutLength: RunPlugins cuts stdout and stderr to it, in bytes
TRUNCATED = "--output truncated--"
PLUGIN_OUTPUT_LIMIT = 2500  # iohandler.MaximumPluginOutputSize
_STATUS_ORDER = ("Skipped", "Success", "SuccessAndReboot", "PassedAndReboot", "NotStarted", "InProgress", "Failed",
                 "Cancelled", "TimedOut")  # contracts/model.go MergeResultStatus
_POLL = 0.05
_REAP_SECONDS = 5.0


def string_prefix(data: bytes, limit: int = OUTPUT_LIMIT) -> str:
    """pluginutil.StringPrefix on bytes: under the limit unchanged, else limit-20 bytes and the suffix."""
    if len(data) >= limit:
        data = data[:limit - len(TRUNCATED)] + TRUNCATED.encode()
    return data.decode("utf-8", "replace")


def truncate_output(stdout: bytes, stderr: bytes, stdout_size: int | None = None, stderr_size: int | None = None,
                    capacity: int = PLUGIN_OUTPUT_LIMIT) -> str:
    """iohandler.TruncateOutput: stdout, an error title and stderr in ``capacity`` bytes. The sizes are
    the streams' full lengths when only their beginnings are passed."""
    out_size = len(stdout) if stdout_size is None else stdout_size
    err_size = len(stderr) if stderr_size is None else stderr_size
    out_cut, err_cut = b"\n---Output truncated---", b"\n---Error truncated----"
    title = b"\n----------ERROR-------\n" if err_size else b""
    space = capacity - len(title)
    if out_size + err_size < space:
        text = stdout + title + stderr
    elif out_size > space // 2 and err_size > space // 2:
        half = (space - len(err_cut) - len(out_cut)) // 2
        text = stdout[:half] + out_cut + title + stderr[:half] + err_cut
    elif out_size <= space // 2:
        text = stdout + title + stderr[:space - len(err_cut) - out_size] + err_cut
    else:
        text = stdout[:space - len(out_cut) - err_size] + out_cut + title + stderr
    return text.decode("utf-8", "replace")


class Stream:
    """One output stream: its first ``OUTPUT_LIMIT`` bytes and its full size."""

    def __init__(self) -> None:
        self.kept = bytearray()
        self.size = 0

    def add(self, data: bytes) -> None:
        room = OUTPUT_LIMIT - len(self.kept)
        if room > 0:
            self.kept += data[:room]
        self.size += len(data)

    def text(self, note: str = "") -> str:
        """The stream plus the agent's note, as RunPlugins sends it (StringPrefix)."""
        return string_prefix(bytes(self.kept) + note.encode())


class Output:
    """A plugin's output as iohandler.DefaultIOHandler holds it: streams, exit code, status."""

    def __init__(self, emit: Callable[[str, str], None] | None = None) -> None:
        self.stdout, self.stderr = Stream(), Stream()
        self.code = 0
        self.status = ""
        self.scripts: list[str] = []  # the script files written, as the agent would write them
        self.emit = emit
        self._decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in ("stdout", "stderr")}

    def feed(self, name: str, data: bytes, final: bool = False) -> None:
        """Bytes the script wrote to ``name``, passed on as text to the live view."""
        getattr(self, name).add(data)
        text = self._decoders[name].decode(data, final)
        if text and self.emit is not None:
            self.emit(name, text)

    def mark_failed(self, message: str, *, writer: bool) -> None:
        """MarkAsFailed: exit code 1 unless one is set, Failed, and the message appended to stderr. While
        the plugin runs (``writer``) it is written straight after the script's stderr; otherwise
        after a newline when stderr is not empty (AppendError)."""
        if self.code == 0:
            self.code = 1
        self.status = "Failed"
        if message:
            if not writer and self.stderr.size:
                self.feed("stderr", b"\n")
            self.feed("stderr", message.encode(), final=True)

    def merge(self, other: Output) -> None:
        """Merge: each stream joined by a newline when the first is not empty; the first non-zero
        code; the greater status."""
        for name in ("stdout", "stderr"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine.size:
                mine.add(b"\n")
            mine.add(bytes(theirs.kept))
            mine.size += theirs.size - len(theirs.kept)
        self.scripts += other.scripts
        if self.code == 0:
            self.code = other.code
        if not self.status or (other.status and _STATUS_ORDER.index(other.status) > _STATUS_ORDER.index(self.status)):
            self.status = other.status or self.status

    def plugin_output(self) -> str:
        """String(): TruncateOutput of both streams, stderr left out for exit code 168."""
        stderr = self.stderr if self.code != 168 else Stream()
        return truncate_output(bytes(self.stdout.kept), bytes(stderr.kept), self.stdout.size, stderr.size)


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the process has ended, without reaping it: its pid, and so its group id, stay reserved."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _go_start_error(exc: OSError, argv: list[str], cwd: str) -> str:
    """exec.Cmd.Start's error text: ``chdir <dir>: ...`` or ``fork/exec <path>: ...``."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    reason = reason[:1].lower() + reason[1:]
    if exc.filename == cwd and exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
        return f"chdir {cwd}: {reason}"
    return f"fork/exec {argv[0]}: {reason}"


def _exit_error(code: int) -> str:
    """exec.ExitError's text for a process that ended badly: "exit status N" or "signal: killed"."""
    if code >= 0:
        return f"exit status {code}"
    name = signal.strsignal(-code) or f"signal {-code}"
    return f"signal: {name[:1].lower() + name[1:]}"


def _read(selector: selectors.BaseSelector, out: Output, timeout: float) -> None:
    for key, _ in selector.select(timeout):
        data = os.read(key.fd, 65536)
        if data:
            out.feed(key.data, data)
        else:
            selector.unregister(key.fileobj)


def run_process(argv: list[str], cwd: str, env: Mapping[str, str], deadline: float,
                cancel: threading.Event | None, out: Output) -> tuple[str, int, str]:
    """Run ``argv`` into ``out`` until it ends and its pipes close, the deadline passes or ``cancel``.

    Returns ("exited" | "timeout" | "cancelled" | "unstarted", exit code as Go reports it (-1 when
    killed by a signal), Go's error text or "" when it exited 0).
    """
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        return "unstarted", 1, _go_start_error(exc, argv, cwd)
    outcome = "exited"
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ, "stdout")  # type: ignore[arg-type]
            selector.register(proc.stderr, selectors.EVENT_READ, "stderr")  # type: ignore[arg-type]
            while selector.get_map() or not _exited(proc):
                if cancel is not None and cancel.is_set():
                    outcome = "cancelled"
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    outcome = "timeout"
                    break
                if selector.get_map():
                    _read(selector, out, min(_POLL, remaining))
                else:
                    time.sleep(min(_POLL, remaining))
            if outcome != "exited":
                _kill_group(proc)
                if selector.get_map():
                    _read(selector, out, 0)  # what was written before the kill
    finally:
        _kill_group(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_REAP_SECONDS)
    for name in ("stdout", "stderr"):
        out.feed(name, b"", final=True)
    code = proc.returncode
    code = -1 if code is None else code
    if outcome != "exited":
        return outcome, code, "killed"
    return outcome, code if code >= 0 else -1, "" if code == 0 else _exit_error(code)
