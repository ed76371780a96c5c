"""``splash watch BEAMLINE``: see finished files on the beamline's source and dispatch them in batches.

A file is *finished* once its size and mtime have not changed for ``settle_seconds`` (the
beamline's setting; ``--settle-seconds`` overrides it). Finished files that match the beamline's
``include`` patterns are batched: a batch goes as soon as it holds ``batch_files`` files or its
oldest file has waited ``batch_seconds``, whichever comes first. Each batch is one dispatch:
through Prefect (``--via prefect``: a flow run of ``splash-dispatch/<beamline>-dispatch``, which
a worker of the beamline's dispatch pool runs) or in this process (``--via direct``).

On start the watcher reconciles: files that arrived while it was down (no verified copy at the
first hop) are dispatched first, and files still being written are watched until they settle.
``--once`` does only that and exits. SIGINT/SIGTERM stop it cleanly: files that have settled are
dispatched, files still being written are left for the next start.

The watcher reads the folder directly, so it runs where the files are local: on the local
profile that is the endpoint's folder; with Globus endpoints it must run on the beamline
machine, with ``--root`` naming the local folder behind the source endpoint's root path.

:class:`ArrivalBatcher` holds the timing rules and does no I/O; the loop around it stats files
and talks to watchfiles.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import attrs
import typer

from splash_core.domain.errors import InvalidInput, PipelineError
from splash_core.domain.services.dispatch import OutcomeState
from splash_core.domain.services.reconcile import matches

if TYPE_CHECKING:
    from splash_core.entrypoints.api import Splash

logger = logging.getLogger(__name__)

VIA_PREFECT = "prefect"
VIA_DIRECT = "direct"
_REMEMBER_SENT = 100_000  # files remembered as dispatched, so a metadata-only event does not send them again


# --- the timing rules (pure) ----------------------------------------------------------------


@attrs.define
class _Candidate:
    size: int
    mtime: float
    changed_at: float | None  # when a change was last observed; None while only seen once


class ArrivalBatcher:
    """Files seen (with size and mtime, at a time) in; batches of finished files out.

    A file is finished when ``now - max(mtime, last observed change) >= settle_seconds`` (an
    mtime in the future counts as the time it was seen). Finished files wait in arrival order
    until there are ``batch_files`` of them or the oldest has waited ``batch_seconds``.
    A file sent in a batch and seen again unchanged is ignored; seen changed, it is a new arrival.

    Args:
        settle_seconds: how long size and mtime must stay the same.
        batch_files: the most files in one batch.
        batch_seconds: the longest a finished file waits for a batch to fill.
    """

    def __init__(self, *, settle_seconds: float, batch_files: int, batch_seconds: float) -> None:
        if batch_files < 1:
            raise InvalidInput(f"batch_files must be >= 1, got {batch_files}")
        if settle_seconds < 0 or batch_seconds < 0:
            raise InvalidInput("settle_seconds and batch_seconds must be >= 0")
        self.settle_seconds = settle_seconds
        self.batch_files = batch_files
        self.batch_seconds = batch_seconds
        self._candidates: dict[str, _Candidate] = {}
        self._ready: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._sent: collections.OrderedDict[str, tuple[int, float]] = collections.OrderedDict()

    @property
    def unsettled(self) -> tuple[str, ...]:
        """Files still being watched for size and mtime to settle (the caller re-stats these)."""
        return tuple(self._candidates)

    @property
    def waiting(self) -> int:
        """Files not yet handed out: being written, or finished and waiting for a batch."""
        return len(self._candidates) + len(self._ready)

    def seen(self, path: str, size: int, mtime: float, now: float) -> None:
        """Record that ``path`` had ``size`` and ``mtime`` at ``now``."""
        mtime = min(mtime, now)
        if self._sent.get(path) == (size, mtime):
            return
        if path in self._ready:
            del self._ready[path]  # written again after it finished: wait for it to settle again
        current = self._candidates.get(path)
        if current is None:
            self._candidates[path] = _Candidate(size, mtime, None if path not in self._sent else now)
        elif (current.size, current.mtime) != (size, mtime):
            self._candidates[path] = _Candidate(size, mtime, now)

    def gone(self, path: str) -> None:
        """``path`` was deleted or renamed away before it was sent: forget it."""
        self._candidates.pop(path, None)
        self._ready.pop(path, None)

    def poll(self, now: float) -> list[tuple[str, ...]]:
        """The batches due at ``now`` (possibly none), oldest files first."""
        settled = sorted(
            path
            for path, c in self._candidates.items()
            if now - max(c.mtime, c.changed_at if c.changed_at is not None else c.mtime) >= self.settle_seconds
        )
        for path in settled:
            candidate = self._candidates.pop(path)
            self._ready[path] = now
            self._remember(path, candidate)
        batches: list[tuple[str, ...]] = []
        while len(self._ready) >= self.batch_files:
            batches.append(self._take(self.batch_files))
        if self._ready and now - next(iter(self._ready.values())) >= self.batch_seconds:
            batches.append(self._take(len(self._ready)))
        return batches

    def drain(self) -> list[tuple[str, ...]]:
        """Every finished file still waiting, in batches (for a clean stop); files being written stay."""
        batches: list[tuple[str, ...]] = []
        while self._ready:
            batches.append(self._take(min(self.batch_files, len(self._ready))))
        return batches

    def _take(self, n: int) -> tuple[str, ...]:
        return tuple(self._ready.popitem(last=False)[0] for _ in range(n))

    def _remember(self, path: str, candidate: _Candidate) -> None:
        self._sent[path] = (candidate.size, candidate.mtime)
        self._sent.move_to_end(path)
        while len(self._sent) > _REMEMBER_SENT:
            self._sent.popitem(last=False)


# --- the loop ----------------------------------------------------------------------------


Submit = Callable[[tuple[str, ...]], str]
"""Dispatches one batch (paths relative to the source endpoint); returns what to log (a flow run id, a result)."""


@attrs.frozen
class WatchSummary:
    """What a watcher run did."""

    reconciled: int
    batches: int
    files: int
    failed_batches: int
    left_unsettled: int


class Watcher:
    """Watch ``root`` and hand finished files to ``submit`` in batches.

    Args:
        root: the local folder behind the beamline's source endpoint.
        include: name patterns to keep (all files when empty).
        batcher: the timing rules.
        submit: dispatches a batch; an exception is logged and the batch counted as failed.
        catch_up: runs once at start (the reconcile): the batches of files that arrived unwatched.
        tick: seconds between checks of files being written.
        recent_seconds: at start, files modified this recently are watched until they settle
            (the catch-up skipped them as unfinished); default the batcher's settle time.
        clock: wall-clock seconds (``time.time``); file mtimes are compared with it.
    """

    def __init__(
        self,
        root: Path,
        *,
        include: Iterable[str],
        batcher: ArrivalBatcher,
        submit: Submit,
        catch_up: Callable[[], list[tuple[str, ...]]] = list,
        tick: float = 1.0,
        recent_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.include = tuple(include)
        self.batcher = batcher
        self.submit = submit
        self.catch_up = catch_up
        self.tick = tick
        self.recent_seconds = batcher.settle_seconds if recent_seconds is None else recent_seconds
        self.clock = clock
        self.batches = 0
        self.files = 0
        self.failed = 0

    def _relative(self, path: str | os.PathLike[str]) -> str | None:
        try:
            rel = Path(path).relative_to(self.root)
        except ValueError:
            return None
        return rel.as_posix() if rel.parts else None

    def _observe(self, path: Path, now: float, *, added: bool = False) -> None:
        rel = self._relative(path)
        if rel is None:
            return
        try:
            st = path.stat()
        except FileNotFoundError:
            self.batcher.gone(rel)
            return
        except OSError as exc:
            logger.warning("cannot stat %s (%s); it will be looked at again", path, exc)
            return
        if path.is_dir():
            if added:  # files written into a new folder before the OS watch on it began
                for child in self._walk(path):
                    self._observe(child, now)
        elif path.is_file() and matches(path.name, self.include):
            self.batcher.seen(rel, st.st_size, st.st_mtime, now)

    def _walk(self, folder: Path) -> Iterator[Path]:
        for dirpath, _dirs, names in os.walk(folder):
            for name in names:
                yield Path(dirpath) / name

    def _recent(self, now: float) -> None:
        """Files written in the last settle window: the reconcile skipped them as unfinished."""
        horizon = now - max(self.recent_seconds, self.batcher.settle_seconds) - max(self.tick, 1.0)
        for path in self._walk(self.root):
            try:
                st = path.stat()
            except OSError:
                continue
            if st.st_mtime >= horizon and matches(path.name, self.include):
                rel = self._relative(path)
                if rel is not None:
                    self.batcher.seen(rel, st.st_size, st.st_mtime, now)

    def _send(self, batches: Iterable[tuple[str, ...]]) -> None:
        for batch in batches:
            try:
                result = self.submit(batch)
            except Exception as exc:  # one batch's trouble must not stop the watcher; reconcile retries it
                self.failed += 1
                logger.error(
                    "batch of %d file(s) (%s ...) was not dispatched: %s: %s; the next start (reconcile) "
                    "dispatches it again",
                    len(batch),
                    batch[0],
                    type(exc).__name__,
                    exc,
                )
                continue
            self.batches += 1
            self.files += len(batch)
            logger.info("dispatched %d file(s) (%s ...): %s", len(batch), batch[0], result)

    def _step(self, changes: Iterable[tuple[Any, str]]) -> None:
        now = self.clock()
        for change, path in changes:
            self._observe(Path(path), now, added=getattr(change, "name", "") == "added")
        for rel in self.batcher.unsettled:
            self._observe(self.root / rel, now)
        self._send(self.batcher.poll(now))

    def run(self, stop: threading.Event, *, once: bool = False) -> WatchSummary:
        """Reconcile, then watch until ``stop`` is set (``once``: until everything found has gone)."""
        if not self.root.is_dir():
            raise InvalidInput(f"watch folder {self.root} does not exist or is not a folder")
        if once:
            return self._run_once(stop)
        import watchfiles

        events = watchfiles.watch(
            self.root,
            stop_event=stop,
            yield_on_timeout=True,
            rust_timeout=max(int(self.tick * 1000), 50),
            debounce=max(int(self.tick * 1000), 50),
            raise_interrupt=False,
        )
        reconciled = None
        for changes in events:  # the first iteration starts the OS watch; then catch up
            if reconciled is None:
                reconciled = self._start()
            self._step(changes)
        return self._finish(reconciled or 0)

    def _run_once(self, stop: threading.Event) -> WatchSummary:
        reconciled = self._start()
        while not stop.is_set():
            self._step(())
            if not self.batcher.unsettled:
                break  # what is left is finished: _finish sends it without waiting for batch_seconds
            stop.wait(self.tick)
        return self._finish(reconciled)

    def _start(self) -> int:
        now = self.clock()
        missed = self.catch_up()
        self._send(missed)
        reconciled = sum(len(batch) for batch in missed)
        self._recent(now)
        logger.info(
            "watching %s: %d file(s) reconciled, %d still being written", self.root, reconciled, self.batcher.waiting
        )
        return reconciled

    def _finish(self, reconciled: int) -> WatchSummary:
        self._send(self.batcher.drain())
        left = len(self.batcher.unsettled)
        if left:
            logger.warning("%d file(s) still being written were left for the next start (reconcile)", left)
        return WatchSummary(reconciled, self.batches, self.files, self.failed, left)


# --- wiring: a Splash, a way to dispatch -------------------------------------------------------


def watch_root(splash: Splash, beamline: str, root: Path | None) -> Path:
    """The local folder to watch for ``beamline``.

    Raises:
        InvalidInput: the source endpoint is not local and no ``root`` was given, or it is not a folder.
    """
    settings = splash.settings.beamline(beamline)
    source = splash.settings.endpoint(settings.source)
    if root is None:
        if splash.settings.adapters.storage != "local":
            raise InvalidInput(
                f"beamline {beamline}: its source endpoint {source.name} is reached through "
                f"{splash.settings.adapters.storage} (adapters.storage), so the watcher cannot see its files "
                "from here. Run `splash watch` on the beamline machine where the files are local and pass "
                f"--root DIR, the local folder behind {source.name}'s root path {source.root_path}"
            )
        root = Path(source.root_path)
    root = root.expanduser().resolve()
    if not root.is_dir():
        raise InvalidInput(f"watch folder {root} (beamline {beamline}, endpoint {source.name}) is not a folder")
    return root


def direct_submit(splash: Splash, beamline: str, export_controlled: bool) -> Submit:
    """Dispatch a batch in this process; a failed report raises."""

    def submit(batch: tuple[str, ...]) -> str:
        report = splash.dispatch(beamline, list(batch), export_controlled=export_controlled)
        if not report.ok:
            problems = [str(o) for o in report.outcomes if o.state is not OutcomeState.OK]
            raise PipelineError(f"{beamline} dispatch failed: {'; '.join(problems)}", step="dispatch")
        return ", ".join(str(o) for o in report.outcomes)

    return submit


def prefect_submit(beamline: str, export_controlled: bool, api_url: str | None) -> Submit:
    """Hand a batch to the beamline's Prefect dispatch deployment."""
    from splash_core.entrypoints.prefect.trigger import submit_dispatch

    def submit(batch: tuple[str, ...]) -> str:
        run_id = submit_dispatch(beamline, batch, export_controlled=export_controlled, api_url=api_url)
        return f"flow run {run_id}"

    return submit


