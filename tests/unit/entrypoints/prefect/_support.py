"""Helpers for the Prefect tests: files on the local facility and where the ledger says they are."""

from __future__ import annotations

import os
from pathlib import Path


def put(workspace: Path, endpoint: str, rel: str, data: bytes, *, age_s: float = 0.0) -> Path:
    """Write ``data`` at ``rel`` on ``endpoint`` of the local facility (``age_s`` seconds old)."""
    path = workspace / "facilities" / endpoint / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age_s:
        old = path.stat().st_mtime - age_s
        os.utime(path, (old, old))
    return path


def batch(workspace: Path, folder: str, n: int, *, age_s: float = 0.0) -> list[str]:
    """``n`` small TIFF-named files under ``folder`` on data733; their paths relative to it."""
    paths = [f"{folder}/img_{i:04d}.tif" for i in range(n)]
    for i, rel in enumerate(paths):
        put(workspace, "data733", rel, os.urandom(1024 + i), age_s=age_s)
    return paths


def verified_on(config: Path, path: str) -> set[str]:
    """The endpoints where the ledger holds a current verified copy of ``path``."""
    from splash_core.entrypoints.api import open_config

    return {loc.endpoint for loc in open_config(config).status(path).locations}
