"""The typed Python API other ALS tools import: open a config, dispatch, move, prune, status.

Example::

    from splash_core import open_config

    splash = open_config("/etc/splash/splash.yaml")        # or $SPLASH_CONFIG
    report = splash.dispatch("bl832", ["scans/sample1.h5"])
    for event in splash.status("scans/sample1.h5").events:
        print(event)

Every call raises a :class:`~splash_core.domain.errors.SplashError` on failure; bad input
(``InvalidInput``) is raised before anything is written.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

import attrs

from splash_core.beamlines import BeamlineServices, run_scheduled_task
from splash_core.beamlines import dispatch as dispatch_beamline
from splash_core.beamlines.base import close_prune_tasks
from splash_core.domain.errors import ConfigError, InvalidInput, PathEscapesRoot
from splash_core.domain.events import (
    Ingested,
    JobFinished,
    LedgerEvent,
    LocationRemoved,
    LocationVerified,
    PruneScheduled,
)
from splash_core.domain.paths import RelPath
from splash_core.domain.services.dispatch import DispatchReport
from splash_core.domain.services.move import MoveReport
from splash_core.domain.services.prune import PruneReport
from splash_core.domain.services.reconcile import ReconcileService
from splash_core.domain.settings import Settings
from splash_core.entrypoints.config import find_config, load_settings
from splash_core.entrypoints.container import Container, build_container

if TYPE_CHECKING:
    from splash_core.ports import (
        CatalogPort,
        ClockPort,
        HPCJobPort,
        LedgerPort,
        SchedulerPort,
        StoragePort,
        TapeArchivePort,
        TransferPort,
    )

log = logging.getLogger(__name__)


@attrs.frozen
class FileStatus:
    """Everything the ledger knows about one path: where it is, how verified, jobs, catalog, prunes."""

    path: RelPath
    events: tuple[LedgerEvent, ...]
    locations: tuple[LocationVerified, ...]
    jobs: tuple[JobFinished, ...]
    catalog_ids: tuple[str, ...]
    pending_prunes: tuple[PruneScheduled, ...]


@attrs.frozen
class ReconcileReport:
    """Files found on a beamline's source without a verified copy at the first hop, and what was done."""

    beamline: str
    source: str
    destination: str
    missing: tuple[RelPath, ...]
    dispatched: tuple[DispatchReport, ...] = ()


@attrs.frozen
class PruneRun:
    """A prune run plus the catalog outbox flush that goes with it."""

    report: PruneReport
    ingests_flushed: int = 0
    ingests_pending: int = 0


