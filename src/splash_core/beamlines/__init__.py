"""Beamline compositions: a configuration block plus, where needed, a short module of job layouts.

Entrypoints (CLI, Prefect flows, the watcher) use three calls::

    services = BeamlineServices(settings=..., transfer=..., storage=..., hpc={...}, tape=...,
                                catalog=..., scheduler=..., ledger=..., clock=...)
    report = dispatch(services, "bl832", ["scans/20250106_0900_sample.h5"], export_controlled=False)
    run_scheduled_task(services, task)          # a "prune" or "archive" task the pipelines scheduled

A beamline id without a module here (a new beamline that is only a configuration block) uses the
generic composition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from splash_core.beamlines import bl733, bl832, bl7012
from splash_core.beamlines.base import (
    GENERIC,
    BeamlineModule,
    BeamlineServices,
    build_dispatcher,
    dispatch_paths,
    run_archive,
    run_scheduled,
)
from splash_core.domain.models import ScheduledTask
from splash_core.domain.paths import RelPath
from splash_core.domain.services.archive import ArchiveReport
from splash_core.domain.services.dispatch import Dispatcher, DispatchReport
from splash_core.domain.services.prune import PruneReport

BEAMLINES: Mapping[str, BeamlineModule] = {module.id: module for module in (bl832.MODULE, bl733.MODULE, bl7012.MODULE)}
"""Beamline id -> module, for beamlines whose jobs need more than the generic layout."""


def module_for(beamline_id: str) -> BeamlineModule:
    """The module of ``beamline_id``, or the generic one."""
    return BEAMLINES.get(beamline_id, GENERIC)


def dispatcher_for(services: BeamlineServices, beamline_id: str) -> Dispatcher:
    """The dispatcher of a configured beamline.

    Raises:
        UnknownBeamline: the beamline is not in the configuration.
        UnknownEndpoint: its copies name an unknown endpoint.
    """
    beamline = services.settings.beamline(beamline_id)
    return build_dispatcher(beamline, services, module_for(beamline_id))


def dispatch(
    services: BeamlineServices,
    beamline_id: str,
    paths: Sequence[str | RelPath],
    *,
    export_controlled: bool = False,
    parameters: Mapping[str, object] | None = None,
) -> DispatchReport:
    """Dispatch a batch of new paths (relative to the beamline's source endpoint).

    Raises:
        UnknownBeamline: the beamline is not in the configuration.
        InvalidInput: a bad path, no paths or an unknown parameter; nothing ran.
    """
    beamline = services.settings.beamline(beamline_id)
    dispatcher = build_dispatcher(beamline, services, module_for(beamline_id))
    return dispatch_paths(dispatcher, beamline, paths, export_controlled=export_controlled, parameters=parameters)


def archive(services: BeamlineServices, beamline_id: str, paths: Sequence[RelPath]) -> ArchiveReport:
    """Archive ``paths`` from the beamline's archive source to tape now."""
    return run_archive(services.settings.beamline(beamline_id), services, paths, module_for(beamline_id))


def run_scheduled_task(services: BeamlineServices, task: ScheduledTask) -> PruneReport | ArchiveReport:
    """Carry out a ``prune`` or ``archive`` task that a pipeline scheduled."""
    return run_scheduled(task, services, module_for)


__all__ = [
    "BEAMLINES",
    "GENERIC",
    "BeamlineModule",
    "BeamlineServices",
    "archive",
    "dispatch",
    "dispatcher_for",
    "module_for",
    "run_scheduled_task",
]
