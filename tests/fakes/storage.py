"""Files held in memory, per storage volume, with real checksums and fault injection.

Endpoints that share a ``collection_id`` share one volume, just like Globus collections
with different roots: a file put at ``raw/a.h5`` on ``data832`` (root ``/data``) is
``a.h5`` on ``data832_raw`` (root ``/data/raw``). Endpoints without a collection id each
get their own volume.

``stat`` returns None for folders (it describes regular files only); a folder is a path
with files below it, or one made with :meth:`mkdir`.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence

import attrs

from splash_core.domain.errors import (
    ChecksumUnsupported,
    PathEscapesRoot,
    PathNotFound,
    StorageError,
    TransientStorageError,
)
from splash_core.domain.models import Checksum, ChecksumAlgorithm, Endpoint, FileRecord
from splash_core.domain.paths import RelPath
from splash_core.ports.clock import ClockPort
from splash_core.ports.storage import StoragePort
from tests.fakes._support import FaultPlan, digest

ALL_ALGORITHMS: tuple[ChecksumAlgorithm, ...] = (
    ChecksumAlgorithm.BLAKE3,
    ChecksumAlgorithm.XXH3_128,
    ChecksumAlgorithm.SHA256,
    ChecksumAlgorithm.MD5,
    ChecksumAlgorithm.SHA1,
    ChecksumAlgorithm.SHA512,
)

_Key = tuple[str, str]  # (volume, absolute path)


@attrs.define
class _File:
    data: bytes
    mtime: float


def _rel(path: RelPath | str) -> RelPath:
    return path if isinstance(path, RelPath) else RelPath.parse(path)


def _volume(endpoint: Endpoint) -> str:
    return endpoint.collection_id or f"endpoint:{endpoint.name}"


def _key(endpoint: Endpoint, path: RelPath) -> _Key:
    return (_volume(endpoint), endpoint.full_path(path))


def _below(abs_path: str, folder: str) -> bool:
    return abs_path == folder or abs_path.startswith(folder.rstrip("/") + "/")


class FakeStorage(StoragePort):
    """An in-memory :class:`StoragePort` whose files tests can put, corrupt, remove and make escape.

    Recorded: ``deleted`` (endpoint name, path) for every delete through the port and
    ``checksum_calls`` (how many fresh checksums were computed).

    Args:
        clock: gives the mtime of files written without an explicit one (0.0 without a clock).
        algorithms: what :meth:`checksum` can compute on every endpoint, preferred first.
    """

    def __init__(
        self,
        clock: ClockPort | None = None,
        algorithms: Sequence[ChecksumAlgorithm] = ALL_ALGORITHMS,
    ) -> None:
        self.clock = clock
        self.default_algorithms = tuple(algorithms)
        self._files: dict[_Key, _File] = {}
        self._dirs: set[_Key] = set()
        self._escapes: set[_Key] = set()
        self._algorithms: dict[str, tuple[ChecksumAlgorithm, ...]] = {}
        self.faults = FaultPlan()
        self.deleted: list[tuple[str, RelPath]] = []
        self.checksum_calls = 0

    # --- test controls -----------------------------------------------------

    def put(self, endpoint: Endpoint, path: RelPath | str, data: bytes, mtime: float | None = None) -> RelPath:
        """Write ``data`` at ``path`` (replacing any file there) and return the path."""
        rel = _rel(path)
        if mtime is None:
            mtime = self.clock.now().timestamp() if self.clock is not None else 0.0
        self._files[_key(endpoint, rel)] = _File(bytes(data), mtime)
        return rel

    def read(self, endpoint: Endpoint, path: RelPath | str) -> bytes:
        """The bytes at ``path``.

        Raises:
            PathNotFound: no such file.
        """
        return self._file(endpoint, _rel(path)).data

    def exists(self, endpoint: Endpoint, path: RelPath | str) -> bool:
        """Whether anything is at ``path``: a file, a folder, or a link made by :meth:`symlink_escape`."""
        rel = _rel(path)
        volume, abs_path = _key(endpoint, rel)
        if self.is_file(endpoint, rel) or self._escapes_root(endpoint, rel):
            return True
        return any(v == volume and _below(k, abs_path) for v, k in (*self._files, *self._dirs))

    def is_file(self, endpoint: Endpoint, path: RelPath | str) -> bool:
        """Whether a regular file is at ``path``."""
        return _key(endpoint, _rel(path)) in self._files

    def files(self, endpoint: Endpoint) -> dict[RelPath, bytes]:
        """Every file below the endpoint's root, by path."""
        return {record.path: self.read(endpoint, record.path) for record in self._walk(endpoint, None)}

    def corrupt(self, endpoint: Endpoint, path: RelPath | str) -> None:
        """Flip one byte of the file in place, keeping its size and mtime (silent corruption)."""
        file = self._file(endpoint, _rel(path))
        if not file.data:
            raise ValueError(f"cannot corrupt empty file {path} on {endpoint.name} keeping its size")
        middle = len(file.data) // 2
        file.data = file.data[:middle] + bytes([file.data[middle] ^ 0xFF]) + file.data[middle + 1 :]

    def remove(self, endpoint: Endpoint, path: RelPath | str) -> None:
        """Delete a file behind the port's back (someone else removed it); not recorded."""
        self._files.pop(_key(endpoint, _rel(path)), None)

    def symlink_escape(self, endpoint: Endpoint, path: RelPath | str) -> None:
        """Make ``path`` (and everything below it) resolve outside the endpoint root."""
        self._escapes.add(_key(endpoint, _rel(path)))

    def set_algorithms(self, endpoint: Endpoint | str, algorithms: Sequence[ChecksumAlgorithm]) -> None:
        """Limit what :meth:`checksum` can compute on one endpoint."""
        name = endpoint if isinstance(endpoint, str) else endpoint.name
        self._algorithms[name] = tuple(algorithms)

    def fail_next(self, n: int = 1, *, transient: bool = True, op: str | None = None) -> None:
        """Make the next ``n`` port calls (of ``op``: stat, list, checksum, contains, delete, mkdir) fail.

        Transient failures raise :class:`TransientStorageError`, others :class:`StorageError`.
        """
        self.faults.add(n, transient=transient, op=op)

    # --- StoragePort -------------------------------------------------------

    def stat(self, endpoint: Endpoint, path: RelPath) -> FileRecord | None:
        """Size and mtime of the file at ``path``, or None (also for folders)."""
        self._maybe_fail("stat", endpoint, path)
        file = self._files.get(_key(endpoint, path))
        if file is None:
            return None
        return FileRecord(path=path, size=len(file.data), mtime=file.mtime)

    def list(self, endpoint: Endpoint, prefix: RelPath | None = None) -> Iterator[FileRecord]:
        """Every file strictly below ``prefix`` (or the whole root), sorted by path."""
        self._maybe_fail("list", endpoint, prefix)
        return iter(self._walk(endpoint, prefix))

    def checksum_algorithms(self, endpoint: Endpoint) -> tuple[ChecksumAlgorithm, ...]:
        """The algorithms configured for the endpoint (every known one by default)."""
        return self._algorithms.get(endpoint.name, self.default_algorithms)

    def checksum(self, endpoint: Endpoint, path: RelPath, algorithm: ChecksumAlgorithm) -> Checksum:
        """A fresh checksum of the bytes at ``path`` now."""
        self._maybe_fail("checksum", endpoint, path)
        if algorithm not in self.checksum_algorithms(endpoint):
            raise ChecksumUnsupported(
                f"endpoint {endpoint.name} cannot compute {algorithm.value} checksums (for {path}); "
                f"use one of {[a.value for a in self.checksum_algorithms(endpoint)]}"
            )
        data = self._file(endpoint, path).data
        self.checksum_calls += 1
        return digest(data, algorithm)

    def contains(self, endpoint: Endpoint, path: RelPath) -> bool:
        """False when ``path`` or a folder above it was made to escape the root."""
        self._maybe_fail("contains", endpoint, path)
        return not self._escapes_root(endpoint, path)

    def delete(self, endpoint: Endpoint, path: RelPath, *, recursive: bool = False) -> None:
        """Delete a file, or a folder when ``recursive``."""
        self._maybe_fail("delete", endpoint, path)
        if self._escapes_root(endpoint, path):
            raise PathEscapesRoot(
                f"{path} on {endpoint.name} resolves outside the root {endpoint.root_path}; nothing was deleted"
            )
        key = _key(endpoint, path)
        if key in self._files:
            del self._files[key]
            self.deleted.append((endpoint.name, path))
            return
        volume, folder = key
        below = [k for k in self._files if k[0] == volume and _below(k[1], folder)]
        dirs = [k for k in self._dirs if k[0] == volume and _below(k[1], folder)]
        if not below and not dirs:
            raise PathNotFound(f"{path} does not exist on {endpoint.name} ({endpoint.full_path(path)})")
        if not recursive:
            raise StorageError(f"{path} on {endpoint.name} is a folder; pass recursive=True to delete it")
        for k in below:
            del self._files[k]
        self._dirs.difference_update(dirs)
        self.deleted.append((endpoint.name, path))

    def mkdir(self, endpoint: Endpoint, path: RelPath) -> None:
        """Remember ``path`` (and its parents) as folders."""
        self._maybe_fail("mkdir", endpoint, path)
        current: RelPath | None = path
        while current is not None:
            self._dirs.add(_key(endpoint, current))
            current = current.parent

    # --- internals ---------------------------------------------------------

    def _file(self, endpoint: Endpoint, path: RelPath) -> _File:
        file = self._files.get(_key(endpoint, path))
        if file is None:
            raise PathNotFound(f"{path} does not exist on {endpoint.name} ({endpoint.full_path(path)})")
        return file

    def _walk(self, endpoint: Endpoint, prefix: RelPath | None) -> builtins.list[FileRecord]:
        volume = _volume(endpoint)
        top = endpoint.full_path(prefix) if prefix is not None else endpoint.root_path
        root = endpoint.root_path.rstrip("/") + "/"
        records: builtins.list[FileRecord] = []
        for (vol, abs_path), file in self._files.items():
            if vol != volume or abs_path == top or not _below(abs_path, top):
                continue
            rel = RelPath(abs_path[len(root) :])
            records.append(FileRecord(path=rel, size=len(file.data), mtime=file.mtime))
        return sorted(records, key=lambda r: r.path)

    def _escapes_root(self, endpoint: Endpoint, path: RelPath) -> bool:
        volume, abs_path = _key(endpoint, path)
        return any(vol == volume and _below(abs_path, esc) for vol, esc in self._escapes)

    def _maybe_fail(self, op: str, endpoint: Endpoint, path: RelPath | None) -> None:
        fault = self.faults.take(op)
        if fault is None:
            return
        where = f"{path} on {endpoint.name}" if path is not None else endpoint.name
        if fault.transient:
            raise TransientStorageError(f"injected transient failure of {op} for {where}; retry")
        raise StorageError(f"injected failure of {op} for {where}")


__all__ = ["ALL_ALGORITHMS", "FakeStorage"]
