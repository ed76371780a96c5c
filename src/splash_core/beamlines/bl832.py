"""Beamline 8.3.2: hard X-ray micro-tomography.

Raw scans are HDF5 files in Data Exchange layout (``/exchange/data``, ``data_white``,
``data_dark``, ``theta``) written on ``spot832``. New files go spot832 -> data832 (raw) and,
unless export-controlled, data832 -> NERSC CFS; they are catalogued, and spot832 is pruned a
day after the data832 copy is verified, data832 35 days after the NERSC copy is.

Reconstruction runs at NERSC (Slurm through SFAPI, reading CFS, writing Perlmutter scratch) or
at ALCF (Globus Compute, after staging the raw file there): ``reconstruct`` makes a TIFF stack,
``multires`` turns it into a multi-resolution OME-Zarr; both are copied back (CFS scratch,
data832 scratch) and pruned later.

Output layout: a raw scan ``<dir>/<stem>.h5`` becomes the TIFF folder ``<stem>/rec<stem>/`` and
the OME-Zarr ``<stem>/rec<stem>.zarr``, both relative to the output endpoint's root (8.3.2 scan
stems carry the acquisition time, so they do not collide).
"""

from __future__ import annotations

from collections.abc import Mapping

from splash_core.beamlines.base import BeamlineModule, JobContext, JobLayout, JobPlan, job_parameters
from splash_core.domain.paths import RelPath

RECONSTRUCT_ACCEPTS = frozenset({"filter", "center", "first", "last"})
"""Request parameters a reconstruction takes (as ``python -m splash_core.processing reconstruct``)."""
MULTIRES_ACCEPTS = frozenset({"levels", "pixel_size", "ngff"})
"""Request parameters a multi-resolution conversion takes."""


def tiff_dir(raw: RelPath) -> RelPath:
    """Where the TIFF slices of raw scan ``<dir>/<stem>.h5`` go: ``<stem>/rec<stem>``."""
    return RelPath.parse(f"{raw.stem}/rec{raw.stem}")


def zarr_store(raw: RelPath) -> RelPath:
    """Where the OME-Zarr of raw scan ``<dir>/<stem>.h5`` goes: ``<stem>/rec<stem>.zarr``."""
    return RelPath.parse(f"{raw.stem}/rec{raw.stem}.zarr")


def _reconstruct(ctx: JobContext) -> JobPlan:
    tiffs = tiff_dir(ctx.raw)
    parameters = job_parameters(
        ctx,
        RECONSTRUCT_ACCEPTS,
        input=ctx.input_endpoint.full_path(ctx.raw),
        output_dir=ctx.output_endpoint.full_path(tiffs),
    )
    return JobPlan(parameters, (tiffs,), (ctx.raw.value,))


def _multires(ctx: JobContext) -> JobPlan:
    tiffs, zarr = tiff_dir(ctx.raw), zarr_store(ctx.raw)
    parameters = job_parameters(
        ctx,
        MULTIRES_ACCEPTS,
        tiff_dir=ctx.output_endpoint.full_path(tiffs),
        output=ctx.output_endpoint.full_path(zarr),
    )
    return JobPlan(parameters, (zarr,), (tiffs.value,))


TOMOGRAPHY_JOBS: Mapping[str, JobLayout] = {
    "reconstruct": JobLayout(_reconstruct, RECONSTRUCT_ACCEPTS),
    "multires": JobLayout(_multires, MULTIRES_ACCEPTS),
}
"""Micro-CT jobs, their parameters named like ``python -m splash_core.processing`` arguments.

``reconstruct``: ``input`` (the raw HDF5), ``output_dir`` (``<stem>/rec<stem>``), ``stem``, and
from the request ``filter``, ``center``, ``first``, ``last``. ``multires``: ``tiff_dir``,
``output`` (``<stem>/rec<stem>.zarr``), ``stem``, and ``levels``, ``pixel_size``, ``ngff``.
Paths are absolute, as the facility sees them.
"""

MODULE = BeamlineModule(
    id="bl832",
    description="8.3.2 hard X-ray micro-tomography: raw HDF5 to data832 and NERSC, FBP reconstruction, OME-Zarr",
    jobs=TOMOGRAPHY_JOBS,
)

__all__ = ["MODULE", "MULTIRES_ACCEPTS", "RECONSTRUCT_ACCEPTS", "TOMOGRAPHY_JOBS", "tiff_dir", "zarr_store"]
