"""Filtered back-projection of Data Exchange scans into a stack of 32-bit TIFF slices.

Pipeline per batch of detector rows: flat/dark normalisation, ``-log``, division
by the scan's ``mu_scale`` (so values are attenuation per pixel, or per
``mu_scale`` unit for real scans that lack the attribute), an FFT filter with
zero padding, and a back-projection with linear interpolation.

The back-projection is sparse linear algebra: for every pixel inside the
reconstruction circle and every angle, the detector position splits into the
index of its left neighbour and the weight ``w`` of the right one, and linear
interpolation ``q[left] + w * (q[left + 1] - q[left])`` summed over angles
becomes two sparse products sharing one index array. The matrices are built
in chunks of image rows (bounding memory) across all angles at once and
applied to every slice of a batch in one sparse-times-dense product, so the
geometry work is shared by all slices. Chunks run on a thread pool (scipy
releases the GIL). Geometries up to ``_CACHE_MAX_PAIRS`` (pixel, angle) pairs
stay in a one-entry cache, so repeated calls with the same angles and
detector width skip the build.

Geometry and scaling match :func:`skimage.transform.iradon` with ``circle=True``:
the rotation axis sits at detector index ``n_det // 2`` unless ``center`` says
otherwise, the output is ``n_det x n_det`` and pixels outside the inscribed
circle are zero.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import h5py
import numpy as np
import numpy.typing as npt
import scipy.fft
import scipy.sparse
import tifffile

from splash_core.processing.errors import InputNotFoundError, InvalidScanError

logger = logging.getLogger(__name__)

FilterName = Literal["ramp", "shepp-logan", "cosine", "hamming", "hann"]
FILTERS: tuple[str, ...] = get_args(FilterName)

# (pixel, angle) pairs per geometry chunk: 8 bytes kept each, ~20 bytes of temporaries while built.
_CHUNK_PAIRS = 2_000_000
# Largest back-projection geometry kept between calls: 32M (pixel, angle) pairs ~ 256 MB.
_CACHE_MAX_PAIRS = 32_000_000
# The back-projection chunks of the last geometry used, if small enough to keep.
_CACHE: dict[_Geometry, list[_Chunk | None]] = {}
_CACHE_LOCK = threading.Lock()
_ONES: npt.NDArray[np.float32] = np.ones(0, dtype=np.float32)
# Columns around each filtered projection: zeros, then the filter's tail just off the detector
# (the back-projection of pixels on the reconstruction circle's rim reads it, as iradon does).
_PAD_LEFT, _PAD_RIGHT = 2, 3
# Transmission floor before -log: keeps dead pixels and noise finite.
_MIN_TRANSMISSION = 1e-6


@dataclass(frozen=True)
class ReconResult:
    """What :func:`reconstruct_scan` wrote.

    Attributes:
        paths: one TIFF per reconstructed slice, in slice order.
        slices: the detector rows reconstructed, matching ``paths``.
        shape: ``(height, width)`` of every slice.
        filter: the FBP filter used.
        mu_scale: the divisor applied to ``-log(transmission)``.
        read_seconds: time reading and normalising the projections.
        compute_seconds: time filtering and back-projecting.
        write_seconds: time writing TIFFs.
        seconds: total wall time.
    """

    paths: tuple[Path, ...]
    slices: tuple[int, ...]
    shape: tuple[int, int]
    filter: str
    mu_scale: float
    read_seconds: float
    compute_seconds: float
    write_seconds: float
    seconds: float


def fbp(
    sinogram: npt.ArrayLike,
    theta_deg: npt.ArrayLike,
    *,
    filter: FilterName = "ramp",  # shadows the builtin on purpose: the name iradon-like APIs use
    center: float | None = None,
    workers: int | None = None,
) -> npt.NDArray[np.float32]:
    """Reconstruct one sinogram (or a stack of them) by filtered back-projection.

    Args:
        sinogram: ``(n_angles, n_det)`` line integrals, or ``(n_slices, n_angles, n_det)``.
            Note the axis order is the transpose of scikit-image's ``radon`` output.
        theta_deg: the ``n_angles`` projection angles in degrees.
        filter: ``ramp``, ``shepp-logan``, ``cosine``, ``hamming`` or ``hann``.
        center: detector index of the rotation axis; default ``n_det // 2``.
        workers: threads for the back-projection; default ``min(4, cpu_count)``.

    Returns:
        ``(n_det, n_det)`` float32 image (``(n_slices, n_det, n_det)`` for a stack),
        zero outside the inscribed circle.

    Raises:
        ValueError: bad shapes, non-finite values, an unknown filter, a
            non-finite ``center``, ``workers < 1``, or ``theta_deg`` not
            matching the number of angles.
    """
    sino = np.asarray(sinogram, dtype=np.float32)
    if sino.ndim not in (2, 3):
        raise ValueError(f"sinogram must be 2D (angles, detector) or 3D (slices, angles, detector), got {sino.shape}")
    stack = sino if sino.ndim == 3 else sino[None]
    n_det = stack.shape[2]
    theta = _check_theta(theta_deg, stack.shape[1])
    if n_det < 2:
        raise ValueError(f"sinogram needs at least 2 detector pixels, got {n_det}")
    if not np.isfinite(stack).all():
        raise ValueError("sinogram contains NaN or infinite values")
    geometry = _geometry(n_det, center, theta)
    images = _backproject(_filter_sinograms(stack, filter), geometry, _workers(workers))
    return images if sino.ndim == 3 else images[0]


def reconstruct_scan(
    h5_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    filter: FilterName = "ramp",  # shadows the builtin on purpose: the name iradon-like APIs use
    slices: Sequence[int] | None = None,
    center: float | None = None,
    batch_slices: int = 16,
    workers: int | None = None,
) -> ReconResult:
    """Reconstruct a Data Exchange scan into ``out_dir/<stem>_recon_<slice:05d>.tiff``.

    Every TIFF is written under a temporary name and renamed into place.

    Args:
        h5_path: HDF5 file with ``/exchange/data``, ``data_white``, ``theta`` and
            optionally ``data_dark`` (zero dark assumed when absent).
        out_dir: directory for the TIFFs; created if missing.
        filter: FBP filter (see :func:`fbp`).
        slices: detector rows to reconstruct; default all.
        center: rotation-axis detector index; default ``n_det // 2``.
        batch_slices: detector rows read and reconstructed together.
        workers: back-projection threads; default ``min(4, cpu_count)``.

    Returns:
        A :class:`ReconResult` listing the TIFFs and the time taken.

    Raises:
        InputNotFoundError: ``h5_path`` does not exist.
        InvalidScanError: the file is not readable HDF5 or not in Data Exchange layout.
        ValueError: an unknown filter, a slice index out of range, ``batch_slices < 1``,
            a non-finite ``center`` or ``workers < 1``.
    """
    start = time.perf_counter()
    source = Path(h5_path)
    target = Path(out_dir)
    if filter not in FILTERS:
        raise ValueError(f"unknown filter {filter!r}; choose one of {', '.join(FILTERS)}")
    if batch_slices < 1:
        raise ValueError(f"batch_slices must be at least 1, got {batch_slices}")
    n_workers = _workers(workers)
    if not source.is_file():
        raise InputNotFoundError(f"scan file {source} does not exist")
    try:
        handle = h5py.File(source, "r")
    except OSError as exc:
        raise InvalidScanError(f"{source} is not a readable HDF5 file: {exc}") from exc

    paths: list[Path] = []
    done: list[int] = []
    read_s = compute_s = write_s = 0.0
    with handle as f:
        scan = _open_exchange(f, source)
        rows = _select_rows(slices, scan.data.shape[1], source)
        n_det = scan.data.shape[2]
        geometry = _geometry(n_det, center, scan.theta)
        target.mkdir(parents=True, exist_ok=True)
        for batch in _batches(rows, batch_slices):
            t0 = time.perf_counter()
            sinograms = _read_sinograms(scan, batch)
            t1 = time.perf_counter()
            images = _backproject(_filter_sinograms(sinograms, filter), geometry, n_workers)
            t2 = time.perf_counter()
            for row, image in zip(batch, images, strict=True):
                paths.append(_write_tiff(target / f"{source.stem}_recon_{row:05d}.tiff", image))
                done.append(row)
            t3 = time.perf_counter()
            read_s, compute_s, write_s = read_s + t1 - t0, compute_s + t2 - t1, write_s + t3 - t2
    seconds = time.perf_counter() - start
    logger.info("reconstructed %d slices of %s into %s in %.2f s", len(paths), source, target, seconds)
    return ReconResult(
        paths=tuple(paths),
        slices=tuple(done),
        shape=(n_det, n_det),
        filter=filter,
        mu_scale=scan.mu_scale,
        read_seconds=read_s,
        compute_seconds=compute_s,
        write_seconds=write_s,
        seconds=seconds,
    )


def psnr(reference: npt.ArrayLike, image: npt.ArrayLike, *, rescale: bool = False) -> float:
    """Peak signal-to-noise ratio of ``image`` against ``reference``, in dB.

    The peak is the data range of ``reference`` (max - min). Intensities are
    compared as they are: reconstructions from :func:`reconstruct_scan` are
    already in the phantom's units. With ``rescale`` the image is first mapped
    by the least-squares affine fit ``a * image + b`` to the reference, which
    scores structure only (useful for data in arbitrary units).

    Args:
        reference: the ground truth.
        image: the image to score, same shape as ``reference``.
        rescale: fit ``a * image + b`` to the reference before comparing.

    Returns:
        The PSNR; ``inf`` when the images are identical.

    Raises:
        ValueError: shapes differ, arrays are empty, or the reference is constant.
    """
    ref = np.asarray(reference, dtype=np.float64)
    img = np.asarray(image, dtype=np.float64)
    if ref.shape != img.shape:
        raise ValueError(f"reference shape {ref.shape} differs from image shape {img.shape}")
    if ref.size == 0:
        raise ValueError("cannot compute PSNR of empty arrays")
    data_range = float(ref.max() - ref.min())
    if data_range <= 0:
        raise ValueError("reference is constant, so PSNR is undefined")
    if rescale:
        design = np.stack([img.ravel(), np.ones(img.size)], axis=1)
        coef, *_ = np.linalg.lstsq(design, ref.ravel(), rcond=None)
        img = img * coef[0] + coef[1]
    mse = float(np.mean((ref - img) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


# --- scan reading -----------------------------------------------------------


@dataclass(frozen=True)
class _Exchange:
    data: Any  # h5py.Dataset (untyped): (angles, rows, columns) projections
    white: Any  # h5py.Dataset: (frames, rows, columns) flat fields
    dark: Any | None  # h5py.Dataset of dark fields, or None (zero dark)
    theta: tuple[float, ...]
    mu_scale: float


def _open_exchange(f: Any, source: Path) -> _Exchange:
    for name in ("exchange/data", "exchange/data_white", "exchange/theta"):
        if not isinstance(f.get(name), h5py.Dataset):
            raise InvalidScanError(f"{source} is not in Data Exchange layout: no /{name} dataset")
    data = f["exchange/data"]
    if data.ndim != 3 or min(data.shape) < 1 or data.shape[2] < 2:
        raise InvalidScanError(f"{source}: /exchange/data must be 3D (angles, rows, columns), got {data.shape}")
    frame = data.shape[1:]
    white = f["exchange/data_white"]
    if white.ndim != 3 or white.shape[1:] != frame or white.shape[0] < 1:
        raise InvalidScanError(f"{source}: /exchange/data_white shape {white.shape} does not match frames {frame}")
    dark = f.get("exchange/data_dark")
    if dark is None:
        logger.warning("%s has no /exchange/data_dark; assuming a zero dark field", source)
    elif not isinstance(dark, h5py.Dataset) or dark.ndim != 3 or dark.shape[1:] != frame or dark.shape[0] < 1:
        raise InvalidScanError(f"{source}: /exchange/data_dark does not hold dark frames of shape {frame}")
    theta = np.asarray(f["exchange/theta"][...], dtype=np.float64).ravel()
    if theta.size != data.shape[0] or not np.isfinite(theta).all():
        raise InvalidScanError(
            f"{source}: /exchange/theta has {theta.size} values for {data.shape[0]} projections (or is not finite)"
        )
    try:
        mu_scale = float(f.attrs.get("mu_scale", 1.0))
    except (TypeError, ValueError):
        mu_scale = math.nan
    if not (math.isfinite(mu_scale) and mu_scale > 0):
        raise InvalidScanError(f"{source}: attribute mu_scale must be a positive number")
    return _Exchange(data=data, white=white, dark=dark, theta=tuple(theta.tolist()), mu_scale=mu_scale)


def _select_rows(slices: Sequence[int] | None, n_rows: int, source: Path) -> list[int]:
    if slices is None:
        return list(range(n_rows))
    rows = sorted({int(s) for s in slices})
    if not rows:
        raise ValueError(f"no slices selected for {source}")
    if rows[0] < 0 or rows[-1] >= n_rows:
        raise ValueError(f"slices must lie in [0, {n_rows}) for {source}, got {rows[0]}..{rows[-1]}")
    return rows


def _batches(rows: list[int], size: int) -> list[list[int]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _read_sinograms(scan: _Exchange, rows: list[int]) -> npt.NDArray[np.float32]:
    """Read detector ``rows`` and return ``(rows, angles, columns)`` attenuation sinograms."""
    contiguous = rows[-1] - rows[0] + 1 == len(rows)
    selection: slice | list[int] = slice(rows[0], rows[-1] + 1) if contiguous else rows
    counts = np.asarray(scan.data[:, selection, :], dtype=np.float32)  # (angles, rows, det)
    white = np.asarray(scan.white[:, selection, :], dtype=np.float32).mean(axis=0)
    dark = (
        np.zeros_like(white)
        if scan.dark is None
        else np.asarray(scan.dark[:, selection, :], dtype=np.float32).mean(axis=0)
    )
    flat = np.maximum(white - dark, np.float32(1e-3))  # dead pixels must not divide by zero
    transmission = (counts - dark) / flat
    np.maximum(transmission, _MIN_TRANSMISSION, out=transmission)
    sino = -np.log(transmission)
    sino /= np.float32(scan.mu_scale)
    return np.ascontiguousarray(sino.transpose(1, 0, 2))


def _write_tiff(path: Path, image: npt.NDArray[np.float32]) -> Path:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tifffile.imwrite(tmp, image.astype(np.float32, copy=False), photometric="minisblack")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# --- filtering ----------------------------------------------------------------


def _check_theta(theta_deg: npt.ArrayLike, n_angles: int) -> tuple[float, ...]:
    theta = np.asarray(theta_deg, dtype=np.float64).ravel()
    if theta.size != n_angles:
        raise ValueError(f"theta_deg has {theta.size} angles but the sinogram has {n_angles}")
    if n_angles < 1 or not np.isfinite(theta).all():
        raise ValueError("theta_deg must hold at least one finite angle")
    return tuple(theta.tolist())


@functools.lru_cache(maxsize=8)
def _fourier_filter(size: int, name: str) -> npt.NDArray[np.float32]:
    # Ramp built from its band-limited spatial kernel (Kak & Slaney eq. 61), which
    # avoids the DC offset of a sampled |f|; windows as in scikit-image.
    if name not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; choose one of {', '.join(FILTERS)}")
    n = np.concatenate((np.arange(1, size // 2 + 1, 2), np.arange(size // 2 - 1, 0, -2)))
    kernel = np.zeros(size)
    kernel[0] = 0.25
    kernel[1::2] = -1.0 / (np.pi * n) ** 2
    response = 2.0 * np.real(np.fft.fft(kernel))
    if name == "shepp-logan":
        omega = np.pi * np.fft.fftfreq(size)[1:]
        response[1:] *= np.sin(omega) / omega
    elif name == "cosine":
        response *= np.fft.fftshift(np.sin(np.linspace(0, np.pi, size, endpoint=False)))
    elif name == "hamming":
        response *= np.fft.fftshift(np.hamming(size))
    elif name == "hann":
        response *= np.fft.fftshift(np.hanning(size))
    half = response[: size // 2 + 1].astype(np.float32)
    half.flags.writeable = False  # shared through the cache
    return half


def _filter_sinograms(stack: npt.NDArray[np.float32], name: str) -> npt.NDArray[np.float32]:
    """Filter ``(S, A, D)`` sinograms along D; return them padded to ``(S, A, D + 5)``.

    Column 2 + d holds detector pixel d; columns 1 and D + 2 hold the filtered
    values just off the detector (the zero-padded convolution's tails); columns
    0, D + 3 and D + 4 are zero.
    """
    n_det = stack.shape[2]
    size = max(64, 1 << math.ceil(math.log2(2 * n_det)))  # >= 2 D: no wrap-around onto the detector
    spectrum = scipy.fft.rfft(stack, n=size, axis=2)
    spectrum *= _fourier_filter(size, name)
    filtered = scipy.fft.irfft(spectrum, n=size, axis=2)
    padded = np.zeros((*stack.shape[:2], n_det + _PAD_LEFT + _PAD_RIGHT), dtype=np.float32)
    padded[:, :, _PAD_LEFT : _PAD_LEFT + n_det] = filtered[:, :, :n_det]
    padded[:, :, _PAD_LEFT - 1] = filtered[:, :, size - 1]  # detector index -1, wrapped
    padded[:, :, _PAD_LEFT + n_det] = filtered[:, :, n_det]
    return padded


# --- back-projection ------------------------------------------------------------


@dataclass(frozen=True)
class _Geometry:
    n_det: int
    center: float
    theta: tuple[float, ...]  # degrees; a tuple so the geometry can key a cache


@dataclass(frozen=True)
class _Chunk:
    """Linear interpolation of a filtered sinogram q at every (pixel, angle) of some image rows.

    ``q[left] + w * (q[left + 1] - q[left])`` summed over angles is
    ``gather @ q + slope @ dq`` with ``dq`` the forward difference of ``q``; the
    two matrices share their column indices and ``gather``'s weights are a
    shared array of ones, so a chunk stores 8 bytes per (pixel, angle).
    """

    pixels: npt.NDArray[np.intp]  # flat indices into the (n_det * n_det) image
    gather: Any  # scipy.sparse.csr_array (untyped): pixels x (angles * padded width), ones at left
    slope: Any  # same sparsity, weights w of the right neighbour


def _geometry(n_det: int, center: float | None, theta: tuple[float, ...]) -> _Geometry:
    axis = float(n_det // 2 if center is None else center)
    if not math.isfinite(axis):
        raise ValueError(f"center must be a finite detector index, got {center}")
    return _Geometry(n_det=n_det, center=axis, theta=theta)


def _workers(workers: int | None) -> int:
    if workers is None:
        return max(1, min(4, os.cpu_count() or 1))
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return workers


def _row_ranges(geometry: _Geometry) -> list[tuple[int, int]]:
    n = geometry.n_det
    rows = max(1, _CHUNK_PAIRS // (n * len(geometry.theta)))
    return [(r0, min(n, r0 + rows)) for r0 in range(0, n, rows)]


def _build_chunk(geometry: _Geometry, r0: int, r1: int) -> _Chunk:
    n, n_det = geometry.n_det, geometry.n_det
    width = n_det + _PAD_LEFT + _PAD_RIGHT
    n_angles = len(geometry.theta)
    radius = n // 2
    row_off = np.arange(r0, r1, dtype=np.float32)[:, None] - radius
    col_off = np.arange(n, dtype=np.float32)[None, :] - radius
    inside = row_off * row_off + col_off * col_off <= radius * radius
    pixels = np.flatnonzero(inside) + r0 * n
    rows_in = np.broadcast_to(row_off, inside.shape)[inside]
    cols_in = np.broadcast_to(col_off, inside.shape)[inside]
    theta = np.deg2rad(np.asarray(geometry.theta))
    cos_t, sin_t = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)

    # Padded-column position of every (pixel, angle); past the kept tails it ramps to a zero column.
    t = cols_in[:, None] * cos_t
    t -= rows_in[:, None] * sin_t
    t += np.float32(geometry.center + _PAD_LEFT)
    np.clip(t, 0.0, float(width - 2), out=t)
    left = t.astype(np.int32)  # truncation is floor here: t >= 0
    t -= left  # t is now the weight of the right neighbour
    left += np.arange(n_angles, dtype=np.int32) * width

    pairs = pixels.size * n_angles
    index_dtype = np.int32 if pairs < 2**31 else np.int64
    indptr = np.arange(pixels.size + 1, dtype=index_dtype) * n_angles
    shape = (pixels.size, n_angles * width)
    columns = left.reshape(-1)
    return _Chunk(
        pixels=pixels,
        gather=scipy.sparse.csr_array((_ones(pairs), columns, indptr), shape=shape),
        slope=scipy.sparse.csr_array((t.reshape(-1), columns, indptr), shape=shape),
    )


def _ones(size: int) -> npt.NDArray[np.float32]:
    """A read-only view of ``size`` ones, shared by every chunk's gather matrix."""
    global _ONES
    with _CACHE_LOCK:
        if _ONES.size < size:
            _ONES = np.ones(size, dtype=np.float32)
            _ONES.flags.writeable = False
        return _ONES[:size]


def _cache_slots(geometry: _Geometry, n_chunks: int) -> list[_Chunk | None] | None:
    """The cached chunk list for ``geometry`` (filled lazily), or ``None`` if too large to keep."""
    pairs = len(geometry.theta) * math.pi / 4 * geometry.n_det**2
    if pairs > _CACHE_MAX_PAIRS:
        return None
    with _CACHE_LOCK:
        slots = _CACHE.get(geometry)
        if slots is None:
            _CACHE.clear()  # one geometry at a time bounds the memory held between calls
            slots = _CACHE[geometry] = [None] * n_chunks
        return slots


def _backproject(padded: npt.NDArray[np.float32], geometry: _Geometry, workers: int) -> npt.NDArray[np.float32]:
    """Back-project padded filtered sinograms ``(S, A, W)`` into ``(S, N, N)`` images."""
    n_slices, n_angles, _ = padded.shape
    n = geometry.n_det
    scale = np.float32(np.pi / (2 * n_angles))
    slope = np.zeros_like(padded)
    np.subtract(padded[:, :, 1:], padded[:, :, :-1], out=slope[:, :, :-1])
    # Slices last and contiguous, so each stored weight is applied to all slices at once.
    if n_slices == 1:
        rhs, rhs_slope = padded.reshape(-1), slope.reshape(-1)
    else:
        rhs = np.ascontiguousarray(padded.reshape(n_slices, -1).T)
        rhs_slope = np.ascontiguousarray(slope.reshape(n_slices, -1).T)
    out = np.zeros((n_slices, n * n), dtype=np.float32)
    ranges = _row_ranges(geometry)
    slots = _cache_slots(geometry, len(ranges))

    def run(index: int, bounds: tuple[int, int]) -> None:
        chunk = slots[index] if slots is not None else None
        if chunk is None:
            chunk = _build_chunk(geometry, *bounds)
            if slots is not None:
                slots[index] = chunk  # a racing call may build the same chunk; both are identical
        values = chunk.gather @ rhs
        values += chunk.slope @ rhs_slope
        out[:, chunk.pixels] = (values if values.ndim == 1 else values.T) * scale

    if workers == 1 or len(ranges) == 1:
        for i, bounds in enumerate(ranges):
            run(i, bounds)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(run, i, bounds) for i, bounds in enumerate(ranges)]:
                future.result()
    return out.reshape(n_slices, n, n)
