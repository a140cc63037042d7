"""Knowledge checks: multiple-choice questions whose answers are checked in the notebook.

A chapter's questions live in `workbook/quizzes/NN.yaml`, out of the cell the learner runs: the right
answer, why it is right, and why each other option is wrong (a wrong answer teaches something instead of
just scoring). Each learner sees the options in an order of their own (seeded by their name and the
chapter, so the same learner sees the same order every time), and the right answers are spread evenly
over the letters. In JupyterLab a question is answered by clicking, with the feedback at once; run
unattended (nbval, papermill) or without ipywidgets, the questions print and `check()` marks a dict.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from grader import learner_record

QUIZ_DIR = Path(__file__).parent / "quizzes"
LETTERS = "abcdefgh"


@dataclass
class Question:
    prompt: str
    options: dict[str, str]  # letter -> option text
    answer: str  # the right letter
    why: str  # why the right answer is right
    wrong: dict[str, str] = field(default_factory=dict)  # letter -> why that option is wrong

    def __post_init__(self):
        if self.answer not in self.options:
            raise ValueError(f"answer {self.answer!r} is not one of the options {sorted(self.options)}")
        missing = set(self.options) - {self.answer} - set(self.wrong)
        if missing:
            raise ValueError(f"explain why option(s) {sorted(missing)} are wrong: {self.prompt[:60]}")

    def feedback(self, given: str) -> tuple[bool, str]:
        """Whether `given` (a letter) is right, and what to tell the learner."""
        given = str(given).strip().lower()
        if given == self.answer:
            return True, f"right. {self.why}"
        if given in self.wrong:
            return False, f"not quite: {self.wrong[given]}"
        return False, f"{given!r} is not one of the options {', '.join(self.options)}"


class Quiz:
    def __init__(self, questions: list[Question], chapter: str = ""):
        self.questions = questions
        self.chapter = chapter  # set by load_quiz: answers are then kept in the learner's record
        self._clicked: dict[int, str] = {}

    def show(self) -> None:
        """Clickable questions in JupyterLab (ipywidgets), else the questions printed with their options."""
        if _widgets_frontend():
            self._show_widgets()
            return
        for n, q in enumerate(self.questions, start=1):
            print(f"Q{n}. {q.prompt}")
            for letter, text in q.options.items():
                print(f"    {letter}) {text}")
            print()

    def check(self, answers: dict[int, str]) -> int:
        """Mark `answers` ({question number: letter}); print feedback per question; return how many are right."""
        right = 0
        for n, q in enumerate(self.questions, start=1):
            given = str(answers.get(n, "")).strip()
            if not given:
                print(f"Q{n}: not answered yet")
                continue
            ok, said = q.feedback(given)
            right += ok
            print(f"Q{n}: {said}")
        print(f"\n{right}/{len(self.questions)} right")
        if any(str(value).strip() for value in answers.values()):
            self._keep(right)
        return right

    def _keep(self, right: int) -> None:
        """The score into the learner's record (`python -m grader progress` shows it)."""
        if self.chapter:
            learner_record.record_quiz(self.chapter, right, len(self.questions))

    def _show_widgets(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        for n, q in enumerate(self.questions, start=1):
            choice = widgets.RadioButtons(
                options=[(f"{letter}) {text}", letter) for letter, text in q.options.items()],
                value=None,
                layout=widgets.Layout(width="auto"),
            )
            said = widgets.HTML()

            def answered(change, n=n, q=q, said=said):
                ok, text = q.feedback(change["new"])
                colour = "green" if ok else "firebrick"
                said.value = f"<span style='color:{colour}'>{_escape(text)}</span>"
                self._clicked[n] = change["new"]
                if len(self._clicked) == len(self.questions):  # every question answered: keep the score
                    chosen = [self.questions[k - 1].feedback(letter)[0] for k, letter in self._clicked.items()]
                    self._keep(sum(chosen))

            choice.observe(answered, names="value")
            display(widgets.VBox([widgets.HTML(f"<b>Q{n}.</b> {_escape(q.prompt)}"), choice, said]))


class Prediction:
    """A "predict, then run" question: the learner commits to an answer before the next cell measures it.

    The options stay in their order (a measurement maps to one of them); `reveal` marks the one measured
    and says whether the prediction was right. Run unattended, there is no prediction, and it says so.
    """

    def __init__(self, prompt: str, options: dict[str, str]):
        self.prompt, self.options = prompt, options
        self.choice = ""

    def commit(self, letter: str) -> None:
        letter = str(letter).strip().lower()
        print(f"Predict: {self.prompt}")
        for key, text in self.options.items():
            print(f"    {key}) {text}")
        if letter and letter not in self.options:
            print(f"{letter!r} is not one of the options {', '.join(self.options)}: no prediction kept")
            letter = ""
        self.choice = letter
        print(
            f"\nyour prediction: {letter}) {self.options[letter]}"
            if letter
            else "\nno prediction yet: set my_prediction to a letter and run this cell, then the measurement"
        )

    def reveal(self, measured: str, evidence: str) -> bool:
        """Show which option the measurement picked (`evidence`: the numbers behind it); True if predicted."""
        for key, text in self.options.items():
            marks = ("<- measured" if key == measured else "") + ("  (your prediction)" if key == self.choice else "")
            print(f"    {key}) {text}  {marks}".rstrip())
        print(f"measured: {evidence}")
        if not self.choice:
            print("You made no prediction this time; next time commit to one first: a surprise is what you learn from.")
        elif self.choice == measured:
            print("Your prediction was right.")
        else:
            print("Not what you predicted: the explanation below says why it comes out this way.")
        return self.choice == measured


def load_quiz(chapter: str, learner: str | None = None, folder: Path = QUIZ_DIR) -> Quiz:
    """Chapter `chapter`'s quiz from `folder`/`chapter`.yaml, its options in `learner`'s own order."""
    data = yaml.safe_load((folder / f"{chapter}.yaml").read_text(encoding="utf-8"))
    # The knowledge check comes after every experiment: reaching it means the chapter ran through.
    learner_record.record_chapter_run(chapter)
    rng = random.Random(f"{learner or learner_record.learner_name()}/{chapter}")
    entries = data["questions"]
    # Right answers spread evenly over the letters: each letter gets its share, in a shuffled order.
    width = min(len(entry["wrong"]) + 1 for entry in entries)
    places = [i % width for i in range(len(entries))]
    rng.shuffle(places)
    questions = []
    for entry, place in zip(entries, places, strict=True):
        wrong = list(entry["wrong"].items())
        rng.shuffle(wrong)
        texts = [text for text, _ in wrong]
        texts.insert(place, entry["answer"])
        options = dict(zip(LETTERS, texts, strict=False))  # as many letters as options
        right = LETTERS[place]
        why_wrong = dict(wrong)
        explained = {letter: why_wrong[text] for letter, text in options.items() if letter != right}
        questions.append(Question(entry["prompt"], options, right, entry["why"], explained))
    return Quiz(questions, chapter)


def _widgets_frontend() -> bool:
    """Whether a notebook front end that draws widgets is attached (JupyterLab), not a headless kernel."""
    if os.environ.get("WORKBOOK_QUICK") or os.environ.get("WORKBOOK_TEXT_QUIZ"):
        return False  # run unattended (nobody will click), or printed questions asked for
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
