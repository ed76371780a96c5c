"""The TransferClient an adapter uses: injected ready-made, or built on first use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import globus_sdk

from splash_core.adapters.globus._retry import Retrier, take_over_sdk_retries
from splash_core.adapters.globus.errors import storage_error, transfer_error
from splash_core.domain.errors import InvalidInput, SplashError
from splash_core.domain.models import Endpoint

P = ParamSpec("P")
T = TypeVar("T")

ClientSource = globus_sdk.TransferClient | Callable[[], globus_sdk.TransferClient]
"""A TransferClient, or a function building one (called once, on first use)."""

_Translate = Callable[[Exception, str], SplashError]


def collection_of(endpoint: Endpoint) -> str:
    """The endpoint's Globus collection id.

    Raises:
        InvalidInput: the endpoint has none configured.
    """
    if not endpoint.collection_id:
        raise InvalidInput(
            f"endpoint {endpoint.name} has no Globus collection id; set collection_id for it in the "
            "configuration to reach it through Globus"
        )
    return endpoint.collection_id


class GlobusSession:
    """A lazily built TransferClient plus the retry policy every call goes through."""

    def __init__(self, source: ClientSource, retrier: Retrier) -> None:
        self._source = source
        self._client: globus_sdk.TransferClient | None = None
        self.retrier = retrier

    @property
    def client(self) -> globus_sdk.TransferClient:
        """The TransferClient (built now if only a factory was given)."""
        if self._client is None:
            source = self._source
            client = source if isinstance(source, globus_sdk.TransferClient) else source()
            take_over_sdk_retries(client)
            self._client = client
        return self._client

    def _call(self, translate: _Translate, what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return self.retrier(fn, *args, **kwargs)
        except (globus_sdk.GlobusAPIError, globus_sdk.NetworkError) as exc:
            raise translate(exc, what) from exc

    def transfer_call(self, what: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` with retries; SDK errors become transfer errors."""
        return self._call(transfer_error, what, fn, *args, **kwargs)

    def storage_call(self, what: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` with retries; SDK errors become storage errors."""
        return self._call(storage_error, what, fn, *args, **kwargs)

    def ls(self, collection_id: str, path: str, *, page_size: int, what: str, as_storage: bool) -> Iterator[Any]:
        """Every entry of one directory, page by page (each page retried on its own)."""
        call = self.storage_call if as_storage else self.transfer_call
        offset = 0
        while True:
            page = call(what, self.client.operation_ls, collection_id, path=path, limit=page_size, offset=offset)
            entries = list(page.get("DATA") or [])
            yield from entries
            if len(entries) < page_size or page.get("has_next_page") is False:
                return
            offset += len(entries)
