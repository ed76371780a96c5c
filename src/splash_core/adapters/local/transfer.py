"""Copies between endpoints that are local folders, verified by checksum.

Each source file is read once: every chunk is hashed and written from the same buffer. The
copy goes to a hidden temporary name in the destination folder, is fsynced with the source's
mtime and mode, renamed over the destination name, and then checked *after* the rename: the
file now at the destination name must be the very inode we wrote and fsynced, with the
source's size. The recorded checksum is the hash of the bytes read from the source, which are
exactly the bytes written (every ``write`` is checked for length and ``fsync`` succeeded).

Large files (:class:`_CopyPipeline`) are preallocated, and the kernel is asked to start
writing each few MiB to storage as soon as they are written, so the closing fsync finds
almost nothing left to do instead of the whole file; when a CPU is spare, a helper thread
hashes each chunk while the copying thread writes it and reads the next.

Why not re-read the destination by default: right after the write its pages sit in the page
cache, so a re-read hashes the same memory again and proves nothing more, while reading past
the cache doubles the disk traffic. ``verify="reread"`` does that anyway for the cautious: it
drops the file's cached pages and re-hashes it from storage.

Tasks live in the SQLite database (keyed by idempotency key, so a resubmission returns the
same task and copies nothing twice) and run in a background thread of the submitting process,
with a small thread pool copying several files at once (many small files gain the most).
A task whose process ended before it finished counts as FAILED ("lost"); resubmitting the same
request resumes it under the same task id (removing the partial copies left behind, whose
temporary names carry the task id).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import errno
import functools
import glob
import logging
import os
import queue
import secrets
import sqlite3
import stat as stat_mod
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, cast

import attrs

from splash_core.adapters.local._convert import dumps, loads
from splash_core.adapters.local._fs import is_inside
from splash_core.adapters.local._proc import is_running, process_start
from splash_core.adapters.local.clock import SystemClock
from splash_core.adapters.local.database import DatabaseLike, as_database
from splash_core.adapters.local.hashing import (
    DEFAULT_BUFFER_SIZE,
    MIB,
    Hasher,
    clamp_buffer_size,
    hash_file,
    new_hasher,
)
from splash_core.domain.errors import TransferError, TransferFailed, TransferTimeout
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
from splash_core.ports.clock import ClockPort
from splash_core.ports.transfer import TransferPort

logger = logging.getLogger(__name__)

VERIFIED_BY = "splash-local"
TEMP_SUFFIX = ".splash-part"
_CANCEL_POLL_S = 0.25
_REPORTED_FAILURES = 10

# Files at least this big are preallocated and written back as they are copied, and may be hashed
# on a helper thread; smaller ones (a few ms each) have too little to overlap to pay for that.
_LARGE_FILE = 8 * MIB
# Chunk buffers per copying thread when hashing beside it: one being hashed, one being written,
# one spare so a hash that is late by a chunk (a busy CPU) does not stall the reads.
_RING = 3
# Start writeback of every this many bytes written; 2, 8 and 32 MiB measured alike within the
# noise on ext4, and 8 MiB costs ~40 ms of system calls per GiB.
_WRITEBACK_EVERY = 8 * MIB

VerifyMode = Literal["written", "reread"]


class _Cancelled(Exception):
    """Raised inside a copy when its task was cancelled."""


@attrs.define
class _Running:
    """A task being copied by this process."""

    resume: bool = False
    cancel: threading.Event = attrs.field(factory=threading.Event)
    done: threading.Event = attrs.field(factory=threading.Event)


class _Pacer:
    """Spreads the bytes of every copy of one :class:`LocalTransfer` evenly at a byte rate."""

    def __init__(self, bytes_per_s: float) -> None:
        self._rate = bytes_per_s
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def take(self, n: int, cancel: threading.Event) -> None:
        """Wait until ``n`` more bytes fit under the rate (or raise when cancelled meanwhile)."""
        with self._lock:
            now = time.monotonic()
            self._next = max(self._next, now) + n / self._rate
            delay = self._next - now
        if cancel.wait(delay):
            raise _Cancelled


class _CopyPipeline:
    """Copies one open file into another chunk by chunk, hashing every chunk it writes.

    Each chunk is read once into a buffer, and that buffer is both hashed and written, so the
    bytes hashed are exactly the bytes written. With ``hash_beside`` (and two or more buffers)
    the copy is a two-stage pipeline: the calling thread writes chunk i and reads chunk i+1
    while a helper thread hashes chunk i (blake3, hashlib and xxhash release the GIL while
    hashing a large buffer, so the hash runs on another CPU). The buffers form a ring, and one
    is refilled only after its previous chunk was written (by the calling thread) and hashed
    (by the helper). Files of at least ``large_file`` bytes are also preallocated and written
    back every ``writeback_every`` bytes.

    Args:
        hasher: fed every byte copied, in order.
        buffers: the chunk buffers, all the same size.
        cancel: checked before every chunk; once set, the copy raises :class:`_Cancelled`.
        pacer: the byte-rate limit shared by the copies of one transfer, or None.
        hash_beside: hash on a helper thread (worth it only while a CPU would otherwise idle).
    """

    def __init__(
        self,
        hasher: Hasher,
        buffers: Sequence[memoryview],
        cancel: threading.Event,
        pacer: _Pacer | None = None,
        *,
        hash_beside: bool = False,
        large_file: int = _LARGE_FILE,
        writeback_every: int = _WRITEBACK_EVERY,
    ) -> None:
        self._hasher = hasher
        self._buffers = buffers
        self._cancel = cancel
        self._pacer = pacer
        self._hash_beside = hash_beside and len(buffers) > 1
        self._large_file = large_file
        self._writeback_every = writeback_every

    def copy(self, src_fd: int, dst_fd: int, expected_size: int) -> int:
        """Copy from ``src_fd`` to ``dst_fd`` until the end of the source; return the bytes copied.

        ``expected_size`` (the source's size when it was opened) only sizes the preallocation
        and picks the hints: the copy always runs to the end of the file, and the caller compares.

        Raises:
            _Cancelled: the task was cancelled.
            OSError: reading or writing failed.
        """
        large = expected_size >= self._large_file
        if large:
            _preallocate(dst_fd, expected_size)
        hashing = _HashThread(self._hasher) if self._hash_beside else _HashInline(self._hasher)
        total = written_back = 0
        try:
            for buffer in _cycle(self._buffers):
                if hashing.pending == len(self._buffers):
                    hashing.wait_oldest()  # this buffer's last chunk is hashed (and written): refill it
                chunk = self._next_chunk(src_fd, buffer)
                if not chunk:
                    break
                hashing.submit(chunk)
                _write_all(dst_fd, chunk)
                total += len(chunk)
                if large and total - written_back >= self._writeback_every:
                    _start_writeback(dst_fd, written_back, total - written_back)
                    written_back = total
            while hashing.pending:
                hashing.wait_oldest()
        finally:
            hashing.close()  # also on errors: the buffers are reused once this returns
        return total

    def _next_chunk(self, src_fd: int, buffer: memoryview) -> memoryview:
        n = os.readv(src_fd, [buffer])
        if n:
            if self._pacer is not None:
                self._pacer.take(n, self._cancel)
            if self._cancel.is_set():
                raise _Cancelled
        return buffer[:n]


class _HashInline:
    """Hashes each chunk on the copying thread as it is submitted (so nothing is ever pending)."""

    pending = 0

    def __init__(self, hasher: Hasher) -> None:
        self._hasher = hasher

    def submit(self, chunk: memoryview) -> None:
        """Hash ``chunk`` now."""
        self._hasher.update(chunk)

    def wait_oldest(self) -> None:
        """Nothing to wait for."""

    def close(self) -> None:
        """Nothing to stop."""


class _HashThread:
    """Feeds chunks to a hasher on a helper thread, in the order submitted."""

    def __init__(self, hasher: Hasher) -> None:
        self.pending = 0
        self._todo: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
        self._hashed: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, args=(hasher,), name="splash-hash", daemon=True)
        self._thread.start()

    def submit(self, chunk: memoryview) -> None:
        """Hash ``chunk`` after the ones before; its buffer must stay untouched until it is hashed."""
        self._todo.put(chunk)
        self.pending += 1

    def wait_oldest(self) -> None:
        """Wait until the oldest chunk not waited for is hashed; raise what hashing it raised."""
        error = self._hashed.get()
        self.pending -= 1
        if error is not None:
            raise error

    def close(self) -> None:
        """Hash what was submitted, then end the thread (after an error: end it at once)."""
        self._todo.put(None)
        self._thread.join()

    def _run(self, hasher: Hasher) -> None:
        while (chunk := self._todo.get()) is not None:
            try:
                hasher.update(chunk)
            except BaseException as exc:  # raised in the copying thread by wait_oldest
                self._hashed.put(exc)
                return
            self._hashed.put(None)


class _CpuBudget:
    """Counts the CPUs this object's copies keep busy, to give hash threads only spare ones.

    A helper thread hashing beside a copy speeds up one large file when a CPU would otherwise
    idle, but when the copy pool already keeps every CPU busy it only adds thread hand-offs
    and cache traffic (measured: 64 files of 16 MiB, 4 workers, 2 CPUs: ~10 % slower, ~30 %
    more CPU time).
    """

    def __init__(self, cpus: int) -> None:
        self._free = cpus
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def copy(self, *, wants_helper: bool) -> Iterator[bool]:
        """Count one copy while the block runs; yield whether it may use a hash thread too."""
        with self._lock:
            helper = wants_helper and self._free >= 2
            taken = 2 if helper else 1
            self._free -= taken
        try:
            yield helper
        finally:
            with self._lock:
                self._free += taken


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _cycle(buffers: Sequence[memoryview]) -> Iterator[memoryview]:
    while True:
        yield from buffers


def _write_all(fd: int, chunk: memoryview) -> None:
    written = os.write(fd, chunk)
    while written < len(chunk):  # short writes happen on signals and some file systems
        written += os.write(fd, chunk[written:])


# --- Linux calls the os module lacks (through libc; no-ops elsewhere) -----------------------

_FALLOC_FL_KEEP_SIZE = 0x01
_SYNC_FILE_RANGE_WRITE = 0x02
_OffsetCall = Callable[[int, int, int, int], int]


@functools.cache
def _libc_call(name: str, argtypes: tuple[Any, ...]) -> _OffsetCall | None:
    """libc's ``name`` with 64-bit offsets, or None off 64-bit Linux or where it is missing."""
    if not sys.platform.startswith("linux") or sys.maxsize < 2**63 - 1:
        return None  # 32-bit builds would need the *64 variants; not worth supporting for a hint
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return cast(_OffsetCall, function)


def _preallocate(fd: int, size: int) -> None:
    """Reserve ``size`` bytes for ``fd`` in one go, without changing its size (a hint).

    The file system then lays the file out as a few extents up front instead of allocating
    during writeback (a 1 GiB copy to ext4 10–25 % faster). Not ``os.posix_fallocate``: where the
    file system cannot preallocate (NFS before 4.2, many FUSE file systems) glibc emulates it
    by writing every block. Any failure, even ENOSPC, is left for the writes to report.
    """
    fallocate = _libc_call("fallocate", (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64))
    if fallocate is not None:
        fallocate(fd, _FALLOC_FL_KEEP_SIZE, 0, size)


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``length`` bytes at ``offset`` of ``fd`` to storage (a hint).

    Without it the dirty pages of a large copy wait for the closing fsync (or the kernel's
    dirty-page limits, GiBs away), which then writes the whole file while the copy waits; with
    it the device writes while the copy goes on, and the fsync (still what makes the copy
    durable) finds almost nothing left. ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` neither waits
    nor consumes write errors, which fsync still reports; PostgreSQL uses it the same way.
    """
    sync_file_range = _libc_call("sync_file_range", (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint))
    if sync_file_range is not None:
        sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


@attrs.frozen
class _Plan:
    """What every file copy of one task needs to know."""

    request: TransferRequest
    tag: str
    source_root: str
    destination_root: str
    cancel: threading.Event
    resume: bool


def _failed(item: TransferItem, reason: str) -> FileOutcome:
    return FileOutcome(item=item, state=FileState.FAILED, error=reason)


def _os_reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the destination is out of space or quota"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied ({exc.filename})"
    return f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc)


class LocalTransfer(TransferPort):
    """Transfer tasks between local-folder endpoints, run by this process.

    Args:
        db: the database (or its file) where tasks are recorded.
        max_workers: files copied at once.
        buffer_size: bytes per read/hash/write chunk (clamped to 1–8 MiB).
        verify: ``"written"`` (default) checks the renamed destination is the inode written,
            fsynced and of the right size, with the checksum of the bytes written;
            ``"reread"`` also re-hashes the destination from storage.
        verified_by: the name put in each outcome's ``verified_by``.
        max_bytes_per_s: limit the copies of this object (all tasks together) to this many
            bytes a second, e.g. to keep an acquisition disk responsive; None for no limit.
        clock: for the times recorded with a task.
    """

    def __init__(
        self,
        db: DatabaseLike,
        *,
        max_workers: int = 4,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        verify: VerifyMode = "written",
        verified_by: str = VERIFIED_BY,
        max_bytes_per_s: float | None = None,
        clock: ClockPort | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        if max_bytes_per_s is not None and max_bytes_per_s <= 0:
            raise ValueError(f"max_bytes_per_s must be positive, got {max_bytes_per_s}")
        self._db = as_database(db)
        self._max_workers = max_workers
        self._buffer_size = clamp_buffer_size(buffer_size)
        self._verify = verify
        self._verified_by = verified_by
        self._pacer = _Pacer(max_bytes_per_s) if max_bytes_per_s is not None else None
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._buffers = threading.local()
        self._cpus = _CpuBudget(_usable_cpus())
        self._pid = os.getpid()
        self._pid_start = process_start(self._pid)

    # --- port ------------------------------------------------------------

    def service_checksum(self, source: Endpoint, destination: Endpoint) -> ChecksumAlgorithm | None:
        """None: copies are hashed in the request's algorithm, which local storage computes too."""
        return None

    def submit(self, request: TransferRequest) -> TransferTask:
        """Record the task and start copying in the background.

        The same idempotency key returns the same task without copying again, unless the
        task was lost (its process ended mid-copy): then it is resumed under the same id.

        Raises:
            TransferError: the request was refused (no files, two files to one destination,
                a missing endpoint root, or the key was used for a different request).
        """
        self._check_request(request)
        now = self._clock.now().isoformat()
        with self._db_errors(f"submit {request.label}"), self._db.transaction() as conn:
            row = conn.execute(
                "SELECT task_id, request, status, owner_pid, owner_start FROM transfer_tasks WHERE idempotency_key = ?",
                (request.idempotency_key,),
            ).fetchone()
            if row is None:
                task_id = str(uuid.uuid4())
                conn.execute(
                    "INSERT INTO transfer_tasks (task_id, idempotency_key, request, status, owner_pid, "
                    "owner_start, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        task_id,
                        request.idempotency_key,
                        dumps(request),
                        TaskStatus.ACTIVE.value,
                        self._pid,
                        self._pid_start,
                        now,
                    ),
                )
                start = True
            else:
                task_id, stored, status, owner_pid, owner_start = row
                if loads(stored, TransferRequest) != request:
                    raise TransferError(
                        f"idempotency key {request.idempotency_key!r} was already used for a different "
                        f"request (task {task_id}); give a changed request a new key"
                    )
                start = status == TaskStatus.ACTIVE.value and self._lost(task_id, owner_pid, owner_start)
                if start:
                    logger.warning("resuming transfer task %s (%s): its process had ended", task_id, request.label)
                    conn.execute(
                        "UPDATE transfer_tasks SET owner_pid = ?, owner_start = ?, cancel_requested = 0 "
                        "WHERE task_id = ?",
                        (self._pid, self._pid_start, task_id),
                    )
            if start:
                self._start(task_id, request, resume=row is not None)
        return TransferTask(task_id=task_id, request=request)

    def status(self, task_id: str) -> TaskStatus:
        """The task's status; a task whose process ended before it finished is FAILED.

        Raises:
            TransferError: no such task.
        """
        status, _result, lost = self._load(task_id)
        return TaskStatus.FAILED if lost else status

    def wait(self, task_id: str, timeout_s: float) -> TransferResult:
        """Wait for the task to end; return its result only if every file verified.

        Raises:
            TransferFailed: a file failed, the task was cancelled, or it was lost; the message
                names the task and the failing files with their reasons.
            TransferTimeout: ``timeout_s`` passed; the task was cancelled.
            TransferError: no such task.
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        running = self._running.get(task_id)
        if running is not None:
            finished = running.done.wait(max(0.0, timeout_s))
        else:
            finished = self._poll_until_done(task_id, deadline)
        if not finished:
            self.cancel(task_id)
            raise TransferTimeout(
                f"transfer task {task_id} did not finish within {timeout_s:g} s and was cancelled; "
                "resubmit with a new idempotency key or a longer timeout"
            )
        status, result, lost = self._load(task_id)
        if lost:
            raise TransferFailed(
                f"transfer task {task_id} was lost: the process copying it ended before it finished; "
                "resubmit the same request (same idempotency key) to resume it"
            )
        if result is None:  # pragma: no cover - terminal rows always carry a result
            raise TransferFailed(f"transfer task {task_id} ended {status.value} without a result")
        if not result.ok:
            raise TransferFailed(_failure_message(result))
        return result

    def cancel(self, task_id: str) -> None:
        """Stop the task: files not yet copied are skipped, partial copies removed.

        Copies already renamed into place stay (they are complete and verified). Returns once
        the task has stopped when this process runs it; otherwise the process running it is
        asked to stop.

        Raises:
            TransferError: no such task.
        """
        running = self._running.get(task_id)
        if running is not None:
            running.cancel.set()
            running.done.wait()
            return
        status, _result, lost = self._load(task_id)
        if status.terminal:
            return
        with self._db_errors(f"cancel task {task_id}"), self._db.transaction() as conn:
            if lost:
                request = loads(
                    conn.execute("SELECT request FROM transfer_tasks WHERE task_id = ?", (task_id,)).fetchone()[0],
                    TransferRequest,
                )
                result = TransferResult(
                    task_id=task_id,
                    status=TaskStatus.CANCELLED,
                    files=tuple(FileOutcome(item, FileState.SKIPPED, error="cancelled") for item in request.items),
                    reason="cancelled after its process had ended",
                )
                self._finish(conn, result)
            else:
                conn.execute("UPDATE transfer_tasks SET cancel_requested = 1 WHERE task_id = ?", (task_id,))

    # --- housekeeping ------------------------------------------------------

    def close(self) -> None:
        """Cancel the tasks this process runs and stop the copy threads."""
        for task_id in list(self._running):
            self.cancel(task_id)
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    # --- internals ---------------------------------------------------------

    @contextlib.contextmanager
    def _db_errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise TransferError(f"local transfer: cannot {what}: database {self._db.path}: {exc}") from exc

    @staticmethod
    def _check_request(request: TransferRequest) -> None:
        if not request.items:
            raise TransferError(f"transfer {request.label!r} has no files; nothing was submitted")
        seen: set[str] = set()
        for item in request.items:
            if item.destination.value in seen:
                raise TransferError(
                    f"transfer {request.label!r} sends two files to {item.destination} on "
                    f"{request.destination.name}; nothing was submitted"
                )
            seen.add(item.destination.value)
        for role, endpoint in (("source", request.source), ("destination", request.destination)):
            if not os.path.isdir(endpoint.root_path):
                raise TransferError(
                    f"{role} endpoint {endpoint.name}: root {endpoint.root_path} is not a folder here; "
                    "is it mounted? nothing was submitted"
                )

    def _lost(self, task_id: str, owner_pid: int | None, owner_start: str | None) -> bool:
        if task_id in self._running:
            return False
        if owner_pid == self._pid and owner_start == self._pid_start:
            # ours, but not running: another LocalTransfer in this process runs it, or it died
            return False
        return not is_running(owner_pid, owner_start)

    def _load(self, task_id: str) -> tuple[TaskStatus, TransferResult | None, bool]:
        with self._db_errors(f"read task {task_id}"), self._db.read() as conn:
            row = conn.execute(
                "SELECT status, result, owner_pid, owner_start FROM transfer_tasks WHERE task_id = ?",
                (task_id,),
            ).fetchone()
        if row is None:
            raise TransferError(f"no local transfer task {task_id!r} in {self._db.path}; check the task id")
        status = TaskStatus(row[0])
        result = loads(row[1], TransferResult) if row[1] is not None else None
        lost = status is TaskStatus.ACTIVE and self._lost(task_id, row[2], row[3])
        return status, result, lost

    def _poll_until_done(self, task_id: str, deadline: float) -> bool:
        delay = 0.01
        while True:
            status, _result, lost = self._load(task_id)
            if status.terminal or lost:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.25)

    def _start(self, task_id: str, request: TransferRequest, *, resume: bool) -> None:
        running = _Running(resume=resume)
        with self._lock:
            self._running[task_id] = running
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self._max_workers, thread_name_prefix="splash-copy"
                )
            pool = self._pool
        thread = threading.Thread(
            target=self._drive, args=(task_id, request, running, pool), name=f"splash-transfer-{task_id[:8]}"
        )
        thread.start()

    def _drive(
        self,
        task_id: str,
        request: TransferRequest,
        running: _Running,
        pool: concurrent.futures.ThreadPoolExecutor,
    ) -> None:
        started = time.monotonic()
        try:
            result = self._copy_all(task_id, request, running, pool)
        except Exception as exc:  # a bug must still end the task, never leave it ACTIVE
            logger.exception("transfer task %s crashed", task_id)
            result = TransferResult(
                task_id=task_id,
                status=TaskStatus.FAILED,
                files=tuple(_failed(item, f"internal error: {exc!r}") for item in request.items),
                reason=f"internal error: {exc!r}",
            )
        result = attrs.evolve(result, seconds=time.monotonic() - started)
        try:
            with self._db.transaction() as conn:
                self._finish(conn, result)
        except sqlite3.Error:
            logger.exception("cannot record the end of transfer task %s", task_id)
        finally:
            with self._lock:
                self._running.pop(task_id, None)
            running.done.set()
        logger.info(
            "transfer task %s (%s) %s: %d files, %d bytes in %.2f s",
            task_id,
            request.label,
            result.status.value,
            len(result.files),
            result.bytes_transferred,
            result.seconds,
        )

    def _finish(self, conn: sqlite3.Connection, result: TransferResult) -> None:
        conn.execute(
            "UPDATE transfer_tasks SET status = ?, result = ?, finished_at = ? WHERE task_id = ?",
            (result.status.value, dumps(result), self._clock.now().isoformat(), result.task_id),
        )

    def _copy_all(
        self,
        task_id: str,
        request: TransferRequest,
        running: _Running,
        pool: concurrent.futures.ThreadPoolExecutor,
    ) -> TransferResult:
        plan = _Plan(
            request=request,
            tag=task_id[:8],
            source_root=os.path.realpath(request.source.root_path),
            destination_root=os.path.realpath(request.destination.root_path),
            cancel=running.cancel,
            resume=running.resume,
        )
        items = request.items
        outcomes: list[FileOutcome | None] = [None] * len(items)
        sizes = [0] * len(items)
        folders: set[str] = set()
        indexes = iter(range(len(items)))
        take = threading.Lock()

        def work() -> None:
            while True:
                with take:
                    index = next(indexes, None)
                if index is None:
                    return
                outcomes[index], sizes[index] = self._copy_one(plan, items[index], folders)

        futures = [pool.submit(work) for _ in range(min(self._max_workers, len(items)))]
        pending = set(futures)
        while pending:
            _done, pending = concurrent.futures.wait(pending, timeout=_CANCEL_POLL_S)
            if pending and not running.cancel.is_set() and self._cancel_requested(task_id):
                running.cancel.set()
        for future in futures:
            future.result()  # re-raise a bug in a worker
        # the renames are durable only once their folders are synced
        for folder in sorted(folders):
            _fsync_dir(folder)
        files = tuple(o if o is not None else _failed(items[i], "not copied") for i, o in enumerate(outcomes))
        if all(f.state is FileState.VERIFIED for f in files):
            status, reason = TaskStatus.SUCCEEDED, None
        elif running.cancel.is_set():
            status, reason = TaskStatus.CANCELLED, "cancelled"
        else:
            failed = sum(1 for f in files if f.state is not FileState.VERIFIED)
            status, reason = TaskStatus.FAILED, f"{failed} of {len(files)} files failed"
        return TransferResult(task_id=task_id, status=status, files=files, bytes_transferred=sum(sizes), reason=reason)

    def _cancel_requested(self, task_id: str) -> bool:
        try:
            with self._db.read() as conn:
                row = conn.execute(
                    "SELECT cancel_requested FROM transfer_tasks WHERE task_id = ?", (task_id,)
                ).fetchone()
        except sqlite3.Error:
            return False
        return bool(row and row[0])

    def _ring(self, count: int) -> list[memoryview]:
        """``count`` chunk buffers of this thread, kept for its next copies."""
        ring: list[memoryview] = getattr(self._buffers, "ring", [])
        while len(ring) < count:
            ring.append(memoryview(bytearray(self._buffer_size)))
        self._buffers.ring = ring
        return ring[:count]

    def _copy_one(self, plan: _Plan, item: TransferItem, folders: set[str]) -> tuple[FileOutcome, int]:
        request = plan.request
        source, destination = request.source, request.destination
        if plan.cancel.is_set():
            return FileOutcome(item=item, state=FileState.SKIPPED, error="cancelled before it was copied"), 0
        src = source.full_path(item.source)
        dst = destination.full_path(item.destination)
        if not is_inside(plan.source_root, src):
            return _failed(item, _escape_reason("source", item.source.value, source, src)), 0
        if not is_inside(plan.destination_root, dst):
            return _failed(item, _escape_reason("destination", item.destination.value, destination, dst)), 0
        try:
            st = os.stat(src)
        except FileNotFoundError:
            return _failed(item, f"source missing: {item.source} does not exist on endpoint {source.name}"), 0
        except OSError as exc:
            return _failed(item, f"cannot read source {item.source} on {source.name}: {_os_reason(exc)}"), 0
        if not stat_mod.S_ISREG(st.st_mode):
            return _failed(item, f"source {item.source} on endpoint {source.name} is not a regular file"), 0
        try:
            record = self._copy_file(plan, item, src, dst, st, folders)
        except _Cancelled:
            return FileOutcome(item=item, state=FileState.SKIPPED, error="cancelled while copying"), 0
        except _CopyFailed as exc:
            return _failed(item, str(exc)), 0
        except OSError as exc:
            return _failed(
                item, f"copying {item.source} to {destination.name}:{item.destination}: {_os_reason(exc)}"
            ), 0
        return FileOutcome(
            item=item, state=FileState.VERIFIED, record=record, verified_by=self._verified_by
        ), record.size

    def _copy_file(
        self, plan: _Plan, item: TransferItem, src: str, dst: str, st: os.stat_result, folders: set[str]
    ) -> FileRecord:
        algorithm = plan.request.checksum_algorithm
        folder, name = os.path.split(dst)
        if os.path.isdir(dst):
            raise _CopyFailed(f"destination {item.destination} on {plan.request.destination.name} is a folder")
        _make_folders(folder, folders)
        short = _short(name)
        if plan.resume:  # partial copies the ended process left behind
            for stale in glob.glob(
                os.path.join(glob.escape(folder), f".{glob.escape(short)}.{plan.tag}-*{TEMP_SUFFIX}")
            ):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(stale)
        temp = os.path.join(folder, f".{short}.{plan.tag}-{secrets.token_hex(4)}{TEMP_SUFFIX}")
        src_fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with contextlib.suppress(OSError):
                os.posix_fadvise(src_fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            dst_fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                hasher = new_hasher(algorithm)
                with self._cpus.copy(wants_helper=st.st_size >= _LARGE_FILE) as hash_beside:
                    buffers = self._ring(_RING if hash_beside else 1)
                    pipeline = _CopyPipeline(hasher, buffers, plan.cancel, self._pacer, hash_beside=hash_beside)
                    size = pipeline.copy(src_fd, dst_fd, st.st_size)
                digest = hasher.hexdigest()
                after = os.fstat(src_fd)
                if size != st.st_size or after.st_size != size or after.st_mtime_ns != st.st_mtime_ns:
                    raise _CopyFailed(
                        f"source {item.source} on {plan.request.source.name} changed while being copied "
                        f"({st.st_size} bytes before, {size} read); copy it again once it is complete"
                    )
                os.fchmod(dst_fd, stat_mod.S_IMODE(st.st_mode))
                os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))
                os.fsync(dst_fd)
                written = os.fstat(dst_fd)
            finally:
                os.close(dst_fd)
            os.replace(temp, dst)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        finally:
            os.close(src_fd)
        # checked after the rename: the name now points at the inode written and synced
        now = os.stat(dst, follow_symlinks=False)
        if (now.st_dev, now.st_ino) != (written.st_dev, written.st_ino) or now.st_size != size:
            raise _CopyFailed(
                f"destination {item.destination} on {plan.request.destination.name} was replaced right "
                "after the copy; something else is writing there"
            )
        checksum = Checksum(algorithm, digest)
        if self._verify == "reread":
            _drop_cache(dst)
            again = hash_file(dst, algorithm, buffer_size=self._buffer_size)
            if again != checksum:
                raise _CopyFailed(
                    f"destination {item.destination} on {plan.request.destination.name} reads back as "
                    f"{again}, not {checksum} as written; check the destination storage"
                )
        return FileRecord(path=item.destination, size=size, checksum=checksum, mtime=st.st_mtime)


class _CopyFailed(Exception):
    """One file could not be copied; the message is its reason."""


def _escape_reason(role: str, path: str, endpoint: Endpoint, full: str) -> str:
    return (
        f"{role} {path} on endpoint {endpoint.name} resolves to {os.path.realpath(full)}, outside its root "
        f"{endpoint.root_path} (a symlink?); refused"
    )


def _short(name: str) -> str:
    # keep the temporary name within the 255-byte limit however long the real name is
    raw = name.encode("utf-8", "surrogateescape")
    return name if len(raw) <= 200 else raw[:200].decode("utf-8", "ignore")


def _make_folders(folder: str, created: set[str]) -> None:
    """Create ``folder`` and missing parents; remember each parent whose entries changed."""
    if folder in created or os.path.isdir(folder):
        created.add(folder)
        return
    missing = []
    current = folder
    while not os.path.isdir(current) and current not in ("/", ""):
        missing.append(current)
        current = os.path.dirname(current)
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
        created.add(os.path.dirname(path))
    created.add(folder)


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        logger.warning("cannot fsync folder %s: %s", folder, exc)
    finally:
        os.close(fd)


def _drop_cache(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def _failure_message(result: TransferResult) -> str:
    bad = [f for f in result.files if f.state is not FileState.VERIFIED]
    shown = "; ".join(f"{f.item.source}: {f.error or f.state.value}" for f in bad[:_REPORTED_FAILURES])
    more = f"; and {len(bad) - _REPORTED_FAILURES} more" if len(bad) > _REPORTED_FAILURES else ""
    return (
        f"transfer task {result.task_id} ended {result.status.value}: {len(bad)} of {len(result.files)} "
        f"files not verified: {shown}{more}"
    )
