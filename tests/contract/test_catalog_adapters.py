"""The catalog contract, run against the fake and the SQLite catalog."""

from __future__ import annotations

from pathlib import Path

from splash_core.adapters.local import SqliteCatalog
from splash_core.ports.catalog import CatalogPort
from tests.contract.catalog_contract import CatalogContract
from tests.fakes import FakeCatalog


class TestFakeCatalog(CatalogContract):
    """The fake honours the catalog contract."""

    def make_catalog(self, tmp_path: Path) -> CatalogPort:
        return FakeCatalog()


class TestSqliteCatalog(CatalogContract):
    """The SQLite catalog honours the catalog contract."""

    def make_catalog(self, tmp_path: Path) -> CatalogPort:
        return SqliteCatalog(tmp_path / "splash.db")


class TestSciCatCatalog(CatalogContract):
    """The SciCat catalog honours the catalog contract, against a simulated SciCat v3 backend."""

    def make_catalog(self, tmp_path: Path) -> CatalogPort:
        from tests.unit.adapters.scicat.simulated import SimulatedSciCat

        return SimulatedSciCat().catalog()
