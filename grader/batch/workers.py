"""Grading workers: a class graded on several Docker hosts, through Celery with a Redis broker.

    python -m grader worker --broker redis://BROKER-HOST:6379/0 --gradebook postgresql+psycopg://grader@DB-HOST/grades

A worker takes one submission at a time (a grade is CPU-heavy; --concurrency for more), opens its parcel
(grader/batch/parcel.py), grades it with grade_one on ITS OWN engine (DOCKER_HOST, or the local socket)
exactly as a local batch does, and stores the result in the shared gradebook, marked with the worker's
name. Its answer to the batch is small: the attempt id, status, score, and who graded it; the batch
reads the rest from the gradebook (grader/batch/dispatch.py).

A task is acknowledged only once its grade is stored (acks_late), and a worker process that dies
mid-grade gives its task back to the queue (reject_on_worker_lost), where another worker takes it.
Messages are JSON, never pickle: a worker runs nothing but grade_one on what a message carries.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import tempfile
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from celery import Celery
from celery.utils.nodenames import host_format
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.engine import make_url

from grader.batch import lab_spec
from grader.batch.parcel import Parcel, open_parcel, sent_copy
from grader.batch.roster import Submission
from grader.batch.runner import EngineFactory, GradeFunction, JobProgress, grade_one, grading_key, refuse
from grader.engine import Engine, connect
from grader.errors import GradebookError, GraderError, ParcelError, SpecError, UnsafeSubmission
from grader.gradebook import Gradebook
from grader.result import effective_status
from grader.session import grade

QUEUE = "grader"
TASK = "grader.grade_parcel"
SOFT_MARGIN_S = 120  # past its own time limit, a grade is told to stop (and still removes what it started)...
HARD_MARGIN_S = 300  # ...and past this its worker process is ended
# A task delivered but not acknowledged goes back to the queue after this long (its worker is taken for
# lost): it must be longer than any grade, which MAX_TIMEOUT_S makes sure of.
VISIBILITY_TIMEOUT_S = 3 * 3600
MAX_TIMEOUT_S = 2 * 3600
BROKER_ENV = "GRADER_BROKER_URL"
GRADEBOOK_ENV = "GRADER_GRADEBOOK_URL"
BROKER_HINT = "the broker is a Redis server: redis://HOST:6379/0 (rediss:// with TLS); `make services` installs one"
SHARED_HINT = (
    "use PostgreSQL, the same database for the batch and every worker: "
    "--gradebook postgresql+psycopg://USER@DB-HOST/grades"
)


# --- URLs ----------------------------------------------------------------------------------------
def check_broker_url(url: str) -> str:
    """`url` when it names a Redis broker; GraderError saying what one looks like otherwise."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise GraderError(f"not a Redis broker URL: {url!r}", hint=BROKER_HINT)
    try:
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as err:
        raise GraderError(f"not a Redis broker URL: {url!r} ({err})", hint=BROKER_HINT) from None
    return url


def shown(url: str) -> str:
    """A URL as it may be printed: without its password."""
    return maybe_sanitize_url(url)


def is_loopback(host: str | None) -> bool:
    if not host or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_shared_gradebook(gradebook_url: str, broker_url: str) -> list[str]:
    """Refuse a gradebook the workers cannot share; returns notes on one they can share only in part.

    A SQLite gradebook is a file on this machine: workers elsewhere cannot write to it. It is allowed when
    the broker is on this machine too (so its workers are likely here), with a note.
    """
    try:
        url = make_url(gradebook_url)
    except Exception as err:  # sqlalchemy's ArgumentError, and ValueError for a bad port
        raise GradebookError(f"not a database URL: {gradebook_url!r} ({err})", hint=SHARED_HINT) from None
    broker_here = is_loopback(urlsplit(broker_url).hostname)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise GradebookError(
                "an in-memory SQLite gradebook cannot be shared with grading workers", hint=SHARED_HINT
            )
        if not broker_here:
            raise GradebookError(
                f"the gradebook {gradebook_url} is a SQLite file on this machine: grading workers on other hosts "
                "cannot write to it",
                hint=SHARED_HINT,
            )
        return [
            f"the gradebook is a SQLite file: only workers on this machine that open the very same file "
            f"({os.path.abspath(url.database)}) can store into it; PostgreSQL is the gradebook for several hosts"
        ]
    if is_loopback(url.host) and not broker_here:
        return [
            f"the gradebook URL names this machine as {url.host or 'localhost'}: give workers on other hosts "
            "its network name"
        ]
    return []


