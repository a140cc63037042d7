"""A workshop pack, made and loaded on this machine: afterwards every lab's packages install from the pack's
wheelhouse alone (pip.conf in the base images names it as the only index), and labs build and grade offline.

This test changes the machine's base images while it runs (that is what loading a pack does) and puts
the originals back at the end, also when it fails.
"""

from __future__ import annotations

import pytest
from seeded import assert_nothing_left

from grader import workshop
from grader.engine import Engine
from grader.engine.client import WORKSHOP_LABEL
from grader.session import grade
from grader.spec import official_specs

SPECS = official_specs()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, engine_probe):
    connected, why = engine_probe
    if connected is None:
        pytest.fail(f"CI needs a Docker engine and none answers: {why}")
    engine = Engine(connected.client)
    folder = tmp_path_factory.mktemp("workshop-pack")
    workshop.pack(folder, engine)
    try:
        workshop.load(folder, engine)
        yield folder
    finally:
        workshop.unload(folder, engine)
        engine.remove_session()
    # The pip.conf images the load made are gone with it, not left behind untagged on the disk.
    left = engine.client.images.list(filters={"label": WORKSHOP_LABEL, "dangling": True})
    assert left == [], [image.id for image in left]


def test_the_pack_holds_every_image_and_package(loaded):
    manifest = workshop._manifest(loaded)
    assert set(manifest["images"]) == {ref for spec in SPECS.values() for ref in spec.base_images}
    assert any(name.startswith("torch-") for name in manifest["wheelhouse"])
    assert manifest["projects"] >= 30


def test_a_plain_build_installs_from_the_wheelhouse_only(loaded, engine, tmp_path):
    address = f"{engine.bridge_gateway()}:{workshop.WHEELHOUSE_PORT}"
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.11-slim\n"
        # The session id keeps an earlier run's cached step out; -v makes pip name every index it asks.
        f"RUN echo {engine.session} && pip download -v --no-deps --dest /tmp flask==3.1.3\n"
    )
    built = engine.build(tmp_path, "Dockerfile", engine.name("offline-probe"), timeout_s=120)
    log = "\n".join(built.log)
    assert built.ok, log
    assert "Saved /tmp/flask-3.1.3-py3-none-any.whl" in log, log
    assert f"Looking in indexes: http://{address}/simple/" in log, log
    assert "pypi.org" not in log and "files.pythonhosted.org" not in log, log
    engine.remove_session()
    assert_nothing_left(engine)


# Graded in full with no network: a package built from source in a multi-stage build (03), a Compose stack
# of three images (06), torch from the lab's own wheels folder (07). Every other lab installs a subset of
# their packages with the same `pip install -r`, proven below without a grade each.
GRADED_OFFLINE = ("03", "06", "07")


def test_every_labs_requirements_install_from_the_wheelhouse_alone(loaded, engine, tmp_path):
    files = [f for f in workshop.requirement_files() if SPECS["03"].path not in f.parents]  # 03: graded below
    context = tmp_path / "requirements"
    steps = []
    for number, requirements in enumerate(files):
        (context / f"{number}.txt").parent.mkdir(exist_ok=True)
        (context / f"{number}.txt").write_text(requirements.read_text())
        # --dry-run resolves and downloads every package and installs none; the index is the pack's alone.
        steps.append(f"pip install --dry-run --ignore-installed --no-cache-dir -r /r/{number}.txt")
    (context / "Dockerfile").write_text(
        f"FROM python:3.11-slim\nCOPY *.txt /r/\nRUN echo {engine.session} && {' && '.join(steps)}\n"
    )
    built = engine.build(context, "Dockerfile", engine.name("offline-requirements"), timeout_s=600)
    log = "\n".join(built.log)
    assert built.ok, log[-3000:]
    assert log.count("Would install") == len(files), log[-3000:]
    assert "pypi.org" not in log and "files.pythonhosted.org" not in log, log[-3000:]
    engine.remove_session()
    assert_nothing_left(engine)


@pytest.mark.parametrize("lab_id", GRADED_OFFLINE)
def test_a_lab_builds_and_grades_offline(loaded, engine, lab_id):
    spec = SPECS[lab_id]
    result = grade(spec.path, spec, engine=engine)
    failed = [(t.id, t.status, t.message) for t in result.tests if t.status not in ("passed", "skipped")]
    assert failed == [] and result.exit_code == 0, failed
    assert result.score == result.max_score > 0
