"""The chunked copy of LocalTransfer: same bytes written as hashed, whatever the size, cancel or failure."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from splash_core.adapters.local import LocalTransfer, hash_file
from splash_core.adapters.local import transfer as transfer_module
from splash_core.adapters.local.hashing import MIB, BytesLike, Hasher
from splash_core.adapters.local.transfer import (
    _LARGE_FILE,
    TEMP_SUFFIX,
    _Cancelled,
    _CopyPipeline,
    _CpuBudget,
    _HashThread,
    _preallocate,
    _start_writeback,
)
from splash_core.domain.models import ChecksumAlgorithm, Endpoint, Site, TaskStatus, TransferItem, TransferRequest
from splash_core.domain.paths import RelPath

BUFFER = 4096


def hash_threads() -> list[threading.Thread]:
    """The pipeline's helper threads still alive."""
    return [t for t in threading.enumerate() if t.name == "splash-hash"]


def copy_file(
    tmp_path: Path,
    data: bytes,
    *,
    buffers: int = 3,
    hash_beside: bool = True,
    large_file: int = 0,
    hasher: Hasher | None = None,
    cancel: threading.Event | None = None,
) -> tuple[int, bytes, str]:
    """Copy ``data`` through a pipeline of small buffers; return bytes copied, the copy and its digest."""
    source, copy = tmp_path / "source", tmp_path / "copy"
    source.write_bytes(data)
    real = blake3.blake3()
    pipeline = _CopyPipeline(
        hasher or real,
        [memoryview(bytearray(BUFFER)) for _ in range(buffers)],
        cancel or threading.Event(),
        hash_beside=hash_beside,
        large_file=large_file,
        writeback_every=2 * BUFFER,
    )
    src_fd = os.open(source, os.O_RDONLY)
    dst_fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        size = pipeline.copy(src_fd, dst_fd, len(data))
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    return size, copy.read_bytes(), real.hexdigest()


SIZES = [0, 1, BUFFER - 1, BUFFER, BUFFER + 1, 3 * BUFFER, 3 * BUFFER + 17, 10 * BUFFER + 5]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("buffers", "hash_beside", "large_file"),
    [(3, True, 0), (2, True, 0), (1, True, 0), (3, False, 0), (1, False, 1 << 40)],
    ids=["ring of 3", "ring of 2", "one buffer", "inline hash", "small file"],
)
def test_the_copy_is_the_source_and_the_digest_its_hash(
    tmp_path: Path, size: int, buffers: int, hash_beside: bool, large_file: int
) -> None:
    """Empty, one-byte, exactly-one-buffer and ragged sizes copy and hash alike, pipelined or not."""
    data = os.urandom(size)
    copied, copy, digest = copy_file(tmp_path, data, buffers=buffers, hash_beside=hash_beside, large_file=large_file)
    assert copied == size
    assert copy == data
    assert digest == blake3.blake3(data).hexdigest()
    assert hash_threads() == []


class _CancelAfter:
    """A hasher that sets ``cancel`` once it has seen ``chunks`` chunks."""

    def __init__(self, cancel: threading.Event, chunks: int) -> None:
        self._cancel, self._left = cancel, chunks

    def update(self, data: BytesLike, /) -> None:
        self._left -= 1
        if self._left == 0:
            self._cancel.set()

    def hexdigest(self) -> str:
        return ""


@pytest.mark.parametrize("hash_beside", [True, False])
def test_a_cancel_in_the_middle_stops_the_copy_and_its_thread(tmp_path: Path, hash_beside: bool) -> None:
    """A cancel seen between chunks raises _Cancelled and leaves no helper thread behind."""
    cancel = threading.Event()
    with pytest.raises(_Cancelled):
        copy_file(
            tmp_path, os.urandom(50 * BUFFER), hasher=_CancelAfter(cancel, 3), cancel=cancel, hash_beside=hash_beside
        )
    assert len((tmp_path / "copy").read_bytes()) < 50 * BUFFER
    assert hash_threads() == []


class _Broken:
    """A hasher that fails on chunk number ``fail_on`` (from 1)."""

    def __init__(self, fail_on: int) -> None:
        self._left = fail_on

    def update(self, data: BytesLike, /) -> None:
        self._left -= 1
        if self._left == 0:
            raise MemoryError("no room to hash")

    def hexdigest(self) -> str:
        return ""


@pytest.mark.parametrize("fail_on", [1, 2, 20], ids=["first", "second", "last"])
def test_a_failing_hash_fails_the_copy(tmp_path: Path, fail_on: int) -> None:
    """An error raised on the helper thread, even for the last chunk, is raised by the copy; the thread ends."""
    with pytest.raises(MemoryError, match="no room"):
        copy_file(tmp_path, os.urandom(20 * BUFFER), hasher=_Broken(fail_on))
    assert hash_threads() == []


