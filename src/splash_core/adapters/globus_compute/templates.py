"""Shell commands rendered from a job kind's template, every parameter one ``shlex.quote``-d word.

The command a task runs is: the prologue, then the template's command with its placeholders
filled and its options and flags appended; with ``enforce_time_limit`` all of that runs as
``timeout --kill-after=<grace>s <limit>s bash -c '<script>'``, so a job that overruns its
time limit is stopped on the endpoint (exit code 124) - Globus Compute has no other way to
stop a task once an endpoint has it.

Parameter values never become shell syntax: each is quoted as one word, and values with
control characters are refused. Parameters a template does not use (like the ``stem`` every
8.3.2 job carries) are ignored.
"""

from __future__ import annotations

import logging
import math
import shlex
import string
import unicodedata

from splash_core.adapters.globus_compute.settings import GlobusComputeSettings, JobTemplate
from splash_core.domain.errors import JobError
from splash_core.domain.models import JobSpec

logger = logging.getLogger(__name__)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _refuse(spec: JobSpec, problem: str) -> JobError:
    return JobError(f"job {spec.name} (kind {spec.kind}) was not submitted: {problem}")


def _value(spec: JobSpec, name: str, value: str) -> str:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise _refuse(spec, f"parameter {name!r} contains a control character")
    return value


def _switch(spec: JobSpec, name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _refuse(spec, f"switch parameter {name!r} must be true or false, got {value!r}")


def render_command(spec: JobSpec, template: JobTemplate) -> str:
    """The template's command for ``spec``: placeholders filled, options and flags appended.

    Raises:
        JobError: a placeholder's parameter is missing or blank, a value has a control
            character, or a switch is neither true nor false.
    """
    params = {str(k): str(v) for k, v in spec.parameters.items()}
    missing = [n for n in template.required if not params.get(n, "").strip()]
    if missing:
        raise _refuse(spec, f"missing required parameter(s) {', '.join(missing)}")
    values = {"job_name": spec.name, **params}
    parts: list[str] = []
    for literal, field, _spec, _conversion in string.Formatter().parse(template.command):
        parts.append(literal)
        if field is not None:
            parts.append(shlex.quote(_value(spec, field, values[field])))
    argv: list[str] = []
    for name, flag in template.options.items():
        if params.get(name, "").strip():
            argv += [flag, shlex.quote(_value(spec, name, params[name]))]
    for name, flag in template.flags.items():
        if name in params and _switch(spec, name, params[name]):
            argv.append(flag)
    unused = sorted(set(params) - template.parameters)
    if unused:
        logger.debug("job %s (%s): parameter(s) %s not used by its template", spec.name, spec.kind, unused)
    command = "".join(parts).rstrip()
    return f"{command} {' '.join(argv)}" if argv else command


def render_task(spec: JobSpec, template: JobTemplate, settings: GlobusComputeSettings) -> str:
    """The whole shell script a task runs for ``spec`` (prologue, command, time limit).

    Raises:
        JobError: the command cannot be rendered (see :func:`render_command`) or the time
            limit is not positive.
    """
    body = render_command(spec, template)
    if settings.prologue.strip():
        body = f"{settings.prologue.rstrip()}\n{body}"
    if not settings.enforce_time_limit:
        return body
    if not spec.time_limit_s > 0:
        raise _refuse(spec, f"time limit must be positive, got {spec.time_limit_s} s")
    limit = math.ceil(spec.time_limit_s)
    grace = math.ceil(settings.kill_grace_s)
    return f"timeout --kill-after={grace}s {limit}s bash -c {shlex.quote(body)}"


__all__ = ["render_command", "render_task"]
