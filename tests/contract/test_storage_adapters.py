"""The storage contract, run against the fake and the local adapter."""

from __future__ import annotations

import os
from pathlib import Path

from splash_core.adapters.local import LocalStorage
from splash_core.domain.models import Endpoint, Site
from splash_core.domain.paths import RelPath
from splash_core.ports.storage import StoragePort
from tests.contract.storage_contract import StorageContract, StorageEnv
from tests.fakes import FakeClock, FakeStorage


class FakeStorageEnv(StorageEnv):
    """One endpoint on an in-memory volume."""

    def __init__(self) -> None:
        self.storage = FakeStorage(FakeClock())
        self.endpoint = Endpoint("data832", "als", "/data", Site.ON_SITE, collection_id="data832")

    @property
    def port(self) -> StoragePort:
        return self.storage

    def put(self, path: str, data: bytes, mtime: float | None = None) -> RelPath:
        return self.storage.put(self.endpoint, path, data, mtime)

    def exists(self, path: str) -> bool:
        return self.storage.exists(self.endpoint, path)

    def escape(self, path: str) -> None:
        self.storage.symlink_escape(self.endpoint, path)


class LocalStorageEnv(StorageEnv):
    """A folder on this machine; escapes are symlinks to a folder beside it."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "root"
        self.root.mkdir()
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        (self.outside / "victim.txt").write_bytes(b"must survive")
        self.endpoint = Endpoint("data832", "als", str(self.root), Site.ON_SITE)
        self.storage = LocalStorage()

    @property
    def port(self) -> StoragePort:
        return self.storage

    def put(self, path: str, data: bytes, mtime: float | None = None) -> RelPath:
        full = self.root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(data)
        if mtime is not None:
            os.utime(full, (mtime, mtime))
        return RelPath.parse(path)

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.root / path)

    def escape(self, path: str) -> None:
        full = self.root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.symlink_to(self.outside, target_is_directory=True)

    def close(self) -> None:
        assert (self.outside / "victim.txt").read_bytes() == b"must survive"


class TestFakeStorage(StorageContract):
    """The fake honours the storage contract."""

    def make_env(self, tmp_path: Path) -> StorageEnv:
        return FakeStorageEnv()


class TestLocalStorage(StorageContract):
    """The local adapter honours the storage contract."""

    def make_env(self, tmp_path: Path) -> StorageEnv:
        return LocalStorageEnv(tmp_path)


class TestGlobusStorage(StorageContract):
    """The Globus adapter honours the storage contract, against a simulated Globus service over HTTP.

    Two tests are replaced because Globus cannot do what they ask: it reports modification
    times in whole seconds, and it cannot compute a checksum on demand (no algorithms).
    """

    def make_env(self, tmp_path: Path) -> StorageEnv:
        from tests.unit.adapters.globus.contract_envs import GlobusStorageEnv

        return GlobusStorageEnv()

    def test_stat_gives_size_and_mtime(self, env: StorageEnv) -> None:
        """A file's record has its size, its mtime to the second (all Globus reports) and no checksum."""
        import pytest

        env.put("raw/scan.h5", b"12345", mtime=1_700_000_000.5)
        record = env.port.stat(env.endpoint, RelPath.parse("raw/scan.h5"))
        assert record is not None
        assert record.size == 5
        assert record.mtime == pytest.approx(1_700_000_000.5, abs=1.0)
        assert record.checksum is None

    def test_checksum_in_every_supported_algorithm(self, env: StorageEnv) -> None:
        """Globus offers no algorithm, and every request for one raises ChecksumUnsupported."""
        import pytest

        from splash_core.domain.errors import ChecksumUnsupported
        from splash_core.domain.models import ChecksumAlgorithm

        env.put("img.edf", b"scattering image")
        assert env.port.checksum_algorithms(env.endpoint) == ()
        for algorithm in ChecksumAlgorithm:
            with pytest.raises(ChecksumUnsupported):
                env.port.checksum(env.endpoint, RelPath.parse("img.edf"), algorithm)
