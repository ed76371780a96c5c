"""Record <-> SciCat mapping details: times at millisecond precision, block grouping, bookkeeping."""

from __future__ import annotations

import pytest

from splash_core.adapters.scicat import _mapping as m
from splash_core.domain.errors import CatalogError
from splash_core.domain.models import CatalogRecord, Checksum, ChecksumAlgorithm, FileRecord
from splash_core.domain.paths import RelPath

P = RelPath.parse


def test_times_round_trip_at_millisecond_precision() -> None:
    """An mtime goes out as RFC 3339 UTC with milliseconds and comes back the same, to the millisecond."""
    assert m.iso(m.to_ms(1.5)) == "1970-01-01T00:00:01.500Z"
    assert m.parse_ms(m.iso(m.to_ms(1736150400.1234567)), "t") == 1736150400123
    assert m.parse_ms("2025-01-06T08:00:00", "t") == m.parse_ms("2025-01-06T08:00:00+00:00", "t")
    assert m.parse_ms("2025-01-06T01:00:00-07:00", "t") == m.parse_ms("2025-01-06T08:00:00.000Z", "t")


def test_a_malformed_time_names_where_it_was() -> None:
    """SciCat sending something that is not a time is a CatalogError naming the place."""
    with pytest.raises(CatalogError, match="dataset x, file a: SciCat sent 'yesterday'"):
        m.parse_ms("yesterday", "dataset x, file a")


def test_unchecked_files_join_the_first_algorithms_block() -> None:
    """Blocks follow the order algorithms first appear; files without a checksum go to the first."""
    sha = Checksum(ChecksumAlgorithm.SHA256, "aa" * 32)
    md5 = Checksum(ChecksumAlgorithm.MD5, "bb" * 16)
    record = CatalogRecord(
        "k",
        "7.3.3",
        (FileRecord(P("a"), 1, None, 1.0), FileRecord(P("b"), 2, sha, 1.0), FileRecord(P("c"), 3, md5, 1.0)),
        "/data/k",
    )
    blocks = m.datablocks(record, stand_in_ms=0)
    assert [(b.get("chkAlg"), [f["path"] for f in b["dataFileList"]], b["size"]) for b in blocks] == [
        ("sha256", ["b", "a"], 3),
        ("md5", ["c"], 3),
    ]


def test_block_signatures_ignore_an_algorithm_without_checksums() -> None:
    """A leftover chkAlg on a block whose files have no chk does not make it differ."""
    entry = {"path": "a", "size": 1, "time": "1970-01-01T00:00:01Z"}
    assert m.block_signature({"chkAlg": "md5", "dataFileList": [entry]}, "w") == m.block_signature(
        {"dataFileList": [{**entry, "time": "1970-01-01T00:00:01.000Z"}]}, "w"
    )


def test_with_location_leaves_other_metadata_alone() -> None:
    """Adding a location touches only splash_core's bookkeeping; a known one changes nothing."""
    dataset = {
        "sourceFolder": "/data/k",
        "scientificMetadata": {"energy": "25 keV", "splash_core": {"location": "/data/k", "locations": ["t:1"]}},
    }
    assert m.with_location(dataset, "t:1") is None
    assert m.with_location(dataset, "/data/k") is None
    assert m.with_location(dataset, "t:2") == {
        "energy": "25 keV",
        "splash_core": {"location": "/data/k", "locations": ["t:1", "t:2"]},
    }
    assert m.with_location({"sourceFolder": "/x"}, "t:9") == {"splash_core": {"locations": ["t:9"]}}
