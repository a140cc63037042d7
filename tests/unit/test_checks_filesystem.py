"""Context sizes with planted paths (grader/checks/on_build_context.py), and finding forbidden paths in an
image's file listing (on_image_files.py, grader/image_files.py), fed from in-memory tar archives shaped like
the engine's."""

from __future__ import annotations

import io
import shutil
import tarfile
from types import SimpleNamespace

import pytest

from grader.checks import on_build_context, on_image_files
from grader.checks.base import FAILED, PASSED
from grader.checks.on_build_context import (
    PLANTED_FILE,
    BuildContextSizeBudget,
    group_by_entry,
    plant,
    planted_context,
)
from grader.checks.on_image_files import Fingerprints, ForbiddenPathsAbsentFromImage, scan
from grader.errors import SpecError
from grader.image_files import Entry, tar_entries
from grader.sizes import human_size
from grader.spec import REPO_ROOT, CheckSpec
from grader.streams import ChunkReader

LAB02 = REPO_ROOT / "solutions" / "02-layer-caching"
FORBIDDEN = ("data", "notebooks", ".venv", ".git")
CSV = b"alcohol,malic_acid,ash\n14.23,1.71,2.43\n13.2,1.78,2.14\n13.16,2.36,2.67\n14.37,1.95,2.5\n"


@pytest.fixture
def submission(tmp_path):
    """A lab 02 submission with data and notebooks, but (like a fresh download) no .venv or .git."""
    sub = tmp_path / "submission"
    (sub / "app").mkdir(parents=True)
    shutil.copy(LAB02 / "Dockerfile", sub / "Dockerfile")
    (sub / "app" / "app.py").write_text("print('hello')\n")
    (sub / "app" / "requirements.txt").write_text("flask==3.1.3\n")
    (sub / "data").mkdir()
    (sub / "data" / "wine_sample.csv").write_bytes(CSV)
    (sub / "notebooks").mkdir()
    (sub / "notebooks" / "explore.ipynb").write_text('{"cells": [], "nbformat": 4, "nbformat_minor": 5}\n' * 3)
    return sub


@pytest.fixture
def ctx(tmp_path, submission):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    spec = SimpleNamespace(forbidden_paths=FORBIDDEN, dockerfile="Dockerfile")

    def copy_of_submission(name):
        shutil.copytree(submission, scratch / name, symlinks=True)
        return scratch / name

    return SimpleNamespace(submission=submission, scratch=scratch, spec=spec, copy_of_submission=copy_of_submission)


# --- sizes and the build context ---------------------------------------------------------------------------
def test_human_size():
    assert [human_size(n) for n in (0, 500, 1024, 1536, 512 * 1024, 20 * 1024**2, 3 * 1024**3)] == [
        "0 B",
        "500 B",
        "1 KiB",
        "1.5 KiB",
        "512 KiB",
        "20 MiB",
        "3 GiB",
    ]


def test_group_by_entry_sums_folders_biggest_first():
    sizes = {"data/a.csv": 300, "data/sub/b.csv": 700, "Dockerfile": 50, "app/app.py": 200, "README.md": 200}
    assert group_by_entry(sizes) == [("data/", 1000), ("README.md", 200), ("app/", 200), ("Dockerfile", 50)]


def test_plant_is_sparse_and_leaves_a_file_alone(tmp_path):
    assert plant(tmp_path, ".venv", 50 * 1024**2) == 50 * 1024**2
    planted = tmp_path / ".venv" / PLANTED_FILE
    assert planted.stat().st_size == 50 * 1024**2
    assert planted.stat().st_blocks * 512 < 1024**2  # no real disk used
    (tmp_path / ".git").write_text("gitdir: ../.git/worktrees/x\n")  # a worktree's .git is a file
    assert plant(tmp_path, ".git", 1024) == 0
    assert (tmp_path / ".git").read_text().startswith("gitdir:")


def test_planted_context_applies_the_dockerignore(ctx, submission):
    (submission / ".dockerignore").write_text("data\n.venv\n")
    view = planted_context(ctx, "view", {"data": 1000, "notebooks": 2000, ".venv": 3000, ".git": 4000})
    assert view.planted == {"data": 1000, "notebooks": 2000, ".venv": 3000, ".git": 4000}
    sizes = view.file_sizes()
    assert f"notebooks/{PLANTED_FILE}" in sizes and f".git/{PLANTED_FILE}" in sizes
    assert not any(p.startswith(("data/", ".venv/")) for p in sizes)
    assert "Dockerfile" in sizes
    assert view.patterns == ["data", ".venv"]


def size_check(params=None):
    return BuildContextSizeBudget(CheckSpec("BuildContextSizeBudget", params=params or {}))


