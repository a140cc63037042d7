"""A file over a stream of byte chunks: how tarfile reads what the engine streams (`docker cp`, `docker save`)."""

from __future__ import annotations

import io
from collections.abc import Iterable


class ChunkReader(io.RawIOBase):
    """A readable file over an iterable of byte chunks, handed out without copying them whole."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._left:
            piece = next(self._chunks, None)
            if piece is None:
                return 0
            self._left = memoryview(piece)
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n
