"""systemd integration: the sd_notify datagram protocol and the shipped unit file.

The protocol is a few lines (a datagram of ``KEY=VALUE`` lines to $NOTIFY_SOCKET), so it is
implemented here rather than pulling in a library; outside systemd every call is a no-op.
"""

from __future__ import annotations

import os
import socket
from importlib import resources

UNIT_NAME = "codepipeline-ssm-worker.service"
DEFAULT_CONFIG = "/etc/codepipeline-ssm-worker/config.yml"


def notify(*messages: str) -> bool:
    """Send state lines (READY=1, WATCHDOG=1, STATUS=…, STOPPING=1); False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto("\n".join(messages).encode(), address)
        except OSError:
            return False
    return True


def unit_file(executable: str, config: str = DEFAULT_CONFIG) -> str:
    """The unit file shipped with the package, pointing at this installation's executable."""
    template = resources.files("worker").joinpath("data", UNIT_NAME).read_text(encoding="utf-8")
    return template.replace("@EXECUTABLE@", executable).replace("@CONFIG@", config)
