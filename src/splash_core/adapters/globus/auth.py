"""Globus confidential-client credentials and the TransferClient built from them.

Nothing is read at import time: :meth:`GlobusCredentials.from_env` reads the
environment (or a secret file) when the composition root asks for a client, and
:func:`build_transfer_client` is what the adapters call lazily on first use.

Environment:
    ``GLOBUS_CLIENT_ID``: the confidential client's id (a UUID).
    ``GLOBUS_CLIENT_SECRET``: its secret, or
    ``GLOBUS_CLIENT_SECRET_FILE``: a file holding the secret (mode 0600).

Neither the secret nor the whole client id ever appears in a message, a repr or a log
record (globus-sdk logs the client id at DEBUG; a filter redacts it).
"""

from __future__ import annotations

import logging
import os
import stat
import uuid
from collections.abc import Mapping
from pathlib import Path

import attrs
import globus_sdk
from globus_sdk.scopes import TransferScopes

from splash_core.adapters._redact import REDACTOR
from splash_core.adapters.globus._retry import Retrier, take_over_sdk_retries
from splash_core.adapters.globus.errors import CREDENTIALS_HINT, transfer_error
from splash_core.domain.errors import CredentialsError, SplashError

log = logging.getLogger(__name__)

ENV_CLIENT_ID = "GLOBUS_CLIENT_ID"
ENV_CLIENT_SECRET = "GLOBUS_CLIENT_SECRET"  # noqa: S105 - the name of a variable, not a secret
ENV_CLIENT_SECRET_FILE = "GLOBUS_CLIENT_SECRET_FILE"  # noqa: S105 - likewise

TRANSFER_SCOPE = str(TransferScopes.all)

# globus-sdk loggers that write the client id (at DEBUG) while a client is built
_SDK_LOGGERS_NAMING_THE_CLIENT = (
    "globus_sdk.authorizers.basic",
    "globus_sdk.services.auth.client.base_login_client",
    "globus_sdk.authorizers.client_credentials",
)


def _short(client_id: str) -> str:
    return client_id[:8] + "…" if len(client_id) > 8 else client_id


@attrs.frozen(repr=False)
class GlobusCredentials:
    """A Globus confidential client: its id and secret. The repr hides both."""

    client_id: str
    client_secret: str

    def __attrs_post_init__(self) -> None:
        if not self.client_id.strip():
            raise CredentialsError(f"the Globus client id is empty; set {ENV_CLIENT_ID}")
        if not self.client_secret.strip():
            raise CredentialsError(
                f"the Globus client secret for client {self.short_id} is empty; set {ENV_CLIENT_SECRET} "
                f"or {ENV_CLIENT_SECRET_FILE}"
            )
        try:
            uuid.UUID(self.client_id)
        except ValueError:
            raise CredentialsError(
                f"the Globus client id {self.short_id} is not a UUID; check {ENV_CLIENT_ID}"
            ) from None

    @property
    def short_id(self) -> str:
        """The first characters of the client id, enough to tell clients apart in a log."""
        return _short(self.client_id)

    def __repr__(self) -> str:
        return f"GlobusCredentials(client_id={self.short_id!r}, client_secret='***')"

    __str__ = __repr__

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, require_private_file: bool = True
    ) -> GlobusCredentials:
        """Read the credentials from the environment (or the secret file it names).

        Args:
            environ: the variables to read (``os.environ`` by default).
            require_private_file: refuse a secret file that group or others may read.

        Raises:
            CredentialsError: a variable is missing, both secret forms are set, the
                file is unreadable, empty or too widely readable.
        """
        env = os.environ if environ is None else environ
        client_id = env.get(ENV_CLIENT_ID, "").strip()
        secret = env.get(ENV_CLIENT_SECRET, "")
        secret_file = env.get(ENV_CLIENT_SECRET_FILE, "").strip()
        if not client_id:
            raise CredentialsError(
                f"no Globus client id: set {ENV_CLIENT_ID} (and {ENV_CLIENT_SECRET} or "
                f"{ENV_CLIENT_SECRET_FILE}) to the confidential client's credentials"
            )
        if secret and secret_file:
            raise CredentialsError(f"both {ENV_CLIENT_SECRET} and {ENV_CLIENT_SECRET_FILE} are set; set only one")
        if secret_file:
            secret = _read_secret_file(Path(secret_file), require_private=require_private_file)
        if not secret.strip():
            raise CredentialsError(
                f"no Globus client secret for client {_short(client_id)}: set {ENV_CLIENT_SECRET} or "
                f"{ENV_CLIENT_SECRET_FILE}"
            )
        return cls(client_id=client_id, client_secret=secret.strip())


def _read_secret_file(path: Path, *, require_private: bool) -> str:
    try:
        mode = path.stat().st_mode
        if require_private and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CredentialsError(
                f"the Globus secret file {path} is accessible to group or others "
                f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 {path}"
            )
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CredentialsError(
            f"cannot read the Globus secret file {path} ({exc.strerror or type(exc).__name__}); "
            f"check {ENV_CLIENT_SECRET_FILE}"
        ) from None
    if not text.strip():
        raise CredentialsError(f"the Globus secret file {path} is empty; check {ENV_CLIENT_SECRET_FILE}")
    return text


def _install_redactor(credentials: GlobusCredentials) -> None:
    REDACTOR.protect(credentials.client_secret)
    REDACTOR.protect(credentials.client_id, credentials.short_id)
    REDACTOR.attach(_SDK_LOGGERS_NAMING_THE_CLIENT)


def build_transfer_client(
    credentials: GlobusCredentials | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    retrier: Retrier | None = None,
) -> globus_sdk.TransferClient:
    """A TransferClient acting as the confidential client, its tokens renewed automatically.

    The first access token is fetched now (so bad credentials fail here, not halfway
    through a transfer); later ones are fetched by the authorizer as they expire.

    Args:
        credentials: the client; read with :meth:`GlobusCredentials.from_env` when None.
        environ: the environment to read them from (``os.environ`` by default).
        retrier: retry policy for fetching the first token.

    Raises:
        CredentialsError: credentials missing, or Globus Auth rejected them.
        TransientTransferError: Globus Auth could not be reached.
    """
    creds = credentials if credentials is not None else GlobusCredentials.from_env(environ)
    _install_redactor(creds)
    retry = retrier or Retrier()
    auth_client = globus_sdk.ConfidentialAppAuthClient(client_id=creds.client_id, client_secret=creds.client_secret)
    take_over_sdk_retries(auth_client)
    what = f"fetching a Globus transfer token for client {creds.short_id}"
    try:
        authorizer = retry(globus_sdk.ClientCredentialsAuthorizer, auth_client, TRANSFER_SCOPE)
    except (globus_sdk.GlobusAPIError, globus_sdk.NetworkError) as exc:
        error: SplashError = transfer_error(exc, what)
        if isinstance(exc, globus_sdk.GlobusAPIError) and not error.transient:
            # whatever Auth said (400 invalid_client, 401, 403 unauthorized_client), the client is unusable
            error = CredentialsError(f"{what}: Globus Auth rejected the client; {CREDENTIALS_HINT}")
        raise error from exc
    except ValueError as exc:  # the token response held more than one token
        raise CredentialsError(f"{what}: unexpected token response ({exc})") from exc
    client = globus_sdk.TransferClient(authorizer=authorizer)
    take_over_sdk_retries(client)
    log.info("Globus transfer client ready for client %s", creds.short_id)
    return client
