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
DEFAULT_BUFFER_SIZE = 1 * MIB  # measured best: a chunk that stays in cache between read, hash and write
MIN_BUFFER_SIZE = 1 * MIB
MAX_BUFFER_SIZE = 8 * MIB


class Hasher(Protocol):
    """The part of the ``hashlib`` interface that copies and checksums use."""

    def update(self, data: BytesLike, /) -> object:
        """Feed more bytes."""
        ...

    def hexdigest(self) -> str:
        """The digest of everything fed so far, as lowercase hex."""
        ...


def new_hasher(algorithm: ChecksumAlgorithm, *, threads: int = 1) -> Hasher:
    """A fresh incremental hasher for ``algorithm``.

    Args:
        algorithm: which checksum.
        threads: how many threads blake3 may use for big updates. One is the default on
            purpose: a single thread hashes ~3.8 GB/s here, faster than the disks, while
            blake3's thread pool competes with the kernel's writeback for the CPUs and made
            copies to ext4 three times slower under load (re-measured with 1 MiB chunks and
            early writeback: two threads gave no gain). Copies of large files use a second
            CPU differently, by hashing on a helper thread beside the copy (``transfer.py``).
    """
    if algorithm is ChecksumAlgorithm.BLAKE3:
        return blake3.blake3(max_threads=threads)
    if algorithm is ChecksumAlgorithm.XXH3_128:
        return xxhash.xxh3_128()
    return hashlib.new(algorithm.value)


def clamp_buffer_size(size: int) -> int:
    """``size`` limited to the 1–8 MiB range the copy and hash loops are tuned for."""
    return max(MIN_BUFFER_SIZE, min(MAX_BUFFER_SIZE, size))


def hash_bytes(data: BytesLike, algorithm: ChecksumAlgorithm) -> Checksum:
    """The checksum of ``data`` held in memory."""
    hasher = new_hasher(algorithm)
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
        hasher = new_hasher(algorithm)
        buffer = memoryview(bytearray(clamp_buffer_size(buffer_size)))
        while n := f.readinto(buffer):
            hasher.update(buffer[:n])
    return Checksum(algorithm, hasher.hexdigest())
