"""A catalog in memory that can go down and can reject records."""

from __future__ import annotations

from splash_core.domain.errors import CatalogError, CatalogUnavailable
from splash_core.domain.models import CatalogRecord
from splash_core.ports.catalog import CatalogPort


class FakeCatalog(CatalogPort):
    """An in-memory :class:`CatalogPort`, idempotent by ``dataset_key``.

    Recorded: ``records`` (catalog id -> record), ``locations`` (catalog id -> extra
    locations), ``ingest_calls`` (every call, including failed ones).
    """

    def __init__(self) -> None:
        self.records: dict[str, CatalogRecord] = {}
        self.locations: dict[str, list[str]] = {}
        self.ingest_calls = 0
        self.down = False
        self._ids: dict[str, str] = {}
        self._rejects: list[str] = []

    # --- test controls -----------------------------------------------------

    def go_down(self) -> None:
        """Make every call raise CatalogUnavailable until :meth:`come_up`."""
        self.down = True

    def come_up(self) -> None:
        """Make the catalog reachable again."""
        self.down = False

    def reject_next(self, reason: str = "injected: record rejected") -> None:
        """Make the next ingest raise CatalogError with ``reason``."""
        self._rejects.append(reason)

    def by_key(self, dataset_key: str) -> CatalogRecord | None:
        """The record ingested under ``dataset_key``, or None."""
        catalog_id = self._ids.get(dataset_key)
        return self.records.get(catalog_id) if catalog_id is not None else None

    # --- CatalogPort -------------------------------------------------------

    def ingest(self, record: CatalogRecord) -> str:
        """Store ``record``; the same ``dataset_key`` keeps its id and gets the newer record."""
        self.ingest_calls += 1
        self._check_up(f"ingest of dataset {record.dataset_key}")
        if self._rejects:
            reason = self._rejects.pop(0)
            raise CatalogError(f"catalog rejected dataset {record.dataset_key} ({record.beamline}): {reason}")
        catalog_id = self._ids.get(record.dataset_key)
        if catalog_id is None:
            catalog_id = f"fake-pid/{len(self._ids) + 1:04d}"
            self._ids[record.dataset_key] = catalog_id
            self.locations[catalog_id] = []
        self.records[catalog_id] = record
        return catalog_id

    def add_location(self, catalog_id: str, location: str) -> None:
        """Attach ``location`` once to the dataset."""
        self._check_up(f"add_location to {catalog_id}")
        if catalog_id not in self.records:
            raise CatalogError(f"catalog has no dataset {catalog_id}; ingest it before adding a location")
        if location not in self.locations[catalog_id]:
            self.locations[catalog_id].append(location)

    def get(self, catalog_id: str) -> CatalogRecord | None:
        """The record under ``catalog_id``, or None."""
        self._check_up(f"get of {catalog_id}")
        return self.records.get(catalog_id)

    def _check_up(self, what: str) -> None:
        if self.down:
            raise CatalogUnavailable(f"catalog unreachable during {what} (injected outage); retry later")


__all__ = ["FakeCatalog"]
