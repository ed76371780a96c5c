"""The SQLite database: WAL, durability settings, schema versions, and queries that use indexes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from splash_core.adapters.local import SqliteDatabase, SqliteLedger, SqliteScheduler
from splash_core.adapters.local.database import SCHEMA_VERSION
from splash_core.domain.errors import InvalidInput, LedgerError
from splash_core.domain.events import LocationVerified, PruneScheduled
from splash_core.domain.models import Checksum, ChecksumAlgorithm
from splash_core.domain.paths import RelPath

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SUM = Checksum(ChecksumAlgorithm.BLAKE3, "00" * 32)


def test_wal_full_sync_and_schema_version(tmp_path: Path) -> None:
    """A new database is in WAL mode, syncs fully and carries the schema version."""
    db = SqliteDatabase(tmp_path / "splash.db")
    assert db.journal_mode() == "wal"
    with db.read() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    outside = sqlite3.connect(tmp_path / "splash.db")
    assert outside.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    outside.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer splash_core is not touched."""
    conn = sqlite3.connect(tmp_path / "splash.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(LedgerError, match="newer"):
        SqliteLedger(tmp_path / "splash.db").verified_paths("x")


def test_events_survive_a_new_connection(tmp_path: Path) -> None:
    """What one ledger recorded, a ledger opened later on the same file reads."""
    event = LocationVerified("data832", RelPath("raw/a.h5"), 5, SUM, "splash", T0)
    first = SqliteDatabase(tmp_path / "splash.db")
    SqliteLedger(first).record(event)
    first.close()
    assert SqliteLedger(tmp_path / "splash.db").verified_copy("data832", RelPath("raw/a.h5")) == event


def test_undecodable_file_names_round_trip(tmp_path: Path) -> None:
    """Paths holding bytes that are not UTF-8 (surrogate escapes) are stored and found again."""
    odd = RelPath("raw/caf\udce9.h5")
    ledger = SqliteLedger(tmp_path / "splash.db")
    ledger.record(LocationVerified("data832", odd, 5, SUM, "splash", T0))
    assert ledger.verified_paths("data832") == frozenset({odd})
    assert ledger.verified_copy("data832", odd) is not None
    assert len(ledger.history(odd)) == 1


def test_verifications_recorded_before_digest_less_copies_still_load(tmp_path: Path) -> None:
    """Rows written before ``service_algorithm`` existed (every one with a checksum) read back as before."""
    event = LocationVerified("data832", RelPath("raw/a.h5"), 5, SUM, "splash", T0, "task-1")
    db = SqliteDatabase(tmp_path / "splash.db")
    SqliteLedger(db).record(event)
    old = json.dumps(
        {
            "endpoint": "data832",
            "path": "raw/a.h5",
            "size": 5,
            "checksum": str(SUM),
            "verified_by": "splash",
            "at": T0.isoformat(),
            "task_id": "task-1",
        },
        separators=(",", ":"),
    )
    with db.transaction() as conn:
        assert conn.execute("UPDATE events SET payload = ? WHERE type = 'LocationVerified'", (old,)).rowcount == 1
    loaded = SqliteLedger(db).verified_copy("data832", RelPath("raw/a.h5"))
    assert loaded == event
    assert loaded is not None
    assert loaded.service_algorithm is None


def test_naive_times_are_refused(tmp_path: Path) -> None:
    """Times without a timezone never reach the database."""
    with pytest.raises(InvalidInput, match="timezone"):
        SqliteLedger(tmp_path / "splash.db").record(
            LocationVerified("data832", RelPath("a"), 1, SUM, "splash", datetime(2025, 1, 1))
        )


def _plans(db: SqliteDatabase, call: Callable[[], object]) -> list[str]:
    """The query plan of every SELECT that ``call`` runs."""
    statements: list[str] = []
    with db.read() as conn:
        conn.set_trace_callback(statements.append)
    try:
        call()
    finally:
        with db.read() as conn:
            conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    with db.read() as conn:
        return [" / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + s)) for s in selects]


def test_hot_queries_are_single_indexed_lookups(tmp_path: Path) -> None:
    """verified_paths, verified_copy, pending_prunes and pending runs are each one query with no table scan."""
    db = SqliteDatabase(tmp_path / "splash.db")
    ledger, scheduler = SqliteLedger(db), SqliteScheduler(db)
    for i in range(50):
        ledger.record(LocationVerified("data832", RelPath(f"raw/{i}.h5"), i, SUM, "splash", T0))
        ledger.record(PruneScheduled("spot832", RelPath(f"raw/{i}.h5"), T0 + timedelta(days=i), "data832", T0))
    with db.read() as conn:
        conn.execute("ANALYZE")
    for call in (
        lambda: ledger.verified_paths("data832"),
        lambda: ledger.verified_copy("data832", RelPath("raw/3.h5")),
        lambda: ledger.pending_prunes(T0 + timedelta(days=3)),
        lambda: ledger.history(RelPath("raw/3.h5")),
        lambda: scheduler.pending(T0),
    ):
        plans = _plans(db, call)
        assert len(plans) == 1, plans
        assert "SCAN" not in plans[0], plans[0]


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    """An existing database at schema version 1 gets the later migrations and keeps its rows."""
    from splash_core.adapters.local.database import _MIGRATIONS

    conn = sqlite3.connect(tmp_path / "splash.db")
    for statement in _MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO steps (key, payload) VALUES (?, ?)",
        ("run/1", '{"key":"run/1","state":"done","at":"2025-01-01T00:00:00+00:00","detail":""}'),
    )
    conn.commit()
    conn.close()
    ledger = SqliteLedger(tmp_path / "splash.db")
    step = ledger.step("run/1")
    assert step is not None
    assert step.detail == ""
    with SqliteDatabase(tmp_path / "splash.db").read() as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
