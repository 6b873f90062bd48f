"""worker.ssmdoc.runner: real scripts in real subprocesses, judged the way SSM Agent judges them."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from worker.ssmdoc import Document, load_document, validate_parameters
from worker.ssmdoc.runner import RunResult, StepResult, run_document

FAST = 0.2  # time_scale: a document's 5 s timeout lasts 1 s (room for a busy machine to start the script)


def doc(*steps: dict[str, Any], parameters: dict[str, Any] | None = None) -> Document:
    return load_document({"schemaVersion": "2.2", "parameters": parameters or {}, "mainSteps": list(steps)})


def shell(name: str, *lines: str, **inputs: Any) -> dict[str, Any]:
    return {"action": "aws:runShellScript", "name": name, "inputs": {"runCommand": list(lines), **inputs}}


def run(document: Document, values: dict[str, list[str]] | None = None, **kwargs: Any) -> RunResult:
    return run_document(document, validate_parameters(document, values or {}), **kwargs)


def alive(pid: int, within: float = 2.0) -> bool:
    """Whether ``pid`` still runs ``within`` seconds from now; a killed orphan waiting for init is a zombie."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.02)
    return True


def test_success_with_output() -> None:
    result = run(doc(shell("hello", "echo out", "echo err >&2")))
    assert (result.status, result.status_details, result.response_code) == ("Success", "Success", 0)
    (step,) = result.steps
    assert step == StepResult("hello", "aws:runShellScript", "Success", 0, "out\n", "err\n", "Success")
    assert step.plugin_output() == "out\n\n----------ERROR-------\nerr\n"


def test_failure_keeps_exit_code_and_stderr() -> None:
    result = run(doc(shell("fail", "echo 'no such thing' >&2", "exit 3"), shell("next", "echo still runs")))
    assert (result.status, result.status_details, result.response_code) == ("Failed", "Failed", 3)
    failed, following = result.steps
    # runscript.go adds Go's exec error to stderr, straight after the script's own
    assert (failed.status, failed.exit_code, failed.stderr) == (
        "Failed", 3, "no such thing\nfailed to run commands: exit status 3")
    assert (following.status, following.stdout) == ("Success", "still runs\n")


def test_exit_168_succeeds_and_skips_the_rest() -> None:
    result = run(doc(shell("stop", "echo done", "echo noise >&2", "exit 168"), shell("later", "echo never")))
    stop, later = result.steps
    assert (result.status, result.response_code) == ("Success", 168)
    assert (stop.status, stop.exit_code, stop.stderr) == ("Success", 168, "")
    assert stop.stdout == ("done\n\nStep exited with code 168. Therefore, marking step as succeeded. Further "
                           "document steps will be skipped.")
    assert (later.status, later.exit_code, later.stdout) == ("Skipped", 0, "")
    assert later.message == ("Plugin with name aws:runShellScript and id later skipped due to prior step with an "
                             "exit condition")


def test_exit_169_fails_and_skips_the_rest_but_not_a_finally_step() -> None:
    result = run(doc(shell("stop", "echo bad >&2", "exit 169"), shell("later", "echo never"),
                     shell("cleanup", "echo cleaning", finallyStep=True)))
    stop, later, cleanup = result.steps
    note = "\nStep exited with code 169. Therefore, marking step as Failed. Further document steps will be skipped."
    assert (result.status, result.response_code) == ("Failed", 169)
    assert (stop.status, stop.exit_code, stop.stdout, stop.stderr) == (
        "Failed", 169, note, "bad\nfailed to run commands: exit status 169" + note)
    assert later.status == "Skipped"
    assert (cleanup.status, cleanup.stdout) == ("Success", "cleaning\n")


@pytest.mark.parametrize(("on_failure", "status", "code"), [("exit", "Failed", 1),
                                                             ("successAndExit", "Success", 168)])
