"""Job scripts for the local facility: the same shape as the Slurm scripts run at NERSC.

The body runs the processing code (``python -m splash_core.processing``) with the
interpreter splash itself runs on, instead of a container image on Perlmutter.
Parameters are substituted shell-quoted by :class:`~splash_core.adapters.local.jobs.LocalJobs`.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping

_HEADER = """#!/bin/bash
#SBATCH --job-name=$job_name
#SBATCH --output=$job_dir/$job_id.log
#SBATCH --nodes=1
set -euo pipefail
"""

_RECONSTRUCT = """echo "reconstructing $$(basename $input) on $$(hostname)"
{python} -m splash_core.processing reconstruct $input $output_dir
"""

_MULTIRES = """echo "building a multi-resolution OME-Zarr from $tiff_dir"
{python} -m splash_core.processing multires $tiff_dir $output
"""


def local_job_templates(python: str | None = None) -> Mapping[str, str]:
    """Templates by job kind (``reconstruct``, ``multires``) for :class:`LocalJobs`.

    Args:
        python: the interpreter that runs the processing code; default: this one.
    """
    interpreter = shlex.quote(python or sys.executable).replace("$", "$$")
    return {
        "reconstruct": _HEADER + _RECONSTRUCT.format(python=interpreter),
        "multires": _HEADER + _MULTIRES.format(python=interpreter),
    }
