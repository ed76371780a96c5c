"""ReconcileService: files on a source without a verified copy at the destination."""

from __future__ import annotations

import pytest

from splash_core.domain.errors import InvalidInput
from splash_core.domain.events import LocationRemoved
from splash_core.domain.paths import RelPath
from splash_core.domain.services.move import MoveService
from splash_core.domain.services.reconcile import ReconcileService, matches
from tests.fakes import FakeFacility

P = RelPath.parse


def test_unmoved_files_are_missing_until_moved(
    facility: FakeFacility, mover: MoveService, reconciler: ReconcileService
) -> None:
    """Files without a verified copy are listed, and not once they are moved."""
    paths = [facility.put("spot832", f"s/{n}.h5", b"x") for n in "ab"]
    source = facility.endpoint("spot832")
    assert reconciler.missing(source, "data832_raw") == paths
    mover.move(source, facility.endpoint("data832_raw"), paths[:1], label="t")
    assert reconciler.missing(source, "data832_raw") == paths[1:]


def test_a_removed_copy_makes_the_file_missing_again(
    facility: FakeFacility, mover: MoveService, reconciler: ReconcileService
) -> None:
    """A copy recorded as removed no longer counts."""
    path = facility.put("spot832", "a.h5", b"x")
    mover.move(facility.endpoint("spot832"), facility.endpoint("data832_raw"), [path], label="t")
    facility.ledger.record(LocationRemoved("data832_raw", path, facility.clock.now()))
    assert reconciler.missing(facility.endpoint("spot832"), "data832_raw") == [path]


def test_include_patterns_filter_names(facility: FakeFacility, reconciler: ReconcileService) -> None:
    """Only names matching the include patterns are listed."""
    facility.put("spot832", "a.h5", b"x")
    facility.put("spot832", "b.H5", b"x")
    facility.put("spot832", "c.txt", b"x")
    found = reconciler.missing(facility.endpoint("spot832"), "data832_raw", include=["*.h5"])
    assert found == [P("a.h5"), P("b.H5")]
    assert reconciler.missing(facility.endpoint("spot832"), "data832_raw", include=[".txt"]) == [P("c.txt")]


def test_files_still_being_written_are_left_alone(facility: FakeFacility, reconciler: ReconcileService) -> None:
    """A file modified within the settle time is not listed until it settles."""
    facility.put("spot832", "a.h5", b"x")
    source = facility.endpoint("spot832")
    assert reconciler.missing(source, "data832_raw", settle_s=30) == []
    facility.clock.advance(31)
    assert reconciler.missing(source, "data832_raw", settle_s=30) == [P("a.h5")]


def test_prefixes_narrow_the_listing_and_map_the_copies(
    facility: FakeFacility, mover: MoveService, reconciler: ReconcileService
) -> None:
    """A source prefix limits the listing and a destination prefix is where copies are looked for."""
    path = facility.put("spot832", "s/a.h5", b"x")
    facility.put("spot832", "other/b.h5", b"x")
    source = facility.endpoint("spot832")
    mover.move(source, facility.endpoint("data832_raw"), [path], label="t", dest_prefix=P("p"))
    assert reconciler.missing(source, "data832_raw", prefix=P("s")) == [path]
    assert reconciler.missing(source, "data832_raw", prefix=P("s"), dest_prefix=P("p")) == []


def test_settling_needs_a_clock(facility: FakeFacility) -> None:
    """Asking for a settle time without a clock raises InvalidInput."""
    with pytest.raises(InvalidInput):
        ReconcileService(facility.storage, facility.ledger).missing(
            facility.endpoint("spot832"), "data832_raw", settle_s=5
        )


def test_matches_globs_and_suffixes() -> None:
    """Patterns are case-insensitive globs; a bare suffix means any name ending in it."""
    assert matches("a.H5", ["*.h5"])
    assert matches("a.h5", [".h5"])
    assert not matches("a.h5.part", ["*.h5"])
    assert matches("anything", [])
