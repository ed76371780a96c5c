"""Moving batches of files between endpoints (Globus, local copies, ...)."""

from __future__ import annotations

from typing import Protocol

from splash_core.domain.models import (
    ChecksumAlgorithm,
    Endpoint,
    TaskStatus,
    TransferRequest,
    TransferResult,
    TransferTask,
)


class TransferPort(Protocol):
    """Submit one task per batch, wait for it, cancel it.

    Implementations must never report a file as VERIFIED unless its size and
    checksum at the destination were checked against the source, and must
    raise (not return) when the task as a whole failed.
    """

    def service_checksum(self, source: Endpoint, destination: Endpoint) -> ChecksumAlgorithm | None:
        """The algorithm in which the service itself compares both ends of every file it copies.

        A service that checksums source and destination and reports a file VERIFIED only
        when they match returns that algorithm (Globus: MD5), whatever the request's
        ``checksum_algorithm``; its outcomes then set ``service_algorithm`` (and carry a
        digest only if the service reports one). Callers may accept such a verification
        when they cannot checksum the files themselves. None when the service only copies,
        or verifies only in the request's algorithm, which the caller must then be able to
        compute too.
        """
        ...

    def submit(self, request: TransferRequest) -> TransferTask:
        """Start a transfer of every item of ``request`` as one task.

        Resubmitting a request with the same ``idempotency_key`` must not start a
        second copy of the same task.

        Raises:
            TransientTransferError: the service is unavailable; retry.
            TransferError: the request was refused.
        """
        ...

    def status(self, task_id: str) -> TaskStatus:
        """The task's current status."""
        ...

    def wait(self, task_id: str, timeout_s: float) -> TransferResult:
        """Wait for the task to end and return each file's outcome.

        Raises:
            TransferFailed: the task failed or hit a fatal event (names task and reason).
            TransferTimeout: the deadline passed; the task was cancelled.
        """
        ...

    def cancel(self, task_id: str) -> None:
        """Cancel the task if it is still running."""
        ...
