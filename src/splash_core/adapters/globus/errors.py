"""Translate globus-sdk exceptions into splash errors (no SDK type crosses a port).

Callers write ``raise transfer_error(exc, what) from exc`` (or ``storage_error``);
``what`` names the operation and the thing (task id, endpoint, path) so the message
says what failed and the HTTP status / Globus code say why.
"""

from __future__ import annotations

import globus_sdk

from splash_core.adapters.globus._retry import is_endpoint_error, is_transient
from splash_core.domain.errors import (
    CredentialsError,
    PathNotFound,
    PermissionDenied,
    QuotaExceeded,
    SourceNotFound,
    SplashError,
    StorageError,
    TransferError,
    TransientStorageError,
    TransientTransferError,
)

_MAX_DETAIL = 300

CREDENTIALS_HINT = (
    "check GLOBUS_CLIENT_ID and GLOBUS_CLIENT_SECRET (or GLOBUS_CLIENT_SECRET_FILE) and that "
    "the client still exists in Globus Auth"
)


def describe(exc: globus_sdk.GlobusAPIError) -> str:
    """``HTTP 404 ClientError.NotFound: <message>`` with the message shortened."""
    message = " ".join((exc.message or exc.http_reason or "").split())
    if len(message) > _MAX_DETAIL:
        message = message[: _MAX_DETAIL - 1] + "…"
    code = exc.code or "no code"
    return f"HTTP {exc.http_status} {code}: {message}" if message else f"HTTP {exc.http_status} {code}"


def is_not_found(exc: globus_sdk.GlobusAPIError) -> bool:
    """Whether the service or endpoint said the path (or task, collection) does not exist."""
    return exc.http_status == 404 or "NotFound" in (exc.code or "")


def is_permission_denied(exc: globus_sdk.GlobusAPIError) -> bool:
    """Whether the service or endpoint refused access."""
    code = exc.code or ""
    return exc.http_status == 403 or "PermissionDenied" in code or "ConsentRequired" in code


def is_exists(exc: globus_sdk.GlobusAPIError) -> bool:
    """Whether a mkdir failed because the path already exists."""
    return (exc.code or "").endswith(".Exists") or exc.code == "Exists"


def _is_auth_rejection(exc: globus_sdk.GlobusAPIError) -> bool:
    if exc.http_status == 401:
        return True
    # the token request itself (Globus Auth) answers 400/401/403 for a bad client
    return isinstance(exc, globus_sdk.AuthAPIError) and exc.http_status in (400, 401, 403)


def _common(exc: Exception, what: str, transient: type[SplashError]) -> SplashError | None:
    if isinstance(exc, globus_sdk.NetworkError):
        return transient(f"{what}: could not reach Globus ({type(exc).__name__}); retry later")
    if not isinstance(exc, globus_sdk.GlobusAPIError):
        return None
    if _is_auth_rejection(exc):
        return CredentialsError(f"{what}: Globus rejected the credentials ({describe(exc)}); {CREDENTIALS_HINT}")
    if is_transient(exc):
        return transient(f"{what}: Globus is unavailable or throttling ({describe(exc)}); retry later")
    return None


def transfer_error(exc: Exception, what: str) -> SplashError:
    """The splash error for an SDK exception raised while submitting or watching a transfer."""
    common = _common(exc, what, TransientTransferError)
    if common is not None:
        return common
    if not isinstance(exc, globus_sdk.GlobusAPIError):
        return TransferError(f"{what}: {type(exc).__name__}: {exc}")
    detail = describe(exc)
    if is_permission_denied(exc):
        return PermissionDenied(f"{what}: permission denied ({detail}); check the collection's access rules")
    if exc.code == "TaskNotFound":
        return TransferError(f"{what}: Globus does not know this task ({detail}); check the task id")
    if exc.code == "EndpointNotFound":
        return TransferError(f"{what}: no such Globus collection ({detail}); check the endpoint's collection_id")
    if is_not_found(exc):
        return SourceNotFound(f"{what}: not found ({detail})")
    if "Quota" in (exc.code or ""):
        return QuotaExceeded(f"{what}: quota exceeded ({detail}); free space at the destination")
    if is_endpoint_error(exc):
        return TransientTransferError(f"{what}: the endpoint failed ({detail}); check that it is up, then retry")
    return TransferError(f"{what}: Globus refused the request ({detail})")


def storage_error(exc: Exception, what: str) -> SplashError:
    """The splash error for an SDK exception raised by a file operation (ls, stat, mkdir, delete)."""
    common = _common(exc, what, TransientStorageError)
    if common is not None:
        return common
    if not isinstance(exc, globus_sdk.GlobusAPIError):
        return StorageError(f"{what}: {type(exc).__name__}: {exc}")
    detail = describe(exc)
    if is_not_found(exc):
        return PathNotFound(f"{what}: no such path ({detail})")
    if is_permission_denied(exc):
        return StorageError(f"{what}: permission denied ({detail}); check the collection's access rules")
    if is_endpoint_error(exc):
        return TransientStorageError(f"{what}: the endpoint failed ({detail}); check that it is up, then retry")
    return StorageError(f"{what}: Globus refused the request ({detail})")
