"""A lab's grading spec (`lab.yaml`): what to build, how to run it, which checks apply.

The spec is data; the grader holds no per-lab code. Unknown keys are errors, so a typo in a spec
fails loudly instead of silently dropping a requirement.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from grader.errors import SpecError

SPEC_FILE = "lab.yaml"
REPO_ROOT = Path(__file__).resolve().parents[1]
# The published JSON Schema of lab.yaml: load_spec validates against it, and an editor that reads the first line
# `# yaml-language-server: $schema=<path to it>` of a lab.yaml completes and checks keys as the file is written.
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "lab.schema.json"


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
    hints: tuple[str, ...] = ()  # tiered: a nudge, the concept, the exact fix; one more per repeated failure
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "hints", tuple(self.hints))  # YAML gives a list


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


def read_yaml(path: Path):
    """The YAML document in `path`; a SpecError naming the file when it cannot be read or parsed."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"no spec file at {path}") from None
    except UnicodeDecodeError as err:
        raise SpecError(f"{path} is not UTF-8 text: {err}") from None
    except OSError as err:
        raise SpecError(f"cannot read {path}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise SpecError(f"{path} is not valid YAML: {err}") from None


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def schema_comment(spec_file: Path) -> str:
    """The first line that points an editor (the YAML language server) at the schema, relative to `spec_file`."""
    relative = Path(os.path.relpath(SCHEMA_PATH, Path(spec_file).resolve().parent)).as_posix()
    return f"# yaml-language-server: $schema={relative}"


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def key_path(parts) -> str:
    """A key path as `checks[2].points`: mapping keys joined by dots, list indexes in brackets."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out or "(top level)"


def _expected_type(schema: dict) -> str:
    """`schema`'s type for a message: " (expected type 'array')", or "" when it has none."""
    kind = schema.get("type")
    if kind is None and "enum" in schema:
        return f" (expected one of {schema['enum']})"
    if kind is None:
        return ""
    kinds = kind if isinstance(kind, list) else [kind]
    return f" (expected type {', '.join(repr(k) for k in kinds)})"


def _problems(error) -> list[tuple[list, str]]:
    """One schema error as (key path, what is wrong) pairs: an unknown or missing key is named in the path."""
    where = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in known]
        return [([*where, k], f"unknown key; known keys: {', '.join(known)}") for k in unknown]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        key = next((k for k in missing if error.message.startswith(repr(k))), missing[0] if missing else "?")
        wanted = _expected_type(error.schema.get("properties", {}).get(key, {}))
        if key == "body" and "then" in error.schema_path:
            wanted = " (a request needs a JSON 'body', or a 'raw' text)"
        return [([*where, key], f"required key {key!r} is missing{wanted}")]
    message = error.message
    expected = error.validator_value if error.validator == "type" else None
    expected = expected if isinstance(expected, list) else [expected]
    if "string" in expected and isinstance(error.instance, int | float):
        message += "; put the value in quotes (unquoted, YAML reads 01 as the number 1 and yes as true)"
    return [(where, message)]


def _check_context(parts: list, raw: dict) -> str:
    """For a path inside `checks[i]`, " (check NAME)": a message names the check as well as its index."""
    if len(parts) >= 2 and parts[0] == "checks" and isinstance(parts[1], int):
        checks = raw.get("checks")
        entry = checks[parts[1]] if isinstance(checks, list) and parts[1] < len(checks) else None
        if isinstance(entry, dict) and isinstance(entry.get("check"), str) and len(parts) > 2:
            return f" (check {entry['check']})"
    return ""


def validate_raw(raw: dict, path: Path) -> None:
    """Check a parsed lab.yaml against the schema; one SpecError listing every problem, one line each.

    Each line reads `FILE: KEY.PATH[i]: what is wrong`, e.g.
    `solutions/x/lab.yaml: checks[0].points: 'two' is not of type 'number'`.
    """
    found = []
    for error in _validator().iter_errors(raw):
        found += _problems(error)
    if not found:
        return

    def order(item):
        return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in item[0]], item[1]

    found.sort(key=order)
    lines = [f"{path}: {key_path(parts)}{_check_context(parts, raw)}: {what}" for parts, what in found]
    raise SpecError(
        "\n".join(lines),
        hint=(
            f"the schema is grader/schemas/{SCHEMA_PATH.name}; make `{schema_comment(path)}` the first line "
            f"of {path.name} for completion and these checks in your editor"
        ),
    )


def load_spec(path: Path) -> LabSpec:
    """Read and validate one `lab.yaml`: against the schema (types, known keys), then for what it cannot say."""
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(f"{path} must hold a mapping at the top level")
    validate_raw(raw, path)
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
        raw = read_yaml(own) or {}
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
