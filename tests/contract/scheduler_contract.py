"""The contract every :class:`SchedulerPort` adapter must meet.

Subclass :class:`SchedulerContract` once per adapter and implement
:meth:`SchedulerContract.make_scheduler`.
"""

from __future__ import annotations

import abc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from splash_core.domain.models import ScheduledTask
from splash_core.ports.scheduler import SchedulerPort

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def task(key: str, hours: float, kind: str = "prune") -> ScheduledTask:
    """A run of ``kind`` under ``key``, ``hours`` after the suite's reference time."""
    return ScheduledTask(kind, T0 + timedelta(hours=hours), key, {"endpoint": "spot832", "path": f"raw/{key}"})


class SchedulerContract(abc.ABC):
    """Tests every scheduler adapter must pass."""

    @abc.abstractmethod
    def make_scheduler(self, tmp_path: Path) -> SchedulerPort:
        """A fresh scheduler with nothing scheduled."""

    @pytest.fixture
    def scheduler(self, tmp_path: Path) -> SchedulerPort:
        """The scheduler under test."""
        return self.make_scheduler(tmp_path)

    def test_schedule_is_idempotent_by_key(self, scheduler: SchedulerPort) -> None:
        """Scheduling a key twice keeps the first run and its id."""
        first = scheduler.schedule(task("a", 24))
        again = scheduler.schedule(task("a", 48))
        other = scheduler.schedule(task("b", 1))
        assert again == first
        assert other != first
        assert list(scheduler.pending()) == [task("b", 1), task("a", 24)]

    def test_pending_before_a_time(self, scheduler: SchedulerPort) -> None:
        """Only runs due at or before ``before`` are returned, earliest first."""
        scheduler.schedule(task("late", 48))
        scheduler.schedule(task("soon", 1))
        scheduler.schedule(task("now", 0))
        assert [t.key for t in scheduler.pending(before=T0 + timedelta(hours=1))] == ["now", "soon"]
        assert [t.key for t in scheduler.pending(before=T0 - timedelta(seconds=1))] == []

    def test_done_runs_are_not_pending(self, scheduler: SchedulerPort) -> None:
        """A run marked done leaves the pending list and a repeat schedule does not revive it."""
        scheduler.schedule(task("a", 1))
        scheduler.schedule(task("b", 2))
        scheduler.mark_done("a")
        assert [t.key for t in scheduler.pending()] == ["b"]
        scheduler.schedule(task("a", 1))
        assert [t.key for t in scheduler.pending()] == ["b"]

    def test_cancel_forgets_a_run(self, scheduler: SchedulerPort) -> None:
        """A cancelled run is not pending; cancelling an unknown key is fine."""
        scheduler.schedule(task("a", 1))
        scheduler.cancel("a")
        scheduler.cancel("never-scheduled")
        assert list(scheduler.pending()) == []

    def test_payload_and_kind_round_trip(self, scheduler: SchedulerPort) -> None:
        """What is pending equals what was scheduled."""
        scheduled = ScheduledTask("flight-check", T0, "fc-1", {"route": "spot832>data832>nersc832"})
        scheduler.schedule(scheduled)
        assert list(scheduler.pending()) == [scheduled]
