"""Turn the flat ``globus`` options block of the configuration into adapter keyword arguments.

Keys (all optional; both adapters read the same block and take what concerns them):

=========================  =======  ==================================================
key                        default  meaning
=========================  =======  ==================================================
``poll_initial_s``         2        first wait between polls of a running task
``poll_max_s``             60       longest wait between polls
``poll_factor``            1.5      growth of the wait after each poll
``retry_attempts``         5        attempts per API call on 429/5xx/network errors
``retry_timeout_s``        120      give up retrying one call after this long
``retry_wait_initial_s``   1        first backoff between attempts
``retry_wait_max_s``       30       longest backoff (also caps ``Retry-After``)
``checksum_failure_limit`` 3        checksum-mismatch events before a task is cancelled
``max_resubmits``          20       failed tasks one idempotency key may be retried over
``ls_page_size``           100000   entries per directory-listing page
``delete_timeout_s``       600      how long a delete task may run (storage)
=========================  =======  ==================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from splash_core.adapters.globus._retry import RetryPolicy
from splash_core.adapters.globus._tasks import PollPolicy
from splash_core.domain.errors import ConfigError

_FLOATS = {
    "poll_initial_s",
    "poll_max_s",
    "poll_factor",
    "retry_timeout_s",
    "retry_wait_initial_s",
    "retry_wait_max_s",
    "delete_timeout_s",
}
_INTS = {"retry_attempts", "checksum_failure_limit", "max_resubmits", "ls_page_size"}
_TRANSFER_ONLY = {"checksum_failure_limit", "max_resubmits"}
_STORAGE_ONLY = {"delete_timeout_s"}
KNOWN_KEYS = frozenset(_FLOATS | _INTS)


def _number(options: Mapping[str, Any], key: str, where: str) -> float | int:
    value = options[key]
    try:
        if isinstance(value, bool):
            raise TypeError
        number: float | int = int(value) if key in _INTS else float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.{key}: expected a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{where}.{key}: must be positive, got {value!r}")
    return number


def adapter_kwargs(
    options: Mapping[str, Any], *, for_storage: bool, where: str = "adapter_options.globus"
) -> dict[str, Any]:
    """Keyword arguments for ``GlobusTransfer`` (or ``GlobusStorage`` when ``for_storage``).

    Raises:
        ConfigError: an unknown key, or a value that is not a positive number; every
            problem is listed with its key path.
    """
    problems = [f"{where}.{key}: unknown option" for key in sorted(set(options) - KNOWN_KEYS)]
    numbers: dict[str, float | int] = {}
    for key in sorted(set(options) & KNOWN_KEYS):
        try:
            numbers[key] = _number(options, key, where)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(f"{where}: {len(problems)} problem(s): " + "; ".join(problems), tuple(problems))
    kwargs: dict[str, Any] = {}
    defaults_poll, defaults_retry = PollPolicy(), RetryPolicy()
    try:
        if any(k.startswith("poll_") for k in numbers):
            kwargs["poll"] = PollPolicy(
                initial_s=float(numbers.get("poll_initial_s", defaults_poll.initial_s)),
                max_s=float(numbers.get("poll_max_s", defaults_poll.max_s)),
                factor=float(numbers.get("poll_factor", defaults_poll.factor)),
            )
        if any(k.startswith("retry_") for k in numbers):
            kwargs["retry"] = RetryPolicy(
                attempts=int(numbers.get("retry_attempts", defaults_retry.attempts)),
                timeout_s=float(numbers.get("retry_timeout_s", defaults_retry.timeout_s)),
                wait_initial_s=float(numbers.get("retry_wait_initial_s", defaults_retry.wait_initial_s)),
                wait_max_s=float(numbers.get("retry_wait_max_s", defaults_retry.wait_max_s)),
            )
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    skip = _TRANSFER_ONLY if for_storage else _STORAGE_ONLY
    for key in ("checksum_failure_limit", "max_resubmits", "ls_page_size", "delete_timeout_s"):
        if key in numbers and key not in skip:
            kwargs[key] = numbers[key]
    return kwargs
