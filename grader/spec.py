"""A lab's grading spec (`lab.yaml`): what to build, how to run it, which checks apply.

The spec is data; the grader holds no per-lab code. Unknown keys are errors, so a typo in a spec
fails loudly instead of silently dropping a requirement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grader.errors import SpecError

SPEC_FILE = "lab.yaml"
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Limits:
    """Resources a learner's container runs with."""

    cpus: float = 1.0
    memory_mb: int = 512
    pids: int = 128
    network: str = "no-egress"  # a private bridge without NAT: the published port works, the internet does not


@dataclass(frozen=True)
class Budgets:
    """Upper bounds the lab sets; exceeding one fails the check that owns it."""

    image_size_mb: float = 1000
    ready_s: float = 30
    healthy_s: float = 45
    rebuild_s: float | None = None  # set: the whole Dockerfile is rebuilt and timed; unset: up to the install step


@dataclass(frozen=True)
class ComposeSpec:
    """A lab graded as a Compose stack: its file, and the one service a client reaches it through."""

    file: str = "compose.yaml"
    entry_service: str = "proxy"
    entry_port: int = 80
    allow_gpu: bool = False  # a GPU reservation is refused unless the lab is about GPUs
    up_timeout_s: float = 180


@dataclass(frozen=True)
class CheckSpec:
    """One check selected by the lab, with its points and optional overrides."""

    check: str
    points: float = 1
    visibility: str = "visible"  # or "hidden": graded, shown to instructors only
    hint: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabSpec:
    id: str
    slug: str
    title: str
    path: Path
    checks: tuple[CheckSpec, ...]
    base_images: tuple[str, ...] = ()
    dockerfile: str = "Dockerfile"
    build_timeout_s: float = 600
    # Dummy build secrets ({id: value}) the grader passes to every build, for `RUN --mount=type=secret,id=...`
    # steps a lab teaches. Values sit in lab.yaml in plain text: never a real secret.
    build_secrets: dict[str, str] = field(default_factory=dict)
    build_target: str | None = None  # the stage to build (`docker build --target`), when not the last
    port: int = 5000
    ready_path: str = "/health"
    limits: Limits = Limits()
    budgets: Budgets = Budgets()
    code_change: str | None = None
    install_step: str = "pip install"
    forbidden_paths: tuple[str, ...] = ()
    # Large files the lab itself provides (a wheel, say), never part of a learner's submission: each build
    # copy gets the official lab folder's copy where the submission has none. Not in git, not in starters.
    provided: tuple[str, ...] = ()
    http: dict[str, Any] = field(default_factory=dict)
    compose: ComposeSpec | None = None  # set for a lab whose submission is a Compose stack
    # The checks the lab teaches: the starter must fail exactly these (tests/engine proves it).
    learning_targets: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.id}-{self.slug}"


