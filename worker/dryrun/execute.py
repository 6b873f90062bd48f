"""``dry-run --execute``: the document's steps run on this machine, as SSM Agent would run them.

The steps run with the local runner (`worker.ssmdoc.runner.run_document`) as SSM Agent 3.3.1142.0
would on a ``--platform`` instance, in a temporary copy of PATH (the zip extracted, execute bits
kept), streaming output, with the agent's script variables (placeholders where only a real command
has a value: `agent_context`). Steps the runner cannot run here (another action,
aws:runPowerShellScript without ``pwsh``, ``{{ssm:...}}`` references) are found before anything
runs: the run is refused (`NotRunnable`, exit 3), never half done. A step that asks for a reboot
ends the run with a note of what the agent would do next.

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

from worker.config import Config
from worker.dryrun.inputs import artifact_files
from worker.dryrun.report import Live, Report
from worker.errors import ParameterError
from worker.spec import Spec
from worker.ssmdoc import Document, step_outcome, validate_parameters
from worker.ssmdoc.parameterstore import references
from worker.ssmdoc.runner import (
    AgentContext,
    local_platform,
    not_runnable,
    run_document,
)
from worker.ssmdoc.substitute import interpolate


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


PLACEHOLDER_COMMAND = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_INSTANCE = "i-00000000000000000"
PLACEHOLDER_REGION = "us-east-1"


def agent_context(spec: Spec, config: Config) -> tuple[AgentContext, str]:
    """The values SSM Agent would give scripts (SSM_COMMAND_ID, AWS_SSM_*) and how they were chosen."""
    region = config.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    name, version = local_platform()
    context = AgentContext(PLACEHOLDER_COMMAND, spec.instance_ids[0] if spec.instance_ids else PLACEHOLDER_INSTANCE,
                           region or PLACEHOLDER_REGION, name, version)
    said = (f"scripts get SSM_COMMAND_ID={context.command_id} (placeholder), AWS_SSM_INSTANCE_ID="
            f"{context.instance_id}{'' if spec.instance_ids else ' (placeholder)'}, AWS_SSM_REGION_NAME="
            f"{context.region}{'' if region else ' (placeholder)'}, AWS_SSM_PLATFORM_NAME/VERSION of this machine "
            f"({name} {version}), and SSM Agent's own environment (PATH and LANG only: no HOME)")
    return context, said


def execute(document: Document, values: Mapping[str, list[str]], artifact: bytes, platform: str,
            report: Report, context: tuple[AgentContext, str]) -> bool:
    """Run the steps with the planned parameter values; True when the command would succeed."""
    with tempfile.TemporaryDirectory(prefix="cpssm-dry-run-") as tmp, _serve(artifact) as url:
        if "ArtifactUrl" in document.parameters:
            try:
                values = validate_parameters(document, {**values, "ArtifactUrl": [url]})
            except ParameterError as exc:
                raise NotRunnable(f"the document's ArtifactUrl rules refuse the local URL the artifact is served "
                                  f"from ({url}):\n" + "\n".join(f"- {p}" for p in exc.problems)) from exc
        search_path = os.environ.get("PATH")
        runs = [step for step in document.steps if step_outcome(document, step, values, platform)[0] == "run"]
        blocked = [f"{step.path} {step.name}: {reason}" for step in runs
                   if (reason := not_runnable(step, search_path, platform))]
        blocked += [f"{step.path} {step.name}: {', '.join(found)}: dry-run does not read Parameter Store; SSM Agent "
                    "resolves these on the instance" for step in runs
                    if (found := references(interpolate(step.properties, values, document=document)))]
        if blocked:
            raise NotRunnable("cannot run on this machine (nothing was run):\n" + "\n".join(f"- {b}" for b in blocked))
        workdir = Path(tmp, "src")
        _extract(artifact, workdir)
        served = f"; ArtifactUrl served at {url}" if "ArtifactUrl" in document.parameters else ""
        report.check("ok", "execute", f"as SSM Agent 3.3.1142.0 on a {platform} instance would; working "
                                      f"directory {workdir}{served}")
        report.check("note", "execute", context[1])
        live = Live(document.steps, report.live, report.err)
        with live:
            result = run_document(document, values, platform=platform, workdir=str(workdir),
                                  context=context[0], on_output=live.output, on_step=live.step_done)
    report.execution(platform, result, live.durations)
    return result.status in ("Success", "SuccessAndReboot")
