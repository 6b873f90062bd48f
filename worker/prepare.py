"""One preparation path: SpecFile → spec → allowed document → version → automatic parameters → plan.

The daemon (`Handler.prepare_and_send`) and `dry-run` both call `prepare`, so a pipeline job and a
dry-run apply the same checks in the same order and build the same SendCommand request: they cannot
drift. Only where the bytes come from differs (S3 with the job's credentials and SSM, or a checkout
and a local file), so each caller hands over its own `read_spec` and `fetch_document`; `prepare`
calls them at the point of the sequence where they belong: the SpecFile rule is checked before
anything is read, and a document outside `allowed_documents` is refused before it is fetched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from worker.artifacts import spec_member
from worker.config import Config
from worker.errors import DocumentError
from worker.plan import (
    Plan,
    auto_parameters,
    check_document,
    document_version,
    job_comment,
    make_plan,
)
from worker.spec import Spec, parse_spec
from worker.ssmdoc import Document

log = structlog.get_logger("worker")


@dataclass(frozen=True)
class JobContext:
    """The job's own facts that go into the request (dry-run passes placeholders of the same shape)."""

    job_id: str
    action_execution_id: str
    pipeline_execution_id: str
    where: str  # pipeline/stage/action
    source_revision: str | None
    artifact_url: Callable[[], str]  # called only when the document declares ArtifactUrl (presigning costs)


@dataclass(frozen=True)
class Prepared:
    """A checked job: the SendCommand it will make, and what it was built from."""

    spec: Spec
    document_name: str
    version: str  # the resolved document version the request names
    document: Document
    plan: Plan

    def request(self) -> dict[str, Any]:
        """SendCommand keyword arguments."""
        return self.plan.request()


class Steps(Protocol):
    """Told of each step as it passes: the daemon logs them (`Logged`), dry-run reports them."""

    def spec_read(self, spec_file: str, spec: Spec, size: int) -> None: ...

    def document_resolved(self, name: str, version: str, document: Document) -> None: ...

    def planned(self, prepared: Prepared) -> None: ...


class Logged:
    """The daemon's log events for the steps (the demo's timeline and the tests read their fields)."""

    def spec_read(self, spec_file: str, spec: Spec, size: int) -> None:
        log.info("spec.read", spec_file=spec_file, bytes=size)

    def document_resolved(self, name: str, version: str, document: Document) -> None:
        log.info("document.resolved", document=name, version=version)

    def planned(self, prepared: Prepared) -> None:
        log.info("command.planned", document=prepared.document_name, version=prepared.version,
                 parameters=sorted(prepared.plan.parameters))


def prepare(*, spec_file: str, read_spec: Callable[[str], bytes], document_name: str, version: str | None,
            fetch_document: Callable[[str, str], tuple[str, Document]], config: Config, job: JobContext,
            steps: Steps | None = None) -> Prepared:
    """The request a job makes, or the ConfigurationError a pipeline shows.

    `spec_file`, `document_name` and `version` are the action's SpecFile, DocumentName and
    DocumentVersion properties. `read_spec(member)` returns the bytes of that artifact member, at most
    `config.spec_max_bytes`; `fetch_document(name, version)` the resolved version and the document.
    """
    steps = steps or Logged()
    member = spec_member(spec_file)  # a bad SpecFile property fails before anything is read
    raw = read_spec(member)
    spec = parse_spec(raw, source=spec_file)
    steps.spec_read(spec_file, spec, len(raw))

    if not document_name:
        raise DocumentError("the action configuration has no DocumentName; set it to the SSM document to run")
    check_document(document_name, config)  # before the document is even fetched
    resolved, document = fetch_document(document_name, document_version(version))
    steps.document_resolved(document_name, resolved, document)

    auto = auto_parameters(document, job_id=job.job_id, pipeline_execution_id=job.pipeline_execution_id,
                           source_revision=job.source_revision, artifact_url=job.artifact_url)
    plan = make_plan(spec, document, document_name=document_name, document_version=resolved, config=config,
                     auto=auto, comment=job_comment(job.job_id, job.action_execution_id, job.where))
    prepared = Prepared(spec, document_name, resolved, document, plan)
    steps.planned(prepared)
    return prepared
