"""`codepipeline-ssm-worker dry-run`: the daemon's checks, and optionally the run, on this machine.

A developer editing abc.json or an SSM document learns about a mistake here, not after a push, a
pipeline run and a trip to the console.

**Same code path as the daemon** (`Handler.start`). For a zip PATH the spec bytes come from
`artifacts.read_zip_member`; for a directory the file is read with the same SpecFile rule
(`spec_member`: relative, no ``..``), the same size check (`check_spec_size`) and the same
missing-file message (`missing_spec_message`, files listed relative to PATH), and never from outside
PATH (a symbolic link leading out is refused). Then `spec.parse_spec`, `plan.check_document`, the document, `plan.auto_parameters` and
`plan.make_plan`. A ConfigurationError's message is the one the pipeline would show. `.git/` is left
out of a directory, as it is out of a CodePipeline source artifact; nothing else is.

**The document**: ``--document FILE``, or a NAME looked up as ``<dir>/<NAME>.yml|.yaml|.json`` in
``--documents-dir`` (default ``./ssm``, else ``PATH/ssm``). cfn/documents.yml deploys ``ssm/linux.yml``
as ``codepipeline-ssm-linux``, so a name with that prefix is looked up without it too: ``linux`` and
``codepipeline-ssm-linux`` both find ``ssm/linux.yml``. The DocumentName checked against
``allowed_documents`` and put in the request is the name as given (for a file: ``--document-name``,
else the file's stem). ``--aws`` fetches the document as the daemon does (`handler.DocumentCache`:
DescribeDocument resolves the version, GetDocument), through the standard boto3 chain. The document
is linted (`documents.lint_document`): an error is what SSM would reject (exit 2); warnings are shown
and do not change the exit code.

**Worker-filled parameters** (ArtifactUrl, PipelineExecutionId, SourceRevision, JobId) get
placeholders of the real shape, so a document's allowedPattern judges them as it would the real
values. With ``--execute``, ArtifactUrl is instead ``http://127.0.0.1:<port>/<random>/artifact.zip``: a
small HTTP server, up for the run only, serving the artifact zip (PATH itself, or PATH zipped), so the
document downloads exactly what the pipeline would hand it (a ``file://`` URL would fail the
documents' allowedPattern; ssm/linux.yml accepts plain http for loopback hosts for this). If the
document's ArtifactUrl rules refuse that URL, the run is "not runnable here".

**--execute** runs the steps with the local runner (`worker.ssmdoc.runner.run_document`) as SSM
Agent 3.3.1142.0 would on a ``--platform`` instance, in a temporary copy of PATH (the zip extracted,
execute bits kept), streaming output, with the agent's script variables (placeholders where only a
real command has a value, `_context`). Steps the runner cannot run here (another action,
aws:runPowerShellScript without ``pwsh``, ``{{ssm:...}}`` references) are found before anything
runs; a step that asks for a reboot ends the run with a note of what the agent would do next.

Exit codes: 0 ok; 1 a step failed (or, with --aws, AWS failed for a reason other than
configuration); 2 configuration error; 3 not runnable here; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import secrets
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self, TextIO

import boto3

from worker.artifacts import (
    check_spec_size,
    missing_spec_message,
    read_zip_member,
    spec_folder_error,
    spec_member,
)
from worker.config import ActionType, Config, load_config
from worker.errors import (
    ConfigFileError,
    ConfigurationError,
    DocumentError,
    ParameterError,
    SpecError,
    WorkerError,
    classify,
    failure_type,
)
from worker.handler import DocumentCache
from worker.jobs import DEFAULT_SPEC_FILE
from worker.plan import (
    AUTO_PARAMETERS,
    auto_parameters,
    check_document,
    job_comment,
    make_plan,
)
from worker.spec import Spec, parse_spec
from worker.ssmdoc import (
    Document,
    Finding,
    Step,
    lint_document,
    load_document,
    step_outcome,
    validate_parameters,
)
from worker.ssmdoc.parameterstore import references
from worker.ssmdoc.runner import (
    AgentContext,
    RunResult,
    StepResult,
    local_platform,
    not_runnable,
    run_document,
)
from worker.ssmdoc.substitute import interpolate

EXIT_OK, EXIT_FAILED, EXIT_CONFIGURATION, EXIT_NOT_RUNNABLE = 0, 1, 2, 3
DEPLOYED_PREFIX = "codepipeline-ssm-"  # cfn/documents.yml's NamePrefix default
DOCUMENT_SUFFIXES = (".yml", ".yaml", ".json")
# Worker-filled values in the shape of the real ones (zeros mark them), so allowedPatterns judge them fairly.
PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_REVISION = "0" * 40
PLACEHOLDER_URL = "https://artifact-bucket.s3.amazonaws.com/dry-run/artifact.zip"
PLACEHOLDER_WHERE = "<pipeline>/<stage>/<action>"
PLACEHOLDER_INSTANCE = "i-00000000000000000"
PLACEHOLDER_REGION = "us-east-1"
# With no --config, nothing is refused: only the document's and SSM's own rules apply.
PERMISSIVE = Config(action_type=ActionType("Deploy", "SSMRunCommand", "1"), allowed_documents=("*",),
                    allowed_instance_ids=("*",), allowed_targets=("*",))
HEARTBEAT_SECONDS = 30.0  # a plain "still running" line this often when stderr is not a terminal


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


class NotRunnable(Exception):
    """--execute cannot run this document on this machine (exit 3): reported, never passed silently."""


# ------------------------------------------------------------------------------------ report


@dataclass
class Report:
    """What was checked and found; printed as it happens (text) or once at the end (--json)."""

    options: Options
    out: TextIO
    err: TextIO
    data: dict[str, Any] = field(init=False)  # the --json object

    def __post_init__(self) -> None:
        self.data = {"path": str(self.options.path), "checks": [], "findings": [], "request": None,
                     "placeholders": [], "execution": None, "error": None}

    def text(self, line: str = "", *, stream: TextIO | None = None) -> None:
        if not self.options.json:
            print(line, file=stream or self.out, flush=True)

    def check(self, status: str, what: str, detail: str) -> None:
        self.data["checks"].append({"status": status, "check": what, "detail": detail})
        self.text(f"{status:<8} {what:<10} {detail}")

    def finding(self, finding: Finding) -> None:
        self.data["findings"].append({"severity": finding.severity, "path": finding.path, "message": finding.message})
        self.text(f"{finding.severity:<8} {'lint':<10} {finding.path}: {finding.message}")

    def request(self, request: Mapping[str, Any], placeholders: list[str]) -> None:
        self.data.update(request=dict(request), placeholders=placeholders)
        self.text("SendCommand request (not sent):")
        for key, value in request.items():
            if key == "Parameters" and value:
                self.text("  Parameters:")
                for name, values in value.items():
                    self.text(f"    {name}: {json.dumps(values)}")
            else:
                self.text(f"  {key}: {json.dumps(value)}")
        self.text(f"placeholders (a pipeline job fills these): {', '.join([*placeholders, 'the job id in Comment'])}")

    def fail(self, kind: str, message: str) -> None:
        self.data["error"] = {"type": kind, "message": message}
        self.text(f"{kind}: {message}", stream=self.err)

    def finish(self, code: int) -> int:
        self.data.update(ok=code == EXIT_OK, exit_code=code)
        if self.options.json:
            json.dump(self.data, self.out, indent=2)
            self.out.write("\n")
        elif code == EXIT_OK:
            self.text("dry-run passed" + ("" if self.options.execute else ": the pipeline would send this command"))
        return code


# ------------------------------------------------------------------------------- the inputs


def _files(root: Path) -> list[Path]:
    """The files a source artifact of `root` would hold, in a stable order (`.git/` left out)."""
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        found += [Path(folder, name) for name in sorted(names)]
    return found


def _read_spec(path: Path, spec_file: str, max_bytes: int) -> bytes:
    """The spec file's bytes, read and checked as the daemon reads them from the artifact, and never
    from outside PATH: a symbolic link that leads out is refused (an artifact would not hold its target)."""
    name = spec_member(spec_file)
    if path.is_file():
        try:
            with path.open("rb") as archive:
                return read_zip_member(archive, str(path), name, max_bytes=max_bytes)
        except OSError as exc:
            raise SpecError(f"input artifact {str(path)!r} cannot be read ({exc.strerror}); make it readable") from exc
    if not path.is_dir():
        raise SpecError(f"{path}: no such directory or file; give a checkout directory or an artifact zip")
    target = path / name
    real = Path(os.path.realpath(target))
    if not real.is_relative_to(path.resolve()):
        raise SpecError(f"spec file {name!r} in {path} leads outside it (a symbolic link to {real}); the worker never "
                        "reads outside the input artifact: commit the file itself")
    if target.is_dir():
        raise spec_folder_error(name, str(path))
    if not target.exists():
        files = [p.relative_to(path).as_posix() for p in _files(path)]
        raise SpecError(missing_spec_message(name, str(path), files))
    if not target.is_file():
        raise SpecError(f"spec file {name!r} in {path} is not a regular file; commit the spec file as a plain file")
    check_spec_size(name, target.stat().st_size, max_bytes)
    try:
        with target.open("rb") as file:
            raw = file.read(max_bytes + 1)
    except OSError as exc:
        raise SpecError(f"spec file {name!r} in {path} cannot be read ({exc.strerror}); make it readable") from exc
    check_spec_size(name, len(raw), max_bytes)  # it grew since the check above
    return raw


def _documents_dir(options: Options) -> Path | None:
    if options.documents_dir is not None:
        return options.documents_dir
    for candidate in (Path("ssm"), options.path / "ssm"):
        if candidate.is_dir():
            return candidate
    return None


def _available(folder: Path | None) -> str:
    if folder is None or not folder.is_dir():
        return f"no documents folder {folder}/" if folder else "no ssm/ folder here or in PATH"
    names = sorted(p.stem for p in folder.iterdir() if p.suffix in DOCUMENT_SUFFIXES)
    return f"documents in {folder}/: {', '.join(names) or 'none'}"


def _locate(options: Options) -> tuple[str, Path]:
    """The DocumentName and the file of a local document (rules in the module docstring)."""
    given = options.document
    folder = _documents_dir(options)
    if not given:
        raise DocumentError(f"no --document: give the action's DocumentName or a document file; {_available(folder)}")
    if Path(given).is_file():
        return options.document_name or Path(given).stem, Path(given)
    if "/" in given or given.endswith(DOCUMENT_SUFFIXES):
        raise DocumentError(f"document file {given} not found")
    stems = dict.fromkeys((given, given.removeprefix(DEPLOYED_PREFIX)))
    for stem, suffix in itertools.product(stems, DOCUMENT_SUFFIXES):
        if folder and (folder / f"{stem}{suffix}").is_file():
            return options.document_name or given, folder / f"{stem}{suffix}"
    looked = " or ".join(f"{s}.yml|.yaml|.json" for s in stems)
    raise DocumentError(f"document {given!r} not found: looked for {looked}; {_available(folder)}; "
                        "or use --documents-dir, --document FILE, or --aws")


def _fetch(name: str, version: str, config: Config) -> tuple[str, Document]:
    """--aws: the resolved version and the document, fetched as the daemon fetches it."""
    session = boto3.session.Session(region_name=config.region)
    if not session.region_name:
        raise ConfigFileError("--aws: no AWS region; set AWS_REGION (or 'region' in --config)")
    try:
        return DocumentCache(session.client("ssm")).get(name, version)
    except WorkerError:
        raise
    except Exception as exc:
        raise classify(exc, f"fetching document {name!r}") from exc


def _where(spec: Spec) -> str:
    if spec.instance_ids:
        return f"instance(s) {', '.join(spec.instance_ids)}"
    return "targets " + "; ".join(f"{t.key}={','.join(t.values)}" for t in spec.targets)


# --------------------------------------------------------------------------------- the run


def _zip_directory(root: Path) -> bytes:
    """PATH as the artifact a pipeline would hand over: nothing from outside it."""
    buffer = io.BytesIO()
    inside = root.resolve()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in _files(root):
            name = path.relative_to(root).as_posix()
            if not Path(os.path.realpath(path)).is_relative_to(inside):
                raise NotRunnable(f"{name} in {root} is a symbolic link to {os.path.realpath(path)}, outside it; "
                                  "the run uses only what is inside PATH")
            try:
                archive.write(path, name)
            except OSError as exc:
                raise NotRunnable(f"cannot zip {name} from {root} ({exc.strerror})") from exc
    return buffer.getvalue()


def _extract(artifact: bytes, target: Path) -> None:
    """Unzip as `unzip` would: members stay inside `target` (zipfile's rule), execute bits are kept."""
    try:
        with zipfile.ZipFile(io.BytesIO(artifact)) as archive:
            for info in archive.infolist():
                extracted = Path(archive.extract(info, target))
                executable = (info.external_attr >> 16) & 0o111
                if executable and not info.is_dir():
                    extracted.chmod(extracted.stat().st_mode | executable)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, zlib.error) as exc:
        raise NotRunnable(f"cannot extract the artifact here ({exc})") from exc


