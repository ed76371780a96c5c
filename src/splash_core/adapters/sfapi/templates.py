"""Slurm batch scripts rendered from templates, one per job kind, every value shell-quoted.

A script has a ``#SBATCH`` header (values checked against a narrow character set in
:mod:`.settings`), ``set -euo pipefail``, and a body that runs the kind's container through
``podman-hpc`` and exits with the container's status; when the container exits 0, every
declared output must exist or the script exits 3. Values from a :class:`JobSpec` never reach
the header, and in the body each one is a single ``shlex.quote``-d word.

Templates use ``@@{name}`` placeholders (:class:`ScriptTemplate`) so that the shell's own
``$``, ``${...}`` and ``"${array[@]}"`` need no escaping.
"""

from __future__ import annotations

import hashlib
import math
import posixpath
import re
import shlex
import string
import unicodedata
from collections.abc import Iterable, Mapping

import attrs

from splash_core.adapters.sfapi.settings import JobKindSettings, SlurmSettings, directive_value
from splash_core.domain.errors import JobError
from splash_core.domain.models import JobSpec

MAX_JOB_NAME = 100
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_KIND_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class ScriptTemplate(string.Template):
    """``string.Template`` with ``@@{name}`` placeholders (bash keeps ``$`` to itself)."""

    delimiter = "@@"


def q(value: str) -> str:
    """``value`` as one shell word."""
    return shlex.quote(value)


