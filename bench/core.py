"""Shared machinery of the benchmarks: measurements, goals, table rows, workspaces, timing, profiling.

Every scenario returns a :class:`ScenarioResult` whose :class:`Row` objects compare a splash
measurement with an alternative and, where there is one, a :class:`Goal`. Times are medians
over repeats with their min–max; contenders of one scenario are interleaved round by round
(in a shuffled order) so the noise of a shared machine falls on all of them alike.

Correctness checks inside scenarios raise :class:`CheckFailed`; that (or any crash) is the
only thing that makes ``python -m bench`` exit non-zero. Missed goals never do.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pyinstrument.frame import Frame

    from splash_core.entrypoints.api import Splash

Mode = Literal["quick", "full"]

REPO = Path(__file__).resolve().parent.parent
"""The repository root (``tests.fakes`` is imported from here)."""

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


class CheckFailed(Exception):
    """A correctness check inside a scenario failed; the run exits non-zero."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`CheckFailed` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


# --- measurements, goals, rows -------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """Repeated measurements of one quantity; shown as median (min–max)."""

    values: tuple[float, ...]
    unit: str

    @classmethod
    def of(cls, values: Sequence[float], unit: str) -> Measured:
        """A measurement from ``values`` (at least one)."""
        if not values:
            raise ValueError("a measurement needs at least one value")
        return cls(tuple(float(v) for v in values), unit)

    @property
    def median(self) -> float:
        """The median value."""
        return float(statistics.median(self.values))

    @property
    def low(self) -> float:
        """The smallest value."""
        return min(self.values)

    @property
    def high(self) -> float:
        """The largest value."""
        return max(self.values)

    def text(self) -> str:
        """``median unit (min–max)``, or just the value when there is one or all are equal."""
        body = f"{fmt(self.median)} {self.unit}"
        if len(self.values) > 1 and self.low != self.high:
            body += f" ({fmt(self.low)}–{fmt(self.high)})"
        return body

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the JSON report."""
        return {"unit": self.unit, "median": self.median, "min": self.low, "max": self.high, "values": self.values}


def fmt(value: float) -> str:
    """A number with about three significant digits (integers stay whole)."""
    if value == int(value) and abs(value) >= 1:
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2g}"


@dataclass(frozen=True)
class Goal:
    """A target for a row: its ``ratio`` (or its splash ``value``) must be ``<=``/``>=`` ``threshold``."""

    text: str
    op: Literal["<=", ">="]
    threshold: float
    on: Literal["ratio", "value"] = "ratio"

    def met(self, value: float, ratio: float | None) -> bool | None:
        """Whether the goal is met; None when the ratio it needs is missing."""
        subject = value if self.on == "value" else ratio
        if subject is None:
            return None
        return subject <= self.threshold if self.op == "<=" else subject >= self.threshold


@dataclass
class Row:
    """One line of the results table.

    ``ratio`` is ``splash / alternative`` (how many times the time of the alternative), or for
    ``speedup`` rows ``alternative / splash`` (how many times faster splash is). ``paired``
    holds the same ratio per round when both sides were measured in the same rounds.
    """

    scenario: str
    measure: str
    splash: Measured
    alternative: str = ""
    alt: Measured | None = None
    ratio: float | None = None
    speedup: bool = False
    paired: tuple[float, ...] = ()
    goal: Goal | None = None
    note: str = ""

    @classmethod
    def compare(
        cls,
        scenario: str,
        measure: str,
        splash: Measured,
        alternative: str,
        alt: Measured,
        *,
        speedup: bool = False,
        goal: Goal | None = None,
        note: str = "",
        paired: bool = True,
    ) -> Row:
        """A row comparing two measurements by the ratio of their medians.

        With ``paired`` (both measured once per round, interleaved) the ratio of each round is kept too.
        """
        if speedup:
            ratio = alt.median / splash.median if splash.median else None
            pairs = zip(alt.values, splash.values, strict=False)
        else:
            ratio = splash.median / alt.median if alt.median else None
            pairs = zip(splash.values, alt.values, strict=False)
        rounds = tuple(a / b for a, b in pairs if b) if paired and len(splash.values) == len(alt.values) > 1 else ()
        return cls(scenario, measure, splash, alternative, alt, ratio, speedup, rounds, goal, note)

    @property
    def met(self) -> bool | None:
        """Whether the goal is met (None without a goal)."""
        return None if self.goal is None else self.goal.met(self.splash.median, self.ratio)

    def ratio_text(self) -> str:
        """The ratio as shown in the table, with the per-round range when there is one."""
        if self.ratio is None:
            return "—"
        text = f"{fmt(self.ratio)}×" + (" faster" if self.speedup else "")
        if self.paired and min(self.paired) != max(self.paired):
            text += f" ({fmt(min(self.paired))}–{fmt(max(self.paired))})"
        return text

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the JSON report."""
        return {
            "scenario": self.scenario,
            "measure": self.measure,
            "splash": self.splash.as_dict(),
            "alternative": self.alternative,
            "alternative_measured": self.alt.as_dict() if self.alt is not None else None,
            "ratio": self.ratio,
            "ratio_kind": "speedup (alternative/splash)" if self.speedup else "splash/alternative",
            "ratio_per_round": self.paired,
            "goal": self.goal.text if self.goal is not None else None,
            "met": self.met,
            "note": self.note,
        }


