"""A stand-in for the batch's engine factory (partial(Engine, client)), for batch tests that never reach an engine."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

NOTHING = {"containers": 0, "networks": 0, "volumes": 0, "images": 0}


@dataclass
class MadeEngine:
    """What a grade's engine was made with, and what its clean-up found."""

    session: str
    stop: threading.Event | None
    deadline: float | None
    left: dict[str, int] = field(default_factory=lambda: dict(NOTHING))
    removals: int = 0  # how often remove_session ran

    def remove_session(self) -> dict[str, int]:
        self.removals += 1
        found, self.left = self.left, dict(NOTHING)
        return found


class Engines:
    """Makes engines as the batch asks for them, each leaving `left` behind; remembers every one it made."""

    def __init__(self, **left: int):
        self.left = left
        self.made: list[MadeEngine] = []

    def __call__(self, session: str | None = None, stop=None, deadline: float | None = None) -> MadeEngine:
        engine = MadeEngine(session or uuid.uuid4().hex[:12], stop, deadline, {**NOTHING, **self.left})
        self.made.append(engine)
        return engine
