"""Local AWS emulator (CodePipeline job API, SSM Run Command, S3 via moto) and document runner.

Tests and the demo drive the real worker against it through ``AWS_ENDPOINT_URL``;
the daemon never imports this package.
"""

from worker.local.server import ApiCall, Emulator, EmulatorBug, EmulatorConfig, S3Access

__all__ = ["ApiCall", "Emulator", "EmulatorBug", "EmulatorConfig", "S3Access"]
