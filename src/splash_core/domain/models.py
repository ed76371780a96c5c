"""Value objects shared by every layer: endpoints, files, transfers, jobs, datasets."""

from __future__ import annotations

import enum
import hashlib
import posixpath
from collections.abc import Mapping
from datetime import datetime

import attrs

from splash_core.domain.errors import InvalidInput
from splash_core.domain.paths import RelPath


class Site(enum.Enum):
    """Whether an endpoint is at the ALS (on site) or elsewhere (NERSC, ALCF, ...)."""

    ON_SITE = "on-site"
    OFF_SITE = "off-site"


class ChecksumAlgorithm(enum.Enum):
    """Checksum algorithms splash_core knows how to compute or record."""

    BLAKE3 = "blake3"
    XXH3_128 = "xxh3_128"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"


def _lower(value: str) -> str:
    return value.lower()


@attrs.frozen
class Checksum:
    """An algorithm and a lowercase hex digest."""

    algorithm: ChecksumAlgorithm
    digest: str = attrs.field(converter=_lower)

    def __str__(self) -> str:
        return f"{self.algorithm.value}:{self.digest}"


def _abs_posix(value: str) -> str:
    if not value.startswith("/"):
        raise InvalidInput(f"root path {value!r} must be absolute")
    return posixpath.normpath(value)


@attrs.frozen
class Endpoint:
    """A place data lives: a storage collection (e.g. a Globus collection) plus a root path.

    Several endpoints may share one collection with different roots.
    """

    name: str
    facility: str
    root_path: str = attrs.field(converter=_abs_posix)
    site: Site
    collection_id: str | None = None
    description: str = ""

    @property
    def off_site(self) -> bool:
        """True when data placed here has left the ALS."""
        return self.site is Site.OFF_SITE

    def full_path(self, path: RelPath) -> str:
        """The absolute path of ``path`` as the collection sees it."""
        return posixpath.join(self.root_path, path.value)

    def __str__(self) -> str:
        return self.name


@attrs.frozen
class FileRecord:
    """What is known about one file on one endpoint."""

    path: RelPath
    size: int
    checksum: Checksum | None = None
    mtime: float | None = None

    def matches(self, other: FileRecord) -> bool:
        """Same size and, where both have one in the same algorithm, the same checksum.

        Two records with no comparable checksum do *not* match: a size alone is
        never proof of a good copy.
        """
        if self.size != other.size or self.checksum is None or other.checksum is None:
            return False
        return self.checksum == other.checksum


# --- transfers ------------------------------------------------------------


@attrs.frozen
class TransferItem:
    """One file of a batch: where it comes from and where it goes."""

    source: RelPath
    destination: RelPath


@attrs.frozen
class TransferRequest:
    """A batch of files to move between two endpoints as one task."""

    source: Endpoint
    destination: Endpoint
    items: tuple[TransferItem, ...]
    label: str
    idempotency_key: str
    checksum_algorithm: ChecksumAlgorithm = ChecksumAlgorithm.BLAKE3

    @property
    def total_files(self) -> int:
        """Number of files in the batch."""
        return len(self.items)


class TaskStatus(enum.Enum):
    """Lifecycle of a transfer task."""

    ACTIVE = "ACTIVE"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        """Whether the task will not change any more."""
        return self is not TaskStatus.ACTIVE


@attrs.frozen
class TransferTask:
    """A handle to a submitted transfer."""

    task_id: str
    request: TransferRequest


class FileState(enum.Enum):
    """What happened to one file of a batch."""

    VERIFIED = "verified"
    FAILED = "failed"
    SKIPPED = "skipped"


@attrs.frozen
class FileOutcome:
    """The result of one file of a batch.

    ``record`` is the destination copy as verified (size, and checksum when the service
    reports one); ``verified_by`` names who computed the checksum comparison (``"splash"``
    or the service, e.g. ``"globus"``). ``service_algorithm`` is the algorithm the service
    compared source and destination in when it says so; a service that compares checksums
    without reporting the digest (Globus) leaves ``record.checksum`` None and sets this.
    """

    item: TransferItem
    state: FileState
    record: FileRecord | None = None
    verified_by: str | None = None
    error: str | None = None
    service_algorithm: ChecksumAlgorithm | None = None


