"""StoragePort over Globus file operations (stat, ls, mkdir) and delete tasks.

What Globus cannot do, and what that means here:

* **No checksums on demand.** Globus compares checksums inside transfer tasks but has
  no API that returns a file's digest, so :meth:`GlobusStorage.checksum_algorithms`
  is empty and :meth:`GlobusStorage.checksum` raises ``ChecksumUnsupported``. Verify a
  Globus-only copy through the transfer that made it (``verified_by="globus"``) or
  checksum it where the file is mounted.
* **Symlinks only as far as Globus reports them.** Globus resolves links itself and
  offers no realpath; it does report ``link_target`` for an entry that is a link.
  ``contains`` and ``delete`` therefore stat the path one component at a time from the
  root, follow every reported link and refuse a path once a target lies outside the
  root (a collection that hides link targets cannot be checked this way). That costs
  one ``stat`` per component. Globus deletes remove links, never what they point to.
* ``stat`` describes regular files only (None for folders); ``list`` does not descend
  into symlinked folders and skips symlinked files whose target is outside the root.
* Modification times have whole-second resolution (that is what Globus reports).
"""

from __future__ import annotations

import logging
import posixpath
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import globus_sdk

from splash_core.adapters._clock import SystemClock
from splash_core.adapters.globus._client import ClientSource, GlobusSession, collection_of
from splash_core.adapters.globus._retry import Retrier, RetryPolicy
from splash_core.adapters.globus._tasks import PollPolicy, event_text, parse_time, task_status
from splash_core.adapters.globus.auth import build_transfer_client
from splash_core.adapters.globus.errors import is_exists, is_not_found, storage_error
from splash_core.adapters.globus.options import adapter_kwargs
from splash_core.adapters.globus.transfer import sanitize_label
from splash_core.domain.errors import (
    ChecksumUnsupported,
    InvalidPath,
    PathEscapesRoot,
    PathNotFound,
    StorageError,
    TransientStorageError,
)
from splash_core.domain.models import Checksum, ChecksumAlgorithm, Endpoint, FileRecord, TaskStatus
from splash_core.domain.paths import RelPath
from splash_core.ports.clock import ClockPort
from splash_core.ports.storage import StoragePort

log = logging.getLogger(__name__)

_MAX_LINK_HOPS = 16
_STUCK_DELETE_EVENTS = frozenset({"PERMISSION_DENIED", "FILE_NOT_FOUND", "NOT_A_DIRECTORY", "IS_A_DIRECTORY"})


def _inside(path: str, root: str) -> bool:
    path = posixpath.normpath(path)
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def _link_target(full_path: str, doc: Any) -> str | None:
    target = doc.get("link_target")
    if not target:
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(full_path), str(target)))


def _mtime(doc: Any) -> float | None:
    when = parse_time(doc.get("last_modified"))
    return when.timestamp() if when else None


