"""Recording datasets in a metadata catalog (SciCat, or the local SQLite catalog)."""

from __future__ import annotations

from typing import Protocol

from splash_core.domain.models import CatalogRecord


class CatalogPort(Protocol):
    """Ingest dataset records and attach locations to them."""

    def ingest(self, record: CatalogRecord) -> str:
        """Store ``record`` and return its catalog id; same ``dataset_key`` gives the same id.

        Raises:
            CatalogUnavailable: the catalog cannot be reached; retry later.
            CatalogError: the record was rejected.
        """
        ...

    def add_location(self, catalog_id: str, location: str) -> None:
        """Attach another location (e.g. a tape path) to an ingested dataset."""
        ...

    def get(self, catalog_id: str) -> CatalogRecord | None:
        """The record stored under ``catalog_id``, or None."""
        ...
