"""Looking at and deleting files on an endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from splash_core.domain.models import Checksum, ChecksumAlgorithm, Endpoint, FileRecord
from splash_core.domain.paths import RelPath


class StoragePort(Protocol):
    """Stat, list, checksum and delete files below an endpoint's root."""

    def stat(self, endpoint: Endpoint, path: RelPath) -> FileRecord | None:
        """Size and mtime of ``path`` (no checksum), or None when it does not exist."""
        ...

    def list(self, endpoint: Endpoint, prefix: RelPath | None = None) -> Iterator[FileRecord]:
        """Every regular file below ``prefix`` (or the whole root), recursively."""
        ...

    def checksum_algorithms(self, endpoint: Endpoint) -> tuple[ChecksumAlgorithm, ...]:
        """The algorithms :meth:`checksum` can compute on this endpoint, preferred first."""
        ...

    def checksum(self, endpoint: Endpoint, path: RelPath, algorithm: ChecksumAlgorithm) -> Checksum:
        """A fresh checksum of the file as it is now.

        Raises:
            PathNotFound: no such file.
            ChecksumUnsupported: the endpoint cannot compute ``algorithm``.
        """
        ...

    def contains(self, endpoint: Endpoint, path: RelPath) -> bool:
        """Whether ``path``, with every symlink resolved, stays inside the endpoint root."""
        ...

    def delete(self, endpoint: Endpoint, path: RelPath, *, recursive: bool = False) -> None:
        """Delete ``path``; folders only when ``recursive``.

        Raises:
            PathEscapesRoot: the path resolves outside the root; nothing was deleted.
            PathNotFound: no such path.
        """
        ...

    def mkdir(self, endpoint: Endpoint, path: RelPath) -> None:
        """Create a folder and its parents (no error if it exists)."""
        ...
