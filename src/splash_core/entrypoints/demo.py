"""``splash demo``: beamline 8.3.2 end to end on the embedded local facility.

Makes (or reuses) a workspace, writes a synthetic tomography scan on ``spot832``, runs the
8.3.2 dispatcher — verified copies spot832 → data832 → NERSC, reconstruction and OME-Zarr as
local "NERSC" jobs, results copied back to data832 scratch, catalog ingest, scheduled prunes —
and prints where everything is and how it was verified.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from splash_core.beamlines.bl832 import tiff_dir, zarr_store
from splash_core.domain.events import JobFinished
from splash_core.domain.paths import RelPath
from splash_core.entrypoints.api import Splash
from splash_core.entrypoints.config import load_settings
from splash_core.entrypoints.container import workspace_of
from splash_core.entrypoints.profiles import write_local_profile
from splash_core.processing.scan import generate_scan

BEAMLINE = "bl832"
RECON_PIPELINE = "nersc_recon"


def run_demo(workspace: Path, *, size: int = 128, slices: int = 16, console: Console | None = None) -> int:
    """Run the demo in ``workspace`` and return the exit code (0 when every step verified).

    Raises:
        InvalidInput: the workspace cannot be used.
        ConfigError: an existing ``splash.yaml`` there is invalid.
    """
    console = console or Console()
    workspace = workspace.expanduser().resolve()
    config_path = workspace / "splash.yaml"
    if not config_path.exists():
        write_local_profile(workspace)
        console.print(f"[bold]workspace[/] {workspace} (new local facility: {config_path})")
    else:
        console.print(f"[bold]workspace[/] {workspace} (reusing {config_path})")
    settings = load_settings(config_path)
    if settings.adapters.transfer != "local" or any(a != "local" for a in settings.adapters.hpc.values()):
        from splash_core.domain.errors import InvalidInput

        raise InvalidInput(f"{config_path} is not a local-profile configuration; give the demo its own --workspace")
    splash = Splash(settings)

    handler = RichHandler(console=console, show_path=False, show_time=True, markup=False)
    handler.setLevel(logging.INFO)
    package_logger = logging.getLogger("splash_core")
    previous_level = package_logger.level
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    try:
        stamp = splash.clock.now().strftime("%Y%m%d_%H%M%S")
        raw = RelPath.parse(f"scans/{stamp}_phantom.h5")
        spot = settings.endpoint("spot832")
        Path(spot.full_path(raw)).parent.mkdir(parents=True, exist_ok=True)
        with console.status(f"generating a synthetic 8.3.2 scan ({size} px, {slices} slices, 180 angles) ..."):
            info = generate_scan(spot.full_path(raw), size=size, n_slices=slices, n_angles=180, seed=int(stamp[-6:]))
        console.print(f"[bold]scan[/] spot832:{raw} shape {tuple(info.shape)} in {info.seconds:.2f} s")
        with console.status("running the 8.3.2 dispatcher: new file, then NERSC reconstruction ..."):
            report = splash.dispatch(BEAMLINE, [raw], check=True)
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)

    _summary(splash, console, raw, report.ok)
    for outcome in report.outcomes:
        colour = "green" if outcome.state.value in ("ok", "skipped") else "red"
        console.print(f"pipeline [{colour}]{outcome}[/]")
    return 0 if report.ok else 1


def _summary(splash: Splash, console: Console, raw: RelPath, ok: bool) -> None:
    status = splash.status(raw)
    table = Table(title=f"raw scan {raw}")
    table.add_column("endpoint")
    table.add_column("size", justify="right")
    table.add_column("checksum", overflow="fold")
    table.add_column("verified by")
    for loc in status.locations:
        table.add_row(loc.endpoint, f"{loc.size:,}", loc.checksum_text, loc.verification)
    console.print(table)

    outputs = Table(title="reconstruction outputs")
    outputs.add_column("endpoint")
    outputs.add_column("path", overflow="fold")
    outputs.add_column("files", justify="right")
    outputs.add_column("verified copies", justify="right")
    recon = splash.settings.beamline(BEAMLINE).processing.get(RECON_PIPELINE)
    endpoints = [recon.output_endpoint, *recon.return_to] if recon else []
    for name in endpoints:
        endpoint = splash.settings.endpoint(name)
        verified = splash.ledger.verified_paths(name)
        for rel in (tiff_dir(raw), zarr_store(raw)):
            files = list(splash.storage.list(endpoint, rel))
            n_verified = sum(1 for f in files if f.path in verified)
            outputs.add_row(name, rel.value, str(len(files)), str(n_verified))
    console.print(outputs)

    jobs: dict[str, JobFinished] = {}
    for rel in (raw, tiff_dir(raw), zarr_store(raw)):
        for event in splash.ledger.history(rel):
            if isinstance(event, JobFinished):
                jobs[event.job_id] = event
    job_table = Table(title="jobs")
    for column in ("job", "name", "facility", "state", "exit", "seconds"):
        job_table.add_column(column)
    for job in jobs.values():
        seconds = f"{job.seconds:.1f}" if job.seconds is not None else "?"
        job_table.add_row(job.job_id, job.name, job.facility, job.state.value, str(job.exit_code), seconds)
    console.print(job_table)

    psnr = _psnr_from_logs(splash, jobs.values())
    if psnr is not None:
        console.print(f"[bold]reconstruction quality[/]: PSNR {psnr:.1f} dB against the phantom")
    for catalog_id in status.catalog_ids:
        console.print(f"[bold]catalog[/]: raw dataset {catalog_id}")
    pending = splash.ledger.pending_prunes()
    prunes = Table(title="scheduled prunes (kept until retention ends and a copy verifies again)")
    for column in ("endpoint", "files", "first due", "checked against"):
        prunes.add_column(column)
    by_endpoint: dict[tuple[str, str], list[str]] = {}
    for prune in pending:
        by_endpoint.setdefault((prune.endpoint, prune.check_endpoint), []).append(prune.due_at.isoformat())
    for (endpoint_name, check), dues in sorted(by_endpoint.items()):
        prunes.add_row(endpoint_name, str(len(dues)), min(dues), check)
    console.print(prunes)
    verdict = "[green]all steps verified[/]" if ok else "[red]a step failed — see above[/]"
    console.print(f"{verdict}. Try: splash status {raw} --config {splash.settings.source_file}")


def _psnr_from_logs(splash: Splash, jobs: object) -> float | None:
    log_dir = workspace_of(splash.settings) / "jobs"
    for job in jobs:  # type: ignore[attr-defined]
        if not isinstance(job, JobFinished) or "reconstruct" not in job.name:
            continue
        log = log_dir / f"{job.job_id}.log"
        if not log.exists():
            continue
        for line in reversed(log.read_text(encoding="utf-8", errors="replace").splitlines()):
            if line.startswith("{"):
                try:
                    value = json.loads(line).get("psnr")
                except json.JSONDecodeError:
                    continue
                if isinstance(value, int | float):
                    return float(value)
    return None
