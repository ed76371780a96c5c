"""Filtered back-projection and reconstruction of Data Exchange scans into TIFF slices."""

from __future__ import annotations

import math
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from skimage.transform import iradon, radon

from splash_core.processing import (
    FILTERS,
    InputNotFoundError,
    InvalidScanError,
    ReconResult,
    fbp,
    generate_scan,
    load_phantom,
    psnr,
    reconstruct_scan,
    shepp_logan,
)
from splash_core.processing import reconstruct as reconstruct_module

THETA = np.linspace(0.0, 180.0, 60, endpoint=False)


@pytest.fixture(scope="module")
def sinogram() -> np.ndarray:
    """A (angles, detector) sinogram of the 64-pixel phantom, in scikit-image geometry."""
    return radon(shepp_logan(64).astype(np.float64), THETA, circle=True).T


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic scan shared by the reconstruction tests."""
    return generate_scan(tmp_path_factory.mktemp("scan") / "scan.h5", size=64, n_slices=4, n_angles=90).path


@pytest.mark.parametrize("name", ["ramp", "shepp-logan", "hann", "hamming", "cosine"])
def test_fbp_agrees_with_skimage_iradon(sinogram: np.ndarray, name: str) -> None:
    """Same geometry, filter and scaling as iradon(circle=True): near-identical images."""
    reference = iradon(sinogram.T, THETA, circle=True, filter_name=name)
    image = fbp(sinogram, THETA, filter=name)  # type: ignore[arg-type]
    assert image.dtype == np.float32
    assert image.shape == reference.shape
    assert np.corrcoef(reference.ravel(), image.ravel())[0, 1] > 0.9999
    assert psnr(reference, image) > 50


def test_fbp_of_a_stack_equals_slice_by_slice(sinogram: np.ndarray) -> None:
    """Batched sinograms give what single calls give, with one thread or several."""
    stack = np.stack([sinogram, 2 * sinogram, np.zeros_like(sinogram)])
    batched = fbp(stack, THETA, workers=2)
    for sino, image in zip(stack, batched, strict=True):
        np.testing.assert_allclose(fbp(sino, THETA, workers=1), image, atol=1e-5)


def test_fbp_without_the_geometry_cache_is_identical(sinogram: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large geometries are built per call instead of cached; the result does not change."""
    cached = fbp(sinogram, THETA)
    monkeypatch.setattr(reconstruct_module, "_CACHE_MAX_PAIRS", 0)
    np.testing.assert_allclose(fbp(sinogram, THETA), cached, atol=1e-6)


def test_fbp_honours_the_rotation_centre() -> None:
    """A sinogram shifted by 3 detector pixels reconstructs the same with the centre moved by 3."""
    image = np.pad(shepp_logan(48), 8).astype(np.float64)  # room to shift without losing data
    sinogram = radon(image, THETA, circle=True).T
    shifted = np.zeros_like(sinogram)
    shifted[:, 3:] = sinogram[:, :-3]
    moved = fbp(shifted, THETA, center=32 + 3)
    assert np.corrcoef(moved.ravel(), fbp(sinogram, THETA).ravel())[0, 1] > 0.999


def test_fbp_rejects_bad_input(sinogram: np.ndarray) -> None:
    """Mismatched angles, wrong rank, NaNs and unknown filters are ValueErrors."""
    with pytest.raises(ValueError, match="60 angles"):
        fbp(sinogram[:10], THETA)
    with pytest.raises(ValueError, match="2D"):
        fbp(sinogram.ravel(), THETA)
    bad = sinogram.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fbp(bad, THETA)
    with pytest.raises(ValueError, match="unknown filter"):
        fbp(sinogram, THETA, filter="sharp")  # type: ignore[arg-type]


def test_reconstruct_scan_matches_the_phantom(scan: Path, tmp_path: Path) -> None:
    """Every slice is written as a float32 TIFF in attenuation units; PSNR vs the phantom exceeds 20 dB."""
    result = reconstruct_scan(scan, tmp_path / "recon")
    assert isinstance(result, ReconResult)
    assert result.slices == (0, 1, 2, 3)
    assert [p.name for p in result.paths] == [f"scan_recon_{i:05d}.tiff" for i in range(4)]
    assert sorted(p.name for p in (tmp_path / "recon").iterdir()) == [p.name for p in result.paths]
    volume = np.stack([tifffile.imread(p) for p in result.paths])
    assert volume.dtype == np.float32
    assert volume.shape == (4, 64, 64)
    phantom = load_phantom(scan)
    assert phantom is not None
    assert psnr(phantom, volume) > 20
    assert result.seconds >= result.compute_seconds > 0


