"""Phantom and synthetic Data Exchange scan generation."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from skimage.transform import radon

from splash_core.processing import (
    InputNotFoundError,
    InvalidScanError,
    OutputExistsError,
    generate_scan,
    load_phantom,
    phantom_projections,
    phantom_volume,
    shepp_logan,
)


def test_shepp_logan_is_float32_in_unit_range() -> None:
    """The 2D phantom is float32, spans [0, 1] and is zero in the corners."""
    image = shepp_logan(64)
    assert image.dtype == np.float32
    assert image.shape == (64, 64)
    assert image.min() == 0.0
    assert image.max() == pytest.approx(1.0)
    assert image[0, 0] == 0.0


def test_phantom_volume_varies_along_z_and_is_deterministic() -> None:
    """Slices differ from each other, the middle slice is the 2D phantom, and a rebuild is identical."""
    volume = phantom_volume(32, 5)
    assert volume.shape == (5, 32, 32)
    assert not np.array_equal(volume[0], volume[2])
    np.testing.assert_array_equal(volume[2], shepp_logan(32))
    np.testing.assert_array_equal(volume, phantom_volume(32, 5))


def test_analytic_projections_match_skimage_radon_geometry() -> None:
    """Exact line integrals agree with scikit-image's radon of the rasterised phantom (same conventions)."""
    theta = np.linspace(0.0, 180.0, 30, endpoint=False)
    exact = phantom_projections(64, 1, theta)[:, 0, :]
    numeric = radon(shepp_logan(64, oversample=4).astype(np.float64), theta, circle=True).T
    assert exact.shape == (30, 64)
    assert np.corrcoef(exact.ravel(), numeric.ravel())[0, 1] > 0.995
    # At 0 degrees radon needs no interpolation, so the two agree to the pixel model error.
    assert np.abs(exact[0] - numeric[0]).max() < 0.05 * numeric[0].max()


def test_generate_scan_writes_data_exchange_layout(tmp_path: Path) -> None:
    """Projections, flats, darks and angles have the Data Exchange names, shapes and dtypes."""
    info = generate_scan(tmp_path / "scan.h5", size=32, n_slices=3, n_angles=40, n_flats=4, n_darks=2)
    assert info.shape == (40, 3, 32)
    assert info.phantom.shape == (3, 32, 32)
    with h5py.File(info.path, "r") as f:
        assert f["exchange/data"].shape == (40, 3, 32)
        assert f["exchange/data"].dtype == np.uint16
        assert f["exchange/data_white"].shape == (4, 3, 32)
        assert f["exchange/data_white"].dtype == np.uint16
        assert f["exchange/data_dark"].shape == (2, 3, 32)
        assert f["exchange/data_dark"].dtype == np.uint16
        theta = f["exchange/theta"][...]
        assert theta.shape == (40,)
        assert theta.min() == 0.0
        assert theta.max() < 180.0
        assert f.attrs["beamline"] == "8.3.2"
        assert f.attrs["phantom_size"] == 32
        assert "phantom" not in f["exchange"]
        # Attenuation shows: the sample blocks light that the open beam delivers.
        assert f["exchange/data"][:, 1, 16].mean() < f["exchange/data_white"][:, 1, 16].mean()
        assert f["exchange/data_dark"][...].max() < f["exchange/data_white"][...].min()
    assert list(tmp_path.iterdir()) == [info.path]


def test_load_phantom_regenerates_the_ground_truth(tmp_path: Path) -> None:
    """The phantom rebuilt from the file's attributes equals the one generate_scan returned."""
    info = generate_scan(tmp_path / "scan.h5", size=32, n_slices=2, n_angles=20)
    phantom = load_phantom(info.path)
    assert phantom is not None
    np.testing.assert_array_equal(phantom, info.phantom)


def test_load_phantom_of_a_real_scan_is_none(tmp_path: Path) -> None:
    """A file without phantom attributes has no ground truth."""
    path = tmp_path / "real.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("exchange/data", data=np.zeros((2, 2, 2), np.uint16))
    assert load_phantom(path) is None


def test_generate_scan_is_reproducible_for_a_seed(tmp_path: Path) -> None:
    """The same seed gives the same counts; another seed gives other noise."""
    paths = [
        generate_scan(tmp_path / f"{i}.h5", size=16, n_slices=1, n_angles=8, seed=s).path
        for i, s in enumerate((1, 1, 2))
    ]
    data = []
    for path in paths:
        with h5py.File(path, "r") as f:
            data.append(f["exchange/data"][...])
    np.testing.assert_array_equal(data[0], data[1])
    assert not np.array_equal(data[0], data[2])


def test_generate_scan_refuses_to_overwrite(tmp_path: Path) -> None:
    """An existing file is kept unless overwrite is asked for."""
    path = tmp_path / "scan.h5"
    path.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match=re.escape(str(path))):
        generate_scan(path, size=16, n_slices=1, n_angles=8)
    assert path.read_bytes() == b"keep me"
    generate_scan(path, size=16, n_slices=1, n_angles=8, overwrite=True)
    assert h5py.is_hdf5(path)


def test_generate_scan_rejects_bad_parameters(tmp_path: Path) -> None:
    """Too small a detector or a missing output directory are refused before writing."""
    with pytest.raises(ValueError, match="size"):
        generate_scan(tmp_path / "scan.h5", size=4)
    with pytest.raises(InputNotFoundError, match="missing"):
        generate_scan(tmp_path / "missing" / "scan.h5", size=16)
    assert list(tmp_path.iterdir()) == []


def test_load_phantom_rejects_non_hdf5(tmp_path: Path) -> None:
    """A text file is reported as unreadable HDF5, naming the path."""
    path = tmp_path / "notes.h5"
    path.write_text("not hdf5")
    with pytest.raises(InvalidScanError, match=re.escape(str(path))):
        load_phantom(path)
    with pytest.raises(FileNotFoundError, match="absent"):
        load_phantom(tmp_path / "absent.h5")
