"""Streaming checksums for every :class:`ChecksumAlgorithm`, with large reusable buffers."""

from __future__ import annotations

import hashlib
import os
from typing import Protocol

import blake3
import xxhash

from splash_core.domain.models import Checksum, ChecksumAlgorithm

BytesLike = bytes | bytearray | memoryview

MIB = 1 << 20
DEFAULT_BUFFER_SIZE = 4 * MIB
MIN_BUFFER_SIZE = 1 * MIB
MAX_BUFFER_SIZE = 8 * MIB

# blake3 hashes a big update on several cores (and releases the GIL while doing so); below this
# size the thread hand-off costs more than it saves.
_BLAKE3_THREADED_FROM = 1 * MIB


class Hasher(Protocol):
    """The part of the ``hashlib`` interface that copies and checksums use."""

    def update(self, data: BytesLike, /) -> object:
        """Feed more bytes."""
        ...

    def hexdigest(self) -> str:
        """The digest of everything fed so far, as lowercase hex."""
        ...


def new_hasher(algorithm: ChecksumAlgorithm, *, size_hint: int | None = None) -> Hasher:
    """A fresh incremental hasher for ``algorithm``.

    Args:
        algorithm: which checksum.
        size_hint: the number of bytes that will be fed, when known; blake3 uses several
            threads only for inputs big enough to profit.
    """
    if algorithm is ChecksumAlgorithm.BLAKE3:
        threaded = size_hint is None or size_hint >= _BLAKE3_THREADED_FROM
        return blake3.blake3(max_threads=blake3.blake3.AUTO if threaded else 1)
    if algorithm is ChecksumAlgorithm.XXH3_128:
        return xxhash.xxh3_128()
    return hashlib.new(algorithm.value)


def clamp_buffer_size(size: int) -> int:
    """``size`` limited to the 1–8 MiB range the copy and hash loops are tuned for."""
    return max(MIN_BUFFER_SIZE, min(MAX_BUFFER_SIZE, size))


def hash_bytes(data: BytesLike, algorithm: ChecksumAlgorithm) -> Checksum:
    """The checksum of ``data`` held in memory."""
    hasher = new_hasher(algorithm, size_hint=memoryview(data).nbytes)
    hasher.update(data)
    return Checksum(algorithm, hasher.hexdigest())


def hash_file(
    path: str | os.PathLike[str], algorithm: ChecksumAlgorithm, *, buffer_size: int = DEFAULT_BUFFER_SIZE
) -> Checksum:
    """The checksum of the file at ``path``, read once in large chunks.

    Raises:
        OSError: the file cannot be opened or read (``FileNotFoundError`` when missing).
    """
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        hasher = new_hasher(algorithm, size_hint=size)
        buffer = memoryview(bytearray(clamp_buffer_size(buffer_size)))
        while n := f.readinto(buffer):
            hasher.update(buffer[:n])
    return Checksum(algorithm, hasher.hexdigest())
