"""The fakes behave as their ports promise (the contract suites test them in depth)."""

from __future__ import annotations

import pytest

from splash_core.domain.errors import (
    CatalogError,
    CatalogUnavailable,
    JobError,
    JobNotFound,
    PathEscapesRoot,
    PathNotFound,
    StorageError,
    TapeError,
    TransferFailed,
    TransferTimeout,
    TransientStorageError,
    TransientTransferError,
)
from splash_core.domain.events import LocationRemoved, LocationVerified, PruneDone, PruneScheduled, StepRecord
from splash_core.domain.events import StepState as S
from splash_core.domain.models import (
    ArchiveMethod,
    CatalogRecord,
    ChecksumAlgorithm,
    FileRecord,
    FileState,
    JobSpec,
    JobState,
    OutputSpec,
    ScheduledTask,
    TapeBundle,
    TaskStatus,
    TransferItem,
    TransferRequest,
)
from splash_core.domain.paths import RelPath
from tests.fakes import FakeFacility, digest

P = RelPath.parse


def _request(f: FakeFacility, *names: str, key: str = "k1") -> TransferRequest:
    items = tuple(TransferItem(P(n), P(n)) for n in names)
    return TransferRequest(f.endpoint("spot832"), f.endpoint("data832_raw"), items, "test", key)


def test_clock_moves_only_when_told() -> None:
    """The fake clock advances through sleep and advance only."""
    f = FakeFacility()
    start = f.clock.now()
    f.clock.sleep(5)
    f.clock.advance_days(1)
    assert (f.clock.now() - start).total_seconds() == 86405
    assert f.clock.monotonic() == 86405
    assert f.clock.sleeps == [5]


def test_storage_shares_volume_between_endpoints_of_one_collection() -> None:
    """A file put under data832 at raw/x is x on data832_raw."""
    f = FakeFacility()
    f.put("data832", "raw/x.h5", b"abc")
    assert f.read("data832_raw", "x.h5") == b"abc"
    assert [r.path for r in f.storage.list(f.endpoint("data832_raw"))] == [P("x.h5")]


def test_storage_checksums_are_real_and_corrupt_keeps_size() -> None:
    """Checksums are computed from the bytes, and corruption changes them but not the size."""
    f = FakeFacility()
    ep = f.endpoint("spot832")
    f.put("spot832", "a", b"hello world")
    for algorithm in ChecksumAlgorithm:
        assert f.storage.checksum(ep, P("a"), algorithm) == digest(b"hello world", algorithm)
    before = f.storage.checksum(ep, P("a"), ChecksumAlgorithm.BLAKE3)
    f.storage.corrupt(ep, "a")
    stat = f.storage.stat(ep, P("a"))
    assert stat is not None
    assert stat.size == 11
    assert f.storage.checksum(ep, P("a"), ChecksumAlgorithm.BLAKE3) != before


def test_storage_symlink_escape_blocks_delete() -> None:
    """An escaping path is not contained and refuses deletion."""
    f = FakeFacility()
    ep = f.endpoint("spot832")
    f.put("spot832", "d/a", b"1")
    f.storage.symlink_escape(ep, "d")
    assert not f.storage.contains(ep, P("d/a"))
    with pytest.raises(PathEscapesRoot):
        f.storage.delete(ep, P("d/a"))
    assert f.exists("spot832", "d/a")


def test_storage_folders_and_faults() -> None:
    """Folders stat as None, need recursive delete, and faults fire per operation."""
    f = FakeFacility()
    ep = f.endpoint("spot832")
    f.put("spot832", "d/a", b"1")
    f.put("spot832", "d/b", b"2")
    assert f.storage.stat(ep, P("d")) is None
    with pytest.raises(StorageError):
        f.storage.delete(ep, P("d"))
    f.storage.fail_next(1, op="delete")
    with pytest.raises(TransientStorageError):
        f.storage.delete(ep, P("d"), recursive=True)
    f.storage.delete(ep, P("d"), recursive=True)
    assert f.storage.files(ep) == {}
    with pytest.raises(PathNotFound):
        f.storage.delete(ep, P("d"))


def test_transfer_copies_and_is_idempotent() -> None:
    """Same idempotency key gives the same task, and waiting copies the bytes."""
    f = FakeFacility()
    f.put("spot832", "a", b"AAAA")
    first = f.transfer.submit(_request(f, "a"))
    again = f.transfer.submit(_request(f, "a"))
    assert first.task_id == again.task_id
    assert (f.transfer.submissions, f.transfer.tasks_created) == (2, 1)
    result = f.transfer.wait(first.task_id, 60)
    assert result.ok
    assert f.read("data832_raw", "a") == b"AAAA"


