"""PruneService records each deletion (PruneDone with LocationRemoved) at once, in one ledger write."""

from __future__ import annotations

from datetime import timedelta

import pytest

from splash_core.domain.events import LocationRemoved, PruneDone
from splash_core.domain.models import RetentionPolicy
from splash_core.domain.paths import RelPath
from splash_core.domain.services.move import MoveService
from splash_core.domain.services.prune import PruneService
from tests.fakes import FakeFacility

POLICY = RetentionPolicy(endpoint="spot832", days=1, check_endpoint="data832_raw")


def _moved_and_due(f: FakeFacility, mover: MoveService, pruner: PruneService, *names: str) -> list[RelPath]:
    paths = [f.put("spot832", name, f"contents of {name}".encode()) for name in names]
    mover.move(f.endpoint("spot832"), f.endpoint("data832_raw"), paths, label="test")
    pruner.schedule("spot832", paths, POLICY)
    f.clock.advance(timedelta(days=1, seconds=1))
    return paths


def test_each_deletion_is_recorded_before_the_next_file_is_deleted(
    facility: FakeFacility, mover: MoveService, pruner: PruneService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a file is deleted, every earlier deletion already has its PruneDone and LocationRemoved."""
    paths = _moved_and_due(facility, mover, pruner, "a.h5", "b.h5", "c.h5")
    recorded_at_delete: list[tuple[int, int]] = []
    delete = facility.storage.delete

    def spying_delete(*args: object, **kwargs: object) -> None:
        ledger = facility.ledger
        recorded_at_delete.append(
            (
                len(ledger.of_type(PruneDone)),
                len([e for e in ledger.of_type(LocationRemoved) if e.endpoint == "spot832"]),
            )
        )
        delete(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(facility.storage, "delete", spying_delete)
    report = pruner.run_due()
    assert sorted(d.path for d in report.deleted) == sorted(paths)
    assert recorded_at_delete == [(0, 0), (1, 1), (2, 2)]


def test_a_deletion_is_recorded_as_one_batch(facility: FakeFacility, mover: MoveService, pruner: PruneService) -> None:
    """PruneDone and LocationRemoved of one deletion are adjacent in the ledger, with one time."""
    (path,) = _moved_and_due(facility, mover, pruner, "a.h5")
    pruner.run_due()
    done, removed = facility.ledger.history(path)[-2:]
    assert isinstance(done, PruneDone)
    assert removed == LocationRemoved("spot832", path, done.at)


def test_a_failed_record_leaves_neither_event(facility: FakeFacility, mover: MoveService, pruner: PruneService) -> None:
    """When the ledger write fails, neither half of the deletion's record is there (no half-recorded prune)."""
    (path,) = _moved_and_due(facility, mover, pruner, "a.h5")
    facility.ledger.fail_next(1, op="record")
    assert len(pruner.run_due().deleted) == 1
    assert facility.ledger.of_type(PruneDone) == []
    assert [e for e in facility.ledger.of_type(LocationRemoved) if e.endpoint == "spot832"] == []
    assert [p.path for p in pruner.run_due().already_gone] == [path]
    assert facility.ledger.pending_prunes() == []
    assert facility.ledger.verified_copy("spot832", path) is None


def test_a_failed_record_of_a_vanished_file_never_escapes_the_run(
    facility: FakeFacility, mover: MoveService, pruner: PruneService
) -> None:
    """A file already gone whose record fails is reported as kept (still pending), not raised."""
    (path,) = _moved_and_due(facility, mover, pruner, "gone.h5")
    facility.storage.remove(facility.endpoint("spot832"), path)
    facility.ledger.fail_next(1, op="record")
    report = pruner.run_due()
    assert [r.path for r in report.refused] == [path]
    assert report.already_gone == ()
    assert [p.path for p in facility.ledger.pending_prunes()] == [path]
    assert [p.path for p in pruner.run_due().already_gone] == [path]
