"""A submission packed for a grading worker: the message round trip, the safe unpacker on the way in, limits."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from dataclasses import replace

import pytest

from grader.batch.parcel import Parcel, open_parcel, pack
from grader.batch.roster import Submission
from grader.batch.unpack import UnpackLimits, unpack
from grader.errors import ParcelError, UnsafeSubmission
from grader.result import submission_digest


def lab_folder(root, name="ada"):
    folder = root / "class" / name
    (folder / "app").mkdir(parents=True)
    (folder / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY app /app\n")
    (folder / "app" / "app.py").write_text("print('hello')\n")
    os.symlink("app/app.py", folder / "main.py")  # a link inside the submission travels as a link
    return folder


def sent_and_opened(submission, tmp_path, **kwargs):
    """Pack, put through JSON as a task message is, and open on the 'worker' side."""
    parcel = pack(submission, lab="01", grading_key="k", timeout_s=600, **kwargs)
    message = json.loads(json.dumps(parcel.to_payload()))
    return open_parcel(Parcel.from_payload(message), tmp_path / "worker")


def digest_of(submission, scratch):
    return submission_digest(unpack(submission.path, scratch, submission.kind))


def test_a_folder_arrives_as_it_lay_with_the_same_content_hash(tmp_path):
    folder = lab_folder(tmp_path)
    ada = Submission("ada", folder, "folder", "ada")
    opened = sent_and_opened(ada, tmp_path)
    assert (opened.name, opened.kind, opened.learner, opened.path.name) == ("ada", "folder", "ada", "ada")
    assert (opened.path / "main.py").is_symlink() and os.readlink(opened.path / "main.py") == "app/app.py"
    assert digest_of(opened, tmp_path / "a") == digest_of(ada, tmp_path / "b")


def test_an_archive_arrives_byte_for_byte(tmp_path):
    archive = tmp_path / "bob.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("lab/Dockerfile", "FROM python:3.11-slim\n")
    opened = sent_and_opened(Submission("bob.zip", archive, "zip", "bob"), tmp_path)
    assert opened.kind == "zip" and opened.path.read_bytes() == archive.read_bytes()


def test_a_git_working_copy_arrives_with_its_history(tmp_path):
    folder = lab_folder(tmp_path, "dee")
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    subprocess.run([*git, "add", "-A"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-qm", "lab"], cwd=folder, check=True)
    (folder / "uncommitted.txt").write_text("not graded\n")
    dee = Submission("dee", folder, "git", "dee")
    opened = sent_and_opened(dee, tmp_path)
    assert (opened.path / ".git").is_dir()
    assert digest_of(opened, tmp_path / "a") == digest_of(dee, tmp_path / "b")  # what was committed, both sides


def test_a_link_out_of_the_submission_travels_as_a_link_and_is_refused(tmp_path):
    folder = lab_folder(tmp_path)
    os.symlink("/etc/passwd", folder / "secrets")
    parcel = pack(Submission("ada", folder, "folder", "ada"), lab="01", grading_key="k", timeout_s=600)
    assert b"root:" not in parcel.data  # never followed: the submitter's files stay home
    with pytest.raises(UnsafeSubmission, match="outside the submission"):
        open_parcel(parcel, tmp_path / "worker")


def test_a_submission_too_large_to_send_is_refused_while_packing(tmp_path):
    folder = lab_folder(tmp_path)
    (folder / "model.bin").write_bytes(os.urandom(300_000))  # does not compress
    with pytest.raises(UnsafeSubmission, match="packs to more than 0 MB") as err:
        pack(Submission("ada", folder, "folder", "ada"), lab="01", grading_key="k", timeout_s=60, max_bytes=100_000)
    assert "leave out models" in err.value.hint


def test_a_parcel_over_the_unpacking_limits_is_refused_on_the_worker(tmp_path):
    folder = lab_folder(tmp_path)
    for i in range(12):
        (folder / f"f{i}.txt").write_text(str(i))
    with pytest.raises(UnsafeSubmission, match="more than 12 files"):  # the parcel may hold 4 times the limit
        sent_and_opened(Submission("ada", folder, "folder", "ada"), tmp_path, limits=UnpackLimits(max_files=3))


def test_the_limits_travel_with_the_parcel(tmp_path):
    parcel = pack(
        Submission("ada", lab_folder(tmp_path), "folder", "ada"),
        lab="01",
        grading_key="k",
        timeout_s=60,
        limits=UnpackLimits(max_files=7),
    )
    assert Parcel.from_payload(json.loads(json.dumps(parcel.to_payload()))) == parcel


@pytest.mark.parametrize(
    "change, message",
    [
        ({"version": 99}, "not a submission parcel of version 1"),
        ({"name": "../ada"}, "not a plain file name"),
        ({"name": ".."}, "not a plain file name"),
        ({"kind": "rar"}, "unknown kind"),
        ({"learner": ""}, "lacks learner"),
        ({"data": "not base64!"}, "damaged"),
        ({"timeout_s": -1}, "no usable time limit"),
        ({"timeout_s": True}, "no usable time limit"),
        ({"limits": {"max_files": "many"}}, "unusable unpacking limits"),
        ({"limits": {"max_nothing": 1}}, "damaged"),
    ],
)
def test_a_malformed_message_is_refused(tmp_path, change, message):
    parcel = pack(Submission("ada", lab_folder(tmp_path), "folder", "ada"), lab="01", grading_key="k", timeout_s=60)
    with pytest.raises(ParcelError, match=message):
        Parcel.from_payload({**parcel.to_payload(), **change})
    with pytest.raises(ParcelError):
        Parcel.from_payload(["not", "a", "dict"])


def test_a_parcel_that_does_not_hold_its_submission_is_refused(tmp_path):
    folder = lab_folder(tmp_path)
    parcel = pack(Submission("ada", folder, "folder", "ada"), lab="01", grading_key="k", timeout_s=60)
    with pytest.raises(UnsafeSubmission, match="does not hold it"):
        open_parcel(replace(parcel, name="eve"), tmp_path / "worker")
