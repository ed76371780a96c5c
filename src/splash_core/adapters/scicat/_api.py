"""The SciCat v3 REST calls the catalog needs, over httpx, translated into domain errors.

Endpoints (relative to the API base, e.g. ``https://scicat.example.org/api/v3``):

- ``POST auth/login`` (``username``, ``password``) -> ``access_token``; backends without it
  (the older LoopBack SciCat) answer 404 and ``POST Users/login`` -> ``id`` is used instead;
- ``GET datasets/{pid}`` (200 with an empty body when there is no such dataset),
  ``POST datasets`` (409 when the pid exists), ``PATCH datasets/{pid}``;
- ``GET datasets/{pid}/origdatablocks``, ``POST origdatablocks`` (with ``datasetId``),
  ``PATCH origdatablocks/{id}``, ``DELETE origdatablocks/{id}``.

The token goes in an ``Authorization: Bearer`` header only (never in a URL, so never in a log
line). One 401 is answered by logging in again and repeating the request once. Network errors,
timeouts, 429 and 5xx raise :class:`RetryableCatalogError`; the caller retries whole operations,
which are idempotent. Neither the username, the password nor a token is ever logged or put in a
message.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from splash_core.adapters.scicat._errors import RetryableCatalogError, SciCatLoginFailed
from splash_core.adapters.scicat.settings import SciCatSettings
from splash_core.domain.errors import CatalogError

logger = logging.getLogger(__name__)

_CHECK_ACCOUNT = "check the secrets scicat_username and scicat_password"
_MESSAGE_LIMIT = 500


def _segment(value: str) -> str:
    return quote(value, safe="")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def server_message(response: httpx.Response) -> str:
    """The reason SciCat gave in an error answer (NestJS ``message``, LoopBack ``error.message``), shortened."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:_MESSAGE_LIMIT] or response.reason_phrase
    message: Any = body
    if isinstance(body, Mapping):
        error = body.get("error")
        message = body.get("message") or (error.get("message") if isinstance(error, Mapping) else error) or body
    if isinstance(message, list):
        message = "; ".join(m if isinstance(m, str) else json.dumps(m) for m in message)
    text = message if isinstance(message, str) else json.dumps(message)
    return text[:_MESSAGE_LIMIT]


