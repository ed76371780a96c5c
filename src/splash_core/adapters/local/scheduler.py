"""Scheduled runs (prunes, archives, flight checks) in the local SQLite database.

This only remembers what is due; something (the CLI's ``run-due`` loop, a cron job) asks
:meth:`SqliteScheduler.pending` and carries the runs out.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from splash_core.adapters.local._convert import dumps, epoch_us, loads
from splash_core.adapters.local.database import DatabaseLike, as_database
from splash_core.domain.errors import SchedulerError
from splash_core.domain.models import ScheduledTask
from splash_core.ports.scheduler import SchedulerPort


class SqliteScheduler(SchedulerPort):
    """Runs keyed by ``ScheduledTask.key``: scheduling a key again keeps the first run.

    A key that was carried out (:meth:`mark_done`) stays done; scheduling it again does not
    bring it back. :meth:`cancel` forgets a key entirely, so it can be scheduled afresh.

    Args:
        db: the database (or its file).
    """

    def __init__(self, db: DatabaseLike) -> None:
        self._db = as_database(db)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise SchedulerError(f"local scheduler {self._db.path}: cannot {what}: {exc}; retry") from exc

    def schedule(self, task: ScheduledTask) -> str:
        """Schedule ``task`` unless its key is known; returns the run's id (``sched-<uuid>``)."""
        with self._errors(f"schedule {task.key}"), self._db.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO scheduled (key, id, kind, run_us, payload) VALUES (?, ?, ?, ?, ?)",
                (task.key, f"sched-{uuid.uuid4()}", task.kind, epoch_us(task.run_at), dumps(task)),
            )
            row = conn.execute("SELECT id FROM scheduled WHERE key = ?", (task.key,)).fetchone()
        return str(row[0])

    def cancel(self, key: str) -> None:
        """Forget the run under ``key`` (no error if there is none)."""
        with self._errors(f"cancel {key}"), self._db.transaction() as conn:
            conn.execute("DELETE FROM scheduled WHERE key = ?", (key,))

    def pending(self, before: datetime | None = None) -> Sequence[ScheduledTask]:
        """Runs not yet done, due at or before ``before`` when given, earliest first."""
        query = "SELECT payload FROM scheduled WHERE done = 0"
        params: tuple[int, ...] = ()
        if before is not None:
            query += " AND run_us <= ?"
            params = (epoch_us(before),)
        with self._errors("read pending runs"), self._db.read() as conn:
            rows = conn.execute(query + " ORDER BY run_us, rowid", params).fetchall()
        return [loads(payload, ScheduledTask) for (payload,) in rows]

    def mark_done(self, key: str) -> None:
        """Record that the run under ``key`` was carried out (no error if there is none)."""
        with self._errors(f"mark {key} done"), self._db.transaction() as conn:
            conn.execute("UPDATE scheduled SET done = 1 WHERE key = ?", (key,))
