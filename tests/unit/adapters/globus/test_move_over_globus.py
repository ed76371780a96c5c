"""MoveService and PruneService over the Globus adapters, end to end on the simulated service.

Globus compares checksums itself but reports no digest, and Globus storage computes none:
a move must accept Globus's verification (recording it, with its algorithm and no digest),
and a prune must refuse to delete on such a copy, since nothing can re-verify it now.
"""

from __future__ import annotations

from splash_core.adapters.globus import GlobusStorage, GlobusTransfer
from splash_core.domain.events import LocationVerified, PruneRefused
from splash_core.domain.models import ChecksumAlgorithm, Endpoint, RetentionPolicy
from splash_core.domain.paths import RelPath
from splash_core.domain.services.move import MoveService
from splash_core.domain.services.prune import PruneService
from tests.fakes import FakeLedger
from tests.fakes.clock import FakeClock
from tests.unit.adapters.globus.simulated import SimulatedGlobus

DATA = {f"scan/frame_{i:02d}.tif": f"frame {i} ".encode() * (i + 1) for i in range(5)}


def _mover(
    sim: SimulatedGlobus, transfer: GlobusTransfer, storage: GlobusStorage, clock: FakeClock, source: Endpoint
) -> tuple[MoveService, FakeLedger]:
    """The source files in place, and a move service over the Globus adapters with a fresh ledger."""
    written = clock.now().timestamp() - 3600  # the files were written before the move
    for path, data in DATA.items():
        sim.put_at(source, path, data, written)
    ledger = FakeLedger()
    mover = MoveService(transfer, storage, ledger, clock, max_files_per_batch=3)
    return mover, ledger


def test_a_batch_moved_by_globus_is_recorded_as_verified_by_globus(
    sim: SimulatedGlobus,
    transfer: GlobusTransfer,
    storage: GlobusStorage,
    clock: FakeClock,
    source: Endpoint,
    destination: Endpoint,
) -> None:
    """Every file arrives and is recorded as verified by globus (md5), with its size and no digest."""
    mover, ledger = _mover(sim, transfer, storage, clock, source)

    report = mover.move(source, destination, [RelPath.parse("scan")], label="end to end")

    assert report.files == len(DATA)
    assert report.tasks_created == 2  # 5 files, at most 3 per task
    for path, data in DATA.items():
        rel = RelPath.parse(path)
        assert sim.read_at(destination, rel) == data
        copy = ledger.verified_copy(destination.name, rel)
        assert copy is not None
        assert copy.verified_by == "globus"
        assert copy.service_algorithm is ChecksumAlgorithm.MD5
        assert copy.checksum is None
        assert copy.size == len(data)
        assert copy.task_id in report.task_ids
        assert copy.verification == "globus (md5, digest not reported)"
        assert ledger.verified_copy(source.name, rel) is None  # no digest known for the source
    assert {e.endpoint for e in ledger.of_type(LocationVerified)} == {destination.name}

    again = mover.move(source, destination, [RelPath.parse("scan")], label="end to end")
    assert again.tasks_created == 0
    assert sorted(p.value for p in again.skipped) == sorted(DATA)


def test_a_prune_over_globus_storage_refuses_to_delete(
    sim: SimulatedGlobus,
    transfer: GlobusTransfer,
    storage: GlobusStorage,
    clock: FakeClock,
    source: Endpoint,
    destination: Endpoint,
) -> None:
    """The copies cannot be re-verified through Globus, so nothing is deleted and the prunes stay pending."""
    mover, ledger = _mover(sim, transfer, storage, clock, source)
    report = mover.move(source, destination, [RelPath.parse("scan")], label="end to end")
    paths = [v.path for v in report.verified]
    pruner = PruneService(storage, ledger, clock, {e.name: e for e in (source, destination)})
    pruner.schedule(source, paths, RetentionPolicy(source.name, 0, destination.name))

    outcome = pruner.run_due()

    assert outcome.deleted == ()
    assert len(outcome.refused) == len(DATA)
    for refusal in outcome.refused:
        assert "verified by globus (md5, digest not reported)" in refusal.reason
        assert f"endpoint {destination.name} offers no checksums" in refusal.reason
    assert len(ledger.of_type(PruneRefused)) == len(DATA)
    assert len(ledger.pending_prunes()) == len(DATA)
    for path, data in DATA.items():
        assert sim.read_at(source, path) == data