class SciCatApi:
    """Authenticated SciCat v3 requests with domain errors; logs in on first use.

    Args:
        settings: where SciCat is, the request timeout.
        username, password: the functional account (kept private, never shown).
        client: the HTTP client to use (tests pass one with a mock transport); by default a
            plain ``httpx.Client`` is made on first use and closed by :meth:`close`.
    """

    def __init__(
        self,
        settings: SciCatSettings,
        *,
        username: str,
        password: str,
        client: httpx.Client | None = None,
    ) -> None:
        self._settings = settings
        self._base = settings.api_base
        self._username = username
        self._password = password
        self._client = client
        self._owns_client = client is None
        self._token: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SciCatApi({self._base})"

    @property
    def base(self) -> str:
        """The API base URL."""
        return self._base

    def close(self) -> None:
        """Close the HTTP client if this object made it."""
        with self._lock:
            if self._owns_client and self._client is not None:
                self._client.close()
                self._client = None

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self._settings.timeout_s, headers={"accept": "application/json"})
            return self._client

    # --- authentication ----------------------------------------------------------------

    def _token_now(self) -> str:
        with self._lock:
            token = self._token
        if token is None:
            token = self._login()
            with self._lock:
                self._token = token
        return token

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    def _login(self) -> str:
        credentials = {"username": self._username, "password": self._password}
        response = self._send_login("auth/login", credentials)
        if response.status_code in (404, 405):
            response = self._send_login("Users/login", credentials)
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableCatalogError(
                f"SciCat at {self._base} could not log in (HTTP {response.status_code}); retry later",
                _retry_after(response),
            )
        if response.status_code in (404, 405):
            raise CatalogError(
                f"SciCat at {self._base} has no login endpoint (auth/login, Users/login answered "
                f"HTTP {response.status_code}); check options.scicat.url"
            )
        if response.status_code in (400, 401, 403):
            raise SciCatLoginFailed(
                f"SciCat at {self._base} refused the login of the configured account "
                f"(HTTP {response.status_code}); {_CHECK_ACCOUNT}"
            )
        if not response.is_success:
            raise CatalogError(f"SciCat at {self._base} answered the login with HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        token = (body.get("access_token") or body.get("id")) if isinstance(body, Mapping) else None
        if not token or not isinstance(token, str):
            raise RetryableCatalogError(f"SciCat at {self._base} sent no access token after login; retry later")
        logger.info("logged in to SciCat at %s", self._base)
        return token

    def _send_login(self, path: str, credentials: Mapping[str, str]) -> httpx.Response:
        try:
            return self._http().post(f"{self._base}/{path}", json=credentials)
        except (httpx.RequestError, httpx.InvalidURL) as exc:
            raise self._unreachable("logging in", exc) from None

    def _unreachable(self, what: str, exc: httpx.RequestError | httpx.InvalidURL) -> CatalogError:
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.TooManyRedirects | httpx.InvalidURL):
            return CatalogError(f"SciCat at {self._base} cannot be called ({type(exc).__name__}) while {what}")
        return RetryableCatalogError(
            f"SciCat at {self._base} cannot be reached while {what} ({type(exc).__name__}); retry later"
        )

    # --- requests ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        body: Mapping[str, Any] | None = None,
        allow: Collection[int] = (),
    ) -> httpx.Response:
        """Send an authenticated request; return the response when it succeeded or its status is in ``allow``.

        Raises:
            RetryableCatalogError: SciCat could not be reached, throttled, or failed (5xx).
            SciCatLoginFailed: the account's login was refused.
            CatalogError: SciCat refused the request (the message names ``what`` and SciCat's reason).
        """
        url = f"{self._base}/{path}"
        token = self._token_now()
        response = self._send(method, url, token, body, what)
        if response.status_code == 401:
            logger.info("SciCat at %s refused the access token while %s; logging in again", self._base, what)
            self._forget(token)
            response = self._send(method, url, self._token_now(), body, what)
            if response.status_code == 401:
                raise CatalogError(
                    f"SciCat at {self._base} refused a fresh access token while {what} (HTTP 401); "
                    f"the account may lack permissions: {server_message(response)}"
                )
        status = response.status_code
        if response.is_success or status in allow:
            return response
        if status == 429 or status >= 500:
            raise RetryableCatalogError(
                f"SciCat at {self._base} answered HTTP {status} while {what}: {server_message(response)}; retry later",
                _retry_after(response),
            )
        if status == 403:
            raise CatalogError(
                f"SciCat at {self._base} forbade {what} (HTTP 403: {server_message(response)}); the account needs "
                f"to be in the dataset's owner group (options.scicat.owner_group) and allowed to create datasets "
                f"with a pid"
            )
        raise CatalogError(f"SciCat at {self._base} rejected {what} (HTTP {status}): {server_message(response)}")

    def _send(self, method: str, url: str, token: str, body: Mapping[str, Any] | None, what: str) -> httpx.Response:
        try:
            return self._http().request(method, url, json=body, headers={"Authorization": f"Bearer {token}"})
        except (httpx.RequestError, httpx.InvalidURL) as exc:
            raise self._unreachable(what, exc) from None

    def json(self, response: httpx.Response, what: str) -> Any:
        """The JSON body of a successful ``response`` (None when empty, as SciCat answers "not found").

        Raises:
            RetryableCatalogError: the body is not JSON (a proxy's or maintenance page).
        """
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise RetryableCatalogError(
                f"SciCat at {self._base} answered {what} with something that is not JSON; retry later"
            ) from None

    # --- endpoints ---------------------------------------------------------------------

    def get_dataset(self, pid: str, *, what: str) -> dict[str, Any] | None:
        """The dataset with ``pid``, or None."""
        response = self.request("GET", f"datasets/{_segment(pid)}", what=what, allow=(404,))
        if response.status_code == 404:
            return None
        body = self.json(response, what)
        return dict(body) if isinstance(body, Mapping) and body else None

    def create_dataset(self, body: Mapping[str, Any], *, what: str) -> bool:
        """Create a dataset; False when its pid exists already (HTTP 409)."""
        response = self.request("POST", "datasets", what=what, body=body, allow=(409,))
        return response.status_code != 409

    def update_dataset(self, pid: str, fields: Mapping[str, Any], *, what: str) -> None:
        """Change some fields of the dataset with ``pid``."""
        self.request("PATCH", f"datasets/{_segment(pid)}", what=what, body=fields)

    def datablocks(self, pid: str, *, what: str) -> list[dict[str, Any]]:
        """The origdatablocks of the dataset with ``pid``."""
        response = self.request("GET", f"datasets/{_segment(pid)}/origdatablocks", what=what, allow=(404,))
        body = self.json(response, what) if response.status_code != 404 else None
        return [dict(b) for b in body if isinstance(b, Mapping)] if isinstance(body, list) else []

    def create_datablock(self, body: Mapping[str, Any], *, what: str) -> None:
        """Create an origdatablock (``body`` names its dataset in ``datasetId``)."""
        self.request("POST", "origdatablocks", what=what, body=body)

    def update_datablock(self, block_id: str, fields: Mapping[str, Any], *, what: str) -> None:
        """Change an origdatablock."""
        self.request("PATCH", f"origdatablocks/{_segment(block_id)}", what=what, body=fields)

    def delete_datablock(self, block_id: str, *, what: str) -> None:
        """Delete an origdatablock (a missing one counts as deleted)."""
        self.request("DELETE", f"origdatablocks/{_segment(block_id)}", what=what, allow=(404,))


__all__ = ["SciCatApi", "server_message"]
