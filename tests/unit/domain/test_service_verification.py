"""Copies verified by the transfer service without a digest (as Globus does): move and prune.

Globus compares MD5 checksums at both ends but never reports the digest, and Globus storage
cannot compute one. These tests play that with the fakes: a :class:`FakeTransfer` that
verifies in MD5 and reports no digest, over a :class:`FakeStorage` whose endpoints offer no
checksums (or do, to show the storage's own check wins when it is possible).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import attrs
import pytest

from splash_core.domain.errors import ChecksumUnsupported, InvalidInput, TransferFailed, VerificationFailed
from splash_core.domain.events import LocationRemoved, LocationVerified, PruneDone, PruneRefused
from splash_core.domain.models import ChecksumAlgorithm, FileOutcome, RetentionPolicy, TransferResult
from splash_core.domain.paths import RelPath
from splash_core.domain.services.move import MoveReport, MoveService
from splash_core.domain.services.prune import PruneService
from tests.fakes import VERIFIED_BY, FakeFacility, FakeTransfer, digest

P = RelPath.parse
MD5 = ChecksumAlgorithm.MD5
POLICY = RetentionPolicy(endpoint="spot832", days=1, check_endpoint="data832_raw")
ENDS = ("spot832", "data832_raw")


def _globus_like(f: FakeFacility, *, reports_digests: bool = False) -> FakeTransfer:
    """A transfer service that compares MD5 at both ends and (by default) reports no digest."""
    f.transfer = FakeTransfer(
        f.storage, f.clock, verifies_checksums=True, service_algorithm=MD5, reports_digests=reports_digests
    )
    return f.transfer


def _no_checksums(f: FakeFacility, *names: str) -> None:
    for name in names or ENDS:
        f.storage.set_algorithms(name, [])


def _mover(f: FakeFacility) -> MoveService:
    return MoveService(f.transfer, f.storage, f.ledger, f.clock)


def _pruner(f: FakeFacility) -> PruneService:
    return PruneService(f.storage, f.ledger, f.clock, f.endpoints)


def _put(f: FakeFacility, *names: str) -> list[RelPath]:
    return [f.put("spot832", f"scan/{name}", f"contents of {name}".encode()) for name in names]


def _move(f: FakeFacility, paths: list[RelPath], mover: MoveService | None = None) -> MoveReport:
    return (mover or _mover(f)).move(f.endpoint("spot832"), f.endpoint("data832_raw"), paths, label="test")


def _schedule_and_wait(f: FakeFacility, paths: list[RelPath]) -> None:
    _pruner(f).schedule("spot832", paths, POLICY)
    f.clock.advance(timedelta(days=1, seconds=1))


class _Rewriting(FakeTransfer):
    """A Globus-like fake whose results a test rewrites before the caller sees them."""

    def __init__(self, f: FakeFacility, rewrite: Callable[[TransferResult], TransferResult]) -> None:
        super().__init__(f.storage, f.clock, verifies_checksums=True, service_algorithm=MD5, reports_digests=False)
        self.rewrite = rewrite

    def wait(self, task_id: str, timeout_s: float) -> TransferResult:
        return self.rewrite(super().wait(task_id, timeout_s))


# --- move -------------------------------------------------------------------


def test_the_service_verification_is_accepted_and_recorded_with_its_algorithm(facility: FakeFacility) -> None:
    """Storage that cannot checksum: the service's MD5 comparison counts, recorded without a digest."""
    transfer = _globus_like(facility)
    _no_checksums(facility)
    paths = _put(facility, "a.h5", "b.h5")
    report = _move(facility, paths)
    assert report.files == 2
    assert transfer.requests[0].checksum_algorithm is MD5
    for path in paths:
        assert facility.read("data832_raw", path) == facility.read("spot832", path)
        copy = facility.ledger.verified_copy("data832_raw", path)
        assert copy is not None
        assert copy.checksum is None
        assert copy.service_algorithm is MD5
        assert copy.verified_by == VERIFIED_BY
        assert copy.size == len(facility.read("spot832", path))
        assert copy.task_id == report.task_ids[0]
        assert copy.verification == f"{VERIFIED_BY} (md5, digest not reported)"
        assert copy.checksum_text == "not reported"
        # no digest is known for the source, so none is invented for it
        assert facility.ledger.verified_copy("spot832", path) is None
    assert facility.storage.checksum_calls == 0
    assert list(report.verified) == [facility.ledger.verified_copy("data832_raw", p) for p in paths]


