"""The scheduler contract, run against the fake and the SQLite scheduler."""

from __future__ import annotations

from pathlib import Path

from splash_core.adapters.local import SqliteScheduler
from splash_core.ports.scheduler import SchedulerPort
from tests.contract.scheduler_contract import SchedulerContract
from tests.fakes import FakeScheduler


class TestFakeScheduler(SchedulerContract):
    """The fake honours the scheduler contract."""

    def make_scheduler(self, tmp_path: Path) -> SchedulerPort:
        return FakeScheduler()


class TestSqliteScheduler(SchedulerContract):
    """The SQLite scheduler honours the scheduler contract."""

    def make_scheduler(self, tmp_path: Path) -> SchedulerPort:
        return SqliteScheduler(tmp_path / "splash.db")
