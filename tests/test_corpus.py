"""81 real SSM documents (tests/data/ssm-corpus, sources in its SOURCES.md), judged as SSM judges them.

- "Documents (expected to be accepted)": 48 Command documents load, have steps and lint without errors.
- "Expected to be rejected": 13 documents SSM or SSM Agent rejects; each fails to load or has a lint
  error (what the agent would fail at run time, the lint says first).
- "Not Command documents (refused)": 20 Automation runbooks, each refused with the one message the
  worker gives every document that is not a Command document.

The corpus is a copy of the read-only reference set kept beside the repository, so CI (a clean clone)
has it too. SSM_CORPUS_DIR points the test at another copy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from worker.errors import DocumentError
from worker.ssmdoc import lint_document, load_document

CORPUS = Path(os.environ.get("SSM_CORPUS_DIR") or Path(__file__).parent / "data" / "ssm-corpus")
ACCEPTED, REJECTED, REFUSED = ("Documents (expected to be accepted)", "Expected to be rejected",
                               "Not Command documents (refused)")


def _corpus() -> list[Path]:
    if not (CORPUS / "SOURCES.md").is_file():
        raise RuntimeError(f"SSM document corpus not found at {CORPUS} (SOURCES.md missing); restore "
                           "tests/data/ssm-corpus or set SSM_CORPUS_DIR")
    return sorted(p for p in CORPUS.iterdir() if p.suffix != ".md")  # SOURCES.md, LICENSES.md


def _listed(section: str) -> set[str]:
    """The files SOURCES.md lists in a section's table."""
    text = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| (\S+\.(?:json|ya?ml)) \|", body, flags=re.MULTILINE))


FILES = _corpus() if (CORPUS / "SOURCES.md").is_file() else []


def _section(path: Path) -> str:
    return next(s for s in (ACCEPTED, REJECTED, REFUSED) if path.name in _listed(s))


def test_corpus_is_complete() -> None:
    files = {p.name for p in _corpus()}  # fails, not skips, when the corpus is missing
    sections = {s: _listed(s) for s in (ACCEPTED, REJECTED, REFUSED)}
    assert [len(sections[s]) for s in (ACCEPTED, REJECTED, REFUSED)] == [48, 13, 20]
    assert len(files) == 81
    assert set().union(*sections.values()) == files  # every file listed once, every listed file present
    assert sum(len(s) for s in sections.values()) == len(files)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_document_is_judged_as_ssm_judges_it(path: Path) -> None:
    section = _section(path)
    if section == REFUSED:
        with pytest.raises(DocumentError) as info:
            load_document(path.read_bytes(), source=path.name)
        assert str(info.value).startswith(f"{path.name}: an Automation document, not a Command document; the "
                                          "worker runs Command documents only")
        return
    try:
        document = load_document(path.read_bytes(), source=path.name)
    except DocumentError as exc:
        assert section == REJECTED, f"{path.name} is accepted by SSM but does not load: {exc}"
        assert "not a Command document" not in str(exc)
        return
    errors = [str(f) for f in lint_document(document) if f.severity == "error"]
    if section == REJECTED:
        assert errors, f"{path.name} is rejected by SSM but lint found no error"
    else:
        assert document.steps
        assert errors == []
