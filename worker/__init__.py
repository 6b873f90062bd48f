"""CodePipeline custom-action job worker that runs a step on an existing VM through SSM Run Command."""

__version__ = "0.1.0"
