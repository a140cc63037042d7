"""Fixtures the unit tests of the batch, its workers and its dispatcher share (a test file may override them)."""

from __future__ import annotations

import pytest

from grader.batch import lab_spec
from grader.gradebook import Gradebook


@pytest.fixture
def spec():
    return lab_spec("01")


@pytest.fixture
def book(tmp_path):
    gradebook = Gradebook(f"sqlite:///{tmp_path}/gradebook.sqlite")
    yield gradebook
    gradebook.close()
