"""SDK exceptions -> splash errors, and bounded retries of the calls that failed transiently.

globus-compute-sdk raises globus-sdk's ``GlobusAPIError`` (with an HTTP status) and
``NetworkError`` for API trouble, and its own exceptions for task outcomes. HTTP 429, 5xx and
network errors are retried with stamina (tests call ``stamina.set_testing(True)``) and then
become :class:`TransientJobError`; the rest become permanent errors at once. Callers write
``raise job_error(exc, what) from exc``; ``what`` names the operation and the thing.

globus-sdk retries 429/5xx a few times itself before raising, so a call seen failing here
has usually been tried already; the defaults keep the retries here few.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import globus_sdk
import stamina

from splash_core.domain.errors import CredentialsError, JobError, JobNotFound, SplashError, TransientJobError

T = TypeVar("T")

_MAX_DETAIL = 300
CREDENTIALS_HINT = (
    "check the Globus confidential client's id and secret and that the client may use Globus Compute (and the endpoint)"
)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def describe(exc: BaseException) -> str:
    """``HTTP 404 NOT_FOUND: <message>`` for an API error, ``<Type>: <message>`` otherwise."""
    if isinstance(exc, globus_sdk.GlobusAPIError):
        message = _short(str(exc.message or exc.http_reason or ""))
        head = f"HTTP {exc.http_status} {exc.code or 'no code'}"
        return f"{head}: {message}" if message else head
    message = _short(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: HTTP 429, a 5xx, or a network error."""
    if isinstance(exc, globus_sdk.NetworkError):
        return True
    if isinstance(exc, globus_sdk.GlobusAPIError):
        return exc.http_status == 429 or exc.http_status >= 500
    return False


def job_error(exc: BaseException, what: str) -> SplashError:
    """The splash error for an SDK exception raised while doing ``what``."""
    about = f"{what}: {describe(exc)}"
    if is_transient(exc):
        return TransientJobError(f"{about}; Globus Compute is unavailable or throttling, try again later")
    if isinstance(exc, globus_sdk.GlobusAPIError):
        if exc.http_status == 401:
            return CredentialsError(f"{about}; Globus Auth rejected the token, {CREDENTIALS_HINT}")
        if exc.http_status == 403:
            return JobError(f"{about}; access denied, {CREDENTIALS_HINT}")
        if exc.http_status == 404:
            return JobNotFound(f"{about}; Globus Compute does not know it")
        return JobError(f"{about}; Globus Compute refused the request")
    if isinstance(exc, globus_sdk.GlobusError):
        return JobError(f"{about}; unexpected Globus SDK error")
    return JobError(f"{about}; unexpected error from globus-compute-sdk")


def connect_error(exc: BaseException, what: str) -> SplashError:
    """The splash error for a failure to build the client (fetch the first token, check versions).

    Globus Auth refusing the client (400 ``invalid_client``, 401, 403) is a
    :class:`CredentialsError`; an SDK too old for the service is a :class:`JobError` saying so.
    """
    from globus_compute_sdk.errors import VersionMismatch

    if isinstance(exc, SplashError):
        return exc
    if isinstance(exc, globus_sdk.GlobusAPIError) and not is_transient(exc):
        return CredentialsError(f"{what}: Globus Auth rejected the client ({describe(exc)}); {CREDENTIALS_HINT}")
    if isinstance(exc, VersionMismatch):
        return JobError(f"{what}: {_short(str(exc))}; upgrade globus-compute-sdk")
    return job_error(exc, what)


class Retrier:
    """Calls a function, retrying transient SDK errors within bounds, translating what escapes."""

    def __init__(self, attempts: int, timeout_s: float, wait_max_s: float) -> None:
        self._caller = stamina.RetryingCaller(
            attempts=attempts,
            timeout=timeout_s,
            wait_initial=min(1.0, wait_max_s),
            wait_max=wait_max_s,
        )

    def __call__(self, fn: Callable[[], T], what: str, *, passthrough: tuple[type[BaseException], ...] = ()) -> T:
        """``fn()``; a transient failure is retried, and any SDK failure is raised translated.

        Args:
            fn: the call.
            what: the operation and the thing, for messages.
            passthrough: exception types raised as they are (task outcomes the caller reads).

        Raises:
            TransientJobError: still failing transiently after the retries.
            JobError: a permanent failure (:class:`JobNotFound`, :class:`CredentialsError`, ...).
        """
        try:
            return self._caller(is_transient, fn)
        except passthrough:
            raise
        except SplashError:
            raise
        except Exception as exc:
            raise job_error(exc, what) from exc


__all__ = ["CREDENTIALS_HINT", "Retrier", "connect_error", "describe", "is_transient", "job_error"]
