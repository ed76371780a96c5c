"""The local facility's state: one SQLite database file (by convention ``<workspace>/splash.db``).

It holds the ledger, catalog, scheduler, transfer tasks and jobs. It runs in WAL mode with
``synchronous=FULL`` so a write is on disk when the call returns, and carries its schema
version in ``PRAGMA user_version``; the schema is created or upgraded on first use.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from splash_core.domain.errors import LedgerError

DATABASE_NAME: Final = "splash.db"
BUSY_TIMEOUT_S: Final = 30.0

# Each entry upgrades the schema by one version; never edit one that has shipped, append.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        # --- ledger: an append-only event log plus small tables of the current state
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            type TEXT NOT NULL,
            endpoint TEXT,
            path BLOB,
            at_us INTEGER NOT NULL,
            payload TEXT NOT NULL)""",
        "CREATE INDEX events_endpoint_path ON events (endpoint, path)",
        # every path an event mentions (one row per path), for history()
        """CREATE TABLE event_paths (
            path BLOB NOT NULL,
            event_id INTEGER NOT NULL REFERENCES events (id),
            PRIMARY KEY (path, event_id)) WITHOUT ROWID""",
        # the latest LocationVerified per endpoint and path, while not removed since
        """CREATE TABLE locations (
            endpoint TEXT NOT NULL,
            path BLOB NOT NULL,
            event_id INTEGER NOT NULL REFERENCES events (id),
            PRIMARY KEY (endpoint, path)) WITHOUT ROWID""",
        # the latest PruneScheduled per endpoint and path, until a PruneDone
        """CREATE TABLE prunes (
            endpoint TEXT NOT NULL,
            path BLOB NOT NULL,
            due_us INTEGER NOT NULL,
            event_id INTEGER NOT NULL REFERENCES events (id),
            PRIMARY KEY (endpoint, path)) WITHOUT ROWID""",
        "CREATE INDEX prunes_due ON prunes (due_us, event_id)",
        """CREATE TABLE steps (
            key TEXT PRIMARY KEY,
            payload TEXT NOT NULL) WITHOUT ROWID""",
        """CREATE TABLE outbox (
            dataset_key TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            payload TEXT NOT NULL)""",
        "CREATE INDEX outbox_seq ON outbox (seq)",
        """CREATE TABLE catalog_ids (
            dataset_key TEXT PRIMARY KEY,
            catalog_id TEXT NOT NULL) WITHOUT ROWID""",
        # --- catalog
        """CREATE TABLE datasets (
            n INTEGER PRIMARY KEY AUTOINCREMENT,
            dataset_key TEXT NOT NULL UNIQUE,
            payload TEXT NOT NULL)""",
        """CREATE TABLE dataset_locations (
            n INTEGER NOT NULL REFERENCES datasets (n),
            seq INTEGER NOT NULL,
            location TEXT NOT NULL,
            PRIMARY KEY (n, location))""",
        # --- scheduler
        """CREATE TABLE scheduled (
            key TEXT PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            run_us INTEGER NOT NULL,
            payload TEXT NOT NULL,
            done INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX scheduled_pending ON scheduled (done, run_us)",
        # --- transfer tasks
        """CREATE TABLE transfer_tasks (
            task_id TEXT PRIMARY KEY,
            idempotency_key TEXT NOT NULL UNIQUE,
            request TEXT NOT NULL,
            status TEXT NOT NULL,
            owner_pid INTEGER,
            owner_start TEXT,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            result TEXT,
            submitted_at TEXT NOT NULL,
            finished_at TEXT)""",
        # --- jobs
        """CREATE TABLE jobs (
            n INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL UNIQUE,
            idempotency_key TEXT,
            facility TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            pid INTEGER,
            pid_start TEXT,
            exit_code INTEGER,
            reason TEXT,
            time_limit_s REAL NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            started_epoch REAL,
            script_path TEXT NOT NULL,
            log_path TEXT NOT NULL,
            exit_path TEXT NOT NULL)""",
        "CREATE UNIQUE INDEX jobs_idempotency ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL",
    ),
    (
        # v2: each facility has its own job idempotency keys (several LocalJobs share the table)
        "DROP INDEX jobs_idempotency",
        "CREATE UNIQUE INDEX jobs_facility_idempotency ON jobs (facility, idempotency_key) "
        "WHERE idempotency_key IS NOT NULL",
    ),
)

SCHEMA_VERSION: Final = len(_MIGRATIONS)


class SqliteDatabase:
    """One SQLite file shared by the local adapters; safe to use from several threads.

    One connection serves the process, guarded by a lock: every statement is short, and
    SQLite lets only one writer in at a time anyway. Other processes share the file through
    WAL (they wait up to 30 s for a write lock).

    Args:
        path: the database file; created (with its schema) on first use.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                self._migrate(conn)
            except (OSError, sqlite3.Error) as exc:
                raise LedgerError(
                    f"cannot open the local database {self.path}: {exc}; check the workspace folder"
                ) from exc
            self._conn = conn
        return self._conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"the local database {self.path} has schema version {version}, newer than this "
                f"splash_core knows ({SCHEMA_VERSION}); upgrade splash_core"
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            # another process may have migrated while we waited for the lock
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for statements in _MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection, for reads (each statement sees a consistent snapshot)."""
        with self._lock:
            yield self._connection()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside ``BEGIN IMMEDIATE``; committed on success, rolled back on error."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def journal_mode(self) -> str:
        """The journal mode in force (``wal``)."""
        with self.read() as conn:
            mode: str = conn.execute("PRAGMA journal_mode").fetchone()[0]
            return mode

    def close(self) -> None:
        """Close the connection (it is reopened on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


DatabaseLike = SqliteDatabase | str | os.PathLike[str]
"""A database, or the path of its file (created on first use)."""


def as_database(target: DatabaseLike) -> SqliteDatabase:
    """``target`` itself, or a :class:`SqliteDatabase` on the file it names."""
    return target if isinstance(target, SqliteDatabase) else SqliteDatabase(target)
