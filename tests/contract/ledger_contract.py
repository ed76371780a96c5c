"""The contract every :class:`LedgerPort` adapter must meet.

Subclass :class:`LedgerContract` once per adapter and implement
:meth:`LedgerContract.make_ledger`.
"""

from __future__ import annotations

import abc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from splash_core.domain.errors import SplashError
from splash_core.domain.events import (
    Ingested,
    JobFinished,
    LedgerEvent,
    LocationRemoved,
    LocationVerified,
    PruneDone,
    PruneRefused,
    PruneScheduled,
    StepRecord,
    StepState,
    TapeArchived,
)
from splash_core.domain.models import CatalogRecord, Checksum, ChecksumAlgorithm, FileRecord, JobState
from splash_core.domain.paths import RelPath
from splash_core.ports.ledger import LedgerPort

P = RelPath.parse
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SUM = Checksum(ChecksumAlgorithm.BLAKE3, "ab" * 32)
OTHER_SUM = Checksum(ChecksumAlgorithm.BLAKE3, "cd" * 32)


def at(minutes: float) -> datetime:
    """``minutes`` after the suite's reference time."""
    return T0 + timedelta(minutes=minutes)


def verified(endpoint: str, path: str, minutes: float = 0, checksum: Checksum = SUM) -> LocationVerified:
    """A verification event."""
    return LocationVerified(endpoint, P(path), 10, checksum, "splash", at(minutes), task_id="t-1")


def scheduled(endpoint: str, path: str, due_minutes: float, minutes: float = 0) -> PruneScheduled:
    """A prune scheduled at ``minutes`` for ``due_minutes``."""
    return PruneScheduled(endpoint, P(path), at(due_minutes), "nersc832", at(minutes))


def record(key: str, beamline: str = "8.3.2") -> CatalogRecord:
    """A catalog record for the outbox."""
    return CatalogRecord(key, beamline, (FileRecord(P("raw/a.h5"), 10, SUM),), "data832:raw/a.h5", {"k": "v"})


