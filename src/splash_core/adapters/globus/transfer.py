"""TransferPort over Globus Transfer: one task per batch, checksum-verified by Globus.

Decisions worth knowing:

* Every task is submitted with ``sync_level="checksum"``, ``verify_checksum=True`` and
  ``fail_on_quota_errors=True``. Files whose destination copy already has the same
  checksum are skipped by Globus; they count as verified (Globus compared checksums).
* The submission id is ``uuid5`` of the request's idempotency key, so submitting the same
  request twice returns the same task. If that task has FAILED (or was cancelled), the
  next submission uses ``uuid5(key#1)``, ``uuid5(key#2)``… so a failed batch can be
  retried under the same key while a running or successful one is never duplicated.
* Globus verifies checksums but does not report the digests (successful-transfer
  records name only the paths). Verified outcomes therefore carry ``verified_by="globus"``,
  ``service_algorithm=MD5`` (the algorithm Globus compares in unless an item names
  another; none does), the destination size and mtime from ``operation_ls`` and
  ``checksum=None``; nothing here invents a digest. Globus storage cannot compute one
  either (see :mod:`splash_core.adapters.globus.storage`), so
  :meth:`GlobusTransfer.service_checksum` tells callers to accept Globus's comparison.
* While a task is ACTIVE Globus keeps retrying errors that will not go away
  (missing source, permission denied, quota, repeated checksum mismatches). ``wait``
  looks at the task's events when the task reports faults, cancels the task and raises.
  Such a task reports FAILED from then on (its events say why); a task cancelled for
  any other reason (``cancel``, the ``wait`` deadline) reports CANCELLED.
* ``wait`` needs the request to name each file's outcome: it knows the tasks this
  instance submitted. After a restart, submit the same request again (same key, same
  task) and wait on what it returns.
"""

from __future__ import annotations

import logging
import posixpath
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import globus_sdk

from splash_core.adapters._clock import SystemClock
from splash_core.adapters.globus._client import ClientSource, GlobusSession, collection_of
from splash_core.adapters.globus._retry import Retrier, RetryPolicy
from splash_core.adapters.globus._tasks import PollPolicy, event_text, parse_time, task_status
from splash_core.adapters.globus.auth import build_transfer_client
from splash_core.adapters.globus.errors import transfer_error
from splash_core.adapters.globus.options import adapter_kwargs
from splash_core.domain.errors import (
    InvalidInput,
    PermissionDenied,
    QuotaExceeded,
    SourceNotFound,
    TransferError,
    TransferFailed,
    TransferTimeout,
    VerificationFailed,
)
from splash_core.domain.models import (
    ChecksumAlgorithm,
    Endpoint,
    FileOutcome,
    FileRecord,
    FileState,
    TaskStatus,
    TransferItem,
    TransferRequest,
    TransferResult,
    TransferTask,
)
from splash_core.ports.clock import ClockPort
from splash_core.ports.transfer import TransferPort

log = logging.getLogger(__name__)

SUBMISSION_NAMESPACE = uuid.UUID("5d0e6c1e-3f5c-5b8e-9a53-3c7f0f2b8a61")
"""Namespace of the uuid5 submission ids (fixed forever: changing it re-submits old batches)."""

GLOBUS_CHECKSUM_ALGORITHM = ChecksumAlgorithm.MD5
"""What Globus compares source and destination in with ``verify_checksum`` (its default)."""

MAX_LABEL_LENGTH = 128
_LABEL_DISALLOWED = re.compile(r"[^A-Za-z0-9 _,\-]+")

# task events that mean the task will not succeed however long Globus retries
_FATAL_EVENTS: Mapping[str, type[TransferError]] = {
    "FILE_NOT_FOUND": SourceNotFound,
    "PERMISSION_DENIED": PermissionDenied,
    "QUOTA_EXCEEDED": QuotaExceeded,
    "NO_SPACE_LEFT": QuotaExceeded,
}
_CHECKSUM_EVENTS = frozenset({"VERIFY_CHECKSUM", "EXTERNAL_CHECKSUM_MISMATCH", "CHECKSUM_MISMATCH"})
_CALM_NICE_STATUS = frozenset({None, "", "OK", "Queued"})
_HINTS: Mapping[type[TransferError], str] = {
    SourceNotFound: "check that the source files exist",
    PermissionDenied: "check the collections' access rules for the Globus client",
    QuotaExceeded: "free space or raise the quota at the destination",
    VerificationFailed: "source and destination checksums differ; check the source is not still being written",
    TransferFailed: "see the task's event list in the Globus web app",
}


