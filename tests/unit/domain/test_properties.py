"""Properties that must hold whatever happens: prune safety and export control."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from splash_core.domain.errors import ExportControlViolation, SplashError
from splash_core.domain.models import ChecksumAlgorithm, RetentionPolicy
from splash_core.domain.paths import RelPath
from splash_core.domain.services.move import MoveService
from splash_core.domain.services.prune import PruneService
from tests.fakes import FakeFacility, FakeTransfer, digest, reference_endpoints

ACTIONS = (
    "corrupt_copy",
    "remove_copy",
    "corrupt_source",
    "rewrite_source",
    "rewrite_source_same_size",
    "remove_source",
    "escape_source",
    "advance",
    "prune",
    "move_again",
    "storage_fault",
)
ENDPOINTS = sorted(reference_endpoints())

# how the copies were verified:
# splash       - splash checksummed both ends (a digest in the ledger)
# uncheckable  - a Globus-like service compared MD5 and reported no digest; the storage
#                offers no checksums, ever (so prune can never re-verify: nothing may go)
# mounted      - as uncheckable, but prune later runs with checksum-capable storage
VERIFICATION = ("splash", "uncheckable", "mounted")


@pytest.mark.parametrize("verification", VERIFICATION)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 2)), max_size=25))
def test_prune_never_deletes_without_a_verified_matching_copy(verification: str, steps: list[tuple[str, int]]) -> None:
    """Whatever happens to copies, sources, links and time, every deletion had a verified copy of the same bytes."""
    f = FakeFacility()
    spot, raw = f.endpoint("spot832"), f.endpoint("data832_raw")
    if verification != "splash":
        f.transfer = FakeTransfer(
            f.storage, f.clock, verifies_checksums=True, service_algorithm=ChecksumAlgorithm.MD5, reports_digests=False
        )
        for endpoint in (spot, raw):
            f.storage.set_algorithms(endpoint, [])
    mover = MoveService(f.transfer, f.storage, f.ledger, f.clock)
    pruner = PruneService(f.storage, f.ledger, f.clock, f.endpoints)
    paths = [f.put("spot832", f"scan/{n}.h5", f"raw data {n}".encode()) for n in "abc"]
    mover.move(spot, raw, paths, label="initial")
    if verification == "mounted":
        for endpoint in (spot, raw):
            f.storage.set_algorithms(endpoint, [ChecksumAlgorithm.SHA256, ChecksumAlgorithm.MD5])
    scheduled_at = f.clock.now()
    pruner.schedule("spot832", paths, RetentionPolicy("spot832", 1, "data832_raw"))
    escaped: set[RelPath] = set()
    for action, i in [*steps, ("advance", 2), ("prune", 0)]:
        path = paths[i]
        if action == "corrupt_copy" and f.exists("data832_raw", path):
            f.storage.corrupt(raw, path)
        elif action == "remove_copy":
            f.storage.remove(raw, path)
        elif action == "corrupt_source" and f.exists("spot832", path):
            f.storage.corrupt(spot, path)
        elif action == "rewrite_source":
            f.put("spot832", path, b"a new, longer version of the scan")
        elif action == "rewrite_source_same_size" and f.exists("spot832", path):
            f.put("spot832", path, f.read("spot832", path).swapcase())
        elif action == "remove_source":
            f.storage.remove(spot, path)
        elif action == "escape_source":
            f.storage.symlink_escape(spot, path)
            escaped.add(path)
        elif action == "advance":
            f.clock.advance(timedelta(hours=12 * (i + 1)))
        elif action == "storage_fault":
            f.storage.fail_next(i + 1, transient=i != 0)
        elif action == "move_again":
            present = [p for p in paths if f.exists("spot832", p)]
            with contextlib.suppress(SplashError):  # a failed move is one of the things that may happen
                mover.move(spot, raw, present, label="again")
        elif action == "prune":
            before = {p: f.read("spot832", p) for p in paths if f.exists("spot832", p)}
            already = len(f.storage.deleted)
            report = pruner.run_due()
            event(f"prune run deleted {len(report.deleted)}, refused {min(len(report.refused), 1)}+")
            for endpoint, gone in f.storage.deleted[already:]:
                assert endpoint == "spot832"
                assert gone not in escaped
                assert f.clock.now() >= scheduled_at + timedelta(days=1)
                copy = f.ledger.verified_copy("data832_raw", gone)
                assert copy is not None
                assert f.read("data832_raw", gone) == before[gone]
                if copy.checksum is not None:
                    assert digest(before[gone], copy.checksum.algorithm) == copy.checksum
                else:  # verified by the service without a digest: re-verified by fresh checksums
                    assert verification == "mounted"
                    assert copy.service_algorithm is ChecksumAlgorithm.MD5
                assert copy.size == len(before[gone])
    if verification == "uncheckable":
        assert f.storage.deleted == []


@settings(max_examples=200, deadline=None)
@given(
    source=st.sampled_from(ENDPOINTS),
    destination=st.sampled_from(ENDPOINTS),
    export_controlled=st.booleans(),
    files=st.integers(1, 3),
    as_folder=st.booleans(),
)
def test_export_controlled_data_never_reaches_an_off_site_endpoint(
    source: str, destination: str, export_controlled: bool, files: int, as_folder: bool
) -> None:
    """A move of export-controlled data never writes anything to an off-site endpoint."""
    assume(source != destination)
    f = FakeFacility()
    mover = MoveService(f.transfer, f.storage, f.ledger, f.clock)
    paths = [f.put(source, f"xfer/{i}.h5", b"sensitive %d" % i) for i in range(files)]
    off_site = [e for e in f.endpoints.values() if e.off_site]
    before = {e.name: f.storage.files(e) for e in off_site}
    dest = f.endpoint(destination)
    try:
        report = mover.move(
            f.endpoint(source),
            dest,
            [RelPath.parse("xfer")] if as_folder else paths,
            label="prop",
            export_controlled=export_controlled,
        )
    except ExportControlViolation:
        assert export_controlled
        assert dest.off_site
        assert f.transfer.submissions == 0
    else:
        assert not (export_controlled and dest.off_site)
        assert report.files + len(report.skipped) == files
    if export_controlled:
        assert {e.name: f.storage.files(e) for e in off_site} == before
