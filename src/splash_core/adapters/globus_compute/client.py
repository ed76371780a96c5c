"""The part of ``globus_compute_sdk.Client`` the adapter uses, and building one without a login.

:class:`ComputeClient` is the handful of ``Client`` methods :class:`GlobusComputeJobs` calls
(``register_function``, ``create_batch``, ``batch_run``, ``get_task``); tests inject a small
stand-in with the same methods. ``Client.run`` is ``create_batch`` + ``batch_run`` without a
way to pass ``user_endpoint_config``, so the adapter calls the two itself.

:func:`default_client_factory` builds a real ``Client`` for a Globus confidential client
(client credentials grant) without reading or changing the environment and without any
interactive login: a ``ClientCredentialsAuthorizer`` (globus-sdk) fetches a token for the
Globus Compute scope and renews it as it expires, and the ``Client`` is given that authorizer.
The SDK's own route - ``GLOBUS_COMPUTE_CLIENT_ID`` and ``GLOBUS_COMPUTE_CLIENT_SECRET`` in
``os.environ`` - would mean changing the process environment and a token file under
``~/.globus_compute``; with an authorizer there is neither, and no login is ever started (an
``Executor`` or ``Client`` built without one starts an interactive login).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs

from splash_core.adapters._redact import REDACTOR
from splash_core.domain.errors import CredentialsError

logger = logging.getLogger(__name__)

COMPUTE_SCOPE = "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all"
"""The Globus Compute API scope (``globus_sdk.scopes.ComputeScopes.all``)."""

# globus-sdk loggers that write the client id (at DEBUG) while the authorizer is built
_SDK_LOGGERS_NAMING_THE_CLIENT = (
    "globus_sdk.authorizers.basic",
    "globus_sdk.services.auth.client.base_login_client",
    "globus_sdk.authorizers.client_credentials",
)


class ComputeBatch(Protocol):
    """A batch of task submissions (``globus_compute_sdk.sdk.batch.Batch``)."""

    def add(
        self,
        function_id: str,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Add one invocation of ``function_id``."""
        ...


class ComputeClient(Protocol):
    """The ``globus_compute_sdk.Client`` methods the adapter calls."""

    def register_function(self, function: Any, description: str | None = None) -> str:
        """Register ``function`` (here a ``ShellFunction``); its function id."""
        ...

    def create_batch(
        self,
        task_group_id: str | None = None,
        resource_specification: dict[str, Any] | None = None,
        user_endpoint_config: dict[str, Any] | None = None,
    ) -> ComputeBatch:
        """An empty batch."""
        ...

    def batch_run(self, endpoint_id: str, batch: Any) -> Mapping[str, Any]:
        """Submit ``batch``; ``{"tasks": {function_id: [task_id, ...]}, ...}``."""
        ...

    def get_task(self, task_id: str) -> Mapping[str, Any]:
        """``{"pending": bool, "status": str, ...}`` plus ``result``/``reason``/``details`` when done.

        Raises ``TaskExecutionFailed`` when the task raised on the endpoint.
        """
        ...


def _short(client_id: str) -> str:
    return client_id[:8] + "…" if len(client_id) > 8 else client_id


@attrs.frozen(repr=False)
class GlobusComputeCredentials:
    """A Globus confidential client: its id and secret. The repr hides both.

    Raises:
        CredentialsError: the id is empty or not a UUID, or the secret is empty.
    """

    client_id: str
    client_secret: str

    def __attrs_post_init__(self) -> None:
        if not self.client_id.strip():
            raise CredentialsError("the Globus client id for Globus Compute is empty; set the globus_client_id secret")
        try:
            uuid.UUID(self.client_id)
        except ValueError:
            raise CredentialsError(
                f"the Globus client id {self.short_id} is not a UUID; check the globus_client_id secret"
            ) from None
        if not self.client_secret.strip():
            raise CredentialsError(
                f"the Globus client secret for client {self.short_id} is empty; check the globus_client_secret secret"
            )

    @property
    def short_id(self) -> str:
        """The first characters of the client id, enough to tell clients apart in a log."""
        return _short(self.client_id)

    def __repr__(self) -> str:
        return f"GlobusComputeCredentials(client_id={self.short_id!r}, client_secret='***')"

    __str__ = __repr__


ClientFactory = Callable[[GlobusComputeCredentials], ComputeClient]
"""Builds the client from the credentials (called once, on first use)."""


def _install_redactor(credentials: GlobusComputeCredentials) -> None:
    REDACTOR.protect(credentials.client_secret)
    REDACTOR.protect(credentials.client_id, credentials.short_id)
    REDACTOR.attach(_SDK_LOGGERS_NAMING_THE_CLIENT)


def default_client_factory(credentials: GlobusComputeCredentials) -> ComputeClient:
    """A ``globus_compute_sdk.Client`` acting as the confidential client (no login, no env vars).

    The first token is fetched now, and the service's minimum SDK version is checked, so bad
    credentials or an outdated SDK fail here.

    Raises:
        globus_sdk.GlobusAPIError, globus_sdk.NetworkError: Globus Auth or Compute refused or
            could not be reached (the caller translates them).
        globus_compute_sdk.errors.VersionMismatch: the installed SDK is too old for the service.
    """
    import globus_sdk
    from globus_compute_sdk import Client

    _install_redactor(credentials)
    auth_client = globus_sdk.ConfidentialAppAuthClient(
        client_id=credentials.client_id, client_secret=credentials.client_secret
    )
    authorizer = globus_sdk.ClientCredentialsAuthorizer(auth_client, COMPUTE_SCOPE)
    client: ComputeClient = Client(authorizer=authorizer)
    logger.info("Globus Compute client ready for client %s", credentials.short_id)
    return client


__all__ = [
    "COMPUTE_SCOPE",
    "ClientFactory",
    "ComputeBatch",
    "ComputeClient",
    "GlobusComputeCredentials",
    "default_client_factory",
]
