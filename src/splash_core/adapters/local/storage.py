"""Storage on local directories: every endpoint's root path is a folder on this machine.

Nothing outside an endpoint's root is ever read, listed or deleted: paths are checked with
every symlink resolved (the root's own symlinks too) before they are touched.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat as stat_mod
from collections.abc import Iterator

from splash_core.adapters.local._fs import checked_path, is_inside, name_is_valid, real_root, trusted_relpath
from splash_core.adapters.local.hashing import DEFAULT_BUFFER_SIZE, hash_file
from splash_core.domain.errors import InvalidPath, PathNotFound, StorageError
from splash_core.domain.models import Checksum, ChecksumAlgorithm, Endpoint, FileRecord
from splash_core.domain.paths import RelPath
from splash_core.ports.storage import StoragePort

logger = logging.getLogger(__name__)

_ALGORITHMS = (
    ChecksumAlgorithm.BLAKE3,
    ChecksumAlgorithm.XXH3_128,
    ChecksumAlgorithm.SHA256,
    ChecksumAlgorithm.SHA512,
    ChecksumAlgorithm.SHA1,
    ChecksumAlgorithm.MD5,
)


def _relpath(relname: str, name: str) -> RelPath | None:
    # a directory entry's name is one normalised component; only control characters and the
    # total length can make it invalid, and checking just those is much faster than RelPath()
    if name_is_valid(name) and len(relname) < 1024:
        return trusted_relpath(relname)
    try:
        return RelPath(relname)
    except InvalidPath:
        return None


class LocalStorage(StoragePort):
    """Stat, list, checksum and delete below endpoint roots that are local folders.

    Args:
        buffer_size: read size for checksums (clamped to 1–8 MiB).
    """

    def __init__(self, *, buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        self._buffer_size = buffer_size

    def stat(self, endpoint: Endpoint, path: RelPath) -> FileRecord | None:
        """Size and mtime of the regular file at ``path``; None when there is none (also for a folder).

        Raises:
            PathEscapesRoot: the path resolves outside the root (its size would prove nothing).
        """
        full = checked_path(endpoint, path)
        try:
            st = os.stat(full)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot stat {path} on endpoint {endpoint.name}: {exc.strerror}") from exc
        if not stat_mod.S_ISREG(st.st_mode):
            return None
        return FileRecord(path=path, size=st.st_size, mtime=st.st_mtime)

    def list(self, endpoint: Endpoint, prefix: RelPath | None = None) -> Iterator[FileRecord]:
        """Every regular file strictly below the folder ``prefix`` (or the root), sorted by name per folder.

        A ``prefix`` that is a file or does not exist gives nothing.

        Symlinks to files inside the root are listed (with the target's size); symlinked folders
        are never followed, so nothing is listed twice and no loop is possible. Names that are
        not valid relative paths (control characters) are skipped with a warning.

        Raises:
            StorageError: the endpoint's root does not exist (not mounted?).
            PathEscapesRoot: ``prefix`` resolves outside the root.
        """
        root_real = real_root(endpoint)
        if not os.path.isdir(root_real):
            raise StorageError(f"root {endpoint.root_path} of endpoint {endpoint.name} is not a folder; is it mounted?")
        if prefix is None:
            yield from self._walk(endpoint, root_real, endpoint.root_path, "")
            return
        full = checked_path(endpoint, prefix, root_real=root_real)
        try:
            st = os.stat(full)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot list {prefix} on endpoint {endpoint.name}: {exc.strerror}") from exc
        if stat_mod.S_ISDIR(st.st_mode) and not os.path.islink(full):
            yield from self._walk(endpoint, root_real, full, prefix.value + "/")

    def _walk(self, endpoint: Endpoint, root_real: str, top: str, rel_top: str) -> Iterator[FileRecord]:
        stack = [(top, rel_top)]
        while stack:
            folder, rel = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name, reverse=True)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageError(f"cannot list {rel or '/'} on endpoint {endpoint.name}: {exc.strerror}") from exc
            subfolders = []
            for entry in reversed(entries):
                relname = rel + entry.name
                try:
                    if entry.is_symlink():
                        if not entry.is_file() or not is_inside(root_real, entry.path):
                            continue
                    elif entry.is_dir(follow_symlinks=False):
                        subfolders.append((entry.path, relname + "/"))
                        continue
                    elif not entry.is_file(follow_symlinks=False):
                        continue
                    st = entry.stat()
                except FileNotFoundError:  # removed while we looked
                    continue
                relpath = _relpath(relname, entry.name)
                if relpath is None:
                    logger.warning("skipping %r on endpoint %s: not a valid path name", relname, endpoint.name)
                    continue
                yield FileRecord(path=relpath, size=st.st_size, mtime=st.st_mtime)
            stack.extend(reversed(subfolders))

    def checksum_algorithms(self, endpoint: Endpoint) -> tuple[ChecksumAlgorithm, ...]:
        """Every algorithm; blake3 first (fastest that is also cryptographic)."""
        return _ALGORITHMS

    def checksum(self, endpoint: Endpoint, path: RelPath, algorithm: ChecksumAlgorithm) -> Checksum:
        """A fresh checksum of the file, read from start to end now.

        Raises:
            PathNotFound: no such file.
            PathEscapesRoot: the path resolves outside the root.
            StorageError: it is a folder, or it cannot be read.
        """
        full = checked_path(endpoint, path)
        try:
            if os.path.isdir(full):
                raise StorageError(f"{path} on endpoint {endpoint.name} is a folder; checksum a file")
            return hash_file(full, algorithm, buffer_size=self._buffer_size)
        except FileNotFoundError as exc:
            raise PathNotFound(f"{path} does not exist on endpoint {endpoint.name}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {path} on endpoint {endpoint.name}: {exc.strerror}") from exc

    def contains(self, endpoint: Endpoint, path: RelPath) -> bool:
        """Whether ``path``, every symlink resolved (the last one too), stays inside the root."""
        return is_inside(real_root(endpoint), endpoint.full_path(path))

    def delete(self, endpoint: Endpoint, path: RelPath, *, recursive: bool = False) -> None:
        """Delete a file, a symlink (not its target) or, when ``recursive``, a folder tree.

        Empty parent folders are left in place.

        Raises:
            PathEscapesRoot: the path, or a symlink at the path, resolves outside the root;
                nothing was deleted.
            PathNotFound: no such path.
            StorageError: it is a folder and ``recursive`` is false, or the deletion failed.
        """
        full = checked_path(endpoint, path)
        try:
            st = os.lstat(full)
        except FileNotFoundError as exc:
            raise PathNotFound(f"{path} does not exist on endpoint {endpoint.name}; nothing deleted") from exc
        try:
            if stat_mod.S_ISDIR(st.st_mode):
                if not recursive:
                    raise StorageError(
                        f"{path} on endpoint {endpoint.name} is a folder; pass recursive=True to delete it"
                    )
                # rmtree unlinks symlinks inside the tree without following them
                shutil.rmtree(full)
            else:
                os.unlink(full)
        except FileNotFoundError as exc:
            raise PathNotFound(f"{path} vanished from endpoint {endpoint.name} while deleting") from exc
        except OSError as exc:
            raise StorageError(f"cannot delete {path} on endpoint {endpoint.name}: {exc.strerror}") from exc
        logger.info("deleted %s from endpoint %s", path, endpoint.name)

    def mkdir(self, endpoint: Endpoint, path: RelPath) -> None:
        """Create a folder and its parents below the root (no error if it exists).

        Raises:
            PathEscapesRoot: the path resolves outside the root.
            StorageError: a file is in the way, or the root is missing.
        """
        full = checked_path(endpoint, path)
        if not os.path.isdir(endpoint.root_path):
            raise StorageError(f"root {endpoint.root_path} of endpoint {endpoint.name} is not a folder; is it mounted?")
        try:
            os.makedirs(full, exist_ok=True)
        except FileExistsError as exc:
            raise StorageError(
                f"cannot create folder {path} on endpoint {endpoint.name}: a file is in the way"
            ) from exc
        except OSError as exc:
            if exc.errno == errno.ENOTDIR:
                raise StorageError(
                    f"cannot create folder {path} on endpoint {endpoint.name}: a file is in the way"
                ) from exc
            raise StorageError(f"cannot create folder {path} on endpoint {endpoint.name}: {exc.strerror}") from exc