class LedgerContract(abc.ABC):
    """Tests every ledger adapter must pass."""

    @abc.abstractmethod
    def make_ledger(self, tmp_path: Path) -> LedgerPort:
        """A fresh, empty ledger."""

    @pytest.fixture
    def ledger(self, tmp_path: Path) -> LedgerPort:
        """The ledger under test."""
        return self.make_ledger(tmp_path)

    def test_verified_copy_is_the_latest_verification(self, ledger: LedgerPort) -> None:
        """The newest verification of endpoint+path wins; other endpoints are separate."""
        assert ledger.verified_copy("data832", P("raw/a.h5")) is None
        ledger.record(verified("data832", "raw/a.h5", 0))
        ledger.record(verified("data832", "raw/a.h5", 5, OTHER_SUM))
        ledger.record(verified("nersc832", "raw/a.h5", 6))
        copy = ledger.verified_copy("data832", P("raw/a.h5"))
        assert copy == verified("data832", "raw/a.h5", 5, OTHER_SUM)
        assert ledger.verified_copy("spot832", P("raw/a.h5")) is None

    def test_a_removal_ends_the_verified_copy(self, ledger: LedgerPort) -> None:
        """Verified then removed gives None; verified again after that counts again."""
        ledger.record(verified("data832", "raw/a.h5", 0))
        ledger.record(LocationRemoved("data832", P("raw/a.h5"), at(1)))
        assert ledger.verified_copy("data832", P("raw/a.h5")) is None
        assert P("raw/a.h5") not in ledger.verified_paths("data832")
        ledger.record(verified("data832", "raw/a.h5", 2))
        assert ledger.verified_copy("data832", P("raw/a.h5")) == verified("data832", "raw/a.h5", 2)

    def test_verified_paths_lists_current_copies_on_one_endpoint(self, ledger: LedgerPort) -> None:
        """Only paths verified and not removed on that endpoint are listed."""
        for name in ("a", "b", "c"):
            ledger.record(verified("data832", f"raw/{name}.h5"))
        ledger.record(verified("nersc832", "raw/z.h5"))
        ledger.record(LocationRemoved("data832", P("raw/b.h5"), at(1)))
        assert ledger.verified_paths("data832") == frozenset({P("raw/a.h5"), P("raw/c.h5")})
        assert ledger.verified_paths("alcf832_raw") == frozenset()

    def test_history_is_every_event_naming_the_path_in_order(self, ledger: LedgerPort) -> None:
        """History includes events that mention the path among several."""
        events: list[LedgerEvent] = [
            verified("spot832", "raw/a.h5", 0),
            verified("spot832", "raw/other.h5", 1),
            Ingested("key-1", "local:1", (P("raw/a.h5"), P("raw/b.h5")), at(2)),
            JobFinished(
                "j1", "nersc", "recon", JobState.COMPLETED, 0, at(3), outputs=("scratch/x",), inputs=("raw/a.h5",)
            ),
            TapeArchived(P("raw/a.h5"), "nersc832", "p1_2025-1.tar", "/home/a/p1_2025-1.tar", 10, at(4)),
            scheduled("spot832", "raw/a.h5", 60, 5),
            PruneRefused("spot832", P("raw/a.h5"), "no verified copy on nersc832", at(6)),
            PruneDone("spot832", P("raw/a.h5"), "data832", SUM, at(7)),
            LocationRemoved("spot832", P("raw/a.h5"), at(7)),
        ]
        for event in events:
            ledger.record(event)
        history = list(ledger.history(P("raw/a.h5")))
        assert history == [e for i, e in enumerate(events) if i != 1]
        assert list(ledger.history(P("never/seen"))) == []

    def test_pending_prunes_until_done(self, ledger: LedgerPort) -> None:
        """A scheduled prune is pending, stays so when refused, and goes when done."""
        ledger.record(scheduled("spot832", "raw/a.h5", 60))
        ledger.record(scheduled("spot832", "raw/b.h5", 30))
        ledger.record(scheduled("data832", "raw/a.h5", 90))
        assert [(p.endpoint, p.path.value) for p in ledger.pending_prunes()] == [
            ("spot832", "raw/b.h5"),
            ("spot832", "raw/a.h5"),
            ("data832", "raw/a.h5"),
        ]
        ledger.record(PruneRefused("spot832", P("raw/b.h5"), "copy missing", at(31)))
        ledger.record(PruneDone("spot832", P("raw/a.h5"), "data832", SUM, at(61)))
        assert [(p.endpoint, p.path.value) for p in ledger.pending_prunes()] == [
            ("spot832", "raw/b.h5"),
            ("data832", "raw/a.h5"),
        ]

    def test_pending_prunes_due_before(self, ledger: LedgerPort) -> None:
        """``due_before`` keeps prunes due at or before it."""
        ledger.record(scheduled("spot832", "raw/a.h5", 60))
        ledger.record(scheduled("spot832", "raw/b.h5", 30))
        assert [p.path.value for p in ledger.pending_prunes(due_before=at(30))] == ["raw/b.h5"]
        assert ledger.pending_prunes(due_before=at(29)) == []
        assert len(ledger.pending_prunes(due_before=at(60))) == 2

    def test_rescheduling_keeps_one_pending_prune_with_the_latest_due_time(self, ledger: LedgerPort) -> None:
        """The latest PruneScheduled for endpoint+path replaces earlier ones."""
        ledger.record(scheduled("spot832", "raw/a.h5", 60))
        ledger.record(scheduled("spot832", "raw/a.h5", 120, minutes=1))
        assert ledger.pending_prunes() == [scheduled("spot832", "raw/a.h5", 120, minutes=1)]

    def test_a_prune_scheduled_after_it_was_done_is_pending_again(self, ledger: LedgerPort) -> None:
        """Done applies to the schedule before it, not to a newer one."""
        ledger.record(scheduled("spot832", "raw/a.h5", 60))
        ledger.record(PruneDone("spot832", P("raw/a.h5"), "data832", SUM, at(61)))
        ledger.record(scheduled("spot832", "raw/a.h5", 200, minutes=100))
        assert [p.due_at for p in ledger.pending_prunes()] == [at(200)]

    def test_steps_replace_by_key(self, ledger: LedgerPort) -> None:
        """The last record under a key is the one returned."""
        assert ledger.step("run-1/move") is None
        ledger.record_step(StepRecord("run-1/move", StepState.STARTED, at(0)))
        ledger.record_step(StepRecord("run-1/move", StepState.DONE, at(1), "task t-1"))
        ledger.record_step(StepRecord("run-1/ingest", StepState.FAILED, at(2), "catalog down"))
        assert ledger.step("run-1/move") == StepRecord("run-1/move", StepState.DONE, at(1), "task t-1")
        assert ledger.step("run-1/ingest") == StepRecord("run-1/ingest", StepState.FAILED, at(2), "catalog down")

    def test_outbox_keeps_order_and_replaces_by_key(self, ledger: LedgerPort) -> None:
        """Records wait oldest first; the same key replaces in place; done removes and remembers the id."""
        ledger.enqueue_ingest(record("k1"))
        ledger.enqueue_ingest(record("k2"))
        ledger.enqueue_ingest(record("k1", beamline="7.3.3"))
        assert [(r.dataset_key, r.beamline) for r in ledger.pending_ingests()] == [("k1", "7.3.3"), ("k2", "8.3.2")]
        assert ledger.pending_ingests()[0] == record("k1", beamline="7.3.3")
        assert ledger.catalog_id("k1") is None
        ledger.ingest_done("k1", "local:7")
        assert [r.dataset_key for r in ledger.pending_ingests()] == ["k2"]
        assert ledger.catalog_id("k1") == "local:7"
        assert ledger.catalog_id("k2") is None

    def test_events_round_trip_exactly(self, ledger: LedgerPort) -> None:
        """What is read back equals what was recorded, times and checksums included."""
        event = LocationVerified(
            "nersc832",
            P("raw/ünïcode name.h5"),
            2**40,
            Checksum(ChecksumAlgorithm.XXH3_128, "0F" * 16),
            "globus",
            datetime(2025, 7, 16, 0, 0, 0, 123456, tzinfo=UTC),
        )
        ledger.record(event)
        assert ledger.verified_copy("nersc832", P("raw/ünïcode name.h5")) == event
        assert list(ledger.history(P("raw/ünïcode name.h5"))) == [event]

    def test_a_verification_without_a_digest_round_trips(self, ledger: LedgerPort) -> None:
        """A copy a service verified without reporting a digest keeps no checksum and its algorithm."""
        event = LocationVerified(
            "nersc832", P("raw/a.h5"), 10, None, "globus", at(1), "task-1", service_algorithm=ChecksumAlgorithm.MD5
        )
        ledger.record(event)
        copy = ledger.verified_copy("nersc832", P("raw/a.h5"))
        assert copy == event
        assert copy is not None
        assert copy.checksum is None
        assert copy.service_algorithm is ChecksumAlgorithm.MD5
        assert list(ledger.history(P("raw/a.h5"))) == [event]

    def test_record_many_appends_in_order(self, ledger: LedgerPort) -> None:
        """A batch lands in order, with the same effects as recording its events one by one."""
        ledger.record(scheduled("spot832", "raw/a.h5", 60))
        batch: list[LedgerEvent] = [
            verified("spot832", "raw/a.h5", 1),
            PruneRefused("spot832", P("raw/a.h5"), "copy missing", at(2)),
            PruneDone("spot832", P("raw/a.h5"), "data832", SUM, at(3)),
            LocationRemoved("spot832", P("raw/a.h5"), at(3)),
            verified("spot832", "raw/b.h5", 4),
        ]
        ledger.record_many(batch)
        ledger.record(verified("spot832", "raw/a.h5", 5, OTHER_SUM))
        assert list(ledger.history(P("raw/a.h5"))) == [
            scheduled("spot832", "raw/a.h5", 60),
            *batch[:4],
            verified("spot832", "raw/a.h5", 5, OTHER_SUM),
        ]
        assert list(ledger.history(P("raw/b.h5"))) == [batch[4]]
        assert ledger.pending_prunes() == []
        assert ledger.verified_copy("spot832", P("raw/a.h5")) == verified("spot832", "raw/a.h5", 5, OTHER_SUM)
        assert ledger.verified_paths("spot832") == frozenset({P("raw/a.h5"), P("raw/b.h5")})

    def test_record_many_later_events_of_a_batch_win(self, ledger: LedgerPort) -> None:
        """Within one batch a removal after a verification ends it, and a verification after a removal counts."""
        ledger.record_many(
            [
                verified("data832", "raw/a.h5", 0),
                LocationRemoved("data832", P("raw/a.h5"), at(1)),
                LocationRemoved("data832", P("raw/b.h5"), at(1)),
                verified("data832", "raw/b.h5", 2),
            ]
        )
        assert ledger.verified_copy("data832", P("raw/a.h5")) is None
        assert ledger.verified_copy("data832", P("raw/b.h5")) == verified("data832", "raw/b.h5", 2)

    def test_record_many_is_all_or_nothing(self, ledger: LedgerPort) -> None:
        """An event that cannot be stored (a naive time) fails the whole batch: nothing of it is recorded."""
        ledger.record(verified("spot832", "raw/a.h5", 0))
        ledger.record(scheduled("spot832", "raw/a.h5", 60))
        naive = LocationRemoved("spot832", P("raw/a.h5"), datetime(2025, 3, 1, 13, 0))
        with pytest.raises(SplashError):
            ledger.record_many([PruneDone("spot832", P("raw/a.h5"), "data832", SUM, at(61)), naive])
        assert list(ledger.history(P("raw/a.h5"))) == [
            verified("spot832", "raw/a.h5", 0),
            scheduled("spot832", "raw/a.h5", 60),
        ]
        assert ledger.pending_prunes() == [scheduled("spot832", "raw/a.h5", 60)]
        assert ledger.verified_copy("spot832", P("raw/a.h5")) == verified("spot832", "raw/a.h5", 0)
        # the ledger still works afterwards
        ledger.record_many([PruneDone("spot832", P("raw/a.h5"), "data832", SUM, at(61))])
        assert ledger.pending_prunes() == []

    def test_record_many_of_nothing_records_nothing(self, ledger: LedgerPort) -> None:
        """An empty batch is allowed and changes nothing."""
        ledger.record_many([])
        assert list(ledger.history(P("raw/a.h5"))) == []
        assert ledger.pending_prunes() == []
