"""Scenario 5: orchestration overhead per file, on the in-memory fakes (no I/O at all).

The 7.3.3 dispatcher runs over ``tests.fakes`` (FakeFacility: fake storage, transfer, ledger,
catalog, scheduler, clock) with the production configuration, in batches of the beamline's
``batch_files``: per file that is two verified copies, catalogue records and a scheduled
prune, with every byte in memory. What is left is the domain's own cost per file: planning,
batching, idempotency keys, verification, ledger events, steps. ``MoveService`` alone (one
hop) is shown too. Growth must be linear: the per-file cost at the largest size is compared
with the one at the middle size.

Note the fakes are part of what is measured (they are simple, not tuned, in-memory stores).
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.core import REPO, Context, Goal, Measured, Row, ScenarioResult, check, log, profile, relative

if TYPE_CHECKING:
    from splash_core.beamlines import BeamlineServices
    from splash_core.domain.paths import RelPath

NAME = "overhead"
TITLE = "Orchestration overhead per file (domain on fakes)"
BEAMLINE = "bl733"
LINEAR_TOLERANCE = 1.25
"""Per-file cost at the largest size may be at most this many times the one at the middle size."""


def _services() -> tuple[BeamlineServices, Any]:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.fakes import FakeFacility

    from splash_core.beamlines import BeamlineServices
    from splash_core.entrypoints.config import settings_from_dict
    from splash_core.entrypoints.profiles import production_dict

    settings = settings_from_dict(production_dict(), base_dir=Path("/"), check_secrets=False)
    fac = FakeFacility(endpoints=dict(settings.endpoints))
    services = BeamlineServices(
        settings=settings,
        transfer=fac.transfer,
        storage=fac.storage,
        hpc=fac.hpc,
        tape=fac.tape,
        catalog=fac.catalog,
        scheduler=fac.scheduler,
        ledger=fac.ledger,
        clock=fac.clock,
    )
    return services, fac


def _files(fac: Any, n: int) -> list[RelPath]:
    endpoint = fac.endpoints["data733"]
    data = [i.to_bytes(8, "little") * 8 for i in range(n)]
    return [fac.storage.put(endpoint, f"run/s{i // 1000:03d}/img{i:06d}.tif", data[i]) for i in range(n)]


def _dispatch(services: BeamlineServices, paths: list[RelPath]) -> int:
    from splash_core.beamlines import dispatch

    batch = max(1, services.settings.beamline(BEAMLINE).batch_files)
    calls = 0
    for start in range(0, len(paths), batch):
        report = dispatch(services, BEAMLINE, paths[start : start + batch])
        check(report.ok, f"dispatch on fakes failed: {[str(o) for o in report.outcomes]}")
        calls += 1
    return calls


def _one_dispatch_run(n: int) -> float:
    services, fac = _services()
    paths = _files(fac, n)
    start = time.perf_counter()
    calls = _dispatch(services, paths)
    seconds = time.perf_counter() - start
    for name in ("beegfs733", "nersc733_alsdev_raw"):
        verified = len(fac.ledger.verified_paths(name))
        check(verified == n, f"{verified} of {n} files verified on {name} (fakes)")
    check(fac.transfer.tasks_created == 2 * calls, f"{fac.transfer.tasks_created} fake tasks for {calls} dispatches")
    return seconds


def _one_move_run(n: int) -> float:
    services, fac = _services()
    paths = _files(fac, n)
    source, destination = services.endpoint("data733"), services.endpoint("beegfs733")
    start = time.perf_counter()
    report = services.mover().move(source, destination, paths, label="bench overhead")
    seconds = time.perf_counter() - start
    check(report.files == n, f"MoveService verified {report.files} of {n} files (fakes)")
    return seconds


def run_scenario(ctx: Context) -> ScenarioResult:
    """Per-file cost at 1k and 5k files (quick) or 1k, 10k and 100k (full)."""
    sizes: list[int] = ctx.pick([1_000, 5_000], [1_000, 10_000, 100_000])
    rounds = ctx.repeats(3, 3)
    result = ScenarioResult(NAME, TITLE, params={"sizes": sizes, "rounds": rounds})
    per_file: dict[int, Measured] = {}
    move_per_file: dict[int, Measured] = {}
    for n in sizes:
        reps = rounds if n <= 10_000 else max(1, min(rounds, 2))
        log(f"{NAME}: {n:,} files × {reps}")
        per_file[n] = Measured.of([_one_dispatch_run(n) / n * 1e3 for _ in range(reps)], "ms/file")
        move_per_file[n] = Measured.of([_one_move_run(n) / n * 1e3 for _ in range(reps)], "ms/file")
    small, middle, large = sizes[0], sizes[-2], sizes[-1]
    scenario = "5. overhead on fakes, bl733 dispatch"
    for n in sizes:
        goal = Goal("≤ 1 ms/file", "<=", 1.0, on="value") if n == middle else None
        result.rows.append(
            Row(
                scenario,
                f"per file at {n:,} files",
                per_file[n],
                goal=goal,
                note=f"MoveService alone (one hop): {move_per_file[n].text()}",
            )
        )
    result.rows.append(
        Row.compare(
            scenario,
            f"growth: per-file cost at {large:,} / at {middle:,}",
            per_file[large],
            f"per file at {middle:,}",
            per_file[middle],
            goal=Goal(f"≤ {LINEAR_TOLERANCE}× (linear)", "<=", LINEAR_TOLERANCE),
        )
    )
    result.checks.append("every fake dispatch ok; every file verified on both destinations; 2 tasks per batch")
    for row in result.missed:
        if ctx.profile:
            n = large if row.goal is not None and row.goal.on == "ratio" else middle
            services, fac = _services()
            paths = _files(fac, n)
            summary = profile(ctx, f"{NAME}-{n}", partial(_dispatch, services, paths))
            result.limits.append(f"{row.measure} ({n:,} files, {relative(summary.path)}): {summary.line()}")
    result.notes += [
        "Domain only: `tests.fakes.FakeFacility` with the production configuration; the fake transfer service does "
        "not checksum, so MoveService checksums both ends itself (in memory). Files are 64 bytes.",
        f"'Linear' is read as: per-file cost at {large:,} files within {LINEAR_TOLERANCE}× of that at {middle:,}. "
        f"Smallest size ({small:,}) shown for reference. The reference implementation paid ~1 s of orchestrator "
        "overhead per flow run, one or more per file (SPEC).",
    ]
    result.details["per_file_ms"] = {str(n): m.as_dict() for n, m in per_file.items()}
    result.details["move_per_file_ms"] = {str(n): m.as_dict() for n, m in move_per_file.items()}
    return result
