"""MoveService: batched, idempotent, verified moves."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from splash_core.domain.errors import (
    ChecksumUnsupported,
    ExportControlViolation,
    InvalidInput,
    SourceNotFound,
    TransferError,
    TransferFailed,
    TransferTimeout,
    TransientTransferError,
    VerificationFailed,
)
from splash_core.domain.events import LocationVerified, StepState
from splash_core.domain.models import ChecksumAlgorithm, TransferItem, TransferRequest, TransferResult
from splash_core.domain.paths import RelPath
from splash_core.domain.services.move import MoveReport, MoveService, batch_key
from splash_core.domain.services.retry import RetryPolicy
from splash_core.domain.settings import TransferSettings
from tests.fakes import FakeFacility, FakeTransfer, digest

P = RelPath.parse


def _put_files(f: FakeFacility, n: int, endpoint: str = "spot832", folder: str = "scan") -> list[RelPath]:
    return [f.put(endpoint, f"{folder}/f{i:05d}.h5", f"data-{i}".encode()) for i in range(n)]


def _move(
    mover: MoveService,
    f: FakeFacility,
    paths: list[RelPath],
    *,
    dest_prefix: RelPath | None = None,
    export_controlled: bool = False,
) -> MoveReport:
    return mover.move(
        f.endpoint("spot832"),
        f.endpoint("data832_raw"),
        paths,
        label="test",
        dest_prefix=dest_prefix,
        export_controlled=export_controlled,
    )


def _verified(f: FakeFacility, endpoint: str) -> list[LocationVerified]:
    return [e for e in f.ledger.of_type(LocationVerified) if e.endpoint == endpoint]


def test_moves_and_verifies_every_file(facility: FakeFacility, mover: MoveService) -> None:
    """Every file lands at the destination and both ends are recorded as verified."""
    paths = _put_files(facility, 3)
    report = _move(mover, facility, paths)
    for path in paths:
        assert facility.read("data832_raw", path) == facility.read("spot832", path)
        copy = facility.ledger.verified_copy("data832_raw", path)
        assert copy is not None
        assert copy.verified_by == "splash"
        assert copy.checksum == digest(facility.read("spot832", path), ChecksumAlgorithm.BLAKE3)
        assert copy.task_id == report.task_ids[0]
        assert facility.ledger.verified_copy("spot832", path) is not None
    assert report.files == 3
    assert report.tasks_created == 1
    assert report.bytes_transferred == sum(len(facility.read("spot832", p)) for p in paths)
    assert report.seconds > 0


def test_service_verification_is_recorded_with_its_name(facility: FakeFacility, mover: MoveService) -> None:
    """A file the service verified with a checksum is recorded with verified_by and its algorithm."""
    facility.transfer.verifies_checksums = True
    paths = _put_files(facility, 2)
    _move(mover, facility, paths)
    for record in _verified(facility, "data832_raw"):
        assert record.verified_by == "fake-service"
        assert record.checksum.algorithm is ChecksumAlgorithm.BLAKE3


def test_export_controlled_data_is_refused_before_anything_is_sent(facility: FakeFacility, mover: MoveService) -> None:
    """Export-controlled data to an off-site endpoint raises before any lookup or submission."""
    paths = _put_files(facility, 2)
    with pytest.raises(ExportControlViolation, match="nersc832"):
        mover.move(
            facility.endpoint("spot832"),
            facility.endpoint("nersc832"),
            [*paths, P("does/not/exist")],
            label="secret",
            export_controlled=True,
        )
    assert facility.transfer.submissions == 0
    assert facility.storage.files(facility.endpoint("nersc832")) == {}
    assert facility.ledger.events == []


def test_export_controlled_data_may_stay_on_site(facility: FakeFacility, mover: MoveService) -> None:
    """Export-controlled data may move between on-site endpoints."""
    paths = _put_files(facility, 1)
    report = _move(mover, facility, paths, export_controlled=True)
    assert report.files == 1


def test_a_folder_expands_to_its_files(facility: FakeFacility, mover: MoveService) -> None:
    """A folder path moves every file below it."""
    paths = _put_files(facility, 3, folder="scan/sub")
    report = _move(mover, facility, [P("scan")])
    assert sorted(r.path for r in report.verified) == paths


def test_a_missing_source_fails_fast(facility: FakeFacility, mover: MoveService) -> None:
    """A path that does not exist raises SourceNotFound naming it and the endpoint; nothing is sent."""
    paths = _put_files(facility, 1)
    with pytest.raises(SourceNotFound, match=r"nope\.h5 does not exist on spot832"):
        _move(mover, facility, [*paths, P("nope.h5")])
    assert facility.transfer.submissions == 0
    assert facility.clock.sleeps == []


def test_verified_files_are_not_sent_again(facility: FakeFacility, mover: MoveService) -> None:
    """A second move of the same files skips them without a new task."""
    paths = _put_files(facility, 3)
    _move(mover, facility, paths)
    again = _move(mover, facility, paths)
    assert again.skipped == tuple(paths)
    assert again.verified == ()
    assert again.tasks_created == 0
    assert facility.transfer.submissions == 1


def test_a_source_that_changed_is_sent_again(facility: FakeFacility, mover: MoveService) -> None:
    """A source rewritten after its copy was verified is copied again."""
    paths = _put_files(facility, 2)
    _move(mover, facility, paths)
    facility.clock.advance(60)
    facility.put("spot832", paths[0], b"new contents, same name")
    report = _move(mover, facility, paths)
    assert [r.path for r in report.verified] == [paths[0]]
    assert report.skipped == (paths[1],)
    assert facility.read("data832_raw", paths[0]) == b"new contents, same name"


def test_files_are_batched_by_count(facility: FakeFacility, mover: MoveService) -> None:
    """2,500 files with at most 1,000 per batch make exactly three transfer tasks."""
    paths = _put_files(facility, 2500)
    report = _move(mover, facility, [P("scan")])
    assert facility.transfer.tasks_created == 3
    assert report.tasks_created == 3
    assert [len(r.items) for r in facility.transfer.requests] == [1000, 1000, 500]
    assert len(facility.ledger.verified_paths("data832_raw")) == 2500
    assert all(facility.exists("data832_raw", p) for p in paths)


def test_files_are_batched_by_bytes(facility: FakeFacility) -> None:
    """Batches stay under the byte limit, and a file over it goes alone."""
    for i in range(5):
        facility.put("spot832", f"s/{i}", b"1234")
    facility.put("spot832", "s/big", b"x" * 20)
    mover = MoveService(facility.transfer, facility.storage, facility.ledger, facility.clock, max_bytes_per_batch=10)
    _move(mover, facility, [P("s")])
    assert [len(r.items) for r in facility.transfer.requests] == [2, 2, 1, 1]


def test_transient_submit_errors_are_retried(facility: FakeFacility, mover: MoveService) -> None:
    """Two transient submit failures are retried with growing backoff on the clock."""
    paths = _put_files(facility, 1)
    facility.transfer.fail_next(2)
    report = _move(mover, facility, paths)
    assert report.files == 1
    assert len(facility.clock.sleeps) >= 2
    backoff = facility.clock.sleeps[:2]
    assert backoff[1] > backoff[0]


def test_a_permanent_submit_error_fails_fast(facility: FakeFacility, mover: MoveService) -> None:
    """A refused submission raises at once without retrying or recording copies."""
    paths = _put_files(facility, 1)
    facility.transfer.fail_next(1, transient=False)
    with pytest.raises(TransferError, match="refused"):
        _move(mover, facility, paths)
    assert facility.clock.sleeps == []
    assert _verified(facility, "data832_raw") == []


def test_retries_are_bounded(facility: FakeFacility) -> None:
    """A service that stays unavailable is tried only as often as the policy allows."""
    paths = _put_files(facility, 1)
    facility.transfer.fail_next(10)
    mover = MoveService(
        facility.transfer, facility.storage, facility.ledger, facility.clock, retry=RetryPolicy(attempts=3)
    )
    with pytest.raises(TransientTransferError):
        _move(mover, facility, paths)
    assert facility.transfer.faults.triggered == 3
    assert facility.transfer.tasks_created == 0


def test_a_partial_task_raises_and_records_nothing(facility: FakeFacility, mover: MoveService) -> None:
    """A task that copied only some files raises and no file of it counts as copied."""
    paths = _put_files(facility, 3)
    facility.transfer.partial_next(1)
    with pytest.raises(TransferFailed, match="fake-task-0001"):
        _move(mover, facility, paths)
    assert facility.exists("data832_raw", paths[0])
    assert _verified(facility, "data832_raw") == []


def test_a_skipped_file_in_a_succeeded_task_raises(facility: FakeFacility, mover: MoveService) -> None:
    """A task that succeeded but skipped a file raises naming that file."""
    paths = _put_files(facility, 2)
    facility.transfer.skip_next(paths[1])
    with pytest.raises(TransferFailed, match=r"skipped for scan/f00001\.h5"):
        _move(mover, facility, paths)


def test_a_corrupt_copy_is_caught_by_verification(facility: FakeFacility, mover: MoveService) -> None:
    """A copy that differs from its source raises VerificationFailed naming file, endpoint and task."""
    paths = _put_files(facility, 1)
    facility.transfer.corrupt_next()
    with pytest.raises(VerificationFailed, match=r"scan/f00000\.h5 on data832_raw.*fake-task-0001"):
        _move(mover, facility, paths)
    assert facility.ledger.verified_copy("data832_raw", paths[0]) is None
    step = next(iter(facility.ledger.steps.values()))
    assert step.state is StepState.FAILED


def test_always_checksum_catches_a_service_that_lies(facility: FakeFacility) -> None:
    """With always_checksum a corrupt copy the service claimed verified is still caught."""
    facility.transfer.verifies_checksums = True
    paths = _put_files(facility, 1)
    facility.transfer.corrupt_next()
    mover = MoveService(facility.transfer, facility.storage, facility.ledger, facility.clock, always_checksum=True)
    with pytest.raises(VerificationFailed):
        _move(mover, facility, paths)
    assert facility.ledger.verified_copy("data832_raw", paths[0]) is None


def test_a_verification_failure_stops_the_later_batches(facility: FakeFacility) -> None:
    """After a batch fails verification no further batch is submitted."""
    paths = _put_files(facility, 3)
    facility.transfer.corrupt_next()
    mover = MoveService(facility.transfer, facility.storage, facility.ledger, facility.clock, max_files_per_batch=1)
    with pytest.raises(VerificationFailed):
        _move(mover, facility, paths)
    assert facility.transfer.tasks_created == 1
    assert not facility.exists("data832_raw", paths[1])


def test_a_hanging_task_times_out_and_is_cancelled(facility: FakeFacility) -> None:
    """A task that never finishes raises TransferTimeout after the deadline and is cancelled."""
    paths = _put_files(facility, 1)
    facility.transfer.hang_next()
    mover = MoveService(facility.transfer, facility.storage, facility.ledger, facility.clock, timeout_s=120)
    with pytest.raises(TransferTimeout, match="fake-task-0001"):
        _move(mover, facility, paths)
    assert facility.transfer.cancelled == ["fake-task-0001"]
    assert facility.clock.monotonic() == pytest.approx(120)


def test_a_failed_batch_is_resubmitted_under_a_new_key(facility: FakeFacility, mover: MoveService) -> None:
    """Moving again after a failed task creates a new task instead of reusing the failed one."""
    paths = _put_files(facility, 2)
    facility.transfer.fail_task_next("endpoint error")
    with pytest.raises(TransferFailed, match="endpoint error"):
        _move(mover, facility, paths)
    report = _move(mover, facility, paths)
    assert report.files == 2
    assert facility.transfer.tasks_created == 2
    keys = [r.idempotency_key for r in facility.transfer.requests]
    assert keys[0] != keys[1]


class _Crash(BaseException):
    """Stands for the process dying."""


class _CrashingTransfer(FakeTransfer):
    """Dies (once) while waiting, like a worker killed mid-transfer."""

    crash = True

    def wait(self, task_id: str, timeout_s: float) -> TransferResult:
        if self.crash:
            self.crash = False
            raise _Crash
        return super().wait(task_id, timeout_s)


def test_a_move_resumed_after_a_crash_reuses_the_task(facility: FakeFacility) -> None:
    """After a crash mid-wait, moving again reuses the submitted task rather than starting another."""
    transfer = _CrashingTransfer(facility.storage, facility.clock)
    paths = _put_files(facility, 2)
    with pytest.raises(_Crash):
        _move(MoveService(transfer, facility.storage, facility.ledger, facility.clock), facility, paths)
    report = _move(MoveService(transfer, facility.storage, facility.ledger, facility.clock), facility, paths)
    assert transfer.tasks_created == 1
    assert transfer.submissions == 2
    assert report.tasks_created == 0
    assert report.task_ids == ("fake-task-0001",)
    assert report.files == 2


def test_dest_prefix_places_files_below_it(facility: FakeFacility, mover: MoveService) -> None:
    """With a destination prefix, files land (and are recorded) below it."""
    paths = _put_files(facility, 1)
    _move(mover, facility, paths, dest_prefix=P("2025/run1"))
    target = P("2025/run1").join(paths[0].value)
    assert facility.exists("data832_raw", target)
    assert facility.ledger.verified_copy("data832_raw", target) is not None


def test_endpoints_without_a_common_checksum_are_refused(facility: FakeFacility, mover: MoveService) -> None:
    """Endpoints that share no checksum algorithm raise before anything is sent."""
    paths = _put_files(facility, 1)
    facility.storage.set_algorithms(facility.endpoint("spot832"), [ChecksumAlgorithm.MD5])
    facility.storage.set_algorithms(facility.endpoint("data832_raw"), [ChecksumAlgorithm.SHA256])
    with pytest.raises(ChecksumUnsupported, match="spot832"):
        _move(mover, facility, paths)
    assert facility.transfer.submissions == 0


def test_a_common_algorithm_is_chosen_when_the_preferred_is_missing(facility: FakeFacility, mover: MoveService) -> None:
    """When BLAKE3 is not available on both ends, an algorithm they share is used."""
    paths = _put_files(facility, 1)
    facility.storage.set_algorithms(facility.endpoint("data832_raw"), [ChecksumAlgorithm.SHA256])
    report = _move(mover, facility, paths)
    assert report.verified[0].checksum.algorithm is ChecksumAlgorithm.SHA256


def test_transient_storage_errors_while_verifying_are_retried(facility: FakeFacility, mover: MoveService) -> None:
    """A checksum call that fails transiently is retried and the move succeeds."""
    paths = _put_files(facility, 1)
    facility.storage.fail_next(2, op="checksum")
    assert _move(mover, facility, paths).files == 1


def test_moving_onto_the_same_endpoint_is_refused(facility: FakeFacility, mover: MoveService) -> None:
    """A move whose source and destination are the same endpoint raises InvalidInput."""
    with pytest.raises(InvalidInput):
        mover.move(facility.endpoint("spot832"), facility.endpoint("spot832"), [P("a")], label="x")


def test_batch_keys_ignore_order(facility: FakeFacility) -> None:
    """The same items in another order give the same batch key."""
    a, b = TransferItem(P("a"), P("a")), TransferItem(P("b"), P("b"))
    src, dst = facility.endpoint("spot832"), facility.endpoint("data832_raw")
    assert batch_key(src, dst, [a, b]) == batch_key(src, dst, [b, a])
    assert batch_key(src, dst, [a]) != batch_key(dst, src, [a])
    request = TransferRequest(src, dst, (a,), "x", batch_key(src, dst, [a]))
    assert request.total_files == 1


class _Misreporting(FakeTransfer):
    """Runs tasks faithfully, then lets a test rewrite the result it returns."""

    def __init__(self, f: FakeFacility, rewrite: Callable[[TransferResult], TransferResult]) -> None:
        super().__init__(f.storage, f.clock)
        self.rewrite = rewrite

    def wait(self, task_id: str, timeout_s: float) -> TransferResult:
        return self.rewrite(super().wait(task_id, timeout_s))


def _mover_over(f: FakeFacility, transfer: FakeTransfer) -> MoveService:
    return MoveService(transfer, f.storage, f.ledger, f.clock)


def test_a_success_without_file_outcomes_raises(facility: FakeFacility) -> None:
    """A task reported SUCCEEDED that says nothing about a file does not count as copying it."""
    paths = _put_files(facility, 1)
    transfer = _Misreporting(facility, lambda r: attrs.evolve(r, files=()))
    with pytest.raises(TransferFailed, match="no outcome"):
        _move(_mover_over(facility, transfer), facility, paths)
    assert facility.ledger.verified_copy("data832_raw", paths[0]) is None


def test_a_service_claiming_the_wrong_size_raises(facility: FakeFacility) -> None:
    """A service-verified record whose size differs from the source raises VerificationFailed."""
    facility.transfer.verifies_checksums = True
    paths = _put_files(facility, 1)

    def grow(result: TransferResult) -> TransferResult:
        (outcome,) = result.files
        assert outcome.record is not None
        record = attrs.evolve(outcome.record, size=outcome.record.size + 1)
        return attrs.evolve(result, files=(attrs.evolve(outcome, record=record),))

    transfer = _Misreporting(facility, grow)
    transfer.verifies_checksums = True
    with pytest.raises(VerificationFailed, match="size"):
        _move(_mover_over(facility, transfer), facility, paths)


def test_a_copy_gone_before_verification_raises(facility: FakeFacility) -> None:
    """A copy that vanished before it could be checksummed raises VerificationFailed naming it."""
    paths = _put_files(facility, 1)

    def lose_copy(result: TransferResult) -> TransferResult:
        facility.storage.remove(facility.endpoint("data832_raw"), paths[0])
        return result

    with pytest.raises(VerificationFailed, match=r"f00000\.h5 on data832_raw does not exist"):
        _move(_mover_over(facility, _Misreporting(facility, lose_copy)), facility, paths)


def test_settings_configure_the_service(facility: FakeFacility) -> None:
    """from_settings takes batch limits, timeout, retries and algorithm from the transfer settings."""
    settings = TransferSettings(max_files_per_batch=2, timeout_seconds=5, retry_attempts=2)
    mover = MoveService.from_settings(facility.transfer, facility.storage, facility.ledger, facility.clock, settings)
    assert (mover.max_files_per_batch, mover.timeout_s, mover.retry.attempts) == (2, 5, 2)
    _put_files(facility, 5)
    assert _move(mover, facility, [P("scan")]).tasks_created == 3
    with pytest.raises(InvalidInput):
        MoveService(facility.transfer, facility.storage, facility.ledger, facility.clock, max_files_per_batch=0)
    with pytest.raises(InvalidInput):
        MoveService(facility.transfer, facility.storage, facility.ledger, facility.clock, timeout_s=0)