def test_transfer_fault_modes() -> None:
    """Submit faults, failed, partial, hanging and corrupting tasks behave as documented."""
    f = FakeFacility()
    for name in ("a", "b", "c"):
        f.put("spot832", name, name.encode() * 3)
    f.transfer.fail_next(1)
    with pytest.raises(TransientTransferError):
        f.transfer.submit(_request(f, "a"))
    f.transfer.partial_next(1)
    task = f.transfer.submit(_request(f, "a", "b", key="p"))
    with pytest.raises(TransferFailed):
        f.transfer.wait(task.task_id, 60)
    assert f.exists("data832_raw", "a")
    assert not f.exists("data832_raw", "b")
    f.transfer.hang_next()
    task = f.transfer.submit(_request(f, "c", key="h"))
    with pytest.raises(TransferTimeout):
        f.transfer.wait(task.task_id, 30)
    assert f.transfer.cancelled == [task.task_id]
    f.transfer.fail_task_next("boom", raise_on_wait=False)
    task = f.transfer.submit(_request(f, "c", key="f"))
    assert f.transfer.wait(task.task_id, 30).status is TaskStatus.FAILED
    f.transfer.verifies_checksums = True
    f.transfer.corrupt_next()
    task = f.transfer.submit(_request(f, "c", key="x"))
    result = f.transfer.wait(task.task_id, 30)
    assert result.ok
    assert f.read("data832_raw", "c") != b"ccc"
    assert result.files[0].verified_by == "fake-service"
    f.transfer.skip_next("a")
    task = f.transfer.submit(_request(f, "a", "b", key="s"))
    result = f.transfer.wait(task.task_id, 30)
    assert result.status is TaskStatus.SUCCEEDED
    assert [o.state for o in result.files] == [FileState.SKIPPED, FileState.VERIFIED]


def test_hpc_runs_handlers_and_loses_status() -> None:
    """Jobs run their handler, status can be lost for a while, final states are configurable."""
    f = FakeFacility()
    nersc = f.hpc["nersc"]
    nersc.register_writer("recon", f.endpoints)
    spec = JobSpec("r1", "recon", expected_outputs=(OutputSpec("nersc832_alsdev_scratch", P("out.tif")),))
    job = nersc.submit(spec)
    nersc.lose_status_for(2)
    for _ in range(2):
        with pytest.raises(JobNotFound):
            nersc.status(job)
    status = nersc.wait(job, 3600)
    assert status.succeeded
    assert f.exists("nersc832_alsdev_scratch", "out.tif")
    nersc.finish_next(JobState.FAILED, exit_code=3)
    status = nersc.wait(nersc.submit(JobSpec("r2", "recon")), 3600)
    assert (status.state, status.exit_code) == (JobState.FAILED, 3)
    with pytest.raises(JobError):
        nersc.submit(JobSpec("x", "unknown-kind"))
    nersc.hang_next()
    hung = nersc.submit(JobSpec("r3", "recon"))
    assert nersc.wait(hung, 100).state is JobState.RUNNING
    nersc.cancel(hung)
    assert nersc.status(hung).state is JobState.CANCELLED


def test_tape_archive_verify_restore() -> None:
    """Bundles verify until corrupted, and restore writes members back."""
    f = FakeFacility()
    f.put("nersc733_alsdev_raw", "p/a", b"12345")
    bundle = TapeBundle("p_2025-1.tar", ArchiveMethod.HTAR, (FileRecord(P("p/a"), 5),), "p", 2025, 1)
    receipt = f.tape.archive(bundle, f.endpoint("nersc733_alsdev_raw"))
    assert f.tape.verify(receipt).verified
    f.storage.remove(f.endpoint("nersc733_alsdev_raw"), "p/a")
    f.tape.restore(receipt, (P("p/a"),), f.endpoint("nersc733_alsdev_raw"))
    assert f.read("nersc733_alsdev_raw", "p/a") == b"12345"
    f.tape.corrupt_bundle("p_2025-1.tar")
    with pytest.raises(TapeError):
        f.tape.verify(receipt)


def test_catalog_outage_and_idempotency() -> None:
    """The catalog is idempotent by dataset key and raises CatalogUnavailable when down."""
    f = FakeFacility()
    record = CatalogRecord("k", "832", (), "data832")
    assert f.catalog.ingest(record) == f.catalog.ingest(record)
    f.catalog.go_down()
    with pytest.raises(CatalogUnavailable):
        f.catalog.ingest(record)
    f.catalog.come_up()
    f.catalog.reject_next()
    with pytest.raises(CatalogError):
        f.catalog.ingest(record)


def test_scheduler_keeps_one_run_per_key() -> None:
    """Scheduling a key twice keeps one run, and done runs are not pending."""
    f = FakeFacility()
    t = ScheduledTask("prune", f.clock.now(), "k")
    assert f.scheduler.schedule(t) == f.scheduler.schedule(t)
    assert len(f.scheduler.pending()) == 1
    f.scheduler.mark_done("k")
    assert f.scheduler.pending() == []


def test_ledger_verified_copy_and_pending_prunes() -> None:
    """Removal hides a verification; PruneDone ends a pending prune; steps and outbox work."""
    f = FakeFacility()
    now = f.clock.now()
    cs = digest(b"x", ChecksumAlgorithm.BLAKE3)
    f.ledger.record(LocationVerified("data832", P("a"), 1, cs, "splash", now))
    assert f.ledger.verified_copy("data832", P("a")) is not None
    assert f.ledger.verified_paths("data832") == {P("a")}
    f.ledger.record(LocationRemoved("data832", P("a"), now))
    assert f.ledger.verified_copy("data832", P("a")) is None
    f.ledger.record(PruneScheduled("spot832", P("a"), now, "data832", now))
    assert len(f.ledger.pending_prunes(now)) == 1
    f.ledger.record(PruneDone("spot832", P("a"), "data832", cs, now))
    assert f.ledger.pending_prunes() == []
    assert len(f.ledger.history(P("a"))) == 4
    f.ledger.record_step(StepRecord("s", S.DONE, now))
    assert f.ledger.step("s") == StepRecord("s", S.DONE, now)
    record = CatalogRecord("k", "832", (), "data832")
    f.ledger.enqueue_ingest(record)
    assert f.ledger.pending_ingests() == [record]
    f.ledger.ingest_done("k", "id1")
    assert (f.ledger.pending_ingests(), f.ledger.catalog_id("k")) == ([], "id1")
