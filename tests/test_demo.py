"""`codepipeline-ssm-worker demo`: the real CLI in a subprocess, run from outside the checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_one_job_end_to_end_from_any_directory(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "worker.cli", "demo"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CodePipeline received PutJobSuccessResult" in result.stdout
    assert "Message: Hello from the pipeline" in result.stdout  # the document's step really ran
