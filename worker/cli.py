"""Command line: `codepipeline-ssm-worker run | systemd-unit | health | demo`."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from worker import __version__
from worker import log as logging_setup
from worker.config import load_config
from worker.errors import ConfigFileError


def _run(args: argparse.Namespace) -> int:
    from worker.daemon import Daemon, build_clients

    config = load_config(args.config)
    logging_setup.setup(config.log_format)
    daemon = Daemon(config, build_clients(config), once=args.once)
    daemon.install_signal_handlers()
    return daemon.run()


def _demo(args: argparse.Namespace) -> int:
    from worker.demo import run_demo

    return run_demo(timeout=args.timeout)


def _systemd_unit(args: argparse.Namespace) -> int:
    from worker.systemd import unit_file

    beside = Path(sys.executable).parent / "codepipeline-ssm-worker"  # this installation's own script
    executable = str(beside) if beside.exists() else shutil.which("codepipeline-ssm-worker") or sys.argv[0]
    sys.stdout.write(unit_file(str(Path(executable).resolve()), args.config))
    return 0


def _health(args: argparse.Namespace) -> int:
    from worker.health import check

    ok, message = check(load_config(args.config), intervals=args.intervals)
    print(("healthy: " if ok else "unhealthy: ") + message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigFileError as exc:
        print(f"codepipeline-ssm-worker: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
