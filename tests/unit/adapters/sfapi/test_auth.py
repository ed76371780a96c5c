"""SFAPI credentials: lazy reading, file mode checks, tokens, and secrets kept out of text."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from splash_core.adapters.sfapi import SfapiCredentials, SfapiJobs
from splash_core.adapters.sfapi.auth import TokenSource
from splash_core.adapters.sfapi.settings import SFAPI_BASE_URL, SFAPI_TOKEN_URL
from splash_core.domain.errors import CredentialsError, TransientJobError
from splash_core.domain.models import JobSpec
from tests.fakes.clock import FakeClock
from tests.unit.adapters.sfapi.simulated import TOKEN_URL, SimulatedSfapi, make_key_files


def _key_body(pem: str) -> str:
    """A stretch from the middle of the key, which must never show up anywhere."""
    return pem.splitlines()[5]


def test_nothing_is_read_until_first_use(tmp_path: Path) -> None:
    """Credentials for files that do not exist can be built; using them fails."""
    creds = SfapiCredentials.from_files(tmp_path / "nope-id", tmp_path / "nope-key")
    with pytest.raises(CredentialsError, match="nope-id does not exist"):
        creds.load()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    """A key file readable by group or others is refused, naming the file and the fix."""
    id_file, key_file, pem = make_key_files(tmp_path, mode=mode)
    creds = SfapiCredentials.from_files(id_file, key_file)
    with pytest.raises(CredentialsError) as info:
        creds.load()
    message = str(info.value)
    assert str(key_file) in message
    assert f"chmod 600 {key_file}" in message
    assert _key_body(pem) not in message


def test_key_mode_is_checked_before_any_request(sim: SimulatedSfapi, clock: FakeClock, tmp_path: Path) -> None:
    """With a 0644 key the adapter refuses before talking to the token endpoint."""
    id_file, key_file, _ = make_key_files(tmp_path / "k", mode=0o644)
    port = SfapiJobs(
        sim.settings(), SfapiCredentials.from_files(id_file, key_file), client_factory=sim.client_factory, clock=clock
    )
    with pytest.raises(CredentialsError, match="chmod 600"):
        port.status("123")
    assert sim.tokens_issued == 0
    assert sim.requests == []


def test_key_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    """A key path that is a folder is refused clearly."""
    (tmp_path / "key").mkdir()
    (tmp_path / "id").write_text("abc\n")
    with pytest.raises(CredentialsError, match="is not a regular file"):
        SfapiCredentials.from_files(tmp_path / "id", tmp_path / "key").load()


def test_key_without_pem_block_is_refused(tmp_path: Path) -> None:
    """A key file holding no PEM private key is refused without quoting its content."""
    key = tmp_path / "key.pem"
    key.write_text("THIS-IS-NOT-A-KEY-but-a-secret-looking-string\n")
    key.chmod(0o600)
    with pytest.raises(CredentialsError, match="holds no PEM private key") as info:
        SfapiCredentials.from_client_id("abc", key).load()
    assert "secret-looking" not in str(info.value)


def test_broken_pem_cannot_sign_and_is_not_quoted(tmp_path: Path) -> None:
    """A damaged PEM fails at signing; neither the message nor its cause quote it."""
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n-----END PRIVATE KEY-----\n")
    key.chmod(0o600)
    creds = SfapiCredentials.from_client_id("abc", key)
    with pytest.raises(CredentialsError, match="cannot sign") as info:
        creds.client_assertion("https://token.test")
    assert "QUJDREVG" not in str(info.value)
    assert "QUJDREVG" not in str(info.value.__cause__)


def test_empty_client_id_file_is_refused(tmp_path: Path) -> None:
    """An empty client id file is refused, naming it."""
    _, key_file, _ = make_key_files(tmp_path)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(CredentialsError, match="empty"):
        SfapiCredentials.from_files(tmp_path / "empty", key_file).load()


def test_sfapi_client_style_key_file_works(tmp_path: Path) -> None:
    """A key file with the client id on its first line (sfapi_client's layout) still signs."""
    _, key_file, pem = make_key_files(tmp_path)
    key_file.write_text("simclient0001\n" + pem)
    key_file.chmod(0o600)
    assertion = SfapiCredentials.from_client_id("simclient0001", key_file).client_assertion("https://token.test")
    assert assertion.count(".") == 2


def test_repr_names_files_only(tmp_path: Path) -> None:
    """The repr of loaded credentials shows the file names, never the id or the key."""
    id_file, key_file, pem = make_key_files(tmp_path)
    creds = SfapiCredentials.from_files(id_file, key_file)
    creds.load()
    text = repr(creds)
    assert str(key_file) in text
    assert "simclient0001" not in text
    assert _key_body(pem) not in text


def test_client_id_and_key_are_never_logged(
    sim: SimulatedSfapi, clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Through token fetch, refresh, submission, failure and log reading, no record carries a secret."""
    id_file, key_file, pem = make_key_files(tmp_path / "secret")
    creds = SfapiCredentials.from_files(id_file, key_file)
    port = SfapiJobs(sim.settings(), creds, client_factory=sim.client_factory, clock=clock)
    caplog.set_level(logging.DEBUG)
    spec = JobSpec(
        name="x", kind="echo", parameters={"input": str(tmp_path / "missing"), "output": str(tmp_path / "o")}
    )
    job_id = port.submit(spec)
    sim.expire_tokens()
    status = port.wait(job_id, 600)
    assert status.log_tail
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(port) + str(status)
    for secret in ("simclient0001", _key_body(pem), "sim-token-1", "sim-token-2"):
        assert secret not in text


def test_token_is_reused_until_it_expires(sim: SimulatedSfapi, tmp_path: Path) -> None:
    """One token serves requests until shortly before it expires; then a new one is fetched."""
    clock = FakeClock()
    import httpx

    client = httpx.Client(transport=httpx.MockTransport(sim.router.handler))
    tokens = TokenSource(sim.credentials(tmp_path / "k"), TOKEN_URL, lambda: client, clock)
    first = tokens.token()
    assert tokens.token() == first
    clock.advance(500)
    assert tokens.token() == first
    clock.advance(60)
    assert tokens.token() != first
    assert sim.tokens_issued == 2


def test_token_endpoint_refusal_is_a_credentials_error(sim: SimulatedSfapi, jobs: SfapiJobs) -> None:
    """A token endpoint that refuses the client raises CredentialsError telling to renew the key."""
    sim.token_faults.append(401)
    with pytest.raises(CredentialsError, match=r"refused the SFAPI client.*Iris") as info:
        jobs.status("123")
    assert "invalid_client" in str(info.value)


def test_token_endpoint_outage_is_transient(sim: SimulatedSfapi, jobs: SfapiJobs) -> None:
    """A token endpoint answering 5xx is transient (retried, then TransientJobError)."""
    sim.token_faults.extend([503, 503, 503])
    with pytest.raises(TransientJobError, match="token endpoint"):
        jobs.status("123")


def test_urls_match_sfapi_client() -> None:
    """The default API and token URLs are the ones sfapi_client 0.6 uses."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sfapi_client._sync import client as sdk

    assert SFAPI_BASE_URL == sdk.SFAPI_BASE_URL
    assert SFAPI_TOKEN_URL == sdk.SFAPI_TOKEN_URL
