"""Building :class:`GlobusComputeJobs` from the configuration's ``options.globus_compute``.

Keys of ``options.globus_compute`` (only ``endpoint_id`` is required):

===============================  ==========================================================
``endpoint_id``                  the Globus Compute endpoint (UUID) jobs run on
``function_id``                  a registered ``ShellFunction`` with command ``{command}``
                                 (UUID; unset: registered on first submission)
``python``                       how the example templates run Python on the endpoint
                                 (``python``; may be several words, e.g. ``apptainer exec
                                 --bind /eagle /eagle/als/splash.sif python``)
``templates``                    kind -> command string, or a mapping with ``command``,
                                 ``options`` (parameter -> flag) and ``flags`` (switch
                                 parameter -> flag); merged over the example kinds
                                 ``reconstruct`` and ``multires`` (``null`` drops one)
``prologue``                     shell lines run before every command (``module load …``)
``user_endpoint_config``         mapping sent with every submission (multi-user endpoints)
``resource_specification``       mapping sent with every submission (MPI endpoints)
``enforce_time_limit``           run commands under ``timeout`` with the job's limit (true)
``kill_grace_seconds``           ``timeout --kill-after`` (60)
``poll_interval_seconds``        first wait between polls (10), then x ``poll_backoff`` (1.5)
``poll_max_interval_seconds``    up to this (120)
``retry_attempts``               bounded retries of calls failing with 429/5xx/network (5) ...
``retry_timeout_seconds``        ... within this long (120) ...
``retry_wait_max_seconds``       ... waiting at most this between tries (30)
``log_tail_lines``               lines of stdout and of stderr kept in a status (40)
===============================  ==========================================================

Credentials are the Globus confidential client's (secrets ``globus_client_id`` and
``globus_client_secret``); the SDK client is built from them on first use, without a login.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from splash_core.adapters._options import integer as _integer
from splash_core.adapters._options import number as _number
from splash_core.adapters.globus_compute.client import ClientFactory, GlobusComputeCredentials
from splash_core.adapters.globus_compute.jobs import GlobusComputeJobs
from splash_core.adapters.globus_compute.settings import (
    GlobusComputeSettings,
    JobTemplate,
    check_template,
    check_uuid,
    example_templates,
)
from splash_core.domain.errors import ConfigError
from splash_core.ports.clock import ClockPort

T = TypeVar("T")

PREFIX = "options.globus_compute"

_SECONDS = {
    "kill_grace_seconds": "kill_grace_s",
    "poll_interval_seconds": "poll_interval_s",
    "poll_max_interval_seconds": "poll_max_interval_s",
    "retry_timeout_seconds": "retry_timeout_s",
    "retry_wait_max_seconds": "retry_wait_max_s",
}
_INTS = {"retry_attempts", "log_tail_lines"}
_TEMPLATE_KEYS = frozenset({"command", "options", "flags"})
GLOBUS_COMPUTE_KEYS = frozenset(
    {
        "endpoint_id",
        "function_id",
        "python",
        "templates",
        "prologue",
        "user_endpoint_config",
        "resource_specification",
        "enforce_time_limit",
        "poll_backoff",
        *_SECONDS,
        *_INTS,
    }
)
"""Every key ``options.globus_compute`` may have."""


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: must be a string, got {value!r}")
    return value


def _str_map(key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"{key}: must map parameter names to flags (strings), got {value!r}")
    return {str(k): v for k, v in value.items()}


def _plain_map(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: must be a mapping, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _template(key: str, raw: Any) -> JobTemplate:
    if isinstance(raw, str):
        raw = {"command": raw}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: must be a command string or a mapping with command, options, flags")
    extra = sorted(set(map(str, raw)) - _TEMPLATE_KEYS)
    if extra:
        raise ConfigError(f"{key}: unknown key(s) {', '.join(extra)}; known: {', '.join(sorted(_TEMPLATE_KEYS))}")
    if "command" not in raw:
        raise ConfigError(f"{key}.command: required (the shell command the job runs)")
    command = _text(f"{key}.command", raw["command"])
    options = _str_map(f"{key}.options", raw.get("options") or {})
    flags = _str_map(f"{key}.flags", raw.get("flags") or {})
    check_template(key, command, options, flags)
    return JobTemplate(command=command, options=options, flags=flags)


def _collect(problems: list[str], fn: Callable[..., T], *args: Any) -> T | None:
    """``fn(*args)``, or None with its problems added to ``problems``."""
    try:
        return fn(*args)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def globus_compute_settings(options: Mapping[str, Any]) -> GlobusComputeSettings:
    """:class:`GlobusComputeSettings` from ``options.globus_compute``.

    Raises:
        ConfigError: ``endpoint_id`` is missing, a key is unknown or a value is invalid;
            ``problems`` lists every problem found, each starting with its key path.
    """
    problems: list[str] = []
    if not isinstance(options, Mapping):
        raise ConfigError(f"{PREFIX}: must be a mapping of settings, got {options!r}")
    extra = sorted(set(map(str, options)) - GLOBUS_COMPUTE_KEYS)
    if extra:
        problems.append(f"{PREFIX}: unknown key(s) {', '.join(extra)}; known: {', '.join(sorted(GLOBUS_COMPUTE_KEYS))}")
    kwargs: dict[str, Any] = {}
    if not options.get("endpoint_id"):
        problems.append(f"{PREFIX}.endpoint_id: required (the UUID of the Globus Compute endpoint jobs run on)")
    else:
        kwargs["endpoint_id"] = _collect(problems, check_uuid, f"{PREFIX}.endpoint_id", options["endpoint_id"])
    if options.get("function_id"):
        kwargs["function_id"] = _collect(problems, check_uuid, f"{PREFIX}.function_id", options["function_id"])

    python = _collect(problems, _text, f"{PREFIX}.python", options.get("python", "python")) or "python"
    templates: dict[str, JobTemplate] = dict(example_templates(python.strip() or "python"))
    raw_templates = options.get("templates") or {}
    if not isinstance(raw_templates, Mapping):
        problems.append(f"{PREFIX}.templates: must map job kinds to templates, got {raw_templates!r}")
        raw_templates = {}
    for kind, raw in raw_templates.items():
        if raw is None:
            templates.pop(str(kind), None)
            continue
        template = _collect(problems, _template, f"{PREFIX}.templates.{kind}", raw)
        if template is not None:
            templates[str(kind)] = template
    kwargs["templates"] = templates

    if "prologue" in options and options["prologue"] is not None:
        kwargs["prologue"] = _collect(problems, _text, f"{PREFIX}.prologue", options["prologue"])
    for key in ("user_endpoint_config", "resource_specification"):
        if options.get(key) is not None:
            kwargs[key] = _collect(problems, _plain_map, f"{PREFIX}.{key}", options[key])
    if "enforce_time_limit" in options:
        if isinstance(options["enforce_time_limit"], bool):
            kwargs["enforce_time_limit"] = options["enforce_time_limit"]
        else:
            problems.append(
                f"{PREFIX}.enforce_time_limit: must be true or false, got {options['enforce_time_limit']!r}"
            )
    for key, field in _SECONDS.items():
        if key in options:
            kwargs[field] = _collect(problems, _number, f"{PREFIX}.{key}", options[key])
    for key in _INTS:
        if key in options:
            kwargs[key] = _collect(problems, _integer, f"{PREFIX}.{key}", options[key])
    if "poll_backoff" in options:
        kwargs["poll_backoff"] = _collect(problems, _number, f"{PREFIX}.poll_backoff", options["poll_backoff"])

    if problems:
        raise ConfigError("; ".join(problems), tuple(problems))
    try:
        return GlobusComputeSettings(**kwargs)
    except ConfigError as exc:
        raise ConfigError(str(exc), exc.problems) from None


def build_globus_compute_jobs(
    *,
    client_id: str,
    client_secret: str,
    options: Mapping[str, Any],
    facility: str = "alcf",
    client_factory: ClientFactory | None = None,
    clock: ClockPort | None = None,
) -> GlobusComputeJobs:
    """A :class:`GlobusComputeJobs` from ``options.globus_compute`` (the SDK client is built on first use).

    Args:
        client_id, client_secret: the Globus confidential client the jobs are submitted as.
        options: the ``options.globus_compute`` mapping (see the module docstring).
        facility: the facility name the port stands for.
        client_factory: builds the SDK client from the credentials (tests inject a stand-in).
        clock: polling sleeps go through it.

    Raises:
        ConfigError: ``options.globus_compute`` is invalid.
        CredentialsError: the client id is not a UUID or the secret is empty.
    """
    return GlobusComputeJobs(
        globus_compute_settings(options),
        GlobusComputeCredentials(client_id=client_id, client_secret=client_secret),
        facility=facility,
        client_factory=client_factory,
        clock=clock,
    )


__all__ = ["GLOBUS_COMPUTE_KEYS", "build_globus_compute_jobs", "globus_compute_settings"]