def build_watcher(
    splash: Splash,
    beamline: str,
    *,
    via: str,
    root: Path | None = None,
    export_controlled: bool = False,
    settle_seconds: float | None = None,
    batch_files: int | None = None,
    batch_seconds: float | None = None,
    tick: float | None = None,
) -> Watcher:
    """A watcher for ``beamline`` that dispatches ``via`` Prefect or directly.

    Raises:
        InvalidInput: an unknown ``via``, or no local folder to watch.
        SchedulerError: ``via`` Prefect and the dispatch deployment cannot be found.
    """
    settings = splash.settings.beamline(beamline)
    folder = watch_root(splash, beamline, root)
    batcher = ArrivalBatcher(
        settle_seconds=settings.settle_seconds if settle_seconds is None else settle_seconds,
        batch_files=settings.batch_files if batch_files is None else batch_files,
        batch_seconds=settings.batch_seconds if batch_seconds is None else batch_seconds,
    )
    if via == VIA_DIRECT:
        submit = direct_submit(splash, beamline, export_controlled)
    elif via == VIA_PREFECT:
        from splash_core.entrypoints.prefect.options import prefect_options
        from splash_core.entrypoints.prefect.trigger import check_dispatch_deployment

        api_url = prefect_options(splash.settings).api_url
        check_dispatch_deployment(beamline, api_url=api_url)
        submit = prefect_submit(beamline, export_controlled, api_url)
    else:
        raise InvalidInput(f"--via {via!r}: expected {VIA_PREFECT} or {VIA_DIRECT}")

    def catch_up() -> list[tuple[str, ...]]:
        missing = [p.value for p in splash.reconcile(beamline, dry_run=True).missing]
        if missing:
            logger.info("%s: %d file(s) arrived while nothing watched; dispatching them", beamline, len(missing))
        size = batcher.batch_files
        return [tuple(missing[i : i + size]) for i in range(0, len(missing), size)]

    every = tick if tick is not None else min(1.0, max(0.05, batcher.settle_seconds / 4))
    return Watcher(
        folder,
        include=settings.include,
        batcher=batcher,
        submit=submit,
        catch_up=catch_up,
        tick=every,
        recent_seconds=settings.settle_seconds,  # what the reconcile leaves for the watcher
    )


