"""Stops, crashes and restarts: real worker processes, real signals, the emulator as the witness.

Every test ends with the same checks: the job's final result arrived, each job of the action
execution got exactly one result call, and SendCommand ran exactly once. The worker that is
signalled or killed is a process; the one that finishes the job after it runs in process.
Stops and restarts that need no process are in tests/test_daemon.py.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import INSTANCE, SPEED, Harness, InProcessWorker, Worker, wait_for

SLOW_DOCUMENT = """
schemaVersion: "2.2"
description: a step that takes a few seconds
mainSteps:
  - action: aws:runShellScript
    name: Slow
    inputs:
      runCommand: ["sleep {seconds}", "echo done"]
"""


def has_event(worker: Worker | InProcessWorker, name: str) -> bool:
    return any(e.get("event") == name for e in worker.events())


def journal_has(state_dir: Path, event: str) -> bool:
    path = state_dir / "journal.jsonl"
    return path.exists() and any(json.loads(line).get("ev") == event
                                 for line in path.read_text().splitlines() if line.strip())


def slow_job(harness: Harness, seconds: int) -> str:
    harness.emu.ssm.create_document("codepipeline-ssm-slow", SLOW_DOCUMENT.format(seconds=seconds), fmt="YAML")
    return harness.enqueue(configuration={"DocumentName": "codepipeline-ssm-slow"}, spec={"instance_id": INSTANCE})


def finish_and_check(harness: Harness, execution: str, config: Path, *, speed: float = SPEED) -> InProcessWorker:
    """A fresh worker (in process) finishes the job; the invariants hold."""
    worker = harness.start_in_process(config, name="successor", speed=speed)
    final = harness.final(execution, timeout=40)
    assert worker.stop() == 0
    assert final.operation == "PutJobSuccessResult" and "continuationToken" not in final.request
    harness.assert_one_result_per_job(execution)
    assert len(harness.sends()) == 1
    return worker


def stop_within(worker: Worker, seconds: float, sig: int = signal.SIGTERM) -> int:
    started = time.monotonic()
    worker.proc.send_signal(sig)
    code = worker.proc.wait(timeout=30)
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"worker took {elapsed:.1f} s to exit"
    return code


# -- SIGTERM: warm stop hands every in-flight job back -----------------------------------------------

@pytest.mark.parametrize("phase", ["downloading", "before_send", "right_after_send", "tracking"])
def test_sigterm_hands_back_in_every_phase(harness: Harness, phase: str) -> None:
    config = harness.config(hold_time=30)
    if phase == "downloading":
        harness.emu.faults.inject("GetObject", delay=8, times=1)
        execution = harness.enqueue()
    elif phase == "before_send":
        harness.emu.faults.inject("DescribeDocument", delay=8, times=1)
        execution = harness.enqueue()
    else:
        execution = slow_job(harness, 3)
    first = harness.start(config, name="first")
    if phase == "downloading":
        wait_for(lambda: harness.emu.faults.fired("GetObject"))
    elif phase == "before_send":
        wait_for(lambda: harness.emu.faults.fired("DescribeDocument"))
    elif phase == "right_after_send":
        wait_for(lambda: has_event(first, "command.sent"))
    else:
        wait_for(lambda: has_event(first, "command.status"))
    assert stop_within(first, 5.0) == 0
    events = [e["event"] for e in first.events()]
    assert "worker.stopped" in events
    if phase in ("downloading", "before_send"):
        assert harness.sends() == []
        handback = harness.results(execution)[0][1]
        assert json.loads(handback["continuationToken"]) == {"v": 1, "phase": "planned"}
    finish_and_check(harness, execution, config)


def test_second_signal_exits_at_once(harness: Harness) -> None:
    harness.emu.faults.inject("GetObject", delay=8, times=1)
    harness.enqueue()
    worker = harness.start(harness.config())
    wait_for(lambda: harness.emu.faults.fired("GetObject"))
    worker.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    assert stop_within(worker, 2.0, signal.SIGTERM) == 128 + signal.SIGTERM


# -- SIGKILL: the journal in state_dir finishes the job on the next start ----------------------------

def kill_and_restart(harness: Harness, execution: str, config: Path, first: Worker, *,
                     speed: float = SPEED) -> InProcessWorker:
    first.proc.kill()
    first.proc.wait(timeout=10)
    return finish_and_check(harness, execution, config, speed=speed)


def test_sigkill_while_downloading(harness: Harness, tmp_path: Path) -> None:
    config = harness.config(state_dir=str(tmp_path / "state"))
    harness.emu.faults.inject("GetObject", delay=5, times=1)
    execution = harness.enqueue()
    first = harness.start(config, name="first")
    wait_for(lambda: harness.emu.faults.fired("GetObject"))
    assert journal_has(tmp_path / "state", "claimed")
    kill_and_restart(harness, execution, config, first)
    assert harness.results(execution)[0][1]["continuationToken"] == '{"v":1,"phase":"planned"}'


@pytest.mark.parametrize("reached_ssm", [True, False], ids=["send_in_flight", "send_lost"])
def test_sigkill_with_the_send_under_way(harness: Harness, tmp_path: Path, reached_ssm: bool) -> None:
    """Intent recorded, SendCommand under way: the restart looks for the command before sending.

    If the request reached SSM, the restart finds the command and tracks it; if it was lost, the
    restart finds nothing and the next job sends it. Either way exactly one command runs.
    """
    config = harness.config(state_dir=str(tmp_path / "state"))
    harness.emu.ssm.list_commands_visibility_delay = 2.0  # SSM indexes a new command with a lag
    started: list[Worker] = []

    def kill() -> None:  # the worker dies with the request in flight: it never reads an answer
        started[0].proc.kill()
        started[0].proc.wait(timeout=10)

    fault = {"after": True} if reached_ssm else {"status": 500}  # SSM carries the request out, or never sees it
    harness.emu.faults.inject("SendCommand", hook=kill, times=1, **fault)
    execution = harness.enqueue()
    first = harness.start(config, name="first")
    started.append(first)
    wait_for(lambda: harness.emu.faults.fired("SendCommand"))
    assert journal_has(tmp_path / "state", "sending")
    # Real time for the restart: it must wait out the real ListCommands lag, counted from the
    # intent the killed process journaled (handler.LIST_VISIBILITY).
    kill_and_restart(harness, execution, config, first, speed=1)
    handback = json.loads(harness.results(execution)[0][1]["continuationToken"])
    if reached_ssm:
        assert handback["command_id"] == harness.emu.ssm.sent_commands[0].command_id
    else:
        assert handback == {"v": 1, "phase": "planned"}


def test_sigkill_between_send_and_checkpoint(harness: Harness, tmp_path: Path) -> None:
    config = harness.config(state_dir=str(tmp_path / "state"))
    harness.emu.faults.inject("PutJobSuccessResult", delay=3, status=500, times=1)
    execution = harness.enqueue()
    first = harness.start(config, name="first")
    wait_for(lambda: journal_has(tmp_path / "state", "sent"))
    restarted = kill_and_restart(harness, execution, config, first)
    assert "job.recovering" in [e["event"] for e in restarted.events()]


def test_sigkill_while_tracking(harness: Harness, tmp_path: Path) -> None:
    config = harness.config(state_dir=str(tmp_path / "state"), hold_time=30)
    execution = slow_job(harness, 4)
    first = harness.start(config, name="first")
    wait_for(lambda: has_event(first, "command.status"))
    kill_and_restart(harness, execution, config, first)


def test_state_dir_is_exclusive(harness: Harness, tmp_path: Path) -> None:
    config = harness.config(state_dir=str(tmp_path / "state"))
    first = harness.start_in_process(config, name="first")
    wait_for(lambda: has_event(first, "worker.started"))
    second = harness.start(config, name="second")  # a process: the exit code is part of the test
    assert second.proc.wait(timeout=30) == 2
    assert "is in use by another worker process" in second.log_path.read_text()
    assert first.stop() == 0


# -- systemd and health ------------------------------------------------------------------------------

def test_sd_notify_over_a_real_datagram_socket(harness: Harness, tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(20)
        execution = harness.enqueue()
        worker = harness.start(harness.config(), env={"NOTIFY_SOCKET": path})
        messages: list[str] = []
        while not any("READY=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        harness.final(execution)
        worker.proc.send_signal(signal.SIGTERM)
        while not any("STOPPING=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        assert worker.proc.wait(timeout=10) == 0
    lines = [line for m in messages for line in m.splitlines()]
    assert lines.index("READY=1") < lines.index("STOPPING=1")
    assert "WATCHDOG=1" in lines
    assert any(line.startswith("STATUS=") and "in flight" in line for line in lines)


def test_health_command(harness: Harness, tmp_path: Path) -> None:
    config = harness.config(state_dir=str(tmp_path / "state"))
    cmd = [sys.executable, "-m", "worker.cli", "health", "--config", str(config)]
    before = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert before.returncode == 1 and "no heartbeat" in before.stderr
    worker = harness.start(config)
    wait_for(lambda: (tmp_path / "state" / "heartbeat.json").exists())
    running = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert running.returncode == 0 and running.stdout.startswith("healthy: last poll")
    assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
    beat = json.loads((tmp_path / "state" / "heartbeat.json").read_text())
    beat["at"] -= 3600  # the loop died an hour ago
    (tmp_path / "state" / "heartbeat.json").write_text(json.dumps(beat))
    stale = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert stale.returncode == 1 and "the loop is stuck" in stale.stderr


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = subprocess.run(["which", "systemd-analyze"], capture_output=True, text=True, check=False)
    if analyze.returncode != 0:
        pytest.fail("systemd-analyze is not installed: apt-get install systemd (CI installs it)")
    unit = subprocess.run([sys.executable, "-m", "worker.cli", "systemd-unit", "--config", str(tmp_path / "c.yml")],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    assert "Type=notify" in unit and "WatchdogSec=" in unit and "StateDirectory=" in unit
    good = tmp_path / "good" / "codepipeline-ssm-worker.service"
    bad = tmp_path / "bad" / "codepipeline-ssm-worker.service"
    for path, text in ((good, unit), (bad, unit.replace("Type=notify", "Type=bogus"))):
        path.parent.mkdir()
        path.write_text(text)
    verified = subprocess.run(["systemd-analyze", "verify", str(good)], capture_output=True, text=True,
                              timeout=60, check=False)
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr
    control = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, text=True, timeout=60,
                             check=False)
    assert "Failed to parse service type" in control.stderr  # the check above can fail
