"""Synthetic 8.3.2 scans: a phantom projected, attenuated and counted into a Data Exchange file.

The file has the layout of a raw 8.3.2 micro-CT scan::

    /exchange/data        (n_angles, n_slices, size) uint16  projections
    /exchange/data_white  (n_flats, n_slices, size) uint16   flat fields (beam, no sample)
    /exchange/data_dark   (n_darks, n_slices, size) uint16   dark fields (no beam)
    /exchange/theta       (n_angles,) float64                angles in degrees, [0, 180)
    /measurement/...                                         minimal instrument description

The ground truth is not stored (real scans have none). Instead the root
attributes ``phantom``, ``phantom_size``, ``phantom_slices`` and ``mu_scale``
let :func:`load_phantom` regenerate it, so a reconstruction can be scored.

Forward model: ``mu = phantom * mu_scale`` (attenuation per pixel), exact line
integrals from :func:`~splash_core.processing.phantom.phantom_projections`,
Beer-Lambert ``I = I0 * exp(-integral)`` with a non-uniform beam and per-pixel
gain, Poisson counting noise and a dark offset.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import numpy.typing as npt

from splash_core.processing.errors import InputNotFoundError, InvalidScanError, OutputExistsError
from splash_core.processing.phantom import phantom_projections, phantom_volume

logger = logging.getLogger(__name__)

PHANTOM_NAME = "modified-shepp-logan"
_UINT16_MAX = 65535


@dataclass(frozen=True, eq=False)
class ScanInfo:
    """What :func:`generate_scan` wrote.

    Attributes:
        path: the HDF5 file.
        shape: shape of ``/exchange/data`` (n_angles, n_slices, size).
        theta_deg: the projection angles in degrees.
        mu_scale: attenuation per pixel of a phantom value of 1.
        phantom: the ground truth, ``(n_slices, size, size)`` float32 in ``[0, 1]``.
        seconds: wall time spent generating and writing.
    """

    path: Path
    shape: tuple[int, int, int]
    theta_deg: npt.NDArray[np.float64]
    mu_scale: float
    phantom: npt.NDArray[np.float32]
    seconds: float


def generate_scan(
    path: str | os.PathLike[str],
    *,
    size: int = 128,
    n_slices: int = 8,
    n_angles: int = 180,
    seed: int = 0,
    n_flats: int = 10,
    n_darks: int = 10,
    flat_counts: float = 20000.0,
    dark_counts: float = 100.0,
    max_attenuation: float = 1.5,
    overwrite: bool = False,
) -> ScanInfo:
    """Simulate a parallel-beam scan of :func:`phantom_volume` and write it as Data Exchange HDF5.

    The file is written under a temporary name in the same directory and renamed
    into place, so readers never see a partial scan.

    Args:
        path: the HDF5 file to write.
        size: detector width and phantom width in pixels.
        n_slices: detector rows (phantom slices).
        n_angles: projections, evenly spaced over [0, 180) degrees.
        seed: seed for the gain map and the counting noise.
        n_flats: flat-field frames.
        n_darks: dark-field frames.
        flat_counts: mean counts of the open beam at its peak.
        dark_counts: mean dark offset in counts.
        max_attenuation: ``-ln(transmission)`` of the most attenuating ray; sets ``mu_scale``.
        overwrite: replace an existing file instead of refusing.

    Returns:
        A :class:`ScanInfo` including the ground-truth phantom.

    Raises:
        ValueError: a size or count is out of range.
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        InputNotFoundError: the parent directory of ``path`` does not exist.
    """
    start = time.perf_counter()
    target = Path(path)
    _check_params(size, n_slices, n_angles, n_flats, n_darks, flat_counts, dark_counts, max_attenuation)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} already exists; allow overwriting or choose another path")
    if not target.parent.is_dir():
        raise InputNotFoundError(f"output directory {target.parent} does not exist")

    rng = np.random.default_rng(seed)
    theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    integrals = phantom_projections(size, n_slices, theta)
    mu_scale = max_attenuation / float(integrals.max())

    # Open beam: smooth horizontal falloff, slight vertical falloff, fixed per-pixel gain.
    x = (np.arange(size) - size / 2.0) / size
    y = (np.arange(n_slices) - n_slices / 2.0) / max(n_slices, 1)
    profile = np.exp(-0.5 * (x[None, :] / 0.8) ** 2) * np.exp(-0.5 * (y[:, None] / 2.0) ** 2)
    gain = 1.0 + 0.02 * rng.standard_normal((n_slices, size))
    beam = flat_counts * profile * gain

    data = _count(rng, beam[None] * np.exp(-mu_scale * integrals), dark_counts)
    flats = _count(rng, np.broadcast_to(beam, (n_flats, n_slices, size)), dark_counts)
    darks = _count(rng, np.zeros((n_darks, n_slices, size)), dark_counts)

    _write_atomically(
        target,
        data=data,
        flats=flats,
        darks=darks,
        theta=theta,
        attrs={
            "beamline": "8.3.2",
            "facility": "ALS",
            "generator": "splash_core.processing.scan",
            "phantom": PHANTOM_NAME,
            "phantom_size": size,
            "phantom_slices": n_slices,
            "mu_scale": mu_scale,
            "seed": seed,
        },
    )
    phantom = phantom_volume(size, n_slices)
    seconds = time.perf_counter() - start
    logger.info("wrote synthetic scan %s %s in %.2f s", target, data.shape, seconds)
    return ScanInfo(
        path=target,
        shape=(n_angles, n_slices, size),
        theta_deg=theta,
        mu_scale=mu_scale,
        phantom=phantom,
        seconds=seconds,
    )


def load_phantom(path: str | os.PathLike[str]) -> npt.NDArray[np.float32] | None:
    """Regenerate the ground truth of a scan written by :func:`generate_scan`.

    Args:
        path: a Data Exchange HDF5 file.

    Returns:
        The ``(n_slices, size, size)`` phantom, or ``None`` when the file does
        not carry phantom attributes (a real scan).

    Raises:
        InputNotFoundError: ``path`` does not exist.
        InvalidScanError: ``path`` is not a readable HDF5 file.
    """
    source = Path(path)
    if not source.is_file():
        raise InputNotFoundError(f"scan file {source} does not exist")
    try:
        with h5py.File(source, "r") as f:
            attrs = dict(f.attrs)
    except OSError as exc:
        raise InvalidScanError(f"{source} is not a readable HDF5 file: {exc}") from exc
    if _as_str(attrs.get("phantom")) != PHANTOM_NAME:
        return None
    try:
        size, n_slices = int(attrs["phantom_size"]), int(attrs["phantom_slices"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidScanError(f"{source} names a phantom but lacks a valid phantom_size/phantom_slices") from exc
    return phantom_volume(size, n_slices)


def _as_str(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else None


def _check_params(
    size: int,
    n_slices: int,
    n_angles: int,
    n_flats: int,
    n_darks: int,
    flat_counts: float,
    dark_counts: float,
    max_attenuation: float,
) -> None:
    checks = {
        "size": (size, 8),
        "n_slices": (n_slices, 1),
        "n_angles": (n_angles, 2),
        "n_flats": (n_flats, 1),
        "n_darks": (n_darks, 1),
    }
    for name, (value, minimum) in checks.items():
        if value < minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if not 0 < flat_counts + dark_counts < _UINT16_MAX:
        raise ValueError(f"flat_counts + dark_counts must lie in (0, {_UINT16_MAX}), got {flat_counts + dark_counts}")
    if dark_counts < 0:
        raise ValueError(f"dark_counts must not be negative, got {dark_counts}")
    if not 0 < max_attenuation < 10:
        raise ValueError(f"max_attenuation must lie in (0, 10), got {max_attenuation}")


def _count(rng: np.random.Generator, expected: npt.NDArray[np.float64], dark_counts: float) -> npt.NDArray[np.uint16]:
    counts: npt.NDArray[np.int64] = rng.poisson(expected) + rng.poisson(dark_counts, size=expected.shape)
    return np.clip(counts, 0, _UINT16_MAX).astype(np.uint16)


def _write_atomically(
    target: Path,
    *,
    data: npt.NDArray[np.uint16],
    flats: npt.NDArray[np.uint16],
    darks: npt.NDArray[np.uint16],
    theta: npt.NDArray[np.float64],
    attrs: dict[str, str | int | float],
) -> None:
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(attrs)
            f.create_dataset("implements", data="exchange:measurement")
            exchange = f.create_group("exchange")
            projections = exchange.create_dataset("data", data=data, chunks=(1, *data.shape[1:]))
            projections.attrs["axes"] = "theta:y:x"
            projections.attrs["units"] = "counts"
            exchange.create_dataset("data_white", data=flats).attrs["units"] = "counts"
            exchange.create_dataset("data_dark", data=darks).attrs["units"] = "counts"
            exchange.create_dataset("theta", data=theta).attrs["units"] = "degrees"
            instrument = f.create_group("measurement/instrument")
            instrument.create_dataset("name", data="ALS 8.3.2 hard X-ray micro-tomography")
            instrument.create_dataset("source/name", data="Advanced Light Source")
            instrument.create_dataset("source/beamline", data="8.3.2")
            instrument.create_dataset("detector/dimension_x", data=data.shape[2])
            instrument.create_dataset("detector/dimension_y", data=data.shape[1])
            f.create_dataset("measurement/sample/name", data=f"{PHANTOM_NAME} phantom")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
