"""Fixtures for the Globus adapter tests: a mocked HTTP layer, a simulated service, a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import globus_sdk
import pytest
import responses
import stamina

from splash_core.adapters.globus import GlobusStorage, GlobusTransfer, PollPolicy, RetryPolicy
from splash_core.domain.models import Endpoint, Site
from tests.fakes.clock import FakeClock
from tests.unit.adapters.globus.simulated import SimulatedGlobus

COLL_A = "aaaaaaaa-0000-4000-8000-000000000001"
COLL_B = "bbbbbbbb-0000-4000-8000-000000000002"


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    """Retries happen (three attempts) but never sleep."""
    with stamina.set_testing(True, attempts=3):
        yield


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """Every HTTP request goes to registered responses; anything else fails."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def sim(mock: responses.RequestsMock) -> SimulatedGlobus:
    """An in-memory Globus service with both collections' roots present."""
    service = SimulatedGlobus().install(mock)
    service.mkdirs(COLL_A, "/data/raw")
    service.mkdirs(COLL_B, "/global/cfs/raw")
    return service


@pytest.fixture
def clock() -> FakeClock:
    """Time that moves only when the adapter sleeps."""
    return FakeClock()


@pytest.fixture
def source() -> Endpoint:
    """An on-site endpoint on collection A."""
    return Endpoint("spot832", "als", "/data/raw", Site.ON_SITE, collection_id=COLL_A)


@pytest.fixture
def destination() -> Endpoint:
    """An off-site endpoint on collection B."""
    return Endpoint("nersc832", "nersc", "/global/cfs/raw", Site.OFF_SITE, collection_id=COLL_B)


@pytest.fixture
def transfer(clock: FakeClock) -> GlobusTransfer:
    """The adapter under test, with an unauthenticated client (HTTP is mocked)."""
    return GlobusTransfer(
        globus_sdk.TransferClient(),
        clock=clock,
        poll=PollPolicy(initial_s=1.0, max_s=8.0, factor=2.0),
        retry=RetryPolicy(attempts=3, timeout_s=5.0),
        ls_page_size=2,
    )


@pytest.fixture
def storage(clock: FakeClock) -> GlobusStorage:
    """The storage adapter under test."""
    return GlobusStorage(
        globus_sdk.TransferClient(),
        clock=clock,
        poll=PollPolicy(initial_s=1.0, max_s=8.0, factor=2.0),
        retry=RetryPolicy(attempts=3, timeout_s=5.0),
        delete_timeout_s=30.0,
        ls_page_size=2,
    )
