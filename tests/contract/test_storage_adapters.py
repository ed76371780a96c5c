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
