"""Local transfers: atomic placement, metadata, symlink refusal, persistence across instances."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from splash_core.adapters.local import LocalTransfer, hash_file
from splash_core.adapters.local.transfer import TEMP_SUFFIX
from splash_core.domain.errors import TransferError, TransferFailed
from splash_core.domain.models import (
    ChecksumAlgorithm,
    Endpoint,
    FileState,
    Site,
    TaskStatus,
    TransferItem,
    TransferRequest,
)
from splash_core.domain.paths import RelPath

P = RelPath.parse


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """The source endpoint's folder."""
    (tmp_path / "src").mkdir()
    return tmp_path / "src"


@pytest.fixture
def dst(tmp_path: Path) -> Path:
    """The destination endpoint's folder."""
    (tmp_path / "dst").mkdir()
    return tmp_path / "dst"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The database file."""
    return tmp_path / "ws" / "splash.db"


@pytest.fixture
def transfer(db: Path) -> Iterator[LocalTransfer]:
    """A transfer adapter, closed after the test."""
    port = LocalTransfer(db, max_workers=2)
    yield port
    port.close()


def request(src: Path, dst: Path, *pairs: tuple[str, str], key: str = "k") -> TransferRequest:
    """A request between the two folders."""
    return TransferRequest(
        Endpoint("src", "als", str(src), Site.ON_SITE),
        Endpoint("dst", "nersc", str(dst), Site.OFF_SITE),
        tuple(TransferItem(P(a), P(b)) for a, b in pairs),
        "unit test",
        key,
    )


def temp_files(folder: Path) -> list[Path]:
    """Temporary copies anywhere below ``folder``."""
    return [p for p in folder.rglob("*") if p.name.endswith(TEMP_SUFFIX)]


def eventually(condition: object, timeout_s: float = 5.0) -> None:
    """Wait until ``condition()`` is true."""
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_copy_is_written_under_a_temporary_name_then_renamed(src: Path, dst: Path, db: Path) -> None:
    """While a copy is under way only a hidden temporary file exists; cancelling removes it."""
    (src / "scan.h5").write_bytes(b"x" * 4096)
    slow = LocalTransfer(db, max_bytes_per_s=1.0)
    try:
        task = slow.submit(request(src, dst, ("scan.h5", "raw/scan.h5")))
        eventually(lambda: temp_files(dst))
        (temp,) = temp_files(dst)
        assert temp.parent == dst / "raw"
        assert temp.name.startswith(".scan.h5.")
        assert not (dst / "raw" / "scan.h5").exists()
        slow.cancel(task.task_id)
        assert temp_files(dst) == []
        assert not (dst / "raw" / "scan.h5").exists()
        assert slow.status(task.task_id) is TaskStatus.CANCELLED
    finally:
        slow.close()


def test_mtime_mode_and_checksum_are_those_of_the_source(src: Path, dst: Path, transfer: LocalTransfer) -> None:
    """The copy keeps the source's mtime (to the nanosecond) and mode; the checksum is of the bytes."""
    data = os.urandom(3 * 1024 * 1024 + 11)
    source = src / "big.h5"
    source.write_bytes(data)
    source.chmod(0o640)
    os.utime(source, ns=(1_600_000_000_123_456_789, 1_600_000_000_987_654_321))
    task = transfer.submit(request(src, dst, ("big.h5", "big.h5")))
    (outcome,) = transfer.wait(task.task_id, 30).files
    copy = dst / "big.h5"
    assert copy.read_bytes() == data
    assert copy.stat().st_mtime_ns == 1_600_000_000_987_654_321
    assert copy.stat().st_mode & 0o777 == 0o640
    assert outcome.record is not None
    assert outcome.record.checksum == hash_file(source, ChecksumAlgorithm.BLAKE3)
    assert outcome.record.mtime == pytest.approx(1_600_000_000.987654321)
    assert outcome.verified_by == "splash-local"
    assert temp_files(dst) == []


def test_a_source_symlink_leading_out_of_the_root_is_refused(
    tmp_path: Path, src: Path, dst: Path, transfer: LocalTransfer
) -> None:
    """A source link to a file outside the source root fails with a reason; nothing is copied."""
    (tmp_path / "secret.txt").write_text("not yours")
    (src / "innocent.txt").symlink_to(tmp_path / "secret.txt")
    (src / "fine.txt").write_text("fine")
    task = transfer.submit(request(src, dst, ("innocent.txt", "innocent.txt"), ("fine.txt", "fine.txt")))
    with pytest.raises(TransferFailed, match=r"innocent.txt.*outside"):
        transfer.wait(task.task_id, 30)
    assert not (dst / "innocent.txt").exists()
    assert transfer.status(task.task_id) is TaskStatus.FAILED


def test_a_source_symlink_inside_the_root_is_copied_as_a_file(src: Path, dst: Path, transfer: LocalTransfer) -> None:
    """A link to a file in the same root is followed; the copy is a regular file."""
    (src / "real.txt").write_text("content")
    (src / "alias.txt").symlink_to(src / "real.txt")
    task = transfer.submit(request(src, dst, ("alias.txt", "alias.txt")))
    assert transfer.wait(task.task_id, 30).ok
    assert not (dst / "alias.txt").is_symlink()
    assert (dst / "alias.txt").read_text() == "content"