def test_a_copy_already_verified_by_the_service_is_not_sent_again(facility: FakeFacility) -> None:
    """A digest-less verification counts as a verified copy for the next move's skip check."""
    transfer = _globus_like(facility)
    _no_checksums(facility)
    paths = _put(facility, "a.h5")
    _move(facility, paths)
    report = _move(facility, paths)
    assert report.skipped == tuple(paths)
    assert transfer.tasks_created == 1


def test_a_digest_reported_by_the_service_is_kept_for_both_ends(facility: FakeFacility) -> None:
    """When the service does report its digest, copy and source are recorded with it."""
    _globus_like(facility, reports_digests=True)
    _no_checksums(facility)
    (path,) = _put(facility, "a.h5")
    _move(facility, [path])
    expected = digest(facility.read("spot832", path), MD5)
    for endpoint in ENDS:
        verified = facility.ledger.verified_copy(endpoint, path)
        assert verified is not None
        assert verified.checksum == expected
        assert verified.service_algorithm is MD5


def test_storage_that_can_checksum_still_checks_both_ends_itself(facility: FakeFacility) -> None:
    """With checksum-capable storage the service's digest-less claim is checked by splash."""
    _globus_like(facility)
    (path,) = _put(facility, "a.h5")
    report = _move(facility, [path])
    (copy,) = report.verified
    assert copy.verified_by == "splash"
    assert copy.checksum == digest(facility.read("spot832", path), ChecksumAlgorithm.BLAKE3)
    assert facility.ledger.verified_copy("spot832", path) is not None


def test_a_lying_service_is_caught_when_the_storage_can_checksum(facility: FakeFacility) -> None:
    """A corrupt copy claimed VERIFIED is caught by splash's own comparison when it can make one."""
    transfer = _globus_like(facility)
    transfer.corrupt_next()
    paths = _put(facility, "a.h5")
    with pytest.raises(VerificationFailed):
        _move(facility, paths)
    assert facility.ledger.verified_copy("data832_raw", paths[0]) is None


def test_a_size_mismatch_still_fails(facility: FakeFacility) -> None:
    """The service's verification is accepted only when the copy's size is the source's."""

    def grow(result: TransferResult) -> TransferResult:
        (outcome,) = result.files
        assert outcome.record is not None
        record = attrs.evolve(outcome.record, size=outcome.record.size + 1)
        return attrs.evolve(result, files=(attrs.evolve(outcome, record=record),))

    facility.transfer = _Rewriting(facility, grow)
    _no_checksums(facility)
    paths = _put(facility, "a.h5")
    with pytest.raises(VerificationFailed, match=r"size 16 vs 17"):
        _move(facility, paths)
    assert facility.ledger.of_type(LocationVerified) == []


@pytest.mark.parametrize(
    "strip",
    [
        pytest.param(lambda o: attrs.evolve(o, service_algorithm=None), id="no-algorithm"),
        pytest.param(lambda o: attrs.evolve(o, verified_by=None), id="no-verifier"),
        pytest.param(lambda o: attrs.evolve(o, record=None), id="no-record"),
    ],
)
def test_an_outcome_that_does_not_say_it_compared_checksums_fails(
    facility: FakeFacility, strip: Callable[[FileOutcome], FileOutcome]
) -> None:
    """A VERIFIED outcome with no digest and no service algorithm is a size check only: refused."""
    facility.transfer = _Rewriting(facility, lambda r: attrs.evolve(r, files=tuple(strip(o) for o in r.files)))
    _no_checksums(facility)
    paths = _put(facility, "a.h5")
    with pytest.raises(VerificationFailed, match=r"without saying it compared checksums"):
        _move(facility, paths)
    assert facility.ledger.of_type(LocationVerified) == []


