"""Pieces the fakes share: fault plans and real checksums of in-memory bytes."""

from __future__ import annotations

import hashlib

import attrs
import blake3
import xxhash

from splash_core.domain.models import Checksum, ChecksumAlgorithm


def digest(data: bytes, algorithm: ChecksumAlgorithm) -> Checksum:
    """The real checksum of ``data`` in ``algorithm``."""
    if algorithm is ChecksumAlgorithm.BLAKE3:
        return Checksum(algorithm, blake3.blake3(data).hexdigest())
    if algorithm is ChecksumAlgorithm.XXH3_128:
        return Checksum(algorithm, xxhash.xxh3_128_hexdigest(data))
    return Checksum(algorithm, hashlib.new(algorithm.value, data).hexdigest())


@attrs.define
class Fault:
    """``remaining`` more calls (of ``op``, or any call when None) fail."""

    remaining: int
    transient: bool
    op: str | None = None
    message: str | None = None


@attrs.define
class FaultPlan:
    """A queue of injected failures, consumed in order by the calls they match."""

    faults: list[Fault] = attrs.Factory(list)
    triggered: int = 0

    def add(self, n: int, *, transient: bool, op: str | None = None, message: str | None = None) -> None:
        """Make the next ``n`` matching calls fail."""
        if n < 0:
            raise ValueError(f"cannot fail a negative number of calls ({n})")
        if n:
            self.faults.append(Fault(n, transient, op, message))

    def take(self, op: str) -> Fault | None:
        """The fault the call ``op`` must raise, if any (and count it as used)."""
        for fault in self.faults:
            if fault.op is None or fault.op == op:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                self.triggered += 1
                return fault
        return None

    def clear(self) -> None:
        """Drop every pending fault."""
        self.faults.clear()
