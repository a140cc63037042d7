"""The registered checks. Importing this package registers every check module."""

from grader.checks import api, cache, compose, context, filesystem, gpu, hardening, http, image, lint, models, runtime  # noqa: F401  (registers checks)
from grader.checks.base import Check, Outcome, registry

__all__ = ["Check", "Outcome", "registry"]
