"""The transfer contract, run against the fake and the local adapter."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from splash_core.adapters.local import LocalTransfer
from splash_core.domain.models import ChecksumAlgorithm, Endpoint, Site
from splash_core.domain.paths import RelPath
from splash_core.ports.transfer import TransferPort
from tests.contract.transfer_contract import TransferContract, TransferEnv
from tests.fakes import FakeClock, FakeStorage, FakeTransfer


class FakeTransferEnv(TransferEnv):
    """Two endpoints on separate in-memory volumes.

    With ``globus_like`` the fake compares MD5 itself and reports no digest, as Globus does.
    """

    def __init__(self, *, globus_like: bool = False) -> None:
        self.clock = FakeClock()
        self.storage = FakeStorage(self.clock)
        if globus_like:
            self.transfer = FakeTransfer(
                self.storage,
                self.clock,
                verifies_checksums=True,
                service_algorithm=ChecksumAlgorithm.MD5,
                reports_digests=False,
            )
        else:
            self.transfer = FakeTransfer(self.storage, self.clock, verifies_checksums=True)
        self.source = Endpoint("src", "als", "/data/raw", Site.ON_SITE, collection_id="src-volume")
        self.destination = Endpoint("dst", "nersc", "/cfs/raw", Site.OFF_SITE, collection_id="dst-volume")
        self.timeout_s = 600.0  # fake time: free

    @property
    def port(self) -> TransferPort:
        return self.transfer

    def put(self, endpoint: Endpoint, path: str, data: bytes) -> RelPath:
        return self.storage.put(endpoint, path, data)

    def read(self, endpoint: Endpoint, path: str | RelPath) -> bytes:
        return self.storage.read(endpoint, path)

    def files(self, endpoint: Endpoint) -> Mapping[str, bytes]:
        return {path.value: data for path, data in self.storage.files(endpoint).items()}

    def stall_next(self) -> None:
        self.transfer.hang_next()


class LocalTransferEnv(TransferEnv):
    """Two folders on this machine; stalling swaps in a port limited to one byte a second."""

    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "src").mkdir()
        (tmp_path / "dst").mkdir()
        self.database = tmp_path / "workspace" / "splash.db"
        self.source = Endpoint("src", "als", str(tmp_path / "src"), Site.ON_SITE)
        self.destination = Endpoint("dst", "nersc", str(tmp_path / "dst"), Site.OFF_SITE)
        self._ports = [LocalTransfer(self.database, max_workers=4)]

    @property
    def port(self) -> TransferPort:
        return self._ports[-1]

    def put(self, endpoint: Endpoint, path: str, data: bytes) -> RelPath:
        full = Path(endpoint.root_path, path)
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(data)
        return RelPath.parse(path)

    def read(self, endpoint: Endpoint, path: str | RelPath) -> bytes:
        return Path(endpoint.root_path, str(path)).read_bytes()

    def files(self, endpoint: Endpoint) -> Mapping[str, bytes]:
        found = {}
        for folder, _dirs, names in os.walk(endpoint.root_path):
            for name in names:
                full = Path(folder, name)
                found[full.relative_to(endpoint.root_path).as_posix()] = full.read_bytes()
        return found

    def stall_next(self) -> None:
        self._ports.append(LocalTransfer(self.database, max_bytes_per_s=1.0))

    def close(self) -> None:
        for port in self._ports:
            port.close()


class TestFakeTransfer(TransferContract):
    """The fake honours the transfer contract."""

    def make_env(self, tmp_path: Path) -> TransferEnv:
        return FakeTransferEnv()


class TestGlobusLikeFakeTransfer(TransferContract):
    """The fake in its Globus-like mode (MD5 compared, no digest reported) honours the contract too."""

    def make_env(self, tmp_path: Path) -> TransferEnv:
        return FakeTransferEnv(globus_like=True)


class TestLocalTransfer(TransferContract):
    """The local adapter honours the transfer contract."""

    def make_env(self, tmp_path: Path) -> TransferEnv:
        return LocalTransferEnv(tmp_path)


class TestGlobusTransfer(TransferContract):
    """The Globus adapter honours the transfer contract, against a simulated Globus service over HTTP."""

    def make_env(self, tmp_path: Path) -> TransferEnv:
        from tests.unit.adapters.globus.contract_envs import GlobusTransferEnv

        return GlobusTransferEnv()
