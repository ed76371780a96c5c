"""``python -m bench --mode quick|full [--only NAME[,NAME]] [--repeat N] [--out DIR]``.

Runs the scenarios on temporary local-facility workspaces and writes ``latest.json`` /
``latest.md`` (full) or ``quick.json`` / ``quick.md`` (quick) under ``bench/results/``.
Exits 0 when every scenario ran and its correctness checks passed, whether or not its goals
were met; 1 when a scenario crashed or a check failed; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.core import DEFAULT_OUT, CheckFailed, Context, ScenarioResult, log, tmp_root
from bench.report import environment, write
from bench.scenarios import SCENARIOS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("quick", "full"), default="quick", help="sizes and repeats (default quick)")
    parser.add_argument(
        "--only", default="", metavar="NAME[,NAME]", help=f"run only these scenarios: {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--repeat", type=int, default=None, metavar="N", help="repeats for every scenario")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help="where reports go")
    parser.add_argument("--no-profile", action="store_true", help="do not profile missed goals")
    return parser


def _interrupt(signum: int, _frame: object) -> None:
    # turn SIGTERM/SIGHUP into KeyboardInterrupt so every scenario's `finally` removes its temporary data
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; return the exit code."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    parser = _parser()
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if args.repeat is not None and args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    logging.basicConfig(level=logging.ERROR)  # splash logs INFO per file; keep it out of the timings
    base = "latest" if args.mode == "full" else "quick"
    if args.only:
        base += "-" + "-".join(names)
    ctx = Context(
        mode=args.mode,
        out=args.out.resolve(),
        tmp_root=tmp_root(),
        base=base,
        repeat=args.repeat,
        profile=not args.no_profile,
    )
    for stale in ctx.profile_dir.glob(f"{base}-*.txt"):  # profiles of this report's previous run
        stale.unlink()
    env = environment(ctx)
    started = time.perf_counter()
    results: list[ScenarioResult] = []
    failed = False
    for name in names:
        title, scenario = SCENARIOS[name]
        log(f"{name}: {title}")
        t0 = time.perf_counter()
        try:
            result = scenario(ctx)
        except CheckFailed as exc:
            result, failed = ScenarioResult(name, title, error=f"correctness check failed: {exc}"), True
            log(f"{name}: CHECK FAILED: {exc}")
        except Exception as exc:
            result, failed = ScenarioResult(name, title, error=f"crashed: {type(exc).__name__}: {exc}"), True
            log(f"{name}: CRASHED\n{traceback.format_exc()}")
        result.seconds = time.perf_counter() - t0
        results.append(result)
        for row in result.rows:
            met = "" if row.met is None else (" [goal met]" if row.met else " [GOAL MISSED]")
            log(f"  {row.measure}: {row.splash.text()} | {row.ratio_text()}{met}")
    json_path, md_path = write(ctx, env, results, time.perf_counter() - started)
    log(f"wrote {md_path} and {json_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
