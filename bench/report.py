"""The benchmark report: environment facts, then JSON and a markdown table of every row.

``write`` puts ``<base>.json`` and ``<base>.md`` in the output folder (``latest`` for full
runs, ``quick`` for quick runs, with ``-<names>`` appended when ``--only`` picked scenarios).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.core import REPO, Context, Row, ScenarioResult, fmt


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _filesystem(path: Path) -> str:
    """The file-system type and device of the mount holding ``path`` (from /proc/self/mounts)."""
    best, kind, device = "", "unknown", ""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return kind
    target = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind, device = mount, fields[2], fields[0]
    return f"{kind} ({device} on {best})"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1 << 20)
    except OSError:
        pass
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def environment(ctx: Context) -> dict[str, Any]:
    """Facts about the machine and software the numbers came from."""
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "load_average_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "tmp_dir": str(ctx.tmp_root),
        "tmp_filesystem": _filesystem(ctx.tmp_root),
        "commit": _commit(),
        "versions": {p: _version(p) for p in ("splash-core", "numpy", "scipy", "scikit-image", "blake3")},
    }


def _yes_no(met: bool | None) -> str:
    return "—" if met is None else ("**yes**" if met else "**no**")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _miss(row: Row) -> str:
    got = row.ratio_text() if row.goal is not None and row.goal.on == "ratio" else row.splash.text()
    return f"{row.measure}: {got}, goal {row.goal.text if row.goal is not None else '—'}"


def markdown(ctx: Context, env: dict[str, Any], results: list[ScenarioResult], seconds: float) -> str:
    """The report as markdown: environment, the table, what limits missed goals, notes, checks."""
    out = [
        f"# splash_core benchmarks ({ctx.mode} mode)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M %Z')} at commit `{env['commit']}` in {fmt(seconds)} s · "
        f"{env['cpus_usable']} CPUs ({env['cpu_model']}), {fmt(env['memory_gib'] or 0)} GiB RAM · "
        f"Python {env['python']} · temp data in `{env['tmp_dir']}`: {env['tmp_filesystem']} · "
        f"load average at start {', '.join(f'{x:.1f}' for x in env['load_average_at_start'])}.",
        "",
        "Times are medians over repeats with (min–max); ratios are splash/alternative of the medians "
        "(or alternative/splash where marked *faster*) with the per-round range. The machine was shared, "
        "so expect noise. Reproduce with `make bench` (full) or `make bench-quick`.",
        "",
        "| scenario | measure | splash | alternative | ratio | goal | met? |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        if result.error is not None:
            out.append(f"| {result.title} | **failed** | — | — | — | — | **no** |")
        for row in result.rows:
            splash = row.splash.text() + (f" · {row.note}" if row.note else "")
            alternative = f"{row.alternative}: {row.alt.text()}" if row.alt is not None else row.alternative or "—"
            goal = row.goal.text if row.goal is not None else "—"
            out.append(
                "| "
                + " | ".join(
                    _cell(c)
                    for c in (row.scenario, row.measure, splash, alternative, row.ratio_text(), goal, _yes_no(row.met))
                )
                + " |"
            )
    missed = [(r, row) for r in results for row in r.missed]
    out += ["", "## Goals missed and what limits them", ""]
    if not missed:
        out.append("Every goal was met.")
    for result in results:
        if result.missed:
            names = "; ".join(_miss(row) for row in result.missed)
            out.append(f"- **{result.title}** — missed: {names}.")
            out += [f"  - What limits it: {line}" for line in result.limits] or ["  - (not profiled)"]
    out += ["", "## How each scenario was measured", ""]
    for result in results:
        out.append(f"**{result.title}** ({fmt(result.seconds)} s)")
        out += [f"- {note}" for note in result.notes]
        out += [f"- Checked: {c}" for c in result.checks]
        if result.error is not None:
            out.append(f"- **Failed:** {result.error}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def write(ctx: Context, env: dict[str, Any], results: list[ScenarioResult], seconds: float) -> tuple[Path, Path]:
    """Write ``<base>.json`` and ``<base>.md``; return their paths."""
    ctx.out.mkdir(parents=True, exist_ok=True)
    env = {**env, "load_average_at_end": os.getloadavg()}
    data = {
        "mode": ctx.mode,
        "seconds": seconds,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": env,
        "scenarios": [r.as_dict() for r in results],
        "goals": {
            "total": sum(1 for r in results for row in r.rows if row.goal is not None),
            "missed": [f"{r.name}: {row.measure}" for r in results for row in r.missed],
        },
    }
    json_path, md_path = ctx.out / f"{ctx.base}.json", ctx.out / f"{ctx.base}.md"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(ctx, env, results, seconds), encoding="utf-8")
    return json_path, md_path
