"""A dataset catalog in the local SQLite database (stands in for SciCat)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from splash_core.adapters.local._convert import dumps, loads
from splash_core.adapters.local.database import DatabaseLike, as_database
from splash_core.domain.errors import CatalogError, CatalogUnavailable
from splash_core.domain.models import CatalogRecord
from splash_core.ports.catalog import CatalogPort

_PREFIX = "local:"


class SqliteCatalog(CatalogPort):
    """Datasets keyed by ``dataset_key``, with ids ``local:<n>``.

    Ingesting a record whose key is known returns the same id and stores the new record
    (so a re-ingest after more files arrived updates it). Locations added later are kept
    apart from the record; :meth:`locations` lists them.

    Args:
        db: the database (or its file).
    """

    def __init__(self, db: DatabaseLike) -> None:
        self._db = as_database(db)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise CatalogUnavailable(f"local catalog {self._db.path}: cannot {what}: {exc}; retry later") from exc
        except sqlite3.Error as exc:
            raise CatalogError(f"local catalog {self._db.path}: cannot {what}: {exc}") from exc

    @staticmethod
    def _number(catalog_id: str) -> int | None:
        if not catalog_id.startswith(_PREFIX) or not catalog_id[len(_PREFIX) :].isdecimal():
            return None
        return int(catalog_id[len(_PREFIX) :])

    def ingest(self, record: CatalogRecord) -> str:
        """Store ``record`` and return its id; the same ``dataset_key`` gives the same id."""
        payload = dumps(record)
        with self._errors(f"ingest dataset {record.dataset_key}"), self._db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO datasets (dataset_key, payload) VALUES (?, ?) "
                "ON CONFLICT (dataset_key) DO UPDATE SET payload = excluded.payload RETURNING n",
                (record.dataset_key, payload),
            ).fetchone()
        return f"{_PREFIX}{row[0]}"

    def add_location(self, catalog_id: str, location: str) -> None:
        """Attach another location (e.g. a tape path) to an ingested dataset; repeats are ignored.

        Raises:
            CatalogError: no dataset has ``catalog_id``.
        """
        number = self._number(catalog_id)
        with self._errors(f"add a location to {catalog_id}"), self._db.transaction() as conn:
            if number is None or conn.execute("SELECT 1 FROM datasets WHERE n = ?", (number,)).fetchone() is None:
                raise CatalogError(f"local catalog has no dataset {catalog_id!r}; ingest it first")
            conn.execute(
                "INSERT OR IGNORE INTO dataset_locations (n, seq, location) VALUES "
                "(?, (SELECT coalesce(max(seq), 0) + 1 FROM dataset_locations WHERE n = ?), ?)",
                (number, number, location),
            )

    def get(self, catalog_id: str) -> CatalogRecord | None:
        """The record stored under ``catalog_id``, or None."""
        number = self._number(catalog_id)
        if number is None:
            return None
        with self._errors(f"read {catalog_id}"), self._db.read() as conn:
            row = conn.execute("SELECT payload FROM datasets WHERE n = ?", (number,)).fetchone()
        return None if row is None else loads(row[0], CatalogRecord)

    def locations(self, catalog_id: str) -> tuple[str, ...]:
        """The record's own location followed by those added, in the order added."""
        record = self.get(catalog_id)
        if record is None:
            return ()
        with self._errors(f"read the locations of {catalog_id}"), self._db.read() as conn:
            rows = conn.execute(
                "SELECT location FROM dataset_locations WHERE n = ? ORDER BY seq", (self._number(catalog_id),)
            ).fetchall()
        return (record.location, *(str(location) for (location,) in rows if location != record.location))
