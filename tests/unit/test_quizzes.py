"""The chapters' quizzes (workbook/quizzes/NN.yaml): well formed, and no answer given away by its place,
its length or a question asked twice."""

from __future__ import annotations

import collections
import difflib
import itertools
import math
import re
from pathlib import Path

import pytest
import yaml

from workbook.quiz import QUIZ_DIR, Quiz, load_quiz

CHAPTERS = sorted(path.stem for path in QUIZ_DIR.glob("*.yaml"))
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
LONGEST_SHARE = 1 / 3  # the right answer may be the longest option in at most this share of a chapter's questions
LENGTH_RATIO = 1.35  # ...and never longer than this times its wrong options' mean length
SAME_QUESTION = 0.8  # prompts this similar (difflib ratio, once normalised) are the same question asked twice


def entries(chapter: str) -> list[dict]:
    return yaml.safe_load((QUIZ_DIR / f"{chapter}.yaml").read_text(encoding="utf-8"))["questions"]


def test_every_chapter_has_a_quiz_and_its_notebook_loads_it():
    assert CHAPTERS == sorted(path.name[:2] for path in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    for chapter in CHAPTERS:
        [notebook] = NOTEBOOKS.glob(f"{chapter}-*.ipynb")
        text = notebook.read_text(encoding="utf-8")
        assert f'load_quiz(\\"{chapter}\\")' in text, notebook.name
        assert "Question(" not in text, f"{notebook.name} still holds questions (and their answers) in a cell"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_questions_are_well_formed(chapter):
    for entry in entries(chapter):
        assert set(entry) == {"prompt", "answer", "why", "wrong"}, entry["prompt"]
        assert len(entry["wrong"]) >= 2, f"at least three options: {entry['prompt']}"
        assert entry["answer"] not in entry["wrong"], f"the right answer is also a wrong one: {entry['prompt']}"
        assert all(isinstance(why, str) and why.strip() for why in entry["wrong"].values()), entry["prompt"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_right_answer_is_not_the_longest_option_too_often(chapter):
    questions = entries(chapter)
    longest = [q["prompt"] for q in questions if len(q["answer"]) >= max(map(len, q["wrong"]))]
    allowed = math.ceil(len(questions) * LONGEST_SHARE)
    assert len(longest) <= allowed, f"{len(longest)} of {len(questions)} right answers are the longest: {longest}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_right_answers_are_of_comparable_length(chapter):
    too_long = []
    for q in entries(chapter):
        mean_wrong = sum(map(len, q["wrong"])) / len(q["wrong"])
        if len(q["answer"]) > LENGTH_RATIO * mean_wrong:
            too_long.append(f"{len(q['answer']) / mean_wrong:.1f}x: {q['prompt'][:70]}")
    assert not too_long, too_long


def normalised(prompt: str) -> str:
    """Lower case, without a parenthesised aside, numbers made alike: `--pids-limit 32` is `--pids-limit 128`."""
    return re.sub(r"\d+", "#", re.sub(r"\([^)]*\)", "", prompt.lower())).strip()


def test_no_question_is_asked_twice():
    prompts = [(chapter, normalised(q["prompt"])) for chapter in CHAPTERS for q in entries(chapter)]
    repeats = [
        (a, b, round(ratio, 2))
        for a, b in itertools.combinations(prompts, 2)
        if (ratio := difflib.SequenceMatcher(None, a[1], b[1]).ratio()) >= SAME_QUESTION
    ]
    assert not repeats, repeats


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_right_answers_are_spread_over_the_letters_for_every_learner(chapter):
    for learner in ("ada", "grace", "linus", "margaret", "ken"):
        quiz = load_quiz(chapter, learner)
        letters = collections.Counter(q.answer for q in quiz.questions)
        width = min(len(q.options) for q in quiz.questions)
        assert max(letters.values()) <= math.ceil(len(quiz.questions) / width), (learner, letters)
        assert load_quiz(chapter, learner).questions[0].options == quiz.questions[0].options  # the same each time


def test_learners_get_orders_of_their_own():
    orders = {learner: [q.options for q in load_quiz("03", learner).questions] for learner in ("ada", "grace")}
    assert orders["ada"] != orders["grace"]


def test_a_loaded_quiz_marks_and_explains_like_a_written_one(capsys, tmp_path):
    (tmp_path / "99.yaml").write_text(
        "questions:\n"
        "- prompt: Which layer does a code-only change rebuild?\n"
        "  answer: the COPY of the code and what follows\n"
        "  why: the cache misses from the first changed step on\n"
        "  wrong:\n"
        "    every layer: only steps from the first miss on run again\n"
        "    none: a changed file changes the COPY's checksum\n"
    )
    quiz = load_quiz("99", "ada", folder=tmp_path)
    assert isinstance(quiz, Quiz)
    [question] = quiz.questions
    wrong = next(letter for letter in question.options if letter != question.answer)
    assert quiz.check({1: question.answer.upper()}) == 1
    assert quiz.check({1: wrong}) == 0
    out = capsys.readouterr().out
    assert "right. the cache misses" in out and "not quite:" in out


def test_a_prediction_is_kept_before_the_measurement_and_compared_after(capsys):
    from workbook import Prediction

    options = {"a": "about the same", "b": "roughly half", "c": "a small fraction"}
    right = Prediction("How long does the rebuild take?", options)
    right.commit("C")
    assert right.reveal("c", "9% of the cold build") is True
    wrong = Prediction("How long does the rebuild take?", options)
    wrong.commit("a")
    assert wrong.reveal("c", "9% of the cold build") is False
    none = Prediction("How long does the rebuild take?", options)
    none.commit("z")  # not an option: nothing kept
    assert none.choice == "" and none.reveal("c", "9%") is False
    out = capsys.readouterr().out
    assert "Your prediction was right." in out and "Not what you predicted" in out
    assert "'z' is not one of the options" in out and "You made no prediction this time" in out
