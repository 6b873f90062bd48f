"""Files on disk: everything lives in a private state_dir, symlinks are never followed, the temp dir stays clean."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Harness, wait_for

from worker import journal
from worker.journal import Journal
from worker.state import problem


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def events(worker: object) -> list[str]:
    return [e["event"] for e in worker.events()]  # type: ignore[attr-defined]


def run_one_job(harness: Harness, config: Path, env: dict[str, str] | None = None) -> None:
    execution = harness.enqueue()
    worker = harness.start(config, env=env)
    assert harness.final(execution).operation == "PutJobSuccessResult"
    assert worker.stop() == 0
    harness.assert_one_result_per_job(execution)


@pytest.mark.parametrize("bits", [0o770, 0o757, 0o777])
def test_a_state_dir_others_can_write_is_refused(harness: Harness, tmp_path: Path, bits: int) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(bits)
    worker = harness.start(harness.config(state_dir=str(state)))
    assert worker.proc.wait(timeout=30) == 2
    out = worker.log_path.read_text()
    assert f"state_dir {state} is group- or world-writable (mode {bits:04o})" in out and f"chmod 700 {state}" in out
    assert sorted(os.listdir(state)) == []  # refused before anything was written


def test_a_state_dir_another_user_owns_is_refused(tmp_path: Path) -> None:
    """The check the daemon makes at start (with its own uid), here against a uid that is not the owner's."""
    st = os.stat(tmp_path)
    found = problem(tmp_path, st, st.st_uid + 1)
    assert found is not None and f"state_dir {tmp_path} is owned by uid {st.st_uid}" in found
    assert problem(tmp_path, st, st.st_uid) is None
    (tmp_path / "file").write_text("")
    assert "is not a directory" in (problem(tmp_path / "file", os.stat(tmp_path / "file"), st.st_uid) or "")


def test_state_files_are_private_and_nothing_goes_to_the_temp_dir(harness: Harness, tmp_path: Path) -> None:
    state, temp = tmp_path / "new" / "state", tmp_path / "tmp"
    temp.mkdir()
    run_one_job(harness, harness.config(state_dir=str(state)), env={"TMPDIR": str(temp)})
    assert mode(state) == 0o700
    assert {name: mode(state / name) for name in os.listdir(state)} == \
        {"journal.jsonl": 0o600, "heartbeat.json": 0o600, "lock": 0o600}
    assert os.listdir(temp) == []


def test_without_a_state_dir_nothing_is_written(harness: Harness, tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    config = harness.config()
    before = set(os.listdir(tmp_path))
    run_one_job(harness, config, env={"TMPDIR": str(temp)})
    assert os.listdir(temp) == []
    assert {p for p in set(os.listdir(tmp_path)) - before if not p.endswith(".log")} == set()  # the worker's cwd


def test_compaction_keeps_the_journal_private(tmp_path: Path) -> None:
    j = Journal(tmp_path / "state")
    j.record(journal.Event.CLAIMING, "keep", nonce="n", token='{"v":1,"phase":"planned"}')
    with j.path.open("a") as fh:
        fh.write("".join(f'{{"ev":"claimed","job":"old{n}","t":1}}\n{{"ev":"ended","job":"old{n}","t":2}}\n'
                         for n in range(15000)))
    j.compact()
    assert mode(j.path) == 0o600 and j.path.stat().st_size < 200
    [kept] = j.unfinished()
    assert kept.token == '{"v":1,"phase":"planned"}' and kept.nonce == "n"
    assert sorted(os.listdir(tmp_path / "state")) == ["journal.jsonl"]


def test_symlinks_planted_in_the_state_dir_are_not_followed(harness: Harness, tmp_path: Path) -> None:
    state, victim = tmp_path / "state", tmp_path / "victim"
    state.mkdir(mode=0o700)
    victim.write_text("precious")
    for name in ("heartbeat.json", "heartbeat.json.tmp", "journal.jsonl"):
        (state / name).symlink_to(victim)
    execution = harness.enqueue()
    worker = harness.start(harness.config(state_dir=str(state)))
    assert harness.final(execution).operation == "PutJobSuccessResult"
    wait_for(lambda: (state / "heartbeat.json").is_file() and not (state / "heartbeat.json").is_symlink())
    assert worker.stop() == 0
    assert victim.read_text() == "precious"
    assert (state / "journal.jsonl").is_symlink()  # never written through: the job went on without a journal
    names = events(worker)
    assert "journal.write_failed" in names and "journal.read_failed" in names
    harness.assert_one_result_per_job(execution)


def test_a_symlinked_lock_file_stops_the_start(harness: Harness, tmp_path: Path) -> None:
    state, victim = tmp_path / "state", tmp_path / "victim"
    state.mkdir(mode=0o700)
    victim.write_text("precious")
    (state / "lock").symlink_to(victim)
    worker = harness.start(harness.config(state_dir=str(state)))
    assert worker.proc.wait(timeout=30) == 2
    assert f"state_dir {state}: cannot open its lock file" in worker.log_path.read_text()
    assert victim.read_text() == "precious"


def test_a_heartbeat_that_cannot_be_written_is_logged_and_the_loop_goes_on(harness: Harness, tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "heartbeat.json").mkdir(parents=True)  # rename() cannot replace a directory
    state.chmod(0o700)
    config = harness.config(state_dir=str(state))
    first = harness.enqueue()
    worker = harness.start(config)
    assert harness.final(first).operation == "PutJobSuccessResult"
    second = harness.enqueue()  # polled after many failed heartbeats
    assert harness.final(second).operation == "PutJobSuccessResult"
    assert worker.proc.poll() is None
    assert worker.stop() == 0
    assert events(worker).count("heartbeat.write_failed") == 1  # said once, not on every poll


def health(config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "STATE_DIRECTORY"} | (env or {})
    return subprocess.run([sys.executable, "-m", "worker.cli", "health", "--config", str(config)],
                          capture_output=True, text=True, timeout=30, check=False, env=environ)


def test_health_needs_a_state_dir(harness: Harness, tmp_path: Path) -> None:
    config = harness.config()
    without = health(config)
    assert without.returncode == 2 and "health needs a state_dir" in without.stderr
    state = tmp_path / "systemd-state"
    worker = harness.start(config, env={"STATE_DIRECTORY": str(state)})  # systemd's StateDirectory=
    wait_for(lambda: (state / "heartbeat.json").exists())
    found = health(config, {"STATE_DIRECTORY": str(state)})
    assert found.returncode == 0 and found.stdout.startswith("healthy: last poll"), found
    assert worker.stop() == 0
    beat = json.loads((state / "heartbeat.json").read_text())
    assert beat["pid"] == worker.proc.pid
