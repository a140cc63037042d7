"""A submission packed to travel to a grading worker on another host, and opened there.

Workers do not share the submitter's files. Each submission travels as it lies in the class folder (a
folder, a zip or tar archive, a git repository with its history) inside a gzip'ed tar archive, base64 in
a JSON task message. The worker opens the parcel with the same safe unpacker as any submission
(grader/batch/unpack.py), which gives back the submission under its own name; grade_one then unpacks and
grades it exactly as on the submitter's machine, so its content hash, and what the gradebook answers for
it, are the same.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from grader.batch.roster import Submission
from grader.batch.unpack import UnpackLimits, unpack
from grader.errors import ParcelError, UnsafeSubmission

VERSION = 1
MAX_PARCEL_BYTES = 64 * 1024 * 1024  # packed; the message carries a third more (base64)
KINDS = ("folder", "zip", "tar", "git")


@dataclass(frozen=True)
class Parcel:
    """One submission on its way to a worker, with what the worker needs to grade it as the batch would."""

    lab: str
    learner: str
    name: str  # its name in the class folder: "ada.zip"
    kind: str  # folder | zip | tar | git
    path: str  # where it lies on the submitter's machine (stored results name it)
    grading_key: str  # the spec and grader version the batch grades with: a worker must grade with the same
    timeout_s: float
    data: bytes  # the tar.gz
    limits: UnpackLimits | None = None  # None: the worker's defaults

    def to_payload(self) -> dict:
        """The task message's argument: JSON types only."""
        payload = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("data", "limits")}
        payload["version"] = VERSION
        payload["data"] = base64.b64encode(self.data).decode("ascii")
        payload["limits"] = dataclasses.asdict(self.limits) if self.limits else None
        return payload

    @classmethod
    def from_payload(cls, payload: object) -> Parcel:
        """Read a task message's argument; ParcelError when it is not a parcel this worker can open."""
        if not isinstance(payload, dict) or payload.get("version") != VERSION:
            version = payload.get("version") if isinstance(payload, dict) else None
            raise ParcelError(
                f"not a submission parcel of version {VERSION} (got version {version!r})",
                hint="run the same grader version on the workers as on the machine that sends the batch",
            )
        fields = {k: payload.get(k) for k in ("lab", "learner", "name", "kind", "path", "grading_key")}
        missing = sorted(k for k, v in fields.items() if not isinstance(v, str) or not v)
        if missing or not isinstance(payload.get("data"), str):
            raise ParcelError(f"a submission parcel lacks {', '.join(missing) or 'its data'}")
        name = fields["name"]
        if "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
            raise ParcelError(f"a submission parcel names its submission {name!r}: not a plain file name")
        if fields["kind"] not in KINDS:
            raise ParcelError(f"a submission parcel is of unknown kind {fields['kind']!r}")
        timeout = payload.get("timeout_s")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ParcelError(f"a submission parcel has no usable time limit: {timeout!r}")
        limits = payload.get("limits")
        if limits is not None and not (
            isinstance(limits, dict) and all(isinstance(v, int | float) and v > 0 for v in limits.values())
        ):
            raise ParcelError(f"a submission parcel has unusable unpacking limits: {limits!r}")
        try:
            data = base64.b64decode(payload["data"], validate=True)
            limits = UnpackLimits(**limits) if limits is not None else None
        except (binascii.Error, TypeError) as err:
            raise ParcelError(f"a submission parcel is damaged: {err}") from None
        return cls(**fields, timeout_s=float(timeout), data=data, limits=limits)


class _Bounded(io.BytesIO):
    """A buffer that refuses to grow past `limit` bytes."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def write(self, data) -> int:
        if self.tell() + len(data) > self.limit:
            raise _TooLarge()
        return super().write(data)


class _TooLarge(Exception):
    pass


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Whose files they were on the instructor's machine is no business of the worker's.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack(
    submission: Submission,
    *,
    lab: str,
    grading_key: str,
    timeout_s: float,
    limits: UnpackLimits | None = None,
    max_bytes: int = MAX_PARCEL_BYTES,
) -> Parcel:
    """Pack `submission` as it lies (links kept as links, never followed) into a parcel.

    Raises UnsafeSubmission, with a message for the learner, when it packs to more than `max_bytes` or
    cannot be read.
    """
    sink = _Bounded(max_bytes)
    try:
        with tarfile.open(fileobj=sink, mode="w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
            tar.add(submission.path, arcname=submission.name, recursive=True, filter=_anonymous)
    except _TooLarge:
        raise UnsafeSubmission(
            f"{submission.name} packs to more than {max_bytes / 1e6:.0f} MB, more than a grading worker takes",
            hint="submit only the lab folder: leave out models, data sets and virtual environments",
        ) from None
    except OSError as err:
        raise UnsafeSubmission(f"{submission.name}: cannot read {err.filename or ''}: {err.strerror or err}") from None
    return Parcel(
        lab=lab,
        learner=submission.learner,
        name=submission.name,
        kind=submission.kind,
        path=str(submission.path),
        grading_key=grading_key,
        timeout_s=timeout_s,
        data=sink.getvalue(),
        limits=limits,
    )


def parcel_limits(limits: UnpackLimits) -> UnpackLimits:
    """What the parcel itself may unpack to.

    It holds the submission as it lay: an archive, or a repository with its history, may be larger than
    what it unpacks to. grade_one then holds the submission itself to `limits`, as on any machine.
    """
    return dataclasses.replace(limits, max_bytes=2 * limits.max_bytes, max_files=4 * limits.max_files)


def open_parcel(parcel: Parcel, scratch: Path) -> Submission:
    """Unpack `parcel` under the empty folder `scratch`; returns the submission as it lay in the class folder.

    Raises UnsafeSubmission when the parcel cannot be unpacked safely (a link out of it, a device file,
    more than the limits allow): the same refusals as for any submission.
    """
    sent = scratch / "sent" / parcel.name
    sent.parent.mkdir(parents=True)
    sent.write_bytes(parcel.data)
    root = scratch / "opened"
    unpack(sent, root, "tar", parcel_limits(parcel.limits or UnpackLimits()))
    path = root / parcel.name
    # A folder is a folder; an archive is a file; a git repository is either (a working copy or a bundle).
    whole = {"folder": path.is_dir(), "zip": path.is_file(), "tar": path.is_file()}.get(parcel.kind, path.exists())
    if path.is_symlink() or not whole:
        raise UnsafeSubmission(f"{parcel.name}: the parcel sent to the grading worker does not hold it")
    return Submission(name=parcel.name, path=path, kind=parcel.kind, learner=parcel.learner)


def sent_copy(parcel: Parcel, scratch: Path) -> Path:
    """The parcel as written by open_parcel (what a refused submission's stored hash is taken of)."""
    return scratch / "sent" / parcel.name
