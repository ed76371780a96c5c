"""Running something at a later time (prunes, archives, flight checks)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from splash_core.domain.models import ScheduledTask


class SchedulerPort(Protocol):
    """Schedule work; the ledger, not the scheduler, is the source of truth for retention."""

    def schedule(self, task: ScheduledTask) -> str:
        """Schedule ``task``; scheduling the same ``key`` twice keeps one run. Returns its id."""
        ...

    def cancel(self, key: str) -> None:
        """Forget the run scheduled under ``key`` (no error if there is none)."""
        ...

    def pending(self, before: datetime | None = None) -> Sequence[ScheduledTask]:
        """Runs not yet done, due before ``before`` when given."""
        ...

    def mark_done(self, key: str) -> None:
        """Record that the run under ``key`` has been carried out."""
        ...
