"""The one adapter-private error: a failure that is safe to repeat."""

from __future__ import annotations

from splash_core.domain.errors import TransientJobError


class RetryableJobError(TransientJobError):
    """A request failed in a way that is safe to repeat (retried within bounds, then raised)."""


__all__ = ["RetryableJobError"]
