"""Scenario 2: a burst of many small files through the 7.3.3 dispatcher, against ``cp -r``.

The watcher hands new files to ``Splash.dispatch("bl733", paths)`` in batches of the
beamline's ``batch_files``; the new-file pipeline copies each batch data733 -> beegfs733 and
data733 -> nersc733_alsdev_raw (one verified transfer task per hop and batch), catalogues it
and schedules its prunes. Because 7.3.3 makes two copies, the alternative is ``cp -r`` of the
same tree twice. Each repeat uses a fresh workspace (a second dispatch of the same files
would rightly find them done).

Counted from the workspace database afterwards: transfer tasks (per hop and in all), pipeline
runs and step records, against the reference implementation's one Globus task and one flow
run per file. Checked: every dispatch ok, every file verified in the ledger on both
destinations and equal byte for byte to its source, one prune pending per file.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.core import (
    Context,
    Facility,
    Goal,
    Measured,
    Row,
    ScenarioResult,
    check,
    fmt,
    local_facility,
    log,
    profile,
    relative,
    run,
    settle,
    timed,
)

NAME = "burst"
TITLE = "Burst of small files through the 7.3.3 dispatcher"
BEAMLINE = "bl733"
SOURCE = "data733"
DESTINATIONS = ("beegfs733", "nersc733_alsdev_raw")
FILE_BYTES = 64 * 1024
PER_FOLDER = 1000


def _write_tree(root: Path, n: int) -> list[str]:
    """``n`` distinct 64 KiB files below ``root/burst``; their paths relative to ``root``."""
    block = bytearray(os.urandom(FILE_BYTES))
    paths = []
    for i in range(n):
        rel = f"burst/scan{i // PER_FOLDER:03d}/img{i:06d}.tif"
        target = root / rel
        if i % PER_FOLDER == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
        block[:8] = i.to_bytes(8, "little")
        target.write_bytes(block)
        paths.append(rel)
    return paths


def _dispatch_all(fac: Facility, paths: list[str], batch: int) -> int:
    calls = 0
    for start in range(0, len(paths), batch):
        report = fac.splash.dispatch(BEAMLINE, paths[start : start + batch])
        check(report.ok, f"dispatch of files {start}..{start + batch} failed: {[str(o) for o in report.outcomes]}")
        calls += 1
    return calls


def _counts(fac: Facility) -> dict[str, object]:
    tasks: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for request, status in fac.query("SELECT request, status FROM transfer_tasks"):
        tasks[json.loads(request)["destination"]["name"]] += 1
        statuses[status] += 1
    step_keys = [key for (key,) in fac.query("SELECT key FROM steps")]
    prefix = f"{BEAMLINE}/new_file/"
    runs = {"/".join(k.split("/")[:3]) for k in step_keys if k.startswith(prefix)}
    located = dict(fac.query("SELECT endpoint, count(*) FROM locations GROUP BY endpoint"))
    pending = dict(fac.query("SELECT endpoint, count(*) FROM prunes GROUP BY endpoint"))
    return {
        "tasks_by_destination": dict(tasks),
        "task_statuses": dict(statuses),
        "pipeline_runs": len(runs),
        "pipeline_step_records": sum(1 for k in step_keys if k.startswith(prefix)),
        "move_batch_records": sum(1 for k in step_keys if k.startswith("move/")),
        "verified_by_endpoint": located,
        "pending_prunes_by_endpoint": pending,
    }


def _verify_copies(fac: Facility, paths: list[str]) -> None:
    source = fac.folder(SOURCE)
    for name in DESTINATIONS:
        folder = fac.folder(name)
        for rel in paths:
            check((folder / rel).read_bytes() == (source / rel).read_bytes(), f"{rel} on {name} differs from source")


def run_scenario(ctx: Context) -> ScenarioResult:
    """Dispatch 500 (quick) or 10,000 (full) files of 64 KiB and compare with ``cp -r`` twice."""
    n = ctx.pick(500, 10_000)
    repeats = ctx.repeats(1, 2)
    result = ScenarioResult(NAME, TITLE, params={"files": n, "file_bytes": FILE_BYTES, "repeats": repeats})
    splash_s: list[float] = []
    cp_s: list[float] = []
    counts: dict[str, object] = {}
    batch = 0
    for r in range(repeats):
        with local_facility(ctx, NAME) as fac:
            batch = max(1, fac.splash.settings.beamline(BEAMLINE).batch_files)
            log(f"{NAME}: repeat {r + 1}/{repeats}: writing {n} files")
            paths = _write_tree(fac.folder(SOURCE), n)
            tree = fac.folder(SOURCE) / "burst"

            def copy_twice(fac: Facility = fac, tree: Path = tree) -> float:
                targets = [fac.root / "cp-a", fac.root / "cp-b"]
                seconds = timed(lambda: [run(["cp", "-r", tree, t]) for t in targets])
                for t in targets:
                    shutil.rmtree(t)
                return seconds

            calls = 0

            def dispatch(fac: Facility = fac, paths: list[str] = paths, batch: int = batch) -> float:
                def go() -> None:
                    nonlocal calls
                    calls = _dispatch_all(fac, paths, batch)

                return timed(go)

            # alternate which goes first
            order: list[Callable[[], float]] = [copy_twice, dispatch]
            if r % 2:
                order.reverse()
            for contender in order:
                settle()
                took = contender()
                (cp_s if contender is copy_twice else splash_s).append(took)
            log(f"{NAME}: repeat {r + 1}: dispatch {fmt(splash_s[-1])} s, cp -r ×2 {fmt(cp_s[-1])} s")
            counts = _counts(fac)
            counts["dispatch_calls"] = calls
            _check_counts(counts, n, batch)
            _verify_copies(fac, paths)
    result.checks += [
        f"every dispatch ok; every one of the {n} files verified in the ledger on both {' and '.join(DESTINATIONS)}",
        "every copy equals its source byte for byte; every transfer task SUCCEEDED; one prune pending per file",
    ]
    result.details["counts"] = counts
    _rows(result, n, batch, Measured.of(splash_s, "s"), Measured.of(cp_s, "s"), counts)
    if result.missed and ctx.profile:
        result.limits.append(_limits(ctx, min(n, 2000)))
    result.notes += [
        f"7.3.3 makes two copies of every file (data733 → {DESTINATIONS[0]} and → {DESTINATIONS[1]}), so the "
        "alternative is `cp -r` of the same tree twice (sequentially, no checksum, no fsync). Files are "
        f"{FILE_BYTES // 1024} KiB, {PER_FOLDER} per folder, in the page cache.",
        f"Dispatch is batched as the watcher does: one `Splash.dispatch` per `batch_files` = {batch} files. "
        "Each file's copy is fsynced and verified, and recorded (source and copy) in the ledger.",
        f"Reference implementation: one Globus task and at least one flow run per file (SPEC), i.e. {n:,} of each.",
    ]
    return result


def _check_counts(counts: dict[str, object], n: int, batch: int) -> None:
    verified = counts["verified_by_endpoint"]
    assert isinstance(verified, dict)
    for name in DESTINATIONS:
        check(verified.get(name, 0) == n, f"{verified.get(name, 0)} of {n} files verified on {name}")
    statuses = counts["task_statuses"]
    assert isinstance(statuses, dict)
    check(set(statuses) == {"SUCCEEDED"}, f"transfer tasks ended {statuses}, not all SUCCEEDED")
    pending = counts["pending_prunes_by_endpoint"]
    assert isinstance(pending, dict)
    check(pending.get(SOURCE, 0) == n, f"{pending.get(SOURCE, 0)} prunes pending on {SOURCE}, expected {n}")
    expected_calls = -(-n // batch)
    check(counts["dispatch_calls"] == expected_calls, f"{counts['dispatch_calls']} dispatches, not {expected_calls}")


def _rows(
    result: ScenarioResult, n: int, batch: int, splash: Measured, cp: Measured, counts: dict[str, object]
) -> None:
    scenario = f"2. burst, {n:,} × {FILE_BYTES // 1024} KiB, bl733"
    tasks = counts["tasks_by_destination"]
    assert isinstance(tasks, dict)
    per_hop = max(tasks.values()) if tasks else 0
    total = sum(tasks.values())
    runs = int(str(counts["pipeline_runs"]))
    result.rows += [
        Row.compare(
            scenario,
            "wall time: dispatch (2 verified copies) vs cp -r ×2",
            splash,
            "cp -r ×2",
            cp,
            note=f"{fmt(splash.median / n * 1e3)} ms/file",
        ),
        Row.compare(
            scenario,
            "transfer tasks created, per hop",
            Measured.of([per_hop], "tasks"),
            "one per file (reference)",
            Measured.of([n], "tasks"),
            goal=Goal("≤ 10 per hop", "<=", 10, on="value"),
            note=f"{total} in all over {len(tasks)} hops",
        ),
        Row.compare(
            scenario,
            "pipeline runs (dispatch calls)",
            Measured.of([runs], "runs"),
            "one per file (reference)",
            Measured.of([n], "runs"),
            goal=Goal("≤ 10", "<=", 10, on="value"),
            note=(
                f"{counts['dispatch_calls']} dispatch calls, {counts['pipeline_step_records']} pipeline step "
                f"records, {counts['move_batch_records']} move-batch records"
            ),
        ),
    ]


def _limits(ctx: Context, n: int) -> str:
    with local_facility(ctx, f"{NAME}-profile") as fac:
        paths = _write_tree(fac.folder(SOURCE), n)
        batch = max(1, fac.splash.settings.beamline(BEAMLINE).batch_files)
        summary = profile(ctx, NAME, lambda: _dispatch_all(fac, paths, batch))
    return (
        f"burst ({n:,} files profiled, calling thread, {relative(summary.path)}): {summary.line()}. "
        "Per file the dispatcher records the source and the copy as verified for each of the two hops and "
        "schedules one prune: five ledger events, each its own fsync'd SQLite transaction."
    )
