"""Writing bundles of files to tape and reading them back (NERSC HPSS)."""

from __future__ import annotations

from typing import Protocol

from splash_core.domain.models import Endpoint, TapeBundle, TapeReceipt
from splash_core.domain.paths import RelPath


class TapeArchivePort(Protocol):
    """Archive a planned bundle from an endpoint to tape, verify it, restore from it."""

    def archive(self, bundle: TapeBundle, source: Endpoint) -> TapeReceipt:
        """Write ``bundle`` (members relative to ``source``) to tape.

        Raises:
            TapeError: the write failed; the message names the bundle and job.
        """
        ...

    def verify(self, receipt: TapeReceipt) -> TapeReceipt:
        """Check what is on tape against the receipt's members (names and sizes).

        Returns the receipt with ``verified=True``.

        Raises:
            TapeError: a member is missing or differs.
        """
        ...

    def restore(self, receipt: TapeReceipt, members: tuple[RelPath, ...], destination: Endpoint) -> None:
        """Copy ``members`` of the bundle back from tape to ``destination``."""
        ...
