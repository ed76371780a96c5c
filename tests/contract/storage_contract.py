"""The contract every :class:`StoragePort` adapter must meet.

Subclass :class:`StorageContract` once per adapter and implement
:meth:`StorageContract.make_env` to return a :class:`StorageEnv`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path

import pytest

from splash_core.domain.errors import ChecksumUnsupported, PathEscapesRoot, PathNotFound, StorageError
from splash_core.domain.models import ChecksumAlgorithm, Endpoint
from splash_core.domain.paths import RelPath
from splash_core.ports.storage import StoragePort
from tests.fakes import digest

P = RelPath.parse


class StorageEnv(abc.ABC):
    """One adapter's world, as the storage suite sees it: a port and one endpoint."""

    endpoint: Endpoint

    @property
    @abc.abstractmethod
    def port(self) -> StoragePort:
        """The adapter under test."""

    @abc.abstractmethod
    def put(self, path: str, data: bytes, mtime: float | None = None) -> RelPath:
        """Make a file with ``data`` (and ``mtime`` when given) exist at ``path``."""

    @abc.abstractmethod
    def exists(self, path: str) -> bool:
        """Whether anything (file, folder, link) is at ``path``, judged behind the port's back."""

    @abc.abstractmethod
    def escape(self, path: str) -> None:
        """Make ``path`` (and everything below it) resolve outside the endpoint's root."""

    def close(self) -> None:  # noqa: B027 - most environments have nothing to release
        """Release what the environment holds."""