@dataclass
class ScenarioResult:
    """What one scenario measured, checked and found limiting."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    @property
    def missed(self) -> list[Row]:
        """Rows whose goal is not met."""
        return [r for r in self.rows if r.met is False]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the JSON report."""
        return {
            "name": self.name,
            "title": self.title,
            "seconds": self.seconds,
            "error": self.error,
            "params": self.params,
            "rows": [r.as_dict() for r in self.rows],
            "notes": self.notes,
            "checks": self.checks,
            "limits": self.limits,
            "details": self.details,
        }


# --- run context -----------------------------------------------------------------


@dataclass
class Context:
    """How this run was asked for: mode, repeats, where results and temporary data go."""

    mode: Mode
    out: Path
    tmp_root: Path
    base: str
    repeat: int | None = None
    profile: bool = True

    def repeats(self, quick: int, full: int) -> int:
        """The number of repeats: ``--repeat`` when given, else the scenario's default for the mode."""
        if self.repeat is not None:
            return self.repeat
        return quick if self.mode == "quick" else full

    def pick(self, quick: Any, full: Any) -> Any:
        """``quick`` or ``full``, by mode."""
        return quick if self.mode == "quick" else full

    @property
    def profile_dir(self) -> Path:
        """Where pyinstrument profiles of missed goals are written."""
        return self.out / "profiles"


def log(message: str) -> None:
    """Progress on stderr (the report files hold the results)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def tmp_root() -> Path:
    """The folder for temporary data: the system temporary folder, never inside the repository.

    Raises:
        RuntimeError: the temporary folder lies inside the repository.
    """
    root = Path(tempfile.gettempdir()).resolve()
    if root == REPO or REPO in root.parents:
        raise RuntimeError(f"temporary folder {root} is inside the repository {REPO}; set TMPDIR elsewhere")
    return root


@contextlib.contextmanager
def scratch(ctx: Context, label: str) -> Iterator[Path]:
    """A fresh folder under the temporary root, removed afterwards whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix=f"splash-bench-{label}-", dir=ctx.tmp_root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Facility:
    """A local-facility workspace: every endpoint a folder under ``root/ws/facilities``."""

    root: Path
    splash: Splash

    def folder(self, endpoint: str) -> Path:
        """The folder of endpoint ``endpoint``."""
        return Path(self.splash.settings.endpoint(endpoint).root_path)

    @property
    def database(self) -> Path:
        """The workspace's SQLite file (ledger, tasks, scheduler, catalog)."""
        from splash_core.entrypoints.container import DB_NAME, workspace_of

        return workspace_of(self.splash.settings) / DB_NAME

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the workspace database."""
        import sqlite3

        conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
        try:
            return conn.execute(sql, tuple(params)).fetchall()
        finally:
            conn.close()


@contextlib.contextmanager
def local_facility(ctx: Context, label: str) -> Iterator[Facility]:
    """A temporary local-facility workspace (``write_local_profile``), cleaned up afterwards."""
    from splash_core.entrypoints.api import open_config
    from splash_core.entrypoints.profiles import write_local_profile

    with scratch(ctx, label) as root:
        splash = open_config(write_local_profile(root / "ws"))
        try:
            yield Facility(root, splash)
        finally:
            transfer = splash.transfer
            close = getattr(transfer, "close", None)
            if callable(close):
                close()
            with contextlib.suppress(Exception):
                splash.container.database().close()


# --- timing ----------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` takes (wall clock)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(cmd: Sequence[str | os.PathLike[str]], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run a command, raising on a non-zero exit."""
    return subprocess.run([os.fspath(c) for c in cmd], check=True, **kwargs)


