"""Formats that outlive a worker process stay byte-compatible: continuation tokens and journal lines.

A token issued by an earlier worker may come back to a newer one (CodePipeline keeps it), and a
journal written before an upgrade is read at the next start. The phase and event names are
StrEnums whose values are these bytes; the literals below are what those earlier versions wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

from worker.checkpoint import Checkpoint, Phase, decode
from worker.handler import InFlightPhase, ResultKind
from worker.journal import Event, Journal

COMMAND = "0b6c8f0e-3f6d-4c1e-9a53-2d5b7c1e4f10"
SENDER = "5f2a9c4e-8b1d-4e7a-b6c3-1a2b3c4d5e6f"
SENT_TOKEN = ('{"v":1,"phase":"sent","command_id":"0b6c8f0e-3f6d-4c1e-9a53-2d5b7c1e4f10",'
              '"sent_at":1700000000.125,"job":"5f2a9c4e-8b1d-4e7a-b6c3-1a2b3c4d5e6f"}')
PLANNED_TOKEN = '{"v":1,"phase":"planned"}'


def test_a_token_written_before_reads_and_encodes_to_the_same_bytes() -> None:
    sent = decode(SENT_TOKEN)
    assert sent == Checkpoint(Phase.SENT, COMMAND, 1700000000.125, SENDER)
    assert sent.phase is Phase.SENT
    assert sent.encode() == SENT_TOKEN
    planned = decode(PLANNED_TOKEN)
    assert planned.phase is Phase.PLANNED and planned.encode() == PLANNED_TOKEN


def test_a_journal_written_before_reads(tmp_path: Path) -> None:
    (tmp_path / "journal.jsonl").write_text(
        '{"ev":"claiming","job":"a","t":1.0,"nonce":"n1","token":"{\\"v\\":1,\\"phase\\":\\"planned\\"}"}\n'
        '{"ev":"claimed","job":"a","t":1.5}\n'
        '{"ev":"sending","job":"a","t":2.0,"document":"doc"}\n'
        '{"ev":"sent","job":"a","t":3.0,"command_id":"cmd-a","sent_at":2.5}\n'
        '{"ev":"claiming","job":"b","t":4.0,"nonce":"n2"}\n'
        '{"ev":"claimed","job":"c","t":5.0}\n'
        '{"ev":"ended","job":"c","t":6.0}\n')
    by_id = {u.job_id: u for u in Journal(tmp_path).unfinished()}
    assert set(by_id) == {"a", "b"}
    a, b = by_id["a"], by_id["b"]
    assert (a.nonce, a.token, a.document, a.command_id, a.sent_at, a.intent_at) == \
        (None, PLANNED_TOKEN, "doc", "cmd-a", 2.5, 2.0)
    assert (b.nonce, b.claimed_at, b.document) == ("n2", 4.0, None)


def test_journal_lines_are_written_as_before(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    for event in Event:
        j.record(event, "job-1", command_id="cmd" if event is Event.SENT else None)
    lines = [json.loads(line) for line in j.path.read_text().splitlines()]
    assert [line["ev"] for line in lines] == ["claiming", "claimed", "sending", "sent", "ended"]
    assert all(type(line["ev"]) is str and list(line)[:3] == ["ev", "job", "t"] for line in lines)
    assert '"ev":"sent","job":"job-1"' in j.path.read_text()


def test_the_names_are_the_values_logs_show() -> None:
    assert [str(k) for k in ResultKind] == ["checkpoint", "success", "failure"]
    assert [str(p) for p in InFlightPhase] == ["claimed", "sending", "sent", "reporting", "taken"]
    assert f"{Phase.SENT}" == "sent" and json.dumps({"phase": Phase.PLANNED}) == '{"phase": "planned"}'
