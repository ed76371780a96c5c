"""Building the SFAPI adapters from the configuration's ``options.sfapi`` and ``options.hpss``.

Keys of ``options.sfapi`` (only ``account`` and ``log_dir`` are required):

===============================  ==========================================================
``machine``                      SFAPI machine (``perlmutter``)
``api_base_url``, ``token_url``  SFAPI v1.2 and the NERSC token endpoint (NERSC's by default)
``account``                      NERSC project charged for jobs, e.g. ``als``
``qos``, ``constraint``          default ``regular`` and ``cpu``
``nodes``                        nodes per job (1)
``log_dir``                      absolute folder at NERSC for job logs
``max_time_limit_minutes``       longest time limit the QOS allows (unset: no check)
``extra_sbatch``                 list of further sbatch options, e.g. ``[--mem=20GB]``
``images``                       kind -> image, for the example kinds ``reconstruct``,
                                 ``multires``, ``ptycho`` (see ``settings.example_kinds``)
``kinds``                        kind -> full template: ``image``, ``command``, ``inputs``,
                                 ``outputs``, ``options``, ``flags``, ``allowed_roots``,
                                 ``account``, ``qos``, ``constraint``, ``nodes``,
                                 ``gpus_per_node``, ``max_time_limit_minutes``,
                                 ``podman_args``, ``extra_sbatch``
``poll_interval_seconds``        first wait between polls (10), then x ``poll_backoff`` (1.5)
``poll_max_interval_seconds``    up to this (120)
``task_poll_interval_seconds``   polling of API tasks (1)
``not_found_grace_seconds``      "job not found" means "not visible yet" this long (300)
``submit_timeout_seconds``       a submission task may take this long (300)
``command_timeout_seconds``      a command (log tail) may take this long (120)
``http_timeout_seconds``         per request (30)
``retry_attempts``               bounded retries of safe requests (5) ...
``retry_timeout_seconds``        ... within this long (120) ...
``retry_wait_max_seconds``       ... waiting at most this between tries (30)
``log_tail_lines``               lines of a failed job's log in its status (40)
``site_timezone``                zone of Slurm's times (``America/Los_Angeles``)
===============================  ==========================================================

Keys of ``options.hpss`` (``tape_root`` required): ``tape_root``, ``layout``
(``{endpoint}/{proposal}``), ``cput_layout`` (``{endpoint}``), ``qos`` (``xfer``),
``constraint`` (none), ``account`` and ``log_dir`` (default: those of ``options.sfapi``),
``time_limit_minutes`` (720), ``job_timeout_minutes`` (2880), ``checksum`` (true),
``extra_sbatch``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from splash_core.adapters._options import integer as _integer
from splash_core.adapters._options import number as _number
from splash_core.adapters.sfapi.auth import HttpClientFactory, SfapiCredentials
from splash_core.adapters.sfapi.hpss import HpssArchive
from splash_core.adapters.sfapi.jobs import SfapiJobs
from splash_core.adapters.sfapi.settings import (
    HpssSettings,
    JobKindSettings,
    SfapiSettings,
    SlurmSettings,
    example_kinds,
)
from splash_core.domain.errors import ConfigError
from splash_core.ports.clock import ClockPort

_SFAPI_SECONDS = {
    "poll_interval_seconds": "poll_interval_s",
    "poll_max_interval_seconds": "poll_max_interval_s",
    "task_poll_interval_seconds": "task_poll_interval_s",
    "not_found_grace_seconds": "not_found_grace_s",
    "submit_timeout_seconds": "submit_timeout_s",
    "command_timeout_seconds": "command_timeout_s",
    "http_timeout_seconds": "http_timeout_s",
    "retry_timeout_seconds": "retry_timeout_s",
    "retry_wait_max_seconds": "retry_wait_max_s",
}
_SFAPI_PLAIN = {"machine", "api_base_url", "token_url", "site_timezone"}
_SFAPI_INTS = {"retry_attempts", "log_tail_lines"}
_SLURM_KEYS = {"account", "qos", "constraint", "nodes", "log_dir", "max_time_limit_minutes", "extra_sbatch"}
SFAPI_KEYS = frozenset({*_SFAPI_SECONDS, *_SFAPI_PLAIN, *_SFAPI_INTS, *_SLURM_KEYS, "images", "kinds", "poll_backoff"})
"""Every key ``options.sfapi`` may have."""
HPSS_KEYS = frozenset(
    {
        "tape_root",
        "layout",
        "cput_layout",
        "qos",
        "constraint",
        "account",
        "log_dir",
        "time_limit_minutes",
        "job_timeout_minutes",
        "checksum",
        "extra_sbatch",
    }
)
"""Every key ``options.hpss`` may have."""
_KIND_KEYS = frozenset(
    {
        "image",
        "command",
        "inputs",
        "outputs",
        "options",
        "flags",
        "allowed_roots",
        "account",
        "qos",
        "constraint",
        "nodes",
        "gpus_per_node",
        "max_time_limit_minutes",
        "podman_args",
        "extra_sbatch",
    }
)


def _strings(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}: must be a list of strings, got {value!r}")
    return tuple(value)


def _str_map(key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(v, str | int | float) for v in value.values()):
        raise ConfigError(f"{key}: must map names to strings, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def _unknown(prefix: str, options: Mapping[str, Any], known: frozenset[str]) -> None:
    extra = sorted(set(options) - known)
    if extra:
        raise ConfigError(f"{prefix}: unknown key(s) {', '.join(extra)}; known: {', '.join(sorted(known))}")


def _kind(name: str, raw: Any) -> JobKindSettings:
    key = f"options.sfapi.kinds.{name}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: must be a mapping of template settings")
    _unknown(key, raw, _KIND_KEYS)
    if "image" not in raw or "command" not in raw:
        raise ConfigError(f"{key}: image and command are required")
    kwargs: dict[str, Any] = {"image": str(raw["image"]), "command": _strings(f"{key}.command", raw["command"])}
    for field in ("inputs", "outputs", "allowed_roots", "podman_args"):
        if field in raw:
            kwargs[field] = _strings(f"{key}.{field}", raw[field])
    if "extra_sbatch" in raw:
        kwargs["extra_directives"] = _strings(f"{key}.extra_sbatch", raw["extra_sbatch"])
    for field in ("options", "flags"):
        if field in raw:
            kwargs[field] = _str_map(f"{key}.{field}", raw[field])
    for field in ("account", "qos", "constraint"):
        if field in raw:
            kwargs[field] = str(raw[field])
    for field in ("nodes", "gpus_per_node"):
        if field in raw:
            kwargs[field] = _integer(f"{key}.{field}", raw[field])
    if "max_time_limit_minutes" in raw:
        kwargs["max_time_limit_s"] = 60 * _number(f"{key}.max_time_limit_minutes", raw["max_time_limit_minutes"])
    return JobKindSettings(**kwargs)


def sfapi_settings(options: Mapping[str, Any], *, ignore: frozenset[str] = frozenset()) -> SfapiSettings:
    """:class:`SfapiSettings` from ``options.sfapi`` (keys in ``ignore`` are skipped).

    Raises:
        ConfigError: a required key is missing, a key is unknown or a value is invalid (the
            message names the key).
    """
    options = {k: v for k, v in options.items() if k not in ignore}
    _unknown("options.sfapi", options, SFAPI_KEYS)
    for required in ("account", "log_dir"):
        if not options.get(required):
            raise ConfigError(
                f"options.sfapi.{required}: required ("
                + ("the NERSC project charged for jobs)" if required == "account" else "absolute folder for job logs)")
            )
    slurm_kwargs: dict[str, Any] = {"account": str(options["account"]), "log_dir": str(options["log_dir"])}
    for field in ("qos", "constraint"):
        if field in options:
            slurm_kwargs[field] = str(options[field] or "")
    if "nodes" in options:
        slurm_kwargs["nodes"] = _integer("options.sfapi.nodes", options["nodes"])
    if "max_time_limit_minutes" in options:
        slurm_kwargs["max_time_limit_s"] = 60 * _number(
            "options.sfapi.max_time_limit_minutes", options["max_time_limit_minutes"]
        )
    if "extra_sbatch" in options:
        slurm_kwargs["extra_directives"] = _strings("options.sfapi.extra_sbatch", options["extra_sbatch"])
    slurm = SlurmSettings(**slurm_kwargs)

    images = _str_map("options.sfapi.images", options.get("images") or {})
    examples = example_kinds(
        **{f"{kind}_image": image for kind, image in images.items() if kind in ("reconstruct", "multires", "ptycho")}
    )
    unknown_images = sorted(set(images) - set(examples) - set(options.get("kinds") or {}))
    if unknown_images:
        raise ConfigError(
            f"options.sfapi.images: no template for kind(s) {', '.join(unknown_images)}; define them under "
            f"options.sfapi.kinds"
        )
    kinds: dict[str, JobKindSettings] = {kind: examples[kind] for kind in images if kind in examples}
    raw_kinds = options.get("kinds") or {}
    if not isinstance(raw_kinds, Mapping):
        raise ConfigError("options.sfapi.kinds: must map kind names to templates")
    for name, raw in raw_kinds.items():
        raw = dict(raw) if isinstance(raw, Mapping) else raw
        if isinstance(raw, dict) and "image" not in raw and str(name) in images:
            raw["image"] = images[str(name)]
        kinds[str(name)] = _kind(str(name), raw)

    kwargs: dict[str, Any] = {"slurm": slurm, "kinds": kinds}
    for key in _SFAPI_PLAIN:
        if key in options:
            kwargs[key] = str(options[key])
    for key, field in _SFAPI_SECONDS.items():
        if key in options:
            kwargs[field] = _number(f"options.sfapi.{key}", options[key])
    for key in _SFAPI_INTS:
        if key in options:
            kwargs[key] = _integer(f"options.sfapi.{key}", options[key])
    if "poll_backoff" in options:
        kwargs["poll_backoff"] = _number("options.sfapi.poll_backoff", options["poll_backoff"])
    return SfapiSettings(**kwargs)


def hpss_settings(options: Mapping[str, Any]) -> HpssSettings:
    """:class:`HpssSettings` from ``options.hpss``.

    Raises:
        ConfigError: ``tape_root`` is missing, a key is unknown or a value is invalid.
    """
    _unknown("options.hpss", options, HPSS_KEYS)
    if not options.get("tape_root"):
        raise ConfigError("options.hpss.tape_root: required (the HPSS folder bundles go below)")
    kwargs: dict[str, Any] = {"tape_root": str(options["tape_root"])}
    for key in ("layout", "cput_layout", "qos", "constraint", "account", "log_dir"):
        if key in options and options[key] is not None:
            kwargs[key] = str(options[key])
    if "time_limit_minutes" in options:
        kwargs["time_limit_s"] = 60 * _number("options.hpss.time_limit_minutes", options["time_limit_minutes"])
    if "job_timeout_minutes" in options:
        kwargs["job_timeout_s"] = 60 * _number("options.hpss.job_timeout_minutes", options["job_timeout_minutes"])
    if "checksum" in options:
        if not isinstance(options["checksum"], bool):
            raise ConfigError(f"options.hpss.checksum: must be true or false, got {options['checksum']!r}")
        kwargs["checksum"] = options["checksum"]
    if "extra_sbatch" in options:
        kwargs["extra_directives"] = _strings("options.hpss.extra_sbatch", options["extra_sbatch"])
    return HpssSettings(**kwargs)


def build_sfapi_jobs(
    *,
    client_id: str,
    private_key_file: str | Path,
    options: Mapping[str, Any],
    facility: str = "nersc",
    client_factory: HttpClientFactory | None = None,
    clock: ClockPort | None = None,
) -> SfapiJobs:
    """An :class:`SfapiJobs` from the configuration (the key file is read on first use).

    Raises:
        ConfigError: ``options.sfapi`` is invalid.
    """
    return SfapiJobs(
        sfapi_settings(options),
        SfapiCredentials.from_client_id(client_id, private_key_file),
        facility=facility,
        client_factory=client_factory,
        clock=clock,
    )


def build_hpss_archive(
    *,
    client_id: str,
    private_key_file: str | Path,
    options: Mapping[str, Any],
    hpss_options: Mapping[str, Any] | None = None,
    client_factory: HttpClientFactory | None = None,
    clock: ClockPort | None = None,
) -> HpssArchive:
    """An :class:`HpssArchive` from the configuration.

    Pass ``options.sfapi`` as ``options`` and ``options.hpss`` as ``hpss_options``. When
    ``hpss_options`` is None, ``options`` is taken as both merged (``{**sfapi, **hpss}``): the
    HPSS keys are read from it and its ``qos`` goes to the transfer jobs (so ``options.hpss.qos``
    must be set); account, log folder, constraint and extra sbatch options stay those of the jobs.

    Raises:
        ConfigError: the options are invalid.
    """
    if hpss_options is None:
        hpss = {k: v for k, v in options.items() if k in HPSS_KEYS - _SLURM_KEYS or k == "qos"}
        sfapi = {k: v for k, v in options.items() if k not in HPSS_KEYS or k in _SLURM_KEYS}
    else:
        hpss, sfapi = dict(hpss_options), dict(options)
    jobs = SfapiJobs(
        sfapi_settings(sfapi),
        SfapiCredentials.from_client_id(client_id, private_key_file),
        facility="nersc-hpss",
        client_factory=client_factory,
        clock=clock,
    )
    return HpssArchive(jobs, hpss_settings(hpss))


__all__ = ["HPSS_KEYS", "SFAPI_KEYS", "build_hpss_archive", "build_sfapi_jobs", "hpss_settings", "sfapi_settings"]
