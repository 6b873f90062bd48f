"""The SSM Command document: model and loader, parameter validation, regex dialects, SSM Agent's
semantics, the lint, and the local step runner that follows those semantics.

One package so a rule about documents lives in one place: the daemon, dry-run and the emulator all
read documents through it. Everything here is pure (no AWS SDK, no I/O) except ``runner``, which
runs scripts in subprocesses (with ``process``); it is not imported here, so importing this package
stays pure. Import it as ``worker.ssmdoc.runner``.
"""

from worker.ssmdoc.agent import step_outcome
from worker.ssmdoc.lint import lint_document
from worker.ssmdoc.load import load_document, refuse_document_type, unique_keys
from worker.ssmdoc.model import PLATFORMS, Document, Finding, Parameter, Step
from worker.ssmdoc.params import validate_parameters
from worker.ssmdoc.plugins import execution_timeout

__all__ = [
    "PLATFORMS",
    "Document",
    "Finding",
    "Parameter",
    "Step",
    "execution_timeout",
    "lint_document",
    "load_document",
    "refuse_document_type",
    "step_outcome",
    "unique_keys",
    "validate_parameters",
]