class StorageContract(abc.ABC):
    """Tests every storage adapter must pass."""

    @abc.abstractmethod
    def make_env(self, tmp_path: Path) -> StorageEnv:
        """A fresh environment for one test."""

    @pytest.fixture
    def env(self, tmp_path: Path) -> Iterator[StorageEnv]:
        """The environment, closed after the test."""
        env = self.make_env(tmp_path)
        yield env
        env.close()

    def test_stat_gives_size_and_mtime(self, env: StorageEnv) -> None:
        """A file's record has its size and modification time and no checksum."""
        env.put("raw/scan.h5", b"12345", mtime=1_700_000_000.5)
        record = env.port.stat(env.endpoint, P("raw/scan.h5"))
        assert record is not None
        assert record.path == P("raw/scan.h5")
        assert record.size == 5
        assert record.mtime == pytest.approx(1_700_000_000.5, abs=1e-3)
        assert record.checksum is None

    def test_stat_of_nothing_or_a_folder_is_none(self, env: StorageEnv) -> None:
        """Only regular files have a record."""
        env.put("raw/scan.h5", b"x")
        assert env.port.stat(env.endpoint, P("raw/missing.h5")) is None
        assert env.port.stat(env.endpoint, P("raw")) is None

    def test_list_finds_every_file_below_a_prefix(self, env: StorageEnv) -> None:
        """Listing is recursive and limited to the prefix."""
        files = {"a/1.tif": b"1", "a/b/2.tif": b"22", "a/b/c/3.tif": b"333", "z.txt": b"zzzz"}
        for path, data in files.items():
            env.put(path, data)
        everything = {r.path.value: r.size for r in env.port.list(env.endpoint)}
        assert everything == {p: len(d) for p, d in files.items()}
        below = {r.path.value for r in env.port.list(env.endpoint, P("a/b"))}
        assert below == {"a/b/2.tif", "a/b/c/3.tif"}

    def test_list_of_a_missing_prefix_or_a_file_is_empty(self, env: StorageEnv) -> None:
        """Nothing lies below a prefix that does not exist or is a file."""
        env.put("a/1.tif", b"1")
        assert list(env.port.list(env.endpoint, P("nope"))) == []
        assert list(env.port.list(env.endpoint, P("a/1.tif"))) == []

    def test_checksum_in_every_supported_algorithm(self, env: StorageEnv) -> None:
        """Each advertised algorithm gives the real digest; others raise ChecksumUnsupported."""
        data = b"scattering image " * 1000
        env.put("img.edf", data)
        supported = env.port.checksum_algorithms(env.endpoint)
        assert supported
        for algorithm in ChecksumAlgorithm:
            if algorithm in supported:
                assert env.port.checksum(env.endpoint, P("img.edf"), algorithm) == digest(data, algorithm)
            else:
                with pytest.raises(ChecksumUnsupported):
                    env.port.checksum(env.endpoint, P("img.edf"), algorithm)

    def test_checksum_of_a_missing_file(self, env: StorageEnv) -> None:
        """Checksumming nothing raises PathNotFound."""
        with pytest.raises(PathNotFound):
            env.port.checksum(env.endpoint, P("missing.h5"), ChecksumAlgorithm.BLAKE3)

    def test_contains_paths_inside_the_root(self, env: StorageEnv) -> None:
        """Plain paths, existing or not, are inside the root."""
        env.put("raw/a.h5", b"a")
        assert env.port.contains(env.endpoint, P("raw/a.h5"))
        assert env.port.contains(env.endpoint, P("raw/not-yet.h5"))

    def test_contains_refuses_paths_that_escape(self, env: StorageEnv) -> None:
        """A path resolving outside the root, or below such a path, is not contained."""
        env.put("raw/a.h5", b"a")
        env.escape("linked")
        assert not env.port.contains(env.endpoint, P("linked"))
        assert not env.port.contains(env.endpoint, P("linked/victim.txt"))
        assert env.port.contains(env.endpoint, P("raw/a.h5"))

    def test_delete_a_file(self, env: StorageEnv) -> None:
        """A deleted file is gone; its neighbours stay."""
        env.put("raw/a.h5", b"a")
        env.put("raw/b.h5", b"b")
        env.port.delete(env.endpoint, P("raw/a.h5"))
        assert env.port.stat(env.endpoint, P("raw/a.h5")) is None
        assert {r.path.value for r in env.port.list(env.endpoint)} == {"raw/b.h5"}

    def test_delete_of_nothing_raises(self, env: StorageEnv) -> None:
        """Deleting a missing path raises PathNotFound."""
        with pytest.raises(PathNotFound):
            env.port.delete(env.endpoint, P("raw/missing.h5"))

    def test_delete_a_folder_only_when_recursive(self, env: StorageEnv) -> None:
        """A folder survives a plain delete and goes with recursive=True."""
        env.put("scan/a.tif", b"a")
        env.put("scan/sub/b.tif", b"b")
        with pytest.raises(StorageError):
            env.port.delete(env.endpoint, P("scan"))
        assert len(list(env.port.list(env.endpoint, P("scan")))) == 2
        env.port.delete(env.endpoint, P("scan"), recursive=True)
        assert list(env.port.list(env.endpoint)) == []

    def test_delete_refuses_a_path_that_escapes(self, env: StorageEnv) -> None:
        """Nothing is deleted through a path that resolves outside the root."""
        env.escape("linked")
        with pytest.raises(PathEscapesRoot):
            env.port.delete(env.endpoint, P("linked"), recursive=True)
        with pytest.raises(PathEscapesRoot):
            env.port.delete(env.endpoint, P("linked/victim.txt"))
        assert env.exists("linked")

    def test_mkdir_makes_an_empty_folder(self, env: StorageEnv) -> None:
        """mkdir creates parents, tolerates repeats, and makes no files."""
        env.port.mkdir(env.endpoint, P("results/recon/tiffs"))
        env.port.mkdir(env.endpoint, P("results/recon/tiffs"))
        assert env.port.stat(env.endpoint, P("results/recon/tiffs")) is None
        assert list(env.port.list(env.endpoint, P("results"))) == []
        env.put("results/recon/tiffs/0001.tif", b"t")
        assert [r.path.value for r in env.port.list(env.endpoint, P("results"))] == ["results/recon/tiffs/0001.tif"]
