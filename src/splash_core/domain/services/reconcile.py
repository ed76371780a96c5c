"""Finding files that should have been moved but were not (they arrived while nothing watched)."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from splash_core.domain.errors import InvalidInput

if TYPE_CHECKING:
    from splash_core.domain.models import Endpoint, FileRecord
    from splash_core.domain.paths import RelPath
    from splash_core.ports.clock import ClockPort
    from splash_core.ports.ledger import LedgerPort
    from splash_core.ports.storage import StoragePort

logger = logging.getLogger(__name__)


def matches(name: str, include: Sequence[str]) -> bool:
    """Whether a file name matches one of the ``include`` patterns (all when empty).

    Patterns are globs on the name (``*.h5``), compared case-insensitively; a bare suffix
    (``.h5``) means ``*.h5``.
    """
    if not include:
        return True
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, (f"*{p}" if p.startswith(".") else p).lower()) for p in include)


class ReconcileService:
    """Compare what is on a source with what the ledger knows is verified at a destination.

    Args:
        storage: lists the source.
        ledger: knows the verified copies.
        clock: needed for the settle check (files modified within ``settle_s`` are left alone).
    """

    def __init__(self, storage: StoragePort, ledger: LedgerPort, clock: ClockPort | None = None) -> None:
        self._storage = storage
        self._ledger = ledger
        self._clock = clock

    def missing(
        self,
        source: Endpoint,
        destination: str,
        *,
        prefix: RelPath | None = None,
        include: Sequence[str] = (),
        settle_s: float = 0.0,
        dest_prefix: RelPath | None = None,
    ) -> list[RelPath]:
        """Files on ``source`` with no current verified copy on ``destination``, sorted.

        Args:
            source: the endpoint to list.
            destination: the endpoint name the ledger should have copies on.
            prefix: only look below this folder of the source.
            include: name patterns to keep (``*.h5``); everything when empty.
            settle_s: skip files modified less than this many seconds ago (still being written).
            dest_prefix: copies are below this folder on the destination.

        Raises:
            InvalidInput: ``settle_s`` is set but no clock was given.
        """
        if settle_s > 0 and self._clock is None:
            raise InvalidInput("ReconcileService needs a clock to skip files that have not settled")
        cutoff = self._clock.now().timestamp() - settle_s if self._clock is not None and settle_s > 0 else None
        verified = self._ledger.verified_paths(destination)
        found: list[RelPath] = []
        unsettled = 0
        for record in self._storage.list(source, prefix):
            if not matches(record.path.name, include):
                continue
            if cutoff is not None and not _settled(record, cutoff):
                unsettled += 1
                continue
            target = dest_prefix.join(record.path.value) if dest_prefix is not None else record.path
            if target not in verified:
                found.append(record.path)
        if found or unsettled:
            logger.info(
                "%d file(s) on %s have no verified copy on %s; %d more not settled yet",
                len(found),
                source.name,
                destination,
                unsettled,
            )
        return sorted(found)


def _settled(record: FileRecord, cutoff: float) -> bool:
    # a file whose mtime is unknown cannot be judged; treat it as settled rather than never move it
    return record.mtime is None or record.mtime <= cutoff


__all__ = ["ReconcileService", "matches"]
