"""Command line: `codepipeline-ssm-worker run | demo`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
