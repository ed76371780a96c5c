"""The ``options.prefect`` block of the configuration, validated (no Prefect import here).

::

    options:
      prefect:
        work_pool_prefix: splash          # pools <prefix>-<beamline>-dispatch / -prune; also the task namespace
        api_url: http://prefect:4200/api  # default: PREFECT_API_URL of the environment
        prune_interval_minutes: 60        # the periodic prune sweep (or prune_cron: "0 * * * *")
        flight_check_interval_hours: 12
        timezone: UTC                     # for prune_cron
        pool_concurrency: 4               # flow runs at once per work pool (default: no limit)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from splash_core.domain.errors import ConfigError
from splash_core.domain.settings import Settings

DEFAULT_PREFIX = "splash"  # the same as adapters.prefect.naming.DEFAULT_PREFIX, without importing prefect


@attrs.frozen
class PrefectOptions:
    """How splash uses Prefect: pool names, the API, and the periodic schedules."""

    work_pool_prefix: str = DEFAULT_PREFIX
    api_url: str | None = None
    prune_interval_minutes: float = 60.0
    prune_cron: str | None = None
    flight_check_interval_hours: float = 12.0
    timezone: str = "UTC"
    pool_concurrency: int | None = None


_KNOWN = tuple(a.name for a in attrs.fields(PrefectOptions))


def _text(where: str, value: object, problems: list[str]) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: expected a non-empty string, got {value!r}")
        return None
    return value.strip()


def _positive(where: str, value: object, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        problems.append(f"{where}: expected a number > 0, got {value!r}")
        return None
    return float(value)


def prefect_options(settings: Settings) -> PrefectOptions:
    """The validated ``options.prefect`` of ``settings`` (defaults where absent).

    Raises:
        ConfigError: an unknown key or a bad value, every problem with its key path.
    """
    raw: Mapping[str, Any] = settings.adapter_options.get("prefect", {}) or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"options.prefect: expected a mapping (key: value), got {raw!r}")
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"options.prefect.{key}"
        if key not in _KNOWN:
            problems.append(f"{where}: unknown key (known: {', '.join(_KNOWN)})")
        elif value is None and key in ("api_url", "prune_cron", "pool_concurrency"):
            values[key] = None
        elif key in ("work_pool_prefix", "api_url", "prune_cron", "timezone"):
            values[key] = _text(where, value, problems)
        elif key == "pool_concurrency":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{where}: expected an integer >= 1, got {value!r}")
            else:
                values[key] = value
        else:
            values[key] = _positive(where, value, problems)
    cron = values.get("prune_cron")
    if cron is not None and len(cron.split()) not in (5, 6):
        problems.append(f"options.prefect.prune_cron: expected a cron expression like '0 * * * *', got {cron!r}")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        source = settings.source_file or "<memory>"
        raise ConfigError(f"configuration {source} is invalid: {problems[0]}{more}", tuple(problems))
    return PrefectOptions(**values)


__all__ = ["PrefectOptions", "prefect_options"]
