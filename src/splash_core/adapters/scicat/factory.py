"""Building the SciCat catalog from the configuration (``options.scicat`` and two secrets)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from splash_core.adapters.scicat.catalog import SciCatCatalog
from splash_core.adapters.scicat.settings import scicat_settings
from splash_core.domain.errors import ConfigError
from splash_core.ports.clock import ClockPort


def build_scicat_catalog(
    *,
    username: str,
    password: str,
    options: Mapping[str, Any],
    client: httpx.Client | None = None,
    clock: ClockPort | None = None,
) -> SciCatCatalog:
    """A :class:`SciCatCatalog` from the ``options.scicat`` block; nothing is contacted until first use.

    Args:
        username, password: the SciCat functional account (the ``scicat_username`` and
            ``scicat_password`` secrets).
        options: the ``options.scicat`` block (keys: see :mod:`.settings`).
        client: the HTTP client to use instead of a default one (tests).
        clock: the time of datasets whose files have no mtime.

    Raises:
        ConfigError: a secret is empty or the block is invalid; ``problems`` lists every problem,
            each starting with its key path (``options.scicat.url: ...``).
    """
    problems: list[str] = []
    for name, value in (("scicat_username", username), ("scicat_password", password)):
        if not isinstance(value, str) or not value.strip():
            problems.append(f"secrets.{name}: empty; set the SciCat functional account's {name.split('_')[1]}")
    try:
        settings = scicat_settings(options)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ConfigError("SciCat catalog configuration is invalid: " + "; ".join(problems), tuple(problems))
    return SciCatCatalog(settings, username=username, password=password, client=client, clock=clock)


__all__ = ["build_scicat_catalog"]
