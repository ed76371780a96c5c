"""Globus credentials: read lazily, never shown, rejected clearly."""

from __future__ import annotations

import logging
import os
import traceback
from pathlib import Path

import globus_sdk
import pytest
import responses
from globus_sdk.testing import load_response

from splash_core.adapters.globus import GlobusCredentials, GlobusTransfer, build_transfer_client
from splash_core.domain.errors import CredentialsError, TransientTransferError
from tests.unit.adapters.globus.simulated import BASE

CLIENT_ID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
SECRET = "s3cr3t-Vg9YyQe+Z/ahR0ssWwA="
TOKEN_URL = "https://auth.globus.org/v2/oauth2/token"


def _env(**extra: str) -> dict[str, str]:
    return {"GLOBUS_CLIENT_ID": CLIENT_ID, **extra}


def _everything_said(exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    shown = "".join(traceback.format_exception(exc)) + repr(exc)
    return shown + "\n".join(r.getMessage() for r in caplog.records)


def test_credentials_come_from_the_environment() -> None:
    """Id and secret are read from GLOBUS_CLIENT_ID and GLOBUS_CLIENT_SECRET."""
    creds = GlobusCredentials.from_env(_env(GLOBUS_CLIENT_SECRET=SECRET))
    assert (creds.client_id, creds.client_secret) == (CLIENT_ID, SECRET)


def test_the_secret_can_come_from_a_private_file(tmp_path: Path) -> None:
    """GLOBUS_CLIENT_SECRET_FILE names a 0600 file holding the secret."""
    secret_file = tmp_path / "globus_secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)

    creds = GlobusCredentials.from_env(_env(GLOBUS_CLIENT_SECRET_FILE=str(secret_file)))

    assert creds.client_secret == SECRET


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else False, reason="root reads any file")
def test_an_unreadable_secret_file_is_a_credentials_error(tmp_path: Path) -> None:
    """The error names the file and the variable, not the secret."""
    secret_file = tmp_path / "globus_secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o000)
    with pytest.raises(CredentialsError, match="cannot read the Globus secret file"):
        GlobusCredentials.from_env(_env(GLOBUS_CLIENT_SECRET_FILE=str(secret_file)))


def test_a_missing_secret_file_is_a_credentials_error(tmp_path: Path) -> None:
    """A secret file that does not exist is named in the error."""
    missing = tmp_path / "nope"
    with pytest.raises(CredentialsError, match=f"cannot read the Globus secret file {missing}"):
        GlobusCredentials.from_env(_env(GLOBUS_CLIENT_SECRET_FILE=str(missing)))


def test_a_widely_readable_secret_file_is_refused(tmp_path: Path) -> None:
    """A secret file others may read is refused, with the chmod to fix it."""
    secret_file = tmp_path / "globus_secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o644)

    with pytest.raises(CredentialsError, match="chmod 600") as caught:
        GlobusCredentials.from_env(_env(GLOBUS_CLIENT_SECRET_FILE=str(secret_file)))
    assert SECRET not in str(caught.value)
    assert (
        GlobusCredentials.from_env(
            _env(GLOBUS_CLIENT_SECRET_FILE=str(secret_file)), require_private_file=False
        ).client_secret
        == SECRET
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no Globus client id: set GLOBUS_CLIENT_ID"),
        ({"GLOBUS_CLIENT_ID": CLIENT_ID}, "no Globus client secret .* set GLOBUS_CLIENT_SECRET"),
        ({"GLOBUS_CLIENT_ID": CLIENT_ID, "GLOBUS_CLIENT_SECRET": "  "}, "no Globus client secret"),
        (
            {"GLOBUS_CLIENT_ID": CLIENT_ID, "GLOBUS_CLIENT_SECRET": SECRET, "GLOBUS_CLIENT_SECRET_FILE": "/x"},
            "set only one",
        ),
        ({"GLOBUS_CLIENT_ID": "not-a-uuid-at-all", "GLOBUS_CLIENT_SECRET": SECRET}, "is not a UUID"),
    ],
)
def test_missing_or_malformed_credentials_are_credentials_errors(env: dict[str, str], message: str) -> None:
    """Each problem says which variable to set, and never shows the secret or the whole id."""
    with pytest.raises(CredentialsError, match=message) as caught:
        GlobusCredentials.from_env(env)
    assert SECRET not in str(caught.value)
    assert CLIENT_ID not in str(caught.value)
    assert "not-a-uuid-at-all" not in str(caught.value)


