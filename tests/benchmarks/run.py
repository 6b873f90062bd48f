"""Benchmark harness: what a job costs, measured against the local emulator (never run by pytest).

    .venv/bin/python tests/benchmarks/run.py [--jobs N] [--concurrency C] [--json]

1. Spec read: S3 requests and bytes the worker's artifact reader fetches to get abc.json out of
   artifacts of growing size (the design says: a handful of ranged GETs, whatever the size).
2. Throughput and latency: N jobs through one real worker process (claim → send → checkpoint →
   track → final result), with the time from enqueue to checkpoint and to the final result.
3. Memory: the worker process's peak resident set (VmHWM) at the end of that run.

Timings on a shared machine vary from run to run; compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import boto3
import yaml

from worker.artifacts import read_member
from worker.jobs import Artifact
from worker.local import Emulator, EmulatorConfig

ROOT = Path(__file__).resolve().parents[2]
ACTION = {"category": "Deploy", "provider": "SSMRunCommand", "version": "1"}
INSTANCE = "i-0123456789abcdef0"
FAST_DOCUMENT = """
schemaVersion: "2.2"
description: benchmark step
parameters:
  Message: {type: String, allowedPattern: "^[a-z ]{1,50}$", interpolationType: ENV_VAR}
mainSteps:
  - action: aws:runShellScript
    name: Echo
    inputs: {runCommand: ['echo "$SSM_Message"']}
"""


def artifact_zip(size_mb: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for n in range(size_mb):
            zf.writestr(f"src/blob{n:04d}.bin", os.urandom(1024 * 1024))
        zf.writestr("abc.json", json.dumps({"instance_id": INSTANCE, "message": "bench"}))
    return buf.getvalue()


def _range_bytes(header: str | None, size: int) -> int:
    if not header:
        return size
    spec = header.split("=", 1)[1]
    start, _, end = spec.partition("-")
    if not start:
        return min(int(end), size)
    return (int(end) if end else size - 1) - int(start) + 1


def bench_spec_read(emu: Emulator, sizes: list[int]) -> list[dict[str, Any]]:
    os.environ.update(emu.env())
    s3 = boto3.client("s3")
    rows = []
    for size in sizes:
        body = artifact_zip(size)
        key = f"bench/{size}.zip"
        emu.put_object("bench-artifacts", key, body)
        before = len(emu.s3_accesses)
        started = time.perf_counter()
        data = read_member(s3, Artifact("SourceArtifact", "bench-artifacts", key), "abc.json", max_bytes=1 << 20)
        elapsed = time.perf_counter() - started
        reads = [a for a in emu.s3_accesses[before:] if a.key == key]
        rows.append({"artifact_mb": size, "requests": len(reads),
                     "bytes_fetched": sum(_range_bytes(a.range, len(body)) for a in reads),
                     "seconds": round(elapsed, 3), "spec_bytes": len(data)})
    return rows


def bench_jobs(emu: Emulator, jobs: int, concurrency: int) -> dict[str, Any]:
    emu.codepipeline.create_custom_action_type(ACTION["category"], ACTION["provider"], ACTION["version"],
                                               configuration_properties=[{"name": "DocumentName", "required": True,
                                                                          "key": True, "secret": False}])
    emu.ssm.register_instance(INSTANCE)
    emu.ssm.create_document("bench-doc", FAST_DOCUMENT)
    emu.put_artifact("bench-artifacts", "bench/source.zip",
                     {"abc.json": json.dumps({"instance_id": INSTANCE, "message": "bench"})})
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "worker.yml"
        config.write_text(yaml.safe_dump({
            "action_type": ACTION, "region": emu.config.region, "allowed_documents": ["bench-*"],
            "allowed_instance_ids": ["i-*"], "concurrency": concurrency, "log_format": "json",
            "poll_interval_min": 0.1, "poll_interval_max": 0.5, "hold_time": 10}))
        proc = subprocess.Popen([sys.executable, "-m", "worker.cli", "run", "--config", str(config)],
                                env={**os.environ, **emu.env()}, stderr=subprocess.DEVNULL, cwd=tmp)
        time.sleep(1.0)  # start-up is not what this measures
        enqueued: dict[str, float] = {}
        started = time.perf_counter()
        for _ in range(jobs):
            job_id = emu.codepipeline.enqueue_job(ACTION, configuration={"DocumentName": "bench-doc"},
                                                  input_artifacts=[{"name": "SourceArtifact",
                                                                    "bucket": "bench-artifacts",
                                                                    "key": "bench/source.zip"}])
            enqueued[emu.codepipeline.job(job_id).action_execution_id] = time.perf_counter()
        checkpoint: dict[str, float] = {}
        final: dict[str, float] = {}
        deadline = time.monotonic() + 300
        while len(final) < jobs and time.monotonic() < deadline:
            now = time.perf_counter()
            for execution in enqueued:
                if execution not in checkpoint and emu.codepipeline.results_for(execution):
                    checkpoint[execution] = now
                if execution not in final and emu.codepipeline.final_result(execution) is not None:
                    final[execution] = now
            time.sleep(0.02)
        total = time.perf_counter() - started
        status = Path(f"/proc/{proc.pid}/status").read_text()
        peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    def summary(marks: dict[str, float]) -> dict[str, float]:
        values = sorted(marks[e] - enqueued[e] for e in marks)
        return {"p50_s": round(statistics.median(values), 3),
                "p95_s": round(values[int(0.95 * (len(values) - 1))], 3), "max_s": round(values[-1], 3)}

    return {"jobs": jobs, "finished": len(final), "concurrency": concurrency, "seconds": round(total, 2),
            "jobs_per_second": round(len(final) / total, 2), "enqueue_to_checkpoint": summary(checkpoint),
            "enqueue_to_final": summary(final), "worker_peak_rss_mb": round(peak_kb / 1024, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sizes", default="1,64,256", help="artifact sizes in MiB for the spec-read benchmark")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with Emulator(EmulatorConfig(invocation_visibility_delay=0.2)) as emu:
        results = {"spec_read": bench_spec_read(emu, [int(s) for s in args.sizes.split(",")]),
                   "jobs": bench_jobs(emu, args.jobs, args.concurrency)}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("spec read (abc.json out of the artifact zip):")
    for row in results["spec_read"]:
        print(f"  {row['artifact_mb']:>5} MiB artifact: {row['requests']} request(s), "
              f"{row['bytes_fetched']:>7} bytes fetched, {row['seconds']:.3f} s")
    j = results["jobs"]
    print(f"jobs: {j['finished']}/{j['jobs']} in {j['seconds']} s ({j['jobs_per_second']}/s, concurrency "
          f"{j['concurrency']})")
    print(f"  enqueue → checkpoint: {j['enqueue_to_checkpoint']}")
    print(f"  enqueue → final:      {j['enqueue_to_final']}")
    print(f"  worker peak RSS: {j['worker_peak_rss_mb']} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
