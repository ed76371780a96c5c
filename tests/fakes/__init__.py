"""In-memory fakes of every port, with fault injection, and a bundle that wires them together.

Each fake subclasses its port explicitly and doubles as the reference for that port's
contract suite. :class:`FakeFacility` builds one of each sharing a single
:class:`FakeStorage` and :class:`FakeClock`, plus the reference deployment's endpoints.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from splash_core.domain.models import Endpoint, Site
from splash_core.domain.paths import RelPath
from tests.fakes._support import digest
from tests.fakes.catalog import FakeCatalog
from tests.fakes.clock import EPOCH, FakeClock
from tests.fakes.hpc import FakeHPC, FakeJob, JobHandler
from tests.fakes.ledger import FakeLedger
from tests.fakes.scheduler import FakeScheduler
from tests.fakes.storage import ALL_ALGORITHMS, FakeStorage
from tests.fakes.tape import FakeTape
from tests.fakes.transfer import VERIFIED_BY, FakeTask, FakeTransfer

_CFS = "/global/cfs/cdirs/als/data_mover"
_PSCRATCH = "/pscratch/sd/a/alsdev"


def _ep(name: str, facility: str, root: str, collection: str, site: Site = Site.OFF_SITE) -> Endpoint:
    return Endpoint(name=name, facility=facility, root_path=root, site=site, collection_id=collection)


def reference_endpoints() -> dict[str, Endpoint]:
    """The endpoints of the reference deployment (SPEC.md), by name.

    Endpoints on one host share a collection id, so they share files in :class:`FakeStorage`.
    """
    on = Site.ON_SITE
    endpoints = [
        _ep("spot832", "als", "/", "spot832", on),
        _ep("data832", "als", "/data", "data832", on),
        _ep("data832_raw", "als", "/data/raw", "data832", on),
        _ep("data832_scratch", "als", "/data/scratch/globus_share", "data832", on),
        _ep("nersc832", "nersc", f"{_CFS}/8.3.2", "nersc-dtn"),
        _ep("nersc832_alsdev_raw", "nersc", f"{_CFS}/8.3.2/raw", "nersc-dtn"),
        _ep("nersc832_alsdev_scratch", "nersc", f"{_CFS}/8.3.2/scratch", "nersc-dtn"),
        _ep("nersc832_alsdev_pscratch_raw", "nersc", f"{_PSCRATCH}/8.3.2/raw", "nersc-dtn"),
        _ep("nersc832_alsdev_pscratch_scratch", "nersc", f"{_PSCRATCH}/8.3.2/scratch", "nersc-dtn"),
        _ep("alcf832_raw", "alcf", "/data/raw", "alcf-eagle"),
        _ep("alcf832_scratch", "alcf", "/data/scratch", "alcf-eagle"),
        _ep("data733", "als", "/", "data733", on),
        _ep("beegfs733", "als", "/beamline_staging/bl733/raw", "beegfs", on),
        _ep("nersc733_alsdev_raw", "nersc", f"{_CFS}/7.3.3/raw", "nersc-dtn"),
        _ep("data7012", "als", "/", "data7012", on),
        _ep("nersc7012", "nersc", "/global/cfs/cdirs/als/gsharing/data_mover/7012", "nersc-dtn"),
        _ep("hpss", "nersc", "/home/a/alsdev/data_mover", "nersc-hpss"),
    ]
    return {e.name: e for e in endpoints}


def _storage(self: FakeFacility) -> FakeStorage:
    return FakeStorage(self.clock)


def _transfer(self: FakeFacility) -> FakeTransfer:
    return FakeTransfer(self.storage, self.clock)


def _hpc(self: FakeFacility) -> dict[str, FakeHPC]:
    return {name: FakeHPC(self.storage, self.clock, facility=name) for name in ("nersc", "alcf")}


def _tape(self: FakeFacility) -> FakeTape:
    return FakeTape(self.storage)


@attrs.define
class FakeFacility:
    """One of each fake, sharing one clock and one storage, plus named endpoints.

    ``FakeFacility()`` gives the reference endpoints; pass any field to replace a part.
    """

    clock: FakeClock = attrs.Factory(FakeClock)
    storage: FakeStorage = attrs.Factory(_storage, takes_self=True)
    transfer: FakeTransfer = attrs.Factory(_transfer, takes_self=True)
    hpc: dict[str, FakeHPC] = attrs.Factory(_hpc, takes_self=True)
    tape: FakeTape = attrs.Factory(_tape, takes_self=True)
    catalog: FakeCatalog = attrs.Factory(FakeCatalog)
    scheduler: FakeScheduler = attrs.Factory(FakeScheduler)
    ledger: FakeLedger = attrs.Factory(FakeLedger)
    endpoints: dict[str, Endpoint] = attrs.Factory(reference_endpoints)

    @classmethod
    def starting_at(cls, start: datetime) -> FakeFacility:
        """A facility whose clock starts at ``start``."""
        return cls(clock=FakeClock(start))

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint called ``name``."""
        return self.endpoints[name]

    def put(self, endpoint: str, path: RelPath | str, data: bytes, mtime: float | None = None) -> RelPath:
        """Write a file on the named endpoint and return its path."""
        return self.storage.put(self.endpoints[endpoint], path, data, mtime)

    def read(self, endpoint: str, path: RelPath | str) -> bytes:
        """The bytes of a file on the named endpoint."""
        return self.storage.read(self.endpoints[endpoint], path)

    def exists(self, endpoint: str, path: RelPath | str) -> bool:
        """Whether a regular file is at ``path`` on the named endpoint."""
        return self.storage.is_file(self.endpoints[endpoint], path)


__all__ = [
    "ALL_ALGORITHMS",
    "EPOCH",
    "VERIFIED_BY",
    "FakeCatalog",
    "FakeClock",
    "FakeFacility",
    "FakeHPC",
    "FakeJob",
    "FakeLedger",
    "FakeScheduler",
    "FakeStorage",
    "FakeTape",
    "FakeTask",
    "FakeTransfer",
    "JobHandler",
    "digest",
    "reference_endpoints",
]
