"""The dry-run command: its options, its sequence, and its exit codes.

The checks are the daemon's own: `worker.prepare.prepare`, which `Handler.prepare_and_send` calls too,
with dry-run's inputs (`worker.dryrun.inputs`) in place of S3 and SSM, and placeholders in place of the
job's facts. What dry-run adds is reported around it: the configuration in force, the document
lint (`ssmdoc.lint_document`: an error is what SSM would reject, exit 2; warnings are shown and do
not change the exit code), and with ``--execute`` the run (`worker.dryrun.execute`).

Worker-filled parameters (ArtifactUrl, PipelineExecutionId, SourceRevision, JobId) and the job's
part of the Comment get placeholders of the real shape, so a document's allowedPattern judges them
as it would the real values. With no ``--config``, nothing is refused: only the document's and
SSM's own rules apply. The DocumentName checked against ``allowed_documents`` and put in the
request is the name as given (for a file: ``--document-name``, else the file's stem).

Exit codes: 0 ok; 1 a step failed (or, with --aws, AWS failed for a reason other than
configuration); 2 configuration error (the message a pipeline would show); 3 not runnable here;
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TextIO

from worker.config import ActionType, Config, load_config
from worker.dryrun.execute import NotRunnable, agent_context, artifact_of, execute
from worker.dryrun.inputs import document_name, fetch, load_file, locate, read_spec
from worker.dryrun.report import Report
from worker.errors import (
    ConfigFileError,
    ConfigurationError,
    DocumentError,
    WorkerError,
    failure_type,
)
from worker.jobs import DEFAULT_SPEC_FILE
from worker.plan import AUTO_PARAMETERS
from worker.prepare import JobContext, Prepared, prepare
from worker.spec import Spec
from worker.ssmdoc import Document, lint_document

EXIT_OK, EXIT_FAILED, EXIT_CONFIGURATION, EXIT_NOT_RUNNABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
# Worker-filled values in the shape of the real ones (zeros mark them), so allowedPatterns judge them fairly.
PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_REVISION = "0" * 40
PLACEHOLDER_URL = "https://artifact-bucket.s3.amazonaws.com/dry-run/artifact.zip"
PLACEHOLDER_WHERE = "<pipeline>/<stage>/<action>"
PLACEHOLDER_JOB = JobContext(job_id=PLACEHOLDER_ID, action_execution_id=PLACEHOLDER_ID,
                             pipeline_execution_id=PLACEHOLDER_ID, where=PLACEHOLDER_WHERE,
                             source_revision=PLACEHOLDER_REVISION, artifact_url=lambda: PLACEHOLDER_URL)
PERMISSIVE = Config(action_type=ActionType("Deploy", "SSMRunCommand", "1"), allowed_documents=("*",),
                    allowed_instance_ids=("*",), allowed_targets=("*",))


@dataclass(frozen=True)
class Options:
    """The dry-run command line (field names are the CLI's dest names)."""

    path: Path
    document: str | None = None
    document_name: str | None = None
    document_version: str = "$DEFAULT"
    documents_dir: Path | None = None
    aws: bool = False
    spec_file: str = DEFAULT_SPEC_FILE
    config: Path | None = None
    execute: bool = False
    platform: str = "Linux"
    json: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


@dataclass
class _Local:
    """dry-run's side of `prepare`: the inputs from PATH and a local document (or SSM), each step reported."""

    options: Options
    config: Config
    report: Report
    origin: str = ""  # where the document came from, for the report

    def read_spec(self, member: str) -> bytes:
        return read_spec(self.options.path, member, self.config.spec_max_bytes)

    def fetch_document(self, name: str, version: str) -> tuple[str, Document]:
        if self.options.aws:
            resolved, document = fetch(name, version, self.config)
            self.origin = f"version {resolved} from SSM (DescribeDocument, GetDocument)"
            return resolved, document
        file = locate(self.options)
        self.origin = str(file)
        return version, load_file(file)

    def spec_read(self, spec_file: str, spec: Spec, size: int) -> None:
        where = f"instance(s) {', '.join(spec.instance_ids)}" if spec.instance_ids else \
            "targets " + "; ".join(f"{t.key}={','.join(t.values)}" for t in spec.targets)
        self.report.check("ok", "spec", f"{spec_file}: {size} bytes (limit {self.config.spec_max_bytes}); runs on "
                                        f"{where}; sets {', '.join(spec.parameters) or 'no parameters'}")

    def document_resolved(self, name: str, version: str, document: Document) -> None:
        """Reported, then linted: what SSM would reject stops the dry-run here, before the plan."""
        self.report.check("ok", "document", f"{name}: {self.origin}; schemaVersion {document.schema_version}, "
                          f"{len(document.steps)} step(s), parameters: {', '.join(document.parameters) or 'none'}")
        findings = lint_document(document)
        for finding in findings:
            self.report.finding(finding)
        errors = [f for f in findings if f.severity == "error"]
        if errors:
            raise DocumentError(f"document {name!r} ({self.origin}) has what SSM would reject:\n"
                                + "\n".join(f"- {f.path}: {f.message}" for f in errors))
        self.report.check("ok", "lint", f"{len(findings)} warning(s); warnings do not change the exit code"
                          if findings else "no findings")

    def planned(self, prepared: Prepared) -> None:
        self.report.check("ok", "plan", "targets allowed; parameters fit the document: "
                          + (", ".join(prepared.plan.parameters) or "none declared"))


def _dry_run(options: Options, report: Report) -> int:
    """The configuration, then `prepare` (the daemon's steps, in its order, each reported), the request,
    then --execute."""
    path = options.path
    report.text(f"dry-run of {path} ({'artifact zip' if path.is_file() else 'directory'}), spec file "
                f"{options.spec_file}")
    if options.config:
        config = load_config(options.config)
        report.check("ok", "config", f"{options.config}: allow-lists and fixed parameters apply")
    else:
        config = PERMISSIVE
        report.check("note", "config", "no --config: allow-lists not checked (every document, instance and "
                                       "target allowed), no fixed parameters")
    name = document_name(options)
    local = _Local(options, config, report)
    prepared = prepare(spec_file=options.spec_file, read_spec=local.read_spec, document_name=name,
                       version=options.document_version, fetch_document=local.fetch_document, config=config,
                       job=PLACEHOLDER_JOB, steps=local)
    report.request(prepared.request(), [k for k in AUTO_PARAMETERS if k in prepared.document.parameters])
    if not options.execute:
        return EXIT_OK
    succeeded = execute(prepared.document, prepared.plan.parameters, artifact_of(path), options.platform, report,
                        agent_context(prepared.spec, config))
    return EXIT_OK if succeeded else EXIT_FAILED


def dry_run(options: Options, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the dry-run (text or JSON on `out`, default stdout); the exit code is in the module docstring."""
    report = Report(options.path, out or sys.stdout, err or sys.stderr, as_json=options.json,
                    executing=options.execute)
    try:
        code = _dry_run(options, report)
    except NotRunnable as exc:
        report.fail("NotRunnableHere", str(exc))
        code = EXIT_NOT_RUNNABLE
    except ConfigFileError as exc:
        report.fail("ConfigFileError", str(exc))
        code = EXIT_CONFIGURATION
    except WorkerError as exc:
        report.fail(failure_type(exc), str(exc))
        code = EXIT_CONFIGURATION if isinstance(exc, ConfigurationError) else EXIT_FAILED
    except KeyboardInterrupt:
        report.fail("Interrupted", "stopped by Ctrl-C")
        code = EXIT_INTERRUPTED
    return report.finish(code)
