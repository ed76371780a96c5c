"""The real clock, shared by every adapter that needs one when none is injected."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from splash_core.ports.clock import ClockPort


class SystemClock(ClockPort):
    """Wall time in UTC, ``time.monotonic`` and ``time.sleep``."""

    def now(self) -> datetime:
        """The current UTC time, timezone-aware."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going backwards."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` (nothing for zero or less)."""
        if seconds > 0:
            time.sleep(seconds)