class GlobusStorage(StoragePort):
    """Looks at, creates and deletes files on Globus collections.

    Args:
        client: a TransferClient, or a function that builds one on first use.
        clock: monotonic time and sleeping while a delete task runs.
        poll: how often to poll a delete task.
        retry: retries of each API call on 429, 5xx and network errors.
        delete_timeout_s: how long a delete task may run before it is cancelled.
        ls_page_size: entries per ``operation_ls`` page.
    """

    def __init__(
        self,
        client: ClientSource,
        *,
        clock: ClockPort | None = None,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        delete_timeout_s: float = 600.0,
        ls_page_size: int = 100_000,
    ) -> None:
        self._session = GlobusSession(client, Retrier(retry))
        self._clock: ClockPort = clock or SystemClock()
        self._poll = poll or PollPolicy()
        self._delete_timeout_s = delete_timeout_s
        self._ls_page_size = ls_page_size

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> GlobusStorage:
        """An adapter whose client is built from the environment on first use."""
        return cls(lambda: build_transfer_client(environ=environ), **kwargs)

    @classmethod
    def from_options(cls, client: ClientSource, options: Mapping[str, Any], **kwargs: Any) -> GlobusStorage:
        """An adapter configured from the flat ``globus`` options block (see :mod:`.options`).

        Raises:
            ConfigError: an unknown option or a bad value.
        """
        return cls(client, **adapter_kwargs(options, for_storage=True), **kwargs)

    @property
    def _tc(self) -> globus_sdk.TransferClient:
        return self._session.client

    # --- looking ------------------------------------------------------------

    def _stat_doc(self, endpoint: Endpoint, full_path: str) -> Any | None:
        collection = collection_of(endpoint)
        try:
            return self._session.storage_call(
                f"stat of {full_path} on {endpoint.name}", self._tc.operation_stat, collection, full_path
            )
        except PathNotFound:
            return None

    def stat(self, endpoint: Endpoint, path: RelPath) -> FileRecord | None:
        """Size and mtime of the regular file ``path``; None for nothing (or a folder)."""
        doc = self._stat_doc(endpoint, endpoint.full_path(path))
        if doc is None or doc.get("type") != "file":
            return None
        return FileRecord(path=path, size=int(doc.get("size") or 0), mtime=_mtime(doc))

    def list(self, endpoint: Endpoint, prefix: RelPath | None = None) -> Iterator[FileRecord]:
        """Every regular file below ``prefix`` (or the root), walking folders with ``operation_ls``."""
        collection = collection_of(endpoint)
        root = endpoint.root_path
        if prefix is not None:
            doc = self._stat_doc(endpoint, endpoint.full_path(prefix))
            if doc is None or doc.get("type") != "dir":
                return  # nothing lies below a missing path or a file
        folders = [endpoint.full_path(prefix) if prefix is not None else root]
        while folders:
            folder = folders.pop()
            what = f"listing {folder} on {endpoint.name}"
            entries = self._session.ls(collection, folder, page_size=self._ls_page_size, what=what, as_storage=True)
            for entry in sorted(entries, key=lambda e: str(e.get("name")), reverse=True):
                full = posixpath.join(folder, str(entry.get("name")))
                kind = entry.get("type")
                target = _link_target(full, entry)
                if kind == "dir" and target is None:
                    folders.append(full)
                elif kind == "file" and (target is None or _inside(target, root)):
                    try:
                        rel = RelPath.parse(posixpath.relpath(full, root))
                    except InvalidPath as exc:
                        log.warning("skipping %s on %s: %s", full, endpoint.name, exc)
                        continue
                    yield FileRecord(path=rel, size=int(entry.get("size") or 0), mtime=_mtime(entry))

    def checksum_algorithms(self, endpoint: Endpoint) -> tuple[ChecksumAlgorithm, ...]:
        """None: Globus cannot compute a checksum on demand."""
        return ()

    def checksum(self, endpoint: Endpoint, path: RelPath, algorithm: ChecksumAlgorithm) -> Checksum:
        """Always raises: Globus verifies checksums inside transfers only.

        Raises:
            PathNotFound: no such file.
            ChecksumUnsupported: otherwise.
        """
        if self._stat_doc(endpoint, endpoint.full_path(path)) is None:
            raise PathNotFound(f"{path} does not exist on {endpoint.name}; nothing to checksum")
        raise ChecksumUnsupported(
            f"{endpoint.name} is reached through Globus, which cannot compute a {algorithm.value} checksum "
            f"of {path} on demand; rely on the verification of the transfer that wrote it, or checksum it "
            "where the file system is mounted"
        )

    def contains(self, endpoint: Endpoint, path: RelPath) -> bool:
        """Whether ``path`` stays inside the root, following the symlinks Globus reports."""
        escape, _doc = self._walk(endpoint, path)
        return escape is None

    def _walk(self, endpoint: Endpoint, path: RelPath) -> tuple[RelPath | None, Any | None]:
        """Follow ``path`` from the root one component at a time.

        Returns the first prefix of ``path`` that resolves outside the root (None if
        none does) and the stat document of ``path`` itself (None if it does not exist).
        Every component that Globus reports as a symlink is followed to its target.
        """
        root = endpoint.root_path
        current = root
        doc: Any | None = None
        for depth, part in enumerate(path.parts, start=1):
            candidate = posixpath.join(current, part)
            for _hop in range(_MAX_LINK_HOPS):
                doc = self._stat_doc(endpoint, candidate)
                if doc is None:
                    return None, None  # nothing there yet, so nothing below can lead outside
                target = _link_target(candidate, doc)
                if target is None:
                    break
                if not _inside(target, root):
                    return RelPath("/".join(path.parts[:depth])), doc
                candidate = target
            else:
                return RelPath("/".join(path.parts[:depth])), doc  # a link loop: refuse it
            current = candidate
        return None, doc

    # --- changing -----------------------------------------------------------

    def mkdir(self, endpoint: Endpoint, path: RelPath) -> None:
        """Create a folder and its parents (no error if it exists)."""
        collection = collection_of(endpoint)
        if self._mkdir_one(endpoint, collection, path):
            return
        if path.parent is not None:
            self.mkdir(endpoint, path.parent)
        if not self._mkdir_one(endpoint, collection, path):
            raise PathNotFound(f"cannot create {path} on {endpoint.name}: its root {endpoint.root_path} does not exist")

    def _mkdir_one(self, endpoint: Endpoint, collection: str, path: RelPath) -> bool:
        """Create one folder; False when its parent is missing."""
        full = endpoint.full_path(path)
        client = self._tc
        try:
            self._session.retrier(client.operation_mkdir, collection, full)
        except globus_sdk.GlobusAPIError as exc:
            if is_exists(exc):
                return True
            if is_not_found(exc):
                return False
            raise storage_error(exc, f"creating {full} on {endpoint.name}") from exc
        except globus_sdk.NetworkError as exc:
            raise storage_error(exc, f"creating {full} on {endpoint.name}") from exc
        return True

    def delete(self, endpoint: Endpoint, path: RelPath, *, recursive: bool = False) -> None:
        """Delete ``path`` with a Globus delete task and wait for it to finish.

        Raises:
            PathEscapesRoot: the path (a symlink) points outside the root; nothing was deleted.
            PathNotFound: no such path.
            StorageError: ``path`` is a folder and ``recursive`` is False, or the task failed.
            TransientStorageError: the task did not finish in time and was cancelled.
        """
        collection = collection_of(endpoint)
        full = endpoint.full_path(path)
        escape, doc = self._walk(endpoint, path)
        if escape is not None:
            raise PathEscapesRoot(
                f"{path} on {endpoint.name} resolves outside {endpoint.root_path} (through {escape}); "
                "nothing was deleted"
            )
        if doc is None:
            raise PathNotFound(f"{path} does not exist on {endpoint.name}; nothing was deleted")
        if doc.get("type") == "dir" and not recursive:
            raise StorageError(f"{path} on {endpoint.name} is a folder; pass recursive=True to delete it")
        data = globus_sdk.DeleteData(
            collection,
            label=sanitize_label(f"splash delete {endpoint.name} {path.name}"),
            # fresh per call (reused by the retries inside it): a later delete of a
            # re-created path must not be taken for a duplicate of this one
            submission_id=str(uuid.uuid4()),
            recursive=recursive,
        )
        data.add_item(full)
        what = f"deleting {path} on {endpoint.name}"
        response = self._session.storage_call(what, self._tc.submit_delete, data)
        task_id = str(response["task_id"])
        log.info("submitted Globus delete task %s for %s on %s", task_id, path, endpoint.name)
        self._wait_delete(task_id, what)

    def _wait_delete(self, task_id: str, what: str) -> None:
        deadline = self._clock.monotonic() + self._delete_timeout_s
        intervals = self._poll.intervals()
        while True:
            doc = self._session.storage_call(f"{what}: reading task {task_id}", self._tc.get_task, task_id)
            status = task_status(doc)
            if status is TaskStatus.SUCCEEDED:
                return
            if status is not TaskStatus.ACTIVE:
                fatal = doc.get("fatal_error") or {}
                code = fatal.get("code") or "UNKNOWN"
                message = (
                    f"{what}: Globus delete task {task_id} {status.value}: {code}: {fatal.get('description') or ''}"
                )
                if code == "FILE_NOT_FOUND":
                    raise PathNotFound(message.rstrip(": "))
                raise StorageError(message.rstrip(": ") + "; see the task's event list in the Globus web app")
            stuck = self._stuck_reason(task_id, what, doc)
            if stuck is not None:
                self._cancel_quietly(task_id)
                raise StorageError(f"{what}: Globus delete task {task_id} hit {stuck} and was cancelled")
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                self._cancel_quietly(task_id)
                raise TransientStorageError(
                    f"{what}: Globus delete task {task_id} did not finish within {self._delete_timeout_s:g} s "
                    "and was cancelled (part of a folder may already be gone); retry later"
                )
            self._clock.sleep(min(next(intervals), remaining))

    def _stuck_reason(self, task_id: str, what: str, doc: Any) -> str | None:
        if not doc.get("faults") and doc.get("nice_status") in (None, "", "OK", "Queued"):
            return None
        events = self._session.storage_call(
            f"{what}: reading the events of task {task_id}", self._tc.task_event_list, task_id, limit=100
        )
        for event in events.get("DATA") or []:
            if event.get("code") in _STUCK_DELETE_EVENTS:
                return event_text(event)
        nice = doc.get("nice_status")
        return str(nice) if nice in _STUCK_DELETE_EVENTS else None

    def _cancel_quietly(self, task_id: str) -> None:
        try:
            self._session.retrier(self._tc.cancel_task, task_id)
        except Exception as exc:  # the error being raised matters more than the cancel failing
            log.warning("could not cancel Globus task %s: %s", task_id, exc)