def test_a_file_the_service_did_not_verify_is_never_accepted(facility: FakeFacility) -> None:
    """A skipped file of a succeeded task is not recorded, whatever the service verifies."""
    transfer = _globus_like(facility)
    _no_checksums(facility)
    paths = _put(facility, "a.h5", "b.h5")
    transfer.skip_next(paths[1])
    with pytest.raises(TransferFailed, match="reported skipped"):
        _move(facility, paths)
    assert facility.ledger.verified_copy("data832_raw", paths[1]) is None


def test_a_service_that_does_not_verify_and_storage_that_cannot_are_refused(facility: FakeFacility) -> None:
    """No one can verify the copies: nothing is sent."""
    _no_checksums(facility)
    paths = _put(facility, "a.h5")
    with pytest.raises(ChecksumUnsupported, match="compares no checksums itself"):
        _move(facility, paths)
    assert facility.transfer.submissions == 0


def test_always_checksum_refuses_when_the_storage_cannot(facility: FakeFacility) -> None:
    """always_checksum asks splash to checksum both ends; without storage checksums nothing is sent."""
    transfer = _globus_like(facility)
    _no_checksums(facility)
    mover = MoveService(transfer, facility.storage, facility.ledger, facility.clock, always_checksum=True)
    with pytest.raises(ChecksumUnsupported, match="always_checksum"):
        _move(facility, _put(facility, "a.h5"), mover)
    assert transfer.submissions == 0


def test_a_verification_names_a_checksum_or_an_algorithm() -> None:
    """A LocationVerified with neither a digest nor a service algorithm cannot be made."""
    at = FakeFacility().clock.now()
    with pytest.raises(InvalidInput, match="a size alone"):
        LocationVerified("data832", P("a.h5"), 5, None, "globus", at)
    splash = LocationVerified("data832", P("a.h5"), 5, digest(b"abcde", MD5), "splash", at)
    assert splash.verification == "splash"
    assert splash.checksum_text == f"md5:{digest(b'abcde', MD5).digest}"


# --- prune ------------------------------------------------------------------


def test_prune_refuses_a_digest_less_copy_it_cannot_re_verify(facility: FakeFacility) -> None:
    """The check endpoint offers no checksums: the file is kept and the prune stays pending."""
    _globus_like(facility)
    _no_checksums(facility)
    (path,) = _put(facility, "a.h5")
    _move(facility, [path])
    _schedule_and_wait(facility, [path])
    report = _pruner(facility).run_due()
    assert report.deleted == ()
    assert facility.exists("spot832", path)
    (refusal,) = report.refused
    assert refusal.reason == (
        "scan/a.h5 on spot832 was kept: its copy scan/a.h5 on data832_raw was verified by "
        f"{VERIFIED_BY} (md5, digest not reported) but splash cannot re-verify it now: endpoint data832_raw "
        "offers no checksums. Run prune where the files are mounted, or configure a checksum-capable "
        "storage adapter"
    )
    assert facility.ledger.of_type(PruneRefused) == [refusal]
    assert [p.path for p in facility.ledger.pending_prunes()] == [path]
    assert facility.ledger.verified_copy("data832_raw", path) is not None  # not forgotten
    assert facility.storage.deleted == []


def test_prune_refuses_when_only_the_file_to_delete_cannot_be_checksummed(facility: FakeFacility) -> None:
    """The copy can be checksummed but the source cannot (no common algorithm): kept."""
    _globus_like(facility)
    _no_checksums(facility)
    (path,) = _put(facility, "a.h5")
    _move(facility, [path])
    facility.storage.set_algorithms("data832_raw", [MD5])
    _schedule_and_wait(facility, [path])
    report = _pruner(facility).run_due()
    assert facility.exists("spot832", path)
    assert "spot832 (none) and data832_raw (md5) share no checksum algorithm" in report.refused[0].reason


def test_prune_deletes_when_fresh_checksums_of_both_ends_match(facility: FakeFacility) -> None:
    """Once the storage can checksum both ends, a digest-less copy that matches the file lets it go."""
    _globus_like(facility)
    _no_checksums(facility)
    (path,) = _put(facility, "a.h5")
    data = facility.read("spot832", path)
    _move(facility, [path])
    # e.g. prune runs where the files are mounted, with a checksum-capable storage adapter
    facility.storage.set_algorithms("spot832", [ChecksumAlgorithm.SHA256, MD5])
    facility.storage.set_algorithms("data832_raw", [ChecksumAlgorithm.BLAKE3, MD5])
    _schedule_and_wait(facility, [path])
    report = _pruner(facility).run_due()
    assert not facility.exists("spot832", path)
    (done,) = report.deleted
    # the service's own algorithm is preferred when both ends offer it
    assert done.copy_checksum == digest(data, MD5)
    assert facility.ledger.of_type(PruneDone) == [done]
    assert facility.ledger.pending_prunes() == []


