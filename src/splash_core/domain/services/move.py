"""Moving files between endpoints in batches, verifying every copy before it counts.

A move expands folders, skips files whose copy is already verified in the ledger, splits the
rest into batches (one transfer task each, with a deterministic idempotency key), waits for
each task and then verifies every file: a task that did not succeed, a file the service did
not verify, or a copy whose size or checksum differs from the source raises, and nothing
after it runs. Verified copies (and the source's checksum) go to the ledger, which is what
later steps (ingest, prune) trust.

Who verifies: when the storage can checksum both endpoints in a common algorithm, splash
computes and compares checksums itself (or keeps a digest the service reported in an
algorithm the destination can recompute). When it cannot (Globus collections offer no
checksums), the transfer service's own comparison is accepted instead, but only from a
service that announces one (:meth:`TransferPort.service_checksum`, Globus: MD5), only for
files it reports VERIFIED, and only when the copy's size matches the source's. Such a copy
is recorded with the service's algorithm and no digest (none is invented), and the source
gets no ``LocationVerified`` of its own then; prune re-verifies such copies by computing
fresh checksums of both ends, or refuses.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import attrs

from splash_core.domain.errors import (
    ChecksumUnsupported,
    ExportControlViolation,
    InvalidInput,
    SourceNotFound,
    SplashError,
    TransferFailed,
    TransferTimeout,
    VerificationFailed,
)
from splash_core.domain.events import LocationVerified, StepRecord, StepState
from splash_core.domain.models import (
    Checksum,
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
from splash_core.domain.paths import RelPath
from splash_core.domain.services.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    from splash_core.domain.settings import TransferSettings
    from splash_core.ports.clock import ClockPort
    from splash_core.ports.ledger import LedgerPort
    from splash_core.ports.storage import StoragePort
    from splash_core.ports.transfer import TransferPort

logger = logging.getLogger(__name__)

T = TypeVar("T")

VERIFIED_BY_SPLASH = "splash"
"""``verified_by`` of copies whose checksums splash_core computed on both ends itself."""

_KEY_NAMESPACE = uuid.UUID("6f1c1f4e-2b0c-5d7a-9a53-8b8e5c1d2a10")


@attrs.frozen
class MoveReport:
    """What one move did.

    ``verified`` holds one destination record per file copied and verified now; ``skipped``
    the source paths whose copy was already verified; ``tasks_created`` how many transfer
    tasks were newly submitted (a resumed task is not counted).
    """

    source: str
    destination: str
    verified: tuple[LocationVerified, ...]
    skipped: tuple[RelPath, ...]
    task_ids: tuple[str, ...]
    bytes_transferred: int
    seconds: float
    tasks_created: int

    @property
    def files(self) -> int:
        """Number of files copied and verified by this move."""
        return len(self.verified)


@attrs.frozen
class _Planned:
    source: FileRecord
    destination: RelPath


def batch_key(source: Endpoint, destination: Endpoint, items: Sequence[TransferItem]) -> str:
    """A stable identity for a batch: endpoints (name, collection, root) and sorted items.

    The same files between the same endpoints give the same key, whatever their order.
    """
    h = hashlib.sha256()
    for endpoint in (source, destination):
        h.update(f"{endpoint.name}\0{endpoint.collection_id or ''}\0{endpoint.root_path}\0".encode())
    for item in sorted(items, key=lambda i: (i.source, i.destination)):
        h.update(f"{item.source.value}\0{item.destination.value}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:32]


class MoveService:
    """Move files from one endpoint to another as verified, batched transfer tasks.

    Args:
        transfer: submits and waits for tasks.
        storage: stats, lists and checksums files on both endpoints.
        ledger: records verified copies and each batch's progress.
        clock: times the move and paces retries.
        max_files_per_batch: at most this many files per task.
        max_bytes_per_batch: at most this many bytes per task (a bigger file goes alone).
        timeout_s: how long to wait for one task before cancelling it.
        retry: how transient errors (submit, wait, stat, checksum) are retried.
        checksum_algorithm: preferred algorithm when both endpoints can compute it.
        always_checksum: checksum both ends even when the service says it verified a file.
    """

    def __init__(
        self,
        transfer: TransferPort,
        storage: StoragePort,
        ledger: LedgerPort,
        clock: ClockPort,
        *,
        max_files_per_batch: int = 1000,
        max_bytes_per_batch: int = 2 * 1024**4,
        timeout_s: float = 6 * 3600.0,
        retry: RetryPolicy | None = None,
        checksum_algorithm: ChecksumAlgorithm = ChecksumAlgorithm.BLAKE3,
        always_checksum: bool = False,
    ) -> None:
        if max_files_per_batch < 1 or max_bytes_per_batch < 1:
            raise InvalidInput(
                f"transfer batches need max_files_per_batch >= 1 and max_bytes_per_batch >= 1, got "
                f"{max_files_per_batch} and {max_bytes_per_batch}"
            )
        if timeout_s <= 0:
            raise InvalidInput(f"transfer timeout must be positive, got {timeout_s}")
        self._transfer = transfer
        self._storage = storage
        self._ledger = ledger
        self._clock = clock
        self.max_files_per_batch = max_files_per_batch
        self.max_bytes_per_batch = max_bytes_per_batch
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.checksum_algorithm = checksum_algorithm
        self.always_checksum = always_checksum

    @classmethod
    def from_settings(
        cls,
        transfer: TransferPort,
        storage: StoragePort,
        ledger: LedgerPort,
        clock: ClockPort,
        settings: TransferSettings,
    ) -> MoveService:
        """A service configured by the ``transfer`` settings."""
        return cls(
            transfer,
            storage,
            ledger,
            clock,
            max_files_per_batch=settings.max_files_per_batch,
            max_bytes_per_batch=settings.max_bytes_per_batch,
            timeout_s=settings.timeout_seconds,
            retry=RetryPolicy.from_settings(settings),
            checksum_algorithm=settings.checksum_algorithm,
        )

    def move(
        self,
        source: Endpoint,
        destination: Endpoint,
        paths: Sequence[RelPath],
        *,
        label: str,
        dest_prefix: RelPath | None = None,
        export_controlled: bool = False,
    ) -> MoveReport:
        """Copy ``paths`` (files, or folders meaning every file below) and verify every copy.

        Args:
            source: where the files are.
            destination: where they go; each lands at its source path (below ``dest_prefix``).
            paths: files or folders relative to the source root.
            label: names the move in task labels and messages.
            dest_prefix: a folder on the destination to put the files under.
            export_controlled: the data must not leave the site.

        Raises:
            ExportControlViolation: export-controlled data and an off-site destination;
                nothing was looked at or sent.
            SourceNotFound: a path exists neither as a file nor as a folder with files.
            ChecksumUnsupported: the endpoints share no checksum algorithm and the transfer
                service compares none itself; nothing was sent.
            TransferFailed: a task failed or a file was not copied (names task and file).
            TransferTimeout: a task did not finish in time and was cancelled.
            VerificationFailed: a copy differs from its source (names file, endpoint, task).
            TransferError: a submission was refused or transient errors persisted.
        """
        if export_controlled and destination.off_site:
            raise ExportControlViolation(
                f"{label}: export-controlled data may not go to {destination.name} "
                f"({destination.facility}, off site); nothing was sent. Send it to an on-site endpoint, "
                "or clear the export-control flag if it was set by mistake"
            )
        if source.name == destination.name:
            raise InvalidInput(f"{label}: source and destination are both {source.name}; pick another")
        started = self._clock.monotonic()
        planned = self._expand(source, paths, dest_prefix)
        to_copy: list[_Planned] = []
        skipped: list[RelPath] = []
        for item in planned:
            if self._already_there(destination, item):
                skipped.append(item.source.path)
            else:
                to_copy.append(item)
        verified: list[LocationVerified] = []
        task_ids: list[str] = []
        created = 0
        if to_copy:
            algorithm, by_storage = self._verification(source, destination)
            batches = self._batches(to_copy)
            logger.info(
                "%s: moving %d file(s) %s -> %s in %d batch(es); %d already verified there",
                label,
                len(to_copy),
                source.name,
                destination.name,
                len(batches),
                len(skipped),
            )
            for index, batch in enumerate(batches, 1):
                task_id, new, records = self._run_batch(
                    source, destination, batch, f"{label} {index}/{len(batches)}", algorithm, by_storage=by_storage
                )
                task_ids.append(task_id)
                created += new
                verified.extend(records)
        return MoveReport(
            source=source.name,
            destination=destination.name,
            verified=tuple(verified),
            skipped=tuple(skipped),
            task_ids=tuple(task_ids),
            bytes_transferred=sum(r.size for r in verified),
            seconds=self._clock.monotonic() - started,
            tasks_created=created,
        )

    # --- planning ----------------------------------------------------------

    def _expand(self, source: Endpoint, paths: Sequence[RelPath], dest_prefix: RelPath | None) -> list[_Planned]:
        planned: dict[RelPath, _Planned] = {}
        for path in paths:
            record = self._retry(partial(self._storage.stat, source, path), f"stat {path} on {source.name}")
            if record is not None:
                files = [record]
            else:
                files = self._retry(partial(self._list, source, path), f"list {path} on {source.name}")
                if not files:
                    raise SourceNotFound(
                        f"{path} does not exist on {source.name} ({source.full_path(path)}); nothing was "
                        "sent. Check the path, or wait until the file has been written"
                    )
            for file in files:
                target = dest_prefix.join(file.path.value) if dest_prefix is not None else file.path
                planned.setdefault(file.path, _Planned(file, target))
        return sorted(planned.values(), key=lambda p: p.source.path)

    def _list(self, source: Endpoint, folder: RelPath) -> list[FileRecord]:
        return list(self._storage.list(source, folder))

    def _already_there(self, destination: Endpoint, item: _Planned) -> bool:
        copy = self._ledger.verified_copy(destination.name, item.destination)
        if copy is None or copy.size != item.source.size:
            return False
        # a source rewritten after the copy was verified is copied again
        mtime = item.source.mtime
        return mtime is None or mtime <= copy.at.timestamp()

    def _verification(self, source: Endpoint, destination: Endpoint) -> tuple[ChecksumAlgorithm, bool]:
        """The request's algorithm, and whether the storage can checksum both ends in it.

        Raises:
            ChecksumUnsupported: neither the storage nor the transfer service can verify copies
                (or ``always_checksum`` is set and the storage cannot); nothing was sent.
        """
        at_source = self._storage.checksum_algorithms(source)
        at_destination = set(self._storage.checksum_algorithms(destination))
        if self.checksum_algorithm in at_source and self.checksum_algorithm in at_destination:
            return self.checksum_algorithm, True
        for algorithm in at_source:
            if algorithm in at_destination:
                return algorithm, True
        shared = (
            f"{source.name} ({', '.join(a.value for a in at_source) or 'none'}) and {destination.name} "
            f"({', '.join(a.value for a in at_destination) or 'none'}) share no checksum algorithm"
        )
        if self.always_checksum:
            raise ChecksumUnsupported(
                f"{shared}, so splash cannot checksum both ends as always_checksum asks; nothing was sent"
            )
        service = self._transfer.service_checksum(source, destination)
        if service is None:
            raise ChecksumUnsupported(
                f"{shared} and the transfer service compares no checksums itself, so copies cannot be "
                "verified; nothing was sent"
            )
        logger.info(
            "%s; the transfer service's own %s comparison verifies copies to %s",
            shared,
            service.value,
            destination.name,
        )
        return service, False

    def _batches(self, items: Sequence[_Planned]) -> list[list[_Planned]]:
        batches: list[list[_Planned]] = []
        current: list[_Planned] = []
        size = 0
        for item in items:
            too_many = len(current) >= self.max_files_per_batch
            too_big = size + item.source.size > self.max_bytes_per_batch
            if current and (too_many or too_big):
                batches.append(current)
                current, size = [], 0
            current.append(item)
            size += item.source.size
        if current:
            batches.append(current)
        return batches

    # --- one batch ---------------------------------------------------------

    def _run_batch(
        self,
        source: Endpoint,
        destination: Endpoint,
        batch: Sequence[_Planned],
        label: str,
        algorithm: ChecksumAlgorithm,
        *,
        by_storage: bool,
    ) -> tuple[str, int, list[LocationVerified]]:
        items = tuple(TransferItem(p.source.path, p.destination) for p in batch)
        base = batch_key(source, destination, items)
        step_key = f"move/{base}"
        previous = self._ledger.step(step_key)
        attempt = int(_load(previous.detail).get("attempt", "0")) if previous is not None else 0
        resuming = previous is not None and previous.state is StepState.STARTED and attempt > 0
        if not resuming:
            # a new key after a failure or a finished task: the service would return the old task
            attempt += 1
        key = str(uuid.uuid5(_KEY_NAMESPACE, f"{base}/{attempt}"))
        request = TransferRequest(source, destination, items, label, key, algorithm)
        detail = {"attempt": str(attempt), "idempotency_key": key}
        self._ledger.record_step(StepRecord(step_key, StepState.STARTED, self._clock.now(), _dump(detail)))
        task_id = ""
        try:
            task = self._retry(lambda: self._transfer.submit(request), f"submit {label}")
            task_id = task.task_id
            detail["task_id"] = task_id
            self._ledger.record_step(StepRecord(step_key, StepState.STARTED, self._clock.now(), _dump(detail)))
            logger.info("%s: task %s (%d file(s), attempt %d)", label, task_id, len(items), attempt)
            result = self._wait(task, label)
            records = self._verify_batch(request, batch, result, by_storage=by_storage)
        except SplashError as exc:
            detail["error"] = str(exc)
            self._ledger.record_step(StepRecord(step_key, StepState.FAILED, self._clock.now(), _dump(detail)))
            raise
        self._ledger.record_step(StepRecord(step_key, StepState.DONE, self._clock.now(), _dump(detail)))
        return task_id, 0 if resuming else 1, records

    def _wait(self, task: TransferTask, label: str) -> TransferResult:
        deadline = self._clock.monotonic() + self.timeout_s
        try:
            return self._retry(
                lambda: self._transfer.wait(task.task_id, max(deadline - self._clock.monotonic(), 0.0)),
                f"wait for task {task.task_id} ({label})",
            )
        except TransferTimeout:
            with contextlib.suppress(SplashError):  # the adapter cancels too; this makes sure
                self._transfer.cancel(task.task_id)
            raise

    def _verify_batch(
        self, request: TransferRequest, batch: Sequence[_Planned], result: TransferResult, *, by_storage: bool
    ) -> list[LocationVerified]:
        source, destination, task_id = request.source, request.destination, result.task_id
        if result.status is not TaskStatus.SUCCEEDED:
            raise TransferFailed(
                f"transfer task {task_id} {source.name} -> {destination.name} ({request.label}) ended "
                f"{result.status.value}: {result.reason or 'no reason given'}; no file of it was recorded "
                "as copied. Fix the cause and move again"
            )
        outcomes = {o.item: o for o in result.files}
        records: list[LocationVerified] = []
        for planned, item in zip(batch, request.items, strict=True):
            outcome = outcomes.get(item)
            if outcome is None or outcome.state is not FileState.VERIFIED:
                state = "no outcome" if outcome is None else outcome.state.value
                error = f": {outcome.error}" if outcome is not None and outcome.error else ""
                raise TransferFailed(
                    f"transfer task {task_id} reported {state} for {item.source} on {source.name} -> "
                    f"{item.destination} on {destination.name}{error}; it was not recorded as copied"
                )
            source_record: LocationVerified | None
            if by_storage:
                source_record, copy_record = self._verify_file(request, planned, outcome, task_id)
            else:
                source_record, copy_record = self._accept_service(request, planned, outcome, task_id)
            if source_record is not None:
                self._ledger.record(source_record)
            self._ledger.record(copy_record)
            records.append(copy_record)
        return records

    def _verify_file(
        self, request: TransferRequest, planned: _Planned, outcome: FileOutcome, task_id: str
    ) -> tuple[LocationVerified, LocationVerified]:
        source, destination, item = request.source, request.destination, outcome.item
        now = self._clock.now()
        claimed = outcome.record
        if (
            not self.always_checksum
            and outcome.verified_by
            and claimed is not None
            and claimed.checksum is not None
            and claimed.checksum.algorithm in self._storage.checksum_algorithms(destination)
        ):
            if claimed.size != planned.source.size:
                raise self._mismatch(request, item, task_id, planned.source.size, claimed.size, None, None)
            checksum, size, verified_by = claimed.checksum, claimed.size, outcome.verified_by
        else:
            size, checksum = self._compare_ends(request, item, task_id)
            verified_by = VERIFIED_BY_SPLASH
        return (
            LocationVerified(source.name, item.source, size, checksum, verified_by, now, task_id),
            LocationVerified(destination.name, item.destination, size, checksum, verified_by, now, task_id),
        )

    def _accept_service(
        self, request: TransferRequest, planned: _Planned, outcome: FileOutcome, task_id: str
    ) -> tuple[LocationVerified | None, LocationVerified]:
        """The service's own verification of a VERIFIED outcome, when the storage cannot checksum.

        The service must say it compared checksums (a digest, or the algorithm it compared
        in) and the copy's size must be the source's (as stat'ed for this move). The source
        is recorded only when the service reported a digest.
        """
        source, destination, item = request.source, request.destination, outcome.item
        claimed = outcome.record
        if (
            claimed is None
            or not outcome.verified_by
            or (claimed.checksum is None and outcome.service_algorithm is None)
        ):
            raise VerificationFailed(
                f"transfer task {task_id} reported {item.destination} on {destination.name} VERIFIED without "
                f"saying it compared checksums, and splash cannot checksum {source.name} or {destination.name} "
                "itself; it was not recorded as copied. Configure a checksum-capable storage adapter, or a "
                "transfer service that verifies checksums"
            )
        if claimed.size != planned.source.size:
            raise self._mismatch(request, item, task_id, planned.source.size, claimed.size, None, None)
        now = self._clock.now()
        by, algorithm = outcome.verified_by, outcome.service_algorithm
        copy = LocationVerified(
            destination.name, item.destination, claimed.size, claimed.checksum, by, now, task_id, algorithm
        )
        if claimed.checksum is None:
            return None, copy
        original = LocationVerified(
            source.name, item.source, claimed.size, claimed.checksum, by, now, task_id, algorithm
        )
        return original, copy

    def _compare_ends(self, request: TransferRequest, item: TransferItem, task_id: str) -> tuple[int, Checksum]:
        source, destination, algorithm = request.source, request.destination, request.checksum_algorithm
        src = self._retry(lambda: self._storage.stat(source, item.source), f"stat {item.source} on {source}")
        dst = self._retry(
            lambda: self._storage.stat(destination, item.destination), f"stat {item.destination} on {destination}"
        )
        if src is None or dst is None:
            where = f"{item.source} on {source.name}" if src is None else f"{item.destination} on {destination.name}"
            raise VerificationFailed(
                f"after transfer task {task_id}, {where} does not exist, so the copy cannot be verified; "
                "it was not recorded as copied. Move it again"
            )
        src_sum = self._retry(
            lambda: self._storage.checksum(source, item.source, algorithm), f"checksum {item.source} on {source}"
        )
        dst_sum = self._retry(
            lambda: self._storage.checksum(destination, item.destination, algorithm),
            f"checksum {item.destination} on {destination}",
        )
        if src.size != dst.size or src_sum != dst_sum:
            raise self._mismatch(request, item, task_id, src.size, dst.size, src_sum, dst_sum)
        return dst.size, dst_sum

    @staticmethod
    def _mismatch(
        request: TransferRequest,
        item: TransferItem,
        task_id: str,
        source_size: int,
        copy_size: int,
        source_sum: Checksum | None,
        copy_sum: Checksum | None,
    ) -> VerificationFailed:
        sums = f", checksum {source_sum} vs {copy_sum}" if source_sum is not None else ""
        return VerificationFailed(
            f"{item.destination} on {request.destination.name} does not match {item.source} on "
            f"{request.source.name} after transfer task {task_id}: size {source_size} vs {copy_size}{sums}; "
            "the copy was not recorded as verified and nothing after it ran. Move it again"
        )

    def _retry(self, fn: Callable[[], T], what: str) -> T:
        return call_with_retry(fn, policy=self.retry, clock=self._clock, what=what)


def _dump(detail: dict[str, str]) -> str:
    return json.dumps(detail, sort_keys=True)


def _load(detail: str) -> dict[str, str]:
    try:
        loaded = json.loads(detail) if detail else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


__all__ = ["VERIFIED_BY_SPLASH", "MoveReport", "MoveService", "batch_key"]
