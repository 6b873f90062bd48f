"""`codepipeline-ssm-worker demo`: one pipeline job end to end, on the local emulator, in seconds.

It runs the real daemon in a child process against the emulator (the same way the tests do)
and turns the daemon's JSON log lines into a readable timeline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import yaml

from worker.local.server import Emulator, EmulatorConfig
from worker.spec import parse_spec

ACTION_TYPE = {"category": "Deploy", "provider": "SSMRunCommand", "version": "1"}
DOCUMENT = "codepipeline-ssm-linux"
BUCKET = "demo-pipeline-artifacts"


def _label(event: dict[str, Any]) -> str | None:
    """One timeline line for a daemon log event, or None to leave it out."""
    name = event.get("event")
    labels = {
        "worker.started": lambda e: "worker started, polling for Custom/{provider} jobs".format(**e["action_type"]),
        "poll": lambda e: f"polled: {e['jobs']} job(s)",
        "job.claimed": lambda e: f"claimed {'continuation ' if e.get('continuation') else ''}job {e['job_id']}",
        "spec.read": lambda e: f"read {e['spec_file']} ({e['bytes']} bytes) from the input artifact",
        "document.resolved": lambda e: f"fetched document {e['document']} version {e['version']}",
        "command.planned": lambda e: f"validated parameters {', '.join(e['parameters'])}",
        "command.sent": lambda e: f"sent SSM command {e['command_id']}",
        "job.checkpointed": lambda e: f"checkpointed: job handed back with continuation token ({e['phase']})",
        "command.status": lambda e: f"tracked: {e['finished']}/{e['total']} invocation(s) finished",
        "job.succeeded": lambda e: f"succeeded: {e['summary']}",
        "job.failed": lambda e: f"failed ({e['failure_type']}): {e['message']}",
        "poll.failed": lambda e: f"poll failed: {e['error']}",
    }
    return labels[name](event) if name in labels else None


def _follow(stream: TextIO, started: float, out: TextIO) -> None:
    for line in stream:
        try:
            event = json.loads(line)
        except ValueError:
            out.write(f"        {line}")
            continue
        label = _label(event)
        if label:
            out.write(f"{time.monotonic() - started:6.2f}s  {label}\n")
            out.flush()


def _sources() -> tuple[Path, Path]:
    """ssm/linux.yml and examples/source/ from the checkout the package runs from (or the current directory)."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):  # worker/local/demo.py -> the checkout
        if (root / "ssm" / "linux.yml").is_file() and (root / "examples" / "source").is_dir():
            return root / "ssm" / "linux.yml", root / "examples" / "source"
    raise SystemExit("demo: run it from a checkout of the repository (it needs ssm/linux.yml and examples/source/)")


def run_demo(*, timeout: float = 60.0, out: TextIO = sys.stdout) -> int:
    document_path, source = _sources()
    files = {str(p.relative_to(source)): p.read_bytes() for p in sorted(source.rglob("*")) if p.is_file()}
    spec = parse_spec(files["abc.json"])
    started = time.monotonic()
    with Emulator(EmulatorConfig(invocation_visibility_delay=0.5)) as emu, \
            tempfile.TemporaryDirectory(prefix="cpssm-demo-") as tmp:
        emu.codepipeline.create_custom_action_type(
            ACTION_TYPE["category"], ACTION_TYPE["provider"], ACTION_TYPE["version"],
            configuration_properties=[{"name": "DocumentName", "required": True, "key": True, "secret": False},
                                      {"name": "SpecFile", "required": False, "key": False, "secret": False}])
        for instance in spec.all_instance_ids():
            emu.ssm.register_instance(instance, platform="Linux")
        emu.ssm.create_document(DOCUMENT, document_path.read_text(), fmt="YAML")
        emu.put_artifact(BUCKET, "demo-pipeline/SourceArti/source.zip", files)
        job_id = emu.codepipeline.enqueue_job(
            ACTION_TYPE, configuration={"DocumentName": DOCUMENT},
            input_artifacts=[{"name": "SourceArtifact", "bucket": BUCKET, "key": "demo-pipeline/SourceArti/source.zip",
                              "revision": "demo-revision-1"}])
        execution = emu.codepipeline.job(job_id).action_execution_id
        out.write(f"local AWS emulator at {emu.endpoint}; queued pipeline job {job_id}\n")
        config = Path(tmp) / "worker.yml"
        config.write_text(yaml.safe_dump({
            "action_type": ACTION_TYPE, "region": emu.config.region, "allowed_documents": [DOCUMENT],
            "allowed_instance_ids": ["i-*", "mi-*"], "log_format": "json", "poll_interval_min": 0.2,
            "poll_interval_max": 1, "hold_time": 10}))
        proc = subprocess.Popen([sys.executable, "-m", "worker.cli", "run", "--config", str(config)],
                                env={**os.environ, **emu.env()}, stderr=subprocess.PIPE, text=True, cwd=tmp)
        reader = threading.Thread(target=_follow, args=(proc.stderr, started, out), daemon=True)
        reader.start()
        try:
            final = emu.codepipeline.wait_final(execution, timeout)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
            reader.join(timeout=5)
        out.write(f"\nCodePipeline received {final.operation}:\n{json.dumps(final.request, indent=2)}\n")
        for sent in emu.ssm.sent_commands:
            for instance, invocation in emu.ssm.command(sent.command_id).invocations.items():
                out.write(f"\n--- output of {sent.command_id} on {instance} ({invocation.status}) ---\n")
                out.write(invocation.stdout + ("\n" + invocation.stderr if invocation.stderr else "") + "\n")
        out.write(f"\ndemo finished in {time.monotonic() - started:.1f} s\n")
        return 0 if final.operation == "PutJobSuccessResult" else 1
