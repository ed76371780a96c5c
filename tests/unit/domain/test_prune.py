"""PruneService: deletes only with a verified, still-matching copy; refuses and retries otherwise."""

from __future__ import annotations

from datetime import timedelta

import pytest

from splash_core.domain.errors import InvalidInput, UnknownEndpoint
from splash_core.domain.events import LocationRemoved, PruneDone, PruneRefused
from splash_core.domain.models import RetentionPolicy
from splash_core.domain.paths import RelPath
from splash_core.domain.services.move import MoveService
from splash_core.domain.services.prune import PruneService
from tests.fakes import FakeFacility

P = RelPath.parse
POLICY = RetentionPolicy(endpoint="spot832", days=1, check_endpoint="data832_raw")


def _moved(f: FakeFacility, mover: MoveService, *names: str) -> list[RelPath]:
    paths = [f.put("spot832", name, f"contents of {name}".encode()) for name in names]
    mover.move(f.endpoint("spot832"), f.endpoint("data832_raw"), paths, label="test")
    return paths


def _due(f: FakeFacility) -> None:
    f.clock.advance(timedelta(days=1, seconds=1))


def test_a_due_prune_with_a_verified_copy_deletes(
    facility: FakeFacility, mover: MoveService, pruner: PruneService
) -> None:
    """A due file whose copy is verified and matches is deleted and recorded."""
    (path,) = _moved(facility, mover, "a.h5")
    pruner.schedule("spot832", [path], POLICY)
    _due(facility)
    report = pruner.run_due()
    assert not facility.exists("spot832", path)
    assert facility.exists("data832_raw", path)
    assert [d.path for d in report.deleted] == [path]
    assert report.deleted[0].copy_endpoint == "data832_raw"
    assert facility.ledger.of_type(PruneDone) == list(report.deleted)
    assert facility.ledger.of_type(LocationRemoved)[-1].endpoint == "spot832"
    assert facility.ledger.verified_copy("spot832", path) is None
    assert facility.ledger.pending_prunes() == []


def test_a_prune_that_is_not_due_does_nothing(facility: FakeFacility, mover: MoveService, pruner: PruneService) -> None:
    """Before its retention ends a file is not even looked at."""
    (path,) = _moved(facility, mover, "a.h5")
    pruner.schedule("spot832", [path], POLICY)
    facility.clock.advance(timedelta(hours=23))
    assert pruner.run_due().checked == 0
    assert facility.exists("spot832", path)


def test_scheduling_twice_keeps_one_prune(facility: FakeFacility, mover: MoveService, pruner: PruneService) -> None:
    """The same endpoint and path is scheduled once however often it is asked."""
    paths = _moved(facility, mover, "a.h5", "b.h5")
    assert len(pruner.schedule("spot832", paths, POLICY)) == 2
    facility.clock.advance(3600)
    assert pruner.schedule("spot832", [*paths, paths[0]], POLICY) == []
    assert len(facility.ledger.pending_prunes()) == 2


def test_a_same_named_file_without_a_verified_copy_is_not_enough(facility: FakeFacility, pruner: PruneService) -> None:
    """A file of the same name at the check endpoint, never verified, does not allow deletion."""
    path = facility.put("spot832", "a.h5", b"data")
    facility.put("data832_raw", "a.h5", b"data")
    pruner.schedule("spot832", [path], POLICY)
    _due(facility)
    report = pruner.run_due()
    assert facility.exists("spot832", path)
    assert "no verified copy of a.h5 on data832_raw" in report.refused[0].reason
    assert facility.ledger.of_type(PruneRefused) == list(report.refused)
    assert len(facility.ledger.pending_prunes()) == 1


def test_a_corrupted_copy_is_refused_and_forgotten(
    facility: FakeFacility, mover: MoveService, pruner: PruneService
) -> None:
    """A copy whose checksum changed refuses the prune and stops counting as verified."""
    (path,) = _moved(facility, mover, "a.h5")
    pruner.schedule("spot832", [path], POLICY)
    facility.storage.corrupt(facility.endpoint("data832_raw"), path)
    _due(facility)
    report = pruner.run_due()
    assert facility.exists("spot832", path)
    assert "no longer matches its verified checksum" in report.refused[0].reason
    assert "a.h5 on data832_raw" in report.refused[0].reason
    assert facility.ledger.verified_copy("data832_raw", path) is None