def slurm_time(seconds: float) -> str:
    """A Slurm time limit (``[D-]HH:MM:SS``), rounded up to whole minutes, at least one minute."""
    minutes = max(1, math.ceil(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    clock = f"{hours:02d}:{mins:02d}:00"
    return f"{days}-{clock}" if days else clock


def job_name(name: str, idempotency_key: str = "", *, prefix: str = "") -> str:
    """A Slurm job name made of ``[A-Za-z0-9_.-]`` from ``name`` (plus a short hash of the key)."""
    base = _NAME_UNSAFE.sub("_", f"{prefix}{name}").strip("._-") or "splash"
    suffix = f"-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:8]}" if idempotency_key else ""
    return base[: MAX_JOB_NAME - len(suffix)] + suffix


def log_file(log_dir: str, name: str, job_id: str) -> str:
    """Where Slurm writes the log of job ``job_id`` named ``name`` (``--output`` of the header)."""
    return f"{log_dir.rstrip('/')}/{name}-{job_id}.out"


@attrs.frozen
class BatchHeader:
    """The ``#SBATCH`` lines of a script."""

    job_name: str
    account: str
    qos: str
    constraint: str
    nodes: int
    time_limit_s: float
    log_dir: str
    gpus_per_node: int = 0
    extra: tuple[str, ...] = ()

    def render(self) -> str:
        """The shebang and directives; stderr goes to the same log as stdout."""
        lines = [
            "#!/bin/bash",
            f"#SBATCH --job-name={directive_value('job name', self.job_name)}",
            f"#SBATCH --account={directive_value('account', self.account)}",
            f"#SBATCH --qos={directive_value('qos', self.qos)}",
        ]
        if self.constraint:
            lines.append(f"#SBATCH --constraint={directive_value('constraint', self.constraint)}")
        lines += [
            f"#SBATCH --nodes={int(self.nodes)}",
            f"#SBATCH --time={slurm_time(self.time_limit_s)}",
            f"#SBATCH --output={directive_value('log_dir', self.log_dir.rstrip('/'))}/{self.job_name}-%j.out",
        ]
        if self.gpus_per_node:
            lines.append(f"#SBATCH --gpus-per-node={int(self.gpus_per_node)}")
        lines += [f"#SBATCH {directive}" for directive in self.extra]
        return "\n".join(lines)


@attrs.frozen
class RenderedJob:
    """A batch script ready to submit, and where its log will be."""

    job_name: str
    script: str
    log_dir: str


_KIND_SCRIPT = ScriptTemplate(
    """@@{header}
# Rendered by splash_core (SFAPI adapter), job kind @@{kind}. Every value below is shell-quoted.
set -euo pipefail

echo "[splash] job ${SLURM_JOB_ID:-unknown} started on $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
@@{prepare}
status=0
srun podman-hpc run --rm \\
@@{podman}    @@{image} \\
    @@{argv} || status=$?
echo "[splash] container exited with status ${status}"
if [ "${status}" -ne 0 ]; then
    exit "${status}"
fi
@@{checks}
echo "[splash] job ${SLURM_JOB_ID:-unknown} finished at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
"""
)


def _refuse(spec: JobSpec, problem: str) -> JobError:
    return JobError(f"job {spec.name} (kind {spec.kind}) was not submitted: {problem}")


def _job_path(spec: JobSpec, name: str, value: str, allowed_roots: Iterable[str]) -> str:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise _refuse(spec, f"parameter {name!r} contains a control character")
    if not value.startswith("/") or posixpath.normpath(value) != value or value == "/":
        raise _refuse(spec, f"parameter {name!r} = {value!r} must be an absolute, normalised path below /")
    if ":" in value:
        raise _refuse(spec, f"parameter {name!r} = {value!r} contains ':', which a container mount cannot take")
    roots = tuple(allowed_roots)
    if roots and not any(value == root or value.startswith(root.rstrip("/") + "/") for root in roots):
        raise _refuse(spec, f"parameter {name!r} = {value!r} is outside the allowed folders {', '.join(roots)}")
    return value


def _switch(spec: JobSpec, name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _refuse(spec, f"switch parameter {name!r} must be true or false, got {value!r}")


def _mounts(inputs: Iterable[str], outputs: Iterable[str]) -> list[str]:
    writable = sorted({posixpath.dirname(p) for p in outputs})
    readable = sorted({posixpath.dirname(p) for p in inputs} - set(writable))
    return [f"--volume={d}:{d}" for d in writable] + [f"--volume={d}:{d}:ro" for d in readable]


def render_job(spec: JobSpec, kind: JobKindSettings, slurm: SlurmSettings) -> RenderedJob:
    """The batch script that runs ``spec`` as ``kind`` describes.

    Raises:
        JobError: a required parameter is missing, an unknown one is given, a path is not an
            absolute normalised path in the allowed folders, or the time limit is too long.
    """
    if not _KIND_NAME.match(spec.kind):
        raise _refuse(spec, "the kind must be a plain identifier")
    params: Mapping[str, str] = spec.parameters
    unknown = sorted(set(params) - kind.parameters)
    if unknown:
        raise _refuse(
            spec, f"unknown parameter(s) {', '.join(unknown)}; this kind takes {', '.join(sorted(kind.parameters))}"
        )
    missing = [n for n in (*kind.inputs, *kind.outputs) if not str(params.get(n, "")).strip()]
    if missing:
        raise _refuse(spec, f"missing required path parameter(s) {', '.join(missing)}")
    inputs = [_job_path(spec, n, str(params[n]), kind.allowed_roots) for n in kind.inputs]
    outputs = [_job_path(spec, n, str(params[n]), kind.allowed_roots) for n in kind.outputs]

    limit = kind.max_time_limit_s or slurm.max_time_limit_s
    if spec.time_limit_s <= 0:
        raise _refuse(spec, f"time limit must be positive, got {spec.time_limit_s} s")
    if limit is not None and spec.time_limit_s > limit:
        raise _refuse(
            spec, f"time limit {spec.time_limit_s:.0f} s is longer than the {limit:.0f} s the QOS allows; lower it"
        )

    argv = list(kind.command)
    for name, flag in kind.options.items():
        if name in params and str(params[name]).strip():
            argv += [flag, str(params[name])]
    for name, flag in kind.flags.items():
        if name in params and _switch(spec, name, str(params[name])):
            argv.append(flag)
    argv += inputs + outputs

    name = job_name(spec.name, spec.idempotency_key)
    header = BatchHeader(
        job_name=name,
        account=kind.account or slurm.account,
        qos=kind.qos or slurm.qos,
        constraint=slurm.constraint if kind.constraint is None else kind.constraint,
        nodes=kind.nodes or slurm.nodes,
        time_limit_s=spec.time_limit_s,
        log_dir=slurm.log_dir,
        gpus_per_node=kind.gpus_per_node,
        extra=(*slurm.extra_directives, *kind.extra_directives),
    )
    parents = sorted({posixpath.dirname(p) for p in outputs})
    prepare = "\n".join(f"mkdir -p -- {q(p)}" for p in parents)
    checks = "\n".join(
        f'if [ ! -e {q(p)} ]; then\n    echo "[splash] expected output is missing: "{q(p)} >&2\n    exit 3\nfi'
        for p in outputs
    )
    script = _KIND_SCRIPT.substitute(
        header=header.render(),
        kind=spec.kind,
        prepare=prepare,
        podman="".join(f"    {q(a)} \\\n" for a in (*_mounts(inputs, outputs), *kind.podman_args)),
        image=q(kind.image),
        argv=" ".join(q(a) for a in argv),
        checks=checks,
    )
    return RenderedJob(job_name=name, script=script, log_dir=slurm.log_dir)


__all__ = [
    "BatchHeader",
    "RenderedJob",
    "ScriptTemplate",
    "job_name",
    "log_file",
    "q",
    "render_job",
    "slurm_time",
]
