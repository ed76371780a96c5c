"""A scheduler in memory: runs are kept by key until marked done or cancelled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from splash_core.domain.errors import SchedulerError
from splash_core.domain.models import ScheduledTask
from splash_core.ports.scheduler import SchedulerPort
from tests.fakes._support import FaultPlan


class FakeScheduler(SchedulerPort):
    """An in-memory :class:`SchedulerPort`; a key, once scheduled, keeps its one run and id.

    Recorded: ``tasks`` (key -> task), ``done`` (keys marked done), ``cancelled`` (keys).
    """

    def __init__(self) -> None:
        self.tasks: dict[str, ScheduledTask] = {}
        self.ids: dict[str, str] = {}
        self.done: set[str] = set()
        self.cancelled: list[str] = []
        self.faults = FaultPlan()

    def fail_next(self, n: int = 1, *, transient: bool = False) -> None:
        """Make the next ``n`` schedule calls raise SchedulerError."""
        self.faults.add(n, transient=transient, op="schedule")

    def schedule(self, task: ScheduledTask) -> str:
        """Keep ``task`` under its key (the first one wins) and return its run id."""
        if self.faults.take("schedule") is not None:
            raise SchedulerError(f"injected: could not schedule {task.kind} run {task.key}")
        if task.key not in self.ids:
            self.ids[task.key] = f"fake-run-{len(self.ids) + 1:04d}"
            self.tasks[task.key] = task
        return self.ids[task.key]

    def cancel(self, key: str) -> None:
        """Forget the run under ``key``."""
        if self.tasks.pop(key, None) is not None:
            self.cancelled.append(key)

    def pending(self, before: datetime | None = None) -> Sequence[ScheduledTask]:
        """Runs not done, due at or before ``before`` when given, earliest first."""
        runs = [t for k, t in self.tasks.items() if k not in self.done and (before is None or t.run_at <= before)]
        return sorted(runs, key=lambda t: t.run_at)

    def mark_done(self, key: str) -> None:
        """Record the run under ``key`` as carried out."""
        self.done.add(key)


__all__ = ["FakeScheduler"]