def test_a_refused_prune_goes_through_once_the_copy_is_fixed(
    facility: FakeFacility, mover: MoveService, pruner: PruneService
) -> None:
    """After a refusal the prune stays pending and succeeds once the file is moved again."""
    (path,) = _moved(facility, mover, "a.h5")
    pruner.schedule("spot832", [path], POLICY)
    facility.storage.remove(facility.endpoint("data832_raw"), path)
    _due(facility)
    assert len(pruner.run_due().refused) == 1
    mover.move(facility.endpoint("spot832"), facility.endpoint("data832_raw"), [path], label="again")
    report = pruner.run_due()
    assert [d.path for d in report.deleted] == [path]
    assert not facility.exists("spot832", path)


def test_a_copy_of_an_older_version_is_refused(
    facility: FakeFacility, mover: MoveService, pruner: PruneService
) -> None:
    """A file rewritten since its copy was verified is kept, even at the same size."""
    (path,) = _moved(facility, mover, "a.h5")
    pruner.schedule("spot832", [path], POLICY)
    facility.put("spot832", path, b"CONTENTS OF A.H5")
    _due(facility)
    report = pruner.run_due()
    assert facility.read("spot832", path) == b"CONTENTS OF A.H5"
    assert "another version" in report.refused[0].reason


def test_a_copy_of_another_size_is_refused(facility: FakeFacility, mover: MoveService, pruner: PruneService) -> None:
    """A file that grew since its copy was verified is kept."""
    (path,) = _moved(facility, mover, "a.h5")
    pruner.schedule("spot832", [path], POLICY)
    facility.put("spot832", path, b"appended data, longer than before")
    _due(facility)
    assert "another version" in pruner.run_due().refused[0].reason
    assert facility.exists("spot832", path)


def test_a_path_escaping_its_root_is_refused(facility: FakeFacility, mover: MoveService, pruner: PruneService) -> None:
    """A file that resolves outside the endpoint root is never deleted."""
    (path,) = _moved(facility, mover, "a.h5")
    pruner.schedule("spot832", [path], POLICY)
    facility.storage.symlink_escape(facility.endpoint("spot832"), path)
    _due(facility)
    report = pruner.run_due()
    assert "outside the root" in report.refused[0].reason
    assert facility.exists("spot832", path)
    assert facility.storage.deleted == []


def test_a_dry_run_changes_nothing(facility: FakeFacility, mover: MoveService, pruner: PruneService) -> None:
    """A dry run reports what would go and what would be refused but deletes and records nothing."""
    paths = _moved(facility, mover, "a.h5", "b.h5")
    pruner.schedule("spot832", paths, POLICY)
    facility.storage.corrupt(facility.endpoint("data832_raw"), paths[1])
    _due(facility)
    events_before = list(facility.ledger.events)
    report = pruner.run_due(dry_run=True)
    assert [p.path for p in report.would_delete] == [paths[0]]
    assert [r.path for r in report.refused] == [paths[1]]
    assert report.deleted == ()
    assert facility.ledger.events == events_before
    assert all(facility.exists("spot832", p) for p in paths)


def test_one_failing_file_does_not_stop_the_others(
    facility: FakeFacility, mover: MoveService, pruner: PruneService
) -> None:
    """A storage error on one file becomes its refusal while the next file is still pruned."""
    paths = _moved(facility, mover, "a.h5", "b.h5")
    pruner.schedule("spot832", paths, POLICY)
    _due(facility)
    facility.storage.fail_next(1, transient=False, op="checksum")
    report = pruner.run_due()
    assert [r.path for r in report.refused] == [paths[0]]
    assert "injected failure of checksum" in report.refused[0].reason
    assert [d.path for d in report.deleted] == [paths[1]]
    assert facility.exists("spot832", paths[0])


def test_transient_storage_errors_are_retried(facility: FakeFacility, mover: MoveService, pruner: PruneService) -> None:
    """A transient failure during the checks is retried within the run."""
    (path,) = _moved(facility, mover, "a.h5")
    pruner.schedule("spot832", [path], POLICY)
    _due(facility)
    facility.storage.fail_next(1, op="delete")
    assert len(pruner.run_due().deleted) == 1


