"""Settings of the SciCat catalog adapter and how they are read from ``options.scicat``.

Credentials are not settings: the username and password come from the configuration's secrets
(``scicat_username``, ``scicat_password``) and are handed to :func:`build_scicat_catalog`
separately, so they never sit in an object that might be printed.

Option keys (``options.scicat``):

- ``url`` (required): the SciCat backend, ``https://scicat.example.org`` or its v3 API base
  ``https://scicat.example.org/api/v3``.
- ``owner_group`` (required): the group that owns every dataset created.
- ``contact_email`` (required): one e-mail address, the datasets' contact.
- ``access_groups``: further groups that may read the datasets (list of strings).
- ``pid_prefix``: datasets get the pid ``<pid_prefix>/<dataset key>`` (default ``splash``).
- ``owner``: the datasets' owner (default: ``owner_group``).
- ``principal_investigator``: raw datasets' PI, derived datasets' investigator (default: ``owner``).
- ``creation_location``: where raw data was taken, a template with ``{beamline}``
  (default ``/ALS/{beamline}``).
- ``used_software``: derived datasets' ``usedSoftware`` (default ``["splash_core"]``).
- ``timeout_seconds``: per-request timeout (default 30).
- ``retry_attempts``, ``retry_timeout_seconds``, ``retry_wait_max_seconds``: bounded retries of a
  whole catalog operation on network errors, HTTP 429 and 5xx (defaults 5, 60, 10).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from splash_core.domain.errors import ConfigError

_PREFIX = "options.scicat"
_EMAIL = re.compile(r"^[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+$")
_PID_PREFIX = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._:-]|/(?!/))*[A-Za-z0-9]$|^[A-Za-z0-9]$")
_API_VERSION = re.compile(r"/api/v(\d+)$")

REQUIRED_KEYS = ("url", "owner_group", "contact_email")
_STRINGS = ("url", "owner_group", "contact_email", "pid_prefix", "owner", "principal_investigator", "creation_location")
_LISTS = ("access_groups", "used_software")
_SECONDS = {
    "timeout_seconds": "timeout_s",
    "retry_timeout_seconds": "retry_timeout_s",
    "retry_wait_max_seconds": "retry_wait_max_s",
}
SCICAT_KEYS = frozenset({*_STRINGS, *_LISTS, *_SECONDS, "retry_attempts"})
"""Every key ``options.scicat`` may have."""


def api_base(url: str) -> str:
    """The v3 API base of ``url`` (``/api/v3`` appended to a bare server URL, trailing slashes dropped)."""
    url = url.rstrip("/")
    return url if _API_VERSION.search(urlsplit(url).path) else f"{url}/api/v3"


def _value_problems(values: Mapping[str, Any]) -> list[str]:
    """What is wrong with the (already well-typed) values present in ``values``, keyed by option name."""
    problems: list[str] = []
    url = values.get("url")
    if url is not None:
        parts = urlsplit(url)
        version = _API_VERSION.search(parts.path.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(f"{_PREFIX}.url: {url!r} must be an http(s) URL like https://scicat.example.org")
        elif parts.query or parts.fragment:
            problems.append(f"{_PREFIX}.url: {url!r} must not have a query or fragment")
        elif version is not None and version.group(1) != "3":
            problems.append(f"{_PREFIX}.url: {url!r} points at API v{version.group(1)}; only /api/v3 is supported")
    for key in ("owner_group", "owner", "principal_investigator"):
        if key in values and not str(values[key]).strip():
            problems.append(f"{_PREFIX}.{key}: must not be empty")
    email = values.get("contact_email")
    if email is not None and not _EMAIL.match(email):
        problems.append(f"{_PREFIX}.contact_email: {email!r} is not one e-mail address")
    prefix = values.get("pid_prefix")
    if prefix is not None and not _PID_PREFIX.match(prefix):
        problems.append(
            f"{_PREFIX}.pid_prefix: {prefix!r} must be letters, digits and . _ : - / (not at either end, no '//')"
        )
    template = values.get("creation_location")
    if template is not None:
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        except ValueError as exc:
            problems.append(f"{_PREFIX}.creation_location: {template!r} is not a valid template ({exc})")
        else:
            if fields - {"beamline"}:
                problems.append(
                    f"{_PREFIX}.creation_location: {template!r} may use only {{beamline}}, "
                    f"not {', '.join(sorted(fields - {'beamline'}))}"
                )
    for key in _LISTS:
        if key in values and any(not item.strip() for item in values[key]):
            problems.append(f"{_PREFIX}.{key}: entries must not be empty")
    for key, field in _SECONDS.items():
        if field in values and values[field] <= 0:
            problems.append(f"{_PREFIX}.{key}: must be positive, got {values[field]}")
    if "retry_attempts" in values and values["retry_attempts"] < 1:
        problems.append(f"{_PREFIX}.retry_attempts: must be at least 1, got {values['retry_attempts']}")
    return problems


def _tuple(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen
class SciCatSettings:
    """Where SciCat is and how datasets are owned, named and retried (everything but credentials).

    Args:
        url: the SciCat backend or its v3 API base (see :attr:`api_base`).
        owner_group: the group owning every dataset created.
        contact_email: the datasets' contact e-mail address.
        access_groups: further groups that may read the datasets.
        pid_prefix: datasets get the pid ``<pid_prefix>/<dataset key>``.
        owner: the datasets' owner (default: ``owner_group``).
        principal_investigator: raw datasets' PI and derived datasets' investigator (default: ``owner``).
        creation_location: raw datasets' ``creationLocation``, a template with ``{beamline}``.
        used_software: derived datasets' ``usedSoftware``.
        timeout_s: per-request timeout.
        retry_attempts, retry_timeout_s, retry_wait_max_s: bounds of the retries of one operation.

    Raises:
        ConfigError: a value is invalid (every problem is listed, each with its option key).
    """

    url: str
    owner_group: str
    contact_email: str
    access_groups: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    pid_prefix: str = "splash"
    owner: str = attrs.field(default=attrs.Factory(lambda self: self.owner_group, takes_self=True))
    principal_investigator: str = attrs.field(default=attrs.Factory(lambda self: self.owner, takes_self=True))
    creation_location: str = "/ALS/{beamline}"
    used_software: tuple[str, ...] = attrs.field(default=("splash_core",), converter=_tuple)
    timeout_s: float = 30.0
    retry_attempts: int = 5
    retry_timeout_s: float = 60.0
    retry_wait_max_s: float = 10.0

    def __attrs_post_init__(self) -> None:
        problems = _value_problems(attrs.asdict(self, recurse=False))
        if problems:
            raise ConfigError(f"{_PREFIX} is invalid: " + "; ".join(problems), tuple(problems))

    @property
    def api_base(self) -> str:
        """The v3 API base URL, e.g. ``https://scicat.example.org/api/v3``."""
        return api_base(self.url)

    def pid(self, dataset_key: str) -> str:
        """The pid a dataset with ``dataset_key`` gets (and keeps)."""
        return f"{self.pid_prefix}/{dataset_key}"

    def creation_location_of(self, beamline: str) -> str:
        """Raw datasets' ``creationLocation`` for ``beamline``."""
        return self.creation_location.format(beamline=beamline)


