"""NERSC Superfacility API credentials, access tokens and the HTTP client factory.

An SFAPI client (made in Iris) is a client id plus an RSA private key. The key file must
be readable by its owner only (``chmod 600``); anything wider is refused. Nothing is read
at import or construction time: the files are read the first time a token is needed.

Tokens come from the OAuth2 ``client_credentials`` grant with a ``private_key_jwt``
client assertion (RFC 7523), signed with authlib's :class:`PrivateKeyJWT` - the same
scheme ``sfapi_client`` uses. Neither the key, the token nor the client id is ever put in
a repr, a log record or an error message; messages name the files instead.
"""

from __future__ import annotations

import logging
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import httpx
from authlib.oauth2.rfc7523 import PrivateKeyJWT  # type: ignore[import-untyped]  # authlib ships no type information

from splash_core.adapters.sfapi._errors import RetryableJobError
from splash_core.domain.errors import CredentialsError
from splash_core.ports.clock import ClockPort

logger = logging.getLogger(__name__)

HttpClientFactory = Callable[[], httpx.Client]
"""Builds the ``httpx.Client`` every SFAPI and token request goes through (tests inject a transport)."""

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_REFRESH_MARGIN_S = 60.0
"""A token is renewed this long before it expires."""
DEFAULT_TOKEN_LIFETIME_S = 600.0
"""Assumed lifetime when the token endpoint does not say (``expires_in``)."""

_PEM_BEGIN = "-----BEGIN "
_PEM_END_MARK = "-----END "


def default_http_client_factory(timeout_s: float = 30.0) -> HttpClientFactory:
    """A factory of plain ``httpx.Client`` objects with ``timeout_s`` and JSON accept headers."""

    def build() -> httpx.Client:
        return httpx.Client(timeout=timeout_s, headers={"accept": "application/json"})

    return build