def test_hash_threads_get_only_spare_cpus() -> None:
    """With two CPUs one copy may hash beside itself; copies started meanwhile may not."""
    budget = _CpuBudget(2)
    with budget.copy(wants_helper=True) as first, budget.copy(wants_helper=True) as second:
        assert (first, second) == (True, False)
    with budget.copy(wants_helper=False) as small, budget.copy(wants_helper=True) as large:
        assert (small, large) == (False, False)
    with budget.copy(wants_helper=True) as again:
        assert again


def test_the_kernel_hints_change_nothing_visible(tmp_path: Path) -> None:
    """Preallocation keeps the size; both hints ignore what they cannot do (a bad descriptor)."""
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        _preallocate(fd, 4 * MIB)
        assert os.fstat(fd).st_size == 0
        os.write(fd, b"abc")
        _start_writeback(fd, 0, 3)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"abc"
    _preallocate(-1, MIB)
    _start_writeback(-1, 0, MIB)


# --- through LocalTransfer, with files big enough for the pipeline -------------------------------


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """The source and destination endpoint folders."""
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    return tmp_path / "src", tmp_path / "dst"


class _CountedHashThread(_HashThread):
    """A hash thread that counts how many were started."""

    started = 0

    def __init__(self, hasher: Hasher) -> None:
        type(self).started += 1
        super().__init__(hasher)


@pytest.fixture
def hash_thread_count(monkeypatch: pytest.MonkeyPatch) -> type[_CountedHashThread]:
    """Count the hash threads, with CPUs to spare for them whatever runs the tests."""
    monkeypatch.setattr(transfer_module, "_usable_cpus", lambda: 8)
    monkeypatch.setattr(transfer_module, "_HashThread", _CountedHashThread)
    _CountedHashThread.started = 0
    return _CountedHashThread


@pytest.fixture
def transfer(tmp_path: Path, hash_thread_count: type[_CountedHashThread]) -> Iterator[LocalTransfer]:
    """A transfer adapter with 1 MiB buffers, closed after the test."""
    port = LocalTransfer(tmp_path / "ws" / "splash.db", buffer_size=MIB)
    yield port
    port.close()


def request(src: Path, dst: Path, name: str, key: str = "k") -> TransferRequest:
    """A request copying ``name`` between the two folders."""
    return TransferRequest(
        Endpoint("src", "als", str(src), Site.ON_SITE),
        Endpoint("dst", "nersc", str(dst), Site.OFF_SITE),
        (TransferItem(RelPath.parse(name), RelPath.parse(name)),),
        "pipeline test",
        key,
    )


@pytest.mark.parametrize("size", [_LARGE_FILE, _LARGE_FILE + 3 * MIB + 12345])
def test_a_large_file_is_copied_verified_and_keeps_its_mtime(
    folders: tuple[Path, Path], transfer: LocalTransfer, hash_thread_count: type[_CountedHashThread], size: int
) -> None:
    """Large files (a whole number of buffers or not), hashed beside the copy, arrive intact with checksum and mtime."""
    src, dst = folders
    data = os.urandom(size)
    (src / "big.h5").write_bytes(data)
    os.utime(src / "big.h5", ns=(1_600_000_000_000_000_001, 1_600_000_000_123_456_789))
    result = transfer.wait(transfer.submit(request(src, dst, "big.h5")).task_id, 60)
    (outcome,) = result.files
    assert (dst / "big.h5").read_bytes() == data
    assert (dst / "big.h5").stat().st_mtime_ns == 1_600_000_000_123_456_789
    assert outcome.record is not None
    assert outcome.record.size == size
    assert outcome.record.checksum == hash_file(src / "big.h5", ChecksumAlgorithm.BLAKE3)
    assert [p for p in dst.iterdir() if p.name.endswith(TEMP_SUFFIX)] == []
    assert hash_thread_count.started == 1
    assert hash_threads() == []


def test_cancelling_a_large_copy_midway_leaves_no_temporary_file(
    tmp_path: Path, folders: tuple[Path, Path], hash_thread_count: type[_CountedHashThread]
) -> None:
    """A cancel while a large file is half copied removes its temporary copy and ends the task CANCELLED."""
    src, dst = folders
    (src / "big.h5").write_bytes(os.urandom(_LARGE_FILE + MIB))
    slow = LocalTransfer(tmp_path / "ws" / "splash.db", buffer_size=MIB, max_bytes_per_s=4 * MIB)
    try:
        task = slow.submit(request(src, dst, "big.h5"))
        temp = None
        for _ in range(500):
            temps = [p for p in dst.iterdir() if p.name.endswith(TEMP_SUFFIX)]
            if temps and temps[0].stat().st_size >= MIB:  # under way: at least one chunk written
                temp = temps[0]
                break
            time.sleep(0.01)
        assert temp is not None, "the copy never started"
        slow.cancel(task.task_id)
        assert slow.status(task.task_id) is TaskStatus.CANCELLED
    finally:
        slow.close()
    assert list(dst.iterdir()) == []
    assert hash_thread_count.started == 1
    assert hash_threads() == []
