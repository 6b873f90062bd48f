"""``python -m worker.local``: run the emulator standalone until Ctrl-C, for developers."""

from __future__ import annotations

import argparse
import signal
import threading

from worker.local.server import Emulator, EmulatorConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker.local", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--redispatch-after", type=float, default=30.0, help="seconds before an unacknowledged job is handed out again")
    parser.add_argument("--job-timeout", type=float, default=3600.0, help="seconds an acknowledged job may run without a result")
    parser.add_argument("--visibility-delay", type=float, default=0.2, help="seconds a new command invocation stays invisible")
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        region=args.region,
        port=args.port,
        redispatch_after=args.redispatch_after,
        job_timeout=args.job_timeout,
        invocation_visibility_delay=args.visibility_delay,
        strict=False,
    )
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with Emulator(config) as emulator:
        print(f"emulator listening on {emulator.endpoint}", flush=True)
        for name, value in emulator.env().items():
            print(f"export {name}={value}", flush=True)
        done.wait()


if __name__ == "__main__":
    main()
