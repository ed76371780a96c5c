"""Fixtures for the Globus Compute adapter tests: a stand-in client, a fake clock, no retry sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import stamina

from splash_core.adapters.globus_compute import GlobusComputeCredentials, GlobusComputeJobs, GlobusComputeSettings
from splash_core.adapters.globus_compute.settings import JobTemplate
from tests.fakes.clock import FakeClock
from tests.unit.adapters.globus_compute.simulated import CLIENT_ID, CLIENT_SECRET, ENDPOINT_ID, SimulatedCompute

TEMPLATES = {
    "echo": JobTemplate(
        command="printf '%s\\n' {input} {output}",
        options={"levels": "--levels"},
        flags={"overwrite": "--overwrite"},
    ),
    "fail": JobTemplate(command="echo working on {input}; printf '%s\\n' {message} >&2; exit 3"),
    "ok": JobTemplate(command="true"),
}


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
def sim(tmp_path: Path, clock: FakeClock) -> SimulatedCompute:
    """The stand-in client; task commands run in ``tmp_path/endpoint``."""
    return SimulatedCompute(tmp_path / "endpoint", clock)


@pytest.fixture
def credentials() -> GlobusComputeCredentials:
    """A confidential client (test values)."""
    return GlobusComputeCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


def make_jobs(
    sim: SimulatedCompute, clock: FakeClock, credentials: GlobusComputeCredentials, **settings: object
) -> GlobusComputeJobs:
    """GlobusComputeJobs over the stand-in with the test templates (settings override)."""
    values: dict[str, object] = {"endpoint_id": ENDPOINT_ID, "templates": TEMPLATES, **settings}
    return GlobusComputeJobs(
        GlobusComputeSettings(**values),  # type: ignore[arg-type]
        credentials,
        client_factory=sim.client_factory,
        clock=clock,
    )


@pytest.fixture
def jobs(sim: SimulatedCompute, clock: FakeClock, credentials: GlobusComputeCredentials) -> GlobusComputeJobs:
    """GlobusComputeJobs over the stand-in, on the fake clock."""
    return make_jobs(sim, clock, credentials)
