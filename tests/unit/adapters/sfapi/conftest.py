"""Fixtures for the SFAPI adapter tests: a simulated SFAPI (respx), a fake clock, no retry sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import stamina

from splash_core.adapters.sfapi import SfapiJobs
from tests.fakes.clock import FakeClock
from tests.unit.adapters.sfapi.simulated import SimulatedSfapi


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    """Retries happen (three attempts) but never sleep."""
    with stamina.set_testing(True, attempts=3):
        yield


@pytest.fixture
def clock() -> FakeClock:
    """Time that moves only when the adapter sleeps."""
    return FakeClock()


@pytest.fixture
def sim(tmp_path: Path) -> SimulatedSfapi:
    """A simulated SFAPI whose jobs run in ``tmp_path``."""
    return SimulatedSfapi(tmp_path)


@pytest.fixture
def jobs(sim: SimulatedSfapi, clock: FakeClock) -> Iterator[SfapiJobs]:
    """SfapiJobs talking to the simulator, on the fake clock."""
    port = SfapiJobs(sim.settings(), sim.credentials(), client_factory=sim.client_factory, clock=clock)
    yield port
    port.close()