class Splash:
    """A configured splash_core: settings plus the adapters the configuration selects.

    Build one with :func:`open_config`; tests pass a container whose ports they overrode.
    """

    def __init__(self, settings: Settings, container: Container | None = None) -> None:
        self.settings = settings
        self.container = container or build_container(settings)
        self._services: BeamlineServices | None = None

    # typed accessors (Selector providers return Any)
    @property
    def transfer(self) -> TransferPort:
        """The transfer port."""
        return cast("TransferPort", self.container.transfer())

    @property
    def storage(self) -> StoragePort:
        """The storage port."""
        return cast("StoragePort", self.container.storage())

    @property
    def ledger(self) -> LedgerPort:
        """The ledger port."""
        return cast("LedgerPort", self.container.ledger())

    @property
    def catalog(self) -> CatalogPort:
        """The catalog port."""
        return cast("CatalogPort", self.container.catalog())

    @property
    def scheduler(self) -> SchedulerPort:
        """The scheduler port."""
        return cast("SchedulerPort", self.container.scheduler())

    @property
    def clock(self) -> ClockPort:
        """The clock port."""
        clock: ClockPort = self.container.clock()
        return clock

    @property
    def hpc(self) -> dict[str, HPCJobPort]:
        """HPC job ports by facility."""
        return dict(self.container.hpc())

    def tape(self) -> TapeArchivePort | None:
        """The tape port, or None when ``adapters.tape`` is ``none``."""
        if self.settings.adapters.tape == "none":
            return None
        return cast("TapeArchivePort", self.container.tape())

    def services(self) -> BeamlineServices:
        """The ports bundled for beamline compositions (built once)."""
        if self._services is None:
            options = self.settings.adapter_options.get("jobs", {})
            poll = _seconds(options, "poll_interval_seconds", _poll_default(self))
            grace = _seconds(options, "not_found_grace_seconds", 300.0)
            self._services = BeamlineServices(
                settings=self.settings,
                transfer=self.transfer,
                storage=self.storage,
                hpc=self.hpc,
                tape=self.tape(),
                catalog=self.catalog,
                scheduler=self.scheduler,
                ledger=self.ledger,
                clock=self.clock,
                job_poll_interval_s=poll,
                job_not_found_grace_s=grace,
            )
        return self._services

    # --- operations ------------------------------------------------------------

    def check_paths(self, endpoint: str, paths: Sequence[str | RelPath], *, must_exist: bool = True) -> list[RelPath]:
        """Validate paths given by a user before anything is written.

        Each must be a valid relative path, resolve inside the endpoint's root (no symlink
        escape) and, when ``must_exist``, exist there as a file or a folder with files.

        Raises:
            InvalidPath: not a valid relative path.
            PathEscapesRoot: resolves outside the endpoint's root.
            InvalidInput: no paths, or a path that does not exist.
        """
        ep = self.settings.endpoint(endpoint)
        parsed = [p if isinstance(p, RelPath) else RelPath.parse(p) for p in paths]
        if not parsed:
            raise InvalidInput(f"give at least one path relative to endpoint {endpoint} ({ep.root_path})")
        for rel in parsed:
            if not self.storage.contains(ep, rel):
                raise PathEscapesRoot(
                    f"{rel} on endpoint {endpoint} resolves outside its root {ep.root_path} (a symlink?); "
                    "refused, nothing was written"
                )
            if must_exist and self.storage.stat(ep, rel) is None and next(self.storage.list(ep, rel), None) is None:
                raise InvalidInput(
                    f"{rel} does not exist on endpoint {endpoint} ({ep.full_path(rel)}); "
                    "paths are relative to the endpoint root"
                )
        return parsed

    def dispatch(
        self,
        beamline: str,
        paths: Sequence[str | RelPath],
        *,
        export_controlled: bool = False,
        parameters: dict[str, object] | None = None,
        check: bool = False,
    ) -> DispatchReport:
        """Run a beamline's pipelines for a batch of new files (relative to its source endpoint).

        Args:
            check: validate the paths on the source endpoint first (see :meth:`check_paths`).

        Raises:
            UnknownBeamline: not configured.
            InvalidInput: bad paths or parameters; nothing ran.
        """
        if check:
            parsed = self.check_paths(self.settings.beamline(beamline).source, paths)
        else:
            parsed = [p if isinstance(p, RelPath) else RelPath.parse(p) for p in paths]
        return dispatch_beamline(
            self.services(), beamline, parsed, export_controlled=export_controlled, parameters=parameters
        )

    def move(
        self, source: str, destination: str, paths: Sequence[str | RelPath], *, export_controlled: bool = False
    ) -> MoveReport:
        """Copy files (or folders) between two configured endpoints and verify every copy.

        Raises:
            UnknownEndpoint: an endpoint is not configured.
            InvalidPath: a path is not a valid relative path.
            TransferError: the copy failed or did not verify.
        """
        src, dst = self.settings.endpoint(source), self.settings.endpoint(destination)
        parsed = self.check_paths(source, paths)
        return (
            self.services()
            .mover()
            .move(src, dst, parsed, label=f"splash move {source} to {destination}", export_controlled=export_controlled)
        )

    def prune(self, *, at: datetime | None = None, dry_run: bool = False) -> PruneRun:
        """Carry out every prune that is due (the ledger decides), and retry pending catalog ingests."""
        services = self.services()
        report = services.pruner().run_due(at=at, dry_run=dry_run)
        flushed = pending = 0
        if not dry_run:
            flush = services.ingester().flush()
            flushed, pending = len(flush.ingested), len(flush.pending)
            close_prune_tasks(services, report, services.scheduler.pending(before=at or services.clock.now()))
        return PruneRun(report, flushed, pending)

    def run_due_tasks(self, *, at: datetime | None = None) -> list[object]:
        """Run every scheduled task (prune, archive) due at ``at``."""
        services = self.services()
        return [
            run_scheduled_task(services, task) for task in services.scheduler.pending(before=at or self.clock.now())
        ]

    def reconcile(self, beamline: str, *, dry_run: bool = False) -> ReconcileReport:
        """Find files on the beamline's source with no verified copy at its first hop and dispatch them."""
        settings = self.settings.beamline(beamline)
        source = self.settings.endpoint(settings.source)
        first = next((c for c in settings.copies if c.source == settings.source and c.enabled), None)
        if first is None:
            raise InvalidInput(f"beamlines.{beamline}.copies: no enabled copy leaves the source {settings.source}")
        missing = ReconcileService(self.storage, self.ledger, self.clock).missing(
            source, first.destination, include=settings.include, settle_s=settings.settle_seconds
        )
        reports: list[DispatchReport] = []
        if not dry_run:
            size = max(1, settings.batch_files)
            for start in range(0, len(missing), size):
                reports.append(self.dispatch(beamline, missing[start : start + size]))
        return ReconcileReport(beamline, source.name, first.destination, tuple(missing), tuple(reports))

    def flight_check(self, route: str) -> FlightReport:
        """Send a probe file along a configured route (see :func:`flight_check`)."""
        return flight_check(self, route)

    def status(self, path: str | RelPath) -> FileStatus:
        """The history of ``path``: locations, verifications, jobs, catalog ids, pending prunes."""
        rel = path if isinstance(path, RelPath) else RelPath.parse(path)
        events = tuple(self.ledger.history(rel))
        current: dict[str, LocationVerified] = {}
        for event in events:
            if isinstance(event, LocationVerified) and event.path == rel:
                current[event.endpoint] = event
            elif isinstance(event, LocationRemoved) and event.path == rel:
                current.pop(event.endpoint, None)
        pending = tuple(p for p in self.ledger.pending_prunes() if p.path == rel)
        return FileStatus(
            path=rel,
            events=events,
            locations=tuple(current.values()),
            jobs=tuple(e for e in events if isinstance(e, JobFinished)),
            catalog_ids=tuple(dict.fromkeys(e.catalog_id for e in events if isinstance(e, Ingested))),
            pending_prunes=pending,
        )


