"""Fixtures for the SciCat adapter tests: a simulated SciCat (respx), no retry sleeps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina

from splash_core.adapters.scicat import SciCatCatalog
from tests.unit.adapters.scicat.simulated import SimulatedSciCat


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    """Retries happen (three attempts) but never sleep."""
    with stamina.set_testing(True, attempts=3):
        yield


@pytest.fixture
def sim() -> SimulatedSciCat:
    """An empty simulated SciCat."""
    return SimulatedSciCat()


@pytest.fixture
def catalog(sim: SimulatedSciCat) -> Iterator[SciCatCatalog]:
    """A SciCat catalog talking to the simulator."""
    port = sim.catalog()
    yield port
    port.close()
