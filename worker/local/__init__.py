"""Local AWS emulator (CodePipeline job API, SSM Run Command, S3 via moto) and document runner.

Tests and the demo drive the real worker against it through ``AWS_ENDPOINT_URL``;
the daemon never imports this package.

The emulator is imported on first use, not with the package: moto is a development dependency,
and dry-run imports ``worker.local.runner`` in installations that do not have it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.local.server import (
        ApiCall,
        Emulator,
        EmulatorBug,
        EmulatorConfig,
        S3Access,
    )

__all__ = ["ApiCall", "Emulator", "EmulatorBug", "EmulatorConfig", "S3Access"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from worker.local import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
