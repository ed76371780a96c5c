"""Which Globus errors retry, and which splash errors they become."""

from __future__ import annotations

import globus_sdk
import pytest
import requests
from globus_sdk.testing import construct_error

from splash_core.adapters.globus._retry import RetryPolicy, is_transient
from splash_core.adapters.globus.errors import storage_error, transfer_error
from splash_core.domain.errors import (
    CredentialsError,
    PathNotFound,
    PermissionDenied,
    QuotaExceeded,
    SourceNotFound,
    StorageError,
    TransferError,
    TransientStorageError,
    TransientTransferError,
)


def _api(
    status: int, code: str, error_class: type[globus_sdk.GlobusAPIError] = globus_sdk.TransferAPIError
) -> globus_sdk.GlobusAPIError:
    return construct_error(
        http_status=status, error_class=error_class, body={"code": code, "message": f"{code} happened"}
    )


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (globus_sdk.GlobusConnectionError("down", requests.ConnectionError("refused")), True),
        (_api(429, "RequestLimitExceeded"), True),
        (_api(500, "InternalError"), True),
        (_api(503, "ServiceUnavailable"), True),
        (_api(502, "ExternalError.DirListingFailed"), False),
        (_api(400, "BadRequest"), False),
        (_api(404, "ClientError.NotFound"), False),
        (ValueError("not globus"), False),
    ],
)
def test_only_throttling_service_errors_and_network_errors_retry(exc: Exception, transient: bool) -> None:
    """429, service 5xx and network errors retry; endpoint errors and 4xx do not."""
    assert is_transient(exc) is transient


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_api(401, "AuthenticationFailed"), CredentialsError),
        (_api(400, "invalid_client", globus_sdk.AuthAPIError), CredentialsError),
        (_api(403, "PermissionDenied"), PermissionDenied),
        (_api(404, "ClientError.NotFound"), SourceNotFound),
        (_api(409, "QuotaExceeded"), QuotaExceeded),
        (_api(502, "ExternalError.Connect"), TransientTransferError),
        (_api(503, "ServiceUnavailable"), TransientTransferError),
        (_api(400, "ClientError.BadRequest"), TransferError),
        (_api(404, "TaskNotFound"), TransferError),
    ],
)
def test_transfer_errors_are_translated(exc: Exception, expected: type[Exception]) -> None:
    """Each SDK error becomes the splash error that says what happened, naming the operation."""
    error = transfer_error(exc, "doing the thing")
    assert type(error) is expected
    assert str(error).startswith("doing the thing: ")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_api(404, "ClientError.NotFound"), PathNotFound),
        (_api(502, "ExternalError.DirListingFailed.NotFound"), PathNotFound),
        (_api(403, "EndpointPermissionDenied"), StorageError),
        (_api(502, "ExternalError.DirListingFailed.GCDisconnected"), TransientStorageError),
        (_api(429, "RequestLimitExceeded"), TransientStorageError),
        (globus_sdk.GlobusConnectionError("down", requests.ConnectionError("refused")), TransientStorageError),
    ],
)
def test_storage_errors_are_translated(exc: Exception, expected: type[Exception]) -> None:
    """File-operation errors map to the storage family."""
    assert type(storage_error(exc, "listing /x on ep")) is expected


def test_a_retry_policy_needs_at_least_one_attempt() -> None:
    """Zero attempts would never call Globus at all."""
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
