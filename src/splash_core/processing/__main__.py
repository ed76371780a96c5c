"""Command line for HPC job scripts: ``python -m splash_core.processing {generate,reconstruct,multires}``.

Each command prints one JSON line describing what it wrote and exits 0. Bad
input (a missing file, a file not in Data Exchange layout, an empty TIFF
directory, an existing output) prints one ``error: ...`` line to stderr and
exits 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import tifffile

from splash_core.processing.errors import ProcessingError
from splash_core.processing.multires import tiff_stack_to_ome_zarr
from splash_core.processing.reconstruct import FILTERS, psnr, reconstruct_scan
from splash_core.processing.scan import generate_scan, load_phantom

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return the process exit code.

    Args:
        argv: arguments without the program name; default ``sys.argv[1:]``.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        report: dict[str, Any] = args.run(args)
    except (ProcessingError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report))
    return 0


def _generate(args: argparse.Namespace) -> dict[str, Any]:
    info = generate_scan(
        args.output,
        size=args.size,
        n_slices=args.slices,
        n_angles=args.angles,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    return {
        "command": "generate",
        "output": str(info.path),
        "shape": list(info.shape),
        "mu_scale": info.mu_scale,
        "seconds": round(info.seconds, 4),
    }


def _reconstruct(args: argparse.Namespace) -> dict[str, Any]:
    if (args.first is None) != (args.last is None):
        raise ValueError("give both --first and --last, or neither")
    slices = None if args.first is None else range(args.first, args.last + 1)
    result = reconstruct_scan(args.input, args.output_dir, filter=args.filter, slices=slices, center=args.center)
    score: float | None = None
    phantom = load_phantom(args.input)
    if phantom is not None and phantom.shape[1:] == result.shape:
        volume = np.stack([tifffile.imread(path) for path in result.paths])
        score = round(psnr(phantom[list(result.slices)], volume), 3)
    return {
        "command": "reconstruct",
        "outputs": [str(path) for path in result.paths],
        "filter": result.filter,
        "seconds": round(result.seconds, 4),
        "compute_seconds": round(result.compute_seconds, 4),
        "psnr": score,
    }


def _multires(args: argparse.Namespace) -> dict[str, Any]:
    result = tiff_stack_to_ome_zarr(
        args.tiff_dir,
        args.output,
        levels=args.levels,
        pixel_size=args.pixel_size,
        ngff_version=args.ngff,
        overwrite=args.overwrite,
    )
    return {
        "command": "multires",
        "output": str(result.path),
        "levels": result.levels,
        "shapes": [list(shape) for shape in result.shapes],
        "ngff_version": result.ngff_version,
        "seconds": round(result.seconds, 4),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m splash_core.processing",
        description="8.3.2 micro-CT processing: synthetic scans, FBP reconstruction, OME-Zarr pyramids.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="write a synthetic Data Exchange scan of a phantom")
    gen.add_argument("output", help="HDF5 file to write")
    gen.add_argument("--size", type=int, default=128, help="detector width in pixels (default 128)")
    gen.add_argument("--slices", type=int, default=8, help="detector rows (default 8)")
    gen.add_argument("--angles", type=int, default=180, help="projections over [0, 180) degrees (default 180)")
    gen.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    gen.add_argument("--overwrite", action="store_true", help="replace an existing file")
    gen.set_defaults(run=_generate)

    rec = commands.add_parser("reconstruct", help="reconstruct a Data Exchange scan into TIFF slices")
    rec.add_argument("input", help="Data Exchange HDF5 file")
    rec.add_argument("output_dir", help="directory for <stem>_recon_<slice>.tiff")
    rec.add_argument("--filter", choices=FILTERS, default="ramp", help="FBP filter (default ramp)")
    rec.add_argument("--first", type=int, help="first detector row to reconstruct")
    rec.add_argument("--last", type=int, help="last detector row to reconstruct (inclusive)")
    rec.add_argument("--center", type=float, help="rotation axis detector index (default width // 2)")
    rec.set_defaults(run=_reconstruct)

    mr = commands.add_parser("multires", help="convert a TIFF stack to multi-resolution OME-Zarr")
    mr.add_argument("tiff_dir", help="directory of TIFF slices (name order = z order)")
    mr.add_argument("output", help="OME-Zarr directory to create")
    mr.add_argument("--levels", type=int, default=3, help="resolution levels (default 3)")
    mr.add_argument("--pixel-size", type=float, default=1.0, help="voxel size in micrometers (default 1)")
    mr.add_argument("--ngff", choices=("0.4", "0.5"), default="0.4", help="0.4 = Zarr v2 (default), 0.5 = Zarr v3")
    mr.add_argument("--overwrite", action="store_true", help="replace an existing store")
    mr.set_defaults(run=_multires)
    return parser


if __name__ == "__main__":
    sys.exit(main())
