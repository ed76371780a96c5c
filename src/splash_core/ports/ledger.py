"""The durable record of what is where, how it was verified, and what each step did."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from splash_core.domain.events import LedgerEvent, LocationVerified, PruneScheduled, StepRecord
from splash_core.domain.models import CatalogRecord
from splash_core.domain.paths import RelPath


class LedgerPort(Protocol):
    """Append events and answer questions about them.

    Writes are durable when the call returns; a crash afterwards loses nothing.
    """

    def record(self, event: LedgerEvent) -> None:
        """Append ``event``."""
        ...

    def record_many(self, events: Sequence[LedgerEvent]) -> None:
        """Append ``events`` in order, all in one durable write: all of them are recorded or none.

        Raises:
            LedgerError: nothing was recorded.
        """
        ...

    def verified_copy(self, endpoint: str, path: RelPath) -> LocationVerified | None:
        """The latest verification of ``path`` on ``endpoint``, unless it was removed since."""
        ...

    def verified_paths(self, endpoint: str) -> frozenset[RelPath]:
        """Every path with a current verified copy on ``endpoint``."""
        ...

    def history(self, path: RelPath) -> Sequence[LedgerEvent]:
        """Every event that mentions ``path``, oldest first."""
        ...

    def pending_prunes(self, due_before: datetime | None = None) -> Sequence[PruneScheduled]:
        """Prunes scheduled and not yet done (refused ones stay pending), oldest due first."""
        ...

    def step(self, key: str) -> StepRecord | None:
        """The last recorded outcome of the step under ``key``."""
        ...

    def record_step(self, record: StepRecord) -> None:
        """Record a step outcome (replacing an earlier one under the same key)."""
        ...

    def enqueue_ingest(self, record: CatalogRecord) -> None:
        """Keep ``record`` in the outbox until it is ingested (same dataset key replaces)."""
        ...

    def pending_ingests(self) -> Sequence[CatalogRecord]:
        """Records in the outbox, oldest first."""
        ...

    def ingest_done(self, dataset_key: str, catalog_id: str) -> None:
        """Remove the record from the outbox and remember its catalog id."""
        ...

    def catalog_id(self, dataset_key: str) -> str | None:
        """The catalog id of an ingested dataset, or None."""
        ...