def sanitize_label(label: str) -> str:
    """A Globus task label for ``label``: safe characters only, at most 128 of them.

    Globus rejects labels with newlines or surrounding whitespace and has restricted
    labels to letters, digits, space, ``-``, ``_`` and ``,``; anything else becomes ``_``.
    """
    cleaned = _LABEL_DISALLOWED.sub("_", " ".join(label.split()))
    cleaned = cleaned[:MAX_LABEL_LENGTH].strip()
    return cleaned or "splash transfer"


def submission_id_for(idempotency_key: str, attempt: int = 0) -> str:
    """The Globus submission id (a UUID) for a request key; ``attempt`` > 0 after failures."""
    name = idempotency_key if attempt == 0 else f"{idempotency_key}#{attempt}"
    return str(uuid.uuid5(SUBMISSION_NAMESPACE, name))


def _norm(path: str) -> str:
    return posixpath.normpath(path)


class GlobusTransfer(TransferPort):
    """Moves batches of files with Globus Transfer tasks.

    Args:
        client: a TransferClient, or a function that builds one on first use (e.g.
            :func:`~splash_core.adapters.globus.auth.build_transfer_client`). Its
            built-in retries are replaced by ``retry``.
        clock: monotonic time and sleeping for ``wait`` (the system clock by default).
        poll: how often ``wait`` polls a running task.
        retry: retries of each API call on 429, 5xx and network errors.
        checksum_failure_limit: checksum-mismatch events after which a running task is
            cancelled as failing verification.
        ls_page_size: entries per ``operation_ls`` page when reading destination sizes.
        max_resubmits: how many failed tasks one idempotency key may be retried over.
    """

    def __init__(
        self,
        client: ClientSource,
        *,
        clock: ClockPort | None = None,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        checksum_failure_limit: int = 3,
        ls_page_size: int = 100_000,
        max_resubmits: int = 20,
    ) -> None:
        self._session = GlobusSession(client, Retrier(retry))
        self._clock: ClockPort = clock or SystemClock()
        self._poll = poll or PollPolicy()
        self._checksum_failure_limit = max(1, checksum_failure_limit)
        self._ls_page_size = ls_page_size
        self._max_resubmits = max_resubmits
        self._requests: dict[str, TransferRequest] = {}
        self._fatal: dict[str, TransferError] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> GlobusTransfer:
        """An adapter whose client is built from the environment on first use."""
        return cls(lambda: build_transfer_client(environ=environ), **kwargs)

    @classmethod
    def from_options(cls, client: ClientSource, options: Mapping[str, Any], **kwargs: Any) -> GlobusTransfer:
        """An adapter configured from the flat ``globus`` options block (see :mod:`.options`).

        Raises:
            ConfigError: an unknown option or a bad value.
        """
        return cls(client, **adapter_kwargs(options, for_storage=False), **kwargs)

    @property
    def _tc(self) -> globus_sdk.TransferClient:
        return self._session.client

    # --- submit -------------------------------------------------------------

    def service_checksum(self, source: Endpoint, destination: Endpoint) -> ChecksumAlgorithm | None:
        """MD5: Globus checksums both ends of every file (``verify_checksum``) and fails on a mismatch."""
        return GLOBUS_CHECKSUM_ALGORITHM

    def submit(self, request: TransferRequest) -> TransferTask:
        """Submit the batch as one Globus task (the same key returns the same live task).

        Raises:
            InvalidInput: no items, no idempotency key, or an endpoint without a collection.
            TransientTransferError: Globus is unavailable; retry.
            TransferError: Globus refused the task.
        """
        if not request.items:
            raise InvalidInput(f"transfer {request.label!r} has no files; nothing was submitted")
        if not request.idempotency_key:
            raise InvalidInput(f"transfer {request.label!r} has no idempotency key; it could be duplicated")
        source, destination = collection_of(request.source), collection_of(request.destination)
        label = sanitize_label(request.label)
        route = f"{request.source.name} → {request.destination.name}"
        for attempt in range(self._max_resubmits + 1):
            data = globus_sdk.TransferData(
                source,
                destination,
                label=label,
                submission_id=submission_id_for(request.idempotency_key, attempt),
                sync_level="checksum",
                verify_checksum=True,
                fail_on_quota_errors=True,
            )
            for item in request.items:
                data.add_item(request.source.full_path(item.source), request.destination.full_path(item.destination))
            what = f"submitting Globus transfer {label!r} ({route}, {request.total_files} files)"
            response = self._session.transfer_call(what, self._tc.submit_transfer, data)
            task_id = str(response["task_id"])
            if response.get("code") == "Duplicate":
                status = self.status(task_id)
                if status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
                    log.info("Globus task %s for %r ended %s; submitting again", task_id, label, status.value)
                    continue
                log.info("Globus task %s for %r was already submitted (%s)", task_id, label, status.value)
            else:
                log.info("submitted Globus task %s %r: %d files %s", task_id, label, request.total_files, route)
            self._requests[task_id] = request
            return TransferTask(task_id=task_id, request=request)
        raise TransferError(
            f"transfer {label!r} ({route}) already failed {self._max_resubmits + 1} times under idempotency key "
            f"{request.idempotency_key!r}; fix the cause, then submit it under a new key"
        )

    # --- status, cancel -----------------------------------------------------

    def _task(self, task_id: str) -> Any:
        return self._session.transfer_call(f"reading Globus task {task_id}", self._tc.get_task, task_id)

    def status(self, task_id: str) -> TaskStatus:
        """The task's current status.

        INACTIVE counts as ACTIVE. A task cancelled because it hit a fatal error (by
        :meth:`wait`) is FAILED; one cancelled for any other reason is CANCELLED.
        """
        doc = self._task(task_id)
        status = task_status(doc)
        if status is TaskStatus.CANCELLED and self._fatal_error(task_id, self._where(task_id), doc) is not None:
            return TaskStatus.FAILED
        return status

    def cancel(self, task_id: str) -> None:
        """Cancel the task if it is still running (no error if it already ended)."""
        client = self._tc
        try:
            response = self._session.retrier(client.cancel_task, task_id)
        except (globus_sdk.GlobusAPIError, globus_sdk.NetworkError) as exc:
            if isinstance(exc, globus_sdk.GlobusAPIError) and exc.http_status == 409:
                return  # the task already ended: nothing to cancel
            raise transfer_error(exc, f"cancelling Globus task {task_id}") from exc
        log.info("cancel of Globus task %s: %s", task_id, response.get("code"))

    def _cancel_quietly(self, task_id: str) -> None:
        try:
            self.cancel(task_id)
        except Exception as exc:  # the error being raised matters more than the cancel failing
            log.warning("could not cancel Globus task %s: %s", task_id, exc)

    # --- wait ---------------------------------------------------------------

    def wait(self, task_id: str, timeout_s: float) -> TransferResult:
        """Poll until the task ends; return each file's outcome or raise.

        Raises:
            TransferFailed: the task FAILED (or ended with files missing).
            SourceNotFound, PermissionDenied, QuotaExceeded, VerificationFailed: the task
                failed, or hit that error while running and was cancelled.
            TransferTimeout: ``timeout_s`` passed; the task was cancelled.
            TransferError: the task was not submitted through this adapter.
        """
        request = self._requests.get(task_id)
        if request is None:
            raise TransferError(
                f"Globus task {task_id} was not submitted by this GlobusTransfer; submit its request again "
                "(the same idempotency key returns the same task) and wait on the task that returns"
            )
        where = self._where(task_id, request)
        deadline = self._clock.monotonic() + max(0.0, timeout_s)
        intervals = self._poll.intervals()
        while True:
            doc = self._task(task_id)
            status = task_status(doc)
            if status is TaskStatus.SUCCEEDED:
                return self._result(task_id, request, doc)
            fatal = None if status is TaskStatus.FAILED else self._fatal_error(task_id, where, doc)
            if fatal is not None:
                if status is TaskStatus.ACTIVE:
                    self._cancel_quietly(task_id)
                raise fatal
            if status is not TaskStatus.ACTIVE:
                raise self._failure(where, doc)
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                return self._timed_out(task_id, request, timeout_s)
            self._clock.sleep(min(next(intervals), remaining))

    @staticmethod
    def _where(task_id: str, request: TransferRequest | None = None) -> str:
        if request is None:
            return f"Globus task {task_id}"
        return f"Globus task {task_id} ({request.label!r}, {request.source.name} → {request.destination.name})"

    def _timed_out(self, task_id: str, request: TransferRequest, timeout_s: float) -> TransferResult:
        self._cancel_quietly(task_id)
        doc = self._task(task_id)
        if task_status(doc) is TaskStatus.SUCCEEDED:  # it finished while we gave up on it
            return self._result(task_id, request, doc)
        raise TransferTimeout(
            f"{self._where(task_id, request)} did not finish within {timeout_s:g} s and was cancelled; "
            "allow more time or check the endpoints"
        )

    def _failure(self, where: str, doc: Any) -> TransferError:
        fatal = doc.get("fatal_error") or {}
        code = str(fatal.get("code") or "UNKNOWN")
        description = fatal.get("description") or doc.get("nice_status_short_description") or ""
        kind: type[TransferError] = _FATAL_EVENTS.get(code, TransferFailed)
        if code in _CHECKSUM_EVENTS:
            kind = VerificationFailed
        state = "was cancelled" if code == "CANCELED" else "FAILED"
        return kind(f"{where} {state}: {code}: {description}".rstrip(": ") + f"; {_HINTS[kind]}")

    def _events(self, task_id: str) -> list[Any]:
        response = self._session.transfer_call(
            f"reading the events of Globus task {task_id}", self._tc.task_event_list, task_id, limit=1000
        )
        return list(response.get("DATA") or [])

    def _fatal_error(self, task_id: str, where: str, doc: Any) -> TransferError | None:
        """The error a running (or since cancelled) task hit that Globus would retry forever."""
        known = self._fatal.get(task_id)
        if known is not None:
            return type(known)(str(known))
        nice = doc.get("nice_status")
        if not doc.get("faults") and nice in _CALM_NICE_STATUS:
            return None
        error = self._fatal_from_events(where, nice, doc, self._events(task_id))
        if error is not None:
            self._fatal[task_id] = error
        return error

    def _fatal_from_events(self, where: str, nice: Any, doc: Any, events: list[Any]) -> TransferError | None:
        for event in events:
            kind = _FATAL_EVENTS.get(str(event.get("code")))
            if kind is not None:
                return kind(f"{where} hit {event_text(event)}; the task was cancelled; {_HINTS[kind]}")
        mismatches = [e for e in events if e.get("code") in _CHECKSUM_EVENTS]
        if len(mismatches) >= self._checksum_failure_limit:
            return VerificationFailed(
                f"{where} failed checksum verification {len(mismatches)} times ({event_text(mismatches[0])}); "
                f"the task was cancelled; {_HINTS[VerificationFailed]}"
            )
        kind = _FATAL_EVENTS.get(str(nice))
        if kind is not None:
            detail = doc.get("nice_status_short_description") or doc.get("nice_status_details") or ""
            return kind(f"{where} reports {nice} {detail}".rstrip() + f"; the task was cancelled; {_HINTS[kind]}")
        return None

    # --- results ------------------------------------------------------------

    def _transferred(self, task_id: str) -> set[str]:
        done: set[str] = set()
        marker: str | None = None
        while True:
            kwargs: dict[str, Any] = {} if marker is None else {"marker": marker}
            page = self._session.transfer_call(
                f"reading the successful transfers of Globus task {task_id}",
                self._tc.task_successful_transfers,
                task_id,
                **kwargs,
            )
            for entry in page.get("DATA") or []:
                done.add(_norm(str(entry.get("destination_path", ""))))
            marker = page.get("next_marker")
            if not marker:
                return done

    def _destination_files(self, endpoint: Endpoint, paths: Iterable[str]) -> dict[str, tuple[int, float | None]]:
        by_folder: dict[str, set[str]] = defaultdict(set)
        for path in paths:
            folder, name = posixpath.split(path)
            by_folder[folder].add(name)
        found: dict[str, tuple[int, float | None]] = {}
        collection = collection_of(endpoint)
        for folder, names in sorted(by_folder.items()):
            what = f"listing {folder} on {endpoint.name} to confirm the transferred files"
            try:
                for entry in self._session.ls(
                    collection, folder, page_size=self._ls_page_size, what=what, as_storage=False
                ):
                    name = entry.get("name")
                    if name in names and entry.get("type") == "file":
                        mtime = parse_time(entry.get("last_modified"))
                        found[posixpath.join(folder, name)] = (
                            int(entry.get("size") or 0),
                            mtime.timestamp() if mtime else None,
                        )
            except SourceNotFound:  # the folder is not there, so neither are its files
                continue
        return found

    def _result(self, task_id: str, request: TransferRequest, doc: Any) -> TransferResult:
        destination_of = {item: _norm(request.destination.full_path(item.destination)) for item in request.items}
        transferred = self._transferred(task_id)
        missing = [item for item, path in destination_of.items() if path not in transferred]
        skipped_in_sync = int(doc.get("files_skipped") or 0)
        # with sync_level=checksum Globus skips (and lists nowhere) files whose destination
        # copy already has the source's checksum; more absentees than skips means real losses
        unaccounted = set(missing) if len(missing) > skipped_in_sync else set()
        present = self._destination_files(
            request.destination, (path for item, path in destination_of.items() if item not in unaccounted)
        )
        outcomes = tuple(self._outcome(item, destination_of[item], unaccounted, present) for item in request.items)
        result = TransferResult(
            task_id=task_id,
            status=TaskStatus.SUCCEEDED,
            files=outcomes,
            bytes_transferred=int(doc.get("bytes_transferred") or 0),
            seconds=_seconds(doc),
        )
        failed = [o for o in outcomes if o.state is not FileState.VERIFIED]
        if failed:
            listed = ", ".join(o.item.destination.value for o in failed[:5])
            more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
            raise TransferFailed(
                f"{self._where(task_id, request)} reported SUCCEEDED but {len(failed)} of "
                f"{request.total_files} files did not arrive on {request.destination.name}: {listed}{more}; "
                "submit them again"
            )
        log.info(
            "Globus task %s verified %d files (%d bytes in %.1f s)",
            task_id,
            len(outcomes),
            result.bytes_transferred,
            result.seconds,
        )
        return result

    @staticmethod
    def _outcome(
        item: TransferItem,
        path: str,
        unaccounted: set[TransferItem],
        present: Mapping[str, tuple[int, float | None]],
    ) -> FileOutcome:
        if item in unaccounted:
            return FileOutcome(item, FileState.FAILED, error="not among the task's successful transfers")
        if path not in present:
            return FileOutcome(item, FileState.FAILED, error="absent from the destination after the task")
        size, mtime = present[path]
        record = FileRecord(path=item.destination, size=size, checksum=None, mtime=mtime)
        return FileOutcome(
            item,
            FileState.VERIFIED,
            record=record,
            verified_by="globus",
            service_algorithm=GLOBUS_CHECKSUM_ALGORITHM,
        )


def _seconds(doc: Any) -> float:
    start, end = parse_time(doc.get("request_time")), parse_time(doc.get("completion_time"))
    if start is not None and end is not None:
        return max(0.0, (end - start).total_seconds())
    rate = float(doc.get("effective_bytes_per_second") or 0)
    moved = float(doc.get("bytes_transferred") or 0)
    return moved / rate if rate > 0 else 0.0
