"""The modified Shepp-Logan phantom: rasterised images, a 3D volume and exact projections.

Geometry follows scikit-image's ``radon``/``iradon`` so reconstructions line up
with the phantom without flips: pixel ``(row, col)`` of an ``n x n`` image sits
at ``x = col - n // 2`` and ``y = n // 2 - row`` (pixel units, y up), and the
detector coordinate of that pixel at angle ``theta`` is
``t = x cos(theta) + y sin(theta)``, read at detector index ``t + n // 2``.

Projections are computed analytically from the ellipses (no pixel model), so
a reconstruction compared with the rasterised phantom is not an "inverse crime".
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

# Toft's modified Shepp-Logan table (better contrast than the original):
# density, semi-axis a, semi-axis b, centre x0, centre y0, rotation phi (degrees), unit square [-1, 1].
_MODIFIED_SHEPP_LOGAN: npt.NDArray[np.float64] = np.array(
    [
        [1.0, 0.69, 0.92, 0.0, 0.0, 0.0],
        [-0.8, 0.6624, 0.8740, 0.0, -0.0184, 0.0],
        [-0.2, 0.1100, 0.3100, 0.22, 0.0, -18.0],
        [-0.2, 0.1600, 0.4100, -0.22, 0.0, 18.0],
        [0.1, 0.2100, 0.2500, 0.0, 0.35, 0.0],
        [0.1, 0.0460, 0.0460, 0.0, 0.1, 0.0],
        [0.1, 0.0460, 0.0460, 0.0, -0.1, 0.0],
        [0.1, 0.0460, 0.0230, -0.08, -0.605, 0.0],
        [0.1, 0.0230, 0.0230, 0.0, -0.606, 0.0],
        [0.1, 0.0230, 0.0460, 0.06, -0.605, 0.0],
    ]
)

# How much the phantom shrinks towards the top and bottom slice of a volume.
_SLICE_SHRINK = 0.2
# Pixels rasterised per block of rows, to bound memory for large phantoms.
_RASTER_BLOCK = 1 << 22


def shepp_logan(n: int, *, oversample: int = 2) -> npt.NDArray[np.float32]:
    """Rasterise the 2D modified Shepp-Logan phantom.

    Args:
        n: image width and height in pixels (at least 2).
        oversample: sub-samples per pixel and axis; each pixel holds the mean of
            ``oversample**2`` point samples, so edges are anti-aliased.

    Returns:
        ``(n, n)`` float32 image with values in ``[0, 1]``.

    Raises:
        ValueError: ``n < 2`` or ``oversample < 1``.
    """
    _check_size(n)
    return _rasterise(_MODIFIED_SHEPP_LOGAN, n, oversample)


def phantom_volume(n: int, n_slices: int, *, oversample: int = 2) -> npt.NDArray[np.float32]:
    """Build a 3D phantom whose slices are the Shepp-Logan phantom scaled a little.

    Slice ``k`` is the 2D phantom with every ellipse (axes and centre) scaled by
    ``1 - 0.2 z_k**2``, where ``z_k`` runs from -1 to 1 over the slices, so the
    volume is ellipsoid-like rather than constant along z. The result is a pure
    function of its arguments, which lets a reader regenerate the ground truth
    of a generated scan from the scan's attributes.

    Args:
        n: slice width and height in pixels (at least 2).
        n_slices: number of slices (at least 1); one slice gives :func:`shepp_logan`.
        oversample: sub-samples per pixel and axis (see :func:`shepp_logan`).

    Returns:
        ``(n_slices, n, n)`` float32 volume with values in ``[0, 1]``.

    Raises:
        ValueError: ``n < 2``, ``n_slices < 1`` or ``oversample < 1``.
    """
    _check_size(n)
    if n_slices < 1:
        raise ValueError(f"n_slices must be at least 1, got {n_slices}")
    volume = np.empty((n_slices, n, n), dtype=np.float32)
    for k, ellipses in enumerate(_slice_ellipses(n_slices)):
        volume[k] = _rasterise(ellipses, n, oversample)
    return volume


def phantom_projections(
    n: int,
    n_slices: int,
    theta_deg: npt.ArrayLike,
    *,
    oversample: int = 4,
) -> npt.NDArray[np.float32]:
    """Compute exact parallel-beam line integrals of :func:`phantom_volume`.

    Each detector pixel is the mean of ``oversample`` point line integrals spread
    across its width, which models the finite pixel size.

    Args:
        n: slice width and number of detector pixels.
        n_slices: number of slices (detector rows).
        theta_deg: projection angles in degrees.
        oversample: line integrals per detector pixel.

    Returns:
        ``(n_angles, n_slices, n)`` float32 line integrals in pixel units
        (phantom value times path length in pixels).

    Raises:
        ValueError: bad sizes, or ``theta_deg`` is not a non-empty 1D array.
    """
    _check_size(n)
    if n_slices < 1:
        raise ValueError(f"n_slices must be at least 1, got {n_slices}")
    if oversample < 1:
        raise ValueError(f"oversample must be at least 1, got {oversample}")
    theta = np.deg2rad(np.asarray(theta_deg, dtype=np.float64))
    if theta.ndim != 1 or theta.size == 0:
        raise ValueError(f"theta_deg must be a non-empty 1D array, got shape {theta.shape}")
    half = n / 2.0
    offsets = (np.arange(oversample) + 0.5) / oversample - 0.5
    # Detector coordinates in units of the phantom's [-1, 1] square, sub-samples last.
    t = ((np.arange(n)[:, None] - n // 2 + offsets[None, :]).ravel() / half)[None, :]
    cos_t, sin_t = np.cos(theta)[:, None], np.sin(theta)[:, None]
    out = np.empty((theta.size, n_slices, n), dtype=np.float32)
    for k, ellipses in enumerate(_slice_ellipses(n_slices)):
        sino = np.zeros((theta.size, n * oversample), dtype=np.float64)
        for density, a, b, x0, y0, phi in ellipses:
            beta = theta[:, None] - np.deg2rad(phi)
            alpha2 = (a * np.cos(beta)) ** 2 + (b * np.sin(beta)) ** 2
            s = t - (x0 * cos_t + y0 * sin_t)
            chord = np.sqrt(np.maximum(alpha2 - s * s, 0.0))
            sino += (2.0 * density * a * b / alpha2) * chord
        out[:, k, :] = (sino.reshape(theta.size, n, oversample).mean(axis=2) * half).astype(np.float32)
    return out


def _check_size(n: int) -> None:
    if n < 2:
        raise ValueError(f"phantom size must be at least 2 pixels, got {n}")


def _slice_ellipses(n_slices: int) -> list[npt.NDArray[np.float64]]:
    z = np.linspace(-1.0, 1.0, n_slices) if n_slices > 1 else np.zeros(1)
    tables = []
    for zk in z:
        scale = 1.0 - _SLICE_SHRINK * zk * zk
        table = _MODIFIED_SHEPP_LOGAN.copy()
        table[:, 1:5] *= scale
        tables.append(table)
    return tables


def _rasterise(ellipses: npt.NDArray[np.float64], n: int, oversample: int) -> npt.NDArray[np.float32]:
    if oversample < 1:
        raise ValueError(f"oversample must be at least 1, got {oversample}")
    half = n / 2.0
    offsets = (np.arange(oversample) + 0.5) / oversample - 0.5
    sub = (np.arange(n)[:, None] - n // 2 + offsets[None, :]).ravel() / half
    xs = sub[None, :]
    image = np.empty((n, n), dtype=np.float32)
    rows_per_block = max(1, _RASTER_BLOCK // (n * oversample * oversample))
    for r0 in range(0, n, rows_per_block):
        r1 = min(n, r0 + rows_per_block)
        ys = -sub[r0 * oversample : r1 * oversample, None]
        block = np.zeros((ys.shape[0], xs.shape[1]), dtype=np.float64)
        for density, a, b, x0, y0, phi in ellipses:
            c, s = np.cos(np.deg2rad(phi)), np.sin(np.deg2rad(phi))
            dx, dy = xs - x0, ys - y0
            u = (dx * c + dy * s) / a
            v = (dy * c - dx * s) / b
            block += density * (u * u + v * v <= 1.0)
        image[r0:r1] = block.reshape(r1 - r0, oversample, n, oversample).mean(axis=(1, 3))
    return np.clip(image, 0.0, 1.0)
