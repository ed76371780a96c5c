"""The contract every :class:`CatalogPort` adapter must meet.

Subclass :class:`CatalogContract` once per adapter and implement
:meth:`CatalogContract.make_catalog`.
"""

from __future__ import annotations

import abc
from pathlib import Path

import pytest

from splash_core.domain.errors import CatalogError
from splash_core.domain.models import CatalogRecord, Checksum, ChecksumAlgorithm, FileRecord
from splash_core.domain.paths import RelPath
from splash_core.ports.catalog import CatalogPort

P = RelPath.parse


def record(key: str = "dataset-1", *, files: int = 2, location: str = "data832:raw/scan") -> CatalogRecord:
    """A record of ``files`` files under ``key``."""
    return CatalogRecord(
        dataset_key=key,
        beamline="8.3.2",
        files=tuple(
            FileRecord(P(f"raw/scan/{i}.h5"), 100 + i, Checksum(ChecksumAlgorithm.BLAKE3, f"{i:02x}" * 32), 1.5)
            for i in range(files)
        ),
        location=location,
        metadata={"proposal": "ALS-12345", "sample": "rock"},
        derived_from=("raw-key",),
        kind="raw",
    )


class CatalogContract(abc.ABC):
    """Tests every catalog adapter must pass."""

    @abc.abstractmethod
    def make_catalog(self, tmp_path: Path) -> CatalogPort:
        """A fresh, empty catalog."""

    @pytest.fixture
    def catalog(self, tmp_path: Path) -> CatalogPort:
        """The catalog under test."""
        return self.make_catalog(tmp_path)

    def test_ingest_then_get(self, catalog: CatalogPort) -> None:
        """An ingested record comes back unchanged under its id."""
        catalog_id = catalog.ingest(record())
        assert catalog_id
        assert catalog.get(catalog_id) == record()

    def test_ingest_is_idempotent_by_dataset_key(self, catalog: CatalogPort) -> None:
        """The same dataset key keeps its id (and the newer record); another key gets another id."""
        first = catalog.ingest(record())
        again = catalog.ingest(record(files=3))
        other = catalog.ingest(record("dataset-2"))
        assert again == first
        assert other != first
        stored = catalog.get(first)
        assert stored is not None
        assert len(stored.files) == 3

    def test_get_of_an_unknown_id_is_none(self, catalog: CatalogPort) -> None:
        """Unknown ids give None."""
        catalog.ingest(record())
        assert catalog.get("no-such-id") is None

    def test_add_location_to_a_known_dataset(self, catalog: CatalogPort) -> None:
        """Adding a location (twice) is accepted and leaves the record readable."""
        catalog_id = catalog.ingest(record())
        catalog.add_location(catalog_id, "hpss:/home/a/alsdev/p_2025-1.tar")
        catalog.add_location(catalog_id, "hpss:/home/a/alsdev/p_2025-1.tar")
        assert catalog.get(catalog_id) is not None

    def test_add_location_to_an_unknown_dataset_fails(self, catalog: CatalogPort) -> None:
        """A location for an id nobody issued is rejected."""
        with pytest.raises(CatalogError):
            catalog.add_location("no-such-id", "hpss:/x.tar")