@attrs.frozen
class FlightHop:
    """One hop of a flight check: the probe went from ``source`` to ``destination`` and verified.

    ``checksum`` is ``algorithm:digest`` or ``"not reported"``; ``verified_by`` says who verified
    the copy, e.g. ``"splash"`` or ``"globus (md5, digest not reported)"``.
    """

    source: str
    destination: str
    path: RelPath
    seconds: float
    size: int
    checksum: str
    verified_by: str


@attrs.frozen
class FlightReport:
    """A probe file's journey along a configured route."""

    route: str
    hops: tuple[FlightHop, ...]


PROBE = RelPath("splash-flight-check/probe.bin")
PROBE_BYTES = 1024 * 1024


def flight_check(splash: Splash, route_name: str) -> FlightReport:
    """Send a small probe file along the route ``flight_checks.<route_name>`` and verify each hop.

    The probe is ``splash-flight-check/probe.bin`` on the route's first endpoint; on the local
    profile it is created when missing (splash never writes to a remote beamline endpoint: place
    it there once by hand). Each run lands under ``splash-flight-check/runs/<time>/``.

    Raises:
        InvalidInput: unknown route, or no probe on the first endpoint.
        TransferError: a hop failed or did not verify (names the hop).
    """
    routes = splash.settings.flight_checks
    if route_name not in routes:
        known = ", ".join(sorted(routes)) or "none configured"
        raise InvalidInput(f"flight_checks.{route_name}: no such route (known: {known})")
    names = routes[route_name]
    first = splash.settings.endpoint(names[0])
    if splash.storage.stat(first, PROBE) is None:
        if splash.settings.adapters.storage != "local":
            raise InvalidInput(
                f"no probe file {PROBE} on endpoint {first.name}; place a small file there once "
                "(the flight check never writes to a beamline endpoint)"
            )
        probe = Path(first.full_path(PROBE))
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(os.urandom(PROBE_BYTES))
    stamp = splash.clock.now().strftime("%Y%m%dT%H%M%S%fZ")
    mover = splash.services().mover()
    current = PROBE
    hops: list[FlightHop] = []
    for source_name, destination_name in itertools.pairwise(names):
        source, destination = splash.settings.endpoint(source_name), splash.settings.endpoint(destination_name)
        prefix = RelPath.parse(f"splash-flight-check/runs/{stamp}") if current == PROBE else None
        report = mover.move(source, destination, [current], label=f"flight check {route_name}", dest_prefix=prefix)
        (verified,) = report.verified
        hops.append(
            FlightHop(
                source_name,
                destination_name,
                verified.path,
                report.seconds,
                verified.size,
                verified.checksum_text,
                verified.verification,
            )
        )
        current = verified.path
    return FlightReport(route_name, tuple(hops))


def _seconds(options: Mapping[str, object], key: str, default: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"options.jobs.{key}: expected a number of seconds > 0, got {value!r}")
    return float(value)


def _poll_default(splash: Splash) -> float:
    # local subprocess jobs finish in seconds; production schedulers are polled gently
    local = all(adapter == "local" for adapter in splash.settings.adapters.hpc.values())
    return 0.2 if local else 30.0


def open_config(path: str | os.PathLike[str] | None = None) -> Splash:
    """Load the configuration (``path``, else ``$SPLASH_CONFIG``) and wire its adapters.

    Raises:
        ConfigError: no file given, or it is invalid (every problem listed).
    """
    config_path = find_config(path)
    return Splash(load_settings(Path(config_path)))


def dispatch(
    beamline: str,
    paths: Sequence[str | RelPath],
    *,
    config: str | os.PathLike[str] | None = None,
    export_controlled: bool = False,
    parameters: dict[str, object] | None = None,
) -> DispatchReport:
    """Dispatch a batch of new files for ``beamline`` with the configuration at ``config``.

    A shortcut for ``open_config(config).dispatch(...)``; paths are checked on the source first.
    """
    return open_config(config).dispatch(
        beamline, paths, export_controlled=export_controlled, parameters=parameters, check=True
    )


def move(
    source: str,
    destination: str,
    paths: Sequence[str | RelPath],
    *,
    config: str | os.PathLike[str] | None = None,
    export_controlled: bool = False,
) -> MoveReport:
    """Copy and verify files between two configured endpoints (``open_config(config).move(...)``)."""
    return open_config(config).move(source, destination, paths, export_controlled=export_controlled)


def status(path: str | RelPath, *, config: str | os.PathLike[str] | None = None) -> FileStatus:
    """The ledger's history of ``path`` (``open_config(config).status(path)``)."""
    return open_config(config).status(path)