def settle() -> None:
    """Write dirty pages back (untimed) so a contender does not pay for the previous one's writes."""
    os.sync()


def interleave(
    contenders: Mapping[str, Callable[[int], float]],
    rounds: int,
    *,
    between: Callable[[], None] = settle,
    warmup: bool = False,
) -> dict[str, list[float]]:
    """Run every contender once per round, in a shuffled order; each returns its own timed seconds.

    The order is shuffled per round (seeded, so runs are repeatable) rather than rotated: a
    rotation keeps every contender behind the same neighbour, and a contender that leaves the
    disk busy (a large unlink, say) would always slow the same one down. A contender does its
    untimed setup and checks itself and returns only the seconds of the work being compared.
    ``between`` runs (untimed) before each contender. With ``warmup`` a first round runs
    untimed (its times are dropped).
    """
    names = list(contenders)
    times: dict[str, list[float]] = {n: [] for n in names}
    order = random.Random(len(names) * 1000 + rounds)
    for r in range(-1 if warmup else 0, rounds):
        shuffled = names[:]
        order.shuffle(shuffled)
        for name in shuffled:
            between()
            seconds = contenders[name](r + 1 if warmup else r)
            if r >= 0:
                times[name].append(seconds)
    return times


# --- profiling -------------------------------------------------------------------

# (bucket, why, match(qualname, file)): how own time is grouped. The _CALLERS take everything below
# them (closest one wins); otherwise _BUCKETS are tested per frame from the leaf up, first hit wins.
_CALLERS: tuple[tuple[str, str, Callable[[str, str], bool]], ...] = (
    (
        "SQLite commits",
        "every ledger event (and task/step record) is its own transaction, synchronous=FULL: one fsync each",
        lambda name, path: name == "SqliteDatabase.transaction",
    ),
    (
        "checksums",
        "fresh checksums read and hash the files",
        lambda name, path: name in ("hash_file", "hash_bytes"),
    ),
    (
        "fbp geometry build",
        "the (pixel, angle) interpolation indices and weights, built with numpy into sparse matrices",
        lambda name, path: name == "_build_chunk",
    ),
)
_BUCKETS: tuple[tuple[str, str, Callable[[str, str], bool]], ...] = (
    (
        "waiting on worker threads",
        "the calling thread waits while worker threads (LocalTransfer copies, fbp's pool) do the work",
        lambda name, path: (
            name in ("Event.wait", "Condition.wait", "Thread.join") or (name.endswith(".wait") and "threading" in path)
        ),
    ),
    (
        "random.Random() per retried call",
        "call_with_retry builds a new random.Random (seeded from os.urandom) on every call, even without a retry",
        lambda name, path: path.endswith("random.py") or name.startswith("Random."),
    ),
    (
        "checksums",
        "fresh checksums read and hash the files",
        lambda name, path: path.endswith("hashing.py") or "blake3" in path or "hashlib" in path,
    ),
    (
        "(de)serialisation",
        "events and task records are encoded/decoded with cattrs/JSON",
        lambda name, path: path.endswith("_convert.py") or "cattrs" in path or "/json/" in path,
    ),
    (
        "path-safety checks",
        "each path is resolved with realpath (symlinks) before it is touched",
        lambda name, path: path.endswith("_fs.py"),
    ),
    (
        "SQLite statements",
        "queries and inserts of the ledger/scheduler/catalog",
        lambda name, path: (
            "adapters/local/" in path
            and any(path.endswith(m) for m in ("ledger.py", "database.py", "scheduler.py", "catalog.py"))
        ),
    ),
    (
        "file-system calls",
        "stat, open, unlink of the files",
        lambda name, path: "adapters/local/" in path,
    ),
    ("in-memory fakes", "the fake ports themselves", lambda name, path: "tests/fakes" in path),
    ("domain services", "the domain services' own Python", lambda name, path: "splash_core/domain" in path),
    ("beamline composition", "pipelines and dispatch", lambda name, path: "splash_core/beamlines" in path),
    ("numpy/scipy", "array work (sparse products, FFTs)", lambda name, path: "numpy" in path or "scipy" in path),
    ("splash_core.processing", "reconstruction code", lambda name, path: "splash_core/processing" in path),
    ("scikit-image", "iradon", lambda name, path: "skimage" in path),
)


