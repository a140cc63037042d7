"""What a check is, and the registry that a lab's spec selects checks from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from grader.errors import SpecError

if TYPE_CHECKING:
    from grader.checks.needs import CheckContext
    from grader.spec import CheckSpec

PASSED, FAILED, SKIPPED, ERROR = "passed", "failed", "skipped", "error"


@dataclass
class Outcome:
    """What one check found: its status, a message for the learner, and the evidence behind it."""

    status: str
    message: str
    evidence: str = ""
    hint: str | None = None  # overrides the check's default hint when the cause is known
    counted: bool = True  # False: this machine cannot run the check (no GPU, say): its points leave the total

    @classmethod
    def passed(cls, message: str, evidence: str = "") -> Outcome:
        return cls(PASSED, message, evidence)

    @classmethod
    def failed(cls, message: str, evidence: str = "", hint: str | None = None) -> Outcome:
        return cls(FAILED, message, evidence, hint)

    @classmethod
    def skipped(cls, message: str) -> Outcome:
        return cls(SKIPPED, message)

    @classmethod
    def not_applicable(cls, message: str) -> Outcome:
        """Skipped because this machine lacks what the check needs; not counted for or against anyone."""
        return cls(SKIPPED, message, counted=False)


class Check:
    """A behavioural check of a learner's Dockerfile, image or running service.

    Subclasses set `name` (the key a spec uses), `category`, `title`, `hint`, and implement `run`.
    `run` asks the context for what it needs (`ctx.image()`, `ctx.service()`); when that is not
    available the context raises PrerequisiteFailed and the check is reported as skipped.

    A check's params are generic settings with defaults (`default_params`: timeouts, thresholds) and
    facts of the lab it grades (`required_params`: a request body, a service's name), which only the
    lab's lab.yaml can give: the grader holds no lab's facts.
    """

    name: ClassVar[str]
    category: ClassVar[str]
    title: ClassVar[str]
    hint: ClassVar[str]
    default_params: ClassVar[dict] = {}
    required_params: ClassVar[dict[str, str]] = {}  # param -> what it is, for the message when a lab lacks it

    def __init__(self, spec: CheckSpec):
        self.spec = spec
        known = set(self.default_params) | set(self.required_params)
        unknown = set(spec.params) - known
        if unknown:
            raise SpecError(f"check {self.name}: unknown param(s) {sorted(unknown)}; known: {sorted(known)}")
        missing = [key for key in self.required_params if key not in spec.params]
        if missing:
            raise SpecError(
                f"check {self.name}: lab.yaml must give the param(s) "
                + "; ".join(f"{key!r} ({self.required_params[key]})" for key in missing),
                hint=f"add them under `params:` of the {self.name} entry in the lab's checks",
            )
        self.params = {**self.default_params, **spec.params}

    @property
    def learner_hint(self) -> str:
        """The most complete hint: the lab's last tier, its own hint, or the check's."""
        return self.hint_after(None)

    def hint_for(self, own: str | None, failures: int | None) -> str:
        """The hint a failure shows: `own` is what the check found out about this failure (None if nothing).

        A lab's tiered hints go first while the learner is on a nudge or the concept: a check's own hint is
        usually the exact fix, so it waits for the last tier."""
        tiers = self.spec.hints
        if tiers and failures is not None and failures < len(tiers) - 1:
            return self.hint_after(failures)
        return own or self.hint_after(failures)

    def hint_after(self, failures: int | None) -> str:
        """The hint for a learner who failed this check `failures` times before (None: not known).

        With tiered `hints` in lab.yaml, the first failure gets the first tier (a nudge) and each repeated
        failure the next, up to the exact fix; not knowing the learner's history gives the last tier.
        """
        tiers = self.spec.hints
        if not tiers:
            return self.spec.hint or self.hint
        tier = len(tiers) - 1 if failures is None else min(failures, len(tiers) - 1)
        return f"(hint {tier + 1} of {len(tiers)}) {tiers[tier]}"

    def after_build(self, ctx: CheckContext) -> None:
        """Called once the image has built: a check may start slow work in the background here."""

    def before_stack(self, ctx: CheckContext, folder: Path) -> None:
        """Called before a Compose stack starts from `folder` (a copy): a check may change a file there."""

    def run(self, ctx: CheckContext) -> Outcome:
        raise NotImplementedError


class CheckRegistry:
    """Check classes by name."""

    def __init__(self) -> None:
        self._checks: dict[str, type[Check]] = {}

    def register(self, cls: type[Check]) -> type[Check]:
        if cls.name in self._checks:
            raise ValueError(f"a check named {cls.name} is already registered")
        self._checks[cls.name] = cls
        return cls

    def get(self, name: str) -> type[Check]:
        try:
            return self._checks[name]
        except KeyError:
            raise SpecError(f"unknown check {name!r}; known checks: {', '.join(sorted(self._checks))}") from None

    def names(self) -> list[str]:
        return sorted(self._checks)


registry = CheckRegistry()
register = registry.register