LAB_PARAMS = {"max_kb": 512, "plant_kb": {"data": 20480, "notebooks": 2048, ".venv": 8192, ".git": 4096}}


def test_no_dockerignore_is_over_budget_and_names_the_biggest_entries(ctx):
    outcome = size_check(LAB_PARAMS).run(ctx)
    assert outcome.status == FAILED
    assert "34 MiB (budget 512 KiB)" in outcome.message
    assert "biggest: data/ 20 MiB, .venv/ 8 MiB, .git/ 4 MiB, notebooks/ 2 MiB" in outcome.message
    assert "none (no .dockerignore)" in outcome.evidence


def test_the_lab02_dockerignore_is_within_budget(ctx, submission):
    shutil.copy(LAB02 / ".dockerignore", submission / ".dockerignore")
    outcome = size_check(LAB_PARAMS).run(ctx)
    assert outcome.status == PASSED, outcome.message
    assert "budget 512 KiB" in outcome.message and "data/" not in outcome.message


def test_one_path_left_in_is_named(ctx, submission):
    (submission / ".dockerignore").write_text("notebooks\n.venv\n.git\n")
    outcome = size_check(LAB_PARAMS).run(ctx)
    assert outcome.status == FAILED
    assert "biggest: data/ 20 MiB," in outcome.message


def test_unlisted_paths_get_the_default_size(ctx, submission):
    (submission / ".dockerignore").write_text("data\nnotebooks\n.git\n")
    outcome = size_check({"max_kb": 1024}).run(ctx)
    assert outcome.status == FAILED
    assert f".venv/ {human_size(on_build_context.DEFAULT_PLANT_KB * 1024)}" in outcome.message


def test_the_submission_itself_is_not_touched(ctx, submission):
    before = sorted(p.relative_to(submission) for p in submission.rglob("*"))
    size_check(LAB_PARAMS).run(ctx)
    assert sorted(p.relative_to(submission) for p in submission.rglob("*")) == before


def test_size_params_are_validated(ctx):
    with pytest.raises(SpecError, match="plant_kb must map"):
        size_check({"plant_kb": 100})
    with pytest.raises(SpecError, match="not among forbidden_paths"):
        size_check({"plant_kb": {"datasets": 100}}).run(ctx)
    with pytest.raises(SpecError, match="unknown param"):
        size_check({"max_mb": 1})


