"""Local AWS emulator (CodePipeline job API, SSM Run Command, S3 via moto) and the demo built on it.

Tests and the demo drive the real worker against it through ``AWS_ENDPOINT_URL``. The product never
imports this package at module level (tests/test_layers.py checks): the emulator needs moto, a
development dependency, and only the CLI's ``demo`` command reaches it, from inside the command.
"""

from worker.local.server import ApiCall, Emulator, EmulatorBug, EmulatorConfig, S3Access

__all__ = ["ApiCall", "Emulator", "EmulatorBug", "EmulatorConfig", "S3Access"]
