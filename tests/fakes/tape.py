"""A tape library in memory: bundles hold copies of the members' bytes as they were archived."""

from __future__ import annotations

import attrs

from splash_core.domain.errors import TapeError, TransientTapeError
from splash_core.domain.models import ChecksumAlgorithm, Endpoint, FileRecord, TapeBundle, TapeReceipt
from splash_core.domain.paths import RelPath
from splash_core.ports.tape import TapeArchivePort
from tests.fakes._support import FaultPlan, digest
from tests.fakes.storage import FakeStorage

DEFAULT_TAPE_ROOT = "/home/a/alsdev/data_mover"


class FakeTape(TapeArchivePort):
    """An in-memory :class:`TapeArchivePort` reading from and restoring into a :class:`FakeStorage`.

    Recorded: ``bundles`` (bundle name -> member path -> bytes), ``receipts`` (by bundle),
    ``restored`` ((bundle, member, destination endpoint name) per restored file).
    """

    def __init__(self, storage: FakeStorage, *, tape_root: str = DEFAULT_TAPE_ROOT) -> None:
        self.storage = storage
        self.tape_root = tape_root.rstrip("/")
        self.faults = FaultPlan()
        self.bundles: dict[str, dict[RelPath, bytes]] = {}
        self.receipts: dict[str, TapeReceipt] = {}
        self.restored: list[tuple[str, RelPath, str]] = []
        self.jobs = 0

    # --- test controls -----------------------------------------------------

    def fail_next(self, n: int = 1, *, transient: bool = False, op: str | None = None) -> None:
        """Make the next ``n`` calls (of ``op``: archive, verify, restore) raise a TapeError."""
        self.faults.add(n, transient=transient, op=op)

    def corrupt_bundle(self, bundle: str) -> None:
        """Truncate the first member of ``bundle`` on tape by one byte, so :meth:`verify` fails."""
        members = self.bundles[bundle]
        first = min(members)
        members[first] = members[first][:-1]

    def lose_member(self, bundle: str, member: RelPath | str) -> None:
        """Remove one member from ``bundle`` on tape."""
        path = member if isinstance(member, RelPath) else RelPath.parse(member)
        del self.bundles[bundle][path]

    # --- TapeArchivePort ---------------------------------------------------

    def archive(self, bundle: TapeBundle, source: Endpoint) -> TapeReceipt:
        """Copy every member's bytes from ``source`` into a bundle on tape."""
        self._maybe_fail("archive", bundle.name)
        if not bundle.members:
            raise TapeError(f"tape bundle {bundle.name} has no members; nothing was written")
        self.jobs += 1
        job_id = f"tape-job-{self.jobs:04d}"
        stored: dict[RelPath, bytes] = {}
        records: list[FileRecord] = []
        for member in bundle.members:
            if not self.storage.is_file(source, member.path):
                raise TapeError(
                    f"tape bundle {bundle.name} (job {job_id}): member {member.path} is missing on "
                    f"{source.name}; re-plan the bundle"
                )
            data = self.storage.read(source, member.path)
            if len(data) != member.size:
                raise TapeError(
                    f"tape bundle {bundle.name} (job {job_id}): member {member.path} on {source.name} is "
                    f"{len(data)} bytes, planned {member.size}; re-plan the bundle"
                )
            stored[member.path] = data
            records.append(FileRecord(member.path, len(data), digest(data, ChecksumAlgorithm.BLAKE3)))
        self.bundles[bundle.name] = stored
        receipt = TapeReceipt(
            bundle=bundle.name,
            tape_path=f"{self.tape_root}/{bundle.name}",
            members=tuple(records),
            job_id=job_id,
        )
        self.receipts[bundle.name] = receipt
        return receipt

    def verify(self, receipt: TapeReceipt) -> TapeReceipt:
        """Check each member of the receipt is on tape with its size; return it marked verified."""
        self._maybe_fail("verify", receipt.bundle)
        stored = self._bundle(receipt)
        for member in receipt.members:
            data = stored.get(member.path)
            if data is None:
                raise TapeError(f"tape bundle {receipt.bundle} at {receipt.tape_path} lacks {member.path}")
            if len(data) != member.size:
                raise TapeError(
                    f"tape bundle {receipt.bundle} at {receipt.tape_path}: {member.path} is {len(data)} "
                    f"bytes on tape, {member.size} in the receipt; archive it again"
                )
        return attrs.evolve(receipt, verified=True)

    def restore(self, receipt: TapeReceipt, members: tuple[RelPath, ...], destination: Endpoint) -> None:
        """Write ``members`` of the bundle back into ``destination``."""
        self._maybe_fail("restore", receipt.bundle)
        stored = self._bundle(receipt)
        missing = [m for m in members if m not in stored]
        if missing:
            raise TapeError(
                f"tape bundle {receipt.bundle} at {receipt.tape_path} has no member(s) "
                f"{', '.join(str(m) for m in missing)}; nothing was restored"
            )
        for member in members:
            self.storage.put(destination, member, stored[member])
            self.restored.append((receipt.bundle, member, destination.name))

    # --- internals ---------------------------------------------------------

    def _bundle(self, receipt: TapeReceipt) -> dict[RelPath, bytes]:
        stored = self.bundles.get(receipt.bundle)
        if stored is None:
            raise TapeError(f"no tape bundle {receipt.bundle} at {receipt.tape_path}")
        return stored

    def _maybe_fail(self, op: str, bundle: str) -> None:
        fault = self.faults.take(op)
        if fault is None:
            return
        if fault.transient:
            raise TransientTapeError(f"injected: tape service unavailable for {op} of {bundle}; retry")
        raise TapeError(f"injected failure of tape {op} for bundle {bundle}")


__all__ = ["DEFAULT_TAPE_ROOT", "FakeTape"]