@attrs.define
class _Signals:
    """SIGINT/SIGTERM set ``stop``; a second one aborts."""

    stop: threading.Event
    previous: dict[int, Any] = attrs.field(factory=dict)

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        logger.warning("%s: stopping after the current batch (again to abort)", signal.Signals(signum).name)
        self.stop.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


# --- the command ------------------------------------------------------------------------------


def watch(
    beamline: Annotated[str, typer.Argument(help="beamline id, e.g. bl733")],
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="configuration file (default: $SPLASH_CONFIG)", show_default=False),
    ] = None,
    via: Annotated[
        str | None,
        typer.Option(
            "--via",
            help="prefect: a flow run per batch (needs `splash prefect deploy`); direct: dispatch here. "
            "Default: prefect when adapters.scheduler is prefect, else direct",
            show_default=False,
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="dispatch what is there (waiting for files being written), then exit")
    ] = False,
    root: Annotated[
        Path | None,
        typer.Option("--root", help="the local folder behind the source endpoint (needed with Globus endpoints)"),
    ] = None,
    export_controlled: Annotated[
        bool, typer.Option("--export-controlled", help="the data must never leave the site")
    ] = False,
    settle_seconds: Annotated[
        float | None, typer.Option("--settle-seconds", help="override beamlines.<id>.settle_seconds")
    ] = None,
    batch_files: Annotated[
        int | None, typer.Option("--batch-files", help="override beamlines.<id>.batch_files")
    ] = None,
    batch_seconds: Annotated[
        float | None, typer.Option("--batch-seconds", help="override beamlines.<id>.batch_seconds")
    ] = None,
) -> None:
    """Watch a beamline's source folder and dispatch finished files in batches (Ctrl-C stops cleanly)."""
    from splash_core.entrypoints.cli import EXIT_FAILED, err, fail, guarded, out

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API request is noise here

    def setup() -> Watcher:
        from splash_core.entrypoints.api import open_config

        splash = open_config(config)
        how = via or (VIA_PREFECT if splash.settings.adapters.scheduler == "prefect" else VIA_DIRECT)
        return build_watcher(
            splash,
            beamline,
            via=how,
            root=root,
            export_controlled=export_controlled,
            settle_seconds=settle_seconds,
            batch_files=batch_files,
            batch_seconds=batch_seconds,
        )

    watcher = guarded(setup)
    stop = threading.Event()
    err.print(f"watching {watcher.root} for {beamline}" + (" (once)" if once else "; Ctrl-C to stop"))
    with _Signals(stop):
        summary = guarded(lambda: watcher.run(stop, once=once))
    out.print(
        f"{beamline}: {summary.reconciled} file(s) reconciled; {summary.files} file(s) dispatched in "
        f"{summary.batches} batch(es); {summary.failed_batches} batch(es) failed; "
        f"{summary.left_unsettled} still being written",
        soft_wrap=True,
    )
    if summary.failed_batches:
        fail(f"{beamline}: {summary.failed_batches} batch(es) were not dispatched (see the log above)", EXIT_FAILED)


__all__ = [
    "VIA_DIRECT",
    "VIA_PREFECT",
    "ArrivalBatcher",
    "Submit",
    "WatchSummary",
    "Watcher",
    "build_watcher",
    "watch",
    "watch_root",
]
