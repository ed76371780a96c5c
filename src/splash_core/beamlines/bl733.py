"""Beamline 7.3.3: SAXS/WAXS/GISAXS (many small 2D scattering images).

A file watcher on ``data733`` hands finished scans to the dispatcher in batches. New files go
data733 -> BeeGFS (Lamarr staging) and data733 -> NERSC CFS as one transfer task per hop and
batch (at most ``transfer.max_files_per_batch`` files each), are catalogued, and data733 is
pruned 180 days after the NERSC copy is verified. Later the NERSC CFS copy is archived to HPSS
tape (a scheduled ``archive`` task, ``archive.after_days`` after the copy), grouped by proposal
(the first path component, or the component at ``archive.proposal_depth``) and beam cycle, and
the tape location is recorded in the catalog.

HPC analysis on request is configuration: a ``processing`` block and a decision to run it.
"""

from __future__ import annotations

from splash_core.beamlines.base import BeamlineModule

MODULE = BeamlineModule(
    id="bl733",
    description="7.3.3 SAXS/WAXS/GISAXS: batches of small files to BeeGFS and NERSC, HPSS tape archive",
)

__all__ = ["MODULE"]
