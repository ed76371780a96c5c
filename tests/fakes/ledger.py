"""The ledger in memory, with the full :class:`LedgerPort` semantics (the reference for adapters).

- ``verified_copy`` is the latest ``LocationVerified`` for endpoint+path, unless a
  ``LocationRemoved`` for the same endpoint+path was recorded after it.
- ``pending_prunes`` are the latest ``PruneScheduled`` per endpoint+path with no
  ``PruneDone`` for the same endpoint+path recorded after it (refusals keep them pending),
  oldest due first; ``due_before`` keeps those due at or before it.
- the outbox keeps one record per dataset key, in first-enqueued order.
- ``record_many`` appends a batch all or nothing; an event with a naive time is refused
  (``InvalidInput``), as the SQLite ledger refuses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

import attrs

from splash_core.domain.errors import InvalidInput, LedgerError
from splash_core.domain.events import (
    Ingested,
    JobFinished,
    LedgerEvent,
    LocationRemoved,
    LocationVerified,
    PruneDone,
    PruneScheduled,
    StepRecord,
)
from splash_core.domain.models import CatalogRecord
from splash_core.domain.paths import RelPath
from splash_core.ports.ledger import LedgerPort
from tests.fakes._support import FaultPlan

_Key = tuple[str, RelPath]
E = TypeVar("E")


def _check_storable(event: LedgerEvent) -> None:
    """Reject what a real ledger cannot store: a time without timezone (it keeps UTC times only)."""
    for value in attrs.astuple(event, recurse=False):
        if isinstance(value, datetime) and value.utcoffset() is None:
            raise InvalidInput(
                f"{type(event).__name__} time {value.isoformat()} has no timezone; splash_core stores UTC times only"
            )


def _mentions(event: LedgerEvent, path: RelPath) -> bool:
    if isinstance(event, Ingested):
        return path in event.paths
    if isinstance(event, JobFinished):
        return path.value in event.inputs or path.value in event.outputs
    return event.path == path


class FakeLedger(LedgerPort):
    """An in-memory :class:`LedgerPort`.

    Recorded: ``events`` (every event, in order), ``steps`` (key -> last record),
    ``outbox`` (dataset key -> record), ``catalog_ids`` (dataset key -> id).
    """

    def __init__(self) -> None:
        self.events: list[LedgerEvent] = []
        self.steps: dict[str, StepRecord] = {}
        self.outbox: dict[str, CatalogRecord] = {}
        self.catalog_ids: dict[str, str] = {}
        self.faults = FaultPlan()
        self._verified: dict[_Key, tuple[int, LocationVerified]] = {}
        self._removed: dict[_Key, int] = {}
        self._scheduled: dict[_Key, tuple[int, PruneScheduled]] = {}
        self._pruned: dict[_Key, int] = {}

    # --- test controls -----------------------------------------------------

    def fail_next(self, n: int = 1, *, op: str | None = None) -> None:
        """Make the next ``n`` writes (of ``op``: record, record_step, enqueue_ingest, ingest_done) fail.

        A ``record`` fault also fails a ``record_many`` call: the whole batch, nothing written.
        """
        self.faults.add(n, transient=False, op=op)

    def of_type(self, kind: type[E]) -> list[E]:
        """Every recorded event of class ``kind``, in order."""
        return [e for e in self.events if isinstance(e, kind)]

    # --- LedgerPort --------------------------------------------------------

    def record(self, event: LedgerEvent) -> None:
        """Append ``event`` and update the indexes."""
        self.record_many((event,))

    def record_many(self, events: Sequence[LedgerEvent]) -> None:
        """Append ``events`` in order, all or none (a ``record`` fault fails the whole batch)."""
        if not events:
            return
        what = type(events[0]).__name__ if len(events) == 1 else f"{len(events)} events"
        self._maybe_fail("record", what)
        for event in events:
            _check_storable(event)
        for event in events:
            self._append(event)

    def _append(self, event: LedgerEvent) -> None:
        seq = len(self.events)
        self.events.append(event)
        if isinstance(event, LocationVerified):
            self._verified[(event.endpoint, event.path)] = (seq, event)
        elif isinstance(event, LocationRemoved):
            self._removed[(event.endpoint, event.path)] = seq
        elif isinstance(event, PruneScheduled):
            self._scheduled[(event.endpoint, event.path)] = (seq, event)
        elif isinstance(event, PruneDone):
            self._pruned[(event.endpoint, event.path)] = seq

    def verified_copy(self, endpoint: str, path: RelPath) -> LocationVerified | None:
        """The latest verification of ``path`` on ``endpoint``, unless removed since."""
        found = self._verified.get((endpoint, path))
        if found is None:
            return None
        seq, event = found
        removed = self._removed.get((endpoint, path))
        return event if removed is None or removed < seq else None

    def verified_paths(self, endpoint: str) -> frozenset[RelPath]:
        """Every path with a current verified copy on ``endpoint``."""
        return frozenset(
            path for (name, path) in self._verified if name == endpoint and self.verified_copy(name, path) is not None
        )

    def history(self, path: RelPath) -> Sequence[LedgerEvent]:
        """Every event that mentions ``path``, oldest first."""
        return [e for e in self.events if _mentions(e, path)]

    def pending_prunes(self, due_before: datetime | None = None) -> Sequence[PruneScheduled]:
        """Scheduled prunes with no later PruneDone, oldest due first."""
        pending: list[tuple[datetime, int, PruneScheduled]] = []
        for key, (seq, event) in self._scheduled.items():
            done = self._pruned.get(key)
            if done is not None and done > seq:
                continue
            if due_before is not None and event.due_at > due_before:
                continue
            pending.append((event.due_at, seq, event))
        return [event for _, _, event in sorted(pending, key=lambda t: (t[0], t[1]))]

    def step(self, key: str) -> StepRecord | None:
        """The last outcome recorded under ``key``."""
        return self.steps.get(key)

    def record_step(self, record: StepRecord) -> None:
        """Record (or replace) the outcome under ``record.key``."""
        self._maybe_fail("record_step", record.key)
        self.steps[record.key] = record

    def enqueue_ingest(self, record: CatalogRecord) -> None:
        """Keep ``record`` in the outbox (replacing one with the same dataset key, keeping its place)."""
        self._maybe_fail("enqueue_ingest", record.dataset_key)
        self.outbox[record.dataset_key] = record

    def pending_ingests(self) -> Sequence[CatalogRecord]:
        """The outbox, oldest first."""
        return list(self.outbox.values())

    def ingest_done(self, dataset_key: str, catalog_id: str) -> None:
        """Take the record out of the outbox and remember its catalog id."""
        self._maybe_fail("ingest_done", dataset_key)
        self.outbox.pop(dataset_key, None)
        self.catalog_ids[dataset_key] = catalog_id

    def catalog_id(self, dataset_key: str) -> str | None:
        """The catalog id of an ingested dataset, or None."""
        return self.catalog_ids.get(dataset_key)

    def _maybe_fail(self, op: str, what: str) -> None:
        if self.faults.take(op) is not None:
            raise LedgerError(f"injected: ledger could not {op} ({what}); nothing was written")


__all__ = ["FakeLedger"]
