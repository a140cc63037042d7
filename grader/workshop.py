"""A workshop pack: everything a room of learners needs to build and grade every lab with no network.

`pack(out)` writes one folder to hand out on a USB stick or a share:

    images.tar      every image the labs build FROM or run (`docker save`; shared layers stored once)
    wheelhouse/     every Python package the labs' Dockerfiles install, plus what pip needs to build the
                    source-only ones, with a PEP 503 "simple" index (wheelhouse/simple/) over them
    provided/       the files labs provide themselves (lab 07's torch wheel), by lab folder
    manifest.json   what is in it, with image ids and file hashes

`load(folder)` on a learner's machine loads the images and starts the wheelhouse: a container serving
wheelhouse/, published on the default bridge's gateway (172.17.0.1 on most engines), the one address
BuildKit's RUN steps and every container reach the host at, and which the room's network does not see.
The Python base images get one more layer, /etc/pip.conf naming that wheelhouse as the package index, so
an unchanged `RUN pip install -r requirements.txt` installs from it, in the grader and in a plain
`docker build .` alike, with no internet. `unload(folder)` undoes it.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from grader import __version__, base_images
from grader.engine import WORKSHOP_LABEL, Engine
from grader.errors import GraderError
from grader.spec import REPO_ROOT, official_specs

WHEELHOUSE_PORT = 3141
WHEELHOUSE_CONTAINER = "grader-workshop-wheelhouse"
PIP_IMAGE = "python:3.11-slim"  # the labs' base image: its Python decides which packages pip picks
# What pip needs to build a package that ships only as source (lab 03 builds psutil), pinned.
BUILD_TOOLS = ("setuptools==84.2.1", "wheel==0.48.0")


def pip_conf(address: str) -> str:
    """/etc/pip.conf naming the wheelhouse at `address` ("172.17.0.1:3141") as the only package index."""
    return (
        "# Written by the workshop pack: packages come from the room's wheelhouse, never from the internet.\n"
        f"[global]\nindex-url = http://{address}/simple/\ntrusted-host = {address.split(':')[0]}\n"
        "disable-pip-version-check = true\n"
    )


def requirement_files(root: Path = REPO_ROOT) -> list[Path]:
    """Every requirements file a lab's Dockerfile installs from (the solutions hold the full lists)."""
    return sorted((root / "solutions").rglob("requirements*.txt"))


def normalise(project: str) -> str:
    """A project name as PEP 503 writes it in the index: lower case, runs of -_. become one dash."""
    return re.sub(r"[-_.]+", "-", project).lower()


def project_of(filename: str) -> str:
    """The project a wheel or source archive belongs to, from its file name."""
    if filename.endswith(".whl"):
        return normalise(filename.split("-")[0])
    stem = re.sub(r"\.(tar\.gz|zip|tar\.bz2)$", "", filename)
    return normalise(stem.rsplit("-", 1)[0])


