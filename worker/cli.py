"""Command line: `codepipeline-ssm-worker run | systemd-unit | health | demo | dry-run`."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from worker import __version__


def _run(args: argparse.Namespace) -> int:
    from worker.signals import StopSignals

    signals = StopSignals().install()  # before the heavy imports: an early SIGTERM is a warm stop too
    from worker import log
    from worker.config import load_config
    from worker.daemon import Daemon, build_clients

    config = load_config(args.config)
    log.setup(config.log_format)
    daemon = Daemon(config, build_clients(config), once=args.once, stop=signals.stop)
    status = daemon.run()
    if daemon.threads_left:  # job threads stuck in AWS calls would hold the interpreter open: leave now
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _demo(args: argparse.Namespace) -> int:
    # Here, not at module level: the emulator needs moto (a development dependency).
    from worker.local.demo import run_demo

    return run_demo(timeout=args.timeout)


def _systemd_unit(args: argparse.Namespace) -> int:
    from worker.systemd import unit_file

    beside = Path(sys.executable).parent / "codepipeline-ssm-worker"  # this installation's own script
    executable = str(beside) if beside.exists() else shutil.which("codepipeline-ssm-worker") or sys.argv[0]
    sys.stdout.write(unit_file(str(Path(executable).resolve()), args.config))
    return 0


def _health(args: argparse.Namespace) -> int:
    from worker.config import load_config
    from worker.health import check

    ok, message = check(load_config(args.config), intervals=args.intervals)
    print(("healthy: " if ok else "unhealthy: ") + message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _dry_run(args: argparse.Namespace) -> int:
    from worker.dryrun import Options, dry_run

    return dry_run(Options.from_args(args))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="codepipeline-ssm-worker",
                                description="CodePipeline custom-action job worker that runs SSM Run Command "
                                            "documents on existing instances.")
    p.add_argument("--version", action="version", version=__version__)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="poll CodePipeline and work on jobs until stopped")
    run.add_argument("--config", required=True, help="the worker's YAML configuration file")
    run.add_argument("--once", action="store_true", help="handle what one poll returns, finish those jobs, exit")
    run.set_defaults(func=_run)

    unit = sub.add_parser("systemd-unit", help="print the systemd unit file for this installation")
    unit.add_argument("--config", default="/etc/codepipeline-ssm-worker/config.yml",
                      help="the config file path the unit passes to `run`")
    unit.set_defaults(func=_systemd_unit)

    health = sub.add_parser("health", help="exit 1 when the worker's loop has not polled recently (health checks)")
    health.add_argument("--config", required=True, help="the worker's YAML configuration file")
    health.add_argument("--intervals", type=int, default=3, help="how many poll_interval_max may pass without a poll")
    health.set_defaults(func=_health)

    demo = sub.add_parser("demo", help="run one pipeline job end to end on a local AWS emulator (no AWS account)")
    demo.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")
    demo.set_defaults(func=_demo)

    dry = sub.add_parser(
        "dry-run", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="check a spec file and document locally as the worker would, and optionally run the steps here",
        description="Read the spec file from PATH and validate it against the document with the daemon's own\n"
                    "code, lint the document, and print the SendCommand request a pipeline job would send;\n"
                    "--execute also runs the steps here. No AWS account needed (except for --aws).",
        epilog="exit codes:\n"
               "  0  ok (lint warnings do not change it)\n"
               "  1  a step failed (--execute); or --aws failed for a reason other than configuration\n"
               "  2  configuration error: the message a pipeline would show (also a bad --config or usage)\n"
               "  3  not runnable here (--execute): e.g. aws:runPowerShellScript without pwsh, or an action "
               "the local runner cannot run")
    dry.add_argument("path", type=Path, metavar="PATH", help="a checkout directory or a pipeline artifact zip")
    dry.add_argument("--document", metavar="NAME|FILE",
                     help="the action's DocumentName (looked up as <dir>/NAME.yml|.yaml|.json, also without a "
                          "codepipeline-ssm- prefix) or a document file (YAML or JSON)")
    dry.add_argument("--document-name", metavar="NAME",
                     help="the DocumentName to check and show when --document is a file (default: its file name stem)")
    dry.add_argument("--document-version", metavar="VERSION", default="$DEFAULT",
                     help="the action's DocumentVersion: $DEFAULT (default), $LATEST or a number (resolved with --aws)")
    dry.add_argument("--documents-dir", type=Path, metavar="DIR",
                     help="where document names are looked up (default: ./ssm, else PATH/ssm)")
    dry.add_argument("--aws", action="store_true",
                     help="fetch the document from SSM (DescribeDocument, GetDocument) with the standard AWS chain")
    dry.add_argument("--spec-file", default="abc.json", metavar="FILE",
                     help="the action's SpecFile: the spec file's path inside PATH (default abc.json)")
    dry.add_argument("--config", type=Path, metavar="FILE",
                     help="the worker's YAML configuration: allow-lists, fixed parameters, limits (default: none, "
                          "everything allowed)")
    dry.add_argument("--execute", action="store_true",
                     help="also run the document's steps on this machine as SSM Agent would, in a temporary copy of "
                          "PATH")
    dry.add_argument("--platform", choices=("Linux", "Windows", "MacOS"), default="Linux",
                     help="with --execute: the instance platform preconditions are judged against (default Linux)")
    dry.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of text")
    dry.set_defaults(func=_dry_run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:
        # Imported late: `run` installs its signal handlers before anything heavy is imported.
        from worker.errors import ConfigFileError

        if not isinstance(exc, ConfigFileError):
            raise
        print(f"codepipeline-ssm-worker: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
