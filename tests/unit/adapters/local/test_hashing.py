"""Streaming checksums agree with the reference implementations."""

from __future__ import annotations

import hashlib
from pathlib import Path

import blake3
import pytest
import xxhash

from splash_core.adapters.local.hashing import MIB, clamp_buffer_size, hash_bytes, hash_file
from splash_core.domain.models import ChecksumAlgorithm


def _reference(data: bytes, algorithm: ChecksumAlgorithm) -> str:
    if algorithm is ChecksumAlgorithm.BLAKE3:
        return blake3.blake3(data).hexdigest()
    if algorithm is ChecksumAlgorithm.XXH3_128:
        return xxhash.xxh3_128_hexdigest(data)
    return hashlib.new(algorithm.value, data).hexdigest()


@pytest.mark.parametrize("algorithm", list(ChecksumAlgorithm), ids=lambda a: a.value)
@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB + 17, 3 * MIB])
def test_hash_file_matches_the_reference(tmp_path: Path, algorithm: ChecksumAlgorithm, size: int) -> None:
    """Files smaller than, equal to and spanning several buffers hash like the reference."""
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    path = tmp_path / "f"
    path.write_bytes(data)
    checksum = hash_file(path, algorithm, buffer_size=MIB)
    assert checksum.algorithm is algorithm
    assert checksum.digest == _reference(data, algorithm)
    assert hash_bytes(data, algorithm) == checksum


def test_buffer_sizes_are_clamped() -> None:
    """Buffers stay between 1 and 8 MiB."""
    assert clamp_buffer_size(10) == MIB
    assert clamp_buffer_size(64 * MIB) == 8 * MIB
    assert clamp_buffer_size(4 * MIB) == 4 * MIB


def test_hash_file_of_a_missing_file(tmp_path: Path) -> None:
    """A missing file raises FileNotFoundError."""
    with pytest.raises(FileNotFoundError):
        hash_file(tmp_path / "nope", ChecksumAlgorithm.BLAKE3)