def test_prune_compares_in_any_common_algorithm(facility: FakeFacility) -> None:
    """Without the service's algorithm on both ends, any algorithm both offer is used."""
    _globus_like(facility)
    _no_checksums(facility)
    (path,) = _put(facility, "a.h5")
    data = facility.read("spot832", path)
    _move(facility, [path])
    facility.storage.set_algorithms("spot832", [ChecksumAlgorithm.SHA256])
    facility.storage.set_algorithms("data832_raw", [ChecksumAlgorithm.BLAKE3, ChecksumAlgorithm.SHA256])
    _schedule_and_wait(facility, [path])
    (done,) = _pruner(facility).run_due().deleted
    assert done.copy_checksum == digest(data, ChecksumAlgorithm.SHA256)


@pytest.mark.parametrize("changed", ["spot832", "data832_raw"])
def test_prune_refuses_when_fresh_checksums_differ_and_keeps_the_copy(facility: FakeFacility, changed: str) -> None:
    """Copy or file changed in place: kept, and the copy is not forgotten (which side is right is unknown)."""
    _globus_like(facility)
    (path,) = _put(facility, "a.h5")
    _no_checksums(facility)
    _move(facility, [path])
    facility.storage.set_algorithms("spot832", [MD5])
    facility.storage.set_algorithms("data832_raw", [MD5])
    facility.storage.corrupt(facility.endpoint(changed), path)
    _schedule_and_wait(facility, [path])
    report = _pruner(facility).run_due()
    assert facility.exists("spot832", path)
    assert "cannot tell which of them changed" in report.refused[0].reason
    assert facility.ledger.of_type(LocationRemoved) == []
    assert facility.ledger.verified_copy("data832_raw", path) is not None


def test_a_digest_less_copy_that_shrank_is_forgotten(facility: FakeFacility) -> None:
    """A copy whose size changed since the service verified it is stale: refused and forgotten."""
    _globus_like(facility)
    _no_checksums(facility)
    (path,) = _put(facility, "a.h5")
    _move(facility, [path])
    facility.put("data832_raw", path, b"short")
    _schedule_and_wait(facility, [path])
    report = _pruner(facility).run_due()
    assert facility.exists("spot832", path)
    assert "is 5 bytes now" in report.refused[0].reason
    assert facility.ledger.verified_copy("data832_raw", path) is None


def test_a_dry_run_of_a_digest_less_copy_changes_nothing(facility: FakeFacility) -> None:
    """A dry run reports the refusal and records nothing."""
    _globus_like(facility)
    _no_checksums(facility)
    (path,) = _put(facility, "a.h5")
    _move(facility, [path])
    _schedule_and_wait(facility, [path])
    events = len(facility.ledger.events)
    report = _pruner(facility).run_due(dry_run=True)
    assert len(report.refused) == 1
    assert len(facility.ledger.events) == events


def test_a_file_already_gone_with_a_re_verified_copy_is_marked_done(facility: FakeFacility) -> None:
    """The file vanished; its digest-less copy still checksums, so the prune is done with that checksum."""
    _globus_like(facility)
    _no_checksums(facility)
    (path,) = _put(facility, "a.h5")
    data = facility.read("spot832", path)
    _move(facility, [path])
    facility.storage.set_algorithms("spot832", [MD5])
    facility.storage.set_algorithms("data832_raw", [MD5])
    facility.storage.remove(facility.endpoint("spot832"), path)
    _schedule_and_wait(facility, [path])
    report = _pruner(facility).run_due()
    assert [p.path for p in report.already_gone] == [path]
    (done,) = facility.ledger.of_type(PruneDone)
    assert done.copy_checksum == digest(data, MD5)