def test_a_destination_leading_out_of_the_root_is_refused(
    tmp_path: Path, src: Path, dst: Path, transfer: LocalTransfer
) -> None:
    """A destination folder that is a link to the outside is not written through."""
    (tmp_path / "elsewhere").mkdir()
    (dst / "out").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (src / "a.txt").write_text("a")
    task = transfer.submit(request(src, dst, ("a.txt", "out/a.txt")))
    with pytest.raises(TransferFailed, match="outside"):
        transfer.wait(task.task_id, 30)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_reread_verification_hashes_the_destination_again(src: Path, dst: Path, db: Path) -> None:
    """verify="reread" copies and verifies as well."""
    (src / "a.bin").write_bytes(os.urandom(100_000))
    port = LocalTransfer(db, verify="reread")
    try:
        task = port.submit(request(src, dst, ("a.bin", "a.bin")))
        result = port.wait(task.task_id, 30)
    finally:
        port.close()
    (outcome,) = result.files
    assert outcome.state is FileState.VERIFIED
    assert outcome.record is not None
    assert outcome.record.checksum == hash_file(dst / "a.bin", ChecksumAlgorithm.BLAKE3)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ((), "no files"),
        ((("a", "x"), ("b", "x")), "two files"),
    ],
)
def test_bad_requests_are_refused_at_submit(
    src: Path, dst: Path, transfer: LocalTransfer, pairs: tuple[tuple[str, str], ...], message: str
) -> None:
    """Empty batches and two files to one destination are refused before anything runs."""
    with pytest.raises(TransferError, match=message):
        transfer.submit(request(src, dst, *pairs))


def test_a_missing_root_is_refused_at_submit(tmp_path: Path, src: Path, transfer: LocalTransfer) -> None:
    """A destination root that does not exist (not mounted) is refused, not created."""
    with pytest.raises(TransferError, match="mounted"):
        transfer.submit(request(src, tmp_path / "not-mounted", ("a", "a")))
    assert not (tmp_path / "not-mounted").exists()


def test_reusing_a_key_for_another_request_is_refused(src: Path, dst: Path, transfer: LocalTransfer) -> None:
    """An idempotency key names one request only."""
    (src / "a").write_text("a")
    (src / "b").write_text("b")
    transfer.submit(request(src, dst, ("a", "a"), key="shared"))
    with pytest.raises(TransferError, match="shared"):
        transfer.submit(request(src, dst, ("b", "b"), key="shared"))


def test_another_instance_sees_the_result_and_can_wait(src: Path, dst: Path, db: Path) -> None:
    """A second adapter on the same database waits for and reads a task the first one runs."""
    (src / "a").write_bytes(b"a" * 1000)
    first, second = LocalTransfer(db), LocalTransfer(db)
    try:
        task = first.submit(request(src, dst, ("a", "a")))
        result = second.wait(task.task_id, 30)
        assert result.ok
        assert second.submit(request(src, dst, ("a", "a"))).task_id == task.task_id
        assert LocalTransfer(db).wait(task.task_id, 1) == result
    finally:
        first.close()
        second.close()


def test_another_instance_can_cancel(src: Path, dst: Path, db: Path) -> None:
    """A cancel through a second adapter reaches the copy the first one runs."""
    (src / "a").write_bytes(b"a" * 1000)
    slow, other = LocalTransfer(db, max_bytes_per_s=1.0), LocalTransfer(db)
    try:
        task = slow.submit(request(src, dst, ("a", "a")))
        other.cancel(task.task_id)
        with pytest.raises(TransferFailed):
            other.wait(task.task_id, 10)
        assert other.status(task.task_id) is TaskStatus.CANCELLED
        assert temp_files(dst) == []
    finally:
        slow.close()
        other.close()


_ABANDON = """
import os, sys
from splash_core.adapters.local import LocalTransfer
from splash_core.domain.models import Endpoint, Site, TransferItem, TransferRequest
from splash_core.domain.paths import RelPath
src, dst, db = sys.argv[1:4]
port = LocalTransfer(db, max_bytes_per_s=1.0)
request = TransferRequest(
    Endpoint("src", "als", src, Site.ON_SITE), Endpoint("dst", "nersc", dst, Site.OFF_SITE),
    (TransferItem(RelPath("a.h5"), RelPath("a.h5")),), "unit test", "abandoned",
)
task = port.submit(request)
while not any(name.endswith(".splash-part") for name in os.listdir(dst)):
    pass
print(task.task_id, flush=True)
os._exit(0)
"""


def test_a_task_whose_process_died_is_lost_then_resumed(src: Path, dst: Path, db: Path) -> None:
    """A task left ACTIVE by a dead process is FAILED ("lost"); resubmitting resumes and cleans up."""
    (src / "a.h5").write_bytes(b"h" * 5000)
    done = subprocess.run(
        [sys.executable, "-c", _ABANDON, str(src), str(dst), str(db)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    task_id = done.stdout.strip()
    assert len(temp_files(dst)) == 1
    port = LocalTransfer(db)
    try:
        assert port.status(task_id) is TaskStatus.FAILED
        with pytest.raises(TransferFailed, match="lost"):
            port.wait(task_id, 5)
        again = port.submit(request(src, dst, ("a.h5", "a.h5"), key="abandoned"))
        assert again.task_id == task_id
        assert port.wait(task_id, 30).ok
    finally:
        port.close()
    assert (dst / "a.h5").read_bytes() == b"h" * 5000
    assert temp_files(dst) == []
