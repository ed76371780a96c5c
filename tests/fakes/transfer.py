"""A transfer service that copies bytes inside a :class:`FakeStorage`, with injectable failures.

A task runs when it is waited for (or when :meth:`FakeTransfer.status` is asked after its
``duration_s`` has passed on the clock). Each ``*_next`` control applies to the next task
*created* (a resubmission under a known idempotency key creates nothing).
"""

from __future__ import annotations

import enum

import attrs

from splash_core.domain.errors import TransferError, TransferFailed, TransferTimeout, TransientTransferError
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
from splash_core.domain.paths import RelPath
from splash_core.ports.clock import ClockPort
from splash_core.ports.transfer import TransferPort
from tests.fakes._support import FaultPlan, digest
from tests.fakes.storage import FakeStorage

VERIFIED_BY = "fake-service"


class _Mode(enum.Enum):
    NORMAL = "normal"
    FAIL = "fail"
    PARTIAL = "partial"
    CORRUPT = "corrupt"
    HANG = "hang"
    SKIP = "skip"


@attrs.define
class _Plan:
    mode: _Mode
    reason: str = ""
    raise_on_wait: bool = True
    keep: int = 0
    skip: frozenset[RelPath] = frozenset()


@attrs.define
class FakeTask:
    """One task as the fake service sees it."""

    task_id: str
    request: TransferRequest
    submitted_at: float
    plan: _Plan
    status: TaskStatus = TaskStatus.ACTIVE
    result: TransferResult | None = None


