"""The registered checks, one module per thing they inspect. Importing this package registers every check."""

from grader.checks import (  # noqa: F401  (registers checks)
    on_api,
    on_build,
    on_build_context,
    on_dockerfile,
    on_gpu,
    on_image,
    on_image_files,
    on_mounted_model,
    on_service,
    on_stack,
)
from grader.checks.base import Check, Outcome, registry

__all__ = ["Check", "Outcome", "registry"]