def test_a_file_already_gone_is_marked_done(facility: FakeFacility, mover: MoveService, pruner: PruneService) -> None:
    """A file that disappeared while its copy is verified ends the prune without deleting anything."""
    (path,) = _moved(facility, mover, "a.h5")
    pruner.schedule("spot832", [path], POLICY)
    facility.storage.remove(facility.endpoint("spot832"), path)
    _due(facility)
    report = pruner.run_due()
    assert [p.path for p in report.already_gone] == [path]
    assert facility.ledger.pending_prunes() == []
    assert facility.storage.deleted == []


def test_a_folder_is_refused(facility: FakeFacility, mover: MoveService, pruner: PruneService) -> None:
    """A scheduled folder is refused (it has no verified copy of its own); prunes delete single files."""
    _moved(facility, mover, "d/a.h5")
    pruner.schedule("spot832", [P("d")], POLICY)
    _due(facility)
    assert len(pruner.run_due().refused) == 1
    assert facility.exists("spot832", "d/a.h5")
    assert facility.storage.deleted == []


def test_copies_below_a_prefix_are_checked_there(
    facility: FakeFacility, mover: MoveService, pruner: PruneService
) -> None:
    """With a check prefix the copy is looked for below it."""
    path = facility.put("spot832", "a.h5", b"data")
    mover.move(facility.endpoint("spot832"), facility.endpoint("data832_raw"), [path], label="t", dest_prefix=P("x"))
    pruner.schedule("spot832", [path], POLICY, check_prefix=P("x"))
    _due(facility)
    assert len(pruner.run_due().deleted) == 1


def test_a_copy_the_service_wrongly_verified_is_caught_at_prune_time(
    facility: FakeFacility, mover: MoveService, pruner: PruneService
) -> None:
    """A corrupt copy the transfer service claimed to verify is caught by the prune's fresh checksum."""
    facility.transfer.verifies_checksums = True
    facility.transfer.corrupt_next()
    (path,) = _moved(facility, mover, "a.h5")
    pruner.schedule("spot832", [path], POLICY)
    _due(facility)
    report = pruner.run_due()
    assert report.deleted == ()
    assert facility.exists("spot832", path)


def test_an_unknown_endpoint_in_a_pending_prune_is_refused(facility: FakeFacility, mover: MoveService) -> None:
    """A prune naming an endpoint the service does not know is refused, not crashed on."""
    (path,) = _moved(facility, mover, "a.h5")
    PruneService(facility.storage, facility.ledger, facility.clock, facility.endpoints).schedule(
        "spot832", [path], POLICY
    )
    partial = {k: v for k, v in facility.endpoints.items() if k != "data832_raw"}
    _due(facility)
    report = PruneService(facility.storage, facility.ledger, facility.clock, partial).run_due()
    assert "'data832_raw' is not configured" in report.refused[0].reason


def test_bad_policies_are_rejected(pruner: PruneService) -> None:
    """Schedules with mismatched, self-checking or unknown endpoints raise."""
    with pytest.raises(InvalidInput):
        pruner.schedule("data832", [P("a")], POLICY)
    with pytest.raises(InvalidInput):
        pruner.schedule("spot832", [P("a")], RetentionPolicy("spot832", 1, "spot832"))
    with pytest.raises(UnknownEndpoint):
        pruner.schedule("spot832", [P("a")], RetentionPolicy("spot832", 1, "nowhere"))


def test_a_deletion_the_ledger_missed_is_repaired_next_run(
    facility: FakeFacility, mover: MoveService, pruner: PruneService
) -> None:
    """If recording a deletion fails, the next run finds the file gone and marks the prune done."""
    (path,) = _moved(facility, mover, "a.h5")
    pruner.schedule("spot832", [path], POLICY)
    _due(facility)
    facility.ledger.fail_next(1, op="record")
    assert len(pruner.run_due().deleted) == 1
    assert not facility.exists("spot832", path)
    assert len(facility.ledger.pending_prunes()) == 1
    report = pruner.run_due()
    assert [p.path for p in report.already_gone] == [path]
    assert facility.ledger.pending_prunes() == []


def test_a_refusal_the_ledger_missed_is_still_reported(facility: FakeFacility, pruner: PruneService) -> None:
    """A refusal that cannot be recorded is still reported and the file kept."""
    path = facility.put("spot832", "a.h5", b"data")
    pruner.schedule("spot832", [path], POLICY)
    _due(facility)
    facility.ledger.fail_next(1, op="record")
    assert len(pruner.run_due().refused) == 1
    assert facility.ledger.of_type(PruneRefused) == []
    assert facility.exists("spot832", path)
