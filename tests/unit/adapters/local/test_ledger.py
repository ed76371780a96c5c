"""SqliteLedger.record_many: one transaction per batch, rolled back whole when the database fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from splash_core.adapters.local import SqliteDatabase, SqliteLedger
from splash_core.domain.errors import LedgerError
from splash_core.domain.events import LocationRemoved, LocationVerified, PruneDone, PruneScheduled
from splash_core.domain.models import Checksum, ChecksumAlgorithm
from splash_core.domain.paths import RelPath

P = RelPath.parse
T0 = datetime(2025, 1, 1, tzinfo=UTC)
SUM = Checksum(ChecksumAlgorithm.BLAKE3, "00" * 32)


def _ledger(tmp_path: Path) -> tuple[SqliteDatabase, SqliteLedger]:
    db = SqliteDatabase(tmp_path / "splash.db")
    ledger = SqliteLedger(db)
    ledger.record(LocationVerified("spot832", P("a.h5"), 1, SUM, "splash", T0))
    ledger.record(PruneScheduled("spot832", P("a.h5"), T0, "data832", T0))
    return db, ledger


def test_a_database_failure_mid_batch_rolls_the_whole_batch_back(tmp_path: Path) -> None:
    """When the second event's insert fails, the first (already inserted) is rolled back too."""
    db, ledger = _ledger(tmp_path)
    with db.transaction() as conn:
        conn.execute(
            "CREATE TRIGGER fail_removal BEFORE INSERT ON events WHEN NEW.type = 'LocationRemoved' "
            "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
    done = PruneDone("spot832", P("a.h5"), "data832", SUM, T0 + timedelta(seconds=1))
    with pytest.raises(LedgerError, match=r"record 2 events.*disk on fire"):
        ledger.record_many([done, LocationRemoved("spot832", P("a.h5"), T0 + timedelta(seconds=1))])
    assert [type(e).__name__ for e in ledger.history(P("a.h5"))] == ["LocationVerified", "PruneScheduled"]
    assert len(ledger.pending_prunes()) == 1
    assert ledger.verified_copy("spot832", P("a.h5")) is not None
    with db.read() as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 2
        assert not conn.in_transaction


def test_a_batch_is_one_commit(tmp_path: Path) -> None:
    """record_many commits once for the whole batch (one fsync), record once per event."""
    db, ledger = _ledger(tmp_path)
    commits: list[str] = []
    with db.read() as conn:
        conn.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    later = T0 + timedelta(seconds=1)
    ledger.record_many(
        [PruneDone("spot832", P("a.h5"), "data832", SUM, later), LocationRemoved("spot832", P("a.h5"), later)]
    )
    assert len(commits) == 1
    assert ledger.pending_prunes() == []
    assert ledger.verified_copy("spot832", P("a.h5")) is None


def test_event_ids_continue_after_a_batch(tmp_path: Path) -> None:
    """Events recorded one by one after a batch keep the log in order."""
    _db, ledger = _ledger(tmp_path)
    later = T0 + timedelta(seconds=1)
    ledger.record_many(
        [PruneDone("spot832", P("a.h5"), "data832", SUM, later), LocationRemoved("spot832", P("a.h5"), later)]
    )
    ledger.record(LocationVerified("spot832", P("a.h5"), 1, SUM, "splash", later))
    assert [type(e).__name__ for e in ledger.history(P("a.h5"))] == [
        "LocationVerified",
        "PruneScheduled",
        "PruneDone",
        "LocationRemoved",
        "LocationVerified",
    ]
    assert ledger.verified_copy("spot832", P("a.h5")) is not None
