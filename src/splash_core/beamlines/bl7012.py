"""Beamline 7.0.1.2: COSMIC ptychography.

New files go data7012 -> NERSC CFS (``nersc7012``) and are catalogued; then a ptychographic
reconstruction runs at NERSC through SFAPI (the ptychocam or cdtools script, chosen by the
job's configured ``script`` parameter or the request's ``engine``), reading the raw file on CFS
and writing ``<stem>/ptycho<stem>/`` next to it on the same endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping

from splash_core.beamlines.base import BeamlineModule, JobContext, JobLayout, JobPlan, job_parameters
from splash_core.domain.paths import RelPath

PTYCHO_ACCEPTS = frozenset({"engine", "iterations"})
"""Request parameters a ptychography job takes."""


def ptycho_dir(raw: RelPath) -> RelPath:
    """Where the reconstruction of ``<dir>/<stem>.cxi`` goes: ``<stem>/ptycho<stem>``."""
    return RelPath.parse(f"{raw.stem}/ptycho{raw.stem}")


def _ptycho(ctx: JobContext) -> JobPlan:
    out = ptycho_dir(ctx.raw)
    parameters = job_parameters(
        ctx,
        PTYCHO_ACCEPTS,
        input=ctx.input_endpoint.full_path(ctx.raw),
        output_dir=ctx.output_endpoint.full_path(out),
    )
    return JobPlan(parameters, (out,), (ctx.raw.value,))


PTYCHO_JOBS: Mapping[str, JobLayout] = {"ptycho": JobLayout(_ptycho, PTYCHO_ACCEPTS)}
"""``ptycho``: ``input`` (the raw CXI/HDF5), ``output_dir`` (``<stem>/ptycho<stem>``), ``stem``, and
from the request ``engine`` and ``iterations``."""

MODULE = BeamlineModule(
    id="bl7012",
    description="7.0.1.2 COSMIC ptychography: raw data to NERSC, ptychographic reconstruction there",
    jobs=PTYCHO_JOBS,
)

__all__ = ["MODULE", "PTYCHO_ACCEPTS", "PTYCHO_JOBS", "ptycho_dir"]
