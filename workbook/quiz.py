"""Knowledge checks: multiple-choice questions whose answers are checked in the notebook.

Each wrong option carries an explanation, so a wrong answer teaches something instead of just scoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


class Quiz:
    def __init__(self, questions: list[Question]):
        self.questions = questions

    def show(self) -> None:
        """Print the questions with their options."""
        for n, q in enumerate(self.questions, start=1):
            print(f"Q{n}. {q.prompt}")
            for letter, text in q.options.items():
                print(f"    {letter}) {text}")
            print()

    def check(self, answers: dict[int, str]) -> int:
        """Mark `answers` ({question number: letter}); print feedback per question; return how many are right."""
        right = 0
        for n, q in enumerate(self.questions, start=1):
            given = str(answers.get(n, "")).strip().lower()
            if not given:
                print(f"Q{n}: not answered yet")
            elif given == q.answer:
                right += 1
                print(f"Q{n}: right. {q.why}")
            elif given in q.wrong:
                print(f"Q{n}: not quite: {q.wrong[given]}")
            else:
                print(f"Q{n}: {given!r} is not one of the options {', '.join(q.options)}")
        print(f"\n{right}/{len(self.questions)} right")
        return right
