"""The adapter's own errors: a retryable outage and a refused login (both domain errors)."""

from __future__ import annotations

from splash_core.domain.errors import CatalogError, CatalogUnavailable, CredentialsError


class RetryableCatalogError(CatalogUnavailable):
    """SciCat could not answer (network, 5xx, 429); the operation is retried within bounds, then raised.

    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SciCatLoginFailed(CatalogError, CredentialsError):
    """SciCat refused the configured account's username and password."""


def retry_decision(exc: Exception, wait_max_s: float) -> bool | float:
    """Whether stamina should retry after ``exc``, or how long to wait (a server's Retry-After, capped)."""
    if not isinstance(exc, RetryableCatalogError):
        return False
    if exc.retry_after is not None:
        return min(exc.retry_after, wait_max_s)
    return True


__all__ = ["RetryableCatalogError", "SciCatLoginFailed", "retry_decision"]
