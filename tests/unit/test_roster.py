"""Who submitted what: learner ids from submission names or a roster CSV."""

from __future__ import annotations

import os

import pytest

from grader.batch.roster import discover, read_roster, stem_of
from grader.errors import RosterError


@pytest.mark.parametrize(
    "name, stem",
    [
        ("ada.zip", "ada"),
        ("ada.tar.gz", "ada"),
        ("ada.TGZ", "ada"),
        ("ada.git", "ada"),
        ("ada", "ada"),
        (".zip", ".zip"),
    ],
)
def test_stem(name, stem):
    assert stem_of(name) == stem


def make_class(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "ada").mkdir()
    (folder / "grace.zip").write_bytes(b"")
    (folder / "alan.tar.gz").write_bytes(b"")
    (folder / "notes.txt").write_text("not a submission")
    (folder / ".DS_Store").write_bytes(b"")
    (folder / "__MACOSX").mkdir()
    return folder


def test_learner_ids_come_from_the_names(tmp_path):
    found, notes = discover(make_class(tmp_path))
    assert [(s.name, s.kind, s.learner) for s in found] == [
        ("ada", "folder", "ada"),
        ("alan.tar.gz", "tar", "alan"),
        ("grace.zip", "zip", "grace"),
    ]
    assert notes == ["left out notes.txt: not a folder, a zip or tar archive, or a git repository"]


def test_a_roster_maps_submission_names_to_learner_ids(tmp_path):
    roster_file = tmp_path / "roster.csv"
    # A BOM and spreadsheet-style capitals in the header, as spreadsheets write them.
    roster_file.write_text(
        "\ufeffID,First_Name,last_name,email,submission\n"
        "a.lovelace,Ada,Lovelace,ada@example.org,ada\n"
        "g.hopper,Grace,Hopper,grace@example.org,GRACE.zip\n"
        "k.johnson,Katherine,Johnson,,\n",
        encoding="utf-8",
    )
    roster = read_roster(roster_file)
    assert roster.people["a.lovelace"] == {
        "id": "a.lovelace",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.org",
    }
    found, notes = discover(make_class(tmp_path), roster)
    assert {s.name: s.learner for s in found} == {"ada": "a.lovelace", "grace.zip": "g.hopper", "alan.tar.gz": "alan"}
    assert "alan.tar.gz: no learner of the roster has this name; graded as learner 'alan'" in notes


def test_two_submissions_of_one_learner_are_noted(tmp_path):
    folder = make_class(tmp_path)
    (folder / "ada.zip").write_bytes(b"")
    _, notes = discover(folder)
    assert "learner 'ada' has 2 submissions (ada, ada.zip): each is an attempt" in notes


def test_roster_without_an_id_column(tmp_path):
    (tmp_path / "r.csv").write_text("name,email\nAda,a@example.org\n")
    with pytest.raises(RosterError, match=r"no learner id column \(its columns: name, email\)"):
        read_roster(tmp_path / "r.csv")


def test_roster_naming_a_learner_twice(tmp_path):
    (tmp_path / "r.csv").write_text("id\nada\nada\n")
    with pytest.raises(RosterError, match="twice"):
        read_roster(tmp_path / "r.csv")


def test_missing_roster(tmp_path):
    with pytest.raises(RosterError, match="cannot read the roster"):
        read_roster(tmp_path / "nope.csv")


def test_a_submission_whose_name_is_not_utf8_is_left_out_with_a_reason(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "ada").mkdir()
    os.mkdir(os.fsencode(folder) + b"/bad-\xff-name")
    found, notes = discover(folder)
    assert [s.learner for s in found] == ["ada"]
    assert any("bad-\\xff-name" in note and "not valid UTF-8" in note for note in notes), notes
    "\n".join(notes).encode("utf-8")  # every note can be printed and stored as text


def test_a_file_name_that_is_not_utf8_has_a_digest(tmp_path):
    from grader.result import submission_digest

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    first = submission_digest(tmp_path)
    with open(os.fsencode(tmp_path) + b"/bad-\xff.txt", "wb") as handle:
        handle.write(b"x")
    assert submission_digest(tmp_path) != first