def test_on_failure_modifiers(on_failure: str, status: str, code: int) -> None:
    result = run(doc(shell("first", "exit 1", onFailure=on_failure), shell("second", "echo never")))
    first, second = result.steps
    assert (first.status, first.exit_code) == (status, code)
    assert first.stderr.endswith("Step was found to have onFailure property. Further document steps will be skipped.")
    assert second.status == "Skipped"
    assert result.status == status


def test_step_timeout() -> None:
    document = doc(shell("slow", "echo started", "sleep 30", timeoutSeconds="5"), shell("after", "echo next"))
    began = time.monotonic()
    result = run(document, time_scale=FAST)
    assert time.monotonic() - began < 5
    slow, after = result.steps
    assert (slow.status, slow.exit_code, slow.status_details, slow.stdout) == (
        "TimedOut", 137, "ExecutionTimedOut", "started\n")
    assert after.status == "Success"
    assert (result.status, result.status_details, result.response_code) == ("TimedOut", "ExecutionTimedOut", 137)


def test_timeout_reaches_background_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    result = run(doc(shell("slow", f"sleep 30 & echo $! > {pid_file}", "wait", timeoutSeconds=5)),
                 time_scale=FAST)
    assert result.steps[0].status == "TimedOut"
    assert not alive(int(pid_file.read_text()))


