"""IngestService: the outbox keeps records through catalog outages."""

from __future__ import annotations

import pytest

from splash_core.domain.errors import CatalogError, LedgerError
from splash_core.domain.events import Ingested
from splash_core.domain.models import CatalogRecord, FileRecord
from splash_core.domain.paths import RelPath
from splash_core.domain.services.ingest import IngestService
from tests.fakes import FakeFacility


def _record(key: str = "ds1") -> CatalogRecord:
    return CatalogRecord(key, "832", (FileRecord(RelPath.parse(f"{key}.h5"), 10),), "data832_raw")


def test_an_ingest_is_recorded_and_leaves_the_outbox(facility: FakeFacility, ingester: IngestService) -> None:
    """A successful ingest returns the id, records Ingested and empties the outbox."""
    catalog_id = ingester.ingest(_record())
    assert catalog_id is not None
    assert facility.catalog.records[catalog_id] == _record()
    assert facility.ledger.catalog_id("ds1") == catalog_id
    assert facility.ledger.pending_ingests() == []
    (event,) = facility.ledger.of_type(Ingested)
    assert (event.catalog_id, event.paths) == (catalog_id, (RelPath.parse("ds1.h5"),))


def test_an_outage_keeps_the_record_in_the_outbox(facility: FakeFacility, ingester: IngestService) -> None:
    """With the catalog down, ingest returns None without raising and the record waits."""
    facility.catalog.go_down()
    assert ingester.ingest(_record()) is None
    assert facility.ledger.pending_ingests() == [_record()]
    assert facility.catalog.records == {}
    facility.catalog.come_up()
    report = ingester.flush()
    assert list(report.ingested) == ["ds1"]
    assert report.empty
    assert facility.ledger.pending_ingests() == []


def test_a_rejected_record_raises_and_stays_in_the_outbox(facility: FakeFacility, ingester: IngestService) -> None:
    """A record the catalog rejects raises CatalogError and is kept for fixing."""
    facility.catalog.reject_next("missing proposal")
    with pytest.raises(CatalogError, match="missing proposal"):
        ingester.ingest(_record())
    assert facility.ledger.pending_ingests() == [_record()]


def test_flush_stops_at_an_outage(facility: FakeFacility, ingester: IngestService) -> None:
    """A flush during an outage leaves every record pending without raising."""
    facility.catalog.go_down()
    ingester.ingest(_record("a"))
    ingester.ingest(_record("b"))
    report = ingester.flush()
    assert report.pending == ("a", "b")
    assert facility.catalog.ingest_calls == 3


def test_flush_goes_past_a_rejected_record(facility: FakeFacility, ingester: IngestService) -> None:
    """One rejected record is reported while the others are ingested."""
    facility.catalog.go_down()
    ingester.ingest(_record("a"))
    ingester.ingest(_record("b"))
    facility.catalog.come_up()
    facility.catalog.reject_next("bad")
    report = ingester.flush()
    assert list(report.rejected) == ["a"]
    assert list(report.ingested) == ["b"]
    assert not report.empty


def test_ingesting_twice_gives_one_dataset(facility: FakeFacility, ingester: IngestService) -> None:
    """The same dataset key ingested twice keeps one catalog entry and id."""
    assert ingester.ingest(_record()) == ingester.ingest(_record())
    assert len(facility.catalog.records) == 1


def test_nothing_is_sent_when_the_outbox_cannot_be_written(facility: FakeFacility, ingester: IngestService) -> None:
    """A ledger failure before sending raises and the catalog sees nothing."""
    facility.ledger.fail_next(1, op="enqueue_ingest")
    with pytest.raises(LedgerError):
        ingester.ingest(_record())
    assert facility.catalog.ingest_calls == 0
