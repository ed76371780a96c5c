"""Settings of the SFAPI adapters: where the API is, how jobs are shaped, how HPSS is laid out.

Nothing here is a deployment fact: account, QOS, images, paths and tape root all come from
the configuration (``options.sfapi`` and ``options.hpss``, see :mod:`.factory`). Defaults are
example values from the reference deployment and are documented as such.

Every value that ends up in a ``#SBATCH`` line is checked here against a narrow character
set, so a configuration typo cannot inject a directive or a shell line.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from splash_core.domain.errors import ConfigError

SFAPI_BASE_URL = "https://api.nersc.gov/api/v1.2"
"""The SFAPI v1.2 base URL (same as ``sfapi_client._sync.client.SFAPI_BASE_URL``)."""
SFAPI_TOKEN_URL = "https://oidc.nersc.gov/c2id/token"  # noqa: S105 - a URL, not a secret
"""The NERSC OAuth2 token endpoint (same as ``sfapi_client._sync.client.SFAPI_TOKEN_URL``)."""

_DIRECTIVE_VALUE = re.compile(r"^[A-Za-z0-9_.,:+=/@%&|\[\]-]+$")
_DIRECTIVE = re.compile(r"^--[a-z][a-z0-9-]*(=[A-Za-z0-9_.,:+=/@%&|\[\]-]+)?$")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9_.,+=@%/-]*$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MACHINE = re.compile(r"^[a-z][a-z0-9_-]*$")

_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def directive_value(key: str, value: str) -> str:
    """``value`` when it is safe in a ``#SBATCH`` line.

    Raises:
        ConfigError: it is empty or has whitespace, quotes or other characters sbatch might split on.
    """
    if not _DIRECTIVE_VALUE.match(value):
        raise ConfigError(
            f"{key}: {value!r} is not a valid Slurm value (letters, digits and _ . , : + = / @ % & | - only)"
        )
    return value


def safe_abs_path(key: str, value: str) -> str:
    """``value`` when it is an absolute, normalised path of plain characters (no spaces or quotes).

    Raises:
        ConfigError: it is relative, not normalised, contains ``..`` or unusual characters.
    """
    if not _SAFE_PATH.match(value) or posixpath.normpath(value) != value or "/../" in f"{value}/":
        raise ConfigError(
            f"{key}: {value!r} must be an absolute, normalised path of letters, digits and _ . , + = @ % / -"
        )
    return value


def _check_directive_value(key: str) -> _Validator:
    def check(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
        if value is None or value == "":
            return
        directive_value(key, str(value))

    return check


def _check_path(key: str) -> _Validator:
    def check(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            safe_abs_path(key, str(value))

    return check


def _check_directives(key: str) -> _Validator:
    def check(_inst: Any, _attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
        for item in value:
            if not _DIRECTIVE.match(item):
                raise ConfigError(f"{key}: {item!r} is not a valid sbatch option (like --mem=20GB)")

    return check


def _check_positive(key: str) -> _Validator:
    def check(_inst: Any, _attr: attrs.Attribute[Any], value: float | None) -> None:
        if value is not None and value <= 0:
            raise ConfigError(f"{key}: must be positive, got {value}")

    return check


def _tuple(value: str | Iterable[object]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _mapping(value: Mapping[object, object]) -> Mapping[str, str]:
    return {str(k): str(v) for k, v in value.items()}


@attrs.frozen
class SlurmSettings:
    """How every batch job is shaped unless its kind says otherwise.

    Args:
        account: the NERSC project to charge (example: ``als``).
        log_dir: absolute folder where Slurm writes each job's log, ``<job name>-<job id>.out``
            (example: ``/global/cfs/cdirs/als/data_mover/logs/splash``).
        qos: the QOS (example: ``regular``; ``realtime``/``debug`` where granted).
        constraint: the node type (example: ``cpu``; ``gpu`` for GPU jobs); empty for none.
        nodes: nodes per job.
        max_time_limit_s: the longest time limit the QOS allows; longer specs are refused.
        extra_directives: further sbatch options, e.g. ``("--mem=20GB",)``.
    """

    account: str = attrs.field(validator=_check_directive_value("sfapi.account"))
    log_dir: str = attrs.field(validator=_check_path("sfapi.log_dir"))
    qos: str = attrs.field(default="regular", validator=_check_directive_value("sfapi.qos"))
    constraint: str = attrs.field(default="cpu", validator=_check_directive_value("sfapi.constraint"))
    nodes: int = attrs.field(default=1, validator=_check_positive("sfapi.nodes"))
    max_time_limit_s: float | None = attrs.field(
        default=None,
        validator=_check_positive("sfapi.max_time_limit_minutes"),
    )
    extra_directives: tuple[str, ...] = attrs.field(
        default=(),
        converter=_tuple,
        validator=_check_directives("sfapi.extra_sbatch"),
    )

    def __attrs_post_init__(self) -> None:
        if not self.account:
            raise ConfigError("sfapi.account: required (the NERSC project that jobs are charged to)")


@attrs.frozen
class JobKindSettings:
    """One job template: a container image and the command run in it.

    The command line is ``command``, then ``--flag value`` for each optional parameter given
    (``options``) and ``--flag`` for each switch set to true (``flags``), then the values of the
    ``inputs`` and ``outputs`` parameters in that order. Inputs and outputs are absolute paths
    at NERSC; their folders are bind-mounted into the container at the same place (inputs
    read-only), outputs' parent folders are created first, and every output must exist when the
    container exits 0, or the job fails.

    Args:
        image: the container image run with ``podman-hpc``.
        command: the program and its fixed arguments inside the container.
        inputs: names of required path parameters the job reads.
        outputs: names of required path parameters the job writes.
        options: optional parameter name -> command-line flag.
        flags: optional switch parameter name -> flag given when the value is true/yes/1.
        allowed_roots: when given, every input and output must lie under one of these folders.
        account, qos, constraint, nodes: override :class:`SlurmSettings` for this kind.
        gpus_per_node: GPUs to request (``--gpus-per-node``); 0 for none.
        max_time_limit_s: override the longest time limit.
        podman_args: extra ``podman-hpc run`` options, e.g. ``("--gpu",)``.
        extra_directives: further sbatch options for this kind.
    """

    image: str = attrs.field()
    command: tuple[str, ...] = attrs.field(converter=_tuple)
    inputs: tuple[str, ...] = attrs.field(default=("input",), converter=_tuple)
    outputs: tuple[str, ...] = attrs.field(default=("output",), converter=_tuple)
    options: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    flags: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    allowed_roots: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    account: str | None = attrs.field(default=None, validator=_check_directive_value("kinds.account"))
    qos: str | None = attrs.field(default=None, validator=_check_directive_value("kinds.qos"))
    constraint: str | None = attrs.field(default=None, validator=_check_directive_value("kinds.constraint"))
    nodes: int | None = attrs.field(default=None, validator=_check_positive("kinds.nodes"))
    gpus_per_node: int = 0
    max_time_limit_s: float | None = attrs.field(default=None, validator=_check_positive("kinds.max_time_limit"))
    podman_args: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    extra_directives: tuple[str, ...] = attrs.field(
        default=(),
        converter=_tuple,
        validator=_check_directives("kinds.extra_sbatch"),
    )

    def __attrs_post_init__(self) -> None:
        if not _IMAGE.match(self.image):
            raise ConfigError(f"kinds.image: {self.image!r} is not a container image reference")
        if not self.command:
            raise ConfigError("kinds.command: required (the program to run in the container)")
        names = [*self.inputs, *self.outputs, *self.options, *self.flags]
        for name in names:
            if not _PARAM_NAME.match(name):
                raise ConfigError(f"kinds: parameter name {name!r} must be a Python-style identifier")
        if len(set(names)) != len(names):
            raise ConfigError(f"kinds: a parameter is declared twice in {sorted(names)}")
        for root in self.allowed_roots:
            safe_abs_path("kinds.allowed_roots", root)
        if self.gpus_per_node < 0:
            raise ConfigError(f"kinds.gpus_per_node: must be >= 0, got {self.gpus_per_node}")

    @property
    def parameters(self) -> frozenset[str]:
        """Every parameter name this kind takes."""
        return frozenset((*self.inputs, *self.outputs, *self.options, *self.flags))


def example_kinds(
    *,
    reconstruct_image: str = "registry.nersc.gov/als/splash-core:latest",
    multires_image: str = "registry.nersc.gov/als/splash-core:latest",
    ptycho_image: str = "registry.nersc.gov/als/ptychocam:latest",
) -> dict[str, JobKindSettings]:
    """The three job kinds of the reference deployment, as example values (images configurable).

    - ``reconstruct`` (8.3.2): ``python -m splash_core.processing reconstruct <input> <output_dir>``
      reading a raw HDF5 scan on CFS and writing TIFF slices to pscratch; optional ``filter``,
      ``first``, ``last``, ``center``.
    - ``multires``: ``python -m splash_core.processing multires <tiff_dir> <output>`` (TIFF stack ->
      OME-Zarr); optional ``levels``, ``pixel_size``, ``ngff``; switch ``overwrite``.
    - ``ptycho`` (7.0.1.2): ``ptychocam -i <n_iter> [...] <input> <output_dir>`` on a GPU node;
      optional ``n_iter``, ``period_illu_refine``, ``period_bg_refine``; switch ``use_illu_mask``.
    """
    processing = ("python", "-m", "splash_core.processing", "--verbose")
    return {
        "reconstruct": JobKindSettings(
            image=reconstruct_image,
            command=(*processing, "reconstruct"),
            inputs=("input",),
            outputs=("output_dir",),
            options={"filter": "--filter", "first": "--first", "last": "--last", "center": "--center"},
            allowed_roots=("/global/cfs/cdirs/als", "/pscratch/sd/a/alsdev"),
        ),
        "multires": JobKindSettings(
            image=multires_image,
            command=(*processing, "multires"),
            inputs=("tiff_dir",),
            outputs=("output",),
            options={"levels": "--levels", "pixel_size": "--pixel-size", "ngff": "--ngff"},
            flags={"overwrite": "--overwrite"},
            allowed_roots=("/global/cfs/cdirs/als", "/pscratch/sd/a/alsdev"),
        ),
        "ptycho": JobKindSettings(
            image=ptycho_image,
            command=("ptychocam",),
            inputs=("input",),
            outputs=("output_dir",),
            options={"n_iter": "-i", "period_illu_refine": "-r", "period_bg_refine": "-T"},
            flags={"use_illu_mask": "-M"},
            allowed_roots=("/global/cfs/cdirs/als",),
            constraint="gpu",
            gpus_per_node=1,
            podman_args=("--gpu",),
        ),
    }


def _check_url(key: str) -> _Validator:
    def check(_inst: Any, _attr: attrs.Attribute[Any], value: str) -> None:
        if not value.startswith(("https://", "http://")):
            raise ConfigError(f"{key}: {value!r} must be an http(s) URL")

    return check


def _check_machine(_inst: Any, _attr: attrs.Attribute[Any], value: str) -> None:
    if not _MACHINE.match(value):
        raise ConfigError(f"sfapi.machine: {value!r} is not an SFAPI machine name (like perlmutter or dtns)")


@attrs.frozen
class SfapiSettings:
    """Everything :class:`~splash_core.adapters.sfapi.jobs.SfapiJobs` needs besides credentials.

    Args:
        slurm: the shape of every job.
        kinds: job kind -> template (see :func:`example_kinds`).
        machine: the SFAPI machine jobs run on (``perlmutter``; ``dtns`` for data-transfer nodes).
        api_base_url, token_url: the SFAPI and its token endpoint.
        poll_interval_s, poll_max_interval_s, poll_backoff: :meth:`wait` polls first after
            ``poll_interval_s``, then backs off by ``poll_backoff`` up to ``poll_max_interval_s``.
        task_poll_interval_s: how often an API task (a submission, a command) is polled.
        not_found_grace_s: how long after submission (or after the first miss) "job not found"
            means "not visible yet" (state UNKNOWN) rather than :class:`JobNotFound`.
        submit_timeout_s: how long a submission task may take before it is given up as ambiguous.
        command_timeout_s: how long a command (``tail`` of a log) may take.
        http_timeout_s: per-request timeout.
        retry_attempts, retry_timeout_s, retry_wait_max_s: bounded retries (stamina) of requests
            that are safe to repeat, on HTTP 429/5xx and connection errors.
        log_tail_lines: lines of a failed job's log put into its status.
        site_timezone: the time zone Slurm prints times in (NERSC: America/Los_Angeles).
    """

    slurm: SlurmSettings
    kinds: Mapping[str, JobKindSettings] = attrs.field(factory=dict)
    machine: str = attrs.field(default="perlmutter", validator=_check_machine)
    api_base_url: str = attrs.field(default=SFAPI_BASE_URL, validator=_check_url("sfapi.api_base_url"))
    token_url: str = attrs.field(default=SFAPI_TOKEN_URL, validator=_check_url("sfapi.token_url"))
    poll_interval_s: float = attrs.field(default=10.0, validator=_check_positive("sfapi.poll_interval_seconds"))
    poll_max_interval_s: float = attrs.field(
        default=120.0,
        validator=_check_positive("sfapi.poll_max_interval_seconds"),
    )
    poll_backoff: float = 1.5
    task_poll_interval_s: float = attrs.field(
        default=1.0,
        validator=_check_positive("sfapi.task_poll_interval_seconds"),
    )
    not_found_grace_s: float = 300.0
    submit_timeout_s: float = attrs.field(default=300.0, validator=_check_positive("sfapi.submit_timeout_seconds"))
    command_timeout_s: float = attrs.field(
        default=120.0,
        validator=_check_positive("sfapi.command_timeout_seconds"),
    )
    http_timeout_s: float = attrs.field(default=30.0, validator=_check_positive("sfapi.http_timeout_seconds"))
    retry_attempts: int = attrs.field(default=5, validator=_check_positive("sfapi.retry_attempts"))
    retry_timeout_s: float = attrs.field(default=120.0, validator=_check_positive("sfapi.retry_timeout_seconds"))
    retry_wait_max_s: float = attrs.field(default=30.0, validator=_check_positive("sfapi.retry_wait_max_seconds"))
    log_tail_lines: int = attrs.field(default=40, validator=_check_positive("sfapi.log_tail_lines"))
    site_timezone: str = "America/Los_Angeles"

    def __attrs_post_init__(self) -> None:
        if self.poll_backoff < 1:
            raise ConfigError(f"sfapi.poll_backoff: must be >= 1, got {self.poll_backoff}")
        if self.not_found_grace_s < 0:
            raise ConfigError(f"sfapi.not_found_grace_seconds: must be >= 0, got {self.not_found_grace_s}")
        for kind in self.kinds:
            if not _PARAM_NAME.match(kind):
                raise ConfigError(f"sfapi.kinds: kind name {kind!r} must be a Python-style identifier")


def _check_layout(key: str) -> _Validator:
    def check(_inst: Any, _attr: attrs.Attribute[Any], value: str) -> None:
        try:
            value.format(endpoint="e", facility="f", proposal="p", year=2024, cycle=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"{key}: {value!r} may use only {{endpoint}}, {{facility}}, {{proposal}}, {{year}}, {{cycle}}"
            ) from exc
        if value.startswith("/") or ".." in value.split("/"):
            raise ConfigError(f"{key}: {value!r} must be relative to hpss.tape_root and free of '..'")

    return check


@attrs.frozen
class HpssSettings:
    """How bundles are laid out on HPSS and how the transfer jobs are shaped.

    An ``htar`` bundle goes to ``<tape_root>/<layout>/<bundle name>``; an ``hsi cput`` file (whose
    bundle is named after its relative path) to ``<tape_root>/<cput_layout>/<relative path>``, so
    it mirrors the folder tree. Both layouts are filled with the source endpoint's ``endpoint``
    name and ``facility`` and the bundle's ``proposal``, ``year`` and ``cycle``.

    Args:
        tape_root: the HPSS folder every bundle goes below (example: ``/home/a/alsdev/data_mover``).
        layout: the folder of an htar bundle below the root (example: ``{endpoint}/{proposal}``).
        cput_layout: the folder an hsi cput file's relative path goes below (example: ``{endpoint}``).
        qos: the transfer QOS (``xfer`` on Perlmutter).
        constraint: node constraint for transfer jobs (empty: none).
        account, log_dir: default to the SFAPI jobs' own (:class:`SlurmSettings`).
        time_limit_s: the Slurm time limit of one transfer job (xfer allows up to 48 h).
        job_timeout_s: how long to wait for one transfer job, queue time included, before
            cancelling it.
        checksum: store an MD5 on HPSS with ``hsi cput -c on`` and compare it at verification
            when the member's checksum is MD5.
        extra_directives: further sbatch options, e.g. ``("--mem=20GB",)``.
    """

    tape_root: str = attrs.field(validator=_check_path("hpss.tape_root"))
    layout: str = attrs.field(default="{endpoint}/{proposal}", validator=_check_layout("hpss.layout"))
    cput_layout: str = attrs.field(default="{endpoint}", validator=_check_layout("hpss.cput_layout"))
    qos: str = attrs.field(default="xfer", validator=_check_directive_value("hpss.qos"))
    constraint: str = attrs.field(default="", validator=_check_directive_value("hpss.constraint"))
    account: str | None = attrs.field(default=None, validator=_check_directive_value("hpss.account"))
    log_dir: str | None = attrs.field(default=None, validator=_check_path("hpss.log_dir"))
    time_limit_s: float = attrs.field(default=12 * 3600.0, validator=_check_positive("hpss.time_limit_minutes"))
    job_timeout_s: float = attrs.field(
        default=48 * 3600.0,
        validator=_check_positive("hpss.job_timeout_minutes"),
    )
    checksum: bool = True
    extra_directives: tuple[str, ...] = attrs.field(
        default=(),
        converter=_tuple,
        validator=_check_directives("hpss.extra_sbatch"),
    )


__all__ = [
    "SFAPI_BASE_URL",
    "SFAPI_TOKEN_URL",
    "HpssSettings",
    "JobKindSettings",
    "SfapiSettings",
    "SlurmSettings",
    "directive_value",
    "example_kinds",
    "safe_abs_path",
]
