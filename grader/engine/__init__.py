"""Every conversation with the Docker engine goes through this package.

    engine = connect()  # or Engine(client, session, stop=event, deadline=t) for one grade of a batch

`Engine` is made of one part per concern, each in its own module: client (the connection, labels,
facts, and the stop and deadline that cancel a batch's work), images (building, and what the engine
knows of an image), containers (services, probes, files, networks, events), compose (Compose stacks),
cleanup (removing what sessions made, the build cache records) and workshop (a workshop pack's images
and wheelhouse). views holds typed views of what the engine answers.
"""

from __future__ import annotations

from grader.engine.cleanup import Cleanup
from grader.engine.client import (
    LABEL,
    PING_TIMEOUT_S,
    STANDIN_LABEL,
    WORKSHOP_LABEL,
    Cancelled,
    open_client,
)
from grader.engine.compose import Compose, ComposeRun, compose_config
from grader.engine.containers import Containers
from grader.engine.images import Images
from grader.engine.views import ContainerView
from grader.engine.workshop import Workshop

__all__ = [
    "LABEL",
    "STANDIN_LABEL",
    "WORKSHOP_LABEL",
    "Cancelled",
    "ComposeRun",
    "ContainerView",
    "Engine",
    "compose_config",
    "connect",
]


class Engine(Images, Workshop, Containers, Compose, Cleanup):
    """A connected engine plus the label of the grading session using it (see client.Connection)."""


def connect(timeout_s: float = PING_TIMEOUT_S) -> Engine:
    """Connect to the engine named by the environment (DOCKER_HOST or the default socket) and ping it."""
    return Engine(open_client(timeout_s))
