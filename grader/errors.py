"""The grader's exceptions. Each says what happened and, where it can, what to do next."""


class GraderError(Exception):
    """Base of every error the grader raises on purpose."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\nHint: {self.hint}" if self.hint else self.message


class EngineUnavailable(GraderError):
    """Raised when no Docker engine answers a ping."""


class SpecError(GraderError):
    """Raised when a lab's spec file is missing, malformed or names an unknown check."""


class InvalidSubmission(GraderError):
    """Raised when a submission cannot be graded at all (no Dockerfile, unknown lab, ...)."""


class PrerequisiteFailed(GraderError):
    """Raised inside a check when something it needs (an image, a running service) is unavailable.

    The check is then reported as skipped with this message rather than failed twice over.
    """


class ComposeFileInvalid(InvalidSubmission):
    """Raised when Compose cannot read a submission's Compose file, or the grader refuses to run it."""


class UnsafeSubmission(InvalidSubmission):
    """Raised when a submission archive or folder cannot be unpacked safely (a path escaping its folder,
    a device file, a zip bomb, more files or bytes than the limits allow)."""


class GradebookError(GraderError):
    """Raised when the gradebook cannot be opened or read (a bad URL, a missing database driver)."""


class RosterError(GraderError):
    """Raised when a roster file is missing or has no learner id column."""


class ParcelError(GraderError):
    """Raised when a task message for a grading worker is not one it can read (a wrong or damaged payload)."""


class ImageSizeUnknown(GraderError):
    """Raised when an image's uncompressed layer size cannot be measured from its `docker save` archive
    (a layout it does not recognise, a missing or damaged layer, a compression this Python cannot undo)."""