def _read_private_file(path: Path, what: str, *, owner_only: bool = True) -> str:
    """Read a credentials file after checking it exists (and, for keys, is not readable by group or others)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CredentialsError(
            f"SFAPI {what} file {path} does not exist; save the {what} of your SFAPI client (from Iris) "
            f"there or point the configuration at it"
        ) from None
    except OSError as exc:
        raise CredentialsError(f"SFAPI {what} file {path} cannot be read ({exc.strerror})") from exc
    if not stat.S_ISREG(info.st_mode):
        raise CredentialsError(f"SFAPI {what} file {path} is not a regular file")
    if owner_only and info.st_mode & 0o077:
        raise CredentialsError(
            f"SFAPI {what} file {path} is readable by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"SFAPI {what} file {path} cannot be read ({type(exc).__name__})") from exc


def _pem_block(text: str, path: Path) -> str:
    """The PEM private key in ``text`` (files written by sfapi_client carry the client id first)."""
    start = text.find(_PEM_BEGIN)
    end_mark = text.find(_PEM_END_MARK, start + 1) if start >= 0 else -1
    end = text.find("-----", end_mark + len(_PEM_END_MARK)) if end_mark >= 0 else -1
    if start < 0 or end < 0:
        raise CredentialsError(
            f"SFAPI private key file {path} holds no PEM private key (no '-----BEGIN ... PRIVATE KEY-----' "
            f"block); download the key of your SFAPI client from Iris again"
        )
    return text[start : end + 5] + "\n"


class SfapiCredentials:
    """An SFAPI client: its id and the path of its private key, read lazily.

    Build one with :meth:`from_files` (both in files) or :meth:`from_client_id` (the id already
    read, e.g. from the configuration's secrets). The repr names the files, never the id or key.
    """

    def __init__(
        self,
        *,
        private_key_path: str | Path,
        client_id: str | None = None,
        client_id_path: str | Path | None = None,
    ) -> None:
        if (client_id is None) == (client_id_path is None):
            raise CredentialsError("give the SFAPI client id either as a value or as a file, not both or neither")
        self._key_path = Path(private_key_path).expanduser()
        self._id_path = Path(client_id_path).expanduser() if client_id_path is not None else None
        self._client_id = client_id.strip() if client_id is not None else None
        if client_id is not None and not self._client_id:
            raise CredentialsError("the SFAPI client id is empty; check the sfapi_client_id secret")
        self._key: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_files(cls, client_id_path: str | Path, private_key_path: str | Path) -> SfapiCredentials:
        """Credentials read (on first use) from a client id file and a private key file (mode 0600)."""
        return cls(client_id_path=client_id_path, private_key_path=private_key_path)

    @classmethod
    def from_client_id(cls, client_id: str, private_key_path: str | Path) -> SfapiCredentials:
        """Credentials from a client id already in hand and a private key file (mode 0600)."""
        return cls(client_id=client_id, private_key_path=private_key_path)

    @property
    def private_key_path(self) -> Path:
        """Where the private key is read from."""
        return self._key_path

    @property
    def describe(self) -> str:
        """Where the credentials come from, for messages (file names only)."""
        source = f"client id file {self._id_path}" if self._id_path is not None else "configured client id"
        return f"{source}, private key file {self._key_path}"

    def __repr__(self) -> str:
        return f"SfapiCredentials({self.describe})"

    def load(self) -> None:
        """Read and check both files now (otherwise this happens on first use).

        Raises:
            CredentialsError: a file is missing, unreadable, too widely readable, empty or not a key.
        """
        self._loaded()

    def _loaded(self) -> tuple[str, str]:
        with self._lock:
            if self._client_id is None and self._id_path is not None:
                first = _read_private_file(self._id_path, "client id", owner_only=False).strip().splitlines()
                if not first or not first[0].strip():
                    raise CredentialsError(f"SFAPI client id file {self._id_path} is empty")
                self._client_id = first[0].strip()
            if self._key is None:
                self._key = _pem_block(_read_private_file(self._key_path, "private key"), self._key_path)
            if not self._client_id:
                raise CredentialsError(f"no SFAPI client id ({self.describe})")
            return self._client_id, self._key

    def client_assertion(self, token_url: str) -> str:
        """A signed, short-lived JWT asserting this client to ``token_url`` (RFC 7523).

        Raises:
            CredentialsError: the files cannot be read or the key cannot sign.
        """
        client_id, key = self._loaded()
        signer = PrivateKeyJWT(token_url)
        try:
            assertion: str = signer.sign(SimpleNamespace(client_id=client_id, client_secret=key), token_url)
        except (ValueError, TypeError) as exc:
            raise CredentialsError(
                f"the SFAPI private key in {self._key_path} cannot sign a token request "
                f"({type(exc).__name__}); it must be the RSA private key of the SFAPI client, in PEM"
            ) from exc
        return assertion


class TokenSource:
    """Access tokens for the SFAPI, fetched when needed and renewed before they expire.

    Args:
        credentials: the SFAPI client.
        token_url: the OAuth2 token endpoint.
        http: returns the HTTP client to post to ``token_url`` with.
        clock: decides when a token has expired.
    """

    def __init__(
        self,
        credentials: SfapiCredentials,
        token_url: str,
        http: Callable[[], httpx.Client],
        clock: ClockPort,
    ) -> None:
        self._credentials = credentials
        self._token_url = token_url
        self._http = http
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenSource({self._token_url}, {self._credentials.describe})"

    def token(self) -> str:
        """A valid access token (a cached one unless it is about to expire)."""
        with self._lock:
            if self._token is None or self._clock.monotonic() >= self._expires_at - TOKEN_REFRESH_MARGIN_S:
                self._token, lifetime = self._fetch()
                self._expires_at = self._clock.monotonic() + lifetime
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (the API refused it), so the next :meth:`token` fetches a new one."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> tuple[str, float]:
        data = {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self._credentials.client_assertion(self._token_url),
        }
        try:
            response = self._http().post(self._token_url, data=data)
        except httpx.TransportError as exc:
            raise RetryableJobError(
                f"the NERSC token endpoint {self._token_url} cannot be reached ({type(exc).__name__}); retry later"
            ) from exc
        if response.status_code in (429,) or response.status_code >= 500:
            raise RetryableJobError(
                f"the NERSC token endpoint {self._token_url} answered HTTP {response.status_code}; retry later"
            )
        if response.status_code != 200:
            raise CredentialsError(
                f"the NERSC token endpoint {self._token_url} refused the SFAPI client "
                f"(HTTP {response.status_code}{_oauth_error(response)}); SFAPI clients expire - check the "
                f"client in Iris and renew the key ({self._credentials.describe})"
            )
        try:
            body = response.json()
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME_S)
        except (ValueError, KeyError, TypeError) as exc:
            raise RetryableJobError(
                f"the NERSC token endpoint {self._token_url} sent no usable access token; retry later"
            ) from exc
        logger.info("fetched an SFAPI access token valid for %.0f s", lifetime)
        return token, lifetime


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body[k])[:200] for k in ("error", "error_description") if body.get(k)]
    return ": " + " - ".join(parts) if parts else ""


__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "HttpClientFactory",
    "SfapiCredentials",
    "TokenSource",
    "default_http_client_factory",
]
