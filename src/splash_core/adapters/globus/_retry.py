"""Bounded retries with backoff for Globus calls, and taking retries away from the SDK.

globus-sdk retries 429/5xx and connection errors itself, with real ``time.sleep`` calls
that tests cannot switch off. The adapters hand every retry decision to ``stamina``
instead (tests call ``stamina.set_testing(True)``) and leave the SDK only the one retry
that follows a 401, when a renewing authorizer has dropped an expired token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import attrs
import globus_sdk
import stamina
from globus_sdk.transport import (
    RetryCheckCollection,
    RetryCheckFlags,
    RetryCheckResult,
    RetryConfig,
    RetryContext,
    set_retry_check_flags,
)

P = ParamSpec("P")
T = TypeVar("T")

# Codes of 5xx answers that come from the endpoint (a GridFTP server), not from the
# Transfer service: retrying the same call at once will not change them (globus-sdk
# agrees, see globus_sdk.services.transfer.transport).
_ENDPOINT_CODES = ("ExternalError", "EndpointError")


@attrs.frozen
class RetryPolicy:
    """How hard to retry a single Globus API call that failed transiently.

    Args:
        attempts: total attempts, first one included.
        timeout_s: give up once this much time has gone by, whatever ``attempts`` says.
        wait_initial_s: backoff before the first retry (grows exponentially).
        wait_max_s: upper bound on one backoff, also on a server's ``Retry-After``.
    """

    attempts: int = 5
    timeout_s: float = 120.0
    wait_initial_s: float = 1.0
    wait_max_s: float = 30.0

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")


def is_endpoint_error(exc: globus_sdk.GlobusAPIError) -> bool:
    """Whether a Globus API error was raised by the endpoint rather than the service."""
    code = exc.code or ""
    return any(marker in code for marker in _ENDPOINT_CODES)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: 429, a service-side 5xx, or a network error."""
    if isinstance(exc, globus_sdk.NetworkError):
        return True
    if isinstance(exc, globus_sdk.GlobusAPIError):
        if exc.http_status == 429:
            return True
        return exc.http_status >= 500 and not is_endpoint_error(exc)
    return False


def _retry_after(exc: globus_sdk.GlobusAPIError) -> float | None:
    try:
        value = exc.headers.get("Retry-After")
    except Exception:  # headers of a broken response; the default backoff is fine
        return None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class Retrier:
    """Calls a function under a :class:`RetryPolicy`; only transient Globus errors retry."""

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy()
        self._caller = stamina.RetryingCaller(
            attempts=self.policy.attempts,
            timeout=self.policy.timeout_s,
            wait_initial=self.policy.wait_initial_s,
            wait_max=self.policy.wait_max_s,
        )

    def _hook(self, exc: Exception) -> bool | float:
        if not is_transient(exc):
            return False
        if isinstance(exc, globus_sdk.GlobusAPIError) and exc.http_status == 429:
            after = _retry_after(exc)
            if after is not None:
                return min(after, self.policy.wait_max_s)
        return True

    def __call__(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)``, retrying transient Globus errors."""
        return self._caller(self._hook, fn, *args, **kwargs)


@set_retry_check_flags(RetryCheckFlags.RUN_ONCE)
def _refresh_on_401(ctx: RetryContext) -> RetryCheckResult:
    """Retry once after a 401 if the authorizer could drop its (expired) token."""
    response = ctx.response
    authorizer = ctx.caller_info.authorizer
    if response is None or authorizer is None or response.status_code != 401:
        return RetryCheckResult.no_decision
    if authorizer.handle_missing_authorization():
        return RetryCheckResult.do_retry
    return RetryCheckResult.no_decision


def _no_sleep(_ctx: RetryContext) -> float:
    return 0.0


def take_over_sdk_retries(client: globus_sdk.BaseClient) -> None:
    """Leave the SDK only the token-refresh retry; :class:`Retrier` does the rest.

    Idempotent. Mutates ``client.retry_config`` in place.
    """
    checks = RetryCheckCollection()
    checks.register_check(_refresh_on_401)
    client.retry_config = RetryConfig(
        max_retries=1,
        max_sleep=0,
        backoff=_no_sleep,
        retry_after_status_codes=(),
        transient_error_status_codes=(),
        checks=checks,
    )