def ping_broker(url: str, timeout_s: float = 5.0) -> None:
    """GraderError unless the Redis server at `url` answers."""
    import redis  # the broker's client, which Celery's Redis transport uses too

    try:
        with redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s) as client:
            client.ping()
    except redis.exceptions.RedisError as err:
        raise GraderError(
            f"the broker {shown(url)} does not answer: {err}",
            hint="start Redis there (redis-server --bind ADDRESS --protected-mode no, or with a password), "
            "or correct the URL",
        ) from None


# --- the Celery app ------------------------------------------------------------------------------
def make_app(broker_url: str, gradebook_url: str | None = None) -> Celery:
    """A Celery app on `broker_url` (also its result store), with the grading task; a worker's also knows
    the gradebook it stores into."""
    app = Celery("grader", broker=broker_url, backend=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_track_started=True,  # the batch shows which worker grades what
        worker_prefetch_multiplier=1,  # a busy worker holds no other task back from an idle one
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        grader_gradebook_url=gradebook_url,
    )
    app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(_grade_task)
    return app


def session_of(task_id: str) -> str:
    """The engine session label of a task's grade: the same for the task delivered again after a lost worker."""
    return re.sub(r"[^0-9a-f]", "", task_id.lower())[:12] or "parcel"


# Per worker process (made after the fork): its gradebook, and engines of its client (partial(Engine, client)).
_made: dict[int, tuple[Gradebook, EngineFactory]] = {}


def _resources(app: Celery) -> tuple[Gradebook, EngineFactory]:
    if os.getpid() not in _made:
        _made[os.getpid()] = (Gradebook(app.conf.grader_gradebook_url), partial(Engine, connect().client))
    return _made[os.getpid()]


def _grade_task(task, payload: dict) -> dict:
    """The task a worker runs: grade one parcel, store it, answer with a summary."""
    gradebook, engine_factory = _resources(task.app)
    worker = task.request.hostname or "worker"
    session = session_of(task.request.id or "")
    # Delivered again after a worker process died mid-grade: what that grade left here goes first, on the
    # engine and on disk. A worker process runs one task at a time: the task's scratch folder is the
    # process's temporary folder while it runs, so that grade_one's scratch copies go in it too.
    engine_factory(session=session).remove_session()
    work = Path(tempfile.gettempdir()) / f"grader-task-{session}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    task_id, checks = task.request.id, 0

    def report(text: str, check: bool) -> None:
        # Called from the build's reader thread too, where Celery's task.request is not this task's.
        nonlocal checks
        checks += int(check)
        try:
            task.update_state(task_id, state="PROGRESS", meta={"worker": worker, "step": text, "checks": checks})
        except Exception:  # showing progress must never break a grade
            pass

    saved, tempfile.tempdir = tempfile.tempdir, str(work)
    try:
        return grade_parcel(
            payload,
            gradebook,
            grade=grade,
            engine_factory=engine_factory,
            worker=worker,
            session=session,
            progress=JobProgress(report),
        )
    except Exception as err:  # e.g. the gradebook refused the result: the batch is told in plain words
        raise RuntimeError(f"{worker}: {type(err).__name__}: {err}") from err
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(work, ignore_errors=True)


