"""Tape archive: bundle planning rules and the archive/restore service on fakes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splash_core.domain.errors import InvalidInput
from splash_core.domain.events import Ingested, LocationVerified, TapeArchived
from splash_core.domain.models import ArchiveMethod, CatalogRecord, Checksum, ChecksumAlgorithm, FileRecord
from splash_core.domain.paths import RelPath
from splash_core.domain.services.archive import (
    HTAR_NAME,
    ArchiveService,
    beam_cycle,
    plan_bundles,
)
from tests.fakes import FakeFacility

TB = 10**12
GB = 10**9
CFS = "nersc733_alsdev_raw"


def ts(y: int, m: int, d: int) -> float:
    return datetime(y, m, d, 12, tzinfo=UTC).timestamp()


@st.composite
def file_sets(draw: st.DrawFn) -> list[FileRecord]:
    n = draw(st.integers(0, 40))
    names = draw(st.lists(st.text("abc", min_size=1, max_size=4), min_size=n, max_size=n, unique=True))
    records = []
    for i, name in enumerate(names):
        proposal = draw(st.sampled_from(["ALS-001", "ALS-002", "bt99"]))
        size = draw(st.one_of(st.integers(0, 900 * GB), st.integers(60 * GB, 70 * GB), st.integers(0, 3 * TB)))
        day = draw(st.dates(date(2023, 1, 1), date(2025, 12, 31)))
        records.append(FileRecord(RelPath(f"{proposal}/{i}/{name}.tif"), size, mtime=ts(day.year, day.month, day.day)))
    return records


@settings(max_examples=100, deadline=None)
@given(file_sets())
def test_plan_properties(files: list[FileRecord]) -> None:
    """Every file lands in exactly one bundle, htar bundles stay under 2 TB, big members go alone."""
    bundles = plan_bundles(files)
    members = [m.path for b in bundles for m in b.members]
    assert sorted(members) == sorted(f.path for f in files)
    assert len(set(b.name for b in bundles)) == len(bundles)
    for b in bundles:
        assert all(beam_cycle(datetime.fromtimestamp(m.mtime or 0, UTC).date()) == (b.year, b.cycle) for m in b.members)
        assert all(m.path.parts[0] == b.proposal for m in b.members)
        if b.method is ArchiveMethod.HTAR:
            assert b.size <= 2 * TB
            assert all(m.size <= 65 * GB for m in b.members)
            match = HTAR_NAME.match(b.name)
            assert match
            assert match["proposal"] == b.proposal
            assert int(match["year"]) == b.year
            assert int(match["cycle"]) == b.cycle
        else:
            assert len(b.members) == 1
            assert b.members[0].size > 65 * GB
            assert b.name == b.members[0].path.value
    assert plan_bundles(list(reversed(files))) == bundles


@settings(max_examples=50, deadline=None)
@given(file_sets())
def test_part_suffix_only_when_a_group_needs_several(files: list[FileRecord]) -> None:
    """A group in one bundle has no _partN; a group in several has _part1.._partN."""
    groups: dict[tuple[str, int, int], list[str]] = {}
    for b in plan_bundles(files):
        if b.method is ArchiveMethod.HTAR:
            groups.setdefault((b.proposal, b.year, b.cycle), []).append(b.name)
    for (proposal, year, cycle), names in groups.items():
        base = f"{proposal}_{year}-{cycle}"
        expected = [f"{base}.tar"] if len(names) == 1 else [f"{base}_part{i}.tar" for i in range(1, len(names) + 1)]
        assert names == expected


@pytest.mark.parametrize(
    ("day", "cycle"),
    [(date(2024, 1, 1), 1), (date(2024, 7, 15), 1), (date(2024, 7, 16), 2), (date(2024, 12, 31), 2)],
)
def test_beam_cycle_boundaries(day: date, cycle: int) -> None:
    """Jul 15 is the last day of cycle 1 and Jul 16 the first of cycle 2."""
    assert beam_cycle(day) == (2024, cycle)


def test_first_fit_fills_earlier_bundles() -> None:
    """Files are placed first-fit in path order, so a small file fills a gap in an earlier bundle."""
    t = ts(2024, 3, 1)
    files = [
        FileRecord(RelPath("p/a"), 60 * GB, mtime=t),
        FileRecord(RelPath("p/b"), 1 * GB, mtime=t),
    ]
    [bundle] = plan_bundles(files, max_bundle_bytes=61 * GB)
    assert bundle.name == "p_2024-1.tar"
    assert [m.path.value for m in bundle.members] == ["p/a", "p/b"]
    three = [*files, FileRecord(RelPath("p/c"), 50 * GB, mtime=t), FileRecord(RelPath("p/d"), 1 * GB, mtime=t)]
    names = [(b.name, [m.path.value for m in b.members]) for b in plan_bundles(three, max_bundle_bytes=61 * GB)]
    assert names == [("p_2024-1_part1.tar", ["p/a", "p/b"]), ("p_2024-1_part2.tar", ["p/c", "p/d"])]


def test_duplicate_paths_and_missing_dates_are_refused() -> None:
    """A path listed twice, or a file without a date, is refused before any plan is made."""
    a = FileRecord(RelPath("p/a"), 1, mtime=0.0)
    with pytest.raises(InvalidInput, match="listed twice"):
        plan_bundles([a, a])
    with pytest.raises(InvalidInput, match="no mtime"):
        plan_bundles([FileRecord(RelPath("p/b"), 1)])


# --- the service -------------------------------------------------------------


def verified(fac: FakeFacility, path: str, data: bytes) -> RelPath:
    rel = fac.put(CFS, path, data)
    fac.ledger.record(
        LocationVerified(CFS, rel, len(data), Checksum(ChecksumAlgorithm.BLAKE3, "00"), "test", fac.clock.now())
    )
    return rel


def test_archive_writes_verified_files_and_records_them() -> None:
    """Verified files go to tape, each member gets a TapeArchived event and the catalog the tape path."""
    fac = FakeFacility()
    paths = [verified(fac, f"ALS-1/scan{i}.tif", b"x" * (i + 1)) for i in range(3)]
    fac.catalog.ingest(CatalogRecord("ds1", "bl733", (), "nersc733:/x"))
    fac.ledger.record(Ingested("ds1", "fake-pid/0001", tuple(paths), fac.clock.now()))
    service = ArchiveService(fac.tape, fac.ledger, fac.catalog, fac.clock)
    report = service.archive(fac.endpoint(CFS), paths)
    assert report.ok
    assert [r.bundle for r in report.receipts] == ["ALS-1_2025-1.tar"]
    assert set(fac.tape.bundles["ALS-1_2025-1.tar"]) == set(paths)
    assert {e.path for e in fac.ledger.of_type(TapeArchived)} == set(paths)
    assert fac.catalog.locations["fake-pid/0001"] == ["/home/a/alsdev/data_mover/ALS-1_2025-1.tar"]


def test_unverified_file_is_refused() -> None:
    """A file with no verified copy on the source is not archived; the others are."""
    fac = FakeFacility()
    good = verified(fac, "ALS-1/a.tif", b"a")
    stray = fac.put(CFS, "ALS-1/b.tif", b"b")
    report = ArchiveService(fac.tape, fac.ledger, fac.catalog, fac.clock).archive(fac.endpoint(CFS), [good, stray])
    assert not report.ok
    assert [p for p, _ in report.refused] == [stray]
    assert report.archived_paths == (good,)


def test_rerun_rewrites_nothing_and_new_files_get_a_fresh_name() -> None:
    """A second archive skips files on tape; a later file of the same cycle never overwrites a bundle."""
    fac = FakeFacility()
    service = ArchiveService(fac.tape, fac.ledger, fac.catalog, fac.clock)
    first = [verified(fac, "ALS-1/a.tif", b"a")]
    service.archive(fac.endpoint(CFS), first)
    again = service.archive(fac.endpoint(CFS), first)
    assert again.receipts == ()
    assert fac.tape.jobs == 1
    late = verified(fac, "ALS-1/b.tif", b"b")
    report = service.archive(fac.endpoint(CFS), [*first, late])
    assert [r.bundle for r in report.receipts] == ["ALS-1_2025-1_part1.tar"]
    assert set(fac.tape.bundles["ALS-1_2025-1.tar"]) == set(first)


def test_failed_bundle_is_reported_and_retried() -> None:
    """A tape failure is reported per bundle and the bundle is written on the next run."""
    fac = FakeFacility()
    service = ArchiveService(fac.tape, fac.ledger, fac.catalog, fac.clock)
    paths = [verified(fac, "ALS-1/a.tif", b"a")]
    fac.tape.fail_next(1, op="verify")
    report = service.archive(fac.endpoint(CFS), paths)
    assert not report.ok
    assert report.failed[0][0] == "ALS-1_2025-1.tar"
    assert fac.ledger.of_type(TapeArchived) == []
    assert service.archive(fac.endpoint(CFS), paths).ok
    assert len(fac.ledger.of_type(TapeArchived)) == 1


def test_catalog_outage_does_not_fail_the_archive() -> None:
    """With the catalog down, the archive stands and the report says what the catalog missed."""
    fac = FakeFacility()
    paths = [verified(fac, "ALS-1/a.tif", b"a")]
    fac.catalog.ingest(CatalogRecord("ds1", "bl733", (), "x"))
    fac.ledger.record(Ingested("ds1", "fake-pid/0001", tuple(paths), fac.clock.now()))
    fac.catalog.go_down()
    report = ArchiveService(fac.tape, fac.ledger, fac.catalog, fac.clock).archive(fac.endpoint(CFS), paths)
    assert report.ok
    assert len(report.receipts) == 1
    assert "fake-pid/0001" in report.catalog_errors[0]


def test_restore_brings_files_back() -> None:
    """Restore finds each path's bundle in the ledger and writes the files to the destination."""
    fac = FakeFacility()
    service = ArchiveService(fac.tape, fac.ledger, fac.catalog, fac.clock)
    paths = [verified(fac, f"ALS-1/{n}.tif", n.encode()) for n in "ab"]
    service.archive(fac.endpoint(CFS), paths)
    for p in paths:
        fac.storage.remove(fac.endpoint(CFS), p)
    report = service.restore(fac.endpoint(CFS), [*paths, RelPath("ALS-1/never.tif")], fac.endpoint(CFS))
    assert fac.read(CFS, "ALS-1/a.tif") == b"a"
    assert fac.read(CFS, "ALS-1/b.tif") == b"b"
    assert [p.value for p, _ in report.refused] == ["ALS-1/never.tif"]