@dataclass
class ProfileSummary:
    """Where a profiled call spent its time, grouped into buckets (share of wall time)."""

    path: Path
    seconds: float
    shares: dict[str, float]
    why: dict[str, str]
    functions: dict[str, float] = field(default_factory=dict)
    """Own (self) seconds per function, ``name (file)``."""
    callers: dict[str, float] = field(default_factory=dict)
    """Own seconds by ``nearest splash_core caller → function`` (who asked for the time spent)."""

    def line(self, top: int = 4) -> str:
        """The largest buckets, e.g. ``SQLite commits 68% (why) · checksums 14% · …``."""
        ordered = sorted(self.shares.items(), key=lambda kv: -kv[1])
        parts = []
        for i, (bucket, share) in enumerate(ordered[:top]):
            if share < 0.03:
                break
            why = f" ({self.why[bucket]})" if i == 0 and bucket in self.why else ""
            parts.append(f"{bucket} {share * 100:.0f}%{why}")
        return " · ".join(parts) or "no dominant cost"


def _qualname(frame: Frame) -> str:
    return f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function


def _real(chain: Sequence[Frame]) -> list[Frame]:
    """The chain without pyinstrument's synthetic frames (``[self]``, hidden groups)."""
    return [f for f in chain if not (f.is_synthetic or f.function.startswith("["))]


def _caller_key(chain: Sequence[Frame]) -> tuple[str, str]:
    real = _real(chain) or list(chain)
    leaf = real[0]
    leaf_name = f"{_qualname(leaf)} ({leaf.file_path_short or leaf.file_path or '?'})"
    for frame in real:
        if "splash_core/" in (frame.file_path or "").replace(os.sep, "/"):
            caller = _qualname(frame)
            return leaf_name, caller if frame is leaf else f"{caller} → {_qualname(leaf)}"
    return leaf_name, _qualname(leaf)


def _bucket_of(chain: Sequence[Frame]) -> str:
    named = [(_qualname(frame), (frame.file_path or "").replace(os.sep, "/")) for frame in chain]  # leaf first
    for rules in (_CALLERS, _BUCKETS):
        for name, path in named:
            for bucket, _why, match in rules:
                if match(name, path):
                    return bucket
    return "other"


def profile(ctx: Context, name: str, fn: Callable[[], object]) -> ProfileSummary:
    """Run ``fn`` under pyinstrument (main thread), write the text profile, return its buckets."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    try:
        fn()
    finally:
        profiler.stop()
    ctx.profile_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.profile_dir / f"{ctx.base}-{name}.txt"
    path.write_text(profiler.output_text(unicode=True, color=False), encoding="utf-8")
    session = profiler.last_session
    root = session.root_frame() if session is not None else None
    totals: dict[str, float] = defaultdict(float)
    functions: dict[str, float] = defaultdict(float)
    callers: dict[str, float] = defaultdict(float)
    if root is not None:
        stack: list[tuple[Frame, tuple[Frame, ...]]] = [(root, (root,))]
        while stack:
            frame, chain = stack.pop()
            own = frame.time - sum(child.time for child in frame.children)
            if own > 0:
                totals[_bucket_of(chain)] += own
                function, caller = _caller_key(chain)
                functions[function] += own
                callers[caller] += own
            stack.extend((child, (child, *chain)) for child in frame.children)
    wall = root.time if root is not None and root.time > 0 else 1.0
    shares = {bucket: seconds / wall for bucket, seconds in totals.items()}
    why = {bucket: reason for bucket, reason, _match in (*_CALLERS, *_BUCKETS)}
    return ProfileSummary(path, wall, shares, why, dict(functions), dict(callers))


def relative(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)
