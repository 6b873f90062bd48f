"""`codepipeline-ssm-worker dry-run`: the daemon's checks, and optionally the run, on this machine.

A developer editing abc.json or an SSM document learns about a mistake here, not after a push, a
pipeline run and a trip to the console. The checks are the daemon's own (`worker.prepare`), so a
dry-run and a pipeline job cannot disagree on a spec file or a document.

- `command`: the options, the sequence and the exit codes;
- `inputs`: the spec file in PATH, and the document in a local file or in SSM (``--aws``);
- `report`: the text or JSON report, the live output and the step table;
- `execute`: ``--execute``, the steps run here, with the artifact served on 127.0.0.1.
"""

from worker.dryrun.command import Options, dry_run

__all__ = ["Options", "dry_run"]