def _take(data: dict, cls, where: str):
    """Build dataclass `cls` from `data`, rejecting keys it does not know."""
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise SpecError(f"{where} must be a mapping, got {type(data).__name__}")
    known = set(cls.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    return cls(**data)


def _secrets(data, path: Path) -> dict[str, str]:
    """`build.secrets`: a mapping of secret ids to dummy values, both strings."""
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise SpecError(f"{path}: build.secrets must map secret ids to (dummy) string values")
    return dict(data)


def load_spec(path: Path) -> LabSpec:
    """Read and validate one `lab.yaml`."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"no spec file at {path}") from None
    except yaml.YAMLError as err:
        raise SpecError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path} must hold a mapping at the top level")
    raw = dict(raw)
    try:
        build = raw.pop("build", {}) or {}
        service = raw.pop("service", {}) or {}
        checks = raw.pop("checks")
    except KeyError:
        raise SpecError(f"{path}: a lab spec needs a 'checks' list") from None
    if not isinstance(checks, list) or not checks:
        raise SpecError(f"{path}: 'checks' must be a non-empty list")
    fields = dict(
        id=str(raw.pop("id", "")),
        slug=str(raw.pop("slug", "")),
        title=str(raw.pop("title", "")),
        path=path.parent,
        checks=tuple(_take(c, CheckSpec, f"{path}: checks[{i}]") for i, c in enumerate(checks)),
        base_images=tuple(raw.pop("base_images", ())),
        limits=_take(raw.pop("limits", None), Limits, f"{path}: limits"),
        budgets=_take(raw.pop("budgets", None), Budgets, f"{path}: budgets"),
        forbidden_paths=tuple(raw.pop("forbidden_paths", ())),
        provided=tuple(raw.pop("provided", ())),
        compose=_take(raw.pop("compose"), ComposeSpec, f"{path}: compose") if "compose" in raw else None,
        learning_targets=tuple(raw.pop("learning_targets", ())),
        dockerfile=build.pop("dockerfile", "Dockerfile"),
        build_timeout_s=float(build.pop("timeout_s", 600)),
        build_secrets=_secrets(build.pop("secrets", None), path),
        build_target=build.pop("target", None),
        port=int(service.pop("port", 5000)),
        ready_path=service.pop("ready_path", "/health"),
    )
    leftovers = {f"build.{k}" for k in build} | {f"service.{k}" for k in service}
    for key in ("code_change", "install_step", "http"):
        if key in raw:
            fields[key] = raw.pop(key)
    leftovers |= set(raw)
    if leftovers:
        raise SpecError(f"{path}: unknown key(s) {sorted(leftovers)}")
    if not fields["id"]:
        raise SpecError(f"{path}: the lab needs an 'id'")
    selected = {c.check for c in fields["checks"]}
    if not set(fields["learning_targets"]) <= selected:
        raise SpecError(
            f"{path}: learning_targets {sorted(set(fields['learning_targets']) - selected)} "
            "are not among the lab's checks"
        )
    for c in fields["checks"]:
        if c.visibility not in ("visible", "hidden"):
            raise SpecError(f"{path}: check {c.check}: visibility must be 'visible' or 'hidden'")
    return LabSpec(**fields)


def official_specs(root: Path = REPO_ROOT) -> dict[str, LabSpec]:
    """The labs this repository ships, by id, read from their reference solutions."""
    specs = {}
    for spec_path in sorted((root / "solutions").glob(f"*/{SPEC_FILE}")):
        spec = load_spec(spec_path)
        specs[spec.id] = spec
    return specs


def normalise_lab_id(lab_id: str, known) -> str:
    """'01', '1' and '01-first-model-container' all name lab '01'."""
    lab_id = str(lab_id).strip()
    if lab_id in known:
        return lab_id
    head = lab_id.split("-")[0]
    return f"{int(head):02d}" if head.isdigit() else head


def resolve_spec(submission: Path, lab_id: str | None = None, root: Path = REPO_ROOT) -> LabSpec:
    """Find the spec that grades `submission`.

    The lab is named by `lab_id`, or else by the id in the submission's own `lab.yaml`. A lab this
    repository ships is always graded by its official spec, so editing the spec in a submission
    changes nothing; only a lab it does not ship is graded by the submission's own spec.
    """
    own = Path(submission) / SPEC_FILE
    official = official_specs(root)
    known = ", ".join(sorted(official)) or "none"
    own_id = None
    if own.is_file():
        # Only the id is read from the learner's copy: the rest of it is never trusted.
        raw = yaml.safe_load(own.read_text()) or {}
        own_id = normalise_lab_id(raw.get("id", ""), official) if isinstance(raw, dict) else None
    if lab_id is None and own_id is None:
        raise SpecError(
            f"{submission} has no {SPEC_FILE}, so the lab is unknown",
            hint=f"name the lab with --lab ID (known: {known})",
        )
    wanted = normalise_lab_id(lab_id, official) if lab_id is not None else own_id
    if own_id in official and wanted != own_id:
        raise SpecError(
            f"the submission is lab {own_id} (its {SPEC_FILE} says so), not lab {wanted}",
            hint=f"leave out --lab, or grade it with --lab {own_id}",
        )
    if wanted in official:
        return official[wanted]
    if own_id == wanted:
        return load_spec(own)
    raise SpecError(f"unknown lab {wanted!r}", hint=f"known labs: {known}")
