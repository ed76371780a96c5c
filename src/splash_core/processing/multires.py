"""A TIFF slice stack turned into a multi-resolution OME-Zarr image for viewers.

Level 0 is the stack itself (axes ``z, y, x``); each further level halves every
axis that is still longer than one voxel by averaging 2x2x2 blocks (an odd
length is padded by repeating its last voxel), which is what a 3D viewer wants
when it zooms out of a reconstructed volume. Metadata follow OME-NGFF: axes
typed ``space`` with a unit, and per level a ``scale`` (voxel size) plus a
``translation`` of half the discarded block, so voxel centres of all levels
line up in physical space.

Two encodings are available: NGFF 0.4 on Zarr v2 (the default, readable by
every OME-Zarr tool released since 2022, including ome-zarr-py >= 0.10 which the
project pins) and NGFF 0.5 on Zarr v3 (readable by ome-zarr-py >= 0.11).

The stack is streamed in slabs of ``chunks[0] * 2**(levels - 1)`` slices, so
every level's slab fills whole chunks and memory stays bounded by one slab.
The store is written under a temporary name next to the target and renamed
into place when complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import tifffile
import zarr

from splash_core.processing.errors import InputNotFoundError, InvalidStackError, OutputExistsError

logger = logging.getLogger(__name__)

NgffVersion = Literal["0.4", "0.5"]
_TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
_AXES = ("z", "y", "x")

Shape3 = tuple[int, int, int]


@dataclass(frozen=True)
class MultiresResult:
    """What :func:`tiff_stack_to_ome_zarr` wrote.

    Attributes:
        path: the OME-Zarr group (a directory).
        shapes: ``(z, y, x)`` shape of each level, full resolution first.
        scales: voxel size of each level in ``unit``, ``(z, y, x)``.
        dtype: the data type of every level (that of the TIFFs).
        n_files: TIFF slices read.
        ngff_version: ``"0.4"`` (Zarr v2) or ``"0.5"`` (Zarr v3).
        seconds: wall time.
    """

    path: Path
    shapes: tuple[Shape3, ...]
    scales: tuple[tuple[float, float, float], ...]
    dtype: str
    n_files: int
    ngff_version: str
    seconds: float

    @property
    def levels(self) -> int:
        """Number of resolution levels."""
        return len(self.shapes)


def tiff_stack_to_ome_zarr(
    tiff_dir: str | os.PathLike[str],
    zarr_path: str | os.PathLike[str],
    *,
    levels: int = 3,
    chunks: Sequence[int] = (16, 256, 256),
    pixel_size: float = 1.0,
    unit: str = "micrometer",
    ngff_version: NgffVersion = "0.4",
    overwrite: bool = False,
) -> MultiresResult:
    """Write the TIFF slices of ``tiff_dir`` (name order) as a multiscale OME-Zarr image.

    Args:
        tiff_dir: directory of single-image ``.tif``/``.tiff`` files, one per z slice;
            names starting with ``.`` (temporary files) are ignored.
        zarr_path: the OME-Zarr directory to create.
        levels: resolution levels wanted; fewer are written only when the volume
            is already one voxel in every axis.
        chunks: ``(z, y, x)`` chunk shape, clipped to each level's shape.
        pixel_size: isotropic voxel size of level 0 in ``unit``.
        unit: an NGFF/UDUNITS space unit such as ``micrometer``.
        ngff_version: ``"0.4"`` for Zarr v2 or ``"0.5"`` for Zarr v3.
        overwrite: replace an existing ``zarr_path`` instead of refusing.

    Returns:
        A :class:`MultiresResult` describing the pyramid.

    Raises:
        InputNotFoundError: ``tiff_dir`` or the parent of ``zarr_path`` does not exist.
        InvalidStackError: no TIFFs, or slices that are not 2D or differ in shape or dtype.
        OutputExistsError: ``zarr_path`` exists and ``overwrite`` is false.
        ValueError: ``levels``, ``chunks``, ``pixel_size`` or ``ngff_version`` is invalid.
    """
    start = time.perf_counter()
    source, target = Path(tiff_dir), Path(zarr_path)
    chunk_shape = _check_options(levels, chunks, pixel_size, ngff_version)
    files = _list_tiffs(source)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} already exists; allow overwriting or choose another path")
    if not target.parent.is_dir():
        raise InputNotFoundError(f"output directory {target.parent} does not exist")

    first = _read_slice(files[0])
    shapes, factors = _pyramid(len(files), first.shape, levels)
    if len(shapes) < levels:
        logger.info("%s: volume %s allows only %d levels, not %d", source, shapes[0], len(shapes), levels)
    scales, translations = _transforms(factors, pixel_size)

    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        group = zarr.open_group(store=str(tmp), mode="w", zarr_format=2 if ngff_version == "0.4" else 3)
        arrays = [
            _create_level(group, str(k), shape, chunk_shape, first.dtype, ngff_version)
            for k, shape in enumerate(shapes)
        ]
        slab = chunk_shape[0] * 2 ** (len(shapes) - 1)
        for z0 in range(0, len(files), slab):
            block = np.stack([_read_slice(p, first) for p in files[z0 : z0 + slab]])
            offset = z0
            arrays[0][offset : offset + block.shape[0]] = block
            for k in range(1, len(shapes)):
                block = _downsample(block, factors[k])
                offset //= factors[k][0]
                arrays[k][offset : offset + block.shape[0]] = block
        group.attrs.update(_ngff_attrs(target.stem, scales, translations, unit, ngff_version))
        _replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    logger.info("wrote %s with %d levels from %d slices in %.2f s", target, len(shapes), len(files), seconds)
    return MultiresResult(
        path=target,
        shapes=tuple(shapes),
        scales=tuple(scales),
        dtype=str(first.dtype),
        n_files=len(files),
        ngff_version=ngff_version,
        seconds=seconds,
    )


def _check_options(levels: int, chunks: Sequence[int], pixel_size: float, ngff_version: str) -> Shape3:
    if levels < 1:
        raise ValueError(f"levels must be at least 1, got {levels}")
    if len(chunks) != 3 or any(int(c) < 1 for c in chunks):
        raise ValueError(f"chunks must be three positive integers (z, y, x), got {tuple(chunks)}")
    if not pixel_size > 0:
        raise ValueError(f"pixel_size must be positive, got {pixel_size}")
    if ngff_version not in ("0.4", "0.5"):
        raise ValueError(f"ngff_version must be '0.4' or '0.5', got {ngff_version!r}")
    return int(chunks[0]), int(chunks[1]), int(chunks[2])


def _list_tiffs(source: Path) -> list[Path]:
    if not source.is_dir():
        raise InputNotFoundError(f"TIFF directory {source} does not exist")
    files = sorted(
        p for p in source.iterdir() if p.suffix.lower() in _TIFF_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )
    if not files:
        raise InvalidStackError(f"TIFF directory {source} contains no .tif or .tiff files")
    return files


def _read_slice(path: Path, like: npt.NDArray[Any] | None = None) -> npt.NDArray[Any]:
    try:
        image = np.asarray(tifffile.imread(path))
    except (OSError, ValueError, tifffile.TiffFileError) as exc:
        raise InvalidStackError(f"{path} is not a readable TIFF image: {exc}") from exc
    if image.ndim != 2:
        raise InvalidStackError(f"{path} must hold one 2D image, got shape {image.shape}")
    if like is not None and (image.shape != like.shape or image.dtype != like.dtype):
        raise InvalidStackError(
            f"{path} is {image.shape} {image.dtype} but the stack starts with {like.shape} {like.dtype}"
        )
    return image


def _pyramid(n_z: int, frame: tuple[int, ...], levels: int) -> tuple[list[Shape3], list[Shape3]]:
    """Level shapes, and for each level the per-axis factor from the level before (1s for level 0)."""
    shapes: list[Shape3] = [(n_z, frame[0], frame[1])]
    factors: list[Shape3] = [(1, 1, 1)]
    while len(shapes) < levels and max(shapes[-1]) > 1:
        step = (
            2 if shapes[-1][0] > 1 else 1,
            2 if shapes[-1][1] > 1 else 1,
            2 if shapes[-1][2] > 1 else 1,
        )
        last = shapes[-1]
        shapes.append((-(-last[0] // step[0]), -(-last[1] // step[1]), -(-last[2] // step[2])))
        factors.append(step)
    return shapes, factors


def _transforms(
    factors: list[Shape3], pixel_size: float
) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    scales: list[tuple[float, float, float]] = []
    translations: list[tuple[float, float, float]] = []
    total = np.ones(3)
    for step in factors:
        total = total * np.asarray(step)
        # A block mean's centre sits (block - 1) / 2 voxels of level 0 from the block start.
        scales.append((float(total[0] * pixel_size), float(total[1] * pixel_size), float(total[2] * pixel_size)))
        offset = (total - 1) / 2 * pixel_size
        translations.append((float(offset[0]), float(offset[1]), float(offset[2])))
    return scales, translations


def _create_level(group: Any, name: str, shape: Shape3, chunks: Shape3, dtype: np.dtype[Any], ngff_version: str) -> Any:
    clipped = tuple(min(c, s) for c, s in zip(chunks, shape, strict=True))
    if ngff_version == "0.4":
        # NGFF 0.4 requires "/" as the chunk key separator of Zarr v2 arrays.
        return group.create_array(
            name,
            shape=shape,
            chunks=clipped,
            dtype=dtype,
            fill_value=0,
            chunk_key_encoding={"name": "v2", "separator": "/"},
        )
    return group.create_array(name, shape=shape, chunks=clipped, dtype=dtype, fill_value=0, dimension_names=_AXES)


def _downsample(block: npt.NDArray[Any], step: Shape3) -> npt.NDArray[Any]:
    pad = [(0, (-size) % f) for size, f in zip(block.shape, step, strict=True)]
    if any(after for _, after in pad):
        block = np.pad(block, pad, mode="edge")
    z, y, x = block.shape
    blocks = block.reshape(z // step[0], step[0], y // step[1], step[1], x // step[2], step[2])
    mean: npt.NDArray[np.float64] = blocks.mean(axis=(1, 3, 5), dtype=np.float64)
    if np.issubdtype(block.dtype, np.integer):
        mean = np.rint(mean)
    return mean.astype(block.dtype)


def _ngff_attrs(
    name: str,
    scales: list[tuple[float, float, float]],
    translations: list[tuple[float, float, float]],
    unit: str,
    ngff_version: str,
) -> dict[str, Any]:
    datasets = []
    for k, (scale, translation) in enumerate(zip(scales, translations, strict=True)):
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": list(scale)}]
        if any(translation):
            transforms.append({"type": "translation", "translation": list(translation)})
        datasets.append({"path": str(k), "coordinateTransformations": transforms})
    multiscale: dict[str, Any] = {
        "name": name,
        "axes": [{"name": axis, "type": "space", "unit": unit} for axis in _AXES],
        "datasets": datasets,
        "type": "mean",
        "metadata": {"description": "2x2x2 block mean, odd lengths edge-padded", "method": __name__},
    }
    if ngff_version == "0.4":
        return {"multiscales": [{"version": "0.4", **multiscale}]}
    return {"ome": {"version": "0.5", "multiscales": [multiscale]}}


def _replace(tmp: Path, target: Path) -> None:
    if not (target.exists() or target.is_symlink()):
        os.replace(tmp, target)
        return
    # A directory cannot be renamed over a non-empty one: move the old one aside first.
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
    os.replace(target, old)
    os.replace(tmp, target)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)