def test_nothing_is_read_until_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """An adapter built from the environment reads it on first use, not at construction."""
    monkeypatch.delenv("GLOBUS_CLIENT_ID", raising=False)
    adapter = GlobusTransfer.from_env()
    with pytest.raises(CredentialsError, match="GLOBUS_CLIENT_ID"):
        adapter.status("some-task")


def test_the_repr_hides_the_secret_and_most_of_the_id() -> None:
    """repr and str show a short id prefix and stars."""
    creds = GlobusCredentials(CLIENT_ID, SECRET)
    for shown in (repr(creds), str(creds), repr([creds]), f"{creds}"):
        assert SECRET not in shown
        assert CLIENT_ID not in shown
        assert CLIENT_ID[:8] in shown


def test_a_client_is_built_with_a_renewing_client_credentials_token(mock: responses.RequestsMock) -> None:
    """The builder fetches a transfer-scoped token; API calls carry it as a bearer token."""
    token = load_response("auth.oauth2_client_credentials_tokens", requests_mock=mock).metadata["access_token"]
    mock.add("GET", f"{BASE}/task/t-1", json={"task_id": "t-1", "status": "SUCCEEDED"})

    client = build_transfer_client(GlobusCredentials(CLIENT_ID, SECRET))
    client.get_task("t-1")

    token_request, task_request = mock.calls[0].request, mock.calls[1].request
    assert "transfer.api.globus.org%3Aall" in str(token_request.body)
    assert task_request.headers["Authorization"] == f"Bearer {token}"
    assert isinstance(client.authorizer, globus_sdk.ClientCredentialsAuthorizer)


@pytest.mark.parametrize("status", [400, 401])
def test_rejected_credentials_never_leak_the_secret(
    mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    """When Globus Auth rejects the client, neither logs nor the error chain show the secret or whole id."""
    caplog.set_level(logging.DEBUG)
    mock.add("POST", TOKEN_URL, status=status, json={"error": "invalid_client"})

    with pytest.raises(CredentialsError, match="rejected") as caught:
        build_transfer_client(GlobusCredentials(CLIENT_ID, SECRET))

    said = _everything_said(caught.value, caplog)
    assert caplog.records, "expected debug logging from the SDK to be captured"
    assert SECRET not in said
    assert CLIENT_ID not in said
    assert CLIENT_ID[:8] in str(caught.value)


def test_the_secret_is_not_logged_on_success_either(
    mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    """Building a working client logs neither the secret nor the whole client id."""
    caplog.set_level(logging.DEBUG)
    load_response("auth.oauth2_client_credentials_tokens", requests_mock=mock)

    build_transfer_client(environ=_env(GLOBUS_CLIENT_SECRET=SECRET))

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in logged
    assert CLIENT_ID not in logged


def test_globus_auth_being_down_is_transient(mock: responses.RequestsMock) -> None:
    """A 503 from Globus Auth is retried, then reported as transient, not as bad credentials."""
    mock.add("POST", TOKEN_URL, status=503, json={"error": "unavailable"})

    with pytest.raises(TransientTransferError):
        build_transfer_client(GlobusCredentials(CLIENT_ID, SECRET))
    assert len(mock.calls) == 3


def test_an_expired_token_is_refreshed_once(mock: responses.RequestsMock) -> None:
    """A 401 from Transfer makes the authorizer fetch a new token and the call is repeated once."""
    load_response("auth.oauth2_client_credentials_tokens", requests_mock=mock)
    mock.add("GET", f"{BASE}/task/t-1", status=401, json={"code": "AuthenticationFailed", "message": "expired"})
    mock.add("GET", f"{BASE}/task/t-1", json={"task_id": "t-1", "status": "ACTIVE"})

    client = build_transfer_client(GlobusCredentials(CLIENT_ID, SECRET))

    assert client.get_task("t-1")["status"] == "ACTIVE"
    token_calls = [c for c in mock.calls if c.request.url == TOKEN_URL]
    assert len(token_calls) == 2
