"""``dry-run --execute``: the document's steps run on this machine, as SSM Agent would run them.

The steps run with the local runner (`worker.ssmdoc.runner.run_document`) as on a ``--platform``
instance, in a temporary copy of PATH (the zip extracted, execute bits kept), streaming output.
Steps the runner cannot run here (another action, or aws:runPowerShellScript without ``pwsh``) are
found before anything runs: the run is refused (`NotRunnable`, exit 3), never half done.

ArtifactUrl is ``http://127.0.0.1:<port>/<random>/artifact.zip``: a small HTTP server, up for the
run only, serving the artifact zip (PATH itself, or PATH zipped), so the document downloads exactly
what the pipeline would hand it (a ``file://`` URL would fail the documents' allowedPattern;
ssm/linux.yml accepts plain http for loopback hosts for this). If the document's ArtifactUrl rules
refuse that URL, the run is not runnable here.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from worker.dryrun.inputs import artifact_files
from worker.dryrun.report import Live, Report
from worker.errors import ParameterError
from worker.ssmdoc import Document, step_outcome, validate_parameters
from worker.ssmdoc.runner import not_runnable, run_document


class NotRunnable(Exception):
    """--execute cannot run this document on this machine (exit 3): reported, never passed silently."""


def artifact_of(path: Path) -> bytes:
    """The artifact zip a pipeline would hand over: PATH itself, or PATH zipped (nothing from outside it)."""
    if path.is_file():
        return path.read_bytes()
    buffer = io.BytesIO()
    inside = path.resolve()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in artifact_files(path):
            name = file.relative_to(path).as_posix()
            if not Path(os.path.realpath(file)).is_relative_to(inside):
                raise NotRunnable(f"{name} in {path} is a symbolic link to {os.path.realpath(file)}, outside it; "
                                  "the run uses only what is inside PATH")
            try:
                archive.write(file, name)
            except OSError as exc:
                raise NotRunnable(f"cannot zip {name} from {path} ({exc.strerror})") from exc
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


def execute(document: Document, values: Mapping[str, list[str]], artifact: bytes, platform: str,
            report: Report) -> bool:
    """Run the steps with the planned parameter values; True when the command would succeed."""
    with tempfile.TemporaryDirectory(prefix="cpssm-dry-run-") as tmp, _serve(artifact) as url:
        if "ArtifactUrl" in document.parameters:
            try:
                values = validate_parameters(document, {**values, "ArtifactUrl": [url]})
            except ParameterError as exc:
                raise NotRunnable(f"the document's ArtifactUrl rules refuse the local URL the artifact is served "
                                  f"from ({url}):\n" + "\n".join(f"- {p}" for p in exc.problems)) from exc
        search_path = os.environ.get("PATH")
        blocked = [f"{step.path} {step.name}: {reason}" for step in document.steps
                   if step_outcome(document, step, values, platform)[0] == "run"
                   and (reason := not_runnable(step, search_path))]
        if blocked:
            raise NotRunnable("cannot run on this machine (nothing was run):\n" + "\n".join(f"- {b}" for b in blocked))
        workdir = Path(tmp, "src")
        _extract(artifact, workdir)
        served = f"; ArtifactUrl served at {url}" if "ArtifactUrl" in document.parameters else ""
        report.check("ok", "execute", f"as SSM Agent on a {platform} instance would; working directory "
                                      f"{workdir}{served}")
        live = Live(document.steps, report.live, report.err)
        with live:
            result = run_document(document, values, platform=platform, workdir=str(workdir),
                                  on_output=live.output, on_step=live.step_done)
    report.execution(platform, result, live.durations)
    return result.status == "Success"
