"""Settings of the Globus Compute adapter: which endpoint, which commands, how to poll and retry.

A job kind is a :class:`JobTemplate`: a shell command with ``{name}`` placeholders, each
replaced by the job parameter of that name as one ``shlex.quote``-d word (write the
placeholders bare, ``--input {input}``, never inside quotes of your own; ``{{`` and ``}}`` are
literal braces). ``options`` and ``flags`` name optional parameters appended to the end of the
command as ``--flag value`` or a bare ``--flag``. Nothing here is a deployment fact: the
endpoint id, the interpreter and the templates come from ``options.globus_compute``
(see :mod:`.factory`); the defaults are example values.
"""

from __future__ import annotations

import re
import string
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from splash_core.domain.errors import ConfigError

_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FLAG = re.compile(r"^-{1,2}[A-Za-z0-9][A-Za-z0-9_.-]*$")

BUILTIN_PLACEHOLDERS = frozenset({"job_name"})
"""Placeholders every template may use without a parameter: ``{job_name}`` (the spec's name)."""


def check_uuid(key: str, value: object) -> str:
    """``value`` as a canonical lowercase UUID string.

    Raises:
        ConfigError: it is not a UUID (the message names ``key``).
    """
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ConfigError(f"{key}: expected a UUID, got {value!r}") from None


def placeholders(key: str, command: str) -> tuple[str, ...]:
    """The ``{name}`` placeholders of ``command``, in order of first use.

    Raises:
        ConfigError: a brace is unbalanced, or a placeholder is not a plain name
            (``{a.b}``, ``{a[0]}``, ``{a!r}``, ``{a:>5}`` and ``{}`` are refused).
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(command))
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc} in {command!r}; write {{{{ and }}}} for literal braces") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not _PARAM_NAME.match(field) or spec or conversion:
            shown = field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ConfigError(
                f"{key}: placeholder {{{shown}}} must be a plain parameter name like {{input}}; "
                "write {{ and }} for literal braces"
            )
        if field not in names:
            names.append(field)
    return tuple(names)


def _str_map(value: Mapping[Any, Any]) -> Mapping[str, str]:
    return {str(k): str(v) for k, v in value.items()}


def check_template(key: str, command: str, options: Mapping[str, str], flags: Mapping[str, str]) -> tuple[str, ...]:
    """The required parameters of a template (its placeholders but ``{job_name}``).

    Raises:
        ConfigError: empty command, bad placeholder, bad option name or flag, or a parameter
            declared twice (the message names ``key``).
    """
    if not command.strip():
        raise ConfigError(f"{key}.command: required (the shell command the job runs)")
    required = tuple(p for p in placeholders(f"{key}.command", command) if p not in BUILTIN_PLACEHOLDERS)
    for group, mapping in (("options", options), ("flags", flags)):
        for name, flag in mapping.items():
            if not _PARAM_NAME.match(name):
                raise ConfigError(f"{key}.{group}: parameter name {name!r} must be a Python-style identifier")
            if not _FLAG.match(flag):
                raise ConfigError(f"{key}.{group}.{name}: {flag!r} is not a command-line flag like --levels")
    names = [*required, *options, *flags]
    if len(set(names)) != len(names):
        raise ConfigError(f"{key}: a parameter is used twice (placeholder, option or flag) in {sorted(names)}")
    return required


@attrs.frozen
class JobTemplate:
    """One job kind: the shell command run on the endpoint.

    Args:
        command: the command, with ``{name}`` placeholders for required parameters (see the
            module docstring); several lines are run as one bash script.
        options: optional parameter name -> flag, appended as ``flag value`` when given.
        flags: optional switch parameter name -> flag, appended when the value is true/yes/1.

    Raises:
        ConfigError: the template is invalid (see :func:`check_template`).
    """

    command: str
    options: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map)
    flags: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map)
    required: tuple[str, ...] = attrs.field(init=False)
    """The parameters the command's placeholders need."""

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "required", check_template("template", self.command, self.options, self.flags))

    @property
    def parameters(self) -> frozenset[str]:
        """Every parameter name this template uses."""
        return frozenset((*self.required, *self.options, *self.flags))