def test_a_background_child_holding_stdout_keeps_the_step_running_like_the_agent(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    held = run(doc(shell("held", f"sleep 30 & echo $! > {pid_file}", "exit 0", timeoutSeconds=5)), time_scale=FAST)
    assert held.steps[0].status == "TimedOut"
    detached = run(doc(shell("detached", f"sleep 30 >/dev/null 2>&1 & echo $! > {pid_file}", "exit 0")))
    assert detached.steps[0].status == "Success"
    assert not alive(int(pid_file.read_text()))  # the runner leaves nothing behind


def test_script_exit_137_counts_as_timed_out_as_on_the_agent() -> None:
    assert run(doc(shell("oom", "exit 137"))).steps[0].status == "TimedOut"


def test_killed_by_a_signal_reports_minus_one() -> None:
    step = run(doc(shell("killed", "kill -9 $$"))).steps[0]
    assert (step.status, step.exit_code) == ("Failed", -1)


def test_reboot_exit_code_stops_the_document_and_says_what_the_agent_would_do(tmp_path: Path) -> None:
    marker = tmp_path / "rebooted"
    document = doc(shell("patch", f"if [ -e {marker} ]; then echo patched; exit 0; fi", f"touch {marker}", "exit 194"),
                   shell("after", "echo next"))
    result = run(document)
    (patch,) = result.steps  # the agent stops after the step that asked for the reboot
    assert (patch.status, patch.exit_code, patch.stderr) == ("SuccessAndReboot", 194, "")
    assert (result.status, result.response_code) == ("SuccessAndReboot", 194)
    assert result.reboot == ("SSM Agent would now reboot the instance, then run step patch again from its start, "
                             "then the steps after it")
    resumed = run(document, resume=result.steps)  # after the reboot: the step again, then the rest
    assert [(s.name, s.status, s.stdout) for s in resumed.steps] == [
        ("patch", "Success", "patched\n"), ("after", "Success", "next\n")]
    assert resumed.status == "Success"


def test_preconditions_skip_steps_for_other_platforms() -> None:
    document = doc({**shell("windows", "echo never"), "precondition": {"StringEquals": ["platformType", "Windows"]}},
                   {**shell("linux", "echo here"), "precondition": {"StringEquals": ["platformType", "Linux"]}})
    result = run(document)
    windows, linux = result.steps
    assert (windows.status, windows.exit_code, windows.stdout) == ("Skipped", 0, "")
    assert windows.message == ("Step execution skipped due to unsatisfied preconditions: "
                               "'\"StringEquals\": [platformType, Windows]'. Step name: windows")
    assert windows.plugin_output() == windows.message
    assert linux.stdout == "here\n"
    assert (result.status, result.response_code) == ("Success", 0)
    # aws:runShellScript does not exist on a Windows agent: skipped whatever the precondition says
    on_windows = run(document, platform="Windows")
    assert [s.status for s in on_windows.steps] == ["Skipped", "Skipped"]
    assert on_windows.steps[0].message.startswith("Step execution skipped due to unsupported plugin")


def test_parameter_precondition() -> None:
    document = doc({**shell("prod", "echo deploying"), "precondition": {"StringEquals": ["{{ Env }}", "prod"]}},
                   parameters={"Env": {"type": "String"}})
    assert run(document, {"Env": ["prod"]}).steps[0].stdout == "deploying\n"
    assert run(document, {"Env": ["dev"]}).steps[0].status == "Skipped"


HOSTILE = [
    'a"b', "it's", "x; touch pwned", "$(touch pwned)", "`touch pwned`", "line1\nline2; touch pwned",
    "$HOME ${PATH} $$ \\ \\n", "-n", "  spaced  ", "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_env_var_values_arrive_verbatim(tmp_path: Path, value: str) -> None:
    document = doc(shell("print", 'printf "%s" "$SSM_Message" > out.txt'),
                   parameters={"Message": {"type": "String", "interpolationType": "ENV_VAR"}})
    result = run(document, {"Message": [value]}, workdir=str(tmp_path))
    assert result.status == "Success"
    assert (tmp_path / "out.txt").read_bytes() == value.encode()
    assert not (tmp_path / "pwned").exists()


def test_env_is_the_agents_own_plus_parameters() -> None:
    document = doc(shell("env", 'echo "${HOME-unset}|${EXTRA-}|$SSM_M"'), parameters={
        "M": {"type": "String", "interpolationType": "ENV_VAR", "default": "param"}})
    # the agent's systemd service has no HOME: the default environment has none either
    assert run(document).steps[0].stdout == "unset||param\n"
    given = run(document, env={"EXTRA": "caller", "HOME": "/home/x"})
    assert given.steps[0].stdout == "/home/x|caller|param\n"


def test_string_list_expands_into_script_lines() -> None:
    document = doc({"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": "{{ commands }}"}},
                   parameters={"commands": {"type": "StringList"}})
    assert run(document, {"commands": ["echo one", "echo two"]}).steps[0].stdout == "one\ntwo\n"


def test_cancel_kills_the_running_step_and_cancels_the_rest() -> None:
    cancel = threading.Event()
    started = threading.Event()

    def cancel_once_started() -> None:
        if started.wait(5):
            time.sleep(0.1)
        cancel.set()

    timer = threading.Thread(target=cancel_once_started)
    timer.start()
    began = time.monotonic()
    result = run(doc(shell("long", "echo started", "sleep 30"), shell("next", "echo never")), cancel=cancel,
                 on_output=lambda *_: started.set())
    timer.join()
    assert time.monotonic() - began < 5
    long, following = result.steps
    assert (long.status, long.exit_code, long.stdout) == ("Cancelled", 137, "started\n")
    assert (following.status, following.exit_code) == ("Cancelled", 1)
    assert (result.status, result.status_details) == ("Cancelled", "Cancelled")


def test_cancel_before_start() -> None:
    cancel = threading.Event()
    cancel.set()
    result = run(doc(shell("a", "echo never")), cancel=cancel)
    assert (result.steps[0].status, result.steps[0].stdout, result.status) == ("Cancelled", "", "Cancelled")


@pytest.mark.parametrize(("chars", "kept"), [(23999, 23999), (24000, 24000), (30000, 24000)])
def test_stdout_truncation(chars: int, kept: int) -> None:
    step = run(doc(shell("big", f"head -c {chars} /dev/zero | tr '\\0' x"))).steps[0]
    assert len(step.stdout) == kept
    assert step.stdout.endswith("--output truncated--") is (chars >= 24000)


def test_stderr_truncation_and_live_output_see_everything() -> None:
    # the agent cuts stderr at 24,000 bytes too (RunPlugins uses MaxStdoutLength for both); the 8,000
    # characters GetCommandInvocation shows are the service's cut
    seen: list[str] = []
    step = run(doc(shell("noisy", "head -c 30000 /dev/zero | tr '\\0' e >&2")),
               on_output=lambda name, stream, text: seen.append(text) if stream == "stderr" else None).steps[0]
    assert step.stderr == "e" * 23980 + "--output truncated--"
    assert "".join(seen) == "e" * 30000


def test_on_output_streams_while_the_step_runs() -> None:
    arrivals: list[tuple[float, str, str, str]] = []
    finished: list[tuple[float, str]] = []
    run(doc(shell("live", "echo first", "sleep 0.4", "echo second >&2")),
        on_output=lambda name, stream, text: arrivals.append((time.monotonic(), name, stream, text)),
        on_step=lambda step: finished.append((time.monotonic(), step.status)))
    assert [(a[1], a[2], a[3]) for a in arrivals] == [("live", "stdout", "first\n"), ("live", "stderr", "second\n")]
    assert arrivals[1][0] - arrivals[0][0] > 0.3
    assert finished[0][1] == "Success" and finished[0][0] >= arrivals[1][0]


def test_working_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    document = doc(shell("abs", "pwd", workingDirectory=str(tmp_path)), shell("rel", "pwd", workingDirectory="sub"),
                   shell("missing", "pwd", workingDirectory="nope"), shell("default", "pwd"))
    result = run(document, workdir=str(tmp_path / "sub"))
    assert [s.stdout.strip() for s in result.steps] == [
        str(tmp_path), str(tmp_path / "sub"), str(tmp_path / "sub"), str(tmp_path / "sub")]
    gone = run(doc(shell("gone", "pwd", workingDirectory=str(tmp_path / "absent")))).steps[0]
    assert (gone.status, gone.exit_code) == ("Failed", 1)
    assert gone.stderr.startswith("failed to run commands:")


def test_shebang_picks_the_interpreter() -> None:
    step = run(doc(shell("py", f"#!{sys.executable}", "import sys", "print('python', sys.version_info[0])"))).steps[0]
    assert step.stdout == "python 3\n"


def test_powershell_needs_pwsh(tmp_path: Path) -> None:
    document = doc({"action": "aws:runPowerShellScript", "name": "ps", "inputs": {"runCommand": ["Write-Output hi"]}})
    step = run(document, env={"PATH": str(tmp_path)}).steps[0]
    assert (step.status, step.exit_code) == ("Failed", 1)
    assert step.stderr == "failed to run commands: fork/exec /usr/bin/pwsh: no such file or directory"


def test_other_actions_fail_clearly() -> None:
    document = doc({"action": "aws:runDocument", "name": "nested", "inputs": {"documentPath": "x"}},
                   shell("after", "echo runs"))
    nested, after = run(document).steps
    assert (nested.status, nested.exit_code) == ("Failed", 1)
    assert "the local runner cannot run aws:runDocument steps" in nested.stderr
    assert after.status == "Success"


def test_schema_1_2_document_runs() -> None:
    document = load_document({"schemaVersion": "1.2", "parameters": {
        "commands": {"type": "StringList"}, "executionTimeout": {"type": "String", "default": "3600"}},
        "runtimeConfig": {"aws:runShellScript": {"properties": [
            {"id": "0.aws:runShellScript", "runCommand": "{{ commands }}", "timeoutSeconds": "{{ executionTimeout }}"}]}}})
    result = run(document, {"commands": ["echo legacy"]})
    assert [(s.name, s.stdout) for s in result.steps] == [("aws:runShellScript", "legacy\n")]


def test_plugin_output_truncates_like_the_agent() -> None:
    step = StepResult("s", "aws:runShellScript", "Failed", 1, "o" * 3000, "e" * 3000)
    output = step.plugin_output()
    assert len(output) <= 2500
    assert "\n---Output truncated---\n----------ERROR-------\n" in output
    assert output.endswith("\n---Error truncated----")
