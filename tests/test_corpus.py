"""37 real SSM Command documents (tests/data/ssm-corpus, sources in its SOURCES.md) load; lint errors
exactly the five that SSM rejects.

The corpus is a copy of the read-only reference set kept beside the repository, so CI (a clean clone)
has it too. SSM_CORPUS_DIR points the test at another copy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from worker.ssmdoc import lint_document, load_document

CORPUS = Path(os.environ.get("SSM_CORPUS_DIR") or Path(__file__).parent / "data" / "ssm-corpus")


def _corpus() -> list[Path]:
    if not (CORPUS / "SOURCES.md").is_file():
        raise RuntimeError(f"SSM document corpus not found at {CORPUS} (SOURCES.md missing); restore "
                           "tests/data/ssm-corpus or set SSM_CORPUS_DIR")
    return sorted(p for p in CORPUS.iterdir() if p.suffix != ".md")  # SOURCES.md, LICENSES.md


def _rejected() -> set[str]:
    """The files SOURCES.md lists under "Expected to be rejected"."""
    text = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    section = text.split("## Expected to be rejected", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| (\S+\.(?:json|ya?ml)) \|", section, flags=re.MULTILINE))


FILES = _corpus() if (CORPUS / "SOURCES.md").is_file() else []


def test_corpus_is_complete() -> None:
    files = _corpus()  # fails, not skips, when the corpus is missing
    assert len(files) == 37
    assert len(_rejected()) == 5
    assert _rejected() <= {p.name for p in files}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_document_loads_and_lints_as_ssm_judges_it(path: Path) -> None:
    document = load_document(path.read_bytes(), source=path.name)
    assert document.steps
    errors = [str(f) for f in lint_document(document) if f.severity == "error"]
    if path.name in _rejected():
        assert errors, f"{path.name} is rejected by SSM but lint found no error"
    else:
        assert errors == []