@pytest.mark.parametrize("name", FILTERS)
def test_reconstruct_scan_every_filter_is_usable(scan: Path, tmp_path: Path, name: str) -> None:
    """Each filter reconstructs a selected slice recognisably."""
    result = reconstruct_scan(scan, tmp_path, filter=name, slices=[2])  # type: ignore[arg-type]
    assert result.slices == (2,)
    assert result.paths[0].name == "scan_recon_00002.tiff"
    phantom = load_phantom(scan)
    assert phantom is not None
    assert psnr(phantom[2], tifffile.imread(result.paths[0])) > 18


def test_reconstruct_scan_rejects_missing_file(tmp_path: Path) -> None:
    """A missing scan is a FileNotFoundError naming the path, and nothing is written."""
    missing = tmp_path / "nope.h5"
    with pytest.raises(InputNotFoundError, match=re.escape(str(missing))):
        reconstruct_scan(missing, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_reconstruct_scan_rejects_non_hdf5(tmp_path: Path) -> None:
    """A file that is not HDF5 is an InvalidScanError (a ValueError) naming the path."""
    path = tmp_path / "scan.h5"
    path.write_text("hello")
    with pytest.raises(InvalidScanError, match=re.escape(str(path))):
        reconstruct_scan(path, tmp_path / "out")


@pytest.mark.parametrize(
    ("drop", "message"),
    [("exchange/data", "/exchange/data"), ("exchange/data_white", "data_white"), ("exchange/theta", "theta")],
)
def test_reconstruct_scan_rejects_incomplete_layout(scan: Path, tmp_path: Path, drop: str, message: str) -> None:
    """A file missing a required Data Exchange dataset is refused, naming file and dataset."""
    path = tmp_path / "partial.h5"
    with h5py.File(scan, "r") as src, h5py.File(path, "w") as dst:
        for name in ("exchange/data", "exchange/data_white", "exchange/data_dark", "exchange/theta"):
            if name != drop:
                src.copy(src[name], dst.require_group("exchange"), name=name.split("/")[1])
    with pytest.raises(InvalidScanError, match=message) as caught:
        reconstruct_scan(path, tmp_path / "out")
    assert str(path) in str(caught.value)


def test_reconstruct_scan_rejects_inconsistent_theta(scan: Path, tmp_path: Path) -> None:
    """As many angles as projections are required."""
    path = tmp_path / "short_theta.h5"
    with h5py.File(scan, "r") as src, h5py.File(path, "w") as dst:
        for name in ("data", "data_white", "data_dark"):
            src.copy(src[f"exchange/{name}"], dst.require_group("exchange"), name=name)
        dst["exchange/theta"] = src["exchange/theta"][:10]
    with pytest.raises(InvalidScanError, match="theta"):
        reconstruct_scan(path, tmp_path / "out")


def test_reconstruct_scan_rejects_bad_options(scan: Path, tmp_path: Path) -> None:
    """Slices out of range and unknown filters are refused before anything is written."""
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        reconstruct_scan(scan, tmp_path / "out", slices=[4])
    with pytest.raises(ValueError, match="unknown filter"):
        reconstruct_scan(scan, tmp_path / "out", filter="sharp")  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_psnr_conventions() -> None:
    """Identical images score inf; rescaling removes an affine intensity change; constants are refused."""
    reference = shepp_logan(32)
    assert psnr(reference, reference) == math.inf
    assert psnr(reference, 2 * reference + 1) < 0
    assert psnr(reference, 2 * reference + 1, rescale=True) > 60
    with pytest.raises(ValueError, match="constant"):
        psnr(np.ones((4, 4)), np.ones((4, 4)))
    with pytest.raises(ValueError, match="shape"):
        psnr(reference, reference[:-1])


def test_reconstruct_scan_without_darks_assumes_zero_dark(
    scan: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Darks are optional: a warning is logged and the reconstruction still resembles the phantom."""
    path = tmp_path / "no_dark.h5"
    with h5py.File(scan, "r") as src, h5py.File(path, "w") as dst:
        dst.attrs.update(src.attrs)  # keeps mu_scale, so values stay in phantom units
        for name in ("data", "data_white", "theta"):
            src.copy(src[f"exchange/{name}"], dst.require_group("exchange"), name=name)
    result = reconstruct_scan(path, tmp_path / "out", slices=[1])
    assert "data_dark" in caplog.text
    assert psnr(shepp_logan_volume_slice(scan, 1), tifffile.imread(result.paths[0])) > 18


def shepp_logan_volume_slice(scan: Path, index: int) -> np.ndarray:
    """The ground-truth slice of a generated scan."""
    phantom = load_phantom(scan)
    assert phantom is not None
    return phantom[index]