@attrs.frozen
class TransferResult:
    """The final state of a transfer task and each of its files."""

    task_id: str
    status: TaskStatus
    files: tuple[FileOutcome, ...]
    bytes_transferred: int = 0
    seconds: float = 0.0
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """True only when the task succeeded and every file verified."""
        return self.status is TaskStatus.SUCCEEDED and all(f.state is FileState.VERIFIED for f in self.files)


# --- jobs -----------------------------------------------------------------


class JobState(enum.Enum):
    """Slurm-like job states; UNKNOWN means the service could not say (yet)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    UNKNOWN = "UNKNOWN"

    @property
    def terminal(self) -> bool:
        """Whether the job will not change any more."""
        return self not in (JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN)


@attrs.frozen
class OutputSpec:
    """A file or folder a job must leave behind, on a named endpoint."""

    endpoint: str
    path: RelPath


@attrs.frozen
class JobSpec:
    """What to run on an HPC facility.

    ``kind`` picks the facility's job template (``reconstruct``, ``multires``,
    ``ptycho``, ...); ``parameters`` fill it. ``expected_outputs`` must exist
    after the job for it to count as a success.
    """

    name: str
    kind: str
    parameters: Mapping[str, str] = attrs.field(factory=dict)
    expected_outputs: tuple[OutputSpec, ...] = ()
    time_limit_s: float = 3600.0
    idempotency_key: str = ""


@attrs.frozen
class JobStatus:
    """The state of a job as last seen."""

    job_id: str
    state: JobState
    exit_code: int | None = None
    reason: str | None = None
    log_tail: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def succeeded(self) -> bool:
        """COMPLETED with exit code 0 (outputs are checked separately)."""
        return self.state is JobState.COMPLETED and self.exit_code == 0


# --- retention, datasets, tape ---------------------------------------------


@attrs.frozen
class RetentionPolicy:
    """Files on ``endpoint`` may go after ``days``, once a verified copy exists on ``check_endpoint``."""

    endpoint: str
    days: float
    check_endpoint: str

    def __attrs_post_init__(self) -> None:
        if self.days < 0:
            raise InvalidInput(f"retention for {self.endpoint}: days must be >= 0, got {self.days}")


@attrs.frozen
class Dataset:
    """Files from one beamline that travel and are catalogued together."""

    beamline: str
    files: tuple[RelPath, ...]
    export_controlled: bool = False
    metadata: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def key(self) -> str:
        """A stable identity for the dataset (beamline + sorted file list)."""
        h = hashlib.sha256(self.beamline.encode())
        for f in sorted(self.files):
            h.update(b"\0" + f.value.encode("utf-8", "surrogateescape"))
        return h.hexdigest()[:24]


class ArchiveMethod(enum.Enum):
    """How a bundle goes to tape."""

    HTAR = "htar"
    HSI_CPUT = "hsi-cput"


@attrs.frozen
class TapeBundle:
    """Files that go to tape together (an ``htar`` archive or a single ``hsi cput``)."""

    name: str
    method: ArchiveMethod
    members: tuple[FileRecord, ...]
    proposal: str
    year: int
    cycle: int

    @property
    def size(self) -> int:
        """Total bytes of the members."""
        return sum(m.size for m in self.members)


@attrs.frozen
class TapeReceipt:
    """Where a bundle was written on tape, and what was verified there."""

    bundle: str
    tape_path: str
    members: tuple[FileRecord, ...]
    job_id: str | None = None
    verified: bool = False


@attrs.frozen
class CatalogRecord:
    """A dataset as the catalog sees it."""

    dataset_key: str
    beamline: str
    files: tuple[FileRecord, ...]
    location: str
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    derived_from: tuple[str, ...] = ()
    kind: str = "raw"


@attrs.frozen
class ScheduledTask:
    """Something to run at a time (a prune, an archive, a flight check)."""

    kind: str
    run_at: datetime
    key: str
    payload: Mapping[str, str] = attrs.field(factory=dict)