@contextlib.contextmanager
def _serve(artifact: bytes) -> Iterator[str]:
    """The artifact zip at an unguessable URL on 127.0.0.1, for as long as the run lasts."""
    route = f"/{secrets.token_hex(16)}/artifact.zip"

    class Artifact(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != route:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(artifact)))
            self.end_headers()
            self.wfile.write(artifact)

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the run's own output is what the developer reads."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Artifact)
    thread = threading.Thread(target=server.serve_forever, name="dry-run-artifact", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{route}"
    finally:
        server.shutdown()
        server.server_close()


class _Live:
    """Live output and progress: a spinner with elapsed time on a terminal, plain lines otherwise."""

    FRAMES = "|/-\\"

    def __init__(self, steps: Sequence[Step], out: TextIO, err: TextIO) -> None:
        self.steps, self.out, self.err = steps, out, err
        self.tty = err.isatty()
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.index = 0
        self.started = self.step_started = time.monotonic()
        self.durations: list[float] = []
        self.spinning = False
        self.line_open = False  # output ended mid-line: a spinner would overwrite it

    def _label(self) -> str:
        step = self.steps[self.index]
        return f"step {self.index + 1}/{len(self.steps)} {step.name}"

    def _say(self, text: str) -> None:
        self._clear()
        print(f"[{time.monotonic() - self.started:7.1f}s] {text}", file=self.err, flush=True)

    def _clear(self) -> None:
        if self.spinning:
            self.err.write("\r\x1b[K")
            self.err.flush()
            self.spinning = False

    def _tick(self) -> None:
        frames = itertools.cycle(self.FRAMES)
        interval = 0.1 if self.tty else HEARTBEAT_SECONDS
        while not self.done.wait(interval):
            with self.lock:
                if self.index >= len(self.steps):
                    continue
                elapsed = time.monotonic() - self.step_started
                if not self.tty:
                    self._say(f"{self._label()}: still running ({elapsed:.0f}s)")
                elif not self.line_open:
                    self.err.write(f"\r{next(frames)} {self._label()} {elapsed:5.1f}s\x1b[K")
                    self.err.flush()
                    self.spinning = True

    def __enter__(self) -> Self:
        if self.steps:
            self._say(f"{self._label()} ...")
        threading.Thread(target=self._tick, name="dry-run-progress", daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        with self.lock:
            self._clear()

    def output(self, _step: str, stream: str, text: str) -> None:
        with self.lock:
            self._clear()
            target = self.out if stream == "stdout" else self.err
            target.write(text)
            target.flush()
            self.line_open = not text.endswith("\n")

    def step_done(self, result: StepResult) -> None:
        with self.lock:
            now = time.monotonic()
            self.durations.append(now - self.step_started)
            if self.line_open:
                self.out.write("\n")
                self.line_open = False
            self._say(f"{self._label()}: {result.status} (exit {result.exit_code})")
            self.index += 1
            self.step_started = now
            if self.index < len(self.steps):
                self._say(f"{self._label()} ...")


def _table(result: RunResult, durations: Sequence[float]) -> str:
    """The per-step status table, as the Run Command console lists a command's steps."""
    rows = [("Step", "Name", "Action", "Status", "Response code", "Duration")]
    rows += [(str(n), s.name, s.action, s.status, str(s.exit_code), f"{d:.1f}s")
             for n, (s, d) in enumerate(zip(result.steps, durations, strict=True), start=1)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join([*lines, f"Command status: {result.status} (response code {result.response_code})"])


def _context(spec: Spec, config: Config) -> tuple[AgentContext, str]:
    """The values SSM Agent would give scripts (SSM_COMMAND_ID, AWS_SSM_*) and how they were chosen."""
    region = config.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    name, version = local_platform()
    context = AgentContext(PLACEHOLDER_ID, spec.instance_ids[0] if spec.instance_ids else PLACEHOLDER_INSTANCE,
                           region or PLACEHOLDER_REGION, name, version)
    said = (f"scripts get SSM_COMMAND_ID={context.command_id} (placeholder), AWS_SSM_INSTANCE_ID="
            f"{context.instance_id}{'' if spec.instance_ids else ' (placeholder)'}, AWS_SSM_REGION_NAME="
            f"{context.region}{'' if region else ' (placeholder)'}, AWS_SSM_PLATFORM_NAME/VERSION of this machine "
            f"({name} {version}), and SSM Agent's own environment (PATH and LANG only: no HOME)")
    return context, said


def _execute(document: Document, values: Mapping[str, list[str]], artifact: bytes, options: Options,
             report: Report, context: tuple[AgentContext, str]) -> int:
    with tempfile.TemporaryDirectory(prefix="cpssm-dry-run-") as tmp, _serve(artifact) as url:
        if "ArtifactUrl" in document.parameters:
            try:
                values = validate_parameters(document, {**values, "ArtifactUrl": [url]})
            except ParameterError as exc:
                raise NotRunnable(f"the document's ArtifactUrl rules refuse the local URL the artifact is served "
                                  f"from ({url}):\n" + "\n".join(f"- {p}" for p in exc.problems)) from exc
        search_path = os.environ.get("PATH")
        runs = [step for step in document.steps if step_outcome(document, step, values, options.platform)[0] == "run"]
        blocked = [f"{step.path} {step.name}: {reason}" for step in runs
                   if (reason := not_runnable(step, search_path, options.platform))]
        blocked += [f"{step.path} {step.name}: {', '.join(found)}: dry-run does not read Parameter Store; SSM Agent "
                    "resolves these on the instance" for step in runs
                    if (found := references(interpolate(step.properties, values, document=document)))]
        if blocked:
            raise NotRunnable("cannot run on this machine (nothing was run):\n" + "\n".join(f"- {b}" for b in blocked))
        workdir = Path(tmp, "src")
        _extract(artifact, workdir)
        served = f"; ArtifactUrl served at {url}" if "ArtifactUrl" in document.parameters else ""
        report.check("ok", "execute", f"as SSM Agent 3.3.1142.0 on a {options.platform} instance would; working "
                                      f"directory {workdir}{served}")
        report.check("note", "execute", context[1])
        live = _Live(document.steps, report.out if not options.json else report.err, report.err)
        with live:
            result = run_document(document, values, platform=options.platform, workdir=str(workdir),
                                  context=context[0], on_output=live.output, on_step=live.step_done)
    report.data["execution"] = {
        "platform": options.platform, "status": result.status, "response_code": result.response_code,
        "reboot": result.reboot, "error": result.error,
        "steps": [{"name": s.name, "action": s.action, "status": s.status, "status_details": s.status_details,
                   "exit_code": s.exit_code, "duration_seconds": round(d, 3), "stdout": s.stdout, "stderr": s.stderr,
                   "message": s.message} for s, d in zip(result.steps, live.durations, strict=True)]}
    report.text(_table(result, live.durations))
    if all(step.status == "Skipped" for step in result.steps):
        report.check("note", "execute", f"no step ran: none is for a {options.platform} instance (SSM reports that "
                                        "as Success); try --platform")
    for step in result.steps:
        if step.status not in ("Success", "Skipped", "SuccessAndReboot"):
            report.text(f"--- output of {step.name} ({step.status}, exit {step.exit_code}):\n{step.plugin_output()}")
    if result.reboot:
        report.check("note", "reboot", f"{result.reboot}; dry-run cannot reboot this machine, so the rest was not "
                                       "run here")
    return EXIT_OK if result.status in ("Success", "SuccessAndReboot") else EXIT_FAILED


# ------------------------------------------------------------------------------ the command


def _dry_run(options: Options, report: Report) -> int:
    """Handler.start's steps, in its order, each reported; then the request, then --execute."""
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
    raw = _read_spec(path, options.spec_file, config.spec_max_bytes)
    spec = parse_spec(raw, source=options.spec_file)
    report.check("ok", "spec", f"{options.spec_file}: {len(raw)} bytes (limit {config.spec_max_bytes}); "
                               f"runs on {_where(spec)}; sets {', '.join(spec.parameters) or 'no parameters'}")

    if options.aws:
        if not options.document:
            raise DocumentError("--aws needs --document NAME: the action's DocumentName")
        name = options.document
        check_document(name, config)
        version, document = _fetch(name, options.document_version, config)
        origin = f"version {version} from SSM (DescribeDocument, GetDocument)"
    else:
        name, file = _locate(options)
        check_document(name, config)
        version = options.document_version
        try:
            content = file.read_bytes()
        except OSError as exc:
            raise DocumentError(f"document file {file} cannot be read ({exc.strerror}); make it readable") from exc
        document = load_document(content, source=str(file))
        origin = str(file)
    report.check("ok", "document", f"{name}: {origin}; schemaVersion {document.schema_version}, "
                                   f"{len(document.steps)} step(s), parameters: {', '.join(document.parameters) or 'none'}")
    findings = lint_document(document)
    for finding in findings:
        report.finding(finding)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise DocumentError(f"document {name!r} ({origin}) has what SSM would reject:\n"
                            + "\n".join(f"- {f.path}: {f.message}" for f in errors))
    report.check("ok", "lint", f"{len(findings)} warning(s); warnings do not change the exit code" if findings
                 else "no findings")

    auto = auto_parameters(document, job_id=PLACEHOLDER_ID, pipeline_execution_id=PLACEHOLDER_ID,
                           source_revision=PLACEHOLDER_REVISION, artifact_url=lambda: PLACEHOLDER_URL)
    plan = make_plan(spec, document, document_name=name, document_version=version, config=config, auto=auto,
                     comment=job_comment(PLACEHOLDER_ID, PLACEHOLDER_ID, PLACEHOLDER_WHERE))
    report.check("ok", "plan", "targets allowed; parameters fit the document: "
                 + (", ".join(plan.parameters) or "none declared"))
    report.request(plan.request(), [k for k in AUTO_PARAMETERS if k in document.parameters])
    if not options.execute:
        return EXIT_OK
    artifact = path.read_bytes() if path.is_file() else _zip_directory(path)
    return _execute(document, plan.parameters, artifact, options, report, _context(spec, config))


def dry_run(options: Options, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the dry-run (text or JSON on `out`, default stdout); the exit code is in the module docstring."""
    report = Report(options, out or sys.stdout, err or sys.stderr)
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
        code = 130
    return report.finish(code)
