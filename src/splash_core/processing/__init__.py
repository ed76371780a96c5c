"""Scientific processing for the 8.3.2 micro-tomography pipeline, run inside HPC job containers.

Synthetic Data Exchange scans (:func:`generate_scan`), filtered back-projection
into 32-bit TIFF slices (:func:`reconstruct_scan`, :func:`fbp`) and TIFF stacks to
multi-resolution OME-Zarr (:func:`tiff_stack_to_ome_zarr`). Command line:
``python -m splash_core.processing {generate,reconstruct,multires} ...``.

This package imports nothing else from ``splash_core`` (enforced by
import-linter), so it can ship alone in a container image.
"""

from __future__ import annotations

import logging

from splash_core.processing.errors import (
    InputNotFoundError,
    InvalidScanError,
    InvalidStackError,
    OutputExistsError,
    ProcessingError,
)
from splash_core.processing.multires import MultiresResult, tiff_stack_to_ome_zarr
from splash_core.processing.phantom import phantom_projections, phantom_volume, shepp_logan
from splash_core.processing.reconstruct import FILTERS, ReconResult, fbp, psnr, reconstruct_scan
from splash_core.processing.scan import ScanInfo, generate_scan, load_phantom

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "FILTERS",
    "InputNotFoundError",
    "InvalidScanError",
    "InvalidStackError",
    "MultiresResult",
    "OutputExistsError",
    "ProcessingError",
    "ReconResult",
    "ScanInfo",
    "fbp",
    "generate_scan",
    "load_phantom",
    "phantom_projections",
    "phantom_volume",
    "psnr",
    "reconstruct_scan",
    "shepp_logan",
    "tiff_stack_to_ome_zarr",
]