def _escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def example_templates(python: str = "python") -> dict[str, JobTemplate]:
    """The 8.3.2 job kinds as example templates, run with ``python`` on the endpoint.

    ``python`` is inserted as written (it may be several words, e.g.
    ``apptainer exec --bind /eagle /eagle/als/splash.sif python``).

    - ``reconstruct``: ``python -m splash_core.processing reconstruct {input} {output_dir}``,
      optional ``filter``, ``first``, ``last``, ``center``.
    - ``multires``: ``python -m splash_core.processing multires {tiff_dir} {output}``, optional
      ``levels``, ``pixel_size``, ``ngff``; switch ``overwrite``.
    """
    run = f"{_escape_braces(python)} -m splash_core.processing --verbose"
    return {
        "reconstruct": JobTemplate(
            command=f"{run} reconstruct {{input}} {{output_dir}}",
            options={"filter": "--filter", "first": "--first", "last": "--last", "center": "--center"},
        ),
        "multires": JobTemplate(
            command=f"{run} multires {{tiff_dir}} {{output}}",
            options={"levels": "--levels", "pixel_size": "--pixel-size", "ngff": "--ngff"},
            flags={"overwrite": "--overwrite"},
        ),
    }


def _check_positive(key: str) -> Any:
    def check(_inst: Any, _attr: attrs.Attribute[Any], value: float) -> None:
        if value <= 0:
            raise ConfigError(f"{key}: must be positive, got {value}")

    return check


def _endpoint_uuid(value: object) -> str:
    return check_uuid("options.globus_compute.endpoint_id", value)


def _optional_uuid(value: object) -> str | None:
    if value is None or value == "":
        return None
    return check_uuid("options.globus_compute.function_id", value)


def _templates(value: Mapping[str, JobTemplate]) -> Mapping[str, JobTemplate]:
    return dict(value)


@attrs.frozen
class GlobusComputeSettings:
    """Everything :class:`~splash_core.adapters.globus_compute.jobs.GlobusComputeJobs` needs besides credentials.

    Args:
        endpoint_id: the Globus Compute endpoint jobs run on (e.g. at ALCF).
        templates: job kind -> :class:`JobTemplate` (default: :func:`example_templates`).
        function_id: a function registered beforehand (a ``ShellFunction`` whose command is
            ``{command}``, see :meth:`GlobusComputeJobs.register_function`); None to register
            one on first submission.
        prologue: shell lines run before every job's command (``module load …``), as written
            (not a template: its braces and ``$`` are the shell's).
        user_endpoint_config: values for a multi-user endpoint's configuration template
            (account, queue, …), sent with every submission.
        resource_specification: per-task resources (MPI endpoints), sent with every submission.
        enforce_time_limit: run each command under ``timeout`` with the spec's time limit
            (Globus Compute cannot stop a task any other way); exit code 124 is TIMEOUT.
        kill_grace_s: seconds between ``timeout``'s TERM and KILL.
        poll_interval_s, poll_max_interval_s, poll_backoff: :meth:`wait` polls after
            ``poll_interval_s``, then backs off by ``poll_backoff`` up to ``poll_max_interval_s``.
        retry_attempts, retry_timeout_s, retry_wait_max_s: bounded retries (stamina) of calls
            that failed with HTTP 429/5xx or a network error.
        log_tail_lines: lines of stdout and of stderr kept in a job's status.
    """

    endpoint_id: str = attrs.field(converter=_endpoint_uuid)
    templates: Mapping[str, JobTemplate] = attrs.field(factory=example_templates, converter=_templates)
    function_id: str | None = attrs.field(default=None, converter=_optional_uuid)
    prologue: str = ""
    user_endpoint_config: Mapping[str, Any] = attrs.field(factory=dict)
    resource_specification: Mapping[str, Any] = attrs.field(factory=dict)
    enforce_time_limit: bool = True
    kill_grace_s: float = attrs.field(
        default=60.0, validator=_check_positive("options.globus_compute.kill_grace_seconds")
    )
    poll_interval_s: float = attrs.field(
        default=10.0, validator=_check_positive("options.globus_compute.poll_interval_seconds")
    )
    poll_max_interval_s: float = attrs.field(
        default=120.0, validator=_check_positive("options.globus_compute.poll_max_interval_seconds")
    )
    poll_backoff: float = attrs.field(default=1.5)
    retry_attempts: int = attrs.field(default=5, validator=_check_positive("options.globus_compute.retry_attempts"))
    retry_timeout_s: float = attrs.field(
        default=120.0, validator=_check_positive("options.globus_compute.retry_timeout_seconds")
    )
    retry_wait_max_s: float = attrs.field(
        default=30.0, validator=_check_positive("options.globus_compute.retry_wait_max_seconds")
    )
    log_tail_lines: int = attrs.field(default=40, validator=_check_positive("options.globus_compute.log_tail_lines"))

    def __attrs_post_init__(self) -> None:
        if self.poll_backoff < 1:
            raise ConfigError(f"options.globus_compute.poll_backoff: must be >= 1, got {self.poll_backoff}")


__all__ = [
    "BUILTIN_PLACEHOLDERS",
    "GlobusComputeSettings",
    "JobTemplate",
    "check_template",
    "check_uuid",
    "example_templates",
    "placeholders",
]
