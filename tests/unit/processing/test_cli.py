"""The job-script command line: python -m splash_core.processing {generate,reconstruct,multires}."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import zarr

from splash_core.processing.__main__ import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_reconstruct_multires_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each step prints one JSON line; reconstruction reports a PSNR above 20 dB for a phantom scan."""
    scan = tmp_path / "scan.h5"
    code, out, _ = _run(capsys, "generate", str(scan), "--size", "48", "--slices", "4", "--angles", "60")
    assert code == 0
    assert json.loads(out)["shape"] == [60, 4, 48]

    code, out, _ = _run(capsys, "reconstruct", str(scan), str(tmp_path / "recon"), "--filter", "shepp-logan")
    assert code == 0
    report = json.loads(out)
    assert len(report["outputs"]) == 4
    assert report["psnr"] > 20
    assert report["seconds"] > 0

    code, out, _ = _run(capsys, "multires", str(tmp_path / "recon"), str(tmp_path / "scan.zarr"), "--levels", "3")
    assert code == 0
    assert json.loads(out)["levels"] == 3
    assert "multiscales" in zarr.open_group(tmp_path / "scan.zarr", mode="r").attrs


def test_reconstruct_a_range_of_slices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--first/--last select detector rows; both are required together."""
    scan = tmp_path / "scan.h5"
    _run(capsys, "generate", str(scan), "--size", "32", "--slices", "4", "--angles", "30")
    code, out, _ = _run(capsys, "reconstruct", str(scan), str(tmp_path / "r"), "--first", "1", "--last", "2")
    assert code == 0
    assert [Path(p).name for p in json.loads(out)["outputs"]] == ["scan_recon_00001.tiff", "scan_recon_00002.tiff"]
    code, _, err = _run(capsys, "reconstruct", str(scan), str(tmp_path / "r"), "--first", "1")
    assert code == 1
    assert "--last" in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["reconstruct", "{tmp}/missing.h5", "{tmp}/out"], "missing.h5"),
        (["reconstruct", "{tmp}/text.h5", "{tmp}/out"], "text.h5"),
        (["multires", "{tmp}/empty", "{tmp}/out.zarr"], "empty"),
        (["multires", "{tmp}/absent", "{tmp}/out.zarr"], "absent"),
    ],
)
def test_bad_input_exits_nonzero_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    """Missing files, non-Data-Exchange files and empty TIFF directories give exit 1 and one stderr line."""
    (tmp_path / "text.h5").write_text("not hdf5")
    (tmp_path / "empty").mkdir()
    code, out, err = _run(capsys, *(a.format(tmp=tmp_path) for a in argv))
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert needle in err


def test_runs_as_a_module(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m splash_core.processing`` is the entry point job scripts call; it exits with main's code."""
    monkeypatch.delitem(sys.modules, "splash_core.processing.__main__")  # run it fresh, as -m does
    monkeypatch.setattr(sys, "argv", ["splash_core.processing", "multires", str(tmp_path), str(tmp_path / "x.zarr")])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("splash_core.processing", run_name="__main__", alter_sys=True)
    assert exited.value.code == 1
    assert "no .tif or .tiff files" in capsys.readouterr().err
