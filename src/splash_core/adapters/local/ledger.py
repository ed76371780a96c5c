"""The ledger in SQLite: an append-only event log plus tables of the current state.

Every event is appended to ``events`` (with one ``event_paths`` row per path it mentions);
in the same transaction the small state tables are updated: ``locations`` holds the latest
verification per endpoint and path until a removal, ``prunes`` the latest scheduled prune
until it is done. So "which paths are verified on X" and "which prunes are due" are one
indexed query each, however long the log grows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from splash_core.adapters.local._convert import dumps, epoch_us, event_loads, loads
from splash_core.adapters.local._fs import trusted_relpath
from splash_core.adapters.local.database import DatabaseLike, as_database
from splash_core.domain.errors import LedgerError
from splash_core.domain.events import (
    Ingested,
    JobFinished,
    LedgerEvent,
    LocationRemoved,
    LocationVerified,
    PruneDone,
    PruneRefused,
    PruneScheduled,
    StepRecord,
    TapeArchived,
)
from splash_core.domain.models import CatalogRecord
from splash_core.domain.paths import RelPath
from splash_core.ports.ledger import LedgerPort


def path_key(path: str) -> bytes:
    """How a path is stored in indexed columns: its file-system bytes (undecodable names too)."""
    return path.encode("utf-8", "surrogateescape")


def path_from_key(key: bytes) -> str:
    """The inverse of :func:`path_key`."""
    return key.decode("utf-8", "surrogateescape")


def _subject(event: LedgerEvent) -> tuple[str | None, RelPath | None]:
    match event:
        case LocationVerified() | LocationRemoved() | PruneScheduled() | PruneDone() | PruneRefused():
            return event.endpoint, event.path
        case TapeArchived():
            return event.source_endpoint, event.path
        case _:
            return None, None


def _mentions(event: LedgerEvent) -> set[str]:
    match event:
        case Ingested():
            return {p.value for p in event.paths}
        case JobFinished():
            return set(event.inputs) | set(event.outputs)
        case _:
            _endpoint, path = _subject(event)
            return {path.value} if path is not None else set()


class SqliteLedger(LedgerPort):
    """The ledger, durable in the local SQLite database.

    A ``LocationRemoved`` for the same endpoint and path ends a verified copy (the prune service
    records one with each ``PruneDone``, in the same ``record_many``). The latest
    ``PruneScheduled`` per endpoint and path is pending until a ``PruneDone`` for them; a
    ``PruneRefused`` leaves it pending.

    Args:
        db: the database (or its file).
    """

    def __init__(self, db: DatabaseLike) -> None:
        self._db = as_database(db)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger {self._db.path}: cannot {what}: {exc}; check the disk and retry") from exc

    def record(self, event: LedgerEvent) -> None:
        """Append ``event`` durably (on disk when this returns)."""
        self.record_many((event,))

    def record_many(self, events: Sequence[LedgerEvent]) -> None:
        """Append ``events`` in order in one transaction: all on disk when this returns, or none.

        One commit (one fsync) for the batch instead of one per event.

        Raises:
            InvalidInput: an event cannot be stored (a time without timezone); nothing was written.
            LedgerError: the database refused the write; nothing was written.
        """
        if not events:
            return
        # serialise first: an event that cannot be stored fails the batch before anything is written
        rows = [(type(e).__name__, *_subject(e), epoch_us(e.at), dumps(e)) for e in events]
        what = f"record {rows[0][0]}" if len(rows) == 1 else f"record {len(rows)} events"
        with self._errors(what), self._db.transaction() as conn:
            # ids are given explicitly (the next free ones, as SQLite would pick) so one executemany
            # inserts the batch; the transaction holds the write lock, so no one else takes them
            first_id: int = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM events").fetchone()[0]
            conn.executemany(
                "INSERT INTO events (id, type, endpoint, path, at_us, payload) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (first_id + i, type_name, endpoint, path_key(path.value) if path else None, at_us, payload)
                    for i, (type_name, endpoint, path, at_us, payload) in enumerate(rows)
                ],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO event_paths (path, event_id) VALUES (?, ?)",
                [(path_key(p), first_id + i) for i, event in enumerate(events) for p in _mentions(event)],
            )
            # the state tables change in event order (a later event of a batch overrides an earlier one)
            for i, event in enumerate(events):
                self._update_state(conn, event, first_id + i)

    @staticmethod
    def _update_state(conn: sqlite3.Connection, event: LedgerEvent, event_id: int) -> None:
        match event:
            case LocationVerified():
                conn.execute(
                    "INSERT OR REPLACE INTO locations (endpoint, path, event_id) VALUES (?, ?, ?)",
                    (event.endpoint, path_key(event.path.value), event_id),
                )
            case LocationRemoved():
                conn.execute(
                    "DELETE FROM locations WHERE endpoint = ? AND path = ?",
                    (event.endpoint, path_key(event.path.value)),
                )
            case PruneScheduled():
                conn.execute(
                    "INSERT OR REPLACE INTO prunes (endpoint, path, due_us, event_id) VALUES (?, ?, ?, ?)",
                    (event.endpoint, path_key(event.path.value), epoch_us(event.due_at), event_id),
                )
            case PruneDone():
                conn.execute(
                    "DELETE FROM prunes WHERE endpoint = ? AND path = ?",
                    (event.endpoint, path_key(event.path.value)),
                )

    def verified_copy(self, endpoint: str, path: RelPath) -> LocationVerified | None:
        """The latest verification of ``path`` on ``endpoint``, unless it was removed since."""
        with self._errors("read a verified copy"), self._db.read() as conn:
            row = conn.execute(
                "SELECT e.payload FROM locations l JOIN events e ON e.id = l.event_id "
                "WHERE l.endpoint = ? AND l.path = ?",
                (endpoint, path_key(path.value)),
            ).fetchone()
        return None if row is None else loads(row[0], LocationVerified)

    def verified_paths(self, endpoint: str) -> frozenset[RelPath]:
        """Every path with a current verified copy on ``endpoint`` (one indexed query)."""
        with self._errors("read verified paths"), self._db.read() as conn:
            rows = conn.execute("SELECT path FROM locations WHERE endpoint = ?", (endpoint,)).fetchall()
        return frozenset(trusted_relpath(path_from_key(key)) for (key,) in rows)

    def history(self, path: RelPath) -> Sequence[LedgerEvent]:
        """Every event that mentions ``path``, oldest first."""
        with self._errors("read history"), self._db.read() as conn:
            rows = conn.execute(
                "SELECT e.type, e.payload FROM event_paths p JOIN events e ON e.id = p.event_id "
                "WHERE p.path = ? ORDER BY e.id",
                (path_key(path.value),),
            ).fetchall()
        return [event_loads(type_name, payload) for type_name, payload in rows]

    def pending_prunes(self, due_before: datetime | None = None) -> Sequence[PruneScheduled]:
        """Prunes scheduled and not yet done, due at or before ``due_before`` when given, oldest due first."""
        query = "SELECT e.payload FROM prunes p JOIN events e ON e.id = p.event_id"
        params: tuple[int, ...] = ()
        if due_before is not None:
            query += " WHERE p.due_us <= ?"
            params = (epoch_us(due_before),)
        with self._errors("read pending prunes"), self._db.read() as conn:
            rows = conn.execute(query + " ORDER BY p.due_us, p.event_id", params).fetchall()
        return [loads(payload, PruneScheduled) for (payload,) in rows]

    def step(self, key: str) -> StepRecord | None:
        """The last recorded outcome of the step under ``key``."""
        with self._errors(f"read step {key}"), self._db.read() as conn:
            row = conn.execute("SELECT payload FROM steps WHERE key = ?", (key,)).fetchone()
        return None if row is None else loads(row[0], StepRecord)

    def record_step(self, record: StepRecord) -> None:
        """Record a step outcome, replacing an earlier one under the same key."""
        payload = dumps(record)
        with self._errors(f"record step {record.key}"), self._db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO steps (key, payload) VALUES (?, ?)", (record.key, payload))

    def enqueue_ingest(self, record: CatalogRecord) -> None:
        """Keep ``record`` in the outbox until ingested; the same dataset key replaces it in place."""
        payload = dumps(record)
        with self._errors(f"queue dataset {record.dataset_key}"), self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO outbox (dataset_key, seq, payload) "
                "VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM outbox), ?) "
                "ON CONFLICT (dataset_key) DO UPDATE SET payload = excluded.payload",
                (record.dataset_key, payload),
            )

    def pending_ingests(self) -> Sequence[CatalogRecord]:
        """Records in the outbox, oldest first."""
        with self._errors("read the outbox"), self._db.read() as conn:
            rows = conn.execute("SELECT payload FROM outbox ORDER BY seq").fetchall()
        return [loads(payload, CatalogRecord) for (payload,) in rows]

    def ingest_done(self, dataset_key: str, catalog_id: str) -> None:
        """Remove the record from the outbox and remember its catalog id."""
        with self._errors(f"mark dataset {dataset_key} ingested"), self._db.transaction() as conn:
            conn.execute("DELETE FROM outbox WHERE dataset_key = ?", (dataset_key,))
            conn.execute(
                "INSERT OR REPLACE INTO catalog_ids (dataset_key, catalog_id) VALUES (?, ?)",
                (dataset_key, catalog_id),
            )

    def catalog_id(self, dataset_key: str) -> str | None:
        """The catalog id of an ingested dataset, or None."""
        with self._errors(f"read the catalog id of {dataset_key}"), self._db.read() as conn:
            row = conn.execute("SELECT catalog_id FROM catalog_ids WHERE dataset_key = ?", (dataset_key,)).fetchone()
        return None if row is None else str(row[0])
