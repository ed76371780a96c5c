"""Fixtures for the domain service tests: a fake facility and services wired to it."""

from __future__ import annotations

import pytest

from splash_core.domain.services.ingest import IngestService
from splash_core.domain.services.move import MoveService
from splash_core.domain.services.prune import PruneService
from splash_core.domain.services.reconcile import ReconcileService
from tests.fakes import FakeFacility


@pytest.fixture
def facility() -> FakeFacility:
    """A fresh fake facility with the reference endpoints."""
    return FakeFacility()


@pytest.fixture
def mover(facility: FakeFacility) -> MoveService:
    """A move service over the facility's fakes."""
    return MoveService(facility.transfer, facility.storage, facility.ledger, facility.clock)


@pytest.fixture
def pruner(facility: FakeFacility) -> PruneService:
    """A prune service over the facility's fakes."""
    return PruneService(facility.storage, facility.ledger, facility.clock, facility.endpoints)


@pytest.fixture
def ingester(facility: FakeFacility) -> IngestService:
    """An ingest service over the facility's fakes."""
    return IngestService(facility.catalog, facility.ledger, facility.clock)


@pytest.fixture
def reconciler(facility: FakeFacility) -> ReconcileService:
    """A reconcile service over the facility's fakes."""
    return ReconcileService(facility.storage, facility.ledger, facility.clock)
