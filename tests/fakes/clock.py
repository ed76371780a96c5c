"""A clock that only moves when told to, so waits and retention are instant in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from splash_core.ports.clock import ClockPort

EPOCH = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
"""Where every :class:`FakeClock` starts unless told otherwise (a Monday morning, UTC)."""


class FakeClock(ClockPort):
    """Wall time and a monotonic counter that advance only through :meth:`advance` and :meth:`sleep`.

    ``sleeps`` records every :meth:`sleep` call, so tests can check backoff without waiting.
    """

    def __init__(self, start: datetime = EPOCH) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"FakeClock start {start!r} must be timezone-aware")
        self._start = start.astimezone(UTC)
        self._elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        """The current fake UTC time."""
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        """Seconds elapsed since the clock was made (never goes backwards)."""
        return self._elapsed

    def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` at once and remember the request."""
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float | timedelta) -> None:
        """Move time forward by ``seconds`` (or a ``timedelta``); negative amounts are refused."""
        amount = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if amount < 0:
            raise ValueError(f"FakeClock cannot go backwards (asked to advance {amount} s)")
        self._elapsed += amount

    def advance_days(self, days: float) -> None:
        """Move time forward by ``days``."""
        self.advance(days * 86400.0)

    @property
    def slept(self) -> float:
        """Total seconds spent in :meth:`sleep`."""
        return sum(self.sleeps)
