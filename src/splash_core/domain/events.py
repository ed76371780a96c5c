"""Ledger events: the durable record of what is where and how we know it."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from splash_core.domain.errors import InvalidInput
from splash_core.domain.models import Checksum, ChecksumAlgorithm, JobState
from splash_core.domain.paths import RelPath


@attrs.frozen
class LocationVerified:
    """A copy of ``path`` on ``endpoint`` had ``size`` and ``checksum`` when checked.

    ``checksum`` is the digest when one is known (computed by splash, or reported by the
    service that verified the copy). A service that compares checksums at both ends without
    reporting the digest (Globus) leaves it None and names its algorithm in
    ``service_algorithm`` instead; such a copy can only be re-verified later by computing
    fresh checksums of both ends. A size alone is never a verification: one of the two
    must be set.

    Raises:
        InvalidInput: neither ``checksum`` nor ``service_algorithm`` is set.
    """

    endpoint: str
    path: RelPath
    size: int
    checksum: Checksum | None
    verified_by: str
    at: datetime
    task_id: str | None = None
    service_algorithm: ChecksumAlgorithm | None = None

    def __attrs_post_init__(self) -> None:
        if self.checksum is None and self.service_algorithm is None:
            raise InvalidInput(
                f"verification of {self.path} on {self.endpoint} by {self.verified_by} names neither a checksum "
                "nor the algorithm the service compared; a size alone does not verify a copy"
            )

    @property
    def verification(self) -> str:
        """Who verified the copy, and how when no digest is recorded.

        ``"splash"``, or e.g. ``"globus (md5, digest not reported)"``.
        """
        if self.checksum is None and self.service_algorithm is not None:
            return f"{self.verified_by} ({self.service_algorithm.value}, digest not reported)"
        return self.verified_by

    @property
    def checksum_text(self) -> str:
        """The recorded checksum as text (``algorithm:digest``), or ``"not reported"``."""
        return str(self.checksum) if self.checksum is not None else "not reported"


@attrs.frozen
class LocationRemoved:
    """``path`` was deleted from ``endpoint`` (by a prune)."""

    endpoint: str
    path: RelPath
    at: datetime


@attrs.frozen
class JobFinished:
    """An HPC job ended; ``outputs`` were checked to exist when it succeeded."""

    job_id: str
    facility: str
    name: str
    state: JobState
    exit_code: int | None
    at: datetime
    outputs: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    seconds: float | None = None


@attrs.frozen
class Ingested:
    """A dataset was recorded in the catalog under ``catalog_id``."""

    dataset_key: str
    catalog_id: str
    paths: tuple[RelPath, ...]
    at: datetime


class PruneState(enum.Enum):
    """Where a scheduled prune stands."""

    SCHEDULED = "scheduled"
    DONE = "done"
    REFUSED = "refused"


@attrs.frozen
class PruneScheduled:
    """``path`` on ``endpoint`` may go from ``due_at``, once ``check_endpoint`` has a verified copy.

    The copy is at ``check_path`` on ``check_endpoint`` (the same relative path when None).
    """

    endpoint: str
    path: RelPath
    due_at: datetime
    check_endpoint: str
    at: datetime
    check_path: RelPath | None = None

    @property
    def copy_path(self) -> RelPath:
        """Where the copy that must be verified is, relative to ``check_endpoint``."""
        return self.check_path if self.check_path is not None else self.path


@attrs.frozen
class PruneDone:
    """``path`` was deleted from ``endpoint``; its copy on ``copy_endpoint`` was verified just before.

    ``copy_checksum`` is the checksum of that copy computed fresh at the time (which matched
    the ledger's digest, or, for a copy recorded without one, the fresh checksum of ``path``).
    """

    endpoint: str
    path: RelPath
    copy_endpoint: str
    copy_checksum: Checksum
    at: datetime


@attrs.frozen
class PruneRefused:
    """A due prune was refused; the file stays and the prune stays scheduled."""

    endpoint: str
    path: RelPath
    reason: str
    at: datetime


@attrs.frozen
class TapeArchived:
    """A file is on tape at ``tape_path`` (inside bundle ``bundle``)."""

    path: RelPath
    source_endpoint: str
    bundle: str
    tape_path: str
    size: int
    at: datetime


class StepState(enum.Enum):
    """The outcome of a pipeline step."""

    STARTED = "started"
    DONE = "done"
    FAILED = "failed"


@attrs.frozen
class StepRecord:
    """The outcome of one step of one pipeline run, keyed for idempotency."""

    key: str
    state: StepState
    at: datetime
    detail: str = ""


LedgerEvent = (
    LocationVerified
    | LocationRemoved
    | JobFinished
    | Ingested
    | PruneScheduled
    | PruneDone
    | PruneRefused
    | TapeArchived
)
