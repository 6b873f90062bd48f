"""The journal's file format: what counts as unfinished, torn lines, compaction."""

from __future__ import annotations

from pathlib import Path

from worker import journal
from worker.journal import Event, Journal


def test_phases_of_unfinished_jobs(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.record(Event.CLAIMING, "a", nonce="n1")
    j.record(Event.CLAIMING, "b", nonce="n2")
    j.record(Event.CLAIMED, "b")
    j.record(Event.SENDING, "b", document="doc")
    j.record(Event.CLAIMING, "c", nonce="n3")
    j.record(Event.CLAIMED, "c")
    j.record(Event.SENDING, "c", document="doc")
    j.record(Event.SENT, "c", command_id="cmd-c", sent_at=12.5)
    j.record(Event.CLAIMING, "d", nonce="n4")
    j.record(Event.ENDED, "d")
    by_id = {u.job_id: u for u in j.unfinished()}
    assert set(by_id) == {"a", "b", "c"}
    assert by_id["a"].nonce == "n1" and by_id["a"].document is None
    assert by_id["b"].nonce is None and by_id["b"].intent_without_command and by_id["b"].intent_at
    assert by_id["c"].command_id == "cmd-c" and by_id["c"].sent_at == 12.5 and not by_id["c"].intent_without_command


def test_torn_and_foreign_lines_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "journal.jsonl").write_text('{"ev":"claimed","job":"x","t":1}\n[1,2]\n\n{"ev":"sent","job":"x","comm')
    [u] = Journal(tmp_path).unfinished()
    assert u.job_id == "x" and u.command_id is None


def test_compaction_keeps_only_unfinished_jobs(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.record(Event.CLAIMED, "keep")
    j.record(Event.SENT, "keep", command_id="cmd", sent_at=1.0)
    lines = "".join(f'{{"ev":"claimed","job":"old{n}","t":1}}\n{{"ev":"ended","job":"old{n}","t":2}}\n'
                    for n in range(15000))
    with j.path.open("a") as fh:
        fh.write(lines)
    assert j.path.stat().st_size > journal.COMPACT_BYTES
    before = j.unfinished()
    j.compact()
    assert j.path.stat().st_size < 200
    assert j.unfinished() == before
    assert [u.job_id for u in before] == ["keep"]


def test_small_journal_is_not_rewritten(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.record(Event.CLAIMED, "a")
    j.record(Event.ENDED, "a")
    inode = j.path.stat().st_ino
    j.compact()
    assert j.path.stat().st_ino == inode and len(j.path.read_text().splitlines()) == 2
