"""Small validators for adapter ``options`` blocks, shared by the adapter factories."""

from __future__ import annotations

from typing import Any

from splash_core.domain.errors import ConfigError


def number(key: str, value: Any) -> float:
    """``value`` as a float (numbers or numeric strings; not booleans).

    Raises:
        ConfigError: naming ``key`` (a key path such as ``options.sfapi.nodes``).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{key}: must be a number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{key}: must be a number, got {value!r}") from None


def integer(key: str, value: Any) -> int:
    """``value`` as a whole number.

    Raises:
        ConfigError: naming ``key``.
    """
    result = number(key, value)
    if result != int(result):
        raise ConfigError(f"{key}: must be a whole number, got {value!r}")
    return int(result)