# --- the image's files -----------------------------------------------------------------------------------
def archive(files: dict[str, bytes | None]) -> bytes:
    """A tar archive like the engine's: a None value is a folder."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def entries_of(files: dict[str, bytes | None], root: str):
    """Entries as image_entries yields them, streamed through ChunkReader in awkward chunk sizes."""
    data = archive(files)
    chunks = (data[i : i + 777] for i in range(0, len(data), 777))
    tar = tarfile.open(fileobj=io.BufferedReader(ChunkReader(chunks)), mode="r|")
    return tar_entries(tar, root)


APP_WITH_DATA = {  # what `COPY . .` into WORKDIR /app leaves: the engine names members after the folder
    "app": None,
    "app/app": None,
    "app/app/app.py": b"print('hello')\n",
    "app/data": None,
    "app/data/wine_sample.csv": CSV,
    "app/data/more": None,
    "app/data/more/extra.csv": b"1,2,3\n",
    "app/notebooks/explore.ipynb": b"{}\n",
}


def test_tar_entries_give_absolute_paths():
    assert [e.path for e in entries_of({"app": None, "app/x.py": b"1"}, "/app")] == ["/app", "/app/x.py"]
    assert [e.path for e in entries_of({"": None, "/bin": None, "/srv/x": b"1"}, "/")] == ["/", "/bin", "/srv/x"]
    assert [e.path for e in entries_of({"src": None, "src/a": b""}, "/usr/src/")] == ["/usr/src", "/usr/src/a"]


def test_copy_everything_is_found_with_counts():
    findings, files = scan(entries_of(APP_WITH_DATA, "/app"), "/app", FORBIDDEN)
    assert {f.where: (f.forbidden, f.files, f.bytes) for f in findings} == {
        "/app/data": ("data", 2, len(CSV) + 6),
        "/app/notebooks": ("notebooks", 1, 3),
    }
    assert files == 4
    assert findings[0].describe() == f"/app/data (2 files, {len(CSV) + 6} B)"


def test_an_empty_forbidden_folder_is_found_too():
    findings, _ = scan(entries_of({"app": None, "app/.git": None}, "/app"), "/app", FORBIDDEN)
    assert [f.describe() for f in findings] == ["/app/.git (0 files, 0 B)"]


def test_a_clean_image_and_lookalike_names_pass():
    files = {
        "app": None,
        "app/app/app.py": b"x",
        "app/app/data": None,  # the app's own data folder is not the submission's data/
        "app/app/data/labels.json": b"[]",
        "app/database.py": b"x",
        "app/.venv-notes": b"x",
    }
    findings, n = scan(entries_of(files, "/app"), "/app", FORBIDDEN)
    assert findings == [] and n == 4


def test_paths_outside_the_searched_folder_are_ignored():
    entries = [Entry("/data/x.csv", 10, True), Entry("/application/data/y", 1, True), Entry("/app", 0, False)]
    assert scan(entries, "/app", FORBIDDEN) == ([], 0)


def test_under_root_anchors_at_the_top():
    entries = [
        Entry("/data/x.csv", 10, True),
        Entry("/usr/lib/python3/dist-packages/sklearn/datasets/data/iris.csv", 10, True),
    ]
    findings, _ = scan(entries, "/", FORBIDDEN)
    assert [f.where for f in findings] == ["/data"]


def test_a_renamed_copy_is_found_by_content(submission):
    files = {"app": None, "app/app/reference.csv": CSV, "app/app/other.csv": CSV.replace(b"14", b"15")}
    fingerprints = Fingerprints(submission, ["data", "notebooks"])
    findings, _ = scan(entries_of(files, "/app"), "/app", FORBIDDEN, fingerprints)
    assert [f.describe() for f in findings] == ["/app/app/reference.csv (same content as data/wine_sample.csv)"]
    assert findings[0].forbidden == "data"


def test_fingerprints_hash_lazily_and_skip_tiny_files(submission):
    (submission / "data" / "empty.csv").write_text("")
    fingerprints = Fingerprints(submission, ["data"])
    assert fingerprints.candidates(len(CSV)) and not fingerprints.candidates(0)
    assert fingerprints._digests == {}
    assert fingerprints.same_as(len(CSV), b"x" * len(CSV)) is None
    assert fingerprints.same_as(len(CSV), CSV) == "data/wine_sample.csv"
    assert Fingerprints(submission, [".venv"]).candidates(len(CSV)) is False  # a path the submission lacks


def image_check(params=None):
    return ForbiddenPathsAbsentFromImage(CheckSpec("ForbiddenPathsAbsentFromImage", params=params or {}))


@pytest.fixture
def image_ctx(ctx, monkeypatch):
    """The ctx, with an image whose WORKDIR /app holds `ctx.files` (an archive as the engine gives it)."""
    ctx.files = APP_WITH_DATA
    ctx.image = lambda: "sha256:fake"
    ctx.image_config = lambda: {"Config": {"WorkingDir": "/app"}}
    ctx.engine = None
    asked = []

    def fake_entries(engine, image, root):
        asked.append(root)
        return entries_of(ctx.files, root)

    monkeypatch.setattr(on_image_files, "image_entries", fake_entries)
    ctx.asked = asked
    return ctx


def test_image_check_fails_with_where_and_how_much(image_ctx):
    outcome = image_check().run(image_ctx)
    assert outcome.status == FAILED
    assert outcome.message.startswith("the image has /app/data (2 files")
    assert "/app/notebooks (1 file, 3 B)" in outcome.message
    assert "under /app (the image's WORKDIR)" in outcome.evidence
    assert image_ctx.asked == ["/app"]


def test_image_check_passes_a_clean_workdir(image_ctx):
    image_ctx.files = {"app": None, "app/app/app.py": b"x", "app/app/model.joblib": b"y" * 100}
    outcome = image_check({"same_content": ["data"]}).run(image_ctx)
    assert outcome.status == PASSED
    assert outcome.message == "none of data, notebooks, .venv, .git is in the image under /app (2 files)"


def test_image_check_names_a_renamed_copy_in_its_hint(image_ctx):
    image_ctx.files = {"app": None, "app/wine.csv": CSV}
    outcome = image_check({"same_content": ["data", "notebooks"]}).run(image_ctx)
    assert outcome.status == FAILED
    assert "data/wine_sample.csv was copied into the image as /app/wine.csv" in outcome.hint


def test_image_check_searches_where_it_is_told(image_ctx):
    image_ctx.image_config = lambda: {"Config": {"WorkingDir": ""}}
    image_check().run(image_ctx)
    image_check({"under": "/srv/app/"}).run(image_ctx)
    assert image_ctx.asked == ["/", "/srv/app"]


def test_image_check_params_are_validated(image_ctx):
    with pytest.raises(SpecError, match="absolute path"):
        image_check({"under": "app"})
    with pytest.raises(SpecError, match="not among forbidden_paths"):
        image_check({"same_content": ["datasets"]}).run(image_ctx)


def test_no_forbidden_paths_passes_without_looking(image_ctx):
    image_ctx.spec.forbidden_paths = ()
    assert image_check().run(image_ctx).status == PASSED
    assert image_ctx.asked == []