# --- grading one parcel -----------------------------------------------------------------------------
class AsSent:
    """The gradebook as grade_one sees it on a worker: a result is stored as the batch names the submission
    (where it lies on the submitter's machine, not the worker's scratch copy), marked with the worker's name."""

    def __init__(self, gradebook: Gradebook, path: str, worker: str):
        self.gradebook, self.path, self.worker = gradebook, path, worker

    def __getattr__(self, name: str):
        return getattr(self.gradebook, name)

    def record(self, result, **kwargs) -> int:
        result.submission["path"] = self.path
        return self.gradebook.record(result, graded_by=self.worker, **kwargs)


def grade_parcel(
    payload: dict,
    gradebook: Gradebook,
    *,
    grade: GradeFunction,
    engine_factory: EngineFactory,
    worker: str,
    session: str | None = None,
    progress=None,
) -> dict:
    """Open the parcel in `payload`, grade it with grade_one (`grade` on an engine from `engine_factory`),
    and answer with a summary (JSON types only).

    A parcel this worker cannot grade (a wrong payload, an unknown lab, another spec or grader version)
    is answered {"refused": reason, "worker": ...}, nothing stored: the batch reports it as not graded.
    """
    try:
        parcel = Parcel.from_payload(payload)
        spec = lab_spec(parcel.lab)
    except (ParcelError, SpecError) as err:
        return {"refused": str(err), "worker": worker}
    if grading_key(spec) != parcel.grading_key:
        return {
            "refused": f"worker {worker} grades lab {spec.id} with another spec or grader version than the batch",
            "worker": worker,
        }
    book = AsSent(gradebook, parcel.path, worker)
    scratch = tempfile.mkdtemp(prefix="grader-parcel-")
    try:
        try:
            submission = open_parcel(parcel, Path(scratch))
        except UnsafeSubmission as err:  # refused as any submission that cannot be unpacked safely
            sent = Submission(parcel.name, sent_copy(parcel, Path(scratch)), parcel.kind, parcel.learner)
            graded = refuse(sent, spec, book, str(err), timeout_s=parcel.timeout_s)
        else:
            graded = grade_one(
                submission,
                spec,
                book,
                grade=grade,
                engine_factory=engine_factory,
                session=session,
                timeout_s=parcel.timeout_s,
                progress=progress,
                limits=parcel.limits,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    status, _ = effective_status(graded.result)
    return {
        "attempt_id": graded.attempt_id,
        "status": status,
        "score": graded.result.score,
        "max_score": graded.result.max_score,
        "reused": graded.reused,
        "seconds": round(graded.seconds, 3),
        "leftovers": graded.leftovers,
        "session": graded.session,
        "worker": worker,
    }


# --- starting a worker -------------------------------------------------------------------------------
def check_worker_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", name or ""):
        raise GraderError(
            f"not a usable worker name: {name!r}", hint="letters, digits, '.', '_' and '-', like gpu-host-1"
        )
    return name


def start_worker(*, broker: str, gradebook: str, concurrency: int = 1, name: str = "grader") -> int:
    """Run a grading worker in this process until it is stopped (Ctrl-C or SIGTERM finish the running
    grades first); returns its exit code.

    Raises GraderError before starting when the broker, the gradebook or the engine is not usable.
    """
    check_broker_url(broker)
    check_worker_name(name)
    Gradebook(gradebook).close()  # opens it (and makes its tables) or says why it cannot
    engine = connect()  # grades run on this host's engine: it must answer now
    engine.client.close()  # the worker's processes connect for themselves, after they are forked
    ping_broker(broker)
    app = make_app(broker, gradebook)
    worker = app.Worker(
        hostname=host_format(f"{name}@%h"),  # NAME@this host's name, as celery's own command line makes it
        concurrency=concurrency,
        pool="prefork",
        queues=[QUEUE],
        loglevel="INFO",
        optimization="fair",
        without_gossip=True,
    )
    worker.start()
    return worker.exitcode or 0