class FakeTransfer(TransferPort):
    """An in-memory :class:`TransferPort` over a :class:`FakeStorage`.

    Recorded: ``submissions`` (submit calls that returned a task), ``tasks_created``,
    ``tasks`` (by id), ``cancelled`` (task ids) and ``requests`` (one per created task).

    Args:
        storage: where the bytes are copied.
        clock: waits sleep through it; tasks take ``duration_s`` of it.
        verifies_checksums: when True, outcomes carry a destination checksum (in the
            request's algorithm) and ``verified_by="fake-service"``; when False they carry
            only the size and the caller must checksum both ends.
        service_algorithm: with ``verifies_checksums``, compare in this algorithm whatever
            the request asks (as Globus does with MD5), set it on each outcome and announce
            it from :meth:`service_checksum`.
        reports_digests: with ``verifies_checksums``, put the digest in each outcome; False
            acts like Globus, which compares checksums but reports no digest.
        duration_s: how long each task takes on the clock.
    """

    def __init__(
        self,
        storage: FakeStorage,
        clock: ClockPort,
        *,
        verifies_checksums: bool = False,
        service_algorithm: ChecksumAlgorithm | None = None,
        reports_digests: bool = True,
        duration_s: float = 1.0,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.verifies_checksums = verifies_checksums
        self.service_algorithm = service_algorithm
        self.reports_digests = reports_digests
        self.duration_s = duration_s
        self.faults = FaultPlan()
        self.tasks: dict[str, FakeTask] = {}
        self.requests: list[TransferRequest] = []
        self.cancelled: list[str] = []
        self.submissions = 0
        self.tasks_created = 0
        self._by_key: dict[str, str] = {}
        self._plans: list[_Plan] = []

    # --- test controls -----------------------------------------------------

    def fail_next(self, n: int = 1, *, transient: bool = True) -> None:
        """Make the next ``n`` submit calls raise (TransientTransferError, or TransferError)."""
        self.faults.add(n, transient=transient, op="submit")

    def fail_task_next(self, reason: str = "injected task failure", *, raise_on_wait: bool = True) -> None:
        """Make the next task copy nothing and end FAILED with ``reason``.

        With ``raise_on_wait=False`` :meth:`wait` *returns* the FAILED result (with no file
        outcomes) instead of raising, like the reference implementation's buggy client did.
        """
        self._plans.append(_Plan(_Mode.FAIL, reason=reason, raise_on_wait=raise_on_wait))

    def partial_next(self, k: int) -> None:
        """Make the next task copy only its first ``k`` files, then end FAILED."""
        self._plans.append(_Plan(_Mode.PARTIAL, keep=k, reason=f"injected failure after {k} files"))

    def corrupt_next(self) -> None:
        """Make the next task write corrupted copies while claiming every file VERIFIED."""
        self._plans.append(_Plan(_Mode.CORRUPT))

    def hang_next(self) -> None:
        """Make the next task never finish, so :meth:`wait` reaches its deadline and cancels it."""
        self._plans.append(_Plan(_Mode.HANG))

    def skip_next(self, *sources: RelPath | str) -> None:
        """Make the next task end SUCCEEDED but report these source paths SKIPPED (not copied)."""
        paths = frozenset(p if isinstance(p, RelPath) else RelPath.parse(p) for p in sources)
        self._plans.append(_Plan(_Mode.SKIP, skip=paths, reason="injected: source skipped"))

    # --- TransferPort ------------------------------------------------------

    def service_checksum(self, source: Endpoint, destination: Endpoint) -> ChecksumAlgorithm | None:
        """``service_algorithm`` when this fake verifies checksums in it, else None."""
        return self.service_algorithm if self.verifies_checksums else None

    def submit(self, request: TransferRequest) -> TransferTask:
        """Create a task for ``request``, or return the existing one for its idempotency key."""
        fault = self.faults.take("submit")
        if fault is not None:
            where = f"{request.source.name} -> {request.destination.name} ({request.label})"
            if fault.transient:
                raise TransientTransferError(f"injected: transfer service unavailable for {where}; retry")
            raise TransferError(f"injected: transfer service refused the request {where}")
        self.submissions += 1
        if request.idempotency_key and request.idempotency_key in self._by_key:
            return TransferTask(self._by_key[request.idempotency_key], request)
        self.tasks_created += 1
        task_id = f"fake-task-{self.tasks_created:04d}"
        plan = self._plans.pop(0) if self._plans else _Plan(_Mode.NORMAL)
        self.tasks[task_id] = FakeTask(task_id, request, self.clock.monotonic(), plan)
        self.requests.append(request)
        if request.idempotency_key:
            self._by_key[request.idempotency_key] = task_id
        return TransferTask(task_id, request)

    def status(self, task_id: str) -> TaskStatus:
        """ACTIVE until the task has run; it runs once its duration has passed on the clock."""
        task = self._task(task_id)
        if (
            task.status is TaskStatus.ACTIVE
            and task.plan.mode is not _Mode.HANG
            and self.clock.monotonic() >= task.submitted_at + self.duration_s
        ):
            self._run(task)
        return task.status

    def wait(self, task_id: str, timeout_s: float) -> TransferResult:
        """Run the task (sleeping through the clock) and return or raise its outcome."""
        task = self._task(task_id)
        if task.status is TaskStatus.ACTIVE:
            remaining = task.submitted_at + self.duration_s - self.clock.monotonic()
            if task.plan.mode is _Mode.HANG or remaining > timeout_s:
                self.clock.sleep(timeout_s)
                self.cancel(task_id)
                raise TransferTimeout(
                    f"transfer task {task_id} ({task.request.label}) did not finish within "
                    f"{timeout_s:g} s and was cancelled; resubmit or raise the timeout"
                )
            if remaining > 0:
                self.clock.sleep(remaining)
            self._run(task)
        if task.status is TaskStatus.CANCELLED:
            raise TransferFailed(f"transfer task {task_id} ({task.request.label}) was cancelled")
        assert task.result is not None
        if task.status is TaskStatus.FAILED and task.plan.raise_on_wait:
            raise TransferFailed(
                f"transfer task {task_id} {task.request.source.name} -> {task.request.destination.name} "
                f"failed: {task.result.reason}"
            )
        return task.result

    def cancel(self, task_id: str) -> None:
        """Cancel the task if it is still ACTIVE (recorded in ``cancelled``)."""
        task = self.tasks.get(task_id)
        if task is not None and task.status is TaskStatus.ACTIVE:
            task.status = TaskStatus.CANCELLED
            self.cancelled.append(task_id)

    # --- internals ---------------------------------------------------------

    def _task(self, task_id: str) -> FakeTask:
        task = self.tasks.get(task_id)
        if task is None:
            raise TransferError(f"transfer task {task_id} is unknown to the fake transfer service")
        return task

    def _run(self, task: FakeTask) -> None:
        plan, request = task.plan, task.request
        outcomes: list[FileOutcome] = []
        moved = 0
        reason: str | None = None
        if plan.mode is _Mode.FAIL:
            task.status = TaskStatus.FAILED
            task.result = TransferResult(task.task_id, TaskStatus.FAILED, (), 0, self.duration_s, plan.reason)
            return
        for index, item in enumerate(request.items):
            if plan.mode is _Mode.PARTIAL and index >= plan.keep:
                reason = plan.reason
                outcomes.append(FileOutcome(item, FileState.FAILED, error=plan.reason))
                continue
            if item.source in plan.skip:
                outcomes.append(FileOutcome(item, FileState.SKIPPED, error=plan.reason))
                continue
            outcome = self._copy(request, item, corrupt=plan.mode is _Mode.CORRUPT)
            if outcome.state is not FileState.VERIFIED:
                reason = reason or outcome.error
            elif outcome.record is not None:
                moved += outcome.record.size
            outcomes.append(outcome)
        task.status = TaskStatus.FAILED if reason is not None else TaskStatus.SUCCEEDED
        task.result = TransferResult(task.task_id, task.status, tuple(outcomes), moved, self.duration_s, reason)

    def _copy(self, request: TransferRequest, item: TransferItem, *, corrupt: bool) -> FileOutcome:
        if not self.storage.is_file(request.source, item.source):
            return FileOutcome(item, FileState.FAILED, error=f"{item.source} not found on {request.source.name}")
        data = self.storage.read(request.source, item.source)
        written = data
        if corrupt and data:
            written = bytes([data[0] ^ 0xFF]) + data[1:]
        self.storage.put(request.destination, item.destination, written)
        size = len(written)
        if not self.verifies_checksums:
            return FileOutcome(item, FileState.VERIFIED, FileRecord(item.destination, size))
        # an honest service compares both ends; in corrupt mode it claims the source's checksum
        algorithm = self.service_algorithm or request.checksum_algorithm
        source_sum = digest(data, algorithm)
        if not corrupt and digest(written, algorithm) != source_sum:
            return FileOutcome(item, FileState.FAILED, error=f"checksum mismatch for {item.destination}")
        record = FileRecord(item.destination, size, source_sum if self.reports_digests else None)
        return FileOutcome(item, FileState.VERIFIED, record, VERIFIED_BY, service_algorithm=self.service_algorithm)


__all__ = ["VERIFIED_BY", "FakeTask", "FakeTransfer"]
