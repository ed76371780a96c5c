"""The reference implementation's failure modes (SPEC.md, last section) cannot happen here."""

from __future__ import annotations

from datetime import timedelta

import pytest

from splash_core.domain.errors import TransferFailed
from splash_core.domain.events import LocationVerified
from splash_core.domain.models import CatalogRecord, FileRecord, RetentionPolicy
from splash_core.domain.paths import RelPath
from splash_core.domain.services.ingest import IngestService
from splash_core.domain.services.move import MoveService
from splash_core.domain.services.prune import PruneService
from splash_core.domain.services.reconcile import ReconcileService
from tests.fakes import FakeFacility

P = RelPath.parse
POLICY = RetentionPolicy(endpoint="spot832", days=1, check_endpoint="data832_raw")


def _new_file(
    f: FakeFacility, mover: MoveService, ingester: IngestService, pruner: PruneService, path: RelPath
) -> None:
    """The 8.3.2 new-file route in miniature: copy, then catalog, then schedule the prune."""
    report = mover.move(f.endpoint("spot832"), f.endpoint("data832_raw"), [path], label="new_file")
    ingester.ingest(
        CatalogRecord(
            path.stem, "832", tuple(FileRecord(r.path, r.size, r.checksum) for r in report.verified), "data832_raw"
        )
    )
    pruner.schedule("spot832", [path], POLICY)


def test_a_failed_task_is_never_reported_as_success(facility: FakeFacility, mover: MoveService) -> None:
    """A transfer client that returns a FAILED result (instead of raising) still makes the move raise."""
    path = facility.put("spot832", "scan.h5", b"raw data")
    facility.transfer.fail_task_next("FILE_NOT_FOUND at destination", raise_on_wait=False)
    with pytest.raises(TransferFailed, match=r"fake-task-0001.*FAILED.*FILE_NOT_FOUND"):
        mover.move(facility.endpoint("spot832"), facility.endpoint("data832_raw"), [path], label="t")
    assert facility.ledger.of_type(LocationVerified) == []


def test_nothing_after_a_failed_copy_runs(
    facility: FakeFacility, mover: MoveService, ingester: IngestService, pruner: PruneService
) -> None:
    """When the copy fails, no catalog entry is made, no prune is scheduled and the raw file survives."""
    path = facility.put("spot832", "scan.h5", b"raw data")
    facility.transfer.fail_task_next("endpoint down")
    with pytest.raises(TransferFailed):
        _new_file(facility, mover, ingester, pruner, path)
    assert facility.catalog.records == {}
    assert facility.ledger.pending_ingests() == []
    assert facility.ledger.pending_prunes() == []
    facility.clock.advance(timedelta(days=400))
    pruner.run_due()
    assert facility.exists("spot832", path)


def test_a_prune_scheduled_despite_a_failed_copy_still_refuses(
    facility: FakeFacility, mover: MoveService, pruner: PruneService
) -> None:
    """Even a prune scheduled after a partial copy deletes nothing, because nothing was verified."""
    paths = [facility.put("spot832", f"s/{n}.h5", b"raw " + n.encode()) for n in "abc"]
    facility.transfer.partial_next(2)
    with pytest.raises(TransferFailed):
        mover.move(facility.endpoint("spot832"), facility.endpoint("data832_raw"), paths, label="t")
    pruner.schedule("spot832", paths, POLICY)
    facility.clock.advance(timedelta(days=2))
    report = pruner.run_due()
    assert len(report.refused) == 3
    assert all(facility.exists("spot832", p) for p in paths)


def test_a_prune_never_trusts_a_name_alone(facility: FakeFacility, pruner: PruneService) -> None:
    """A same-named file elsewhere, even with the same bytes, is not a verified copy."""
    path = facility.put("spot832", "scan.h5", b"raw data")
    facility.put("data832_raw", "scan.h5", b"raw data")
    pruner.schedule("spot832", [path], POLICY)
    facility.clock.advance(timedelta(days=2))
    assert pruner.run_due().deleted == ()
    assert facility.exists("spot832", path)


def test_a_prune_with_a_corrupted_copy_keeps_the_file_until_it_is_copied_again(
    facility: FakeFacility, mover: MoveService, ingester: IngestService, pruner: PruneService
) -> None:
    """A copy corrupted after verification stops the prune, and once copied again the prune goes ahead."""
    path = facility.put("spot832", "scan.h5", b"raw data")
    _new_file(facility, mover, ingester, pruner, path)
    facility.storage.corrupt(facility.endpoint("data832_raw"), path)
    facility.clock.advance(timedelta(days=2))
    assert pruner.run_due().deleted == ()
    assert facility.read("spot832", path) == b"raw data"
    mover.move(facility.endpoint("spot832"), facility.endpoint("data832_raw"), [path], label="repair")
    assert len(pruner.run_due().deleted) == 1
    assert facility.read("data832_raw", path) == b"raw data"


def test_many_small_files_make_few_tasks(facility: FakeFacility, mover: MoveService) -> None:
    """A burst of 2,500 files with at most 1,000 per batch makes exactly 3 transfer tasks, not 2,500."""
    paths = [facility.put("spot832", f"burst/{i:04d}.tif", b"%d" % i) for i in range(2500)]
    report = mover.move(facility.endpoint("spot832"), facility.endpoint("data832_raw"), paths, label="burst")
    assert facility.transfer.tasks_created == 3
    assert report.files == 2500


def test_files_that_arrived_unwatched_are_found_and_moved(
    facility: FakeFacility, mover: MoveService, reconciler: ReconcileService
) -> None:
    """Files no dispatcher saw are found by reconcile and moved."""
    moved = facility.put("spot832", "seen.h5", b"1")
    mover.move(facility.endpoint("spot832"), facility.endpoint("data832_raw"), [moved], label="t")
    facility.put("spot832", "unseen.h5", b"2")
    facility.clock.advance(60)
    missing = reconciler.missing(facility.endpoint("spot832"), "data832_raw", include=["*.h5"], settle_s=30)
    assert missing == [P("unseen.h5")]
    mover.move(facility.endpoint("spot832"), facility.endpoint("data832_raw"), missing, label="reconcile")
    assert reconciler.missing(facility.endpoint("spot832"), "data832_raw") == []
