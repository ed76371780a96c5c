"""`splash demo`: beamline 8.3.2 end to end on the local facility."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from splash_core.entrypoints.cli import app


def test_demo_runs_832_end_to_end(tmp_path: Path) -> None:
    """The demo verifies the raw scan on three endpoints and leaves TIFFs and an OME-Zarr on data832 scratch."""
    ws = tmp_path / "demo"
    result = CliRunner().invoke(
        app, ["demo", "--workspace", str(ws), "--size", "64", "--slices", "4"], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    facilities = ws / "facilities"
    (raw,) = (facilities / "spot832" / "scans").glob("*.h5")
    for endpoint in ("data832_raw", "nersc832_alsdev_raw"):
        assert (facilities / endpoint / "scans" / raw.name).read_bytes() == raw.read_bytes()
    stem = raw.stem
    tiffs = sorted((facilities / "data832_scratch" / stem / f"rec{stem}").glob("*.tif*"))
    assert len(tiffs) == 4
    zattrs = facilities / "data832_scratch" / stem / f"rec{stem}.zarr" / ".zattrs"
    assert "multiscales" in zattrs.read_text()
    assert "PSNR" in result.output
    assert "all steps verified" in result.output
    for endpoint in ("spot832", "data832_raw", "nersc832_alsdev_raw"):
        assert endpoint in result.output


def test_demo_refuses_a_non_local_config(tmp_path: Path) -> None:
    """A workspace whose splash.yaml is not the local profile is refused with exit 2."""
    (tmp_path / "splash.yaml").write_text("version: 1\n")
    result = CliRunner().invoke(app, ["demo", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
