"""The real clock (shared with the other adapters)."""

from __future__ import annotations

from splash_core.adapters._clock import SystemClock

__all__ = ["SystemClock"]