def _number(key: str, value: Any, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems.append(f"{_PREFIX}.{key}: must be a number, got {value!r}")
        return None
    try:
        return float(value)
    except ValueError:
        problems.append(f"{_PREFIX}.{key}: must be a number, got {value!r}")
        return None


def scicat_settings(options: Mapping[str, Any]) -> SciCatSettings:
    """:class:`SciCatSettings` from the ``options.scicat`` block.

    Raises:
        ConfigError: the block is not a mapping, a required key is missing, a key is unknown or
            a value is invalid; ``problems`` lists every one, each starting with its key path
            (``options.scicat.url: ...``).
    """
    if not isinstance(options, Mapping):
        raise ConfigError(f"{_PREFIX}: must be a mapping of SciCat settings, got {type(options).__name__}")
    problems: list[str] = []
    known = ", ".join(sorted(SCICAT_KEYS))
    for key in sorted(set(map(str, options)) - SCICAT_KEYS):
        problems.append(f"{_PREFIX}.{key}: unknown key (known: {known})")
    for key in REQUIRED_KEYS:
        if options.get(key) in (None, ""):
            problems.append(f"{_PREFIX}.{key}: required")

    values: dict[str, Any] = {}
    for key in _STRINGS:
        if options.get(key) in (None, ""):
            continue
        if isinstance(options[key], str):
            values[key] = options[key]
        else:
            problems.append(f"{_PREFIX}.{key}: must be a string, got {options[key]!r}")
    for key in _LISTS:
        if key not in options or options[key] is None:
            continue
        raw = options[key]
        if isinstance(raw, str):
            values[key] = (raw,)
        elif isinstance(raw, list | tuple) and all(isinstance(item, str) for item in raw):
            values[key] = tuple(raw)
        else:
            problems.append(f"{_PREFIX}.{key}: must be a list of strings, got {raw!r}")
    for key, field in _SECONDS.items():
        if key in options:
            number = _number(key, options[key], problems)
            if number is not None:
                values[field] = number
    if "retry_attempts" in options:
        number = _number("retry_attempts", options["retry_attempts"], problems)
        if number is not None and number != int(number):
            problems.append(f"{_PREFIX}.retry_attempts: must be a whole number, got {options['retry_attempts']!r}")
        elif number is not None:
            values["retry_attempts"] = int(number)

    problems.extend(_value_problems(values))
    if problems:
        raise ConfigError(f"{_PREFIX} is invalid: " + "; ".join(problems), tuple(problems))
    return SciCatSettings(**values)


__all__ = ["REQUIRED_KEYS", "SCICAT_KEYS", "SciCatSettings", "api_base", "scicat_settings"]
