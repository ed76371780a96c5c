"""Contract-suite environments for the Globus adapters, backed by the simulated Globus service.

``tests/contract/test_transfer_adapters.py`` and ``test_storage_adapters.py`` build these
in their ``TestGlobus*`` classes. The adapters talk real HTTP (through globus-sdk and
``requests``) to :class:`~tests.unit.adapters.globus.simulated.SimulatedGlobus`, served by
``responses``; time is a :class:`~tests.fakes.FakeClock`, so polling costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import globus_sdk
import responses
import stamina

from splash_core.adapters.globus import GlobusStorage, GlobusTransfer, PollPolicy, RetryPolicy
from splash_core.domain.models import Endpoint, Site
from splash_core.domain.paths import RelPath
from splash_core.ports.storage import StoragePort
from splash_core.ports.transfer import TransferPort
from tests.contract.storage_contract import StorageEnv
from tests.contract.transfer_contract import TransferEnv
from tests.fakes import FakeClock
from tests.unit.adapters.globus.simulated import SimulatedGlobus

SOURCE_COLLECTION = "5a5a5a5a-0000-4000-8000-00000000000a"
DESTINATION_COLLECTION = "d5d5d5d5-0000-4000-8000-00000000000d"
OUTSIDE = "/outside"

_POLL = PollPolicy(initial_s=1.0, max_s=30.0, factor=2.0)
_RETRY = RetryPolicy(attempts=3, timeout_s=10.0)


class _SimulatedWorld:
    """A started ``responses`` mock with the simulated service on it, and no retry backoff."""

    def __init__(self) -> None:
        self.mock = responses.RequestsMock(assert_all_requests_are_fired=False)
        self.mock.start()
        self._backoff = stamina.set_testing(True, attempts=3)
        self.service = SimulatedGlobus(page_size=50).install(self.mock)
        self.clock = FakeClock()

    def close(self) -> None:
        self.mock.stop()
        self.mock.reset()
        self._backoff.__exit__(None, None, None)


def _read(service: SimulatedGlobus, endpoint: Endpoint, path: str | RelPath) -> bytes:
    data = service.read_at(endpoint, path)
    if data is None:
        raise FileNotFoundError(f"{path} is not on {endpoint.name} in the simulated Globus service")
    return data


class GlobusTransferEnv(TransferEnv):
    """Two collections of a simulated Globus service."""

    def __init__(self) -> None:
        self._world = _SimulatedWorld()
        self.service = self._world.service
        self.source = Endpoint("src", "als", "/data/raw", Site.ON_SITE, collection_id=SOURCE_COLLECTION)
        self.destination = Endpoint("dst", "nersc", "/cfs/raw", Site.OFF_SITE, collection_id=DESTINATION_COLLECTION)
        for endpoint in (self.source, self.destination):
            self.service.mkdirs(endpoint.collection_id or "", endpoint.root_path)
        self.timeout_s = 600.0  # fake time: free
        self.transfer = GlobusTransfer(globus_sdk.TransferClient(), clock=self._world.clock, poll=_POLL, retry=_RETRY)

    @property
    def port(self) -> TransferPort:
        return self.transfer

    def put(self, endpoint: Endpoint, path: str, data: bytes) -> RelPath:
        return self.service.put_at(endpoint, path, data)

    def read(self, endpoint: Endpoint, path: str | RelPath) -> bytes:
        return _read(self.service, endpoint, path)

    def files(self, endpoint: Endpoint) -> Mapping[str, bytes]:
        return self.service.files_below(endpoint.collection_id or "", endpoint.root_path)

    def stall_next(self) -> None:
        self.service.next_task_hangs = True

    def close(self) -> None:
        self._world.close()


class GlobusStorageEnv(StorageEnv):
    """One collection of a simulated Globus service; escapes are symlinks to a folder outside the root."""

    def __init__(self) -> None:
        self._world = _SimulatedWorld()
        self.service = self._world.service
        self.endpoint = Endpoint("data832", "als", "/data", Site.ON_SITE, collection_id=SOURCE_COLLECTION)
        self.service.mkdirs(SOURCE_COLLECTION, self.endpoint.root_path)
        self.service.put(SOURCE_COLLECTION, f"{OUTSIDE}/victim.txt", b"must survive")
        self.storage = GlobusStorage(
            globus_sdk.TransferClient(), clock=self._world.clock, poll=_POLL, retry=_RETRY, delete_timeout_s=600.0
        )

    @property
    def port(self) -> StoragePort:
        return self.storage

    def put(self, path: str, data: bytes, mtime: float | None = None) -> RelPath:
        return self.service.put_at(self.endpoint, path, data, mtime)

    def exists(self, path: str) -> bool:
        return self.service.lexists(SOURCE_COLLECTION, self.endpoint.full_path(RelPath.parse(path)))

    def escape(self, path: str) -> None:
        self.service.symlink(SOURCE_COLLECTION, self.endpoint.full_path(RelPath.parse(path)), OUTSIDE)

    def close(self) -> None:
        try:
            assert self.service.read(SOURCE_COLLECTION, f"{OUTSIDE}/victim.txt") == b"must survive"
        finally:
            self._world.close()
