"""Stops, restarts and concurrency that need no process: the daemon in process (see conftest).

A warm stop here sets the same event the first SIGTERM sets; signals, SIGKILL and the command
line are in tests/test_durability.py.
"""

from __future__ import annotations

import time
from pathlib import Path

from conftest import Harness, wait_for
from test_durability import finish_and_check, has_event


def test_result_that_cannot_be_made_waits_in_the_journal(harness: Harness, tmp_path: Path) -> None:
    """CodePipeline unreachable for the result call at shutdown: the next start makes it."""
    config = harness.config(state_dir=str(tmp_path / "state"))
    harness.emu.faults.inject("PutJobSuccessResult", error="ServiceUnavailableException", status=503, seconds=60)
    execution = harness.enqueue()
    first = harness.start_in_process(config, name="first")
    wait_for(lambda: has_event(first, "job.result_failed"), timeout=60)
    started = time.monotonic()
    assert first.stop() == 0
    assert time.monotonic() - started < 5.0
    assert harness.emu.codepipeline.results_for(execution) == []
    harness.emu.faults.clear()
    finish_and_check(harness, execution, config)


def test_torn_journal_line_is_ignored(harness: Harness, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "journal.jsonl").write_text('{"ev":"claimed","job":"00000000-0000-0000-0000-000000000000","t":1}\n'
                                         '{"ev":"ended","job":"00000000-0000-0000-0000-000000000000","t":2}\n'
                                         '{"ev":"claimed","job":"11111111-')
    execution = harness.enqueue()
    finish_and_check(harness, execution, harness.config(state_dir=str(state)))


def test_a_slow_job_does_not_delay_another(harness: Harness) -> None:
    """Concurrency: one job stuck reading its artifact; the next job is claimed, sent and finished meanwhile."""
    harness.emu.faults.inject("GetObject", delay=5, times=1)
    slow = harness.enqueue()
    worker = harness.start_in_process(harness.config(concurrency=2))
    wait_for(lambda: harness.emu.faults.fired("GetObject"))
    fast = harness.enqueue()
    assert harness.final(fast, timeout=4).operation == "PutJobSuccessResult"
    assert harness.emu.codepipeline.final_result(slow) is None  # still reading its artifact
    assert harness.final(slow, timeout=30).operation == "PutJobSuccessResult"
    worker.stop()
    harness.assert_one_result_per_job(fast)
    harness.assert_one_result_per_job(slow)