def write_simple_index(wheelhouse: Path) -> dict[str, str]:
    """Write wheelhouse/simple/ (PEP 503) over the packages in `wheelhouse`; returns their sha256 by file name."""
    simple = wheelhouse / "simple"
    shutil.rmtree(simple, ignore_errors=True)
    hashes = {}
    files = defaultdict(list)
    for path in sorted(wheelhouse.iterdir()):
        if path.is_file() and re.search(r"\.(whl|tar\.gz|zip|tar\.bz2)$", path.name):
            with path.open("rb") as f:
                hashes[path.name] = hashlib.file_digest(f, "sha256").hexdigest()
            files[project_of(path.name)].append(path.name)
    for project, names in files.items():
        links = "\n".join(
            f'<a href="../../{html.escape(n)}#sha256={hashes[n]}">{html.escape(n)}</a><br>' for n in names
        )
        (simple / project).mkdir(parents=True)
        (simple / project / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{links}\n</body></html>\n")
    listing = "\n".join(f'<a href="{p}/">{p}</a><br>' for p in sorted(files))
    (simple / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{listing}\n</body></html>\n")
    return hashes


def pack(out: Path, engine: Engine, say=print) -> dict:
    """Write the workshop pack into `out` (made if missing); returns its manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    refs = base_images.required_images()
    missing = [r for r in refs if base_images.status(engine, r) == "missing"]
    if missing:
        raise GraderError(f"these images are missing: {', '.join(missing)}", hint="run 'make images' first")
    say(f"saving {len(refs)} images to images.tar ({', '.join(refs)})...")
    engine.save_images(refs, out / "images.tar")

    wheelhouse = out / "wheelhouse"
    wheelhouse.mkdir(exist_ok=True)
    provided = _copy_provided(out / "provided")
    say("downloading every package the labs install, with the Python of their base image...")
    _download(engine, wheelhouse, provided)
    for wheel in provided:  # the provided wheels are installed from the index too (lab 07: torch's deps)
        shutil.copy2(wheel, wheelhouse / wheel.name)
    hashes = write_simple_index(wheelhouse)

    manifest = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "grader_version": __version__,
        "images": {ref: engine.inspect_image(ref)["Id"] for ref in refs},
        "wheelhouse": hashes,
        "provided": [str(p.relative_to(out)) for p in provided],
        "projects": len({project_of(name) for name in hashes}),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def _copy_provided(dest: Path) -> list[Path]:
    """Copy the files labs provide themselves (lab.yaml `provided`) into dest/<lab folder>/..."""
    copied = []
    for spec in official_specs().values():
        for rel in spec.provided:
            source = spec.path / rel
            if not source.exists():
                raise GraderError(f"{source} is missing", hint="run 'make wheels' first")
            for path in sorted(source.rglob("*") if source.is_dir() else [source]):
                if path.is_file():
                    target = dest / spec.path.name / path.relative_to(spec.path)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
                    copied.append(target)
    return copied


def _download(engine: Engine, wheelhouse: Path, provided: list[Path]) -> None:
    """`pip download` every lab's requirements inside the labs' base image, into `wheelhouse`.

    Inside, not on this machine: a requirement's markers (`; python_full_version < "3.11.3"`) and the wheels'
    platform tags are decided by the Python that will install them, which is the image's, not ours.
    """
    dirs = sorted({p.parent.relative_to(p.parents[2]) for p in provided})
    find_links = " ".join(f"--find-links /provided/{d}" for d in dirs)
    steps = [
        f"pip download --no-cache-dir --dest /wheelhouse {find_links} --requirement /repo/{r.relative_to(REPO_ROOT)}"
        for r in requirement_files()
    ]
    steps.append(f"pip download --no-cache-dir --dest /wheelhouse {' '.join(BUILD_TOOLS)}")
    mounts = {str(REPO_ROOT / "solutions"): "/repo/solutions", str(wheelhouse): "/wheelhouse"}
    if provided:
        mounts[str(provided[0].parents[2])] = "/provided"
    code, out = engine.run_tool(PIP_IMAGE, ["sh", "-c", " && ".join(steps)], mounts)
    if code != 0:
        raise GraderError(f"pip download failed in {PIP_IMAGE}:\n{out[-2000:]}", hint="is PyPI reachable from builds?")


def load(folder: Path, engine: Engine, say=print) -> None:
    """Load a pack on this machine: images, pip configured to use the wheelhouse, the wheelhouse running."""
    folder = Path(folder).resolve()
    manifest = _manifest(folder)
    say(f"loading {len(manifest['images'])} images from images.tar...")
    engine.load_images(folder / "images.tar")
    address = engine.start_wheelhouse(folder / "wheelhouse", WHEELHOUSE_CONTAINER, WHEELHOUSE_PORT)
    say(f"the wheelhouse answers at http://{address}/ (the default bridge's gateway: every build reaches it)")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "pip.conf").write_text(pip_conf(address))
        for ref in manifest["images"]:
            if ref.split(":")[0].split("/")[-1] == "python":
                say(f"{ref}: pip now installs from the wheelhouse")
                dockerfile = f"FROM {ref}\nCOPY pip.conf /etc/pip.conf\n"
                (Path(tmp) / "Dockerfile").write_text(dockerfile)
                built = engine.build(Path(tmp), "Dockerfile", ref, timeout_s=300, labels={WORKSHOP_LABEL: "true"})
                if not built.ok:
                    raise GraderError(f"could not add pip.conf to {ref}: {built.error}", hint="see 'make doctor'")
    for lab_folder in (folder / "provided").iterdir() if (folder / "provided").is_dir() else ():
        for root in (REPO_ROOT / "solutions" / lab_folder.name, REPO_ROOT / "labs" / lab_folder.name):
            if root.is_dir():
                shutil.copytree(lab_folder, root, dirs_exist_ok=True)


def unload(folder: Path, engine: Engine, say=print) -> None:
    """Stop the wheelhouse and put the pack's original images back (pip then uses PyPI again)."""
    engine.stop_wheelhouse(WHEELHOUSE_CONTAINER)
    engine.load_images(Path(folder) / "images.tar")
    engine.remove_untagged_workshop_images()
    say("the wheelhouse is stopped and the original images are back")


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError:
        raise GraderError(
            f"{folder} is not a workshop pack (no manifest.json)", hint="make one with 'make workshop-pack'"
        ) from None
