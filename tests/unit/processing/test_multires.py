"""TIFF stacks to multi-resolution OME-Zarr (NGFF 0.4 on Zarr v2, NGFF 0.5 on Zarr v3)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Multiscales, Reader

from splash_core.processing import (
    InputNotFoundError,
    InvalidStackError,
    MultiresResult,
    OutputExistsError,
    tiff_stack_to_ome_zarr,
)


def _write_stack(directory: Path, volume: np.ndarray) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for z, image in enumerate(volume):
        tifffile.imwrite(directory / f"scan_recon_{z:05d}.tiff", image)
    return directory


@pytest.fixture
def volume() -> np.ndarray:
    """Odd-sized float32 volume, so edge padding is exercised on every axis."""
    return np.random.default_rng(0).random((9, 33, 20), dtype=np.float32)


def _block_mean(volume: np.ndarray) -> np.ndarray:
    pad = [(0, s % 2) for s in volume.shape]
    padded = np.pad(volume.astype(np.float64), pad, mode="edge")
    z, y, x = padded.shape
    return padded.reshape(z // 2, 2, y // 2, 2, x // 2, 2).mean(axis=(1, 3, 5))


def test_pyramid_levels_and_values(tmp_path: Path, volume: np.ndarray) -> None:
    """Three levels: the stack itself, then 2x2x2 block means (edge-padded), all float32."""
    result = tiff_stack_to_ome_zarr(_write_stack(tmp_path / "tiffs", volume), tmp_path / "out.zarr", chunks=(2, 16, 16))
    assert isinstance(result, MultiresResult)
    assert result.levels == 3
    assert result.shapes == ((9, 33, 20), (5, 17, 10), (3, 9, 5))
    assert result.n_files == 9
    group = zarr.open_group(tmp_path / "out.zarr", mode="r")
    level0, level1, level2 = (np.asarray(group[str(k)][...]) for k in range(3))
    np.testing.assert_array_equal(level0, volume)
    np.testing.assert_allclose(level1, _block_mean(volume), rtol=1e-6)
    np.testing.assert_allclose(level2, _block_mean(level1), rtol=1e-6)
    assert level2.dtype == np.float32


def test_ngff_04_metadata_is_valid(tmp_path: Path, volume: np.ndarray) -> None:
    """Zarr v2 group with NGFF 0.4 multiscales: typed z/y/x axes with units, scale per level."""
    tiff_stack_to_ome_zarr(_write_stack(tmp_path / "tiffs", volume), tmp_path / "out.zarr", pixel_size=0.65)
    group = zarr.open_group(tmp_path / "out.zarr", mode="r")
    assert group.metadata.zarr_format == 2
    (multiscale,) = group.attrs["multiscales"]
    assert multiscale["version"] == "0.4"
    assert multiscale["axes"] == [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"]
    assert [d["path"] for d in multiscale["datasets"]] == ["0", "1", "2"]
    for k, dataset in enumerate(multiscale["datasets"]):
        scale = dataset["coordinateTransformations"][0]
        assert scale["type"] == "scale"
        assert scale["scale"] == pytest.approx([0.65 * 2**k] * 3)
    assert (tmp_path / "out.zarr" / "0" / "0" / "0" / "0").is_file()  # "/" chunk key separator


def test_readable_by_ome_zarr_reader(tmp_path: Path, volume: np.ndarray) -> None:
    """ome-zarr-py finds one multiscales image with every level and the data intact."""
    tiff_stack_to_ome_zarr(_write_stack(tmp_path / "tiffs", volume), tmp_path / "out.zarr")
    location = parse_url(str(tmp_path / "out.zarr"))
    assert location is not None
    (node,) = list(Reader(location)())
    assert node.load(Multiscales) is not None
    assert [level.shape for level in node.data] == [(9, 33, 20), (5, 17, 10), (3, 9, 5)]
    np.testing.assert_array_equal(np.asarray(node.data[0]), volume)
    assert [axis["name"] for axis in node.metadata["axes"]] == ["z", "y", "x"]


def test_ngff_05_on_zarr_v3_is_readable(tmp_path: Path, volume: np.ndarray) -> None:
    """The NGFF 0.5 variant is a Zarr v3 group with an "ome" attribute that ome-zarr-py reads."""
    tiff_stack_to_ome_zarr(_write_stack(tmp_path / "tiffs", volume), tmp_path / "out.zarr", ngff_version="0.5")
    group = zarr.open_group(tmp_path / "out.zarr", mode="r")
    assert group.metadata.zarr_format == 3
    assert group.attrs["ome"]["version"] == "0.5"
    assert group["0"].metadata.dimension_names == ("z", "y", "x")
    location = parse_url(str(tmp_path / "out.zarr"))
    assert location is not None
    (node,) = list(Reader(location)())
    assert [level.shape for level in node.data] == [(9, 33, 20), (5, 17, 10), (3, 9, 5)]


def test_integer_stacks_keep_their_dtype(tmp_path: Path) -> None:
    """uint16 slices give uint16 levels with rounded means."""
    volume = np.full((4, 4, 4), 7, dtype=np.uint16)
    volume[0, 0, 0] = 8
    tiff_stack_to_ome_zarr(_write_stack(tmp_path / "tiffs", volume), tmp_path / "out.zarr")
    level1 = zarr.open_group(tmp_path / "out.zarr", mode="r")["1"]
    assert level1.dtype == np.uint16
    assert int(level1[0, 0, 0]) == 7  # 57 / 8 = 7.125 rounds to 7


def test_tiny_volume_stops_at_one_voxel(tmp_path: Path) -> None:
    """A 1x2x2 stack cannot be halved twice, so it gets the two levels that exist."""
    result = tiff_stack_to_ome_zarr(
        _write_stack(tmp_path / "tiffs", np.ones((1, 2, 2), np.float32)), tmp_path / "out.zarr", levels=3
    )
    assert result.shapes == ((1, 2, 2), (1, 1, 1))
    assert result.scales[1] == (1.0, 2.0, 2.0)


def test_empty_directory_is_refused(tmp_path: Path) -> None:
    """No TIFFs is an InvalidStackError (a ValueError) naming the directory; nothing is written."""
    empty = tmp_path / "tiffs"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(InvalidStackError, match=re.escape(str(empty))):
        tiff_stack_to_ome_zarr(empty, tmp_path / "out.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiffs"]


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    """A missing TIFF directory is a FileNotFoundError naming it."""
    missing = tmp_path / "nothing"
    with pytest.raises(InputNotFoundError, match=re.escape(str(missing))):
        tiff_stack_to_ome_zarr(missing, tmp_path / "out.zarr")
    with pytest.raises(FileNotFoundError):
        tiff_stack_to_ome_zarr(missing, tmp_path / "out.zarr")


def test_mismatched_slice_is_refused_and_leaves_nothing(tmp_path: Path, volume: np.ndarray) -> None:
    """A slice of another shape is named in the error and no partial store remains."""
    tiffs = _write_stack(tmp_path / "tiffs", volume)
    tifffile.imwrite(tiffs / "scan_recon_00004.tiff", np.zeros((5, 5), np.float32))
    with pytest.raises(InvalidStackError, match="scan_recon_00004"):
        tiff_stack_to_ome_zarr(tiffs, tmp_path / "out.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiffs"]


def test_existing_output_needs_overwrite(tmp_path: Path, volume: np.ndarray) -> None:
    """An existing store is kept unless overwrite is asked for, then replaced whole."""
    tiffs = _write_stack(tmp_path / "tiffs", volume)
    target = tmp_path / "out.zarr"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(OutputExistsError, match=re.escape(str(target))):
        tiff_stack_to_ome_zarr(tiffs, target)
    tiff_stack_to_ome_zarr(tiffs, target, overwrite=True)
    assert not (target / "old").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr", "tiffs"]


def test_bad_options_are_refused(tmp_path: Path, volume: np.ndarray) -> None:
    """Zero levels, malformed chunks and unknown NGFF versions are ValueErrors."""
    tiffs = _write_stack(tmp_path / "tiffs", volume)
    with pytest.raises(ValueError, match="levels"):
        tiff_stack_to_ome_zarr(tiffs, tmp_path / "a.zarr", levels=0)
    with pytest.raises(ValueError, match="chunks"):
        tiff_stack_to_ome_zarr(tiffs, tmp_path / "a.zarr", chunks=(1, 2))
    with pytest.raises(ValueError, match="ngff_version"):
        tiff_stack_to_ome_zarr(tiffs, tmp_path / "a.zarr", ngff_version="0.6")  # type: ignore[arg-type]
